"""Constrained spatiotemporal optimization of triangulated hands over whole sequences.

Per hand, the joint trajectories ``x`` (T, 21, 3) minimise a sum of squared residuals:

- reprojection, px: ``f_c * (pi(R_c x + t_c) - u)`` for each view ``c`` that sees the joint,
  with ``u`` the detection undistorted once into normalized coordinates (so residuals and their
  Jacobian are cheap and analytic) and ``f_c`` the camera's mean focal length, weighted by
  ``w_reprojection * score`` and passed through a robust loss (soft-L1 or Huber, scale in px);
- temporal smoothness: each joint's per-frame acceleration (or velocity) in units of a
  reference motion (1000 mm/s^2, or 100 mm/s), so the weight means the same at any frame rate;
  the weight adapts to each hand's noise-corrected RMS motion in the initial 3D
  (``(reference / motion) ** smoothness_adaptivity``): slow hands are smoothed hard, fast ones
  lightly, which beats any fixed weight on both; with 8 or more cameras the weight is then
  scaled by the power of 4 that best predicts held-out cameras (``smoothness_selection``),
  which also copes with temporally correlated detector jitter that looks like motion;
- bone lengths, mm: ``|x_child - x_parent| - L_b`` with ``L`` (20,) shared by the whole
  sequence and re-estimated after every step as the median of the current per-frame lengths
  (robust to badly placed frames);
- shape consistency (the paper's term, optional: off by default, it doubles the time), mm: the
  wrist-centred hand minus the previous frame's wrist-centred hand rotated onto it by
  Procrustes (rotation invariant; the rotation is the exact minimiser, so holding it fixed
  in the Jacobian gives the exact gradient);
- joint-angle limits (optional), mm: how far each finger's PIP and DIP joint bends past a
  hyperextension or sideways limit, as the sine of the excess angle times the distal bone length.

Residuals in mm and px are commensurate: 1 mm at 1.6 m with a 1900 px focal length is about
1.2 px in each view. Internally everything is in millimetres, so results do not depend on the
rig's units.

Each window is solved by Levenberg-Marquardt with IRLS weights for the robust loss. The
normal matrix is sparse with a pattern fixed per window (built once); each step is solved by
conjugate gradients preconditioned with the exact banded solve of every joint's own trajectory
(reprojection and smoothness), so only the couplings between joints (bones, shape, angles) are
left to the iterations: memory and time grow linearly with the window, never a dense solve.
Long sequences are cut into windows that overlap and are blended linearly over the overlap.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded
from scipy.sparse import csr_matrix

from mvhand.config import param
from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.skeleton import BONES, FINGER_JOINTS, N_JOINTS
from mvhand.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Frame rate assumed when none is given (frames per second).
REFERENCE_FPS = 30.0
#: Lag (frames) at which motion is told from noise when estimating the motion scale.
_MOTION_LAG = 5
#: Reference velocity (mm/s) and acceleration (mm/s^2) in which smoothness is measured.
_REFERENCE_MOTION = (100.0, 1000.0)
#: Smallest measured motion, as a fraction of the reference: a static hand gets a strong but
#: finite smoothness weight.
_MIN_MOTION_FRACTION = 0.01
_NV = 3 * N_JOINTS  # variables per frame
_MM_PER_M = 1000.0
#: Conjugate-gradient stopping: relative residual and iteration cap per step (inexact
#: Gauss-Newton steps converge as well and cost a fraction of exact ones).
_CG_TOL = 1e-4
_CG_MAX_ITER = 200


@dataclass(frozen=True)
class OptimizerConfig:
    """Settings of the spatiotemporal hand optimizer (weights are relative to reprojection)."""

    enabled: bool = param(True, "Run the optimizer after triangulation.")
    loss: str = param(
        "soft_l1",
        "Robust loss on reprojection residuals: soft_l1, huber, or linear (plain least squares).",
        choices=("soft_l1", "huber", "linear"),
    )
    loss_scale_px: float = param(
        8.0, "Reprojection error (px) beyond which the robust loss grows sub-quadratically.", gt=0
    )
    w_reprojection: float = param(
        1.0, "Weight of squared score-weighted reprojection errors (px^2).", ge=0
    )
    w_smoothness: float = param(
        16.0,
        "Weight of each joint's squared acceleration (velocity) in units of 1000 mm/s^2 "
        "(100 mm/s), for a hand that moves at that reference rate; see smoothness_adaptivity.",
        ge=0,
    )
    smoothness_adaptivity: float = param(
        1.5,
        "Exponent p: the smoothness weight is multiplied by (reference / measured motion)^p, "
        "the motion being each hand's noise-corrected RMS acceleration (velocity) in the "
        "initial 3D, so slow hands are smoothed hard and fast ones lightly; 0 = fixed weight.",
        ge=0, le=4,
    )  # fmt: skip
    smoothness_robust_limit: float = param(
        0.0,
        "Robust smoothness: a joint's acceleration (velocity) above this many reference units "
        "(1000 mm/s^2, 100 mm/s) is penalised linearly instead of quadratically, so sudden real "
        "movements survive while jitter is still smoothed; 0 = plain quadratic smoothness.",
        ge=0,
    )
    smoothness_selection: str = param(
        "cross_validation",
        "How the smoothness weight is chosen per hand: 'fixed' uses w_smoothness (times the "
        "motion adaptation); 'cross_validation' multiplies it by the power of 4 whose fit on "
        "one half of the cameras best predicts the detections in the other half (used when 8 or "
        "more cameras see the hand; about 2.5x the optimizer's time).",
        choices=("fixed", "cross_validation"),
    )
    smoothness: str = param(
        "acceleration",
        "Temporal smoothness on the first (velocity) or second (acceleration) frame difference.",
        choices=("velocity", "acceleration"),
    )
    w_bone: float = param(
        30.0,
        "Weight of squared deviations (mm^2) of each bone from its length, one length per bone "
        "and hand shared by the whole sequence.",
        ge=0,
    )
    bone_robust_mm: float = param(
        0.0,
        "Robust bone term: deviations from the shared length beyond this (mm) are penalised "
        "linearly, tolerating detectors whose joint placement shifts with pose; 0 = quadratic.",
        ge=0,
    )
    w_shape: float = param(
        0.0,
        "Weight of the paper's rotation-invariant shape term: squared change (mm^2) of the "
        "wrist-centred hand from the previous frame after Procrustes alignment.",
        ge=0,
    )
    w_angle_limits: float = param(
        0.0,
        "Weight of squared distances (mm^2) by which a finger's PIP/DIP joint bends past "
        "max_hyperextension_deg or max_sideways_deg (thumb excluded).",
        ge=0,
    )
    max_hyperextension_deg: float = param(
        10.0, "Backward bending of PIP/DIP joints allowed before the angle term acts (degrees).",
        ge=0, le=90,
    )  # fmt: skip
    max_sideways_deg: float = param(
        30.0, "Sideways bending of PIP/DIP joints allowed before the angle term acts (degrees).",
        ge=0, le=90,
    )  # fmt: skip
    window: int = param(300, "Frames per optimization window; memory grows linearly with it.", ge=3)
    overlap: int = param(
        30, "Frames shared by consecutive windows, blended linearly; must be < window.", ge=0
    )
    max_iterations: int = param(15, "Levenberg-Marquardt iterations per window at most.", ge=1)
    tolerance: float = param(
        1e-4, "Stop when an iteration lowers the cost by less than this fraction.", gt=0
    )
    max_gap_frames: int = param(
        10,
        "Joints missing for at most this many consecutive frames are bridged by smoothness and "
        "bones; longer gaps, and gaps at the ends of the sequence, stay NaN.",
        ge=0,
    )

    def __post_init__(self) -> None:
        if self.overlap >= self.window:
            raise ConfigError(
                f"optimizer 'overlap' ({self.overlap}) must be smaller than 'window' "
                f"({self.window}) frames"
            )


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    """Optimized hands.

    Attributes:
        points3d: ``(T, H, J, 3)`` joints in the rig's units, NaN where not reconstructed.
        bone_lengths: ``(H, 20)`` bone lengths in the rig's units (order of ``BONES``).
        reprojection_error_px: ``(T, H, J)`` mean distance (px, with lens distortion) between the
            projection and the detection over the views used; NaN where no view was used.
        n_views: ``(T, H, J)`` number of views used (0 for bridged or missing joints).
        score: ``(T, H, J)`` mean detection score over the views used (0 where none).
        info: per hand ``"hands"``: list of dicts with ``iterations``, ``final_cost`` and
            ``seconds`` per window; ``"seconds"``: total wall time.
    """

    points3d: np.ndarray
    bone_lengths: np.ndarray
    reprojection_error_px: np.ndarray
    n_views: np.ndarray
    score: np.ndarray
    info: dict = field(default_factory=dict)


def optimize(rig: Rig, keypoints_px: np.ndarray, scores: np.ndarray,
             init_points3d: np.ndarray, inliers: np.ndarray | None,
             cfg: OptimizerConfig = OptimizerConfig(),
             fps: float | None = None) -> OptimizationResult:  # fmt: skip
    """Refine triangulated hands over the whole sequence.

    Args:
        rig: the calibrated cameras; units "m", "cm" or "mm".
        keypoints_px: ``(C, T, H, 21, 2)`` detections in pixels (after any swap repair), NaN
            where missing.
        scores: ``(C, T, H, 21)`` detection confidences in [0, 1].
        init_points3d: ``(T, H, 21, 3)`` initial joints in the rig's units (the triangulation),
            NaN where not triangulated; only joints finite here, or inside gaps of at most
            ``cfg.max_gap_frames`` frames between finite ones, are reconstructed.
        inliers: ``(C, T, H, 21)`` bool, the views the triangulation kept; None uses every
            detected view (the robust loss then has to cope with outliers).
        cfg: weights and solver settings.
        fps: frame rate; the smoothness weight is defined at 30 fps and rescaled to ``fps``.
            None means 30.

    Returns:
        The optimized joints, bone lengths and per-joint statistics, in the rig's units.

    Raises:
        InputError: if array shapes do not match each other or the rig, or fps is not positive.

    Example:
        >>> from mvhand.core import synthetic
        >>> rig = synthetic.make_or_rig(6)
        >>> truth = synthetic.make_hand_motion(20, speed="static")
        >>> kp = rig.project(truth)
        >>> res = optimize(rig, kp, np.ones(kp.shape[:-1]), truth, None)
        >>> bool(np.abs(res.points3d - truth).max() < 5e-4)  # metres: the priors bend it a bit
        True
        >>> res = optimize(rig, kp, np.ones(kp.shape[:-1]), truth, None,
        ...                OptimizerConfig(w_smoothness=0.0, w_shape=0.0))
        >>> bool(np.abs(res.points3d - truth).max() < 1e-7)
        True
    """
    start = time.perf_counter()
    kp, sc, init, mask = _check_inputs(rig, keypoints_px, scores, init_points3d, inliers, fps)
    T, H = init.shape[:2]
    mm_per_unit = UNIT_SCALE_M[rig.units] * _MM_PER_M
    rig_mm = rig.to_units("mm")
    cams = _Cameras(
        R=np.stack([c.R_cam_world for c in rig_mm]),
        t=np.stack([c.t_cam_world for c in rig_mm]),
        f=rig_mm.focal_px,
    )
    obs = np.nan_to_num(rig.undistort(np.where(mask[..., None], kp, 0.0)))
    weight = np.where(mask, sc, 0.0) * cfg.w_reprojection
    fps = float(fps) if fps is not None else REFERENCE_FPS
    points = np.full((T, H, N_JOINTS, 3), np.nan)
    lengths = np.full((H, len(BONES)), np.nan)
    hand_info = []
    for h in range(H):
        hand = _HandData(obs[:, :, h], weight[:, :, h], 1.0 if h == 1 else -1.0)
        if cfg.enabled:
            x0 = init[:, h] * mm_per_unit
            cfg_h, selection = _select_smoothness(x0, hand, cams, cfg, fps)
            x, L, info = _optimize_hand(x0, hand, cams, cfg_h, fps)
            info = [{**w, "smoothness_selection": selection} for w in info]
            points[:, h], lengths[h] = x / mm_per_unit, L / mm_per_unit
        else:
            points[:, h], lengths[h], info = init[:, h], _initial_lengths(init[:, h]), []
        hand_info.append(info)
    err, n_views, mean_score = _view_statistics(rig, kp, sc, mask, points)
    info = {"hands": hand_info, "seconds": time.perf_counter() - start}
    return OptimizationResult(points, lengths, err, n_views, mean_score, info)


#: Powers of 4 tried as the smoothness weight's multiplier by cross-validation.
_CV_POWERS = (-3, 5)
#: Cameras that must see a hand for cross-validation; with fewer the weight stays fixed.
_CV_MIN_CAMERAS = 8
#: Frames (from the middle of the sequence) that cross-validation fits.
_CV_MAX_FRAMES = 150
#: Levenberg-Marquardt iterations of each cross-validation fit (without bones they converge
#: in two or three).
_CV_ITERATIONS = 3


def _camera_folds(weight: np.ndarray) -> list[np.ndarray]:
    """Held-out camera sets (C,) bool: alternate halves of the cameras that see the hand;
    none with fewer than ``_CV_MIN_CAMERAS`` (fits from few cameras judge the weight worse
    than the motion-adaptive default: measured on synthetic rigs of 4-8 cameras)."""
    seeing = np.flatnonzero((weight > 0).any(axis=(1, 2)))
    if len(seeing) < _CV_MIN_CAMERAS:
        return []
    C = weight.shape[0]
    return [np.isin(np.arange(C), g) for g in (seeing[0::2], seeing[1::2])]


def _held_out_error(x: np.ndarray, hand: _HandData, cams: _Cameras,
                    held: np.ndarray) -> np.ndarray:  # fmt: skip
    """Reprojection errors (px, normalized coordinates times focal) of joints ``x`` (T, J, 3)
    mm in the held-out cameras' observations."""
    c, t, j = np.nonzero((hand.weight > 0) & held[:, None, None])
    p = x[t, j]
    ok = np.isfinite(p).all(axis=1)
    c, t, j, p = c[ok], t[ok], j[ok], p[ok]
    pc = np.einsum("mab,mb->ma", cams.R[c], p) + cams.t[c]
    front = pc[:, 2] > 1e-6
    proj = pc[front, :2] / pc[front, 2:3]
    return cams.f[c[front]] * np.linalg.norm(proj - hand.obs[c[front], t[front], j[front]], axis=1)


def _select_smoothness(x0: np.ndarray, hand: _HandData, cams: _Cameras, cfg: OptimizerConfig,
                       fps: float) -> tuple[OptimizerConfig, dict]:  # fmt: skip
    """The config with the cross-validated smoothness weight for one hand, and the scores.

    Fits with one fold of cameras held out (smoothness and reprojection only, a few
    iterations) predict the held-out detections; the median error picks the multiplier 4^k,
    walking from k = 0 towards lower error. Held-out cameras' noise is independent of the
    fitted ones', so unlike the fit's own residuals this measures accuracy, and it adapts the
    weight to the data: hard smoothing for still hands, light for fast or bursty motion.
    """
    folds = _camera_folds(hand.weight)
    if cfg.smoothness_selection != "cross_validation" or cfg.w_smoothness == 0 or not folds:
        return cfg, {}
    quick = replace(cfg, w_bone=0.0, w_shape=0.0, w_angle_limits=0.0,
                    max_iterations=_CV_ITERATIONS, smoothness_selection="fixed")  # fmt: skip
    active, xb = _bridge_gaps(x0, cfg.max_gap_frames)
    # a stretch of frames from the middle of the sequence is enough to judge the weight
    n = min(len(x0), cfg.window, _CV_MAX_FRAMES)
    seg = slice((len(x0) - n) // 2, (len(x0) - n) // 2 + n)
    if not active[seg].any():
        return cfg, {}
    s2, _ = _smoothness_weight(x0, cfg, fps)
    lengths = _LengthState(_initial_lengths(x0), active[seg])
    xs, act = xb[seg], active[seg]
    test = _HandData(hand.obs[:, seg], hand.weight[:, seg], hand.sign)
    problems = []
    for held in folds:
        train = _HandData(test.obs, np.where(held[:, None, None], 0.0, test.weight), hand.sign)
        shared = problems[0].sparsity if problems else None
        problems.append(_Problem(train, act, cams, quick, s2, xs, lengths.initial, fps, shared))
    scores: dict[int, float] = {}

    def score(k: int) -> float:
        if k not in scores:
            errs = []
            for problem, held in zip(problems, folds, strict=True):
                problem.set_smoothness(s2 * 4.0**k)
                x, _, _ = _levenberg_marquardt(problem, xs, lengths)
                x[~act] = np.nan
                errs.append(_held_out_error(x, test, cams, held))
            e = np.concatenate(errs)
            scores[k] = float(np.median(e)) if e.size else np.inf
        return scores[k]

    k = 0
    for step in (1, -1):
        while _CV_POWERS[0] <= k + step <= _CV_POWERS[1] and score(k + step) < score(k):
            k += step
        if k != 0:
            break
    chosen = replace(cfg, w_smoothness=cfg.w_smoothness * 4.0**k)
    return chosen, {"multiplier": 4.0**k,
                    "held_out_median_px": {4.0**j: v for j, v in sorted(scores.items())}}


def _check_inputs(rig, keypoints_px, scores, init_points3d, inliers, fps):
    """Validate shapes; return float arrays and the mask of views to use (C, T, H, J)."""
    kp = np.asarray(keypoints_px, dtype=float)
    sc = np.asarray(scores, dtype=float)
    init = np.asarray(init_points3d, dtype=float)
    C = len(rig)
    if kp.ndim != 5 or kp.shape[0] != C or kp.shape[3:] != (N_JOINTS, 2):
        raise InputError(
            f"keypoints must have shape ({C} cameras of the rig, T, H, {N_JOINTS}, 2), "
            f"got {kp.shape}"
        )
    if sc.shape != kp.shape[:-1]:
        raise InputError(f"scores must have shape {kp.shape[:-1]}, got {sc.shape}")
    if init.shape != kp.shape[1:4] + (3,):
        raise InputError(f"initial 3D points must have shape {kp.shape[1:4] + (3,)}, got "
                         f"{init.shape}")  # fmt: skip
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    mask = np.isfinite(kp).all(-1) & np.isfinite(sc) & (sc > 0)
    if inliers is not None:
        inl = np.asarray(inliers)
        if inl.shape != sc.shape:
            raise InputError(f"inliers must have shape {sc.shape}, got {inl.shape}")
        mask &= inl.astype(bool)
    init = np.where(np.isfinite(init).all(-1, keepdims=True), init, np.nan)
    return kp, np.where(mask, sc, 0.0), init, mask


@dataclass(frozen=True)
class _Cameras:
    """Cameras in millimetres: R (C, 3, 3), t (C, 3) mm, mean focal length f (C,) px."""

    R: np.ndarray
    t: np.ndarray
    f: np.ndarray


@dataclass(frozen=True)
class _HandData:
    """One hand's observations: normalized undistorted obs (C, T, J, 2), weights (C, T, J)."""

    obs: np.ndarray
    weight: np.ndarray
    sign: float  # +1 right hand, -1 left (mirror image): the sign of finger flexion

    def frames(self, start: int, stop: int) -> _HandData:
        return _HandData(self.obs[:, start:stop], self.weight[:, start:stop], self.sign)


def _view_statistics(rig, kp, sc, mask, points):
    """Mean reprojection error (px, with distortion), views used and mean score per joint."""
    proj = rig.project(points)
    used = mask & np.isfinite(proj).all(-1)
    n_views = used.sum(0)
    err = np.where(used, np.linalg.norm(np.where(used[..., None], proj - kp, 0.0), axis=-1), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_err = np.where(n_views > 0, err.sum(0) / n_views, np.nan)
        mean_score = np.where(n_views > 0, np.where(used, sc, 0.0).sum(0) / n_views, 0.0)
    return mean_err, n_views.astype(np.int64), mean_score


def _initial_lengths(x: np.ndarray) -> np.ndarray:
    """Median length of each bone over the frames where both ends are finite (20,)."""
    d = np.linalg.norm(x[:, BONES[:, 1]] - x[:, BONES[:, 0]], axis=-1)
    out = np.full(len(BONES), np.nan)
    for b in range(len(BONES)):
        ok = np.isfinite(d[:, b])
        if ok.any():
            out[b] = np.median(d[ok, b])
    return out


def _bridge_gaps(x: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Joints to solve for and their initial values.

    Args:
        x: ``(T, J, 3)`` initial joints, NaN where missing.
        max_gap: longest run of missing frames to bridge.

    Returns:
        ``active`` (T, J) bool: finite joints plus interior gaps of at most ``max_gap`` frames;
        ``x0`` (T, J, 3): ``x`` with bridged gaps filled by linear interpolation, 0 elsewhere.
    """
    T, J, _ = x.shape
    anchored = np.isfinite(x).all(-1)
    active = anchored.copy()
    x0 = np.where(anchored[..., None], x, 0.0)
    frames = np.arange(T)
    for j in range(J):
        known = frames[anchored[:, j]]
        if len(known) < 2:
            continue
        gaps = np.diff(known) - 1
        for k in np.flatnonzero((gaps > 0) & (gaps <= max_gap)):
            active[known[k] + 1 : known[k + 1], j] = True
        fill = active[:, j] & ~anchored[:, j]
        for d in range(3):
            x0[fill, j, d] = np.interp(frames[fill], known, x[known, j, d])
    return active, x0


def _smoothness_weight(x: np.ndarray, cfg: OptimizerConfig, fps: float) -> tuple[float, float]:
    """Weight of squared per-frame differences (px^2 / mm^2) and the measured motion.

    Args:
        x: ``(T, J, 3)`` initial joints, mm, NaN where missing.

    Returns:
        The weight, and the hand's RMS acceleration (mm/s^2) or velocity (mm/s).
    """
    order = 1 if cfg.smoothness == "velocity" else 2
    ref = _REFERENCE_MOTION[order - 1] / fps**order  # mm per frame (squared)
    motion = max(_motion_scale(x, order), _MIN_MOTION_FRACTION * ref)
    weight = cfg.w_smoothness * (ref / motion) ** cfg.smoothness_adaptivity
    return weight / ref**2, motion * fps**order


def _motion_scale(x: np.ndarray, order: int, lag: int = _MOTION_LAG) -> float:
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


def _windows(T: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of windows of ``window`` frames overlapping by ``overlap``."""
    if T <= window:
        return [(0, T)]
    step = window - overlap
    out = []
    start = 0
    while True:
        stop = min(start + window, T)
        out.append((max(0, stop - window), stop))
        if stop == T:
            return out
        start += step


def _optimize_hand(x_init: np.ndarray, hand: _HandData, cams: _Cameras, cfg: OptimizerConfig,
                   fps: float) -> tuple[np.ndarray, np.ndarray, list[dict]]:  # fmt: skip
    """Optimize one hand window by window.

    Args:
        x_init: ``(T, J, 3)`` initial joints in mm, NaN where missing.
        hand: the hand's observations; cams: the cameras in mm.
        cfg: settings; fps: frame rate.

    Returns:
        ``(T, J, 3)`` joints in mm (NaN where not reconstructed), bone lengths (20,) mm, and
        one info dict per window.
    """
    T = x_init.shape[0]
    active, x0 = _bridge_gaps(x_init, cfg.max_gap_frames)
    out = np.full_like(x0, np.nan)
    lengths = _LengthState(_initial_lengths(x_init), active)
    smooth_s2, motion = _smoothness_weight(x_init, cfg, fps)
    if not active.any():
        return out, lengths.initial, []
    wins = _windows(T, cfg.window, cfg.overlap)
    infos, prev_stop = [], 0
    for k, (start, stop) in enumerate(wins):
        if prev_stop > start:  # warm start the overlap from the previous window
            x0[start:prev_stop] = out[start:prev_stop]
        t0 = time.perf_counter()
        x_win = x0[start:stop]
        problem = _Problem(hand.frames(start, stop), active[start:stop], cams, cfg, smooth_s2,
                           x_win, lengths.estimate(x_win, active[start:stop]), fps)  # fmt: skip
        x, costs, cg_its = _levenberg_marquardt(problem, x_win, lengths)
        infos.append({"frames": (start, stop), "iterations": len(costs) - 1, "motion": motion,
                      "final_cost": costs[-1], "costs": costs, "cg_iterations": cg_its,
                      "seconds": time.perf_counter() - t0})  # fmt: skip
        log.debug("optimizer window %d-%d: %d iterations, cost %.4g -> %.4g, %d CG iterations",
                  start, stop, len(costs) - 1, costs[0], costs[-1], cg_its)  # fmt: skip
        ramp = np.ones(stop - start)
        n_over = max(0, prev_stop - start)
        ramp[:n_over] = np.arange(1, n_over + 1) / (n_over + 1)
        prev = np.nan_to_num(out[start:stop])
        out[start:stop] = prev * (1 - ramp[:, None, None]) + x * ramp[:, None, None]
        keep = stop if k == len(wins) - 1 else wins[k + 1][0]
        lengths.commit(x[: keep - start], active[start:keep])
        prev_stop = stop
    out[~active] = np.nan
    return out, lengths.final(), infos


class _LengthState:
    """Bone lengths shared over the sequence, estimated window by window.

    Given the joints, each bone's length is the median of its per-frame lengths: robust to
    frames where a joint is badly placed. (The mean, the least-squares minimiser, lets a few
    stretched frames raise every frame's target length, and the bone term then stretches the
    whole sequence: on real detections that inflated hands by a third.) Lengths of finished
    windows are kept (20 floats per frame); frames of windows still to come count with the
    initial estimate (the median over the initial joints), so that every window sees the whole
    sequence.
    """

    def __init__(self, initial: np.ndarray, active: np.ndarray) -> None:
        self.initial = initial
        self.done: list[np.ndarray] = []  # per finished frame and bone, NaN where unused
        self.remaining = _frame_lengths(np.zeros(active.shape + (3,)), active)
        self.remaining = np.isfinite(self.remaining).sum(0).astype(float)

    def estimate(self, x: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Lengths (20,) mm for window joints ``x`` (T, J, 3) mm with mask ``active``."""
        d = _frame_lengths(x, active)
        future = np.maximum(self.remaining - np.isfinite(d).sum(0), 0.0)
        return _median_lengths(np.concatenate([*self.done, d]), self.initial, future)

    def commit(self, x: np.ndarray, active: np.ndarray) -> None:
        """Keep the lengths of finished frames ``x`` (T, J, 3) mm."""
        d = _frame_lengths(x, active)
        self.done.append(d)
        self.remaining -= np.isfinite(d).sum(0)

    def final(self) -> np.ndarray:
        if not self.done:
            return self.initial
        return _median_lengths(np.concatenate(self.done), self.initial, np.zeros(len(BONES)))


def _frame_lengths(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per-frame bone lengths (T, 20), NaN where a bone's ends are not both active."""
    ok = active[:, BONES[:, 0]] & active[:, BONES[:, 1]]
    d = np.linalg.norm(x[:, BONES[:, 1]] - x[:, BONES[:, 0]], axis=-1)
    return np.where(ok, d, np.nan)


def _median_lengths(d: np.ndarray, initial: np.ndarray, n_initial: np.ndarray) -> np.ndarray:
    """Per bone, the weighted median of the lengths ``d`` (T, 20) (weight 1 each) and of
    ``initial`` (weight ``n_initial``); ``initial`` where there is nothing."""
    if not np.any(n_initial > 0):  # one window (the usual case): a plain median per bone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # bones never seen: NaN
            med = np.nanmedian(d, axis=0) if len(d) else np.full(d.shape[1], np.nan)
        return np.where(np.isfinite(med), med, initial)
    out = initial.copy()
    for b in range(d.shape[1]):
        vals = d[np.isfinite(d[:, b]), b]
        w = np.ones(len(vals))
        if np.isfinite(initial[b]) and n_initial[b] > 0:
            vals, w = np.append(vals, initial[b]), np.append(w, n_initial[b])
        if len(vals) == 0:
            continue
        order = np.argsort(vals)
        cum = np.cumsum(w[order])
        out[b] = vals[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return out


def _var(t: np.ndarray, j: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Index of coordinate ``k`` of joint ``j`` in frame ``t`` (frame-major ordering)."""
    return (t * N_JOINTS + j) * 3 + k


@dataclass(frozen=True)
class _Observations:
    """The views used in one window, flattened: M observations.

    Attributes:
        point: (M,) index ``t * J + j`` of the observed joint.
        xy: (M, 2) undistorted normalized detection.
        weight: (M,) ``w_reprojection * score``.
        R: (M, 3, 3), t: (M, 3) mm, f: (M,) px: the observing camera.
    """

    point: np.ndarray
    xy: np.ndarray
    weight: np.ndarray
    R: np.ndarray
    t: np.ndarray
    f: np.ndarray

    @classmethod
    def build(cls, hand: _HandData, active: np.ndarray, cams: _Cameras) -> _Observations:
        use = (hand.weight > 0) & active[None]
        c, t, j = np.nonzero(use)
        return cls(t * N_JOINTS + j, hand.obs[c, t, j], hand.weight[c, t, j], cams.R[c],
                   cams.t[c], cams.f[c])  # fmt: skip


def _robust(s: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Robust loss ``rho(s)`` of squared scaled residuals ``s`` and its derivative."""
    if loss == "soft_l1":
        root = np.sqrt(1.0 + s)
        return 2.0 * (root - 1.0), 1.0 / root
    if loss == "huber":
        root = np.sqrt(np.maximum(s, 1.0))
        return np.where(s <= 1.0, s, 2.0 * root - 1.0), np.where(s <= 1.0, 1.0, 1.0 / root)
    return s, np.ones_like(s)


def _reprojection(x: np.ndarray, obs: _Observations, cfg: OptimizerConfig, jacobian: bool):
    """Robust reprojection cost (px^2) and, with ``jacobian``, its Gauss-Newton blocks.

    Args:
        x: ``(T, J, 3)`` joints, mm.

    Returns:
        ``cost``, or ``(cost, blocks (T * J, 3, 3), gradient (T * J, 3))``: the IRLS-weighted
        ``J^T J`` and ``J^T r`` of each joint summed over its views.
    """
    xp = x.reshape(-1, 3)[obs.point]
    pc = np.einsum("mab,mb->ma", obs.R, xp) + obs.t
    front = pc[:, 2] > 1e-6
    z = np.where(front, pc[:, 2], 1.0)
    proj = pc[:, :2] / z[:, None]
    e = np.where(front[:, None], obs.f[:, None] * (proj - obs.xy), 0.0)
    scale2 = cfg.loss_scale_px**2
    rho, drho = _robust(np.sum(e * e, axis=1) / scale2, cfg.loss)
    w = np.where(front, obs.weight, 0.0)
    cost = float(np.dot(w, rho)) * scale2
    if not jacobian:
        return cost
    # d(f * pi(R x + t)) / dx = f / z * (R[k] - pi_k * R[2]) for image axis k
    a = (obs.f / z)[:, None]
    jx = a * (obs.R[:, 0] - proj[:, 0:1] * obs.R[:, 2])
    jy = a * (obs.R[:, 1] - proj[:, 1:2] * obs.R[:, 2])
    ww = w * drho
    n_points = x.shape[0] * x.shape[1]
    blocks = np.empty((n_points, 3, 3))
    for k1 in range(3):
        for k2 in range(k1, 3):
            v = ww * (jx[:, k1] * jx[:, k2] + jy[:, k1] * jy[:, k2])
            blocks[:, k1, k2] = blocks[:, k2, k1] = np.bincount(obs.point, v, n_points)
    gv = ww[:, None] * (jx * e[:, :1] + jy * e[:, 1:])
    grad = np.stack([np.bincount(obs.point, gv[:, k], n_points) for k in range(3)], axis=1)
    return cost, blocks, grad


def _difference_operator(active: np.ndarray, cfg: OptimizerConfig) -> csr_matrix | None:
    """``D`` (3 m, n): the frame difference (velocity or acceleration) of every active joint.

    Rows come in triples (x, y, z) per frame and joint, so row ``3 i + k`` belongs to the
    ``i``-th (frame, joint) difference. The smoothness cost is ``s2 * |D x|^2`` (or its robust
    version), ``s2`` (px^2 / mm^2) from :func:`_smoothness_weight`.
    """
    if cfg.w_smoothness == 0:
        return None
    order = 1 if cfg.smoothness == "velocity" else 2
    stencil = np.array([-1.0, 1.0]) if order == 1 else np.array([1.0, -2.0, 1.0])
    T = active.shape[0]
    valid = np.ones((max(T - order, 0), N_JOINTS), bool)
    for i in range(order + 1):
        valid &= active[i : T - order + i]
    t, j = np.nonzero(valid)
    m = len(t)
    k = np.arange(3)
    rows = np.repeat((np.arange(m)[:, None] * 3 + k)[:, None, :], len(stencil), axis=1)
    cols = np.stack([_var(t[:, None] + a, j[:, None], k) for a in range(len(stencil))], axis=1)
    vals = np.broadcast_to(stencil[None, :, None], rows.shape)
    D = csr_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * m, T * _NV))
    D.sort_indices()
    return D


def _bone_rows(x: np.ndarray, L: np.ndarray, active: np.ndarray, sw: float):
    """Rows ``sw * (|x_child - x_parent| - L_b)`` for each frame and bone with both ends."""
    par, chi = BONES[:, 0], BONES[:, 1]
    t, b = np.nonzero(active[:, par] & active[:, chi])
    d = x[t, chi[b]] - x[t, par[b]]
    norm = np.linalg.norm(d, axis=-1)
    known = np.isfinite(L[b])
    res = np.where(known, sw * (norm - np.nan_to_num(L[b])), 0.0)
    unit = np.where(known[:, None], d / np.maximum(norm, 1e-9)[:, None], 0.0)
    k = np.arange(3)
    idx = np.concatenate([_var(t[:, None], chi[b, None], k), _var(t[:, None], par[b, None], k)],
                         axis=1)  # fmt: skip
    return res, idx, sw * np.concatenate([unit, -unit], axis=1)


def _procrustes(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rotations ``R_t`` (T, 3, 3) minimising ``sum_j |cur_tj - R_t prev_tj|^2`` over mask."""
    M = np.einsum("tj,tja,tjb->tab", mask.astype(float), prev, cur)
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(np.einsum("tba,tcb->tac", Vt, U)))
    D = np.zeros_like(M)
    D[:, 0, 0] = D[:, 1, 1] = 1.0
    D[:, 2, 2] = np.where(d == 0, 1.0, d)
    return np.einsum("tba,tbc,tdc->tad", Vt, D, U)


def _shape_rows(x: np.ndarray, active: np.ndarray, sw: float):
    """Rows of the rotation-invariant shape term between consecutive frames.

    The wrist-centred hand of frame t minus the Procrustes-rotated wrist-centred hand of frame
    t - 1, per joint and coordinate; only joints active in both frames, wrist included, count.
    """
    q = x - x[:, :1]
    mask = active[1:] & active[:-1] & active[1:, :1] & active[:-1, :1]
    mask[:, 0] = False
    R = _procrustes(q[:-1], q[1:], mask)
    r = q[1:] - np.einsum("tab,tjb->tja", R, q[:-1])
    t, j = np.nonzero(mask)
    ones = np.ones((len(t), 1))
    k3 = np.arange(3)
    res, idx, jac = [], [], []
    for k in range(3):
        res.append(sw * r[t, j, k])
        idx.append(np.concatenate([
            _var(t + 1, j, k)[:, None], _var(t + 1, 0, k)[:, None],
            _var(t[:, None], j[:, None], k3), _var(t[:, None], 0, k3)], axis=1))  # fmt: skip
        jac.append(sw * np.concatenate([ones, -ones, -R[t, k], R[t, k]], axis=1))
    return np.concatenate(res), np.concatenate(idx), np.concatenate(jac)


#: Finger hinges (proximal, hinge, distal joint) checked by the angle-limit term: the PIP and
#: DIP joints of the four fingers. The thumb is left out: its joints do not flex about the
#: hand's lateral axis.
_HINGES = np.array([[f[0], f[1], f[2]] for f in FINGER_JOINTS[1:]]
                   + [[f[1], f[2], f[3]] for f in FINGER_JOINTS[1:]])  # fmt: skip
_INDEX_MCP, _LITTLE_MCP = int(FINGER_JOINTS[1, 0]), int(FINGER_JOINTS[4, 0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _angle_residuals(pts: np.ndarray, lateral: np.ndarray, sign: float,
                     limits: np.ndarray) -> np.ndarray:  # fmt: skip
    """Excess hyperextension and sideways bending (R, 2), as sines times |distal bone| (mm).

    Args:
        pts: (R, 3, 3) proximal, hinge and distal joint; lateral: (R, 3) unit vector from the
            little to the index MCP; sign: +1 right hand, -1 left; limits: sines of the limits.
    """
    u = _unit(pts[:, 1] - pts[:, 0])
    v = pts[:, 2] - pts[:, 1]
    axis = np.cross(u, _unit(v))
    flex = sign * np.sum(axis * lateral, axis=-1)  # > 0 when bending towards the palm
    side = np.sum(axis * _unit(np.cross(lateral, u)), axis=-1)
    excess = np.stack([np.maximum(0.0, -flex - limits[0]),
                       np.maximum(0.0, np.abs(side) - limits[1])], axis=-1)  # fmt: skip
    return excess * np.linalg.norm(v, axis=-1, keepdims=True)


def _angle_rows(x, active, sign, limits, sw):
    """Rows of the joint-angle limit term (two per hinge and frame).

    The hand's lateral axis is held fixed when differentiating; the Jacobian with respect to
    the three joints of each hinge is by central differences (vectorized, 18 evaluations).
    """
    ok = active[:, _HINGES].all(-1) & active[:, [_INDEX_MCP]] & active[:, [_LITTLE_MCP]]
    t, h = np.nonzero(ok)
    lateral = _unit(x[t, _INDEX_MCP] - x[t, _LITTLE_MCP])
    pts = x[t[:, None], _HINGES[h]]
    res = sw * _angle_residuals(pts, lateral, sign, limits)
    idx = _var(t[:, None, None], _HINGES[h][:, :, None], np.arange(3)).reshape(len(t), 9)
    jac = np.zeros((len(t), 2, 9))
    step = 1e-4  # mm
    for m in range(9):
        plus, minus = pts.copy(), pts.copy()
        plus[:, m // 3, m % 3] += step
        minus[:, m // 3, m % 3] -= step
        diff = _angle_residuals(plus, lateral, sign, limits) - _angle_residuals(
            minus, lateral, sign, limits
        )
        jac[:, :, m] = sw * diff / (2 * step)
    return res.ravel(), np.repeat(idx, 2, axis=0), jac.reshape(-1, 9)


class _Sparsity:
    """The fixed sparsity pattern of one window's normal matrix, and the solver on it.

    Terms give Gauss-Newton blocks on fixed sets of variables (the masks of a window do not
    change between iterations), so the pattern and where each block entry lands are computed
    once; an iteration is then a single ``bincount``. Steps are solved by conjugate gradients
    preconditioned with the exact solve of every joint's own trajectory (each joint's 3T
    variables in time order form a narrow band), which leaves only the couplings between
    joints (bones, shape, angles) to the iterations.
    """

    def __init__(self, n: int, T: int, block_idx: list[np.ndarray],
                 smooth: csr_matrix | None, inactive: np.ndarray) -> None:  # fmt: skip
        keys = [(idx[:, :, None] * n + idx[:, None, :]).ravel() for idx in block_idx]
        coo = smooth.tocoo() if smooth is not None else None
        keys.append(np.zeros(0, np.int64) if coo is None else coo.row * np.int64(n) + coo.col)
        keys.append(np.arange(n, dtype=np.int64) * (n + 1))
        uniq, inv = np.unique(np.concatenate(keys), return_inverse=True)
        self.nnz = len(uniq)
        ends = np.cumsum([len(k) for k in keys])
        self.block_map = inv[: ends[-3]]
        self.smooth_map = inv[ends[-3] : ends[-2]]
        self.diag = inv[ends[-2] :]
        self.inactive_diag = self.diag[inactive]
        rows, cols = uniq // n, uniq % n
        self.n = n
        self.indices = cols.astype(np.int32)
        self.indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int32)
        # joint-major order: the preconditioner's band
        v = np.arange(n)
        self.joint_major = ((v // 3 % N_JOINTS) * T + v // _NV) * 3 + v % 3
        self.order = np.argsort(self.joint_major)
        pr, pc = self.joint_major[rows], self.joint_major[cols]
        sel = (rows // 3 % N_JOINTS == cols // 3 % N_JOINTS) & (pr <= pc)
        self.pre_u = int((pc - pr)[sel].max(initial=0))
        self.pre_src = np.flatnonzero(sel)
        self.pre_pos = (self.pre_u + pr[sel] - pc[sel]) * n + pc[sel]

    def assemble(self, blocks: list[np.ndarray], smooth: csr_matrix | None) -> np.ndarray:
        """Normal-matrix values (nnz,) from the blocks, in the order of ``block_idx``, plus the
        smoothness matrix (same pattern as the one given at construction)."""
        vals = np.concatenate([b.ravel() for b in blocks])
        data = np.bincount(self.block_map, vals, self.nnz)
        if smooth is not None:
            data += np.bincount(self.smooth_map, smooth.tocoo().data, self.nnz)
        data[self.inactive_diag] = 1.0
        return data

    def solve(self, data: np.ndarray, g: np.ndarray,
              lam: float) -> tuple[np.ndarray | None, int]:  # fmt: skip
        """Step ``dx`` of ``(A + lam * diag(A)) dx = -g`` (None if A is not positive definite)
        and the conjugate-gradient iterations it took."""
        damped = data.copy()
        d = damped[self.diag]
        damped[self.diag] = d + lam * np.maximum(d, 1e-9 * max(float(d.max()), 1.0))
        A = csr_matrix((damped, self.indices, self.indptr), shape=(self.n, self.n))
        band = np.zeros((self.pre_u + 1) * self.n)
        band[self.pre_pos] = damped[self.pre_src]
        try:
            factor = cholesky_banded(band.reshape(self.pre_u + 1, self.n), check_finite=False)
        except LinAlgError:
            return None, 0

        def precondition(r: np.ndarray) -> np.ndarray:
            return cho_solve_banded((factor, False), r[self.order], check_finite=False)[
                self.joint_major
            ]

        return _conjugate_gradient(A, -g, precondition)


def _conjugate_gradient(A: csr_matrix, b: np.ndarray, precondition, tol: float = _CG_TOL,
                        max_iter: int = _CG_MAX_ITER) -> tuple[np.ndarray, int]:  # fmt: skip
    """Preconditioned conjugate gradients for SPD ``A x = b`` to a relative residual ``tol``.

    Returns:
        The solution and the number of iterations.
    """
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    stop = tol * float(np.linalg.norm(b))
    it = 0
    while it < max_iter:
        it += 1
        Ap = A @ p
        pAp = float(p @ Ap)
        if pAp <= 0:
            break
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        if np.linalg.norm(r) <= stop:
            break
        z = precondition(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, it


class _Problem:
    """The least-squares problem of one hand in one window, in millimetres.

    Args:
        hand: the window's observations; active: (T, J) joints to solve for.
        cams: cameras in mm; cfg: settings; smooth_s2: smoothness weight (px^2 / mm^2).
        x0: (T, J, 3) initial joints (finite everywhere), mm; L0: (20,) bone lengths, mm.
    """

    def __init__(self, hand: _HandData, active: np.ndarray, cams: _Cameras,
                 cfg: OptimizerConfig, smooth_s2: float, x0: np.ndarray,
                 L0: np.ndarray, fps: float = REFERENCE_FPS,
                 sparsity: _Sparsity | None = None) -> None:  # fmt: skip
        self.cfg, self.active, self.sign = cfg, active, hand.sign
        self.T = active.shape[0]
        self.n = self.T * _NV
        self.obs = _Observations.build(hand, active, cams)
        self.D = _difference_operator(active, cfg)
        order = 1 if cfg.smoothness == "velocity" else 2
        self._robust_limit = cfg.smoothness_robust_limit * _REFERENCE_MOTION[order - 1] / fps**order
        self.set_smoothness(smooth_s2)
        self.limits = np.sin(np.radians([cfg.max_hyperextension_deg, cfg.max_sideways_deg]))
        if sparsity is None:  # the pattern depends on the masks and terms, not on the views
            points = np.arange(self.T * N_JOINTS)
            block_idx = [points[:, None] * 3 + np.arange(3)]
            block_idx += [idx for _, idx, _ in self._rows(x0, L0)]
            sparsity = _Sparsity(self.n, self.T, block_idx, self.smooth,
                                 np.repeat(~active.ravel(), 3))  # fmt: skip
        self.sparsity = sparsity

    def set_smoothness(self, s2: float) -> None:
        """Set the smoothness weight (px^2 / mm^2); the sparsity pattern does not change."""
        self.s2 = s2
        self.smooth = None if self.D is None else (s2 * (self.D.T @ self.D)).tocsr()
        if self.smooth is not None:
            self.smooth.sort_indices()
        # robust smoothness: squared scaled difference (px^2) where its loss turns linear
        self.smooth_c2 = s2 * self._robust_limit**2

    def _rows(self, x: np.ndarray, L: np.ndarray):
        """The terms given as rows: (residual (R,), variable index (R, k), Jacobian (R, k))."""
        cfg = self.cfg
        if cfg.w_bone > 0:
            yield _bone_rows(x, L, self.active, np.sqrt(cfg.w_bone))
        if cfg.w_shape > 0:
            yield _shape_rows(x, self.active, np.sqrt(cfg.w_shape))
        if cfg.w_angle_limits > 0:
            yield _angle_rows(x, self.active, self.sign, self.limits, np.sqrt(cfg.w_angle_limits))

    def _row_loss(self, k: int, res: np.ndarray) -> tuple[float, np.ndarray]:
        """Cost of the ``k``-th row term and its IRLS weights (robust for bones if asked)."""
        c2 = self.cfg.w_bone * self.cfg.bone_robust_mm**2 if k == 0 and self.cfg.w_bone > 0 else 0
        if c2 == 0:
            return float(res @ res), np.ones_like(res)
        rho, drho = _robust(res * res / c2, "soft_l1")
        return float(c2 * rho.sum()), drho

    def _smoothness(self, x: np.ndarray) -> tuple[float, np.ndarray, csr_matrix | None]:
        """Smoothness cost, its half gradient (n,) and Gauss-Newton matrix (IRLS-weighted)."""
        if self.D is None:
            return 0.0, np.zeros(self.n), None
        d = self.D @ x.ravel()
        if self.smooth_c2 == 0:
            return float(self.s2 * d @ d), self.smooth @ x.ravel(), self.smooth
        r2 = self.s2 * np.sum(d.reshape(-1, 3) ** 2, axis=1)
        rho, drho = _robust(r2 / self.smooth_c2, "soft_l1")
        w = np.repeat(drho, 3)
        grad = self.s2 * (self.D.T @ (w * d))
        mat = (self.s2 * (self.D.T @ self.D.multiply(w[:, None]))).tocsr()
        mat.sort_indices()
        return float(self.smooth_c2 * rho.sum()), grad, mat

    def cost(self, x: np.ndarray, L: np.ndarray) -> float:
        """Total cost of joints ``x`` (T, J, 3) mm and bone lengths ``L`` (20,) mm."""
        total = _reprojection(x, self.obs, self.cfg, jacobian=False) + self._smoothness(x)[0]
        for k, (res, _, _) in enumerate(self._rows(x, L)):
            total += self._row_loss(k, res)[0]
        return total

    def linearize(self, x: np.ndarray, L: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Cost, Gauss-Newton normal-matrix values (nnz,) and gradient ``J^T r`` (n,)."""
        cost, rep_blocks, rep_grad = _reprojection(x, self.obs, self.cfg, jacobian=True)
        c_s, g, smooth = self._smoothness(x)
        cost += c_s
        g = g + rep_grad.ravel()
        blocks = [rep_blocks]
        for k, (res, idx, jac) in enumerate(self._rows(x, L)):
            c_k, w = self._row_loss(k, res)
            cost += c_k
            blocks.append(w[:, None, None] * jac[:, :, None] * jac[:, None, :])
            g += np.bincount(idx.ravel(), (jac * (w * res)[:, None]).ravel(), self.n)
        return cost, self.sparsity.assemble(blocks, smooth), g


def _levenberg_marquardt(problem: _Problem, x0: np.ndarray,
                         lengths: _LengthState) -> tuple[np.ndarray, list[float], int]:  # fmt: skip
    """Minimise the problem from ``x0`` (T, J, 3) mm; bone lengths are re-estimated each step.

    Returns:
        The joints (T, J, 3) mm, the cost before the first and after each iteration, and the
        total number of conjugate-gradient iterations.
    """
    cfg = problem.cfg
    x = x0.copy()
    L = lengths.estimate(x, problem.active)
    lam = 1e-4
    cost, data, g = problem.linearize(x, L)
    costs = [cost]
    cg_total = 0
    for _ in range(cfg.max_iterations):
        while True:
            dx, cg_its = problem.sparsity.solve(data, g, lam)
            cg_total += cg_its
            if dx is not None:
                x_new = x + dx.reshape(x.shape)
                L_new = lengths.estimate(x_new, problem.active)
                new_cost = problem.cost(x_new, L_new)
                if new_cost <= cost:
                    lam = max(lam / 5.0, 1e-7)
                    break
            lam *= 10.0
            if lam > 1e8:
                return x, costs, cg_total
        gain = cost - new_cost
        x, L, cost = x_new, L_new, new_cost
        costs.append(cost)
        if gain <= cfg.tolerance * costs[-2]:
            break
        cost, data, g = problem.linearize(x, L)
    return x, costs, cg_total
