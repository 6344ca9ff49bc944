"""Video input: find one video per camera, check them against each other and the calibration,
and stream their frames.

Frames are decoded one at a time (:func:`iter_frames`); nothing here holds a whole video in
memory. Images handed to the model backends are ``(height, width, 3)`` uint8 **RGB**.
A frame that cannot be decoded in the middle of a video is reported as missing (``None``) and
reading goes on; the reader stops only after the expected number of frames or after
``max_bad_run`` failures in a row (a truncated file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.core.camera import Rig
from mvhand.errors import CalibrationError, InputError

log = logging.getLogger(__name__)

#: File name endings taken for videos when a folder is scanned.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg",
                                   ".webm", ".wmv")  # fmt: skip


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's header says.

    Attributes:
        path: the file.
        n_frames: frame count from the container (may be an estimate for some codecs).
        fps: frames per second.
        size_px: (width, height) pixels.
    """

    path: Path
    n_frames: int
    fps: float
    size_px: tuple[int, int]


def _open(path: Path):
    import cv2

    if not path.is_file():
        raise InputError("video file not found", path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError("cannot open this video (unknown format or unreadable file)", path)
    return cap


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's frame count, fps and frame size without decoding it.

    Raises:
        InputError: the file is missing, cannot be opened, or reports no frames.
    """
    import cv2

    path = Path(path)
    cap = _open(path)
    try:
        n = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()
    if n <= 0 or size[0] <= 0 or size[1] <= 0:
        raise InputError(f"the video reports {n} frames of {size[0]}x{size[1]} px; is it empty "
                         "or damaged?", path)  # fmt: skip
    return VideoInfo(path, n, fps if np.isfinite(fps) and fps > 0 else 0.0, size)


def iter_frames(path: str | Path, start: int = 0, stop: int | None = None, step: int = 1,
                max_bad_run: int = 30) -> Iterator[tuple[int, np.ndarray | None]]:  # fmt: skip
    """Stream frames ``start:stop:step`` of a video as RGB images.

    Args:
        path: the video.
        start, stop, step: the frame range (``stop`` None: to the end as the header says).
        max_bad_run: give up after this many undecodable frames in a row (truncated file);
            the frames not read are then yielded as ``None`` too, so every index is yielded.

    Yields:
        ``(frame_index, image)`` with image ``(height, width, 3)`` uint8 RGB, or ``None`` where
        the frame could not be decoded.
    """
    import cv2

    path = Path(path)
    info = probe_video(path)
    stop = info.n_frames if stop is None else min(stop, info.n_frames)
    cap = _open(path)
    try:
        if start > 0:
            _skip_to(cap, start)
        bad_run = 0
        for t in range(start, stop):
            keep = (t - start) % step == 0
            if bad_run >= max_bad_run:  # truncated file: the rest is missing
                if keep:
                    yield t, None
                continue
            ok = cap.grab()
            image = None
            if ok and keep:
                ok, bgr = cap.retrieve()
                ok = ok and bgr is not None and bgr.shape[:2] == (info.size_px[1], info.size_px[0])
                image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None
            bad_run = 0 if ok else bad_run + 1
            if not ok:
                log.warning("%s: frame %d could not be decoded; it is marked missing", path, t)
            if keep:
                yield t, image
    finally:
        cap.release()


def _skip_to(cap, start: int) -> None:
    """Position ``cap`` before frame ``start``: seek, and check the position (else decode)."""
    import cv2

    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    if int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) == start:
        return
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    for _ in range(start):
        cap.grab()


@dataclass(frozen=True)
class VideoMatch:
    """Videos matched to the calibration's cameras.

    Attributes:
        videos: camera name -> video path, in calibration order.
        cameras_without_video: calibration cameras that have no video.
        videos_without_camera: video files that match no calibration camera.
    """

    videos: dict[str, Path]
    cameras_without_video: tuple[str, ...]
    videos_without_camera: tuple[str, ...]

    def problems(self) -> list[str]:
        """One sentence per mismatch, saying what to do."""
        out = []
        if self.cameras_without_video:
            out.append(f"no video for calibration camera(s) {', '.join(self.cameras_without_video)}"
                       "; they are left out")  # fmt: skip
        if self.videos_without_camera:
            out.append(f"video(s) {', '.join(self.videos_without_camera)} match no camera in the "
                       "calibration and are ignored; name each video after its camera (file stem "
                       "= camera name) or set [video] mapping in the pipeline config")
        return out


def find_videos(folder: str | Path, camera_names: tuple[str, ...],
                mapping: Mapping[str, str] | None = None) -> VideoMatch:  # fmt: skip
    """Match the videos in ``folder`` to the calibration's cameras.

    A video belongs to the camera whose name is its file stem, unless ``mapping`` (camera name
    -> file name relative to ``folder``) says otherwise.

    Raises:
        InputError: the folder is missing or holds no video, a mapping entry is wrong, or no
            video matches any camera (the message lists what was found and how to fix it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("video folder not found (give the folder holding one video per "
                         "camera)", folder)  # fmt: skip
    videos = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)  # fmt: skip
    if not videos:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder", folder)
    mapping = dict(mapping or {})
    unknown_map = sorted(set(mapping) - set(camera_names))
    if unknown_map:
        raise InputError(f"video.mapping names camera(s) {unknown_map} that the calibration "
                         f"lacks (it has: {', '.join(camera_names)})")  # fmt: skip
    by_stem = {p.stem: p for p in videos}
    found: dict[str, Path] = {}
    for cam in camera_names:
        if cam in mapping:
            path = folder / mapping[cam]
            if not path.is_file():
                raise InputError(f"video.mapping gives '{mapping[cam]}' for camera '{cam}', but "
                                 "there is no such file", folder)  # fmt: skip
            found[cam] = path
        elif cam in by_stem:
            found[cam] = by_stem[cam]
    used = {p.resolve() for p in found.values()}
    match = VideoMatch(found, tuple(c for c in camera_names if c not in found),
                       tuple(p.name for p in videos if p.resolve() not in used))  # fmt: skip
    if not found:
        raise InputError(
            f"no video matches a camera of the calibration. Cameras: {', '.join(camera_names)}; "
            f"videos: {', '.join(p.name for p in videos)}. Name each video after its camera "
            "(file stem = camera name) or set [video] mapping in the pipeline config.", folder)
    return match


@dataclass(frozen=True)
class VideoCheck:
    """The outcome of checking a set of videos against each other and the calibration.

    Attributes:
        rig: the calibration with each camera's image size set to its video's where that was
            needed and allowed.
        n_frames: the common length (the shortest video), frames.
        fps: the common frame rate (the first camera's if they differ).
        warnings: one plain sentence per problem found and how it was handled.
    """

    rig: Rig
    n_frames: int
    fps: float
    warnings: tuple[str, ...]


def check_videos(infos: Mapping[str, VideoInfo], rig: Rig) -> VideoCheck:
    """Compare frame counts, fps and frame sizes of the videos with each other and the rig.

    Videos of different lengths are cut to the shortest. A frame size that differs from the
    calibration's is accepted (with a warning) when the principal point still lies well inside
    the video's frame, e.g. 1080 px wide videos with a 1088 px calibration: the few missing
    columns are at the border and the intrinsics stay valid. A video that is the calibration's
    size scaled by a factor gets its intrinsics scaled. Anything else is an error.

    Raises:
        CalibrationError: a frame size that the calibration cannot be used with.
    """
    warnings: list[str] = []
    names = list(infos)
    counts = {c: infos[c].n_frames for c in names}
    n_frames = min(counts.values())
    if len(set(counts.values())) > 1:
        warnings.append(f"videos have different lengths ({_fmt(counts)} frames); using the "
                        f"common length of {n_frames} frames")  # fmt: skip
    fps_all = {c: infos[c].fps for c in names}
    fps = fps_all[names[0]]
    if max(fps_all.values()) - min(fps_all.values()) > 0.01:
        warnings.append(f"videos have different frame rates ({_fmt(fps_all)} fps); frames are "
                        "paired by index, so check that the cameras were synchronised")  # fmt: skip
    cams = []
    for cam in rig.cameras:
        if cam.name not in infos:
            cams.append(cam)
            continue
        new, msg = _fit_size(cam, infos[cam.name])
        cams.append(new)
        if msg:
            warnings.append(msg)
    return VideoCheck(Rig(tuple(cams), rig.units), n_frames, fps, tuple(warnings))


def _fit_size(cam, info: VideoInfo):
    """The camera adapted to the video's frame size, and a warning (or None)."""
    (cw, ch), (vw, vh) = cam.size_px, info.size_px
    if (cw, ch) == (vw, vh):
        return cam, None
    sx, sy = vw / cw, vh / ch
    if abs(sx - sy) < 1e-3 and abs(sx - 1) > 0.05:
        K = cam.K.copy()
        K[:2] *= sx
        scaled = type(cam)(cam.name, (vw, vh), K, cam.dist, cam.R_cam_world, cam.t_cam_world,
                           cam.model)  # fmt: skip
        return scaled, (f"camera '{cam.name}': video {info.path.name} is {vw}x{vh} px, the "
                        f"calibration {cw}x{ch} px (scale {sx:.3f}); intrinsics scaled to match")
    cx, cy = cam.K[0, 2], cam.K[1, 2]
    # The principal point "allows" the video size when it lies in the middle half of the video
    # frame: then only border rows/columns differ and the calibrated optics still apply.
    inside = 0.25 * vw <= cx <= 0.75 * vw and 0.25 * vh <= cy <= 0.75 * vh
    small_diff = abs(vw - cw) <= 0.05 * cw and abs(vh - ch) <= 0.05 * ch
    if inside and small_diff:
        return cam.with_size((vw, vh)), (
            f"camera '{cam.name}': video {info.path.name} is {vw}x{vh} px but the calibration "
            f"says {cw}x{ch} px; the principal point ({cx:.1f}, {cy:.1f}) lies inside the video "
            "frame, so the video's size is used with the calibrated intrinsics")
    raise CalibrationError(
        f"camera '{cam.name}': video {info.path} is {vw}x{vh} px but the calibration says "
        f"{cw}x{ch} px, and the principal point ({cx:.1f}, {cy:.1f}) does not fit the video; "
        "recalibrate at the recording resolution or use the matching videos")


def _fmt(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in values.items())
