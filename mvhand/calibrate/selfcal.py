"""Self-calibration: the extrinsics refined on the recording's own hands and bodies.

A calibration made before the recording (a board, a Qualisys wand) can be off for the videos:
a camera nudged, a video cropped or rescaled, a calibration of another session. Every joint
seen by three or more cameras is a point of a bundle adjustment, so the recording itself can
correct the cameras' poses:

1. the points: every hand joint (after the left/right repair) and every body joint scored at
   least ``body_min_score``, robustly triangulated
   (:func:`~mvhand.core.triangulate.triangulate_points`); only the inlier views of joints with
   ``min_views`` inliers count, at most ``max_points`` of them spread over the frames;
2. the adjustment: all cameras' poses and all points (Levenberg-Marquardt, the points
   eliminated by the Schur complement), a soft-L1 loss on each view's pixel error (scale:
   twice the median error), and a Gaussian prior tying each camera to its given pose:
   ``prior_deg`` of rotation, ``prior_fraction`` of its distance to the scene for its position.
   The prior keeps a camera where the points say little about it; intrinsics are kept. The
   result is then moved by the similarity that puts the adjusted points back onto the given
   rig's (fitted to the 80 % that agree best): the scene alone cannot say where the world
   frame, its origin or its scale are, so they stay the given calibration's;
3. the check: refined on the first half of the frames and scored on the second (and the
   other way round), by leave-one-camera-out error, each camera predicted from the
   triangulation of the others. The refinement is used only if this error on frames it did not
   see falls by at least ``min_gain`` and ``min_gain_px``; then it is done again on all frames.

Measured (``benchmarks/bench_real.py --self-calibrate``: refined on one half of the frames,
the hands scored leave-one-camera-out on the other half; robust triangulation):

- Pose2Sim single (4 cameras, Qualisys calibration, MediaPipe 2D): 19.1 -> 13.5 px; bodies
  alone 14.0 px (the hand detector's own biases cannot be what a refinement on body joints
  learnt, so the calibration itself is off for these videos). Pose2Sim multi, person-hands:
  17.3 -> 14.7, 16.3 -> 10.7, 9.1 -> 9.0, 13.8 -> 7.6 px. handmocap (hands only): 1.40 ->
  1.29 px.
- Rendered benchmark with exact cameras (hands only, in a small volume): the adjustment turns
  cameras by several degrees (it absorbs the detector's view-dependent errors) and the check
  refuses it at every level (L0 +6.9 %, L1 -0.6 %, L2 +39.6 % held-out error); forced, the 3D
  stage's MPJPE would rise 6.63 -> 7.23 mm (L0), 6.95 -> 7.36 mm (L1). With every camera
  turned 0.5 degrees and moved 1 cm (``benchmarks/bench_selfcal.py``) it is used and the
  MPJPE falls 8.94 -> 7.33 mm (L0), 9.63 -> 8.30 mm (L1).
- One round of adjustment instead of two: a camera turned by a degree keeps 0.8 degrees of
  it (most of its views are not inliers of the given cameras' triangulation).
- Refining orientations only (positions held) was tried: on the rendered set the scene then
  drifts (a common shift of the points, undone by turning every camera) and the MPJPE went to
  80 mm; it is not offered.

Arrays: ``points_px (C, N, 2)``, ``scores (C, N)``, ``frame (N,)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.calibrate.bundle import _cameras_from, _project, similarity_align, transform_cameras
from mvhand.config import param
from mvhand.core.camera import Rig
from mvhand.core.triangulate import TriangulationConfig, triangulate_points


@dataclass(frozen=True)
class SelfCalibrationConfig:
    """Settings of the self-calibration (the ``[self_calibration]`` section)."""

    enabled: bool = param(
        True, "Refine the cameras' poses on the recording's hands and bodies before the 3D "
        "stage, when a check on frames the refinement did not see says it helps.",
    )  # fmt: skip
    sources: str = param(
        "hands+body", "What the points are: hand joints, body joints or both.",
        choices=("hands+body", "hands", "body"),
    )  # fmt: skip
    prior_deg: float = param(
        1.0, "How far (degrees, one standard deviation) a given camera's orientation is "
        "expected to be off.", gt=0, le=90,
    )  # fmt: skip
    prior_fraction: float = param(
        0.02, "How far a given camera's position is expected to be off, as a fraction of its "
        "distance to the scene (one standard deviation).", gt=0, le=1,
    )  # fmt: skip
    min_views: int = param(3, "Inlier views a joint needs to be a point.", ge=3, le=1000)
    body_min_score: float = param(
        0.7, "Body joints scored below this are not used (low-score feet and faces misled "
        "the extrinsics-from-people calibration).", ge=0, le=1,
    )  # fmt: skip
    min_points: int = param(200, "Fewer points than this: nothing is refined.", ge=10)
    max_points: int = param(
        6000, "At most this many points, evenly spread over the frames, go into each "
        "adjustment (its cost is bounded by this, not by the video's length).", ge=100,
    )  # fmt: skip
    # 0.05: on the rendered L1 sequence (exact cameras) the error fell 2.4 % with a refinement
    # that would have raised the MPJPE 6.95 -> 7.31 mm; handmocap falls 8 %, Pose2Sim 22-28 %.
    min_gain: float = param(
        0.05, "The check's leave-one-camera-out error on unseen frames must fall by at least "
        "this fraction for the refinement to be used.", ge=0, le=1,
    )  # fmt: skip
    min_gain_px: float = param(
        0.05, "... and by at least this many pixels (on near-exact 2D every error is tiny and "
        "a relative fall means nothing).", ge=0, le=1e3,
    )  # fmt: skip
    max_iterations: int = param(30, "Levenberg-Marquardt iterations of each adjustment at most.",
                                ge=5, le=10000)  # fmt: skip
    warn_deg: float = param(
        0.5, "A used refinement that turns a camera by more than this (degrees) is a warning.",
        ge=0, le=90,
    )  # fmt: skip


#: Adjustments per refinement, each on the inlier views of the cameras the last one gave: a
#: camera turned by a degree has most of its views rejected by the given cameras'
#: triangulation, so the first round corrects it only in part.
REFINE_ROUNDS = 2

#: The default settings, and the triangulation's (one instance each, for function defaults).
DEFAULT_CONFIG = SelfCalibrationConfig()
_TRIANGULATION = TriangulationConfig()


@dataclass(frozen=True, eq=False)
class ScenePoints:
    """2D joints of the recording, each seen by several cameras.

    Attributes:
        points_px: ``(C, N, 2)`` pixels, NaN where a camera did not see the joint.
        scores: ``(C, N)`` detector scores, 0 where unseen.
        frame: ``(N,)`` frame of each joint.
        kind: ``(N,)`` 0 hand joint, 1 body joint.
    """

    points_px: np.ndarray
    scores: np.ndarray
    frame: np.ndarray
    kind: np.ndarray

    @classmethod
    def from_arrays(cls, points_px: np.ndarray, scores: np.ndarray, kind: int,
                    min_score: float = 0.0) -> ScenePoints:  # fmt: skip
        """From per-frame arrays ``(C, T, ..., 2)`` and scores ``(C, T, ...)``."""
        C, T = points_px.shape[:2]
        px = np.asarray(points_px, dtype=float).reshape(C, T, -1, 2)
        sc = np.nan_to_num(np.asarray(scores, dtype=float).reshape(C, T, -1))
        ok = np.isfinite(px).all(-1) & (sc > 0) & (sc >= min_score)
        K = px.shape[2]
        return cls(np.where(ok[..., None], px, np.nan).reshape(C, T * K, 2),
                   np.where(ok, sc, 0.0).reshape(C, T * K), np.repeat(np.arange(T), K),
                   np.full(T * K, kind, dtype=np.int64))  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[ScenePoints]) -> ScenePoints:
        return cls(np.concatenate([p.points_px for p in parts], axis=1),
                   np.concatenate([p.scores for p in parts], axis=1),
                   np.concatenate([p.frame for p in parts]),
                   np.concatenate([p.kind for p in parts]))  # fmt: skip

    def take(self, idx: np.ndarray) -> ScenePoints:
        return ScenePoints(self.points_px[:, idx], self.scores[:, idx], self.frame[idx],
                           self.kind[idx])  # fmt: skip

    def seen_by(self, n: int) -> np.ndarray:
        """``(N,)`` True where at least ``n`` cameras saw the joint."""
        return (self.scores > 0).sum(0) >= n


@dataclass(frozen=True, eq=False)
class SelfCalibration:
    """The self-calibration's outcome.

    Attributes:
        rig: the rig to use: refined when ``applied``, else the given one.
        applied: whether the refinement is used.
        info: what was measured (for ``report.json``): points, the check's errors, and per
            camera the rotation (degrees) and the move of its centre (rig units).
    """

    rig: Rig
    applied: bool
    info: dict


def _spread(idx: np.ndarray, frame: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of the points ``idx``, evenly over their order (frames ascending)."""
    if len(idx) <= n:
        return idx
    order = idx[np.argsort(frame[idx], kind="stable")]
    return order[np.linspace(0, len(order) - 1, n).round().astype(int)]


def _inlier_points(rig: Rig, pts: ScenePoints, cfg: SelfCalibrationConfig, tri_cfg
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Triangulated points with ``min_views`` inliers: ``X (M, 3)``, ``px (C, M, 2)``,
    ``weights (C, M)`` (score on inlier views, else 0), and their indices into ``pts``."""
    X, inl = triangulate_points(rig, pts.points_px, pts.scores, tri_cfg)
    good = np.flatnonzero(np.isfinite(X).all(-1) & (inl.sum(0) >= cfg.min_views))
    good = _spread(good, pts.frame, cfg.max_points)
    w = np.where(inl[:, good], pts.scores[:, good], 0.0)
    return X[good], pts.points_px[:, good], w, good


def refine_rig(rig: Rig, pts: ScenePoints, cfg: SelfCalibrationConfig = DEFAULT_CONFIG,
               tri_cfg: TriangulationConfig = _TRIANGULATION) -> tuple[Rig, dict]:  # fmt: skip
    """The rig refined on all of ``pts`` (no check): :func:`adjust_extrinsics` on their
    inlier views; the info adds the points used and per camera the rotation (degrees)."""
    refined, first = rig, None
    for _ in range(REFINE_ROUNDS):  # the views that are inliers change as the cameras do
        X, px, w, idx = _inlier_points(refined, pts, cfg, tri_cfg)
        refined, adj = adjust_extrinsics(rig, X, px, w, cfg, start=refined)
        first = adj["median_error_px"][0] if first is None else first
    adj["median_error_px"][0] = first
    # the points alone leave the world frame free: keep the given one (the given rig's
    # triangulation of the same joints)
    Xg, _ = triangulate_points(rig, pts.points_px[:, idx], pts.scores[:, idx], tri_cfg)
    ok = np.isfinite(Xg).all(-1)
    s, R, t = _robust_similarity(adj.pop("points")[ok], Xg[ok])
    refined = Rig(transform_cameras(refined.cameras, s, R, t), rig.units)
    deg, move = _pose_change(rig, refined)
    return refined, {"points": len(X), **adj, "rotation_deg": deg, "moved": move}


def _robust_similarity(src: np.ndarray, dst: np.ndarray, keep: float = 0.8,
                       rounds: int = 3) -> tuple[float, np.ndarray, np.ndarray]:  # fmt: skip
    """``s, R, t`` mapping the adjusted points ``src`` onto the given rig's ``dst``, fitted
    to the ``keep`` fraction that agree best (a camera the adjustment corrected moves the points
    it saw). Applied to the adjusted cameras, it keeps the scene where the given calibration
    put it: self-calibration changes how the cameras sit relative to each other, not the
    world frame, its origin or its scale."""
    use = np.ones(len(src), bool)
    for _ in range(rounds):
        s, R, t = similarity_align(src[use], dst[use])
        d = np.linalg.norm(s * src @ R.T + t - dst, axis=1)
        use = d <= np.quantile(d, keep)
    return similarity_align(src[use], dst[use])


def _pose_change(rig: Rig, new: Rig) -> tuple[np.ndarray, np.ndarray]:
    """Per camera: rotation between the two poses (degrees) and centre move (rig units)."""
    deg, move = [], []
    for a, b in zip(rig.cameras, new.cameras, strict=True):
        r = Rotation.from_matrix(b.R_cam_world @ a.R_cam_world.T).magnitude()
        deg.append(np.rad2deg(r))
        move.append(np.linalg.norm(b.center_world - a.center_world))
    return np.array(deg), np.array(move)


def adjust_extrinsics(rig: Rig, X: np.ndarray, px: np.ndarray, weights: np.ndarray,
                      cfg: SelfCalibrationConfig, start: Rig | None = None
                      ) -> tuple[Rig, dict]:  # fmt: skip
    """Bundle adjustment of every camera's pose and the points, with the prior of ``cfg``.

    Levenberg-Marquardt on the Schur complement (the points eliminated, 3x3 block by block),
    soft-L1 on each view's pixel error by reweighting, Jacobians by forward differences (each
    view depends on one camera and one point, so 9 projections give them all).

    Args:
        rig: the given cameras (their poses are the prior's centre).
        X: ``(M, 3)`` initial points; px: ``(C, M, 2)`` their views; weights: ``(C, M)``
            (0: view not used).
        start: the cameras to start from (default ``rig``).

    Returns:
        The refined rig, and the median weighted pixel error before and after.
    """
    cams = list(rig.cameras)
    C, M = len(cams), len(X)
    ci, pi = np.nonzero(weights > 0)
    uv, sw = px[ci, pi], np.sqrt(weights[ci, pi])
    K = 6  # parameters per camera: rotation vector, translation
    cp0 = np.stack([np.concatenate([c.rvec, c.t_cam_world]) for c in (start or rig).cameras])
    R0 = np.stack([c.R_cam_world for c in cams])
    centres0 = np.stack([c.center_world for c in cams])
    distance = np.linalg.norm(centres0 - np.median(X, axis=0), axis=1)
    sigma = np.concatenate([np.full((C, 3), np.deg2rad(cfg.prior_deg)),
                            np.repeat(np.maximum(cfg.prior_fraction * distance, 1e-9)[:, None],
                                      3, axis=1)], axis=1)  # fmt: skip
    e_px = lambda cp, Xp: (_project(cp, cams, ci, Xp[pi]) - uv) * sw[:, None]  # noqa: E731
    e0 = np.linalg.norm(e_px(cp0, X), axis=1)
    scale = max(2.0 * float(np.median(e0)), 1e-6)  # px: where the loss turns linear

    def prior(cp: np.ndarray) -> np.ndarray:  # (C, 6): rotation and centre change in sigmas
        R = Rotation.from_rotvec(cp[:, :3]).as_matrix()
        d_rot = Rotation.from_matrix(R @ np.transpose(R0, (0, 2, 1))).as_rotvec()
        return np.concatenate([d_rot, -np.einsum("cji,cj->ci", R, cp[:, 3:]) - centres0],
                              axis=1) / sigma  # fmt: skip

    def cost(cp: np.ndarray, Xp: np.ndarray) -> float:
        n2 = np.sum(e_px(cp, Xp) ** 2, axis=1) / scale**2
        return float(np.sum(2.0 * (np.sqrt(1.0 + n2) - 1.0)) + np.sum(prior(cp) ** 2))

    cp, Xc = cp0.copy(), X.copy()
    f, lam, evaluations = cost(cp, Xc), 1e-3, 1
    for _ in range(cfg.max_iterations):
        e = e_px(cp, Xc) / scale
        irls = 1.0 / np.sqrt(1.0 + np.sum(e * e, axis=1))  # soft-L1 reweighting
        step_c = 1e-6 * np.maximum(np.abs(cp).max(axis=0), 1.0)
        Jc = np.empty((len(ci), 2, K))
        for k in range(K):
            d = cp.copy()
            d[:, k] += step_c[k]
            Jc[:, :, k] = (e_px(d, Xc) / scale - e) / step_c[k]
        step_x = 1e-6 * max(float(np.abs(Xc).max()), 1.0)
        Jx = np.empty((len(ci), 2, 3))
        for k in range(3):
            d = Xc.copy()
            d[:, k] += step_x
            Jx[:, :, k] = (e_px(cp, d) / scale - e) / step_x
        rp = prior(cp)
        Jp = np.empty((C, K, K))
        for k in range(K):
            d = cp.copy()
            d[:, k] += step_c[k]
            Jp[:, :, k] = (prior(d) - rp) / step_c[k]
        w = irls[:, None, None]
        U = np.zeros((C, K, K))
        np.add.at(U, ci, np.einsum("mai,maj->mij", w * Jc, Jc))
        U += np.einsum("cai,caj->cij", Jp, Jp)
        gc = np.zeros((C, K))
        np.add.at(gc, ci, np.einsum("mai,ma->mi", w * Jc, e))
        gc += np.einsum("cai,ca->ci", Jp, rp)
        V = np.zeros((M, 3, 3))
        np.add.at(V, pi, np.einsum("mai,maj->mij", w * Jx, Jx))
        gx = np.zeros((M, 3))
        np.add.at(gx, pi, np.einsum("mai,ma->mi", w * Jx, e))
        Wd = np.zeros((M, C, K, 3))  # camera-point coupling, dense over cameras
        np.add.at(Wd, (pi, ci), np.einsum("mai,maj->mij", w * Jc, Jx))
        while True:
            Ud = U + lam * np.einsum("cii->ci", U)[:, :, None] * np.eye(K)
            Vd = V + lam * np.einsum("mii->mi", V)[:, :, None] * np.eye(3) + 1e-12 * np.eye(3)
            Vinv = _inv3(Vd)
            W2 = Wd.reshape(M, K * C, 3)
            Y = W2 @ Vinv  # (M, K C, 3), batched matrix products (BLAS, not einsum loops)
            S = -np.tensordot(Y, W2, axes=([0, 2], [0, 2]))
            for c in range(C):
                S[K * c : K * c + K, K * c : K * c + K] += Ud[c]
            rhs = -gc.ravel() + np.tensordot(Y, gx, axes=([0, 2], [0, 1]))
            dc = np.linalg.solve(S, rhs).reshape(C, K)
            dx = -(Vinv @ (gx + np.tensordot(W2, dc.ravel(), axes=([1], [0])))[:, :, None]
                   )[:, :, 0]  # fmt: skip
            f_new = cost(cp + dc, Xc + dx)
            evaluations += 1
            if f_new < f:
                break
            lam *= 10.0
            if lam > 1e8:
                break
        if f_new >= f:
            break
        cp, Xc, lam = cp + dc, Xc + dx, max(lam / 10.0, 1e-7)
        done = (f - f_new) < 1e-6 * f
        f = f_new
        if done:
            break
    new = Rig(_cameras_from(cp, cams), rig.units)
    e1 = np.linalg.norm(e_px(cp, Xc), axis=1)
    return new, {"median_error_px": [round(float(np.median(e0)), 3),
                                     round(float(np.median(e1)), 3)],
                 "evaluations": evaluations, "points": Xc}  # fmt: skip


def _inv3(A: np.ndarray) -> np.ndarray:
    """Inverses of ``(N, 3, 3)`` matrices by the adjugate (batched LAPACK calls for tiny
    matrices cost far more, most of all with BLAS threads competing for the cores)."""
    a, b, c = A[:, 0, 0], A[:, 0, 1], A[:, 0, 2]
    d, e, f = A[:, 1, 0], A[:, 1, 1], A[:, 1, 2]
    g, h, i = A[:, 2, 0], A[:, 2, 1], A[:, 2, 2]
    adj = np.stack([np.stack([e * i - f * h, c * h - b * i, b * f - c * e], -1),
                    np.stack([f * g - d * i, a * i - c * g, c * d - a * f], -1),
                    np.stack([d * h - e * g, b * g - a * h, a * e - b * d], -1)], -2)  # fmt: skip
    det = a * adj[:, 0, 0] + b * adj[:, 1, 0] + c * adj[:, 2, 0]
    return adj / det[:, None, None]


def held_out_errors(rig: Rig, pts: ScenePoints, tri_cfg: TriangulationConfig,
                    mask: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Leave-one-camera-out errors (px): each camera's views of the joints ``mask`` (N,) bool
    against the projection of the triangulation from the other cameras (finite ones, pooled).
    """
    pts = pts if mask is None else pts.take(np.flatnonzero(mask))
    out = []
    for c in range(len(rig)):
        others = [o for o in range(len(rig)) if o != c]
        X, _ = triangulate_points(rig.subset([rig.names[o] for o in others]),
                                  pts.points_px[others], pts.scores[others], tri_cfg)  # fmt: skip
        seen = pts.scores[c] > 0
        ok = seen & np.isfinite(X).all(-1)
        if ok.any():
            proj = rig.cameras[c].project(X[ok])
            out.append(np.linalg.norm(proj - pts.points_px[c, ok], axis=-1))
    e = np.concatenate(out) if out else np.zeros(0)
    return e[np.isfinite(e)]


def self_calibrate(rig: Rig, pts: ScenePoints, cfg: SelfCalibrationConfig = DEFAULT_CONFIG,
                   tri_cfg: TriangulationConfig = _TRIANGULATION) -> SelfCalibration:  # fmt: skip
    """Refine the rig's poses on the recording's points if a check on unseen frames says so.

    Example:
        >>> from mvhand.core import synthetic
        >>> from mvhand.core.camera import Camera
        >>> from scipy.spatial.transform import Rotation
        >>> rig = synthetic.make_or_rig(4)
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal([0, 0, 1.0], 0.3, (40, 30, 3))          # 40 frames of 30 points
        >>> px = rig.project(X) + rng.normal(0, 1.0, (4, 40, 30, 2))
        >>> c = rig.cameras[1]                                        # camera 1 turned 1 degree
        >>> R = Rotation.from_rotvec([0, np.deg2rad(1.0), 0]).as_matrix() @ c.R_cam_world
        >>> bad = Rig((rig.cameras[0], Camera(c.name, c.size_px, c.K, c.dist, R,
        ...            c.t_cam_world, c.model), *rig.cameras[2:]), rig.units)
        >>> res = self_calibrate(bad, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))
        >>> res.applied, res.info["check"]["held_out_median_px"][1] < 2.0
        (True, True)
    """
    from mvhand.core.optimize.solver import single_threaded_blas

    with single_threaded_blas():  # small solves; and the same result in any process
        return _self_calibrate(rig, pts, cfg, tri_cfg)


def _self_calibrate(rig: Rig, pts: ScenePoints, cfg: SelfCalibrationConfig,
                    tri_cfg: TriangulationConfig) -> SelfCalibration:  # fmt: skip
    t0 = time.perf_counter()
    info: dict = {"sources": cfg.sources, "applied": False, "units": rig.units}
    use = pts.seen_by(cfg.min_views)
    info["joints_seen_by_enough_cameras"] = int(use.sum())
    if use.sum() < cfg.min_points or len(rig) < 3:
        info["reason"] = (f"{int(use.sum())} joints seen by {cfg.min_views} cameras or more "
                          f"(at least {cfg.min_points} needed)" if len(rig) >= 3 else
                          "fewer than 3 cameras")  # fmt: skip
        return SelfCalibration(rig, False, {**info, "seconds": time.perf_counter() - t0})
    pts = pts.take(np.flatnonzero(use))
    cut = float(np.median(pts.frame))
    halves = [pts.frame < cut, pts.frame >= cut]
    if not halves[0].any() or not halves[1].any():
        halves = [np.arange(len(pts.frame)) % 2 == k for k in (0, 1)]
    before, after, folds = [], [], []
    for fit, test in ((halves[0], halves[1]), (halves[1], halves[0])):
        if fit.sum() < cfg.min_points // 2:  # (every point left is seen by min_views)
            continue
        refined, adj = refine_rig(rig, pts.take(np.flatnonzero(fit)), cfg, tri_cfg)
        scored = np.zeros(len(test), bool)  # at most max_points, spread over the frames
        scored[_spread(np.flatnonzero(test), pts.frame, cfg.max_points)] = True
        e0 = held_out_errors(rig, pts, tri_cfg, scored)
        e1 = held_out_errors(refined, pts, tri_cfg, scored)
        before.append(e0)
        after.append(e1)
        folds.append({"points": adj["points"], "held_out_median_px": [_r(e0), _r(e1)],
                      "max_rotation_deg": round(float(adj["rotation_deg"].max()), 3),
                      "median_error_px": adj["median_error_px"],
                      "evaluations": adj["evaluations"]})  # fmt: skip
    if not folds:
        info["reason"] = "too few points in each half of the frames for the check"
        return SelfCalibration(rig, False, {**info, "seconds": time.perf_counter() - t0})
    b, a = np.concatenate(before), np.concatenate(after)
    gain = 1.0 - _r(a) / max(_r(b), 1e-12)
    info["check"] = {"held_out_median_px": [_r(b), _r(a)], "gain": round(gain, 4),
                     "folds": folds}  # fmt: skip
    if gain < cfg.min_gain or _r(b) - _r(a) < cfg.min_gain_px:
        info["reason"] = (f"on frames it did not see, the refinement changed the held-out "
                          f"error by {-100 * gain:+.1f} % ({_r(b):.3g} -> {_r(a):.3g} px; a fall "
                          f"of {100 * cfg.min_gain:.0f} % and {cfg.min_gain_px:g} px is "
                          "needed)")  # fmt: skip
        return SelfCalibration(rig, False, {**info, "seconds": time.perf_counter() - t0})
    refined, adj = refine_rig(rig, pts, cfg, tri_cfg)
    deg, move = adj.pop("rotation_deg"), adj.pop("moved")
    info.update({
        "applied": True, **adj,
        "cameras": {c.name: {"rotation_deg": round(float(d), 3),
                             f"moved_{rig.units}": round(float(m), 5)}
                    for c, d, m in zip(rig.cameras, deg, move, strict=True)},
        "seconds": time.perf_counter() - t0,
    })  # fmt: skip
    return SelfCalibration(refined, True, info)


def _r(e: np.ndarray) -> float:
    return round(float(np.median(e)), 3) if e.size else float("nan")


__all__ = ["ScenePoints", "SelfCalibration", "SelfCalibrationConfig", "adjust_extrinsics",
           "held_out_errors", "refine_rig", "self_calibrate"]  # fmt: skip
