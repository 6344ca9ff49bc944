"""The optimizer's noise model, estimated from the data.

- 2D: each view's detection of a joint is off by Gaussian noise of ``sigma / sqrt(score)`` px
  per axis; ``sigma`` is estimated per camera and joint group (wrist, thumb, knuckles, middle
  joints, fingertips: a detector places them differently well) as the robust scale of the
  triangulation's inlier residuals, corrected for the degrees of freedom the triangulation
  used (a point fitted to n views leaves 2n - 3 of the 2n residual dimensions).
- Motion: each hand's noise-corrected RMS acceleration (velocity) in the initial 3D sets the
  scale of the smoothness prior (:func:`smoothness_weight`).
"""

from __future__ import annotations

import numpy as np

from mvhand.core.metrics import reprojection_errors
from mvhand.core.optimize.config import OptimizerConfig

#: Joint groups with their own 2D noise: wrist, thumb, finger MCPs, PIP/DIP joints, tips.
JOINT_GROUPS: dict[str, tuple[int, ...]] = {
    "wrist": (0,),
    "thumb": (1, 2, 3, 4),
    "knuckles": (5, 9, 13, 17),
    "middle_joints": (6, 7, 10, 11, 14, 15, 18, 19),
    "tips": (8, 12, 16, 20),
}
#: Residuals a camera and joint group need for their own noise estimate (else the camera's,
#: else noise_px).
MIN_RESIDUALS = 30
#: Median of the distance |e| of 2D Gaussian noise with sigma 1 per axis: sqrt(2 ln 2).
_RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))
#: Frame rate assumed when none is given (frames per second).
REFERENCE_FPS = 30.0
#: Lag (frames) at which motion is told from noise when estimating the motion scale.
MOTION_LAG = 5
#: Reference velocity (mm/s) and acceleration (mm/s^2) in which smoothness is measured.
REFERENCE_MOTION = (100.0, 1000.0)
#: Smallest measured motion, as a fraction of the reference: a static hand gets a strong but
#: finite smoothness weight.
MIN_MOTION_FRACTION = 0.01


def estimate_noise_px(rig, points3d: np.ndarray, keypoints_px: np.ndarray, scores: np.ndarray,
                      inliers: np.ndarray, cfg: OptimizerConfig) -> np.ndarray:  # fmt: skip
    """2D noise ``sigma`` (px per axis at score 1) per camera and joint, ``(C, 21)``.

    Args:
        rig: cameras in the units of ``points3d``, in the order of axis C.
        points3d: ``(T, H, 21, 3)`` the triangulation.
        keypoints_px: ``(C, T, H, 21, 2)``; scores, inliers: ``(C, T, H, 21)``.
        cfg: ``noise_model``, ``noise_px`` (fixed value and fallback), ``min_noise_px``.

    Example:
        >>> from mvhand.core import synthetic
        >>> from mvhand.core.data import Keypoints2D
        >>> from mvhand.core.triangulate import triangulate
        >>> rig = synthetic.make_or_rig(6)
        >>> kp = rig.project(synthetic.make_hand_motion(30))
        >>> kp = kp + np.random.default_rng(0).normal(0, 1.5, kp.shape)
        >>> tri = triangulate(rig, Keypoints2D(kp, np.ones(kp.shape[:-1]), rig.names))
        >>> v = tri.views
        >>> sigma = estimate_noise_px(rig, tri.keypoints3d, v.keypoints.keypoints_px,
        ...                           v.keypoints.scores, v.inliers, OptimizerConfig())
        >>> bool(np.all(np.abs(sigma - 1.5) < 0.35))  # 60 residuals per wrist: +-20 %
        True
    """
    C = keypoints_px.shape[0]
    if cfg.noise_model == "fixed":
        return np.full((C, 21), cfg.noise_px)
    err = reprojection_errors(rig, points3d, keypoints_px)  # (C, T, H, J), inf/NaN: unusable
    n = inliers.sum(axis=0)  # views each point was fitted to
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(n >= 2, np.sqrt(2.0 * n / np.maximum(2.0 * n - 3.0, 1.0)), np.nan)
    with np.errstate(invalid="ignore"):  # inf (no 3D) times 0 (no 2D)
        scaled = err * np.sqrt(np.clip(scores, 0.0, None)) * dof[None]
    use = inliers & np.isfinite(scaled) & (scores > 0)
    sigma = np.full((C, 21), cfg.noise_px)
    for c in range(C):
        cam = scaled[c][use[c]]
        if cam.size >= MIN_RESIDUALS:
            sigma[c] = np.median(cam) / _RAYLEIGH_MEDIAN
        for joints in JOINT_GROUPS.values():
            j = list(joints)
            grp = scaled[c][..., j][use[c][..., j]]
            if grp.size >= MIN_RESIDUALS:
                sigma[c, j] = np.median(grp) / _RAYLEIGH_MEDIAN
    return np.maximum(sigma, cfg.min_noise_px)


def noise_table(sigma: np.ndarray, cameras: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``{camera: {joint group: sigma px}}`` for reports."""
    return {cam: {g: round(float(sigma[c, j[0]]), 3) for g, j in JOINT_GROUPS.items()}
            for c, cam in enumerate(cameras)}  # fmt: skip


def motion_scale(x: np.ndarray, order: int, lag: int = MOTION_LAG) -> float:
    """Noise-corrected RMS velocity (order 1) or acceleration (order 2) of the joints.

    The ``order``-th difference at ``lag`` frames grows as ``lag ** order`` for smooth motion,
    while white noise and isolated outliers contribute the same at every lag; the difference of
    the mean squares at ``lag`` and at 1 therefore isolates the motion.

    Args:
        x: ``(T, J, 3)`` joints (mm), NaN where missing.
        order: 1 or 2.

    Returns:
        The RMS motion in mm per frame (order 1) or per frame squared (order 2); 0 if the
        sequence is too short or too noisy to tell.
    """

    def mean_square(k: int) -> tuple[float, int]:
        if len(x) <= order * k:
            return 0.0, 0
        d = (
            x[order * k :] - x[: len(x) - order * k]
            if order == 1
            else (x[2 * k :] - 2 * x[k : len(x) - k] + x[: len(x) - 2 * k])
        )
        d = d[np.isfinite(d)]
        return (float(np.mean(d * d)), d.size) if d.size else (0.0, 0)

    v1, n1 = mean_square(1)
    vk, nk = mean_square(lag)
    if n1 == 0 or nk == 0:
        return 0.0
    return float(np.sqrt(max(vk - v1, 0.0) / (lag ** (2 * order) - 1)))


def smoothness_weight(x: np.ndarray, cfg: OptimizerConfig, fps: float) -> tuple[float, float]:
    """Weight of squared per-frame differences (per mm^2, in reprojection noise units) and the
    measured motion.

    A hand moving at the reference rate (1000 mm/s^2 or 100 mm/s) gets ``w_smoothness`` per
    squared reference unit; slower hands more, by ``(reference / motion) ** adaptivity``.

    Args:
        x: ``(T, J, 3)`` initial joints, mm, NaN where missing.

    Returns:
        The weight, and the hand's RMS acceleration (mm/s^2) or velocity (mm/s).
    """
    order = 1 if cfg.smoothness == "velocity" else 2
    ref = REFERENCE_MOTION[order - 1] / fps**order  # mm per frame (squared)
    motion = max(motion_scale(x, order), MIN_MOTION_FRACTION * ref)
    weight = cfg.w_smoothness * (ref / motion) ** cfg.smoothness_adaptivity
    return weight / ref**2, motion * fps**order
