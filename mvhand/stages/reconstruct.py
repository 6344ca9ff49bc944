"""The 3D stage: robust triangulation, then the constrained optimizer (pure: arrays in, arrays
out). The run folder (:mod:`mvhand.io.runfolder`) writes its results."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.config import param
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.optimize import OptimizerConfig, optimize
from mvhand.core.skeleton import BONES, bone_lengths, bone_name
from mvhand.core.triangulate import TriangulationConfig, triangulate
from mvhand.errors import InputError


@dataclass(frozen=True)
class ReconstructConfig:
    """Settings of the 3D stage (the ``[reconstruct]`` section of a pipeline config)."""

    triangulation: TriangulationConfig = param(TriangulationConfig(), "robust triangulation")
    optimizer: OptimizerConfig = param(OptimizerConfig(), "constrained spatiotemporal optimizer")


@dataclass(frozen=True, eq=False)
class ReconstructResult:
    """What the 3D stage produced.

    Attributes:
        hands3d: the final 3D hands (optimized when the optimizer is enabled), with the
            repaired 2D and inlier views in ``hands3d.views`` and ``bone_lengths``.
        triangulated: the robust triangulation before optimization.
        timings_s: seconds per step.
    """

    hands3d: Hands3D
    triangulated: Hands3D
    timings_s: dict[str, float]


def match_cameras(kp: Keypoints2D, rig: Rig, kp_source: str | Path | None = None) -> Rig:
    """The rig's cameras in the keypoint file's order; InputError if a name is unknown."""
    unknown = [c for c in kp.cameras if c not in rig.names]
    if unknown:
        raise InputError(
            f"camera(s) {', '.join(unknown)} are not in the calibration "
            f"(it has: {', '.join(rig.names)}); rename them or use a matching calibration",
            kp_source,
        )
    return rig.subset(kp.cameras)


def run_reconstruct(kp: Keypoints2D, rig: Rig, cfg: ReconstructConfig = ReconstructConfig()
                    ) -> ReconstructResult:  # fmt: skip
    """Triangulate and optimize every hand in ``kp``.

    Args:
        kp: 2D keypoints ``(C, T, H, 21, 2)``; its cameras must be in ``rig`` (any order).
        rig: the calibration; 3D output is in ``rig.units``.
        cfg: the stage's settings.
    """
    rig = match_cameras(kp, rig)
    t0 = time.perf_counter()
    tri = triangulate(rig, kp, cfg.triangulation)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a hand never seen: NaN lengths
        tri = tri.replace(bone_lengths=np.nanmedian(bone_lengths(tri.keypoints3d), axis=0))
    timings = {"triangulation": t1 - t0}
    final = tri
    if cfg.optimizer.enabled:
        final = optimize(rig, tri, cfg.optimizer, fps=kp.fps)
        timings["optimization"] = time.perf_counter() - t1
    return ReconstructResult(final, tri, timings)


def _nan_stat(fn, values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(fn(values)) if values.size else None


def reconstruction_report(result: ReconstructResult) -> dict[str, Any]:
    """Per-hand completeness, median reprojection error and bone-length spread."""
    h3 = result.hands3d
    hands: dict[str, Any] = {}
    lengths = bone_lengths(h3.keypoints3d)  # (T, H, 20)
    for h, name in enumerate(h3.hands):
        valid = h3.valid[:, h]
        spread = {}
        for b in range(len(BONES)):
            lb = lengths[:, h, b]
            med = _nan_stat(np.median, lb)
            if med:
                spread[bone_name(b)] = {
                    "median": med,
                    "iqr_relative": _nan_stat(lambda v: np.subtract(*np.percentile(v, [75, 25])),
                                              lb) / med,  # fmt: skip
                }
        hands[name] = {
            "frames_complete": int(valid.all(axis=1).sum()),
            "frames_any_joint": int(valid.any(axis=1).sum()),
            "completeness": float(valid.mean()) if valid.size else 0.0,
            "median_reprojection_error_px": _nan_stat(np.median, h3.reprojection_error_px[:, h]),
            "median_views": _nan_stat(np.median, h3.n_views[:, h][valid].astype(float)),
            "bone_length_spread": spread,
        }
    both = h3.valid.any(axis=2).all(axis=1)
    return {
        "units": h3.units,
        "frames": int(h3.keypoints3d.shape[0]),
        "frames_with_both_hands": int(both.sum()),
        "hands": hands,
        "swapped_views": int(h3.views.swapped.sum()) if h3.views is not None else 0,
        "timings_s": {k: round(v, 4) for k, v in result.timings_s.items()},
    }


__all__ = [
    "ReconstructConfig",
    "ReconstructResult",
    "match_cameras",
    "reconstruction_report",
    "run_reconstruct",
]
