"""Per-hand choice of the smoothness and bone weights by cross-validation over cameras.

Fits with some cameras held out predict those cameras' detections; held-out cameras' noise is
independent of the fitted ones', so unlike the fit's own residuals their error measures
accuracy. With 3 to 7 cameras seeing a hand each camera is held out in turn (leave one camera
out); with 8 or more, alternate halves of them; with fewer than ``cfg.cv_min_cameras`` (at
least 3) the weights stay fixed. Only
a stretch of ``cfg.cv_frames`` frames from the middle of the sequence is fitted, so the cost
does not grow with the sequence. Each weight is scaled by powers of 4, walking from the
configured value towards lower median held-out error, one weight at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mvhand.core.metrics import reprojection_errors
from mvhand.core.optimize.bones import LengthState, initial_lengths
from mvhand.core.optimize.config import OptimizerConfig
from mvhand.core.optimize.gaps import bridge_gaps
from mvhand.core.optimize.noise import smoothness_weight
from mvhand.core.optimize.problem import Problem
from mvhand.core.optimize.residuals import Cameras, HandData

#: Powers of 4 tried as the smoothness weight's multiplier, and as the bone weight's (whose
#: lowest step switches the term off).
SMOOTHNESS_POWERS = (-3, 6)
BONE_POWERS = (-3, 4)
#: From how many cameras the halves scheme replaces leave-one-camera-out.
HALVES_FROM = 8
#: Cameras held out in turn at most (those that see the hand most): the cost of leaving one
#: out grows with the cameras, while 4 folds already pool thousands of held-out errors.
MAX_FOLDS = 4
#: A weight moves from its configured value only when the held-out error falls by more than
#: this fraction per step (the held-out camera's own noise dominates its error, so real gains
#: in 3D show as fractions of a percent; smaller differences are noise) ...
MIN_GAIN = 0.0
#: ... and by more than this (px): on noiseless input every error is ~0.
MIN_GAIN_PX = 0.005
#: Reprojection losses tried after the configured one (``cfg.cv_loss``), in this order:
#: (loss, loss_scale in noise units). Rendered L0 MPJPE with the list up to 2 / 1.5 / 1 / 0.7:
#: 7.20 / 6.95 / 6.73 / 6.63 mm (L1 7.11 / 6.95 / 6.95 / 6.95); a scale is tried only when the
#: one before it won, so clean data never gets that far.
LOSSES = (("cauchy", 2.0), ("cauchy", 1.5), ("cauchy", 1.0), ("cauchy", 0.7))
#: Levenberg-Marquardt iterations of each cross-validation fit (warm-started from the fit of
#: the neighbouring weights, so a few suffice).
ITERATIONS = 3
#: Conjugate-gradient iterations per step of a cross-validation fit: inexact steps are enough
#: to rank weights, and on noisy data (strong bone couplings) this bounds the cost.
CG_ITERATIONS = 30


def camera_folds(weight: np.ndarray, min_cameras: int = 3) -> tuple[str, list[np.ndarray]]:
    """The scheme and its held-out camera sets (C,) bool, over the cameras that see the hand.

    Args:
        weight: ``(C, T, J)`` view weights (0: not seen).
        min_cameras: fewer cameras seeing the hand: no folds (scheme "none").

    Example:
        >>> scheme, folds = camera_folds(np.ones((4, 2, 21)))
        >>> scheme, [f.tolist() for f in folds][:2]
        ('leave_one_camera_out', [[True, False, False, False], [False, True, False, False]])
    """
    seeing = np.flatnonzero((weight > 0).any(axis=(1, 2)))
    C = weight.shape[0]
    if len(seeing) < max(min_cameras, 3):
        return "none", []
    if len(seeing) < HALVES_FROM:
        views = (weight[seeing] > 0).sum(axis=(1, 2))
        held = np.sort(seeing[np.argsort(-views, kind="stable")[:MAX_FOLDS]])
        return "leave_one_camera_out", [np.arange(C) == c for c in held]
    return "halves", [np.isin(np.arange(C), g) for g in (seeing[0::2], seeing[1::2])]


@dataclass
class _Fold:
    problem: Problem
    held: np.ndarray
    x: np.ndarray  # last solution (warm start)
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (C, T, J) scored


def _fold_errors(f: _Fold, rig_mm, kp_px: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Held-out reprojection errors (px, full lens model) of the fold's current fit."""
    x = np.where(act[..., None], f.x, np.nan)[:, None]  # (T, 1, J, 3)
    err = reprojection_errors(rig_mm, x, kp_px[:, :, None])[:, :, 0]
    return err[f.score & np.isfinite(err)]


def select_weights(x0: np.ndarray, hand: HandData, kp_px: np.ndarray, rig_mm, cams: Cameras,
                   cfg: OptimizerConfig, fps: float) -> tuple[OptimizerConfig, dict]:  # fmt: skip
    """The config with this hand's cross-validated ``w_smoothness`` and ``w_bone``.

    Args:
        x0: ``(T, J, 3)`` initial joints, mm; hand: its observations (weights as fitted);
        kp_px: ``(C, T, J, 2)`` its detections (px); rig_mm, cams: the cameras in mm.

    Returns:
        The config, and what was tried: scheme, folds, frames, the chosen multipliers and
        weights, and the median held-out error (px) of each tried pair of multipliers.
    """
    scheme, folds = camera_folds(hand.weight, cfg.cv_min_cameras)
    info: dict = {"scheme": scheme, "folds": len(folds)}
    search = [n for n, w in (("smoothness", cfg.w_smoothness), ("bone", cfg.w_bone)) if w > 0]
    if cfg.weight_selection != "cross_validation" or not folds or not search:
        return cfg, {**info, "scheme": "none" if not folds else "fixed"}
    n = min(len(x0), cfg.window, cfg.cv_frames)
    seg = slice((len(x0) - n) // 2, (len(x0) - n) // 2 + n)
    active, xb = bridge_gaps(x0, cfg.max_gap_frames)
    act, xs = active[seg], xb[seg]
    if not act.any():
        return cfg, {**info, "scheme": "none"}
    s2, _ = smoothness_weight(x0, cfg, fps)
    lengths = LengthState(initial_lengths(x0), act)
    test = hand.frames(seg.start, seg.stop)
    quick = replace(cfg, w_shape=0.0, w_angle_limits=0.0)
    fold_list: list[_Fold] = []
    for held in folds:
        train = test.without(held)
        shared = fold_list[0].problem.sparsity if fold_list else None
        p = Problem(train, act, cams, quick, s2, xs, lengths.initial, fps, shared)
        p.cg_max_iter = CG_ITERATIONS
        # score held-out views of joints that at least two fitted views see
        seen = ((train.weight > 0).sum(0) >= 2) & act
        fold_list.append(_Fold(p, held, xs.copy(), (test.weight > 0) & held[:, None, None]
                               & seen[None]))  # fmt: skip
    scores: dict[tuple[int, int, int], float] = {}
    losses = ((cfg.loss, cfg.loss_scale),) + (LOSSES if cfg.cv_loss else ())

    def score(ks: int, kb: int, kl: int) -> float:
        if (ks, kb, kl) not in scores:
            errs = []
            for f in fold_list:
                f.problem.set_weights(s2 * 4.0**ks, _bone_multiplier(kb) * cfg.w_bone)
                f.problem.set_loss(*losses[kl])
                f.x = f.problem.minimise(f.x, lengths, ITERATIONS).state[0]
                errs.append(_fold_errors(f, rig_mm, kp_px[:, seg], act))
            e = np.concatenate(errs)
            scores[(ks, kb, kl)] = float(np.median(e)) if e.size else np.inf
        return scores[(ks, kb, kl)]

    k = {"smoothness": 0, "bone": 0, "loss": 0}
    bounds = {"smoothness": SMOOTHNESS_POWERS, "bone": BONE_POWERS, "loss": (0, len(losses) - 1)}
    for name in search + ["loss"] * (len(losses) > 1) + search[:1]:
        k[name] = _walk(lambda v, name=name: score(**_keys(k, name, v)), k[name], bounds[name])
    ms, mb = 4.0 ** k["smoothness"], _bone_multiplier(k["bone"])
    loss, loss_scale = losses[k["loss"]]
    chosen = replace(cfg, w_smoothness=cfg.w_smoothness * ms, w_bone=cfg.w_bone * mb, loss=loss,
                     loss_scale=loss_scale)  # fmt: skip
    info.update({
        "frames": n, "smoothness_multiplier": ms, "bone_multiplier": mb,
        "w_smoothness": chosen.w_smoothness, "w_bone": chosen.w_bone, "loss": loss,
        "loss_scale": loss_scale,
        "held_out_median_px": _json(scores[(k["smoothness"], k["bone"], k["loss"])]),
        "configured_held_out_median_px": _json(scores[(0, 0, 0)]),
        "tried": [{"smoothness_multiplier": 4.0**a, "bone_multiplier": _bone_multiplier(b),
                   "loss": losses[c][0], "loss_scale": losses[c][1],
                   "held_out_median_px": _json(v)} for (a, b, c), v in sorted(scores.items())],
    })  # fmt: skip
    return chosen, info


def _json(v: float) -> float | None:
    """A held-out error for the report: None where nothing could be scored."""
    return round(v, 4) if np.isfinite(v) else None


def _keys(k: dict, name: str, value: int) -> dict:
    out = {"ks": k["smoothness"], "kb": k["bone"], "kl": k["loss"]}
    out[{"smoothness": "ks", "bone": "kb", "loss": "kl"}[name]] = value
    return out


def _bone_multiplier(kb: int) -> float:
    """4^kb, and 0 (the term off) at the lowest power."""
    return 0.0 if kb <= BONE_POWERS[0] else 4.0**kb


def _walk(score, k: int, bounds: tuple[int, int]) -> int:
    """From ``k``, step up while the score falls by more than ``MIN_GAIN``; if that did not
    move, step down."""
    start = k
    for step in (1, -1):
        while (bounds[0] <= k + step <= bounds[1]
               and score(k + step) < (1 - MIN_GAIN) * score(k) - MIN_GAIN_PX):
            k += step
        if k != start:
            break
    return k
