"""Which detections are the same person and the same hand: across cameras, then over time.

Per frame, across cameras (bodies; hands without a body use steps 1-3 only):

People already followed are matched first: their predicted 3D body is projected into every
camera and each camera's detections are assigned to them by the Hungarian method on the
median reprojection error (plain or left/right-mirrored). The rest are clustered
(:func:`cluster_views`) and start new tracks or resume lost ones:

1. Affinity of every pair of detections in different cameras: the symmetric epipolar distance
   of their common joints, relative to each detection's size in its image (so one gate fits
   near and far cameras), each joint's term truncated (one bad joint cannot veto a match) and
   for bodies the smaller of the plain and the left/right-mirrored labelling.
2. Average-linkage agglomeration in order of affinity, never two detections of one camera in
   a cluster (that is the cycle-consistency constraint, kept by construction).
3. Verification in 3D: each cluster is triangulated (DLT), every member's reprojection error
   (relative to its size) is checked, members above the gate leave, and left-over
   detections join the cluster they reproject onto, one per camera.

Why this: epipolar affinities need no 3D point per pair and cost one vectorized pass over the
pairs; the 3D verification then repairs what greedy linkage gets wrong. Why following known
people first (``propagate``, the default) rather than clustering every frame from scratch:
measured with ``benchmarks/bench_people.py`` (12 cameras, 300 frames, this machine, quiet),
the same accuracy (MPJPE of the people at the table 3.8 / 3.8 / 4.6 mm on L3 / L4 / L5 either
way) with fewer identity switches on L3 (0 against 8) and 4-5x less association time (L3 /
L4 / L5: 1.4 / 1.8 / 2.4 s against 5.9 / 7.2 / 11.6 s, before the speed work below), because
a frame's detections are compared with the few people already known (projected into each
view) instead of with each other. Nothing searches over camera subsets or person
permutations: per frame the work is one assignment per camera plus clustering of the
detections that fit nobody.

Speed: the decisions are those of going frame by frame, but the work is done for many frames
at once (tests check both against the frame-by-frame way):

- people are followed in chunks of :data:`_CHUNK` frames with one prediction; then each
  frame's prediction from the tracks as they are after the frames before is checked to give
  the same assignment, and the chunk ends before the first frame where it does not (L5: 23
  chunks for 300 frames); a chunk also ends where people start or resume;
- the hands of all frames are assigned in rounds (:func:`_assign_hands`): the costs against
  the arms once, against the hands' previous 3D only where the frames before changed, and
  only frames whose assigned views changed are verified again (L5: all 300 frames verified
  once, then 41, 13, 9, ... frames);
- an assignment (:func:`assign_groups`) needs the Hungarian method only where two rows of a
  camera and frame want the same column (otherwise the rows' minima are optimal);
- views are triangulated by summing each point's normal equations over its views (one matrix
  product per camera) and solving the 3x3 systems in closed form: numpy's batched ``solve``
  and ``det`` cost about a microsecond per system;
- arrays are processed in blocks of 16 frames or 4096 hands: one pass over all frames at
  once was 2x slower than blocks (cache misses).

Measured (``benchmarks/bench_people.py --paths people``, CPU seconds of the association,
this shared 2-core machine at load 4-5, best of two): L3 / L4 / L5 1.31 / 1.92 / 2.05 s
before, 0.70 / 1.16 / 1.63 s after, the same assignments (L3, L4 identical; L5 one tie
between two identical detections of one hand taken the other way). What is left is numeric
work, not Python: undistorting every joint (~0.3 s on L5), following people (~0.5 s),
verifying every hand's views in 3D (a DLT of all 21 joints for ~35 000 views, ~0.3 s) and the
hand costs (~0.2 s). The robust triangulation of the same person-hands afterwards costs about
as much (L5: 1.8 s CPU), so the association adds 80-90 % to a triangulation-only 3D stage,
not 10 %; with the optimizer it is a small share (README, "Several people").

Over time and per hand (:func:`associate`): people are 3D tracks (with ``propagate=False``
the per-frame clusters are linked afterwards by :mod:`mvhand.core.tracks3d`, which also
keeps their left/right consistent along the track); each 2D hand
of every camera is then assigned, per camera by the Hungarian method, to the (person, side)
whose 3D arm (wrist and the forearm's continuation, or that hand's 3D in the previous frame)
it reprojects onto, so a hand belongs to the person whose wrist and forearm it continues and
its side comes from the arm chain in 3D, not from the view. Views of a (person, side) that do
not agree in 3D are split off (never averaged) and re-associated with the hands that belong
to no body; those form hand-only tracks. Finally each person track keeps or exchanges its
left/right once, by the majority of its views' side guesses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mvhand.config import param
from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.people import ARM_CHAIN, BODY_MIRROR, Detections2D
from mvhand.core.skeleton import N_JOINTS
from mvhand.core.tracks3d import link_tracks, orient_tracks

log = logging.getLogger(__name__)

#: Wrist and middle-finger knuckle: the hand joints compared with the arm.
_HAND_ANCHOR = np.array([0, 9])
#: Wrist to middle knuckle (m): where the forearm's continuation puts the knuckle.
_KNUCKLE_M = 0.09
#: Length of a hand (m), the unit of hand gates.
HAND_LENGTH_M = 0.18
_BIG = 1e6
#: Frames followed with one prediction before the exact check (:func:`_follow_chunk`).
_CHUNK = 16


@dataclass(frozen=True)
class AssociationConfig:
    """Settings of :func:`associate` (the ``[people]`` section's association part)."""

    min_score: float = param(0.2, "2D joints scored below this are ignored", ge=0.0, le=1.0)
    min_common_joints: int = param(3, "joints two body views must share to be compared", ge=1)
    body_gate: float = param(
        0.06, "epipolar distance between two body views (fraction of the body's image size) "
        "below which they may be the same person", gt=0.0)  # fmt: skip
    body_reprojection_gate: float = param(
        0.1, "median reprojection error (fraction of the body's image size) a view may have "
        "and stay in its person", gt=0.0)  # fmt: skip
    hand_gate: float = param(
        0.6, "distance (hand lengths) of a 2D hand from its person's projected 3D arm", gt=0.0)
    hand_reprojection_gate: float = param(
        0.2, "median reprojection error (hand lengths) of a view of a person's hand; views "
        "above it are split off", gt=0.0)  # fmt: skip
    hand_cluster_gate: float = param(
        0.08, "epipolar distance (fraction of the hand's image size) between two views of a "
        "hand without a body", gt=0.0)  # fmt: skip
    attach_distance_m: float = param(
        0.12, "3D distance (m) from a hand-only cluster's wrist to a free arm wrist of a "
        "person to join that person", gt=0.0)  # fmt: skip
    max_speed_mps: float = param(3.0, "fastest motion (m/s) a track may make", gt=0.0)
    track_gate_m: float = param(0.25, "3D distance (m) always allowed between frames", gt=0.0)
    max_gap_frames: int = param(10, "frames a track may be unseen before it ends", ge=0)
    verify: bool = param(True, "3D verification of the per-frame clusters (step 3)")
    propagate: bool = param(
        True, "follow known people frame to frame by reprojecting their predicted 3D body "
        "and cluster only the detections that fit nobody (else cluster every frame from "
        "scratch and link the clusters afterwards)")  # fmt: skip
    propagate_gate: float = param(
        0.25, "median reprojection error (fraction of the body's image size) of a view "
        "against a person's predicted body to join that person", gt=0.0)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Association:
    """What :func:`associate` decided, per detection row and per track.

    Attributes:
        det_track: ``(N,)`` track of each row's body, -1 if its body was not associated.
        hand_track: ``(N, 2)`` track each of the row's hand slots went to, -1 if none.
        hand_side: ``(N, 2)`` 3D side (0 left, 1 right) of each hand slot, -1 if none.
        track_body: ``(K,)`` True for person tracks with a body, False for hand-only tracks.
        body3d: ``(T, K, B, 3)`` the verified per-frame body triangulation of each track.
        body_n_views: ``(T, K)`` views of each track's body per frame.
        single_view_rows: ``(N,)`` True for body rows that no other camera confirmed.
        info: counts and seconds.
    """

    det_track: np.ndarray
    hand_track: np.ndarray
    hand_side: np.ndarray
    track_body: np.ndarray
    body3d: np.ndarray
    body_n_views: np.ndarray
    single_view_rows: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n_tracks(self) -> int:
        return len(self.track_body)


# ----------------------------------------------------------------------------- geometry


def essential_matrices(extrinsics: np.ndarray) -> np.ndarray:
    """``(C, C, 3, 3)`` with ``x_b^T E[a, b] x_a = 0`` for normalized points of cameras a, b."""
    R, t = extrinsics[:, :, :3], extrinsics[:, :, 3]
    R_ab = np.einsum("bij,akj->abik", R, R)  # R_b R_a^T
    t_ab = t[None, :, :] - np.einsum("abij,aj->abi", R_ab, t)
    tx = np.zeros(t_ab.shape[:2] + (3, 3))
    tx[..., 0, 1], tx[..., 0, 2], tx[..., 1, 2] = -t_ab[..., 2], t_ab[..., 1], -t_ab[..., 0]
    tx = tx - np.swapaxes(tx, -1, -2)
    return tx @ R_ab


def project_normalized(extrinsics: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(..., 3)`` into cameras ``(C, 3, 4)``: normalized xy ``(C, ..., 2)``, depth."""
    C = len(extrinsics)
    flat = np.asarray(X, dtype=float).reshape(1, -1, 3)
    pc = np.matmul(flat, np.transpose(extrinsics[:, :, :3], (0, 2, 1))) + extrinsics[:, None, :, 3]
    pc = pc.reshape((C,) + np.shape(X))
    z = pc[..., 2]
    return pc[..., :2] / np.where(z > 0, z, np.nan)[..., None], z


def epipolar_distances(ess: np.ndarray, ca: np.ndarray, cb: np.ndarray, xa: np.ndarray,
                       xb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Distance of ``xa (M, K, 2)`` to the epipolar lines of ``xb`` in its image, and back."""
    F = ess[ca, cb][:, None]  # (M, 1, 3, 3)
    a0, a1 = xa[..., 0, None], xa[..., 1, None]
    b0, b1 = xb[..., 0, None], xb[..., 1, None]
    lb = F[..., :, 0] * a0 + F[..., :, 1] * a1 + F[..., :, 2]  # F x_a: (M, K, 3)
    la = F[..., 0, :] * b0 + F[..., 1, :] * b1 + F[..., 2, :]  # F^T x_b
    alg = lb[..., 0] * xb[..., 0] + lb[..., 1] * xb[..., 1] + lb[..., 2]  # x_b^T F x_a
    with np.errstate(invalid="ignore", divide="ignore"):
        db = np.abs(alg) / np.hypot(lb[..., 0], lb[..., 1])
        da = np.abs(alg) / np.hypot(la[..., 0], la[..., 1])
    return da, db


def linear_triangulation(E: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation of normalized points ``xy (C, ..., 2)`` with weights
    ``w (C, ...)`` in cameras ``E (C, 3, 4)``: ``(..., 3)``, NaN with fewer than two views.

    The inhomogeneous least-squares form of the DLT (3x3 normal equations per point): the
    same point as :func:`mvhand.core.triangulate.dlt` for exact data and nearly the same with
    noise, without its per-call normalization, which dominates the cost for the few points of
    one frame.
    """
    C = len(E)
    batch = xy.shape[1:-1]
    x = xy.reshape(C, -1, 2)
    ww = np.where(np.isfinite(x).all(-1), w.reshape(C, -1), 0.0)
    x = np.nan_to_num(x)
    P = E[:, None]  # (C, 1, 3, 4)
    rows = x[..., :, None] * P[..., 2:3, :] - P[..., :2, :]  # (C, N, 2, 4)
    n = x.shape[1]
    A = np.transpose(rows, (1, 0, 2, 3)).reshape(n, 2 * C, 4)  # (N, 2C, 4)
    Aw = A * np.repeat(ww.T, 2, axis=1)[..., None]
    Mv = np.matmul(np.transpose(Aw[..., :3], (0, 2, 1)), A)  # (N, 3, 4)
    M, v = Mv[..., :3], Mv[..., 3]
    ok = ((ww > 0).sum(0) >= 2) & (np.abs(np.linalg.det(M)) > 1e-12 * np.abs(M).max(
        axis=(1, 2)) ** 3)  # fmt: skip
    X = np.full((x.shape[1], 3), np.nan)
    if ok.any():
        X[ok] = np.linalg.solve(M[ok], -v[ok][..., None])[..., 0]
    return X.reshape(*batch, 3)


def detection_size(xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Diagonal of the box of each detection's valid points ``(N, K, 2)``: ``(N,)``."""
    ok = w > 0
    lo = np.where(ok[..., None], xy, np.inf).min(-2)
    hi = np.where(ok[..., None], xy, -np.inf).max(-2)
    with np.errstate(invalid="ignore"):
        size = np.linalg.norm(hi - lo, axis=-1)
    return np.where(ok.sum(-1) >= 2, size, np.nan)


# ----------------------------------------------------------------------------- clustering


def _frame_pairs(frames: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """All pairs ``(M, 2)`` of rows of the same frame and different cameras."""
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.diff(frames[order])) + 1
    out = []
    for grp in np.split(order, bounds):
        if len(grp) < 2:
            continue
        i, j = np.triu_indices(len(grp), 1)
        keep = cams[grp[i]] != cams[grp[j]]
        out.append(np.stack([grp[i][keep], grp[j][keep]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def pair_affinity(ess: np.ndarray, cams: np.ndarray, xy: np.ndarray, w: np.ndarray,
                  pairs: np.ndarray, gate: float, min_common: int,
                  mirror: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Relative epipolar distance ``(M,)`` of each pair of detections; inf if not comparable."""
    size = detection_size(xy, w)
    i, j = pairs[:, 0], pairs[:, 1]

    def one(xj: np.ndarray, wj: np.ndarray) -> np.ndarray:
        da, db = epipolar_distances(ess, cams[i], cams[j], xy[i], xj)
        rel = np.minimum((da / size[i, None] + db / size[j, None]) / 2, 3 * gate)
        ww = np.minimum(w[i], wj) * np.isfinite(rel)
        n = (ww > 0).sum(-1)
        d = (np.where(ww > 0, rel, 0.0) * ww).sum(-1) / np.maximum(ww.sum(-1), 1e-12)
        return np.where(n >= min_common, d, np.inf)

    d = one(xy[j], w[j])
    crossed = np.zeros(len(d), dtype=bool)
    if mirror is not None:
        dm = one(xy[j][:, mirror], w[j][:, mirror])
        crossed = dm < d
        d = np.minimum(d, dm)
    return d, crossed


def _orientations(R: np.ndarray) -> np.ndarray:
    """Which members of a cluster are mirrored, from pairwise relations ``R (m, m)`` (+1 alike,
    -1 mirrored, 0 unknown): each member's row as a candidate labelling, the one most
    consistent with all pairs wins (Z2 synchronization); most members count as unmirrored."""
    O = np.where(R != 0, R, 1.0)
    np.fill_diagonal(O, 1.0)
    score = np.einsum("ri,ij,rj->r", O, R, O)
    flip = O[int(np.argmax(score))] < 0
    return ~flip if flip.sum() > len(flip) / 2 else flip


def _agglomerate(members_cam: np.ndarray, D: np.ndarray, gate: float) -> np.ndarray:
    """Average-linkage clusters of one frame's n detections, one per camera: labels ``(n,)``."""
    n = len(members_cam)
    label = np.arange(n)
    members = [[k] for k in range(n)]
    camsets = [{int(c)} for c in members_cam]
    iu, ju = np.nonzero(np.triu(D < gate, 1))
    for e in np.argsort(D[iu, ju], kind="stable"):
        a, b = label[iu[e]], label[ju[e]]
        if a == b or camsets[a] & camsets[b]:
            continue
        sub = D[np.ix_(members[a], members[b])]
        known = np.isfinite(sub)
        if known.mean() < 0.5 or sub[known].mean() > gate:
            continue
        members[a] += members[b]
        label[members[b]] = a
        camsets[a] |= camsets[b]
        members[b], camsets[b] = [], set()
    return label


def _groups(frames: np.ndarray, cams: np.ndarray, pairs: np.ndarray, d: np.ndarray,
            crossed: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Cluster of every row (-1: alone) from the pair affinities, frame by frame, and whether
    each row is mirrored relative to its cluster."""
    group = np.full(len(frames), -1, dtype=np.int64)
    flip = np.zeros(len(frames), dtype=bool)
    pf = frames[pairs[:, 0]] if len(pairs) else np.zeros(0, dtype=np.int64)
    order = np.argsort(pf, kind="stable")
    bounds = np.flatnonzero(np.diff(pf[order])) + 1
    n_groups = 0
    for sel in np.split(order, bounds) if len(order) else []:
        rows = np.unique(pairs[sel])
        pos = {int(r): k for k, r in enumerate(rows)}
        D = np.full((len(rows), len(rows)), np.inf)
        a = np.array([pos[int(r)] for r in pairs[sel, 0]])
        b = np.array([pos[int(r)] for r in pairs[sel, 1]])
        D[a, b] = D[b, a] = d[sel]
        R = np.zeros_like(D)
        R[a, b] = R[b, a] = np.where(crossed[sel], -1.0, 1.0)
        lab = _agglomerate(cams[rows], D, gate)
        _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
        multi = counts[inv] >= 2
        _, renum = np.unique(inv[multi], return_inverse=True)
        group[rows[multi]] = n_groups + renum
        n_groups += int(multi.any() and renum.max() + 1)
        if crossed[sel].any():
            for g in np.unique(inv[multi]):
                mem = np.flatnonzero(inv == g)
                flip[rows[mem]] = _orientations(R[np.ix_(mem, mem)])
    return group, flip


def _scatter(n_cams: int, n_groups: int, cams: np.ndarray, group: np.ndarray, xy: np.ndarray,
             w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Rows into ``(C, Q, K, 2)`` coordinates and ``(C, Q, K)`` weights (0 where absent)."""
    K = xy.shape[1]
    XY = np.zeros((n_cams, n_groups, K, 2))
    W = np.zeros((n_cams, n_groups, K))
    m = group >= 0
    XY[cams[m], group[m]] = np.nan_to_num(xy[m])
    W[cams[m], group[m]] = w[m]
    return XY, W


def pair_errors(E: np.ndarray, X: np.ndarray, cams: np.ndarray, xy: np.ndarray, w: np.ndarray,
                size: np.ndarray, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:  # fmt: skip
    """Median reprojection error of rows against groups' 3D ``X (Q, K, 3)``, relative to the
    rows' sizes, for the pairs ``(rows[m], groups[m])``: ``(M,)``, inf where not comparable."""
    if len(rows) == 0:
        return np.zeros(0)
    Ec = E[cams[rows]]
    pc = np.einsum("mij,mkj->mki", Ec[:, :, :3], X[groups]) + Ec[:, None, :, 3]
    z = pc[..., 2]
    proj = pc[..., :2] / np.where(z > 0, z, np.nan)[..., None]
    e = np.linalg.norm(proj - xy[rows], axis=-1) / size[rows, None]
    e = np.where((w[rows] > 0) & np.isfinite(e), e, np.inf)
    n = np.isfinite(e).sum(-1)
    med = np.sort(e, axis=-1)[np.arange(len(rows)), np.maximum((n - 1) // 2, 0)]
    return np.where(n > 0, med, np.inf)


def _triangulate_groups(E: np.ndarray, cams: np.ndarray, group: np.ndarray, xy: np.ndarray,
                        w: np.ndarray, n_groups: int) -> np.ndarray:  # fmt: skip
    XY, W = _scatter(len(E), n_groups, cams, group, xy, w)
    if n_groups == 0:
        return np.zeros((0, xy.shape[1], 3))
    return linear_triangulation(E, XY, W)


def _renumber(group: np.ndarray) -> tuple[np.ndarray, int]:
    """Groups with fewer than two rows dissolved, the rest numbered 0..Q-1."""
    out = np.full(len(group), -1, dtype=np.int64)
    m = group >= 0
    if not m.any():
        return out, 0
    ids, inv, counts = np.unique(group[m], return_inverse=True, return_counts=True)
    keep = counts[inv] >= 2
    _, renum = np.unique(inv[keep], return_inverse=True)
    idx = np.flatnonzero(m)
    out[idx[keep]] = renum
    return out, int(renum.max() + 1) if keep.any() else 0


def _attach(E, frames, cams, xy, w, size, group, X, gate) -> np.ndarray:
    """Rows in no group join the group of their frame they reproject onto best (< gate), at
    most one row per camera and group."""
    group = group.copy()
    gframe = np.full(len(X), -1, dtype=np.int64)
    gframe[group[group >= 0]] = frames[group >= 0]
    free = np.flatnonzero((group < 0) & np.isfinite(size))
    rows, gs = [], []
    for r in free:
        cand = np.flatnonzero(gframe == frames[r])
        rows.append(np.full(len(cand), r))
        gs.append(cand)
    if not rows:
        return group
    rows, gs = np.concatenate(rows).astype(np.int64), np.concatenate(gs).astype(np.int64)
    err = pair_errors(E, X, cams, xy, w, size, rows, gs)
    taken = {(int(g), int(c)) for g, c in zip(group[group >= 0], cams[group >= 0], strict=True)}
    for m in np.argsort(err, kind="stable"):
        r, g = int(rows[m]), int(gs[m])
        if err[m] > gate:
            break
        if group[r] >= 0 or (g, int(cams[r])) in taken:
            continue
        group[r] = g
        taken.add((g, int(cams[r])))
    return group


def cluster_views(E: np.ndarray, frames: np.ndarray, cams: np.ndarray, xy: np.ndarray,
                  w: np.ndarray, gate: float, reprojection_gate: float, min_common: int,
                  mirror: np.ndarray | None = None, verify: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Detections of all frames grouped into multi-view clusters, frame by frame.

    Args:
        E: ``(C, 3, 4)`` world-to-camera extrinsics.
        frames, cams: ``(N,)`` frame and camera of each detection.
        xy: ``(N, K, 2)`` undistorted normalized coordinates; w: ``(N, K)`` weights (0 missing).
        gate: relative epipolar gate; reprojection_gate: relative reprojection gate.
        min_common: joints a pair must share.
        mirror: a left/right permutation of the K joints, if detections may be mirrored.
        verify: run the 3D verification step.

    Returns:
        ``group (N,)`` (-1: no cluster), ``X (Q, K, 3)`` each cluster's triangulation,
        ``flipped (N,)`` rows used mirrored.
    """
    ess = essential_matrices(E)
    pairs = _frame_pairs(frames, cams)
    d, crossed = pair_affinity(ess, cams, xy, w, pairs, gate, min_common, mirror)
    keep = d < gate
    group, flipped = _groups(frames, cams, pairs[keep], d[keep], crossed[keep], gate)
    group, Q = _renumber(group)
    flipped &= group >= 0
    if mirror is not None:
        cur_xy = np.where(flipped[:, None, None], xy[:, mirror], xy)
        cur_w = np.where(flipped[:, None], w[:, mirror], w)
    else:
        cur_xy, cur_w = xy.copy(), w.copy()
    X = _triangulate_groups(E, cams, group, cur_xy, cur_w, Q)
    if not verify or Q == 0:
        return group, X, flipped
    size = detection_size(xy, w)
    for _ in range(2):
        m = np.flatnonzero(group >= 0)
        if mirror is not None:
            plain = pair_errors(E, X, cams, xy, w, size, m, group[m])
            mir = pair_errors(E, X, cams, xy[:, mirror], w[:, mirror], size, m, group[m])
            flipped[:] = False
            flipped[m] = mir < 0.7 * plain
            cur_xy = np.where(flipped[:, None, None], xy[:, mirror], xy)
            cur_w = np.where(flipped[:, None], w[:, mirror], w)
            X = _triangulate_groups(E, cams, group, cur_xy, cur_w, Q)
        own = pair_errors(E, X, cams, cur_xy, cur_w, size, m, group[m])
        group[m[own > reprojection_gate]] = -1
        X = _triangulate_groups(E, cams, group, cur_xy, cur_w, Q)
    group = _attach(E, frames, cams, cur_xy, cur_w, size, group, X, reprojection_gate)
    group, Q = _renumber(group)
    flipped &= group >= 0
    return group, _triangulate_groups(E, cams, group, cur_xy, cur_w, Q), flipped


# ----------------------------------------------------------------------------- hands


def _undistort_rows(rig: Rig, cams: np.ndarray, px: np.ndarray) -> np.ndarray:
    out = np.full(px.shape, np.nan)
    for c in np.unique(cams):
        m = cams == c
        out[m] = rig[int(c)].undistort(px[m])
    return out


@dataclass
class _HandState:
    """The per-frame hand assignment's inputs and outputs (rows N, slots k = 0/1)."""

    E: np.ndarray
    frames: np.ndarray
    cams: np.ndarray
    xy: np.ndarray  # (N, 2, 21, 2)
    w: np.ndarray  # (N, 2, 21)
    det_track: np.ndarray  # (N,)
    hand_len: float  # a hand's length in the rig's units
    hand_track: np.ndarray = None  # (N, 2)
    hand_side: np.ndarray = None  # (N, 2)

    def __post_init__(self) -> None:
        self.hand_track = np.full(self.w.shape[:2], -1, dtype=np.int64)
        self.hand_side = np.full(self.w.shape[:2], -1, dtype=np.int64)


def _arm_anchors(body: np.ndarray, knuckle: float) -> np.ndarray:
    """``(K, 2, 2, 3)`` wrist and knuckle of each track's arms from body joints ``(K, B, 3)``."""
    wrist = body[:, ARM_CHAIN[:, 2]]
    fore = wrist - body[:, ARM_CHAIN[:, 1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        fore = fore / np.linalg.norm(fore, axis=-1, keepdims=True)
    return np.stack([wrist, wrist + knuckle * fore], axis=2)


def assign_groups(cost: np.ndarray, group: np.ndarray, gate: float) -> np.ndarray:
    """One-to-one assignment of rows to columns within each group of rows (one camera in one
    frame), minimizing the total cost of the pairs under ``gate``: ``(R,)`` column, -1 none.

    Where the rows of a group all have different cheapest columns, taking them is optimal (it
    reaches the lower bound, the sum of the row minima); only the groups where two rows want
    the same column go through the Hungarian method. That is most groups in practice, and it
    makes the assignment of many frames one vectorized pass.
    """
    R = len(cost)
    out = np.full(R, -1, dtype=np.int64)
    if R == 0 or cost.shape[1] == 0:
        return out
    c = np.where(cost <= gate, cost, np.inf)
    best = np.argmin(c, axis=1)
    ok = np.isfinite(c[np.arange(R), best])
    out[ok] = best[ok]
    key = group[ok].astype(np.int64) * cost.shape[1] + best[ok]
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    clash = np.unique(group[ok][cnt[inv] > 1])
    if len(clash) == 0:
        return out
    order = np.argsort(group, kind="stable")
    lo = np.searchsorted(group[order], clash, side="left")
    hi = np.searchsorted(group[order], clash, side="right")
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        ri = order[a:b]
        sub = cost[ri]
        r, s = linear_sum_assignment(np.where(sub <= gate, sub, _BIG))
        good = sub[r, s] <= gate
        out[ri] = -1
        out[ri[r[good]]] = s[good]
    return out


def _hand_candidates(st: _HandState) -> np.ndarray:
    """``(M, 2)`` (row, slot) of the 2D hands worth assigning, by frame, camera, row, slot."""
    valid = (st.w > 0).sum(-1) >= 3
    valid &= (st.w[:, :, _HAND_ANCHOR] > 0).any(-1)
    n, k = np.nonzero(valid)
    order = np.lexsort((k, n, st.cams[n], st.frames[n]))
    return np.stack([n[order], k[order]], 1)


#: Rows per block of the vectorized passes over all frames: small enough for the CPU cache
#: (one block of 16 frames or 4096 hands ran 2x faster than one pass over everything).
_BLOCK_ROWS = 4096
_BLOCK_FRAMES = 16


def _anchor_costs(st: _HandState, cand: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Cost ``(M, S)`` of 2D hands ``cand (M, 2)`` against the 3D anchor pairs (wrist,
    knuckle) of their frame ``anchors (T, S, 2, 3)``: mean distance of the valid anchor
    joints in hand lengths at the anchor's depth; inf where not comparable."""
    frames = np.unique(st.frames[cand[:, 0]])  # only the frames asked for
    proj, z = project_normalized(st.E, anchors[frames])  # (C, F, S, 2, 2), (C, F, S, 2)
    pz = np.concatenate([proj, z[..., None] / st.hand_len], axis=-1)  # one gather below
    out = np.empty((len(cand), anchors.shape[1]))
    for a in range(0, len(cand), _BLOCK_ROWS):
        n, k = cand[a:a + _BLOCK_ROWS, 0], cand[a:a + _BLOCK_ROWS, 1]
        g = pz[st.cams[n], np.searchsorted(frames, st.frames[n])]  # (m, S, 2, 3)
        obs = st.xy[n, k][:, None, _HAND_ANCHOR]  # (m, 1, 2, 2)
        dx, dy = g[..., 0] - obs[..., 0], g[..., 1] - obs[..., 1]
        e = np.sqrt(dx * dx + dy * dy) * g[..., 2]
        valid = (st.w[n, k][:, None, _HAND_ANCHOR] > 0) & np.isfinite(e)
        cnt = valid.sum(-1)
        out[a:a + _BLOCK_ROWS] = np.where(cnt > 0, np.where(valid, e, 0.0).sum(-1)
                                          / np.maximum(cnt, 1), np.inf)  # fmt: skip
    return out


def _normal_blocks(E: np.ndarray) -> np.ndarray:
    """Per camera ``(C, 4, 9)``: a view ``(x, y)`` with weight ``w`` adds ``[w (x^2 + y^2), w x,
    w y, w] @ G[c]`` to the upper triangle and right-hand side of its point's normal equations
    (the rows ``x P3 - P1`` and ``y P3 - P2`` of the DLT, expanded)."""
    P1, P2, P3 = E[:, 0], E[:, 1], E[:, 2]
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2), (0, 3), (1, 3), (2, 3))
    i, k = np.array(pairs).T

    def sym(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a[:, i] * b[:, k] + b[:, i] * a[:, k]

    return np.stack([P3[:, i] * P3[:, k], -sym(P3, P1), -sym(P3, P2),
                     P1[:, i] * P1[:, k] + P2[:, i] * P2[:, k]], axis=1)  # fmt: skip


def _solve_normal3(acc: np.ndarray) -> np.ndarray:
    """Solve the symmetric 3x3 systems ``M X = -v`` given as ``acc (..., 9)`` (upper triangle
    ``M00 M01 M02 M11 M12 M22``, then ``v``; :func:`_normal_blocks`) in closed form
    (adjugate): ``(..., 3)``, NaN where singular.

    numpy's batched ``solve`` and ``det`` cost about a microsecond per 3x3 system; for the
    100k systems of all frames' hands that was the largest single cost."""
    a, b, c, d, e, f, v0, v1, v2 = np.moveaxis(acc, -1, 0)
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    det = a * c00 + b * c01 + c * c02
    scale = np.max(np.abs(acc[..., :6]), axis=-1)
    ok = np.abs(det) > 1e-12 * scale**3
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(ok, -1.0 / np.where(ok, det, 1.0), np.nan)
    return np.stack([(c00 * v0 + c01 * v1 + c02 * v2) * inv, (c01 * v0 + c11 * v1 + c12 * v2) * inv,
                     (c02 * v0 + c12 * v1 + c22 * v2) * inv], axis=-1)  # fmt: skip


def _triangulate_members(E: np.ndarray, cams: np.ndarray, xy: np.ndarray, w: np.ndarray,
                         slot: np.ndarray, n_slots: int) -> np.ndarray:  # fmt: skip
    """:func:`linear_triangulation` of views given as members: row ``m`` is ``xy (M, J, 2)``
    with weights ``w (M, J)`` in camera ``cams[m]`` of slot ``slot[m]``: ``(n_slots, J, 3)``.

    The normal equations are summed per slot over its members (no dense camera x slot
    array), so the cost follows the number of views, not cameras times slots.
    """
    X = np.full((n_slots, xy.shape[1], 3), np.nan)
    if len(slot) == 0:
        return X
    order = np.argsort(slot, kind="stable")
    s = slot[order]
    c = cams[order]
    x = xy[order]
    ww = np.where(np.isfinite(x).all(-1), w[order], 0.0)
    x = np.nan_to_num(x)
    coef = np.stack([ww * (x[..., 0] ** 2 + x[..., 1] ** 2), ww * x[..., 0], ww * x[..., 1], ww],
                    axis=-1)  # (M, J, 4)  # fmt: skip
    G = _normal_blocks(E)
    terms = np.empty(coef.shape[:2] + (9,))
    for cam in np.unique(c):  # one matrix product per camera
        m = c == cam
        terms[m] = coef[m] @ G[cam]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    acc = np.add.reduceat(terms, starts, axis=0)  # (S', J, 9)
    views = np.add.reduceat((ww > 0).astype(np.int64), starts, axis=0)
    Xs = _solve_normal3(acc)
    Xs[views < 2] = np.nan
    X[s[starts]] = Xs
    return X


def _member_errors(st: _HandState, mem: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Median reprojection error (hand lengths) of each member ``(row, slot, index)`` against
    its slot's 3D ``X``: ``(M,)``, inf where not comparable."""
    n, k, s = mem[:, 0], mem[:, 1], mem[:, 2]
    c = st.cams[n]
    pc = np.empty((len(mem), X.shape[1], 3))
    for cam in np.unique(c):  # one matrix product per camera
        m = c == cam
        pc[m] = X[s[m]] @ st.E[cam, :, :3].T + st.E[cam, :, 3]
    z = pc[..., 2]
    proj = pc[..., :2] / np.where(z > 0, z, np.nan)[..., None]
    e = np.linalg.norm(proj - st.xy[n, k], axis=-1) * z / st.hand_len
    e = np.where((st.w[n, k] > 0) & np.isfinite(e), e, np.inf)
    cnt = np.isfinite(e).sum(-1)
    med = np.sort(e, axis=-1)[np.arange(len(mem)), np.maximum((cnt - 1) // 2, 0)]
    return np.where(cnt > 0, med, np.inf)


def _verify_slots(st: _HandState, mem: np.ndarray, n_slots: int, gate: float
                  ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Drop, worst first, views of each slot that disagree with the slot's 3D.

    Args:
        mem: ``(M, 3)`` members as (row, hand slot, slot index), slots of any frames.

    Returns:
        The kept members and the slots' 3D ``(n_slots, 21, 3)`` (NaN with fewer than two
        views). A slot that lost no view keeps its 3D; only the others are solved again.
    """
    X = np.full((n_slots, N_JOINTS, 3), np.nan)
    keep = np.ones(len(mem), dtype=bool)
    active = np.ones(n_slots, dtype=bool)
    for _ in range(len(st.E)):
        idx = np.flatnonzero(keep & active[mem[:, 2]])
        if len(idx) == 0:
            break
        sub = mem[idx]
        n, k, s = sub[:, 0], sub[:, 1], sub[:, 2]
        Xa = _triangulate_members(st.E, st.cams[n], st.xy[n, k], st.w[n, k], s, n_slots)
        X[active] = Xa[active]
        err = _member_errors(st, sub, X)
        views = np.bincount(s, minlength=n_slots)
        err = np.where(views[s] >= 2, err, 0.0)
        order = np.lexsort((-err, s))  # per slot, worst first
        first = np.ones(len(order), bool)
        first[1:] = s[order][1:] != s[order][:-1]
        worst = order[first & (err[order] > gate)]
        # far-off views of a slot whose other views agree leave at once
        agree = np.bincount(s[err <= gate], minlength=n_slots)
        worst = np.union1d(worst, np.flatnonzero((err > 3 * gate) & (agree[s] >= 2)))
        keep[idx[worst]] = False
        active[:] = False
        active[s[worst]] = True
    if active.any():  # the slots that lost views in the last round
        sub = mem[keep & active[mem[:, 2]]]
        Xa = _triangulate_members(st.E, st.cams[sub[:, 0]], st.xy[sub[:, 0], sub[:, 1]],
                                  st.w[sub[:, 0], sub[:, 1]], sub[:, 2], n_slots)  # fmt: skip
        X[active] = Xa[active]
    mem = mem[keep]
    X[np.bincount(mem[:, 2], minlength=n_slots) < 2] = np.nan
    return mem, X


def _within_group_pairs(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``(a, b)`` of indices with the same ``group`` value."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    end = np.searchsorted(g, g, side="right")
    cnt = end - np.arange(len(g)) - 1
    a = np.repeat(np.arange(len(g)), cnt)
    b = a + 1 + np.arange(len(a)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return order[a], order[b]


def _duplicate_pairs(st: _HandState, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(a, b)`` of candidates (indices into ``cand``) that are one physical hand: two
    detections in one camera and frame (two people's rows holding the same hand) whose joints
    lie within 15 % of the smaller hand's size of each other (at least 5 joints in common)."""
    n, k = cand[:, 0], cand[:, 1]
    a, b = _within_group_pairs(st.frames[n] * len(st.E) + st.cams[n])
    xy, ok = st.xy[n, k], st.w[n, k] > 0  # (M, 21, 2), (M, 21)
    size = detection_size(xy, ok.astype(float))
    lim = 0.15 * np.fmin(size[a], size[b])
    anchors = xy[:, _HAND_ANCHOR]
    with np.errstate(invalid="ignore"):
        anchor = np.linalg.norm(anchors[a] - anchors[b], axis=-1)
        near = np.fmin(anchor[:, 0], anchor[:, 1]) < 3 * lim
    a, b, lim = a[near], b[near], lim[near]
    d = np.linalg.norm(xy[a] - xy[b], axis=-1)
    both = ok[a] & ok[b]
    mean = np.where(both, d, 0.0).sum(-1) / np.maximum(both.sum(-1), 1)
    hit = (both.sum(-1) >= 5) & (mean < lim)
    return a[hit], b[hit]


def _drop_duplicates(members: np.ndarray, cost: np.ndarray, dup: tuple[np.ndarray, np.ndarray]
                     ) -> np.ndarray:  # fmt: skip
    """The assigned candidates ``members`` (sorted indices) without duplicates: of two
    detections of one physical hand (``dup``, :func:`_duplicate_pairs`) only the one nearer its
    arm (lower ``cost``, per candidate) stays; greedy in order of cost."""
    a, b = dup
    both = np.isin(a, members) & np.isin(b, members)
    if not both.any():
        return members
    partners: dict[int, list[int]] = {}
    for i, j in zip(a[both].tolist(), b[both].tolist(), strict=True):
        partners.setdefault(i, []).append(j)
        partners.setdefault(j, []).append(i)
    drop: set[int] = set()
    involved = np.array(sorted(partners), dtype=np.int64)
    for i in involved[np.argsort(cost[involved], kind="stable")].tolist():
        if i not in drop:
            drop.update(partners[i])
    return members[~np.isin(members, list(drop))]


def _predicted_hands(hand3d: np.ndarray) -> np.ndarray:
    """Each frame's hand anchors where the two frames before say they go (constant velocity),
    else where the last or the one before was: ``(T, ...)`` like ``hand3d``."""
    prev = np.full_like(hand3d, np.nan)
    prev[2:] = 2 * hand3d[1:-1] - hand3d[:-2]
    prev[1:] = np.where(np.isfinite(prev[1:]), prev[1:], hand3d[:-1])
    prev[2:] = np.where(np.isfinite(prev[2:]), prev[2:], hand3d[:-2])
    return prev


def _settle_frames(st: _HandState, cand: np.ndarray, slot: np.ndarray, frames: np.ndarray,
                   hand3d: np.ndarray, cfg: AssociationConfig) -> np.ndarray:  # fmt: skip
    """The hands assigned in ``frames`` (``slot`` per candidate, -1 none) verified in 3D and
    written to ``st`` and ``hand3d``; returns the frames whose hands' 3D changed."""
    K = hand3d.shape[1]
    S = 2 * K
    cf = st.frames[cand[:, 0]]
    in_f = np.isin(cf, frames)
    st.hand_track[cand[in_f, 0], cand[in_f, 1]] = -1
    st.hand_side[cand[in_f, 0], cand[in_f, 1]] = -1
    m = np.flatnonzero(in_f & (slot >= 0))  # by frame
    pos = np.searchsorted(frames, cf[m])
    bounds = np.searchsorted(pos, np.arange(0, len(frames) + _BLOCK_FRAMES, _BLOCK_FRAMES))
    new = np.full((len(frames) * S, 2, 3), np.nan)
    for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):  # blocks of frames
        p0 = j * _BLOCK_FRAMES
        mem = np.c_[cand[m[a:b]], (pos[a:b] - p0) * S + slot[m[a:b]]]
        mem, X = _verify_slots(st, mem, _BLOCK_FRAMES * S, cfg.hand_reprojection_gate)
        st.hand_track[mem[:, 0], mem[:, 1]] = (mem[:, 2] % S) // 2
        st.hand_side[mem[:, 0], mem[:, 1]] = mem[:, 2] % 2
        top = min(len(new) - p0 * S, len(X))
        new[p0 * S:p0 * S + top] = X[:top, _HAND_ANCHOR]
    new = new.reshape(len(frames), K, 2, 2, 3)
    old = hand3d[frames]
    same = (new == old) | (np.isnan(new) & np.isnan(old))
    hand3d[frames] = new
    return frames[~same.reshape(len(frames), -1).all(1)]


def _guess_anchors(st: _HandState, cand: np.ndarray, slot: np.ndarray,
                   hand3d: np.ndarray) -> None:  # fmt: skip
    """``hand3d (T, K, 2, 2, 3)`` from the assigned views' anchor joints, unverified."""
    T, K = hand3d.shape[:2]
    m = np.flatnonzero(slot >= 0)
    n, k = cand[m, 0], cand[m, 1]
    X = _triangulate_members(st.E, st.cams[n], st.xy[n, k][:, _HAND_ANCHOR],
                             st.w[n, k][:, _HAND_ANCHOR], st.frames[n] * 2 * K + slot[m],
                             T * 2 * K)  # fmt: skip
    hand3d[:] = X.reshape(hand3d.shape)


@dataclass(frozen=True, eq=False)
class _HandCosts:
    """What does not change between rounds of :func:`_assign_hands`: the candidates, their
    group (camera and frame), frame, cost against the arms and preference factors, and the
    pairs of candidates that are one physical hand."""

    cand: np.ndarray  # (M, 2) row, hand slot
    frame: np.ndarray  # (M,)
    group: np.ndarray  # (M,)
    arm: np.ndarray  # (M, S)
    factor: np.ndarray  # (M, S)
    dup: tuple[np.ndarray, np.ndarray]

    @classmethod
    def build(cls, st: _HandState, cand: np.ndarray, body3d: np.ndarray,
              knuckle: float) -> _HandCosts:  # fmt: skip
        T, K = body3d.shape[:2]
        S = 2 * K
        arm = _arm_anchors(body3d.reshape((T * K,) + body3d.shape[2:]), knuckle)
        slots = np.arange(S)
        # a hand's own body and the detector's side guess are slightly preferred
        factor = np.where(st.det_track[cand[:, 0]][:, None] == slots // 2, 0.85, 1.0)
        factor *= np.where(cand[:, 1:2] == slots % 2, 0.95, 1.0)
        frame = st.frames[cand[:, 0]]
        return cls(cand, frame, frame * len(st.E) + st.cams[cand[:, 0]],
                   _anchor_costs(st, cand, arm.reshape(T, S, 2, 3)) * factor, factor,
                   _duplicate_pairs(st, cand))  # fmt: skip


def _hand_round(st: _HandState, hc: _HandCosts, sel: np.ndarray, hand3d: np.ndarray | None,
               gate: float) -> np.ndarray:  # fmt: skip
    """The slot (2 * track + side, -1 none) of candidates ``sel`` (whole frames): per camera
    and frame the Hungarian assignment on the cheaper of the arm's and the hand's previous 3D
    (``hand3d``, None: not yet known), then duplicates of one physical hand dropped."""
    cost = hc.arm[sel]
    if hand3d is not None:
        T, K = hand3d.shape[:2]
        prev = _predicted_hands(hand3d).reshape(T, 2 * K, 2, 3)
        cost = np.minimum(cost, _anchor_costs(st, hc.cand[sel], prev) * hc.factor[sel])
    new = assign_groups(cost, hc.group[sel], gate)
    pair_cost = np.zeros(len(hc.cand))
    pair_cost[sel] = cost[np.arange(len(sel)), np.maximum(new, 0)]
    stay = _drop_duplicates(sel[new >= 0], pair_cost, hc.dup)
    return np.where(np.isin(sel, stay), new, -1)


def _assign_hands(st: _HandState, body3d: np.ndarray, cfg: AssociationConfig,
                  knuckle: float) -> np.ndarray:  # fmt: skip
    """Every 2D hand to a person track's side, per camera and frame (:func:`_hand_round`);
    returns the hands' 3D wrist and knuckle ``(T, K, 2, 2, 3)`` (NaN where fewer than two
    views agree).

    All frames at once, in rounds: the arm costs once; a first guess of the hands' 3D from
    the arm-only assignment (anchor joints, unverified); then the costs against the hands'
    previous 3D, which chain frame to frame, are refreshed only for frames whose two frames
    before changed, and only frames whose assigned views changed are verified again, until
    nothing changes. That is the result of going frame by frame (a frame depends only on the
    frames before it, so each round settles at least one more frame; L3-L5 take 6-8 rounds,
    most of them on a few frames).
    """
    T, K = body3d.shape[:2]
    hand3d = np.full((T, K, 2, 2, 3), np.nan)
    cand = _hand_candidates(st)
    if K == 0 or len(cand) == 0:
        return hand3d
    hc = _HandCosts.build(st, cand, body3d, knuckle)
    kept = np.full(len(cand), -2, dtype=np.int64)  # the slots last verified
    dirty = np.ones(T, dtype=bool)
    for rnd in range(T + 2):
        sel = np.flatnonzero(dirty[hc.frame])
        new = _hand_round(st, hc, sel, hand3d if rnd else None, cfg.hand_gate)
        changed = np.unique(hc.frame[sel][new != kept[sel]])
        kept[sel] = new
        if rnd == 0:
            _guess_anchors(st, cand, kept, hand3d)
            continue
        if rnd == 1:  # every frame is verified once
            changed = np.unique(hc.frame)
        if len(changed) == 0:
            break
        moved = _settle_frames(st, cand, kept, changed, hand3d, cfg)
        dirty[:] = False
        for lag in (1, 2):
            dirty[moved[moved + lag < T] + lag] = True
    return hand3d


def _leftover_hands(st: _HandState, body3d: np.ndarray, hand3d: np.ndarray,
                    cfg: AssociationConfig, to_units: float, fps: float) -> int:  # fmt: skip
    """Hands no arm claimed: clustered across views, joined to a free arm nearby in 3D, else
    tracked as hand-only people (appended after the K body tracks). Returns their count."""
    K = body3d.shape[1]
    free = (st.hand_track < 0) & ((st.w > 0).sum(-1) >= 5)
    rr, kk = np.nonzero(free)
    if len(rr) == 0:
        return 0
    group, X, _ = cluster_views(st.E, st.frames[rr], st.cams[rr], st.xy[rr, kk], st.w[rr, kk],
                                cfg.hand_cluster_gate, cfg.hand_reprojection_gate, 5,
                                verify=cfg.verify)  # fmt: skip
    Q = len(X)
    gframe = np.zeros(Q, dtype=np.int64)
    gframe[group[group >= 0]] = st.frames[rr[group >= 0]]
    wrists = body3d[gframe][:, :, ARM_CHAIN[:, 2]]  # (Q, K, 2, 3)
    dist = np.linalg.norm(wrists - X[:, None, None, 0], axis=-1)
    dist = np.where(np.isnan(hand3d[gframe, :, :, 0, 0]), dist, np.inf)  # free arms only
    dist = np.where(np.isfinite(dist), dist, np.inf).reshape(Q, 2 * K)
    if Q == 0:
        return 0
    best = np.argmin(dist, axis=1) if K else np.zeros(Q, dtype=np.int64)
    near = cfg.attach_distance_m * to_units
    attached = (dist[np.arange(Q), best] < near) if K else np.zeros(Q, bool)
    # a cluster on top of a hand that already has its views is a duplicate, not a new person
    taken = np.linalg.norm(hand3d[gframe][:, :, :, 0] - X[:, None, None, 0], axis=-1)
    duplicate = (np.where(np.isfinite(taken), taken, np.inf) < near).any((1, 2))
    for m in np.flatnonzero(group >= 0):
        g = group[m]
        if attached[g]:
            st.hand_track[rr[m], kk[m]], st.hand_side[rr[m], kk[m]] = best[g] // 2, best[g] % 2
    alone = np.flatnonzero(~attached & ~duplicate)
    if len(alone) == 0:
        return 0
    step = cfg.max_speed_mps * to_units / fps
    tr = link_tracks(gframe[alone], X[alone][:, _HAND_ANCHOR], cfg.track_gate_m * to_units,
                     step, cfg.max_gap_frames)  # fmt: skip
    track_of = np.full(Q, -1, dtype=np.int64)
    track_of[alone] = tr
    n_new = int(tr.max() + 1) if len(tr) else 0
    for j in range(n_new):
        rows_m = np.flatnonzero((group >= 0) & (track_of[np.maximum(group, 0)] == j))
        side = int(np.mean(kk[rows_m]) >= 0.5)  # majority of the views' side guesses
        st.hand_track[rr[rows_m], kk[rows_m]] = K + j
        st.hand_side[rr[rows_m], kk[rows_m]] = side
    return n_new


def _side_majority(st: _HandState, n_body: int) -> np.ndarray:
    """Body tracks whose views' side guesses mostly contradict their arms: ``(K,)`` bool."""
    flip = np.zeros(n_body, dtype=bool)
    for k in range(n_body):
        m = st.hand_track == k
        agree = int((st.hand_side[m] == np.nonzero(m)[1]).sum())
        flip[k] = (m.sum() - agree) > 2 * agree
    return flip


def _median_rel(proj: np.ndarray, xy: np.ndarray, w: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Median relative reprojection error ``(..., R, K)`` of rows ``xy (..., R, J, 2)`` against
    bodies projected into each row's camera ``proj (R, K, J, 2)``."""
    d = proj - xy[..., :, None, :, :]
    e2 = d[..., 0] ** 2 + d[..., 1] ** 2  # squared: the same median, no square roots
    e2 = np.where((w[..., :, None, :] > 0) & np.isfinite(e2), e2, np.inf)
    n = np.isfinite(e2).sum(-1)
    srt = np.sort(e2, axis=-1)
    med = np.take_along_axis(srt, np.maximum((n - 1) // 2, 0)[..., None], -1)[..., 0]
    return np.where(n > 0, np.sqrt(med) / size[:, None], np.inf)


@dataclass
class _Tracker:
    """Person tracks for :func:`_propagate_bodies`: last 3D ``(n, J, 3)``, velocity ``(n, 3)``
    (units per frame) and the last frame each was seen ``(n,)``."""

    last: np.ndarray
    velocity: np.ndarray
    seen: np.ndarray

    @classmethod
    def empty(cls, n_joints: int) -> _Tracker:
        return cls(np.zeros((0, n_joints, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64))

    def copy(self) -> _Tracker:
        return _Tracker(self.last.copy(), self.velocity.copy(), self.seen.copy())

    def predict(self, k: np.ndarray, t: int | np.ndarray) -> np.ndarray:
        """Constant-velocity 3D of tracks ``k`` at frame(s) ``t``: ``(..., len(k), J, 3)``."""
        dt = np.asarray(t)[..., None] - self.seen[k]
        return self.last[k] + self.velocity[k][:, None] * dt[..., None, None]

    def update(self, k: np.ndarray, t: int, X: np.ndarray) -> None:
        """Tracks ``k`` seen at frame ``t`` with 3D ``X (len(k), J, 3)`` (NaN: unseen joint)."""
        gap = np.maximum(t - self.seen[k], 1)
        d = X - self.last[k]
        fin = np.isfinite(d)
        step = np.where(fin, d, 0.0).sum(1) / np.maximum(fin.sum(1), 1) / gap[:, None]
        v = 0.5 * self.velocity[k] + 0.5 * step
        self.velocity[k] = v
        self.last[k] = np.where(np.isfinite(X), X, self.last[k] + v[:, None] * gap[:, None, None])
        self.seen[k] = t

    def add(self, t: int, X: np.ndarray) -> int:
        self.last = np.concatenate([self.last, X[None]])
        self.velocity = np.concatenate([self.velocity, np.zeros((1, 3))])
        self.seen = np.append(self.seen, t)
        return len(self.seen) - 1


@dataclass(frozen=True)
class _BodyRows:
    """What :func:`_propagate_bodies` compares: every row's camera, frame, normalized joints
    plain and left/right-mirrored, weights and image size."""

    E: np.ndarray
    cams: np.ndarray
    frames: np.ndarray
    xy: np.ndarray
    w: np.ndarray
    xy_m: np.ndarray
    w_m: np.ndarray
    size: np.ndarray


def _follow(rows: _BodyRows, r: np.ndarray, t0: int, pred: np.ndarray, live: np.ndarray,
            gate: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Rows ``r`` of frames ``t0..`` to the predicted people of their frame ``pred (L, n, J,
    3)`` (``live (L, n)``: may be followed) by reprojection, one per camera, frame and person
    (Hungarian): ``(len(r),)`` track (-1 none) and mirrored flags."""
    if len(r) == 0 or pred.shape[1] == 0:
        return np.full(len(r), -1, dtype=np.int64), np.zeros(len(r), dtype=bool)
    proj, _ = project_normalized(rows.E, pred)  # (C, L, n, J, 2)
    c, f = rows.cams[r], rows.frames[r] - t0
    both = _median_rel(proj[c, f], np.stack([rows.xy[r], rows.xy_m[r]]),
                       np.stack([rows.w[r], rows.w_m[r]]), rows.size[r])  # fmt: skip
    plain, mirr = both[0], both[1]
    err = np.where(live[f], np.minimum(plain, mirr), np.inf)
    who = assign_groups(err, f * len(rows.E) + c, gate)
    flip = np.take_along_axis(mirr < plain, np.maximum(who, 0)[:, None], 1)[:, 0] & (who >= 0)
    return who, flip


def _verify_frame(E, cams, xy, w, size, group, Q, gate) -> tuple[np.ndarray, np.ndarray]:
    """DLT of the groups, views above the gate leave, DLT again."""
    if Q == 0:
        return group, np.zeros((0,) + xy.shape[1:-1] + (3,))
    m = np.flatnonzero(group >= 0)
    X = _triangulate_members(E, cams[m], xy[m], w[m], group[m], Q)
    own = pair_errors(E, X, cams, xy, w, size, m, group[m])
    group = group.copy()
    group[m[own > gate]] = -1
    views = np.bincount(group[group >= 0], minlength=Q)
    group[(group >= 0) & (views[np.maximum(group, 0)] < 2)] = -1
    m = np.flatnonzero(group >= 0)
    return group, _triangulate_members(E, cams[m], xy[m], w[m], group[m], Q)


def _replay(trk: _Tracker, t0: int, L: int, group: np.ndarray, X: np.ndarray,
            max_gap: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Advance ``trk`` through frames ``t0..t0+L-1`` with the verified groups (``group`` per
    row, ids ``frame offset * n + track``; ``X`` per id); returns what it predicted for each
    frame before seeing it ``(L, n, J, 3)`` and which tracks were live ``(L, n)``."""
    n = len(trk.seen)
    pred = np.empty((L, n) + trk.last.shape[1:])
    live = np.empty((L, n), dtype=bool)
    ids = np.unique(group[group >= 0])
    at = np.searchsorted(ids // max(n, 1), np.arange(L + 1))
    for f in range(L):
        pred[f] = trk.predict(np.arange(n), t0 + f)
        live[f] = t0 + f - trk.seen <= max_gap
        g = ids[at[f]:at[f + 1]]
        if len(g):
            trk.update(g % n, t0 + f, X[g])
    return pred, live


def _follow_chunk(rows: _BodyRows, trk: _Tracker, r: np.ndarray, t0: int, L: int,
                  cfg: AssociationConfig) -> tuple[int, np.ndarray, ...]:  # fmt: skip
    """Follow the known people through frames ``t0..t0+L-1`` (rows ``r``) with one prediction,
    then check that each frame's prediction from the tracks as they are after the frames
    before gives the same assignment; the frames done end before the first frame where it
    does not (the next chunk starts there), so the result is that of following frame by frame.

    Returns the frames done ``L'`` and, per row, its group (-1 none; id ``offset * n +
    track``), the groups' verified 3D and the rows' mirrored flags. ``trk`` is not changed."""
    n = len(trk.seen)
    f = rows.frames[r] - t0
    # only tracks live at t0 can be followed in the chunk (people who start or resume end
    # it); taken as live through the chunk: where one ends inside it, the check sees it
    alive = np.flatnonzero((t0 - trk.seen) <= cfg.max_gap_frames)
    pred = trk.predict(alive, np.arange(t0, t0 + L))
    who, flip = _follow(rows, r, t0, pred, np.ones((L, len(alive)), bool), cfg.propagate_gate)
    who = np.where(who >= 0, alive[np.maximum(who, 0)] if len(alive) else -1, -1)
    cxy = np.where(flip[:, None, None], rows.xy_m[r], rows.xy[r])
    cw = np.where(flip[:, None], rows.w_m[r], rows.w[r])
    group = np.where(who >= 0, f * n + who, -1)
    group, X = _verify_frame(rows.E, rows.cams[r], cxy, cw, rows.size[r], group, L * n,
                             cfg.body_reprojection_gate)  # fmt: skip
    if L > 1 and len(alive):
        pred2, live2 = _replay(trk.copy(), t0, L, group, X, cfg.max_gap_frames)
        who2, flip2 = _follow(rows, r, t0, pred2[:, alive], live2[:, alive],
                              cfg.propagate_gate)  # fmt: skip
        who2 = np.where(who2 >= 0, alive[np.maximum(who2, 0)], -1)
        bad = f[(who2 != who) | (flip2 != flip)]
        if len(bad):
            L = max(int(bad.min()), 1)
    return L, group, X, flip


def _births(rows: _BodyRows, r: np.ndarray, t0: int, L: int, group: np.ndarray,
            cfg: AssociationConfig) -> tuple | None:  # fmt: skip
    """The first frame of ``t0..t0+L-1`` whose rows that fit nobody (at least two) cluster
    into new people: ``(offset, rows, their cluster, the clusters' 3D, mirrored)``, or None."""
    f = rows.frames[r] - t0
    rest = (group < 0) & (f < L)
    offs, counts = np.unique(f[rest], return_counts=True)
    for fo in offs[counts >= 2].tolist():
        rr = r[rest & (f == fo)]
        ng, nX, nflip = cluster_views(rows.E, np.zeros(len(rr), np.int64), rows.cams[rr],
                                      rows.xy[rr], rows.w[rr], cfg.body_gate,
                                      cfg.body_reprojection_gate, cfg.min_common_joints,
                                      BODY_MIRROR, cfg.verify)  # fmt: skip
        if (ng >= 0).any():
            return fo, rr, ng, nX, nflip
    return None


def _propagate_bodies(E, det: Detections2D, xy, w, cfg: AssociationConfig, to_units: float,
                      fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Frame by frame: rows join the people they reproject onto (their predicted 3D body),
    the rest are clustered by epipolar geometry and start or resume tracks. Frames are
    followed in chunks of up to :data:`_CHUNK` with an exact check (:func:`_follow_chunk`);
    a chunk also ends at a frame where people start or resume.

    Returns ``track (N,)`` (-1 none), ``X (N, B, 3)`` the 3D of each row's person in its
    frame, ``flipped (N,)``."""
    N, T = len(det), det.n_frames
    rows_ok = (w > 0).sum(-1) >= cfg.min_common_joints
    rows = _BodyRows(E, det.camera, det.frame, xy, w, xy[:, BODY_MIRROR], w[:, BODY_MIRROR],
                     detection_size(xy, w))  # fmt: skip
    track = np.full(N, -1, dtype=np.int64)
    flipped = np.zeros(N, dtype=bool)
    X_row = np.full(xy.shape[:2] + (3,), np.nan)
    order = np.argsort(det.frame, kind="stable")
    order = order[rows_ok[order]]
    starts = np.searchsorted(det.frame[order], np.arange(T + 1))
    trk = _Tracker.empty(xy.shape[1])
    base, step = cfg.track_gate_m * to_units, cfg.max_speed_mps * to_units / fps
    t = 0
    while t < T:
        L = min(_CHUNK, T - t)
        r = order[starts[t]:starts[t + L]]
        n = len(trk.seen)
        L, group, X, flip = _follow_chunk(rows, trk, r, t, L, cfg)
        born = _births(rows, r, t, L, group, cfg)
        if born is not None:
            L = born[0] + 1
        done = det.frame[r] - t < L
        r, group, flip = r[done], group[done], flip[done]
        _replay(trk, t, L, group, X, cfg.max_gap_frames)
        m = group >= 0
        track[r[m]] = group[m] % max(n, 1)
        flipped[r[m]] = flip[m]
        X_row[r[m]] = X[group[m]]
        if born is not None:
            fo, rr, ng, nX, nflip = born
            live = np.flatnonzero(t + fo - trk.seen[:n] <= cfg.max_gap_frames)
            followed = np.unique(group[m & (det.frame[r] == t + fo)] % max(n, 1))
            ids = _resume_or_start(trk, t + fo, nX, np.setdiff1d(live, followed), base, step)
            tr = np.where(ng >= 0, ids[np.maximum(ng, 0)] if len(ids) else -1, -1)
            track[rr], flipped[rr] = tr, nflip & (tr >= 0)
            X_row[rr[ng >= 0]] = nX[ng[ng >= 0]]
        t += L
    return track, X_row, flipped


def _resume_or_start(trk: _Tracker, t: int, X: np.ndarray, idle: np.ndarray, base: float,
                     step: float) -> np.ndarray:  # fmt: skip
    """Track ids of new clusters ``X (Q, J, 3)``: an ``idle`` track (live, not seen in this
    frame) when one is near enough (Hungarian on the mean joint distance), else a new track."""
    from mvhand.core.tracks3d import mean_distance

    ids = np.full(len(X), -1, dtype=np.int64)
    if len(idle) and len(X):
        cost = mean_distance(trk.predict(idle, t)[:, None], X[None])
        gate = base + step * (t - trk.seen[idle])
        a, b = linear_sum_assignment(np.where(cost <= gate[:, None], cost, _BIG))
        ok = cost[a, b] <= gate[a]
        ids[b[ok]] = idle[a[ok]]
    for q in range(len(X)):
        if ids[q] < 0 and np.isfinite(X[q]).any():
            ids[q] = trk.add(t, X[q])
        elif ids[q] >= 0:
            trk.update(ids[q:q + 1], t, X[q][None])
    return ids


def _person_tracks(E, det: Detections2D, xy, w, cfg: AssociationConfig, to_units: float,
                   fps: float) -> tuple[np.ndarray, ...]:
    """Body clusters per frame and their 3D tracks: ``det_track (N,)``, ``body3d (T, K, B, 3)``,
    ``n_views (T, K)``, ``single (N,)`` (body rows no other view confirmed)."""
    N, T = len(det), det.n_frames
    rows = np.flatnonzero((w > 0).sum(-1) >= cfg.min_common_joints)
    if cfg.propagate:
        return _tracks_from_rows(det, rows, *_propagate_bodies(E, det, xy, w, cfg, to_units,
                                                               fps))  # fmt: skip
    group, X, flipped = cluster_views(E, det.frame[rows], det.camera[rows], xy[rows], w[rows],
                                      cfg.body_gate, cfg.body_reprojection_gate,
                                      cfg.min_common_joints, BODY_MIRROR, cfg.verify)  # fmt: skip
    single = np.zeros(N, dtype=bool)
    single[rows[group < 0]] = True
    gframe = np.zeros(len(X), dtype=np.int64)
    gframe[group[group >= 0]] = det.frame[rows[group >= 0]]
    track = link_tracks(gframe, X, cfg.track_gate_m * to_units,
                        cfg.max_speed_mps * to_units / fps, cfg.max_gap_frames)  # fmt: skip
    turn = orient_tracks(track, gframe, X, BODY_MIRROR)
    X[turn] = X[turn][:, BODY_MIRROR]
    K = int(track.max() + 1) if len(track) else 0
    body3d = np.full((T, K, X.shape[1], 3), np.nan)
    n_views = np.zeros((T, K), dtype=np.int64)
    ok = track >= 0
    body3d[gframe[ok], track[ok]] = X[ok]
    det_track = np.full(N, -1, dtype=np.int64)
    m = group >= 0
    det_track[rows[m]] = track[group[m]]
    np.add.at(n_views, (det.frame[rows[m]], track[group[m]]), 1)
    return det_track, body3d, n_views, single


def _tracks_from_rows(det: Detections2D, rows: np.ndarray, track: np.ndarray, X_row: np.ndarray,
                      flipped: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """:func:`_person_tracks`'s outputs from per-row tracks and 3D."""
    N, T = len(det), det.n_frames
    K = int(track.max() + 1) if (track >= 0).any() else 0
    body3d = np.full((T, K) + X_row.shape[1:], np.nan)
    n_views = np.zeros((T, K), dtype=np.int64)
    m = track >= 0
    body3d[det.frame[m], track[m]] = X_row[m]
    np.add.at(n_views, (det.frame[m], track[m]), 1)
    single = np.zeros(N, dtype=bool)
    single[rows[track[rows] < 0]] = True
    return track, body3d, n_views, single


def associate(rig: Rig, det: Detections2D,
              cfg: AssociationConfig = AssociationConfig()) -> Association:  # fmt: skip
    """Associate every detection across cameras and time (method: module docstring).

    Args:
        rig: the calibration; must hold ``det.cameras`` (any order, matched by name).
        det: the per-camera detections.
        cfg: gates and tracking settings.

    Returns:
        The :class:`Association`; tracks 0..K-1 have bodies, the rest are hand-only.
    """
    import time

    t0, c0 = time.perf_counter(), time.process_time()
    rig = rig.subset(det.cameras)
    E = rig.extrinsics
    to_units = 1.0 / UNIT_SCALE_M[rig.units]
    fps = float(det.fps or 30.0)
    N, B = det.body_px.shape[:2]
    xy = _undistort_rows(rig, det.camera, np.concatenate(
        [det.body_px, det.hands_px.reshape(N, 2 * N_JOINTS, 2)], axis=1))  # fmt: skip
    body_xy, hand_xy = xy[:, :B], xy[:, B:].reshape(det.hands_px.shape)
    t1 = time.perf_counter()
    body_w = np.where(det.body_scores >= cfg.min_score, det.body_scores, 0.0)
    det_track, body3d, body_views, single = _person_tracks(E, det, body_xy, body_w, cfg,
                                                           to_units, fps)  # fmt: skip
    t2 = time.perf_counter()
    hand_w = np.where(det.hands_scores >= cfg.min_score, det.hands_scores, 0.0)
    st = _HandState(E, det.frame, det.camera, hand_xy, hand_w, det_track,
                    HAND_LENGTH_M * to_units)  # fmt: skip
    K = body3d.shape[1]
    hand3d = _assign_hands(st, body3d, cfg, _KNUCKLE_M * to_units)
    t3 = time.perf_counter()
    flip = _side_majority(st, K)
    body3d[:, flip] = body3d[:, flip][:, :, BODY_MIRROR]
    sel = (st.hand_track >= 0) & (st.hand_track < K)
    st.hand_side[sel] = np.where(flip[st.hand_track[sel]], 1 - st.hand_side[sel],
                                 st.hand_side[sel])  # fmt: skip
    n_only = _leftover_hands(st, body3d, hand3d, cfg, to_units, fps)
    T = det.n_frames
    body3d = np.concatenate([body3d, np.full((T, n_only) + body3d.shape[2:], np.nan)], 1)
    body_views = np.concatenate([body_views, np.zeros((T, n_only), np.int64)], 1)
    t4 = time.perf_counter()
    info = {"seconds": t4 - t0, "cpu_seconds": time.process_time() - c0,
            "seconds_by_step": {"undistortion": round(t1 - t0, 4), "people": round(t2 - t1, 4),
                                "hands": round(t3 - t2, 4), "hands_without_body":
                                round(t4 - t3, 4)},
            "body_tracks": K, "hand_only_tracks": n_only,
            "tracks_flipped_by_majority": int(flip.sum())}  # fmt: skip
    return Association(det_track, st.hand_track, st.hand_side,
                       np.arange(K + n_only) < K, body3d, body_views, single, info)  # fmt: skip
