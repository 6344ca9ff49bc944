"""The optimizer's entry point: every hand of a sequence, window by window."""

from __future__ import annotations

import logging
import time

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.data import Hands3D
from mvhand.core.metrics import reprojection_errors
from mvhand.core.optimize.bones import LengthState, initial_lengths
from mvhand.core.optimize.config import DEFAULT_CONFIG, OptimizerConfig
from mvhand.core.optimize.crossval import select_weights
from mvhand.core.optimize.gaps import bridge_gaps, windows
from mvhand.core.optimize.noise import (
    REFERENCE_FPS,
    estimate_noise_px,
    noise_table,
    smoothness_weight,  # fmt: skip
)
from mvhand.core.optimize.problem import Problem
from mvhand.core.optimize.residuals import Cameras, HandData
from mvhand.core.optimize.solver import single_threaded_blas
from mvhand.errors import InputError

log = logging.getLogger(__name__)
_MM_PER_M = 1000.0


def optimize(rig: Rig, init: Hands3D, cfg: OptimizerConfig = DEFAULT_CONFIG,
             fps: float | None = None) -> Hands3D:
    """Refine triangulated hands over the whole sequence.

    Args:
        rig: the calibrated cameras (any units); must hold the cameras of ``init.views``.
        init: the triangulation, with its 2D evidence ``init.views`` (repaired keypoints,
            scores and inlier views); only joints finite in ``init.keypoints3d``, or inside
            gaps of at most ``cfg.max_gap_frames`` frames between finite ones, are solved for.
        cfg: weights, noise model and solver settings.
        fps: frame rate; the smoothness weight is defined in physical units (per s^2). None:
            the views' fps, else 30.

    Returns:
        The optimized hands in ``init.units`` with the same ``views``, per-hand
        ``bone_lengths`` (H, 20), and ``info``: ``noise_px`` (camera -> joint group -> px),
        ``seconds``, and per hand (``"hands"``, in the order of ``init.hands``) the windows,
        the measured motion, the weights used and the cross-validation.

    Raises:
        InputError: no 2D views, shapes that do not match the rig, units that differ from the
            rig's, or a bad fps.
        NumericalError: the cost or a step is not finite.

    Example:
        >>> from mvhand.core import synthetic
        >>> from mvhand.core.data import Keypoints2D
        >>> from mvhand.core.triangulate import triangulate
        >>> rig = synthetic.make_or_rig(6)
        >>> truth = synthetic.make_hand_motion(20, speed="static")
        >>> kp = rig.project(truth)
        >>> tri = triangulate(rig, Keypoints2D(kp, np.ones(kp.shape[:-1]), rig.names))
        >>> res = optimize(rig, tri)
        >>> bool(np.abs(res.keypoints3d - truth).max() < 5e-4)  # metres: the priors bend it
        True
        >>> res = optimize(rig, tri, OptimizerConfig(w_smoothness=0.0, w_bone=0.0))
        >>> bool(np.abs(res.keypoints3d - truth).max() < 1e-7)
        True
    """
    start = time.perf_counter()
    rig, kp, sc, mask, x_init = _check_inputs(rig, init, fps)
    fps = float(fps if fps is not None else init.views.keypoints.fps or REFERENCE_FPS)
    T, H = x_init.shape[:2]
    mm = UNIT_SCALE_M[rig.units] * _MM_PER_M
    sigma = estimate_noise_px(rig, x_init, kp, sc, mask, cfg)  # (C, J)
    weight = np.where(mask, sc, 0.0) * cfg.w_reprojection / sigma[:, None, None, :] ** 2
    obs = np.nan_to_num(rig.undistort(np.where(mask[..., None], kp, 0.0)))
    cams, rig_mm = Cameras.from_rig(rig), rig.to_units("mm")
    points = np.full((T, H, 21, 3), np.nan)
    lengths = np.full((H, 20), np.nan)
    hands_info = []
    with single_threaded_blas():
        for h in range(H):
            hand = HandData(obs[:, :, h], weight[:, :, h],
                            1.0 if init.hands[h] == "right" else -1.0)  # fmt: skip
            if not cfg.enabled:
                points[:, h], lengths[h] = x_init[:, h], initial_lengths(x_init[:, h])
                hands_info.append({"hand": init.hands[h], "optimized": False})
                continue
            x0 = x_init[:, h] * mm
            kp_h = np.where(mask[:, :, h, :, None], kp[:, :, h], np.nan)
            cfg_h, cv = select_weights(x0, hand, kp_h, rig_mm, cams, cfg, fps)
            x, L, info = optimize_hand(x0, hand, cams, cfg_h, fps)
            points[:, h], lengths[h] = x / mm, L / mm
            hands_info.append({"hand": init.hands[h], "optimized": True, **info,
                               "w_smoothness": cfg_h.w_smoothness, "w_bone": cfg_h.w_bone,
                               "cross_validation": cv})  # fmt: skip
    err, n_views, mean_score = view_statistics(rig, kp, sc, mask, points)
    info = {"noise_px": noise_table(sigma, rig.names), "hands": hands_info,
            "seconds": time.perf_counter() - start}  # fmt: skip
    return init.replace(keypoints3d=points, reprojection_error_px=err, n_views=n_views,
                        score=mean_score, bone_lengths=lengths, info=info)


def _check_inputs(rig: Rig, init: Hands3D, fps: float | None):
    """The rig in the views' camera order, the 2D, scores, views to use, initial 3D."""
    if not isinstance(init, Hands3D):
        raise InputError(f"optimize needs the triangulation as Hands3D, got {type(init).__name__}")
    if init.views is None:
        raise InputError("optimize needs the 2D views the 3D was triangulated from "
                         "(init.views is None: 3D loaded from a file?)")  # fmt: skip
    if init.units != rig.units:
        raise InputError(f"the 3D is in {init.units} but the rig in {rig.units}; convert one "
                         "(rig.to_units)")  # fmt: skip
    cams = init.views.cameras
    unknown = [c for c in cams if c not in rig.names]
    if unknown:
        raise InputError(f"camera(s) {', '.join(unknown)} of the 2D views are not in the rig "
                         f"({', '.join(rig.names)})")  # fmt: skip
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    rig = rig.subset(cams) if tuple(rig.names) != tuple(cams) else rig
    kp = init.views.keypoints.keypoints_px
    sc = init.views.keypoints.scores
    mask = np.isfinite(kp).all(-1) & (sc > 0) & init.views.inliers
    x = np.where(np.isfinite(init.keypoints3d).all(-1, keepdims=True), init.keypoints3d, np.nan)
    return rig, kp, np.where(mask, sc, 0.0), mask, x


def view_statistics(rig: Rig, kp: np.ndarray, sc: np.ndarray, mask: np.ndarray,
                    points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Mean reprojection error (px, with distortion), views used and mean score per joint
    ``(T, H, J)`` over the views ``mask`` (C, T, H, J)."""
    err = reprojection_errors(rig, points, kp)
    used = mask & np.isfinite(err)
    n_views = used.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_err = np.where(n_views > 0, np.where(used, err, 0.0).sum(0) / n_views, np.nan)
        mean_score = np.where(n_views > 0, np.where(used, sc, 0.0).sum(0) / n_views, 0.0)
    return mean_err, n_views.astype(np.int64), mean_score


def optimize_hand(x_init: np.ndarray, hand: HandData, cams: Cameras, cfg: OptimizerConfig,
                  fps: float) -> tuple[np.ndarray, np.ndarray, dict]:  # fmt: skip
    """Optimize one hand window by window.

    Args:
        x_init: ``(T, J, 3)`` initial joints in mm, NaN where missing.
        hand: the hand's observations; cams: the cameras in mm; cfg: settings; fps.

    Returns:
        ``(T, J, 3)`` joints in mm (NaN where not reconstructed), bone lengths (20,) mm, and
        ``{"motion": RMS acceleration (velocity), "windows": one dict per window}``.
    """
    active, x0 = bridge_gaps(x_init, cfg.max_gap_frames)
    out = np.full_like(x0, np.nan)
    lengths = LengthState(initial_lengths(x_init), active)
    smooth_s2, motion = smoothness_weight(x_init, cfg, fps)
    info: dict = {"motion": motion, "windows": []}
    if not active.any():
        return out, lengths.initial, info
    wins = windows(x_init.shape[0], cfg.window, cfg.overlap)
    prev_stop = 0
    for k, (start, stop) in enumerate(wins):
        if prev_stop > start:  # warm start the overlap from the previous window
            x0[start:prev_stop] = out[start:prev_stop]
        t0 = time.perf_counter()
        x_win = x0[start:stop]
        problem = Problem(hand.frames(start, stop), active[start:stop], cams, cfg, smooth_s2,
                          x_win, lengths.estimate(x_win, active[start:stop]), fps)  # fmt: skip
        res = problem.minimise(x_win, lengths)
        x = res.state[0]
        info["windows"].append({"frames": (start, stop), "iterations": len(res.costs) - 1,
                                "final_cost": res.costs[-1], "costs": res.costs,
                                "cg_iterations": res.solver_iterations,
                                "seconds": time.perf_counter() - t0})  # fmt: skip
        log.debug("optimizer window %d-%d: %d iterations, cost %.4g -> %.4g", start, stop,
                  len(res.costs) - 1, res.costs[0], res.costs[-1])  # fmt: skip
        ramp = np.ones(stop - start)
        n_over = max(0, prev_stop - start)
        ramp[:n_over] = np.arange(1, n_over + 1) / (n_over + 1)
        prev = np.nan_to_num(out[start:stop])
        out[start:stop] = prev * (1 - ramp[:, None, None]) + x * ramp[:, None, None]
        keep = stop if k == len(wins) - 1 else wins[k + 1][0]
        lengths.commit(x[: keep - start], active[start:keep])
        prev_stop = stop
    out[~active] = np.nan
    return out, lengths.final(), info


class HandObjective:
    """The optimizer's cost of one hand over some frames, as a function of its joints (for
    checking the terms and their gradient).

    Attributes:
        x0: ``(T, J, 3)`` the initial joints (mm, gaps bridged); lengths0: ``(20,)`` mm.
    """

    def __init__(self, problem: Problem, x0: np.ndarray, lengths0: np.ndarray) -> None:
        self._problem, self.x0, self.lengths0 = problem, x0, lengths0

    def cost(self, x_mm: np.ndarray, lengths_mm: np.ndarray) -> float:
        """The total cost at joints ``x_mm`` (T, J, 3) and bone lengths ``lengths_mm`` (20,)."""
        return self._problem.cost(np.asarray(x_mm, float), np.asarray(lengths_mm, float))

    def gradient(self, x_mm: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
        """The Gauss-Newton gradient ``2 J^T r`` (T, J, 3) with respect to the joints."""
        x = np.asarray(x_mm, float)
        return 2.0 * self._problem.linearize(x, np.asarray(lengths_mm, float))[2].reshape(x.shape)


def hand_objective(rig: Rig, init: Hands3D, hand: int, cfg: OptimizerConfig = DEFAULT_CONFIG,
                   fps: float | None = None, frames: slice = slice(None),
                   w_smoothness_per_mm2: float | None = None) -> HandObjective:  # fmt: skip
    """The cost :func:`optimize` minimises for hand ``hand`` over ``frames``, with the weights
    of ``cfg`` as given (no cross-validation) and the noise model estimated as it does.

    ``w_smoothness_per_mm2`` overrides the motion-adapted smoothness weight (per mm^2).
    """
    rig, kp, sc, mask, x_init = _check_inputs(rig, init, fps)
    fps = float(fps if fps is not None else init.views.keypoints.fps or REFERENCE_FPS)
    sigma = estimate_noise_px(rig, x_init, kp, sc, mask, cfg)
    weight = np.where(mask, sc, 0.0) * cfg.w_reprojection / sigma[:, None, None, :] ** 2
    obs = np.nan_to_num(rig.undistort(np.where(mask[..., None], kp, 0.0)))
    x = x_init[frames, hand] * UNIT_SCALE_M[rig.units] * _MM_PER_M
    active, x0 = bridge_gaps(x, cfg.max_gap_frames)
    s2 = smoothness_weight(x, cfg, fps)[0] if w_smoothness_per_mm2 is None else w_smoothness_per_mm2
    data = HandData(obs[:, frames, hand], weight[:, frames, hand],
                    1.0 if init.hands[hand] == "right" else -1.0)  # fmt: skip
    L0 = initial_lengths(x)
    return HandObjective(Problem(data, active, Cameras.from_rig(rig), cfg, s2, x0, L0, fps),
                         x0, L0)  # fmt: skip
