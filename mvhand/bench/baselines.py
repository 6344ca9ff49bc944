"""3D methods compared side by side on the same 2D inputs in the same run.

Each method maps a sequence's 2D detections and calibration to 3D hands ``(T, 2, 21, 3)`` in
the calibration's units:

- ``dlt``: score-weighted DLT over every view (no outlier rejection, no swap repair).
- ``robust``: mvhand's robust triangulation (RANSAC over views, left/right swap repair).
- ``optimizer``: the full 3D stage (robust triangulation, then the optimizer, default config).
- ``opt_reproj``, ``opt_smooth``: the optimizer's ablation, from the same robust
  initialisation: reprojection only, then + temporal smoothness; + bone lengths is the full
  default (``optimizer``);
- ``opt_shape``: the full optimizer plus the paper's rotation-invariant shape term (off by
  default: it costs about twice the optimizer's time).
- ``paper``: the paper's 3D objective, from the robust triangulation: confidence-weighted
  squared reprojection error (px) 1 + squared change from the previous frame (mm) 20 + shape
  consistency (mm, wrist-centred and Procrustes-aligned to the previous frame) 50, each term
  the mean over its residuals, minimised by SciPy's L-BFGS-B (100 iterations) over 50-frame
  windows with 25 frames of overlap. The paper does not state the terms' units; px and mm
  with means (as a PyTorch loss would have them) is this reading of it.
- ``anipose_dlt``, ``anipose_ransac``, ``anipose_optim``: aniposelib's ``triangulate``,
  ``triangulate_ransac`` and ``optim_points`` (bone-length constraints, anipose's defaults),
  each hand separately, 2D below ``ANIPOSE_SCORE_THRESHOLD`` dropped as anipose does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mvhand.bench.dataset import SequenceData
from mvhand.bench.evaluate import DEFAULT_EVAL, EvalConfig, SequenceScores, score_sequence
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.skeleton import BONES
from mvhand.errors import MissingDependencyError

log = logging.getLogger(__name__)

#: 2D joints scored below this are dropped before aniposelib sees them (anipose's
#: ``triangulation.score_threshold`` default).
ANIPOSE_SCORE_THRESHOLD = 0.5
#: aniposelib's ``triangulate_ransac`` tries every subset of the cameras that see a point (2^C
#: triangulations): 0.05 s per point with 4 cameras and about 0.5 s with 12 here
#: (benchmarks/bench_3d.py), i.e. hours for a 300-frame sequence of two hands. Above this many
#: cameras the method is skipped, not run.
ANIPOSE_RANSAC_MAX_CAMERAS = 8
#: The paper's 3D objective: weights of reprojection, smoothness and shape, L-BFGS-B
#: iterations, window and overlap (frames), and the longest gap its windows bridge.
PAPER_WEIGHTS = (1.0, 20.0, 50.0)
PAPER_ITERATIONS = 100
PAPER_WINDOW, PAPER_OVERLAP = 50, 25
PAPER_MAX_GAP = 10
#: The paper's shape weight is relative to its own residual units; this is the weight used for
#: the ``opt_shape`` variant when the optimizer's default leaves the term off.
ABLATION_W_SHAPE = 3.0


class MethodSkippedError(Exception):
    """A method declines an input it cannot process in reasonable time; the message says why."""


@dataclass(frozen=True)
class Method:
    """A 3D method.

    Attributes:
        name: identifier used on the command line.
        label: name in tables and plots.
        run: ``(rig, detections) -> (T, 2, 21, 3)`` points in ``rig.units``.
        slow: takes minutes on a full sequence (left out of quick runs).
    """

    name: str
    label: str
    run: Callable[[Rig, Keypoints2D], np.ndarray]
    slow: bool = False


def _reconstruct_cfg():
    from mvhand.stages.reconstruct import ReconstructConfig

    return ReconstructConfig()


def _triangulate(robust: bool) -> Callable[[Rig, Keypoints2D], np.ndarray]:
    def run(rig: Rig, kp: Keypoints2D) -> np.ndarray:
        from mvhand.core.triangulate import triangulate

        base = _reconstruct_cfg().triangulation
        cfg = base if robust else replace(base, robust=False, swap_repair=False)
        return triangulate(rig, kp, cfg).keypoints3d

    return run


def _optimizer(**weights: float) -> Callable[[Rig, Keypoints2D], np.ndarray]:
    """The 3D stage with the optimizer's weights replaced by ``weights`` (none: defaults)."""

    def run(rig: Rig, kp: Keypoints2D) -> np.ndarray:
        from mvhand.stages.reconstruct import run_reconstruct

        cfg = _reconstruct_cfg()
        w = dict(weights)
        if w.get("w_shape") == "ablation":
            w["w_shape"] = cfg.optimizer.w_shape or ABLATION_W_SHAPE
        cfg = replace(cfg, optimizer=replace(cfg.optimizer, enabled=True, **w))
        return run_reconstruct(kp, rig, cfg).hands3d.keypoints3d

    return run


def paper_objective(rig: Rig, kp: Keypoints2D) -> np.ndarray:
    """The paper's 3D objective (see the module docstring), each hand separately, from the
    robust triangulation and its inlier views; ``(T, H, 21, 3)`` in ``rig.units``."""
    from mvhand.core.camera import UNIT_SCALE_M
    from mvhand.core.optimize.gaps import bridge_gaps, windows
    from mvhand.core.optimize.residuals import Cameras, HandData
    from mvhand.core.triangulate import triangulate

    rig = rig.subset(kp.cameras)
    tri = triangulate(rig, kp, _reconstruct_cfg().triangulation)
    v = tri.views
    use = v.inliers & np.isfinite(v.keypoints.keypoints_px).all(-1) & (v.keypoints.scores > 0)
    obs = np.nan_to_num(rig.undistort(np.where(use[..., None], v.keypoints.keypoints_px, 0.0)))
    weight = np.where(use, v.keypoints.scores, 0.0)
    cams, mm = Cameras.from_rig(rig), UNIT_SCALE_M[rig.units] * 1000.0
    out = np.full(tri.keypoints3d.shape, np.nan)
    for h in range(out.shape[1]):
        active, x0 = bridge_gaps(tri.keypoints3d[:, h] * mm, PAPER_MAX_GAP)
        if not active.any():
            continue
        hand = HandData(obs[:, :, h], weight[:, :, h], 1.0)
        x = np.zeros_like(x0)
        prev_stop = 0
        for start, stop in windows(len(x0), PAPER_WINDOW, PAPER_OVERLAP):
            win = _paper_window(hand.frames(start, stop), active[start:stop], cams,
                                x0[start:stop])  # fmt: skip
            ramp = np.ones(stop - start)
            n_over = max(0, prev_stop - start)
            ramp[:n_over] = np.arange(1, n_over + 1) / (n_over + 1)
            x[start:stop] = x[start:stop] * (1 - ramp[:, None, None]) + win * ramp[:, None, None]
            prev_stop = stop
        out[:, h] = np.where(active[..., None], x / mm, np.nan)
    return out


def _paper_window(hand, active: np.ndarray, cams, x0: np.ndarray) -> np.ndarray:
    """L-BFGS-B on one window of the paper's objective; joints ``(T, 21, 3)`` mm."""
    from scipy.optimize import minimize

    from mvhand.core.optimize.residuals import Observations, reprojection, shape_rows

    obs = Observations.build(hand, active, cams)
    pairs = active[1:] & active[:-1]
    n_rep, n_pairs = max(len(obs.point), 1), max(3 * int(pairs.sum()), 1)
    w_rep, w_smooth, w_shape = PAPER_WEIGHTS

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(x0.shape)
        c_rep, _, g_rep = reprojection(x, obs, "linear", 1.0, jacobian=True)
        d = np.where(pairs[..., None], x[1:] - x[:-1], 0.0)
        g = 2.0 * w_rep / n_rep * g_rep.reshape(x.shape)
        g[1:] += 2.0 * w_smooth / n_pairs * d
        g[:-1] -= 2.0 * w_smooth / n_pairs * d
        res, idx, jac = shape_rows(x, active, 1.0)
        n_shape = max(len(res), 1)
        g += (2.0 * w_shape / n_shape * np.bincount(
            idx.ravel(), (jac * res[:, None]).ravel(), x.size)).reshape(x.shape)  # fmt: skip
        cost = (w_rep * c_rep / n_rep + w_smooth * float(np.sum(d * d)) / n_pairs
                + w_shape * float(res @ res) / n_shape)  # fmt: skip
        return cost, np.where(active[..., None], g, 0.0).ravel()

    from mvhand.core.optimize.solver import single_threaded_blas

    with single_threaded_blas():  # L-BFGS-B's small products: BLAS threads only spin
        res = minimize(fun, x0.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": PAPER_ITERATIONS})  # fmt: skip
    return res.x.reshape(x0.shape)


def camera_group(rig: Rig):
    """An ``aniposelib.cameras.CameraGroup`` of the rig (pinhole cameras only)."""
    try:
        from aniposelib.cameras import Camera, CameraGroup
    except ImportError as exc:
        raise MissingDependencyError(
            f"aniposelib is needed for the anipose baselines ({exc}); pip install aniposelib"
        ) from None
    cams = [Camera(name=c.name, size=list(c.size_px), matrix=c.K, dist=c.dist, rvec=c.rvec,
                   tvec=c.t_cam_world) for c in rig.cameras]  # fmt: skip
    return CameraGroup(cams)


def _anipose_input(rig: Rig, kp: Keypoints2D) -> tuple[Rig, np.ndarray, np.ndarray]:
    rig = rig.subset(kp.cameras)
    pts = np.where((kp.scores >= ANIPOSE_SCORE_THRESHOLD)[..., None], kp.keypoints_px, np.nan)
    return rig, pts, kp.scores


def _anipose(kind: str) -> Callable[[Rig, Keypoints2D], np.ndarray]:
    def run(rig: Rig, kp: Keypoints2D) -> np.ndarray:
        rig, pts, scores = _anipose_input(rig, kp)
        C, T, H, J, _ = pts.shape
        if kind == "ransac" and C > ANIPOSE_RANSAC_MAX_CAMERAS:
            raise MethodSkippedError(f"not run with {C} cameras: triangulate_ransac tries all 2^C "
                                "camera subsets per point: hours for a sequence")
        group = camera_group(rig)
        out = np.full((T, H, J, 3), np.nan)
        for h in range(H):
            flat = pts[:, :, h].reshape(C, -1, 2)
            # aniposelib fails on points seen by fewer than 2 cameras: leave those NaN
            seen = np.isfinite(flat).all(-1).sum(0) >= 2
            p3 = np.full((T * J, 3), np.nan)
            if seen.any() and kind == "ransac":
                p3[seen] = group.triangulate_ransac(flat[:, seen], undistort=True, min_cams=2,
                                                    progress=False)[0]  # fmt: skip
            elif seen.any():
                p3[seen] = group.triangulate(flat[:, seen], undistort=True, progress=False)
            p3 = p3.reshape(T, J, 3)
            if kind == "optim":
                p3 = _anipose_optim(group, pts[:, :, h], p3, scores[:, :, h])
            out[:, h] = p3
        return out

    return run


def _anipose_optim(group, pts: np.ndarray, init: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """aniposelib's ``optim_points`` as anipose runs it; NaN where the input had no 3D at all."""
    ok = np.isfinite(init).all(-1)
    if ok.sum() < 2:
        return init
    never = ~ok.any(0)  # joints never triangulated: optim_points invents them
    # aniposelib interpolates its start over time; a joint with no 3D in any frame would stay
    # NaN ("residuals are not finite"): start it at the hand's mean joint (dropped below)
    init = init.copy()
    init[:, never] = np.nanmean(init[ok], axis=0)
    try:
        res = group.optim_points(pts, init, constraints=BONES.tolist(), scores=scores,
                                 scale_smooth=4, scale_length=2, reproj_error_threshold=15,
                                 n_deriv_smooth=1)  # fmt: skip
    except ValueError as exc:  # its smoothness scale is 1 / mean motion: a still track -> inf
        raise MethodSkippedError(f"aniposelib optim_points failed on this hand ({exc})") from exc
    res[:, never] = np.nan
    return res


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("dlt", "DLT", _triangulate(robust=False)),
    Method("robust", "robust", _triangulate(robust=True)),
    Method("opt_reproj", "opt: reproj only",
           _optimizer(w_smoothness=0.0, w_shape=0.0, w_bone=0.0, w_angle_limits=0.0)),
    Method("opt_smooth", "opt: +smooth", _optimizer(w_shape=0.0, w_bone=0.0)),
    Method("optimizer", "optimizer (full)", _optimizer()),
    Method("opt_shape", "optimizer + shape term",
           _optimizer(w_shape="ablation")),  # type: ignore[arg-type]
    Method("paper", "paper objective (L-BFGS-B)", paper_objective, slow=True),
    Method("anipose_dlt", "anipose triangulate", _anipose("dlt")),
    Method("anipose_ransac", "anipose ransac", _anipose("ransac"), slow=True),
    Method("anipose_optim", "anipose optim_points", _anipose("optim"), slow=True),
)}  # fmt: skip


def resolve_methods(names: str | None, quick: bool = False) -> list[Method]:
    """Methods from a comma-separated list ("all" or None: every method; ``quick`` drops the
    slow ones).

    Raises:
        ValueError: an unknown method name.
    """
    if names in (None, "", "all"):
        chosen = list(METHODS.values())
    else:
        keys = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [k for k in keys if k not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
        chosen = [METHODS[k] for k in keys]
    return [m for m in chosen if not (quick and m.slow)]


def run_method(method: Method, seq: SequenceData) -> tuple[Hands3D, float]:
    """Run ``method`` on a sequence's detections: the 3D hands and the wall time (s)."""
    kp = seq.detections()
    if kp.fps is None:
        kp = Keypoints2D(kp.keypoints_px, kp.scores, kp.cameras, kp.hands, seq.info.fps)
    start = time.perf_counter()
    pts = np.asarray(method.run(seq.rig, kp), dtype=float)
    seconds = time.perf_counter() - start
    shape = pts.shape[:-1]
    hands = Hands3D(pts, np.full(shape, np.nan), np.zeros(shape, int), np.zeros(shape),
                    seq.rig.units, kp.hands)  # fmt: skip
    return hands, seconds


def run_baselines(sequences: list[SequenceData], methods: list[Method],
                  cfg: EvalConfig = DEFAULT_EVAL,
                  progress: Callable[[str, str], None] | None = None,
                  ) -> dict[str, list[SequenceScores]]:  # fmt: skip
    """Score every method on every sequence; also the 2D input (``"detections"``) in 2D.

    Returns:
        Method label -> per-sequence scores (the first entry, "2D input", holds
        the 2D metrics of the detections themselves).
    """
    results: dict[str, list[SequenceScores]] = {"2D input": []}
    for seq in sequences:
        results["2D input"].append(score_sequence(seq, pred2d=seq.detections(),
                                                               cfg=cfg))  # fmt: skip
    for method in methods:
        rows = []
        for seq in sequences:
            if progress is not None:
                progress(method.label, seq.name)
            try:
                hands, seconds = run_method(method, seq)
            except MethodSkippedError as exc:
                log.warning("%s on %s: %s", method.name, seq.name, exc)
                rows.append(SequenceScores(seq.name, seq.info.level, notes=[str(exc)]))
                continue
            rows.append(score_sequence(seq, pred3d=hands, cfg=cfg, time_s=seconds))
        results[method.label] = rows
    return results
