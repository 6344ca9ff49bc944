"""Robust multi-view triangulation of hand joints, vectorized over frames, hands and joints.

The method, for every joint of every hand in every frame at once:

1. Undistort each camera's 2D once to normalized coordinates; joints scored below
   ``min_score`` get weight 0 (ignored).
2. Confidence-weighted linear triangulation (DLT) from every view, re-weighted once by
   ``(focal / depth)^2`` so that the algebraic residual approximates the pixel error.
3. Robust view selection (``robust``): joints where some view disagrees by more than
   ``inlier_threshold_px`` get RANSAC over camera pairs instead of camera subsets: each pair
   gives a two-view hypothesis (ray midpoint, in front of both cameras), all hypotheses are
   scored against all views at once (score-weighted truncated squared error, MSAC), and the
   best one's inliers are re-fitted, re-selected and re-fitted. Cost grows with the number of
   pairs (at most ``max_pairs``), not with the number of camera subsets.
4. Left/right swap repair (``swap_repair``), before step 2: for every camera pair and frame,
   epipolar distances between the two views' hands say whether they label the hands alike or
   crossed (works when a view sees only one hand, too). Per frame these relations are made
   consistent (Z2 synchronization: leading eigenvector of the signed relation matrix plus
   greedy sweeps), which fixes every view's labels up to one flip per frame. That flip is
   chosen by a two-state Viterbi pass: fewest swapped views, unless 3D hand continuity
   between frames says otherwise (so frames where most views are swapped are repaired too).

Joints with fewer than ``min_views`` inlier views are NaN. Internally the world is shifted
to the camera centroid and scaled by the rig's size, which makes the solver well conditioned
and the result independent of the rig's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.config import param
from mvhand.core import metrics
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D, Views2D
from mvhand.errors import InputError

#: Hypothesis points scored per block in RANSAC (bounds temporary memory to ~50 MB).
_RANSAC_BLOCK = 1 << 19
#: Hand-exchange evidence below this (relative distance difference) counts as none.
_MOTION_DEAD_ZONE = 0.25


@dataclass(frozen=True)
class TriangulationConfig:
    """Settings of :func:`triangulate`."""

    min_views: int = param(2, "views (inliers) a joint needs to be triangulated", ge=2)
    min_score: float = param(0.1, "2D joints with a score below this are ignored", ge=0.0, le=1.0)
    robust: bool = param(True, "RANSAC over camera pairs and inlier re-fit (else plain DLT)")
    inlier_threshold_px: float = param(
        20.0, "reprojection error (px) below which a view is an inlier of a joint", gt=0.0
    )
    swap_repair: bool = param(True, "swap a view's left/right hands when swapped fits better")
    max_pairs: int = param(
        120, "most camera pairs tried per joint; with more pairs a fixed seeded sample", ge=1
    )
    refine_iterations: int = param(
        2, "re-select inliers and re-fit this many times after RANSAC", ge=0, le=10
    )
    swap_min_joints: int = param(
        3, "2D joints a view needs (in either hand) for a swap decision", ge=1
    )
    swap_temporal_weight: float = param(
        20.0, "weight of 3D hand continuity (in frames of unanimous views) against the "
        "per-frame majority when deciding which hand is left; 0: majority of views only", ge=0.0,
    )  # fmt: skip
    seed: int = param(0, "seed of the camera-pair sample when there are more than max_pairs")


# ----------------------------------------------------------------------------- linear solver


def _normalize_extrinsics(extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Shift the world to the camera centroid and scale it to unit mean camera distance.

    Returns ``(extrinsics_n, origin, scale)`` with ``x_world = origin + scale * x_n``.
    """
    E = np.asarray(extrinsics, dtype=float)
    R, t = E[:, :, :3], E[:, :, 3]
    centers = -np.einsum("cji,cj->ci", R, t)
    origin = centers.mean(axis=0)
    scale = float(np.linalg.norm(centers - origin, axis=1).mean())
    if not np.isfinite(scale) or scale <= 0:
        scale = max(float(np.abs(t).max(initial=0.0)), 1.0)
    t_n = (np.einsum("cij,j->ci", R, origin) + t) / scale
    return np.concatenate([R, t_n[:, :, None]], axis=2), origin, scale


def _solve_normal(E: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation in normalized world coordinates.

    Minimizes ``sum_c w_c |A_c [X; 1]|^2`` with the DLT rows ``A_c = [x P3 - P1; y P3 - P2]``
    through the 3x3 normal equations (closed-form inverse, so it is fully vectorized).

    Args:
        E: (C, 3, 4) extrinsics in the normalized frame.
        xy: (C, N, 2) undistorted normalized coordinates; NaN where missing.
        w: (C, N) weights >= 0.

    Returns:
        (N, 3) points, NaN where fewer than two views have weight > 0 or the rays are parallel.
    """
    ok = (w > 0) & np.isfinite(xy).all(axis=-1)
    w = np.where(ok, w, 0.0)
    xy = np.where(ok[..., None], xy, 0.0)
    # sum_c w_c (a1 a1^T + a2 a2^T) with a1 = x P3 - P1, a2 = y P3 - P2, expanded so that
    # each term is an (N, C) @ (C, 16) product of per-camera outer products Q_ij = Pi Pj^T
    P1, P2, P3 = E[:, 0], E[:, 1], E[:, 2]

    def outer(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        o = p[:, :, None] * q[:, None, :]
        return (o + np.transpose(o, (0, 2, 1))).reshape(len(E), 16)

    x, y = xy[..., 0], xy[..., 1]
    M = (
        (w * (x * x + y * y)).T @ (0.5 * outer(P3, P3))
        - (w * x).T @ outer(P3, P1)
        - (w * y).T @ outer(P3, P2)
        + w.T @ (0.5 * (outer(P1, P1) + outer(P2, P2)))
    )
    M = M.reshape(-1, 4, 4)
    A, b = M[:, :3, :3], -M[:, :3, 3]
    cof = np.stack([
        A[:, 1, 1] * A[:, 2, 2] - A[:, 1, 2] * A[:, 2, 1],
        A[:, 0, 2] * A[:, 2, 1] - A[:, 0, 1] * A[:, 2, 2],
        A[:, 0, 1] * A[:, 1, 2] - A[:, 0, 2] * A[:, 1, 1],
        A[:, 1, 2] * A[:, 2, 0] - A[:, 1, 0] * A[:, 2, 2],
        A[:, 0, 0] * A[:, 2, 2] - A[:, 0, 2] * A[:, 2, 0],
        A[:, 0, 2] * A[:, 1, 0] - A[:, 0, 0] * A[:, 1, 2],
        A[:, 1, 0] * A[:, 2, 1] - A[:, 1, 1] * A[:, 2, 0],
        A[:, 0, 1] * A[:, 2, 0] - A[:, 0, 0] * A[:, 2, 1],
        A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0],
    ], axis=1).reshape(-1, 3, 3)  # fmt: skip
    det = np.einsum("ni,ni->n", A[:, 0], cof[:, :, 0])
    size = np.trace(A, axis1=1, axis2=2) / 3
    good = (ok.sum(axis=0) >= 2) & (np.abs(det) > 1e-10 * size**3) & (size > 0)
    X = np.einsum("nij,nj->ni", cof, b) / np.where(good, det, 1.0)[:, None]
    X[~good] = np.nan
    return X


def dlt(extrinsics: np.ndarray, xy_norm: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Confidence-weighted DLT triangulation from undistorted normalized coordinates.

    Minimizes the weighted algebraic error ``sum_c w_c |A_c [X; 1]|^2`` (rows of the DLT
    system ``x P3 - P1``, ``y P3 - P2``), in a frame centred on the cameras for conditioning.

    Args:
        extrinsics: (C, 3, 4) world-to-camera ``[R | t]`` (e.g. ``rig.extrinsics``).
        xy_norm: (C, ..., 2) undistorted normalized coordinates (``rig.undistort``); NaN where
            missing.
        weights: (C, ...) non-negative weights (e.g. 2D scores); 0 ignores a view.

    Returns:
        (..., 3) world points in the extrinsics' units; NaN where fewer than two views have a
        weight > 0 and finite coordinates, or where their rays are parallel.

    Example:
        >>> from mvhand.core.synthetic import make_or_rig
        >>> rig = make_or_rig(4, distortion=False)
        >>> X = np.array([0.1, -0.05, 1.0])
        >>> xy = rig.undistort(rig.project(X))
        >>> np.allclose(dlt(rig.extrinsics, xy, np.ones(4)), X)
        True
    """
    xy_norm = np.asarray(xy_norm, dtype=float)
    weights = np.asarray(weights, dtype=float)
    C = xy_norm.shape[0]
    if xy_norm.shape[-1] != 2 or weights.shape != xy_norm.shape[:-1]:
        raise InputError(f"dlt: xy_norm (C, ..., 2) and weights (C, ...) do not match: "
                         f"{xy_norm.shape} vs {weights.shape}")  # fmt: skip
    if np.shape(extrinsics) != (C, 3, 4):
        raise InputError(f"dlt: extrinsics must have shape ({C}, 3, 4), got "
                         f"{np.shape(extrinsics)}")  # fmt: skip
    E, origin, scale = _normalize_extrinsics(extrinsics)
    batch = xy_norm.shape[1:-1]
    X = _solve_normal(E, xy_norm.reshape(C, -1, 2), weights.reshape(C, -1))
    return (origin + scale * X).reshape(*batch, 3)


# ----------------------------------------------------------------------------- geometry helpers


@dataclass(frozen=True, eq=False)
class _Views:
    """Normalized-frame geometry of the rig and the 2D of all views, flattened: N points."""

    E: np.ndarray  # (C, 3, 4) normalized extrinsics
    focal: np.ndarray  # (C,) px
    xy: np.ndarray  # (C, N, 2) undistorted normalized, 0 where invalid
    w: np.ndarray  # (C, N) weights, 0 where invalid

    @property
    def valid(self) -> np.ndarray:
        return self.w > 0


def _project_n(E: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (..., 3) into every camera: normalized xy (C, ..., 2) and depth (C, ...)."""
    pc = np.matmul(X.reshape(1, -1, 3), np.transpose(E[:, :, :3], (0, 2, 1))) + E[:, None, :, 3]
    pc = pc.reshape(len(E), *X.shape)
    z = pc[..., 2]
    return pc[..., :2] / np.where(z > 0, z, np.nan)[..., None], z


def _errors_px(v: _Views, X: np.ndarray) -> np.ndarray:
    """Approximate pixel error (C, N) of points X (N, 3) in every view; inf where behind or NaN."""
    proj, _ = _project_n(v.E, X)
    e = np.linalg.norm(proj - v.xy, axis=-1) * v.focal[:, None]
    return np.where(np.isfinite(e), e, np.inf)


def _fit(v: _Views, w: np.ndarray) -> np.ndarray:
    """Weighted DLT, then once more with weights times (focal/depth)^2 (~ pixel error)."""
    X = _solve_normal(v.E, v.xy, w)
    _, z = _project_n(v.E, X)
    gain = np.where(z > 0, (v.focal[:, None] / np.where(z > 0, z, 1.0)) ** 2, 0.0)
    gain /= np.maximum(gain.max(axis=0), 1e-12)
    X2 = _solve_normal(v.E, v.xy, w * np.where(np.isfinite(X).all(-1), gain, 1.0))
    return np.where(np.isfinite(X2), X2, X)


# ----------------------------------------------------------------------------- RANSAC


def camera_pairs(names: tuple[str, ...], max_pairs: int, seed: int = 0) -> np.ndarray:
    """Camera index pairs (P, 2) for RANSAC: all pairs, or a seeded sample of ``max_pairs``.

    The sample is drawn on the sorted camera names, so it does not depend on camera order.
    """
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    i, j = np.triu_indices(len(names), k=1)
    if len(i) > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(len(i), max_pairs, replace=False))
        i, j = i[pick], j[pick]
    return np.stack([order[i], order[j]], axis=1)


def _pair_hypotheses(v: _Views, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint of the two rays of each pair for every point: (P, N, 3) and usable mask (P, N)."""
    R, t = v.E[:, :, :3], v.E[:, :, 3]
    centers = -np.einsum("cji,cj->ci", R, t)
    ray = np.concatenate([v.xy, np.ones(v.xy.shape[:-1] + (1,))], axis=-1)
    d = np.einsum("cji,cnj->cni", R, ray)  # (C, N, 3) world directions, depth-scaled
    a, b = pairs[:, 0], pairs[:, 1]
    da, db = d[a], d[b]
    w0 = (centers[a] - centers[b])[:, None, :]
    aa, bb, ab = (da * da).sum(-1), (db * db).sum(-1), (da * db).sum(-1)
    ea, eb = (da * w0).sum(-1), (db * w0).sum(-1)
    den = aa * bb - ab * ab
    ok = v.valid[a] & v.valid[b] & (den > 1e-12 * aa * bb)
    den = np.where(ok, den, 1.0)
    s = (ab * eb - bb * ea) / den
    u = (aa * eb - ab * ea) / den
    ok &= (s > 0) & (u > 0)
    X = 0.5 * (centers[a][:, None] + s[..., None] * da + centers[b][:, None] + u[..., None] * db)
    return X, ok


def _ransac(v: _Views, pairs: np.ndarray, threshold_px: float) -> np.ndarray:
    """Best two-view hypothesis (N, 3) per point by score-weighted MSAC over all views."""
    N = v.xy.shape[1]
    best = np.full((N, 3), np.nan)
    step = max(1, _RANSAC_BLOCK // max(len(pairs), 1))
    th2 = threshold_px**2
    for s in range(0, N, step):
        sl = slice(s, s + step)
        vb = _Views(v.E, v.focal, v.xy[:, sl], v.w[:, sl])
        X, ok = _pair_hypotheses(vb, pairs)
        X32 = X.astype(np.float32)  # scoring needs ~0.1 px, not float64
        reward = np.zeros(X.shape[:2], dtype=np.float32)
        for c in range(len(v.E)):
            pc = X32 @ v.E[c, :, :3].T.astype(np.float32) + v.E[c, :, 3].astype(np.float32)
            inv_z = 1.0 / np.where(pc[..., 2] > 0, pc[..., 2], np.nan)
            dx = pc[..., 0] * inv_z - np.float32(vb.xy[c, :, 0])
            dy = pc[..., 1] * inv_z - np.float32(vb.xy[c, :, 1])
            e2 = dx * dx + dy * dy
            # fmax drops the NaN of points behind the camera: they earn nothing
            gain = np.fmax(np.float32(0), 1 - e2 * np.float32(v.focal[c] ** 2 / th2))
            reward += gain * vb.w[c].astype(np.float32)
        reward = np.where(ok, reward, -1.0)
        k = np.argmax(reward, axis=0)
        has = ok.any(axis=0)
        best[sl][has] = X[k, np.arange(X.shape[1])][has]
    return best


def _robust_solve(
    v: _Views, pairs: np.ndarray, cfg: TriangulationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate N points: returns X (N, 3) normalized frame and inliers (C, N)."""
    valid = v.valid
    X = _fit(v, v.w)
    th = cfg.inlier_threshold_px
    if not cfg.robust:
        inl = valid & np.isfinite(X).all(-1)
    else:
        inl = valid & (_errors_px(v, X) < th)
        # points whose views all agree keep the all-view fit; the others get RANSAC + re-fits
        bad = ((inl != valid).any(0) | ~np.isfinite(X).all(-1)) & (valid.sum(0) >= 2)
        if bad.any() and len(pairs):
            vb = _Views(v.E, v.focal, v.xy[:, bad], v.w[:, bad])
            Xb = _ransac(vb, pairs, th)
            inl_b = vb.valid & (_errors_px(vb, Xb) < th)
            for _ in range(cfg.refine_iterations):
                Xb = _fit(vb, vb.w * inl_b)
                inl_b = vb.valid & (_errors_px(vb, Xb) < th)
            X[bad] = _fit(vb, vb.w * inl_b)
            inl[:, bad] = inl_b
    enough = inl.sum(0) >= cfg.min_views
    X[~enough] = np.nan
    inl &= enough & np.isfinite(X).all(-1)
    return X, inl


# ----------------------------------------------------------------------------- swap repair


def _essentials(E: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Essential matrices (P, 3, 3) with ``x_b^T E_ab x_a = 0`` for normalized points."""
    R, t = E[:, :, :3], E[:, :, 3]
    a, b = pairs[:, 0], pairs[:, 1]
    R_ab = R[b] @ np.transpose(R[a], (0, 2, 1))
    t_ab = t[b] - np.einsum("pij,pj->pi", R_ab, t[a])
    tx = np.zeros((len(pairs), 3, 3))
    tx[:, 0, 1], tx[:, 0, 2], tx[:, 1, 2] = -t_ab[:, 2], t_ab[:, 1], -t_ab[:, 0]
    tx -= np.transpose(tx, (0, 2, 1))
    return tx @ R_ab


def _hand_relations(v: _Views, pairs: np.ndarray, shape: tuple[int, ...],
                    cfg: TriangulationConfig) -> np.ndarray:  # fmt: skip
    """Signed evidence (P, T) that views a and b label the hands alike (> 0) or crossed (< 0).

    For each pair, the symmetric epipolar distance (px, truncated at twice the inlier
    threshold) between a's hand h and b's hand h is compared with that between a's hand h and
    b's hand 1 - h, averaged over the joints both views see; the difference is scaled to
    [-1, 1]. Pairs with fewer than ``swap_min_joints`` joints in either reading give 0.
    """
    C, T, H, J = shape
    # float32: epipolar distances need ~0.01 px, and this is the largest array in the module
    xh = np.concatenate([v.xy, np.ones(v.xy.shape[:-1] + (1,))], axis=-1).astype(np.float32)
    xh = xh.reshape(C, T, H, J, 3)
    ok = v.valid.reshape(C, T, H, J)
    a, b = pairs[:, 0], pairs[:, 1]
    Ess = _essentials(v.E, pairs).astype(np.float32)
    focal = v.focal.astype(np.float32)
    P = len(pairs)
    lb = np.matmul(xh[a].reshape(P, -1, 3), np.transpose(Ess, (0, 2, 1))).reshape(P, T, H, J, 3)
    la = np.matmul(xh[b].reshape(P, -1, 3), Ess).reshape(P, T, H, J, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain_b = focal[b][:, None, None, None] / np.hypot(lb[..., 0], lb[..., 1])
        gain_a = focal[a][:, None, None, None] / np.hypot(la[..., 0], la[..., 1])
    cap = 2.0 * cfg.inlier_threshold_px
    costs = []
    for flip in (False, True):
        xb = xh[b][:, :, ::-1] if flip else xh[b]
        okb = ok[b][:, :, ::-1] if flip else ok[b]
        alg = np.abs(np.einsum("...i,...i->...", xb, lb))  # |x_b^T E x_a|
        d = np.minimum(0.5 * alg * (gain_b + (gain_a[:, :, ::-1] if flip else gain_a)), cap)
        use = ok[a] & okb & np.isfinite(d)
        n = use.sum(axis=(2, 3))
        mean = np.where(use, d, 0.0).sum(axis=(2, 3)) / np.maximum(n, 1)
        costs.append(np.where(n >= cfg.swap_min_joints, mean, np.nan))
    rel = (costs[1] - costs[0]) / cap
    return np.where(np.isfinite(rel), rel, 0.0)


def _relative_labels(v: _Views, pairs: np.ndarray, shape: tuple[int, ...],
                     cfg: TriangulationConfig) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Hand labels of every view up to one flip per frame: (T, C) +-1 and evidence (T, C).

    Per frame, the pairwise relations (alike / crossed) are made consistent by Z2
    synchronization: the leading eigenvector of the signed relation matrix gives one label per
    view, refined by a few greedy sweeps. Views without evidence have strength 0.
    """
    C, T = shape[:2]
    rel = _hand_relations(v, pairs, shape, cfg)  # (P, T)
    S = np.zeros((T, C, C))
    S[:, pairs[:, 0], pairs[:, 1]] = rel.T
    S += np.transpose(S, (0, 2, 1))
    _, vecs = np.linalg.eigh(S)
    lab = np.where(vecs[:, :, -1] < 0, -1.0, 1.0)
    for _ in range(3):
        for c in range(C):
            field = np.einsum("tc,tc->t", S[:, c], lab)
            lab[:, c] = np.where(field > 0, 1.0, np.where(field < 0, -1.0, lab[:, c]))
    return lab, np.abs(S).sum(axis=2)


def _hand_motion_evidence(X: np.ndarray) -> np.ndarray:
    """Per frame t >= 1, evidence in [-1, 1] that the hands exchanged places since t - 1.

    Compares the mean joint displacement with hands kept (0->0, 1->1) and crossed (0->1,
    1->0), over joints present in both frames; 0 where there is nothing to compare.
    """
    a, b = X[:-1], X[1:]
    d_keep = np.linalg.norm(b - a, axis=-1)
    d_cross = np.linalg.norm(b - a[:, ::-1], axis=-1)
    ok = np.isfinite(d_keep) & np.isfinite(d_cross)
    keep = np.where(ok, d_keep, 0.0).sum(axis=(1, 2))
    cross = np.where(ok, d_cross, 0.0).sum(axis=(1, 2))
    tot = keep + cross
    rel = np.where(tot > 0, (keep - cross) / np.where(tot > 0, tot, 1.0), 0.0)
    # dead zone: hands close together (rel near 0) say nothing about identity
    rel = np.sign(rel) * np.maximum(np.abs(rel) - _MOTION_DEAD_ZONE, 0) / (1 - _MOTION_DEAD_ZONE)
    return np.concatenate([[0.0], rel])


def _global_flips(minus: np.ndarray, plus: np.ndarray, motion: np.ndarray,
                  weight: float) -> np.ndarray:  # fmt: skip
    """Which frames (T,) to read the other way round, by a two-state Viterbi pass.

    Args:
        minus, plus: (T,) evidence of the views labelled -1 and +1 (reading as is swaps the
            -1 views, reading flipped swaps the +1 views).
        motion: (T,) hand-exchange evidence between t - 1 and t in [-1, 1].
        weight: cost of a reading that contradicts clear hand motion, in units of one frame's
            full view evidence.
    """
    tot = np.maximum(minus + plus, 1e-12)
    unary = np.stack([minus / tot, plus / tot], axis=1)  # cost of (as is, flipped)
    same = weight * np.maximum(motion, 0.0)  # keeping the reading while hands crossed
    diff = weight * np.maximum(-motion, 0.0)  # changing it while hands kept their places
    T = len(unary)
    back = np.zeros((T, 2), dtype=np.int64)
    cost = unary[0].copy()
    for t in range(1, T):
        stay, change = cost + same[t], cost[::-1] + diff[t]
        back[t] = np.where(stay <= change, [0, 1], [1, 0])
        cost = np.minimum(stay, change) + unary[t]
    flips = np.zeros(T, dtype=bool)
    state = int(np.argmin(cost))
    for t in range(T - 1, -1, -1):
        flips[t] = bool(state)
        state = int(back[t, state])
    return flips


# ----------------------------------------------------------------------------- public API


def _match_rig(rig: Rig, kp: Keypoints2D) -> Rig:
    if rig.names == kp.cameras:
        return rig
    return rig.subset(kp.cameras)  # raises CalibrationError naming a missing camera


def triangulate(
    rig: Rig, kp: Keypoints2D, cfg: TriangulationConfig = TriangulationConfig()
) -> Hands3D:
    """Robust confidence-weighted triangulation of all frames, hands and joints at once.

    Cameras are matched by name: ``rig.subset(kp.cameras)`` is taken inside, so the rig may
    hold more cameras than the keypoints, in any order; results follow ``kp.cameras``.

    Args:
        rig: the calibrated cameras; 3D comes out in ``rig.units``.
        kp: 2D keypoints ``(C, T, H, J, 2)`` px with scores ``(C, T, H, J)``.
        cfg: the settings (see :class:`TriangulationConfig`).

    Returns:
        The 3D joints ``(T, H, J, 3)`` in ``rig.units`` (NaN where fewer than ``min_views``
        inliers) with per-joint quality (mean reprojection error and score over the inlier
        views, number of inlier views), and in ``views`` the repaired 2D (after left/right swap
        repair), the inlier views ``(C, T, H, J)`` and the swapped views ``(C, T)``.

    Raises:
        CalibrationError: a camera of ``kp`` is not in ``rig``.
    """
    rig = _match_rig(rig, kp)
    C, T, H, J, _ = kp.keypoints_px.shape
    E, origin, scale = _normalize_extrinsics(rig.extrinsics)
    kp_px, scores = kp.keypoints_px.copy(), kp.scores.copy()
    xy = rig.undistort(kp_px)
    w = np.where((scores >= cfg.min_score) & (scores > 0) & np.isfinite(xy).all(-1), scores, 0.0)
    xy = np.where(w[..., None] > 0, xy, 0.0)
    v = _Views(E, rig.focal_px, xy.reshape(C, -1, 2), w.reshape(C, -1))
    pairs = camera_pairs(rig.names, cfg.max_pairs, cfg.seed)
    swapped = np.zeros((C, T), dtype=bool)
    repair = cfg.swap_repair and H == 2 and C >= 2
    if repair:
        lab, strength = _relative_labels(v, pairs, (C, T, H, J), cfg)
        swapped = ((lab < 0) & (strength > 0)).T
        for arr in (xy, w, kp_px, scores):
            arr[swapped] = arr[swapped][:, ::-1]
        v = _Views(E, rig.focal_px, xy.reshape(C, -1, 2), w.reshape(C, -1))
    X, inliers = _robust_solve(v, pairs, cfg)
    X = origin + scale * X.reshape(T, H, J, 3)
    inliers = inliers.reshape(C, T, H, J)
    if repair:
        minus = np.where(lab < 0, strength, 0.0).sum(1)
        plus = np.where(lab > 0, strength, 0.0).sum(1)
        flip = _global_flips(minus, plus, _hand_motion_evidence(X), cfg.swap_temporal_weight)
        X[flip] = X[flip][:, ::-1]
        inliers[:, flip] = inliers[:, flip][:, :, ::-1]
        kp_px[:, flip] = kp_px[:, flip][:, :, ::-1]
        scores[:, flip] = scores[:, flip][:, :, ::-1]
        swapped[:, flip] = ~swapped[:, flip] & (strength[flip] > 0).T
    return _result(rig, kp, X, inliers, swapped, kp_px, scores)


def triangulate_points(rig: Rig, points_px: np.ndarray, scores: np.ndarray,
                       cfg: TriangulationConfig = TriangulationConfig()
                       ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Robust triangulation of any points (body joints, board corners): steps 1-3 above, no
    left/right repair.

    Args:
        rig: the cameras, in the order of axis C.
        points_px: ``(C, ..., 2)`` pixels, NaN where unseen; scores: ``(C, ...)``.

    Returns:
        ``X (..., 3)`` in ``rig.units`` (NaN where fewer than ``min_views`` inliers) and the
        inlier views ``(C, ...)``.

    Example:
        >>> from mvhand.core import synthetic
        >>> rig = synthetic.make_or_rig(4)
        >>> X = np.array([[0.0, 0.0, 1.0], [0.1, -0.2, 1.1]])
        >>> px = rig.project(X)
        >>> px[0, 1] += 300.0  # one wild view
        >>> Y, inl = triangulate_points(rig, px, np.ones(px.shape[:-1]))
        >>> bool(np.abs(Y - X).max() < 1e-9), inl[:, 1].tolist()
        (True, [False, True, True, True])
    """
    points_px = np.asarray(points_px, dtype=float)
    scores = np.asarray(scores, dtype=float)
    C, shape = points_px.shape[0], points_px.shape[1:-1]
    if len(rig) != C or scores.shape != points_px.shape[:-1]:
        raise InputError(f"triangulate_points: {len(rig)} cameras, points {points_px.shape}, "
                         f"scores {scores.shape}")  # fmt: skip
    E, origin, scale = _normalize_extrinsics(rig.extrinsics)
    xy = rig.undistort(points_px).reshape(C, -1, 2)
    sc = np.nan_to_num(scores.reshape(C, -1))
    w = np.where((sc >= cfg.min_score) & (sc > 0) & np.isfinite(xy).all(-1), sc, 0.0)
    xy = np.where(w[..., None] > 0, xy, 0.0)
    X, inl = _robust_solve(_Views(E, rig.focal_px, xy, w),
                           camera_pairs(rig.names, cfg.max_pairs, cfg.seed), cfg)  # fmt: skip
    return (origin + scale * X).reshape(*shape, 3), inl.reshape(C, *shape)


def _result(rig: Rig, kp: Keypoints2D, X: np.ndarray, inliers: np.ndarray,
            swapped: np.ndarray, kp_px: np.ndarray, scores: np.ndarray) -> Hands3D:  # fmt: skip
    err = reprojection_errors(rig, X, kp_px)
    n = inliers.sum(axis=0)
    with np.errstate(invalid="ignore"):
        err_mean = np.where(inliers, err, 0.0).sum(0) / np.where(n > 0, n, np.nan)
    score = np.where(inliers, scores, 0.0).sum(0) / np.maximum(n, 1)
    views = Views2D(Keypoints2D(kp_px, scores, kp.cameras, kp.hands, kp.fps), inliers, swapped)
    return Hands3D(X, err_mean, n.astype(np.int64), score, rig.units, kp.hands, views)


def reprojection_errors(rig: Rig, points3d: np.ndarray, keypoints_px: np.ndarray) -> np.ndarray:
    """Pixel distance of every view's 2D to the projection of the 3D (full lens model).

    Args:
        rig: cameras in the order of ``keypoints_px``'s axis 0.
        points3d: (T, H, J, 3) in ``rig.units``.
        keypoints_px: (C, T, H, J, 2) pixels.

    Returns:
        (C, T, H, J) pixels; NaN where the 2D or the 3D is missing (the metric itself is
        :func:`mvhand.core.metrics.reprojection_errors`, which marks a missed 3D point inf).
    """
    points3d = np.asarray(points3d, dtype=float)
    keypoints_px = np.asarray(keypoints_px, dtype=float)
    if keypoints_px.shape[0] != len(rig) or keypoints_px.shape[1:-1] != points3d.shape[:-1]:
        raise InputError(
            f"reprojection_errors: keypoints {keypoints_px.shape} do not match {len(rig)} "
            f"cameras and points {points3d.shape}"
        )
    err = metrics.reprojection_errors(rig, points3d, keypoints_px)
    return np.where(np.isfinite(err), err, np.nan)
