"""The fitting stage: a hand model fitted per hand over a whole sequence.

Steps per hand (see :func:`fit_hand`): pick the frames (observed ones, and gaps of at most
``max_gap_frames`` between them, which the smoothness bridges); shape from bone lengths
(MANO betas, or the kinematic hand's palm and segment lengths); global pose per frame by
Kabsch of the rest hand onto the palm joints; a few Levenberg-Marquardt iterations on the
global pose alone; then everything (articulation, global pose and, for MANO, the betas shared
over time) with temporal smoothness, a pose prior, hard joint-angle limits, confidence weights
and a Huber loss on each joint. Optionally the 2D keypoints of every view are added as
confidence-weighted reprojection residuals through the calibration.

Residuals are in millimetres (3D) and pixels (2D); weights are dimensionless.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from mvhand.config import param
from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.errors import InputError
from mvhand.fit import kinematic as kin
from mvhand.fit.models import KinematicModel, ManoFitModel, absolute_params, initial_global
from mvhand.fit.solver import Terms, levenberg_marquardt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Settings of the hand-model fit (the ``[fit]`` section of a pipeline config)."""

    enabled: bool = param(False, "fit a hand model after the 3D stage (mvhand run)")
    model: str = param("auto", "hand model: mano, kinematic, or auto (mano when mano_dir is set)",
                       choices=("auto", "mano", "kinematic"))
    mano_dir: str | None = param(None, "folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl")
    mano_pca_components: int = param(
        0, "fit MANO's articulation in its PCA space with this many components (0 = all 45 "
        "axis-angle parameters)", ge=0, le=45)  # fmt: skip
    mano_pose_limit_rad: float = param(2.0, "bound on each MANO axis-angle component (rad)",
                                       gt=0.0)  # fmt: skip
    iterations: int = param(25, "most Levenberg-Marquardt iterations of the full fit", ge=1)
    tolerance: float = param(1e-5, "stop when an iteration lowers the cost by less than this "
                             "fraction", gt=0.0)
    global_iterations: int = param(5, "iterations on the global pose alone before", ge=0)
    smooth_weight: float = param(
        0.5, "temporal smoothness: weight of frame-to-frame parameter change (mm equivalent)",
        ge=0.0)  # fmt: skip
    prior_weight: float = param(0.002, "pull of the articulation towards the mean pose", ge=0.0)
    shape_prior_weight: float = param(0.1, "pull of the MANO betas towards 0", ge=0.0)
    robust_mm: float = param(15.0, "Huber threshold of a joint's 3D error (mm); 0 = plain "
                             "least squares", ge=0.0)  # fmt: skip
    use_confidence: bool = param(True, "weight each 3D joint by its score from the 3D stage")
    min_joints: int = param(3, "frames with fewer seen joints count as missing", ge=1, le=21)
    max_gap_frames: int = param(15, "bridge gaps of at most this many missing frames", ge=0)
    use_2d: bool = param(True, "refine against the 2D keypoints when they are given")
    reproj_weight: float = param(0.5, "weight of a pixel of reprojection error vs a mm in 3D",
                                 ge=0.0)  # fmt: skip
    mesh_frames: tuple[int, ...] = param((), "frames written as mesh files (MANO only)")
    mesh_format: str = param("obj", "mesh file format", choices=("obj", "ply"))


@dataclass(frozen=True, eq=False)
class HandFit:
    """The fit of one hand.

    Attributes:
        hand: "left" or "right".
        params: ``(T, P)`` per-frame model parameters (NaN where not fitted).
        param_names: ``(P,)`` names.
        shared: model-specific shape: MANO ``betas``; kinematic ``bone_lengths`` (m),
            ``palm`` (6, 3) m.
        joints3d: ``(T, 21, 3)`` fitted joints in the input's units, NaN where not fitted.
        fit_error: ``(T, 21)`` distance to the input 3D (input units), NaN where either is.
        angles_rad: ``(T, 21)`` the named joint angles of :data:`kinematic.DOF_NAMES`.
        fitted: ``(T,)`` frames with a fit.
        iterations: LM iterations used.
    """

    hand: str
    params: np.ndarray
    param_names: tuple[str, ...]
    shared: dict[str, np.ndarray]
    joints3d: np.ndarray
    fit_error: np.ndarray
    angles_rad: np.ndarray
    fitted: np.ndarray
    iterations: int


@dataclass(frozen=True, eq=False)
class FitResult:
    """All hands' fits.

    Attributes:
        model: "mano" or "kinematic".
        units: units of the input (and of ``joints3d``).
        hands: one :class:`HandFit` per fitted hand (skipped hands are absent).
        n_frames: T.
        hand_names: the input's hand names (axis H).
        timings_s: seconds per hand.
        mano: the MANO models used, by side (for meshes).
    """

    model: str
    units: str
    hands: dict[str, HandFit]
    n_frames: int
    hand_names: tuple[str, ...]
    timings_s: dict[str, float]
    mano: dict = field(default_factory=dict)


def select_frames(valid: np.ndarray, min_joints: int, max_gap: int) -> np.ndarray:
    """Frames to fit ``(T,)`` bool: observed frames and bridged gaps between them."""
    observed = valid.sum(axis=1) >= min_joints
    keep = observed.copy()
    idx = np.flatnonzero(observed)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            keep[a + 1:b] = True
    return keep


def _param_names(model) -> tuple[str, ...]:
    head = ["rot_x", "rot_y", "rot_z", "transl_x", "transl_y", "transl_z"]
    if isinstance(model, KinematicModel):
        return tuple(head + list(kin.DOF_NAMES))
    if model.n_pca:
        return tuple(head + [f"pca_{i}" for i in range(model.n_pca)])
    return tuple(head + [f"pose_{j}_{a}" for j in range(1, 16) for a in "xyz"])


class _Data:
    """Data residuals (3D mm, optional 2D px) and their per-frame Jacobians."""

    def __init__(self, model, obs_m, w3d, cfg: FitConfig, views=None) -> None:
        self.model, self.obs, self.w_base, self.cfg = model, obs_m, w3d, cfg
        self.w = w3d.copy()
        self.views = views  # (cams in metres, kp (C, N, 21, 2), w (C, N, 21)) or None
        self.w2 = None if views is None else views[2].copy()

    def __call__(self, x, s, jac):
        pts, J, Js = self.model.evaluate(x, s, jac)
        N = len(x)
        sw = np.sqrt(self.w)[..., None] * 1000.0  # (N, 21, 1): residuals in mm
        rows = [(np.nan_to_num(pts - self.obs) * sw).reshape(N, -1)]
        Jrows = [(J * sw[..., None]).reshape(N, 63, J.shape[-1])] if jac else []
        Jsrows = [(Js * sw[..., None]).reshape(N, 63, Js.shape[-1])] if jac else []
        if self.views is not None:
            cams, kp, _ = self.views
            sw2 = np.sqrt(self.w2 * self.cfg.reproj_weight)[..., None]  # (C, N, 21, 1)
            proj = np.stack([c.project(pts) for c in cams])  # (C, N, 21, 2) px
            rows.append((np.nan_to_num(proj - kp) * sw2).transpose(1, 0, 2, 3).reshape(N, -1))
            if jac:
                D = _projection_jacobian(cams, pts, proj) * sw2[..., None]
                n2 = len(cams) * 42
                Jrows.append(np.einsum("cnjab,njbp->ncjap", D, J).reshape(N, n2, J.shape[-1]))
                Jsrows.append(np.einsum("cnjab,njbp->ncjap", D, Js).reshape(N, n2, Js.shape[-1]))
        r = np.concatenate(rows, axis=1)
        if not jac:
            return r, None, None
        return r, np.concatenate(Jrows, axis=1), np.concatenate(Jsrows, axis=1)

    def reweight(self, x, s):
        """Huber weights on each joint's 3D error (IRLS)."""
        if self.cfg.robust_mm <= 0:
            return
        pts = self.model.evaluate(x, s, False)[0]
        err = np.linalg.norm(np.nan_to_num(pts - self.obs), axis=-1) * 1000.0
        self.w = self.w_base * np.minimum(1.0, self.cfg.robust_mm / np.maximum(err, 1e-9))


def _projection_jacobian(cams, pts: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """``d px / d point`` ``(C, N, 21, 2, 3)`` by forward differences (1 micrometre)."""
    eps = 1e-6
    cols = [(np.stack([c.project(pts + eps * np.eye(3)[k]) for c in cams]) - proj) / eps
            for k in range(3)]  # fmt: skip
    return np.stack(cols, axis=-1)


def _terms(model, cfg: FitConfig, links: np.ndarray, free_global_only: bool) -> Terms:
    P = model.n_params
    prior = np.zeros(P)
    prior[model.articulation] = np.sqrt(cfg.prior_weight) * model.scale[model.articulation]
    free = np.ones(P, dtype=bool)
    if free_global_only:
        free[model.articulation] = False
    return Terms(np.sqrt(cfg.smooth_weight) * model.scale, links, prior, model.prior_mean,
                 np.sqrt(cfg.shape_prior_weight) * 10.0, model.lower, model.upper, free,
                 free_shared=not free_global_only)  # fmt: skip


def fit_hand(model, obs_m: np.ndarray, weights: np.ndarray, cfg: FitConfig,
             shared0: np.ndarray, links: np.ndarray | None = None,
             views=None) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """Fit ``model`` to one hand's frames.

    Args:
        model: a :class:`~mvhand.fit.models.KinematicModel` or ``ManoFitModel``.
        obs_m: ``(N, 21, 3)`` observed joints in metres (NaN missing), consecutive frames.
        weights: ``(N, 21)`` confidence weights (0 where missing).
        cfg: the settings.
        shared0: initial shape parameters.
        links: ``(N - 1,)`` True where rows t and t + 1 are neighbouring frames (default all).
        views: optional ``(cameras in metres, kp (C, N, 21, 2) px, weights (C, N, 21))``.

    Returns:
        ``(x (N, P), s (S,), iterations)``; NaN rows where no frame could be initialised.
    """
    N = obs_m.shape[0]
    g = initial_global(model, obs_m, shared0)
    x0 = np.concatenate([g, model.init_articulation(obs_m)], axis=1)
    links = np.ones(max(N - 1, 0), dtype=bool) if links is None else links
    data = _Data(model, obs_m, weights, cfg, views)
    x, s, n1 = x0, shared0, 0
    if cfg.global_iterations:
        x, s, n1 = levenberg_marquardt(data, x, s, _terms(model, cfg, links, True),
                                       cfg.global_iterations, cfg.tolerance)  # fmt: skip
    x, s, n2 = levenberg_marquardt(data, x, s, _terms(model, cfg, links, False), cfg.iterations,
                                   cfg.tolerance, reweight=data.reweight)  # fmt: skip
    return x, s, n1 + n2


def _resolve_model(cfg: FitConfig) -> str:
    if cfg.model == "auto":
        return "mano" if cfg.mano_dir else "kinematic"
    if cfg.model == "mano" and not cfg.mano_dir:
        from mvhand.fit.mano_io import HOW_TO_GET

        raise InputError(f"the MANO model was asked for but no model folder is set. {HOW_TO_GET}")
    return cfg.model


def _weights(hands3d: Hands3D, h: int, valid: np.ndarray, cfg: FitConfig) -> np.ndarray:
    w = np.ones(valid.shape)
    if cfg.use_confidence:
        score = np.asarray(hands3d.score[:, h], dtype=float)
        usable = np.isfinite(score) & (score > 0)
        if usable[valid].any():
            w = np.where(usable, np.clip(score, 0.05, 1.0), 0.05)
    return np.where(valid, w, 0.0)


def _views(keypoints2d: Keypoints2D | None, rig: Rig | None, name: str, frames: np.ndarray,
           cfg: FitConfig):  # fmt: skip
    if keypoints2d is None or rig is None or not cfg.use_2d or name not in keypoints2d.hands:
        return None
    hk = keypoints2d.hands.index(name)
    cams = rig.subset(keypoints2d.cameras).to_units("m").cameras
    return (cams, keypoints2d.keypoints_px[:, frames, hk], keypoints2d.scores[:, frames, hk])


def _build_model(kind: str, name: str, obs_m: np.ndarray, cfg: FitConfig, mano_models):
    """The model for one hand and its initial shared parameters."""
    if kind == "kinematic":
        mirror = name == "left"
        hand = kin.estimate_hand(obs_m * [-1.0, 1.0, 1.0] if mirror else obs_m)
        return KinematicModel(hand, mirror), np.zeros(0)
    if name not in mano_models:
        raise InputError(f"no MANO model for the hand named '{name}' (hands must be left/right)")
    model = ManoFitModel(mano_models[name], cfg.mano_pca_components, cfg.mano_pose_limit_rad)
    return model, model.fit_betas(obs_m, np.sqrt(cfg.shape_prior_weight) * 10.0)


def _shared(model, s: np.ndarray) -> dict[str, np.ndarray]:
    if isinstance(model, KinematicModel):
        return {"bone_lengths_m": model.hand.bone_lengths, "palm_m": model.hand.palm}
    return {"betas": s}


def run_fit(hands3d: Hands3D, cfg: FitConfig = FitConfig(), keypoints2d: Keypoints2D | None = None,
            rig: Rig | None = None, mano_models: dict | None = None) -> FitResult:
    """Fit a hand model to every hand of ``hands3d``.

    Args:
        hands3d: the 3D joints ``(T, H, 21, 3)`` with scores (from ``mvhand triangulate``).
        cfg: the settings; ``cfg.model`` "auto" uses MANO when ``cfg.mano_dir`` is set.
        keypoints2d: optional 2D keypoints for the reprojection refinement (needs ``rig``).
        rig: the calibration of ``keypoints2d``'s cameras.
        mano_models: MANO models by side; loaded from ``cfg.mano_dir`` when None.

    Returns:
        The fits; hands with no usable frame are left out with a warning.

    Raises:
        InputError: MANO asked for without model files (the message says where to get them).
    """
    kind = _resolve_model(cfg)
    if kind == "mano" and mano_models is None:
        from mvhand.fit.mano_io import load_mano_dir

        mano_models = load_mano_dir(cfg.mano_dir, tuple(h for h in hands3d.hands
                                                        if h in ("left", "right")))  # fmt: skip
    scale = UNIT_SCALE_M[hands3d.units]
    T = hands3d.keypoints3d.shape[0]
    fits, timings = {}, {}
    for h, name in enumerate(hands3d.hands):
        t0 = time.perf_counter()
        fit = _fit_one(hands3d, h, name, kind, cfg, keypoints2d, rig, mano_models, scale)
        if fit is not None:
            fits[name] = fit
            timings[name] = time.perf_counter() - t0
    return FitResult(kind, hands3d.units, fits, T, tuple(hands3d.hands), timings,
                     mano_models or {})  # fmt: skip


def _fit_one(hands3d, h, name, kind, cfg, keypoints2d, rig, mano_models, scale):
    obs = hands3d.keypoints3d[:, h] * scale
    valid = np.isfinite(obs).all(-1)
    keep = select_frames(valid, cfg.min_joints, cfg.max_gap_frames)
    if not keep.any():
        log.warning("%s hand: no frame with %d or more joints; not fitted", name, cfg.min_joints)
        return None
    frames = np.flatnonzero(keep)
    model, s0 = _build_model(kind, name, obs[frames], cfg, mano_models)
    w = _weights(hands3d, h, valid, cfg)[frames]
    x, s, iters = fit_hand(model, obs[frames], w, cfg, s0, np.diff(frames) == 1,
                           _views(keypoints2d, rig, name, frames, cfg))  # fmt: skip
    T = obs.shape[0]
    params = np.full((T, model.n_params), np.nan)
    params[frames] = absolute_params(model, x)
    joints = np.full((T, 21, 3), np.nan)
    joints[frames] = model.evaluate(x, s, False)[0] / scale
    angles = np.full((T, kin.N_DOF), np.nan)
    angles[frames] = model.angles(x, s)
    err = np.linalg.norm(joints - hands3d.keypoints3d[:, h], axis=-1)
    log.info("%s hand: %d frames fitted, mean joint error %.2f %s", name, frames.size,
             np.nanmean(err), hands3d.units)  # fmt: skip
    return HandFit(name, params, _param_names(model), _shared(model, s), joints, err, angles,
                   keep, iters)  # fmt: skip
