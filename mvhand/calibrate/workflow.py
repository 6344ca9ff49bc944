"""The calibration commands' work, file in and file out (the CLI is a thin layer on top)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.calibrate.boards import Board
from mvhand.calibrate.detect import Detections, detect_any, require_board
from mvhand.calibrate.extrinsics import ExtrinsicsResult, calibrate_extrinsics, synced_corners
from mvhand.calibrate.intrinsics import (
    IntrinsicsConfig,
    IntrinsicsResult,
    calibrate_intrinsics,
    save_coverage,
)
from mvhand.core.camera import Rig
from mvhand.errors import InputError

log = logging.getLogger(__name__)

#: what mvhand's calibrations say about their world frame unless set-origin moved it
WORLD_FIRST_CAMERA = "world = the frame of camera {name} (x right, y down, z forward); " \
    "move it with mvhand calib set-origin"


def expand_sources(sources: Sequence[Path]) -> list[Path]:
    """Videos and image folders: a folder holding videos stands for its videos."""
    from mvhand.io.calib_convert import natural_key
    from mvhand.io.video import VIDEO_SUFFIXES

    out: list[Path] = []
    for s in sources:
        s = Path(s)
        if s.is_dir():
            vids = [p for p in s.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
            out += sorted(vids, key=lambda p: natural_key(p.name)) if vids else [s]
        elif s.is_file():
            out.append(s)
        else:
            raise InputError("no such video file or image folder", s)
    if not out:
        raise InputError("no videos or image folders given")
    return out


def camera_name(source: Path) -> str:
    """A camera's name from its video (stem) or image folder (name)."""
    return source.name if source.is_dir() else source.stem


def detect_all(sources: Sequence[Path], board: Board, step: int = 1, min_corners: int = 6,
               stop: int | None = None) -> list[Detections]:  # fmt: skip
    """Detections per source; InputError naming the source where the board was never seen."""
    dets = []
    for s in sources:
        det = detect_any(s, board, step, min_corners, stop)
        log.info("%s: board found in %d of %d frames", s, int((det.n_seen >= min_corners).sum()),
                 len(det.frames))  # fmt: skip
        require_board(det, board)
        dets.append(det)
    return dets


def check_lengths(sources: Sequence[Path]) -> None:
    """InputError when synchronized videos differ in length (more than one frame)."""
    from mvhand.io.video import probe_video

    vids = [s for s in sources if s.is_file()]
    if len(vids) != len(sources):
        raise InputError("extrinsics need one synchronized video per camera, not image folders",
                         next(s for s in sources if not s.is_file()))  # fmt: skip
    n = {s: probe_video(s).n_frames for s in vids}
    if max(n.values()) - min(n.values()) > 1:
        longest = max(n, key=n.get)
        lens = ", ".join(f"{s.name}: {v}" for s, v in n.items())
        raise InputError(f"synchronized videos must have the same length ({lens}); trim them "
                         "to the common part first", longest)  # fmt: skip


def run_intrinsics(dets: Sequence[Detections], board: Board, cfg: IntrinsicsConfig,
                   coverage_dir: Path | None = None) -> list[IntrinsicsResult]:  # fmt: skip
    """Intrinsics per camera (and coverage pictures ``<camera>_coverage.png``)."""
    results = []
    for det in dets:
        res = calibrate_intrinsics(det, board, camera_name(det.source), cfg)
        if coverage_dir is not None:
            save_coverage(coverage_dir / f"{res.camera.name}_coverage.png", res, det)
        results.append(res)
    return results


def run_extrinsics(intr: Rig, dets: Sequence[Detections], board: Board,
                   refine_intrinsics: bool, max_offset: int) -> ExtrinsicsResult:  # fmt: skip
    """Extrinsics of ``intr``'s cameras from the detections (matched by camera name)."""
    if board.kind != "charuco":
        raise InputError(f"extrinsics need a ChArUco board: a checkerboard's corners cannot be "
                         f"told apart from the other end, so cameras may disagree on their "
                         f"order ({board.name})")  # fmt: skip
    by_name = {camera_name(d.source): d for d in dets}
    missing = [n for n in intr.names if n not in by_name]
    if missing:
        raise InputError(f"no video for camera(s) {', '.join(missing)} of the intrinsics (videos "
                         f"are matched by file name: {', '.join(sorted(by_name))})")  # fmt: skip
    ordered = [by_name[n] for n in intr.names]
    for d, cam in zip(ordered, intr.cameras, strict=True):
        if tuple(d.size_px) != tuple(cam.size_px):
            raise InputError(f"video is {d.size_px[0]}x{d.size_px[1]} but camera {cam.name}'s "
                             f"intrinsics are for {cam.size_px[0]}x{cam.size_px[1]}", d.source)
    return calibrate_extrinsics(intr.cameras, board, synced_corners(ordered), refine_intrinsics,
                                max_offset=max_offset)  # fmt: skip


def intrinsics_metadata(results: Sequence[IntrinsicsResult], board: Board) -> dict[str, Any]:
    return {
        "source": "mvhand calib intrinsics",
        "board": board.describe(),
        "intrinsics_rms_px": {r.camera.name: round(r.rms_px, 4) for r in results},
        "intrinsics_views": {r.camera.name: len(r.used) for r in results},
        "world": "not calibrated (identity extrinsics)",
    }


def extrinsics_metadata(ex: ExtrinsicsResult, board: Board) -> dict[str, Any]:
    names = ex.rig.names
    return {
        "source": "mvhand calib extrinsics",
        "board": board.describe(),
        "board_rms_px": {n: round(float(v), 4) for n, v in zip(names, ex.rms_px, strict=True)},
        "board_views": {n: int(v) for n, v in zip(names, ex.views, strict=True)},
        "frame_offsets": {n: int(o) for n, o in zip(names, ex.offsets, strict=True)},
        "world": WORLD_FIRST_CAMERA.format(name=names[0]),
    }


@dataclass(frozen=True)
class Triangulated:
    """Board corners triangulated with a calibration.

    Attributes:
        points: ``(F, N, 3)`` in the rig's units, NaN where fewer than two cameras saw a corner.
        reproj_px: ``(C, F, N)`` reprojection error of each observation.
    """

    points: np.ndarray
    reproj_px: np.ndarray


def triangulate_corners(rig: Rig, corners_px: np.ndarray) -> Triangulated:
    """Linear triangulation (DLT on undistorted coordinates) of ``(C, F, N, 2)`` corners."""
    C, F, N, _ = corners_px.shape
    norm = rig.undistort(corners_px.reshape(C, F * N, 2))
    P = rig.extrinsics
    seen = np.isfinite(norm[..., 0])
    X = np.full((F * N, 3), np.nan)
    for k in np.flatnonzero(seen.sum(axis=0) >= 2):
        rows = []
        for c in np.flatnonzero(seen[:, k]):
            x, y = norm[c, k]
            rows += [x * P[c, 2] - P[c, 0], y * P[c, 2] - P[c, 1]]
        _, _, vt = np.linalg.svd(np.asarray(rows))
        X[k] = vt[-1, :3] / vt[-1, 3]
    proj = rig.project(X)
    err = np.linalg.norm(proj - corners_px.reshape(C, F * N, 2), axis=-1)
    return Triangulated(X.reshape(F, N, 3), err.reshape(C, F, N))


def body_keypoints(videos: Sequence[Path], step: int = 1, stop: int | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Whole-body keypoints of the main person per video with mvhand's 2D front-end.

    Returns:
        points ``(C, T, K, 2)`` pixels (NaN: not found) and scores ``(C, T, K)``, K = 33
        (MediaPipe's layout, :data:`mvhand.calibrate.people.MEDIAPIPE_POSE33`).
    """
    from mvhand.backends.registry import make_backend
    from mvhand.io.video import iter_frames
    from mvhand.stages.body import run_body

    backend = make_backend()
    pts, scs = [], []
    for v in videos:
        p, s = [], []
        for frame, _ in run_body(iter_frames(v, 0, stop, step), backend.person, backend.body):
            if frame.pose is None or frame.pose.layout != "mediapipe_pose33":
                p.append(np.full((33, 2), np.nan))
                s.append(np.zeros(33))
            else:
                p.append(frame.pose.keypoints_px)
                s.append(frame.pose.scores)
        pts.append(np.asarray(p))
        scs.append(np.asarray(s))
        log.info("%s: a person in %d of %d frames", v, int(np.sum(np.asarray(s).max(axis=1) > 0)),
                 len(s))  # fmt: skip
    n = min(len(p) for p in pts)
    return np.stack([p[:n] for p in pts]), np.stack([s[:n] for s in scs])
