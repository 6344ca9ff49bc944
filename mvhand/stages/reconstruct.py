"""The 3D stage: robust triangulation, then the constrained optimizer; and its output files.

``run_reconstruct`` is pure (arrays in, arrays out); ``write_reconstruction`` writes the files
``mvhand triangulate`` and ``mvhand run`` produce: ``hands3d.npz``, ``hands3d.csv``,
``config.toml`` and ``report.json``.
"""

from __future__ import annotations

import json
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
from mvhand.io.atomic import write_text_atomic
from mvhand.io.results import save_hands3d, save_hands3d_csv


@dataclass(frozen=True)
class ReconstructConfig:
    """Settings of the 3D stage (the ``[reconstruct]`` section of a pipeline config)."""

    triangulation: TriangulationConfig = param(TriangulationConfig(), "robust triangulation")
    optimizer: OptimizerConfig = param(OptimizerConfig(), "constrained spatiotemporal optimizer")


@dataclass(frozen=True, eq=False)
class ReconstructResult:
    """What the 3D stage produced.

    Attributes:
        hands3d: the final 3D hands (optimized when the optimizer is enabled).
        triangulated: the robust triangulation before optimization.
        swapped: ``(C, T)`` views whose left/right hands were swapped by the repair.
        timings_s: seconds per step.
        bone_lengths: ``(H, 20)`` per-hand bone lengths (optimizer's, else medians).
    """

    hands3d: Hands3D
    triangulated: Hands3D
    swapped: np.ndarray
    timings_s: dict[str, float]
    bone_lengths: np.ndarray


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
    triangulated = Hands3D(tri.points3d, tri.reprojection_error_px, tri.n_views, tri.score,
                           rig.units, kp.hands)  # fmt: skip
    timings = {"triangulation": t1 - t0}
    if cfg.optimizer.enabled:
        opt = optimize(rig, tri.keypoints_px, tri.scores, tri.points3d, tri.inliers,
                       cfg.optimizer, fps=kp.fps)  # fmt: skip
        timings["optimization"] = time.perf_counter() - t1
        final = Hands3D(opt.points3d, opt.reprojection_error_px, opt.n_views, opt.score,
                        rig.units, kp.hands)  # fmt: skip
        lengths = np.asarray(opt.bone_lengths, dtype=float)
    else:
        final = triangulated
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a hand never seen: NaN lengths
            lengths = np.nanmedian(bone_lengths(tri.points3d), axis=0)
    return ReconstructResult(final, triangulated, tri.swapped, timings, lengths)


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
        "swapped_views": int(result.swapped.sum()),
        "timings_s": {k: round(v, 4) for k, v in result.timings_s.items()},
    }


def write_reconstruction(out_dir: str | Path, result: ReconstructResult, config_toml: str,
                         extra_report: dict[str, Any] | None = None,
                         fps: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Write hands3d.npz, hands3d.csv, config.toml and report.json into ``out_dir``.

    Returns:
        The report that was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_hands3d(out / "hands3d.npz", result.hands3d, fps)
    save_hands3d_csv(out / "hands3d.csv", result.hands3d)
    write_text_atomic(out / "config.toml", config_toml)
    report = {"reconstruction": reconstruction_report(result), **(extra_report or {})}
    write_text_atomic(out / "report.json", json.dumps(report, indent=2, default=_json_default))
    return report


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


__all__ = [
    "ReconstructConfig",
    "ReconstructResult",
    "match_cameras",
    "reconstruction_report",
    "run_reconstruct",
    "write_reconstruction",
]
