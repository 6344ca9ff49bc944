"""Table exports: anipose's 3D CSV (exactly the columns anipose writes) and a tidy long CSV.

- ``anipose``: per marker ``<marker>_x, _y, _z, _error, _ncams, _score``, then ``M_00 .. M_22``
  (the alignment rotation; identity: mvhand writes the calibration's world frame, rotated for
  ``up``), ``center_0 .. center_2`` (zeros) and ``fnum`` (the video frame number), one row per
  frame, as ``anipose triangulate`` writes its ``pose-3d/*.csv`` and its analysis reads them.
  Missing coordinates are NaN (as pandas writes them, empty cells).
- ``long``: one row per frame and marker: ``frame, time_s, person, hand, joint, marker, x, y,
  z, error_px, n_views, score`` (units in the header of each coordinate column).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mvhand.export.markers import MarkerSet
from mvhand.io.atomic import write_text_atomic


def _fmt(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.6g}"


def anipose_csv(markers: MarkerSet, rotation: np.ndarray | None = None) -> str:
    """anipose's 3D CSV text."""
    T = markers.n_frames
    cols: list[str] = []
    blocks = []
    for m, name in enumerate(markers.names):
        cols += [f"{name}_{s}" for s in ("x", "y", "z", "error", "ncams", "score")]
        blocks.append(np.column_stack([markers.points[:, m], markers.error_px[:, m],
                                       markers.n_views[:, m], markers.score[:, m]]))  # fmt: skip
    R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)
    cols += [f"M_{i}{j}" for i in range(3) for j in range(3)]
    blocks.append(np.broadcast_to(R.ravel(), (T, 9)))
    cols += [f"center_{i}" for i in range(3)]
    blocks.append(np.zeros((T, 3)))
    cols.append("fnum")
    blocks.append((markers.first_frame + markers.step * np.arange(T))[:, None])
    table = np.hstack(blocks)
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    np.savetxt(buf, table, delimiter=",", fmt="%.6g")
    return buf.getvalue().replace("nan", "")


def long_csv(markers: MarkerSet, person: str | tuple[str, ...], hands: tuple[str, ...]) -> str:
    """The tidy long table's text (hand-major markers of ``hands``, 21 joints each);
    ``person`` is one id for all, or one per hand."""
    from mvhand.core.skeleton import JOINT_NAMES

    u = markers.units
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["frame", "time_s", "person", "hand", "joint", "marker", f"x_{u}", f"y_{u}",
                f"z_{u}", "error_px", "n_views", "score"])  # fmt: skip
    times = markers.times_s
    frames = markers.first_frame + markers.step * np.arange(markers.n_frames)
    who = (person,) * len(hands) if isinstance(person, str) else tuple(person)
    labels = [(p, h, j) for p, h in zip(who, hands, strict=True) for j in JOINT_NAMES]
    for t in range(markers.n_frames):
        for m, (pid, hand, joint) in enumerate(labels):
            x, y, z = markers.points[t, m]
            w.writerow([int(frames[t]), f"{times[t]:.6f}", pid, hand, joint,
                        markers.names[m], _fmt(x), _fmt(y), _fmt(z),
                        _fmt(markers.error_px[t, m]), int(markers.n_views[t, m]),
                        _fmt(markers.score[t, m])])  # fmt: skip
    return buf.getvalue()


def write_anipose_csv(path: str | Path, markers: MarkerSet,
                      rotation: np.ndarray | None = None) -> Path:  # fmt: skip
    write_text_atomic(path, anipose_csv(markers, rotation))
    return Path(path)


def write_long_csv(path: str | Path, markers: MarkerSet, person: str | tuple[str, ...],
                   hands: tuple[str, ...]) -> Path:  # fmt: skip
    write_text_atomic(path, long_csv(markers, person, hands))
    return Path(path)
