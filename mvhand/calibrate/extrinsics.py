"""Extrinsics from a board seen in synchronized videos.

Steps: per camera and frame, the board's pose by PnP (on undistorted normalized corners, so
pinhole and fisheye cameras are treated alike; ``SOLVEPNP_IPPE`` for a planar target); per
pair of cameras, the robust average of the relative poses over the frames both saw; chaining
over the camera graph's maximum spanning tree; then bundle adjustment of all cameras and board
poses on every corner (:mod:`mvhand.calibrate.bundle`), a second pass without the
observations the first one could not explain.

Why not aniposelib's ``CameraGroup.calibrate_rows``: it solves the same problem (pairwise
init, then bundle adjustment), but its ChArUco path re-detects with its own settings (no
inverted boards), its camera order is by string sort, and it does not look for frame offsets
(one caliscope camera is a frame late: 2.0 px board RMS without the offset, 0.7 px with it).
mvhand's own loop keeps the detections it made once and reports per-camera errors. (aniposelib
was not timed against it.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.calibrate.boards import Board
from mvhand.calibrate.bundle import (
    Adjusted,
    adjust_board,
    average_pose,
    camera_graph_init,
    compose,
    invert,
)
from mvhand.calibrate.detect import Detections
from mvhand.core.camera import Camera, Rig
from mvhand.errors import CalibrationError, InputError

log = logging.getLogger(__name__)


def board_pose(cam: Camera, board: Board, corners_px: np.ndarray,
               max_rms_px: float = 3.0) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    """Board-to-camera pose ``(R, t)`` from one view's corners ``(N, 2)``, or None."""
    import cv2

    ok = np.isfinite(corners_px[:, 0])
    if ok.sum() < 4:
        return None
    obj = board.points_m()[ok]
    norm = cam.undistort(corners_px[ok])
    found, rvec, tvec = cv2.solvePnP(obj, norm, np.eye(3), None, flags=cv2.SOLVEPNP_IPPE)
    if not found:
        return None
    rvec, tvec = cv2.solvePnPRefineLM(obj, norm, np.eye(3), None, rvec, tvec)
    R = Rotation.from_rotvec(rvec.ravel()).as_matrix()
    t = tvec.ravel()
    c0 = Camera(cam.name, cam.size_px, cam.K, cam.dist, np.eye(3), np.zeros(3), cam.model)
    proj = c0.project(obj @ R.T + t)
    rms = float(np.sqrt(np.mean(np.sum((proj - corners_px[ok]) ** 2, axis=1))))
    if rms > max_rms_px or t[2] <= 0:
        return None
    return R, t


def synced_corners(dets: Sequence[Detections]) -> np.ndarray:
    """``(C, F, N, 2)`` corners on the frames common to all cameras' detections.

    Raises:
        InputError: the cameras looked at different frames (different lengths or steps).
    """
    frames = [tuple(d.frames.tolist()) for d in dets]
    if len(set(frames)) > 1:
        lens = ", ".join(f"{d.source.name}: {len(d.frames)}" for d in dets)
        raise InputError(f"the videos do not cover the same frames ({lens}); synchronized "
                         "videos of one session must have the same length", dets[0].source)
    return np.stack([d.corners_px for d in dets])


@dataclass(frozen=True, eq=False)
class ExtrinsicsResult:
    """The calibrated rig and how well it explains the board.

    Attributes:
        rig: the cameras (world = the first camera's frame unless moved later).
        rms_px: ``(C,)`` board reprojection RMS per camera after bundle adjustment.
        views: ``(C,)`` board views per camera used.
        shared: ``(C, C)`` frames in which both cameras saw the board.
        board_world: ``(F, 6)`` board-to-world poses ``[rvec, t]`` (NaN: frame unused).
        adjusted: the last bundle adjustment.
        offsets: ``(C,)`` frame offsets applied (camera c's frame f + offset is frame f).
    """

    rig: Rig
    rms_px: np.ndarray
    views: np.ndarray
    shared: np.ndarray
    board_world: np.ndarray
    adjusted: Adjusted
    offsets: tuple[int, ...] = ()


def _poses(cams: Sequence[Camera], board: Board, corners: np.ndarray,
           min_corners: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    out = {}
    for c, cam in enumerate(cams):
        for f in range(corners.shape[1]):
            if np.isfinite(corners[c, f, :, 0]).sum() >= min_corners:
                pose = board_pose(cam, board, corners[c, f])
                if pose is not None:
                    out[(c, f)] = pose
    return out


def _board_world(poses: dict, cam_poses: Sequence, n_frames: int) -> np.ndarray:
    """``(F, 6)`` board-to-world per frame: robust average over the cameras that saw it."""
    per_frame: dict[int, list] = {}
    for (c, f), p in poses.items():
        per_frame.setdefault(f, []).append(compose(invert(cam_poses[c]), p))
    out = np.full((n_frames, 6), np.nan)
    for f, cands in per_frame.items():
        (R, t), _ = average_pose(cands)
        out[f] = np.concatenate([Rotation.from_matrix(R).as_rotvec(), t])
    return out


def shift_frames(corners_px: np.ndarray, offsets: Sequence[int]) -> np.ndarray:
    """Corners with camera c's frame f taken from its frame ``f + offsets[c]`` (NaN outside)."""
    out = np.full_like(corners_px, np.nan)
    n = corners_px.shape[1]
    for c, o in enumerate(offsets):
        lo, hi = max(0, -o), min(n, n - o)
        out[c, lo:hi] = corners_px[c, lo + o:hi + o]
    return out


def _pair_spread(pi: dict, pj: dict, offset: int) -> tuple[float, int]:
    """Median translation deviation (m) of the relative poses of two cameras with camera j's
    frames shifted by ``offset``; small when the two saw the board at the same instants."""
    shared = sorted(f for f in pi if f + offset in pj)
    if len(shared) < 4:
        return float("inf"), len(shared)
    cands = [compose(pi[f], invert(pj[f + offset])) for f in shared]
    (R, t), _ = average_pose(cands, max_deg=180.0)
    dev = [np.linalg.norm(c[1] - t) for c in cands]
    return float(np.median(dev)), len(shared)


def estimate_offsets(poses: dict, n_cams: int, reference: int, max_offset: int) -> list[int]:
    """Per camera, the integer frame offset (within +-``max_offset``) that makes its board
    poses most consistent with the other cameras' (0 for the reference camera).

    A camera that recorded one frame late sees the board where the others saw it a frame
    earlier: its relative poses then scatter by the board's motion per frame.
    """
    per = [{f: p for (c, f), p in poses.items() if c == k} for k in range(n_cams)]
    offsets = [0] * n_cams
    for c in range(n_cams):
        if c == reference or max_offset == 0:
            continue
        scores = []
        for o in range(-max_offset, max_offset + 1):
            spreads = [_pair_spread(per[k], per[c], o)[0] for k in range(n_cams) if k != c]
            scores.append(float(np.median(spreads)))
        best = int(np.argmin(scores)) - max_offset
        if np.isfinite(min(scores)) and scores[best + max_offset] < 0.7 * scores[max_offset]:
            offsets[c] = best
    return offsets


def calibrate_extrinsics(intrinsics: Sequence[Camera], board: Board, corners_px: np.ndarray,
                         refine_intrinsics: bool = False, min_corners: int = 6,
                         reference: int = 0, outlier_px: float = 5.0,
                         max_offset: int = 0) -> ExtrinsicsResult:  # fmt: skip
    """Cameras' poses from synchronized board corners ``(C, F, N, 2)``.

    Args:
        max_offset: look for per-camera frame offsets up to this many frames (0: trust the
            synchronization); found offsets are applied and reported in the result.

    Raises:
        CalibrationError: a camera never saw the board, or the camera graph is disconnected.
    """
    names = [c.name for c in intrinsics]
    poses = _poses(intrinsics, board, corners_px, min_corners)
    offsets = estimate_offsets(poses, len(names), reference, max_offset)
    if any(offsets):
        log.warning("frame offsets found (camera's frame f+offset was taken with the others' f):"
                    " %s", ", ".join(f"{n}: {o:+d}" for n, o in zip(names, offsets, strict=True)))
        corners_px = shift_frames(corners_px, offsets)
        poses = _poses(intrinsics, board, corners_px, min_corners)
    views = np.array([sum(1 for (c, _f) in poses if c == k) for k in range(len(names))])
    if (views == 0).any():
        bad = ", ".join(n for n, v in zip(names, views, strict=True) if v == 0)
        raise CalibrationError(f"no usable board view (>= {min_corners} corners with a PnP "
                               f"pose) in camera(s) {bad}")  # fmt: skip
    seen = np.zeros((len(names), corners_px.shape[1]), bool)
    for c, f in poses:
        seen[c, f] = True
    shared = seen.astype(int) @ seen.T.astype(int)
    cam_poses = camera_graph_init(poses, len(names), names, reference=reference)
    cams = [Camera(c.name, c.size_px, c.K, c.dist, R, t, c.model)
            for c, (R, t) in zip(intrinsics, cam_poses, strict=True)]  # fmt: skip
    bw = _board_world(poses, cam_poses, corners_px.shape[1])
    obs = corners_px.copy()
    obs[~seen] = np.nan
    adj = adjust_board(cams, board.points_m(), obs, bw, refine_intrinsics, reference)
    # second pass without the corners the first could not explain (false or moved detections)
    err = np.full(obs.shape[:3], np.nan)
    ci, fi, ni = np.nonzero(np.isfinite(obs[..., 0]) & np.isfinite(bw)[None, :, None, 0])
    err[ci, fi, ni] = np.linalg.norm(adj.residuals_px, axis=1)
    bad = err > max(outlier_px, 5 * float(np.nanmedian(err)))
    if bad.any():
        log.info("dropping %d of %d corner observations over %.1f px", bad.sum(),
                 np.isfinite(err).sum(), outlier_px)  # fmt: skip
        obs[bad] = np.nan
        adj = adjust_board(adj.cameras, board.points_m(), obs, adj.blocks, refine_intrinsics,
                           reference)  # fmt: skip
    rig = Rig(adj.cameras, "m")
    return ExtrinsicsResult(rig, adj.camera_rms_px(), views, shared, adj.blocks, adj,
                            tuple(offsets))
