"""The several-people result file, ``hands3d_people.npz`` (``mvhand run`` with
``detect.max_people > 1``, ``mvhand people``, ``mvhand triangulate --people``).

Everybody's 3D and the per-camera 2D before association, in one file (layout:
:mod:`mvhand.core.people`):

- ``hands3d`` ``(T, P, 2, 21, 3)`` in ``units`` (hand 0 left, 1 right), ``hands_n_views`` and
  ``hands_reprojection_error_px`` ``(T, P, 2, 21)``; ``body3d`` ``(T, P, 17, 3)`` (COCO-17),
  ``body_n_views`` ``(T, P)``; ``person_ids`` ``(P,)``;
- the detections: ``det_camera``, ``det_frame``, ``det_source`` ``(N,)``, ``det_body_px``
  ``(N, 17, 2)``, ``det_body_scores`` ``(N, 17)``, ``det_hands_px`` ``(N, 2, 21, 2)``,
  ``det_hands_scores`` ``(N, 2, 21)``; where they went: ``det_person`` ``(N,)``,
  ``det_hand_person`` and ``det_side`` ``(N, 2)`` (-1: not associated);
- ``cameras`` ``(C,)``, ``units``, ``n_frames``, ``fps`` (optional), ``frames`` ``(T,)`` the video
  frame of each row of ``hands3d`` (optional), ``primary`` (optional): the person id whose hands
  are in ``hands3d.npz``, ``run_id`` (optional).

Files written before the detections were stored (``mvhand people`` of an earlier version) have
no ``det_body_px`` etc.: :func:`load_people` then returns ``None`` for the detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.core.people import Detections2D, PeopleResult
from mvhand.io.atomic import save_npz_atomic
from mvhand.io.results import npz_errors

_RESULT = ("hands3d", "hands_n_views", "hands_reprojection_error_px", "body3d", "body_n_views",
           "person_ids", "det_person", "det_hand_person", "det_side")  # fmt: skip


@dataclass(frozen=True, eq=False)
class PeopleFile:
    """What ``hands3d_people.npz`` holds.

    Attributes:
        result: everybody's 3D and the row assignments.
        detections: the per-camera 2D rows (None in files that did not store them).
        frames: ``(T,)`` video frame per result row (None: 0..T-1).
        primary: id of the person written to ``hands3d.npz`` (None: not recorded).
        run_id: the run that wrote the file, or None.
    """

    result: PeopleResult
    detections: Detections2D | None
    frames: np.ndarray | None = None
    primary: int | None = None
    run_id: str | None = None


def save_people(path: str | Path, result: PeopleResult, detections: Detections2D, *,
                frames: np.ndarray | range | None = None, primary: int | None = None,
                run_id: str | None = None) -> None:  # fmt: skip
    """Write ``hands3d_people.npz`` atomically."""
    arrays = {k: getattr(result, k) for k in _RESULT}
    arrays.update({f"det_{k}": getattr(detections, k) for k in Detections2D.ARRAYS})
    arrays.update(cameras=np.array(detections.cameras), units=np.array(result.units),
                  n_frames=np.array(detections.n_frames))  # fmt: skip
    if detections.fps is not None:
        arrays["fps"] = np.array(float(detections.fps))
    if frames is not None:
        arrays["frames"] = np.asarray(list(frames), dtype=np.int64)
    if primary is not None:
        arrays["primary"] = np.array(int(primary))
    if run_id is not None:
        arrays["run_id"] = np.array(run_id)
    save_npz_atomic(path, **arrays)


def load_people(path: str | Path) -> PeopleFile:
    """Read ``hands3d_people.npz``; InputError naming the file if it is not one."""
    path = Path(path)
    with npz_errors(path, "hands3d_people"), np.load(path, allow_pickle=False) as d:
        res = PeopleResult(*(d[k] for k in _RESULT), units=str(d["units"]))
        fps = float(d["fps"]) if "fps" in d.files else None
        det = None
        if "det_body_px" in d.files:
            det = Detections2D(*(d[f"det_{k}"] for k in Detections2D.ARRAYS),
                               cameras=tuple(str(c) for c in d["cameras"]),
                               n_frames=int(d["n_frames"]), fps=fps)  # fmt: skip
        frames = d["frames"] if "frames" in d.files else None
        primary = int(d["primary"]) if "primary" in d.files else None
        run_id = str(d["run_id"]) if "run_id" in d.files else None
    return PeopleFile(res, det, frames, primary, run_id)
