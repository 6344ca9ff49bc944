"""``report.json``, assembled in one place, and the warnings that go into it.

Every warning mvhand logs while a command runs (``logging.warning`` anywhere under the
``mvhand`` logger) is collected by :func:`collect_warnings` and written to the report's
``warnings`` list, so what the console showed and what the report says are the same.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D
from mvhand.core.triangulate import reprojection_errors
from mvhand.stages.reconstruct import ReconstructResult, reconstruction_report

log = logging.getLogger(__name__)

#: A camera whose median reprojection error exceeds this multiple of the other cameras'
#: median (and ``_BAD_CAMERA_MIN_PX``) is reported as inconsistent.
_BAD_CAMERA_RATIO = 3.0
_BAD_CAMERA_MIN_PX = 5.0
#: ... or whose share of rejected views exceeds this and this multiple of the others'.
_BAD_CAMERA_OUTLIERS = 0.3


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg not in self.messages:
            self.messages.append(msg)


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the messages of every warning logged under ``mvhand`` inside the block."""
    handler = _Collector()
    root = logging.getLogger("mvhand")
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


def camera_consistency(hands3d: Hands3D, rig: Rig) -> dict[str, dict[str, Any]]:
    """Per camera: median reprojection error of its inlier views and the share of its detected
    views (of reconstructed joints) that the triangulation rejected as outliers.

    A wrong camera (a swapped name, a bad translation) shows as one camera far worse than the
    rest; RANSAC would otherwise drop it silently and the report would look better.
    """
    v = hands3d.views
    if v is None:
        return {}
    rig = rig.subset(v.cameras)
    err = reprojection_errors(rig, hands3d.keypoints3d, v.keypoints.keypoints_px)  # (C,T,H,J)
    detected = np.isfinite(v.keypoints.keypoints_px).all(-1) & (v.keypoints.scores > 0)
    detected &= hands3d.valid[None]
    out = {}
    for c, cam in enumerate(v.cameras):
        used = err[c][v.inliers[c] & np.isfinite(err[c])]
        n_det = int(detected[c].sum())
        rejected = int((detected[c] & ~v.inliers[c]).sum())
        out[cam] = {
            "median_reprojection_error_px": float(np.median(used)) if used.size else None,
            "views": n_det,
            "rejected_share": rejected / n_det if n_det else None,
            "swapped_frames": int(v.swapped[c].sum()),
        }
    return out


def consistency_warnings(per_camera: dict[str, dict[str, Any]]) -> list[str]:
    """Warnings for cameras far worse than the others."""
    out = []
    for cam, d in per_camera.items():
        others = [o for k, o in per_camera.items() if k != cam]
        err = d["median_reprojection_error_px"]
        errs = [o["median_reprojection_error_px"] for o in others
                if o["median_reprojection_error_px"] is not None]  # fmt: skip
        if err is not None and errs:
            ref = float(np.median(errs))
            if err > max(_BAD_CAMERA_RATIO * ref, _BAD_CAMERA_MIN_PX):
                out.append(f"camera '{cam}': median reprojection error {err:.1f} px against "
                           f"{ref:.1f} px for the other cameras; check its calibration and "
                           "that its video or keypoints belong to it")  # fmt: skip
        share = d["rejected_share"]
        shares = [o["rejected_share"] for o in others if o["rejected_share"] is not None]
        if share is not None and shares and d["views"] >= 20:
            ref = float(np.median(shares))
            if share > _BAD_CAMERA_OUTLIERS and share > _BAD_CAMERA_RATIO * max(ref, 0.02):
                out.append(f"camera '{cam}': {100 * share:.0f} % of its views were rejected as "
                           f"outliers against {100 * ref:.0f} % for the other cameras; check "
                           "its calibration and camera name")  # fmt: skip
    return out


def empty_result_reason(hands3d: Hands3D, min_score: float) -> str | None:
    """Why nothing was reconstructed (None if something was)."""
    if hands3d.valid.any():
        return None
    v = hands3d.views
    if v is None:
        return "no joint was reconstructed"
    kp = v.keypoints
    coords = np.isfinite(kp.keypoints_px).all(-1)
    usable = coords & (kp.scores >= min_score) & (kp.scores > 0)
    if kp.n_cameras < 2:
        return f"3D needs at least two cameras, the keypoints have {kp.n_cameras}"
    if not coords.any():
        return "the 2D keypoints are all missing (NaN)"
    if not usable.any():
        return (f"{int(coords.sum())} 2D joints have coordinates but none has a score of at "
                f"least {min_score} (scores NaN, negative or zero count as 0)")  # fmt: skip
    if not (usable.sum(0) >= 2).any():
        return "no joint is seen by two cameras in the same frame"
    return ("no joint has two views that agree (every view was rejected as an outlier): check "
            "the calibration, its units and the camera names")  # fmt: skip


def reconstruction_section(rec: ReconstructResult, rig: Rig) -> tuple[dict, list[str]]:
    """The 3D part of the report and its consistency warnings."""
    section = reconstruction_report(rec)
    per_camera = camera_consistency(rec.hands3d, rig)
    section["cameras"] = per_camera
    if rec.hands3d.info:
        section["optimizer"] = _without_cost_histories(rec.hands3d.info)
    return section, consistency_warnings(per_camera)


def _without_cost_histories(info: Any) -> Any:
    """The optimizer's diagnostics without each window's per-iteration costs (long runs)."""
    if isinstance(info, dict):
        return {k: _without_cost_histories(v) for k, v in info.items() if k != "costs"}
    if isinstance(info, list):
        return [_without_cost_histories(v) for v in info]
    return info


def assemble(warnings: list[str], **sections: Any) -> dict[str, Any]:
    """The report: ``warnings``, then the named sections (None ones left out); the run folder
    adds the ``run_id``."""
    report: dict[str, Any] = {"warnings": list(warnings)}
    report.update({k: v for k, v in sections.items() if v is not None})
    return report
