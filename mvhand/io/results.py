"""3D result files written by ``mvhand triangulate`` / ``mvhand run``.

``hands3d.npz``:

- ``keypoints3d``: float ``(T, H, 21, 3)`` in ``units``, NaN where not reconstructed;
- ``reprojection_error_px``, ``score``: float ``(T, H, 21)``; ``n_views``: int ``(T, H, 21)``;
- ``units``: "m" | "cm" | "mm"; ``hands``: ``["left", "right"]``; ``joints``: the 21 names;
- ``fps`` (optional); ``run_id`` (optional): the run that wrote it (see
  :mod:`mvhand.io.runfolder`);
- the 2D evidence (optional, written by ``mvhand run`` / ``triangulate``): ``views_keypoints_px``
  ``(C, T, H, 21, 2)`` the repaired 2D (after left/right swap repair), ``views_scores``
  ``(C, T, H, 21)``, ``views_inliers`` ``(C, T, H, 21)`` bool, ``views_swapped`` ``(C, T)``
  bool, ``views_cameras`` ``(C,)``; ``bone_lengths`` ``(H, 20)`` in ``units``.

``hands3d.csv``: one row per frame, anipose-style columns
``<hand>_<joint>_x/_y/_z/_error/_ncams/_score``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mvhand.core.data import Hands3D, Keypoints2D, Views2D
from mvhand.core.skeleton import JOINT_NAMES
from mvhand.errors import InputError
from mvhand.io.atomic import save_npz_atomic, write_text_atomic


def save_hands3d(path: str | Path, hands: Hands3D, fps: float | None = None,
                 run_id: str | None = None) -> None:  # fmt: skip
    """Write ``hands3d.npz`` atomically (with its 2D evidence when ``hands.views`` is set)."""
    arrays = {
        "keypoints3d": hands.keypoints3d,
        "reprojection_error_px": hands.reprojection_error_px.astype(np.float32),
        "n_views": hands.n_views.astype(np.int16),
        "score": hands.score.astype(np.float32),
        "units": np.array(hands.units),
        "hands": np.array(hands.hands),
        "joints": np.array(JOINT_NAMES),
    }
    if fps is not None:
        arrays["fps"] = np.array(fps)
    if run_id is not None:
        arrays["run_id"] = np.array(run_id)
    if hands.bone_lengths is not None:
        arrays["bone_lengths"] = hands.bone_lengths
    v = hands.views
    if v is not None:
        arrays.update(views_keypoints_px=v.keypoints.keypoints_px, views_scores=v.keypoints.scores,
                      views_inliers=v.inliers, views_swapped=v.swapped,
                      views_cameras=np.array(v.cameras))  # fmt: skip
    save_npz_atomic(path, **arrays)


def load_hands3d(path: str | Path) -> Hands3D:
    """Read ``hands3d.npz``; InputError naming the file if it is not one."""
    path = Path(path)
    with npz_errors(path, "hands3d"), np.load(path, allow_pickle=False) as d:
        hands = tuple(str(h) for h in d["hands"])
        fps = float(d["fps"]) if "fps" in d.files else None
        views = None
        if "views_inliers" in d.files:
            kp = Keypoints2D(d["views_keypoints_px"], d["views_scores"],
                             tuple(str(c) for c in d["views_cameras"]), hands, fps)
            views = Views2D(kp, d["views_inliers"], d["views_swapped"])
        lengths = d["bone_lengths"] if "bone_lengths" in d.files else None
        return Hands3D(d["keypoints3d"], d["reprojection_error_px"], d["n_views"],
                       d["score"], str(d["units"]), hands, views, lengths)


@contextmanager
def npz_errors(path: Path, kind: str) -> Iterator[None]:
    """Turn the errors of reading an mvhand NPZ file of ``kind`` into one-line InputErrors
    naming the file (missing, lacking a key, unreadable)."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{kind} file not found", path) from None
    except KeyError as exc:
        raise InputError(f"not an mvhand {kind} file: lacks {exc}", path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable {kind} file ({exc})", path) from None


def hands3d_csv(hands: Hands3D) -> str:
    """The anipose-style CSV text: a ``frame`` column, then 6 columns per hand and joint."""
    T, H, J, _ = hands.keypoints3d.shape
    cols = ["frame"]
    blocks = [np.arange(T)[:, None].astype(float)]
    for h, hand in enumerate(hands.hands):
        for j, joint in enumerate(JOINT_NAMES):
            prefix = f"{hand}_{joint}"
            cols += [f"{prefix}_{s}" for s in ("x", "y", "z", "error", "ncams", "score")]
            blocks.append(np.column_stack([
                hands.keypoints3d[:, h, j], hands.reprojection_error_px[:, h, j],
                hands.n_views[:, h, j], hands.score[:, h, j],
            ]))  # fmt: skip
    table = np.hstack(blocks)
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    np.savetxt(buf, table, delimiter=",", fmt="%.6g")
    return buf.getvalue().replace("nan", "")


def save_hands3d_csv(path: str | Path, hands: Hands3D) -> None:
    """Write ``hands3d.csv`` atomically (empty cells where missing)."""
    write_text_atomic(path, hands3d_csv(hands))
