"""Constrained spatiotemporal optimization of triangulated hands over whole sequences.

Per hand, the joint trajectories ``x`` (T, 21, 3) minimise a sum of squared residuals, each
measured against a stated noise model, so that the weights mean the same on any rig and
detector:

- reprojection, in noise standard deviations: ``f_c * (pi(R_c x + t_c) - u) / sigma`` for
  each inlier view ``c`` of the triangulation, ``sigma = sigma_c,g / sqrt(score)`` with
  ``sigma_c,g`` the 2D noise of camera ``c`` and joint group ``g`` estimated from the data
  (:func:`estimate_noise_px`: robust scale of the triangulation's residuals, corrected for the
  degrees of freedom it used), through a robust loss (soft-L1 or Huber, ``loss_scale``
  standard deviations); ``u`` is the detection undistorted once into normalized coordinates
  (residuals and their Jacobian are cheap and analytic);
- temporal smoothness: each joint's per-frame acceleration (or velocity) in units of a
  reference motion (1000 mm/s^2, or 100 mm/s), so the weight means the same at any frame rate;
  the weight adapts to each hand's measured, noise-corrected RMS motion in the initial 3D
  (``(reference / motion) ** smoothness_adaptivity``: slow hands are smoothed hard, fast ones
  lightly);
- bone lengths: ``(|x_child - x_parent| - L_b) / bone_sigma_mm`` with ``L`` (20,) shared by
  the whole sequence and re-estimated after every step as the median of the current
  per-frame lengths; ``bone_sigma_mm`` is how much a detected bone's length varies on a real
  hand (the 2D model's joint placement moves with pose), robust beyond ``bone_robust_mm``;
- shape consistency (the paper's term, optional), mm: the wrist-centred hand minus the
  previous frame's wrist-centred hand rotated onto it by Procrustes;
- joint-angle limits (optional), mm: how far each finger's PIP and DIP joint bends past a
  hyperextension or sideways limit, as the sine of the excess angle times the distal bone length.

The smoothness and bone weights are then chosen per hand by cross-validation over cameras
(:func:`camera_folds`: leave one camera out with 3-7 cameras, alternate halves with 8 or
more) on a stretch of ``cv_frames`` frames; the chosen weights and held-out errors go into the
result's ``info``.

Each window is solved by Levenberg-Marquardt (:func:`levenberg_marquardt`, the one LM core in
mvhand) with IRLS weights for the robust losses. The normal matrix is sparse with a pattern
fixed per window; each step is solved by conjugate gradients preconditioned with the exact
banded solve of every joint's own trajectory, so memory and time grow linearly with the
window. Long sequences are cut into windows that overlap and are blended over the overlap.
A non-finite cost or step raises :class:`mvhand.errors.NumericalError` naming the weights.

Modules: ``config`` (settings), ``noise`` (noise model), ``residuals`` (terms), ``bones``
(shared lengths), ``gaps`` (bridged joints, windows), ``problem`` (one window's problem),
``solver`` (LM core, CG), ``crossval`` (weight selection), ``sequence`` (the entry point).
"""

from mvhand.core.optimize.config import MAX_WEIGHT, OptimizerConfig
from mvhand.core.optimize.crossval import camera_folds
from mvhand.core.optimize.noise import (
                                        JOINT_GROUPS,
                                        estimate_noise_px,
                                        motion_scale,
                                        smoothness_weight,  # fmt: skip
)
from mvhand.core.optimize.residuals import angle_rows as angle_limit_residuals
from mvhand.core.optimize.residuals import shape_rows as shape_residuals
from mvhand.core.optimize.sequence import HandObjective, hand_objective, optimize
from mvhand.core.optimize.solver import Damping, LMResult, levenberg_marquardt

__all__ = [
    "JOINT_GROUPS", "MAX_WEIGHT", "Damping", "HandObjective", "LMResult", "OptimizerConfig",
    "angle_limit_residuals", "camera_folds", "estimate_noise_px", "hand_objective",
    "levenberg_marquardt", "motion_scale", "optimize", "shape_residuals", "smoothness_weight",
]  # fmt: skip
