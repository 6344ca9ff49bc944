"""Extrinsics from people: body or hand keypoints seen in synchronized videos, no board.

The cameras' intrinsics are known. Every (frame, keypoint) is a 3D point seen by several
cameras, so the rig is a structure-from-motion problem on those points:

1. per pair of cameras, the essential matrix by RANSAC on undistorted coordinates
   (``cv2.findEssentialMat``): outliers and left/right swaps are simply not inliers;
2. incremental registration: the best pair (most inliers) fixes the frame and an arbitrary
   scale, its inlier points are triangulated, and every further camera is added by PnP-RANSAC
   on the points already triangulated (so all cameras share one scale);
3. bundle adjustment of all cameras and points (Huber loss, detector scores as weights); then
   left/right swap repair per view and frame (the mirrored assignment is kept where it
   reprojects better), outlier removal, and a second adjustment;
4. metric scale from a known length: the median distance between two keypoints over the
   frames (a forearm, a person's shoulder width), or the distance between two cameras.

Measured on the Pose2Sim videos (MediaPipe body keypoints, Qualisys intrinsics): keypoints
with scores >= 0.7 give camera centres within 0.5-2.1% of the camera-to-subject distance and
orientations within 0.7-1.5 degrees of Qualisys' after a similarity alignment; with >= 0.5
the badly placed low-score keypoints (feet, face) led to a wrong solution (12-14%, 7-10
degrees). Hence the default ``min_score = 0.7``. One camera (seeing the person from behind)
had 27 of its 100 views swapped left/right by the body model; they were repaired.

Array layout: ``points_px (C, T, K, 2)`` pixels, NaN where missing; ``scores (C, T, K)``;
``swap (K,)`` the index of each keypoint's left/right counterpart (itself if none).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mvhand.calibrate.bundle import Adjusted, adjust_points, transform_cameras
from mvhand.core.camera import Camera, Rig
from mvhand.errors import CalibrationError

log = logging.getLogger(__name__)

#: MediaPipe's 33 body keypoints (BlazePose), the layout of mvhand's default body model.
MEDIAPIPE_POSE33: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index")  # fmt: skip


def mirror_index(names: Sequence[str]) -> np.ndarray:
    """``(K,)`` each keypoint's left/right counterpart by name (itself when it has none)."""
    pos = {n: i for i, n in enumerate(names)}
    out = np.arange(len(names))
    for i, n in enumerate(names):
        for a, b in (("left", "right"), ("right", "left")):
            if a in n and n.replace(a, b) in pos:
                out[i] = pos[n.replace(a, b)]
    return out


def keypoint_index(names: Sequence[str], name: str) -> int:
    """The index of keypoint ``name``; CalibrationError listing the names when unknown."""
    if name not in names:
        raise CalibrationError(f"unknown keypoint {name!r}; known: {', '.join(names)}")
    return list(names).index(name)


@dataclass(frozen=True, eq=False)
class PeopleResult:
    """Extrinsics from keypoints.

    Attributes:
        rig: the cameras; world = the first camera's frame, units as scaled (m when a length
            was given, else the first registered pair's baseline = 1).
        rms_px: ``(C,)`` keypoint reprojection RMS per camera (inliers).
        inliers: ``(C,)`` observations kept per camera.
        swapped: ``(C, T)`` views whose left/right keypoints were exchanged.
        points: ``(T, K, 3)`` triangulated keypoints (NaN: not triangulated).
        scaled: whether a metric scale was applied.
    """

    rig: Rig
    rms_px: np.ndarray
    inliers: np.ndarray
    swapped: np.ndarray
    points: np.ndarray
    scaled: bool


def _dlt(P: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Batched DLT: cameras ``P (C, 3, 4)``, undistorted ``norm (C, M, 2)`` -> ``(M, 3)``."""
    seen = np.isfinite(norm[..., 0])
    X = np.full((norm.shape[1], 3), np.nan)
    counts = seen.sum(axis=0)
    for n in np.unique(counts[counts >= 2]):
        idx = np.flatnonzero(counts == n)
        rows = []
        for m in idx:
            cs = np.flatnonzero(seen[:, m])
            x, y = norm[cs, m, 0:1], norm[cs, m, 1:2]
            rows.append(np.concatenate([x * P[cs, 2] - P[cs, 0], y * P[cs, 2] - P[cs, 1]]))
        vt = np.linalg.svd(np.stack(rows))[2]
        X[idx] = vt[:, -1, :3] / vt[:, -1, 3:4]
    return X


def _pair_pose(a: np.ndarray, b: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray] | None:
    """Essential-matrix pose of camera b relative to a from matched normalized points."""
    import cv2

    ok = np.isfinite(a[:, 0]) & np.isfinite(b[:, 0])
    if ok.sum() < 15:
        return None
    idx = np.flatnonzero(ok)
    E, mask = cv2.findEssentialMat(a[idx], b[idx], np.eye(3), cv2.RANSAC, 0.999, thresh)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, mask2 = cv2.recoverPose(E, a[idx], b[idx], np.eye(3), mask=mask.copy())
    inl = np.zeros(len(a), bool)
    inl[idx[mask2.ravel() > 0]] = True
    return R, t.ravel(), inl


def _register(norm: np.ndarray, X: np.ndarray, c: int, thresh: float,
              base: Camera) -> Camera | None:
    """Camera c by PnP-RANSAC on the triangulated points ``X`` it sees."""
    import cv2

    ok = np.isfinite(X[:, 0]) & np.isfinite(norm[c, :, 0])
    if ok.sum() < 8:
        return None
    found, rvec, tvec, inl = cv2.solvePnPRansac(X[ok], norm[c, ok], np.eye(3), None,
                                                reprojectionError=thresh, iterationsCount=500,
                                                confidence=0.999)  # fmt: skip
    if not found or inl is None or len(inl) < 8:
        return None
    return Camera.from_rvec(base.name, base.size_px, base.K, base.dist, rvec.ravel(),
                            tvec.ravel(), base.model)  # fmt: skip


def _initial_rig(intr: Sequence[Camera], norm: np.ndarray, thresh: float) -> list[Camera]:
    """Steps 1-2 of the module doc: best pair, then PnP for the others."""
    C = len(intr)
    best = None
    for i in range(C):
        for j in range(i + 1, C):
            res = _pair_pose(norm[i], norm[j], thresh)
            if res is not None and (best is None or res[2].sum() > best[3].sum()):
                best = (i, j, res[:2], res[2])
    if best is None:
        raise CalibrationError("no two cameras see enough keypoints together (15 needed) to "
                               "relate them")  # fmt: skip
    i, j, (R, t), inl = best
    cams: list[Camera | None] = [None] * C
    ci = intr[i]
    cams[i] = Camera(ci.name, ci.size_px, ci.K, ci.dist, np.eye(3), np.zeros(3), ci.model)
    cj = intr[j]
    cams[j] = Camera(cj.name, cj.size_px, cj.K, cj.dist, R, t, cj.model)
    for _ in range(C):
        done = [k for k in range(C) if cams[k] is not None]
        P = np.stack([cams[k].extrinsics for k in done])
        pts = norm[done].copy()
        if len(done) == 2:
            pts[:, ~inl] = np.nan
        X = _dlt(P, pts)
        todo = [k for k in range(C) if cams[k] is None]
        if not todo:
            break
        counts = [(np.isfinite(X[:, 0]) & np.isfinite(norm[k, :, 0])).sum() for k in todo]
        k = todo[int(np.argmax(counts))]
        cams[k] = _register(norm, X, k, thresh, intr[k])
        if cams[k] is None:
            raise CalibrationError(f"camera {intr[k].name} shares too few keypoints with the "
                                   "others to be placed (8 needed)")  # fmt: skip
    # world = the first camera's frame
    R0, t0 = cams[0].R_cam_world, cams[0].t_cam_world
    return list(transform_cameras(cams, 1.0, R0, t0))


def _repair_swaps(cams: Sequence[Camera], pts_px: np.ndarray, X: np.ndarray,
                  swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Exchange left/right keypoints in the views where that reprojects better.

    Each view is judged against the robustly adjusted points ``X`` (a minority of swapped
    views hardly moves them under the soft-L1 loss), by the median error over its keypoints.
    (Judging against the other cameras' plain triangulation was worse: a swapped view in
    another camera of the same frame then made a correct view look swapped.)

    Args:
        pts_px: ``(C, T, K, 2)``; X: ``(T, K, 3)``; swap: ``(K,)`` permutation.
    """
    out = pts_px.copy()
    swapped = np.zeros(pts_px.shape[:2], bool)
    for c, cam in enumerate(cams):
        proj = cam.project(X)  # (T, K, 2)
        e_keep = np.linalg.norm(proj - pts_px[c], axis=-1)
        e_swap = np.linalg.norm(proj - pts_px[c][:, swap], axis=-1)
        both = np.isfinite(e_keep) & np.isfinite(e_swap)
        with warnings.catch_warnings():  # all-NaN rows (a view without keypoints) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            keep = np.nanmedian(np.where(both, e_keep, np.nan), axis=1)
            flip = np.nanmedian(np.where(both, e_swap, np.nan), axis=1)
        do = (both.sum(axis=1) >= 2) & (flip < 0.5 * keep)
        out[c, do] = pts_px[c][do][:, swap]
        swapped[c] = do
    return out, swapped


def _adjust(cams, pts_px, scores, X0, loss_px) -> Adjusted:
    C, T, K, _ = pts_px.shape
    return adjust_points(cams, pts_px.reshape(C, T * K, 2), X0.reshape(T * K, 3),
                         scores.reshape(C, T * K), loss_scale_px=loss_px)  # fmt: skip


def _triangulate(cams: Sequence[Camera], pts_px: np.ndarray) -> np.ndarray:
    C, T, K, _ = pts_px.shape
    rig = Rig(tuple(cams), "m")
    norm = rig.undistort(pts_px.reshape(C, T * K, 2))
    return _dlt(rig.extrinsics, norm).reshape(T, K, 3)


def calibrate_from_keypoints(intrinsics: Sequence[Camera], points_px: np.ndarray,
                             scores: np.ndarray, swap: np.ndarray | None = None,
                             min_score: float = 0.7, ransac_px: float = 4.0,
                             outlier_px: float = 10.0) -> PeopleResult:  # fmt: skip
    """Extrinsics of cameras with known intrinsics from their keypoints (see module doc).

    Raises:
        CalibrationError: cameras cannot be related (too few shared keypoints).
    """
    C, T, K, _ = points_px.shape
    pts = np.where((scores >= min_score)[..., None], points_px, np.nan)
    rig0 = Rig(tuple(intrinsics), "m")
    norm = rig0.undistort(pts.reshape(C, T * K, 2))
    f = float(np.median(rig0.focal_px))
    cams = _initial_rig(intrinsics, norm, ransac_px / f)
    swapped = np.zeros((C, T), bool)
    w = np.nan_to_num(scores)
    # the robust (Huber) adjustment first, so that outliers and swaps do not steer the points
    adj = _adjust(cams, pts, w, _triangulate(cams, pts), ransac_px / 2)
    for _ in range(2):
        cams = list(adj.cameras)
        X = adj.blocks.reshape(T, K, 3)
        if swap is not None:
            pts, sw = _repair_swaps(cams, pts, X, swap)
            swapped ^= sw
            log.debug("left/right swaps repaired in %d views", sw.sum())
        # drop observations that the current rig cannot explain (outliers)
        err = np.linalg.norm(Rig(tuple(cams), "m").project(X) - pts, axis=-1)
        pts = np.where((err > outlier_px)[..., None], np.nan, pts)
        adj = _adjust(cams, pts, w, np.where(np.isfinite(X), X, _triangulate(cams, pts)),
                      ransac_px / 2)  # fmt: skip
    cams = list(adj.cameras)
    X = adj.blocks.reshape(T, K, 3)
    err = np.linalg.norm(Rig(tuple(cams), "m").project(X) - pts, axis=-1)
    ok = np.isfinite(err) & (err <= outlier_px)
    rms = np.array([np.sqrt(np.mean(err[c][ok[c]] ** 2)) if ok[c].any() else np.nan
                    for c in range(C)])  # fmt: skip
    return PeopleResult(Rig(tuple(cams), "m"), rms, ok.sum(axis=(1, 2)), swapped, X, False)


def scale_by_length(res: PeopleResult, a: int, b: int, length_m: float) -> PeopleResult:
    """Scale so that the median distance between keypoints a and b is ``length_m``."""
    d = np.linalg.norm(res.points[:, a] - res.points[:, b], axis=-1)
    d = d[np.isfinite(d)]
    if len(d) < 3:
        raise CalibrationError(f"keypoints {a} and {b} are triangulated together in only "
                               f"{len(d)} frames; cannot take the scale from them")  # fmt: skip
    return _rescale(res, length_m / float(np.median(d)))


def scale_by_cameras(res: PeopleResult, a: str, b: str, distance_m: float) -> PeopleResult:
    """Scale so that cameras a and b are ``distance_m`` apart."""
    d = np.linalg.norm(res.rig[a].center_world - res.rig[b].center_world)
    return _rescale(res, distance_m / float(d))


def scale_by_board(res: PeopleResult, pairs: np.ndarray, square_m: float,
                   corners_px: np.ndarray) -> PeopleResult:  # fmt: skip
    """Scale so that a board seen (at least once, by two or more cameras) has its known size.

    Args:
        pairs: ``(P, 2)`` corner indices one square apart (``Board.neighbour_pairs``).
        square_m: the board's square side.
        corners_px: ``(C, F, N, 2)`` the board's corners in the rig's cameras.
    """
    C, F, N, _ = corners_px.shape
    rig = res.rig
    X = _dlt(rig.extrinsics, rig.undistort(corners_px.reshape(C, F * N, 2))).reshape(F, N, 3)
    sides = np.linalg.norm(X[:, pairs[:, 0]] - X[:, pairs[:, 1]], axis=-1)
    sides = sides[np.isfinite(sides)]
    if len(sides) < 3:
        raise CalibrationError("the board was not seen by two cameras at once; cannot take the "
                               "scale from it")  # fmt: skip
    return _rescale(res, square_m / float(np.median(sides)))


def _rescale(res: PeopleResult, s: float) -> PeopleResult:
    cams = transform_cameras(res.rig.cameras, s, np.eye(3), np.zeros(3))
    return PeopleResult(Rig(cams, "m"), res.rms_px, res.inliers, res.swapped, res.points * s,
                        True)  # fmt: skip
