"""2D overlays: each camera's video with its detected 2D keypoints, the reprojected 3D joints,
the hand boxes and track ids, and a grid video of all cameras.

Videos are streamed (one frame per camera in memory at a time). Drawing conventions:

- detected 2D keypoints: filled dots and bones in the finger colours (the left hand paler, as
  in the 3D views); hidden below ``min_score``;
- reprojected 3D joints: white rings joined by thin white bones, and the hand's initial
  ("L"/"R") beside the reprojected wrist;
- hand box: the given box, else the box around the detected keypoints, with the hand's
  name and track id.

Example:
    >>> write_overlays("out/overlay", {"cam01": Path("videos/cam01.mp4")}, kp2d, hands3d,
    ...                rig)                                           # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.skeleton import BONES
from mvhand.errors import InputError
from mvhand.io.runfolder import RunFolder
from mvhand.viz.geometry import bone_rgb, joint_rgb

log = logging.getLogger(__name__)

#: ``progress(done, total)`` over frames.
Progress = Callable[[int, int], None]

#: Largest grid video (width, height) in pixels.
GRID_MAX_PX = (1920, 1080)
#: Box drawn around detected keypoints grows by this factor.
BOX_MARGIN = 1.3


def _rgb255(rgb: np.ndarray) -> list[tuple[int, int, int]]:
    return [tuple(int(round(255 * v)) for v in c) for c in rgb]


_JOINT_RGB = [_rgb255(joint_rgb(h)) for h in (0, 1)]
_BONE_RGB = [_rgb255(bone_rgb(h)) for h in (0, 1)]


def draw_frame(image_rgb: np.ndarray, keypoints_px: np.ndarray | None, scores: np.ndarray | None,
               reprojected_px: np.ndarray | None, hands: Sequence[str] = ("left", "right"),
               boxes: np.ndarray | None = None, track_ids: np.ndarray | None = None,
               min_score: float = 0.0) -> np.ndarray:  # fmt: skip
    """Draw one camera's hands on ``image_rgb`` (modified in place and returned).

    Args:
        image_rgb: ``(h, w, 3)`` uint8 RGB.
        keypoints_px: ``(H, 21, 2)`` detected keypoints (NaN missing), or None.
        scores: ``(H, 21)``, or None.
        reprojected_px: ``(H, 21, 2)`` 3D joints projected into this camera, or None.
        hands: hand names along H.
        boxes: ``(H, 4)`` x0, y0, x1, y1 hand boxes (NaN: none); None: from the keypoints.
        track_ids: ``(H,)`` track index (negative: untracked), or None.
        min_score: keypoints below this score are not drawn.
    """
    import cv2

    h_img = image_rgb.shape[0]
    r = max(2, int(round(h_img / 400)))
    lw = max(1, r // 2)
    for h in range(len(hands)):
        side = min(h, 1)
        if keypoints_px is not None:
            kp = keypoints_px[h].copy()
            if scores is not None:
                kp[scores[h] < min_score] = np.nan
            _draw_bones(image_rgb, kp, _BONE_RGB[side], lw + 1)
            for j, p in enumerate(kp):
                if np.isfinite(p).all():
                    cv2.circle(image_rgb, _pt(p), r, _JOINT_RGB[side][j], -1, cv2.LINE_AA)
            box = None if boxes is None else boxes[h]
            if box is None or not np.isfinite(box).all():
                box = _box_around(kp)
            if box is not None:
                tid = None if track_ids is None else int(track_ids[h])
                _draw_box(image_rgb, box, hands[h], tid, _JOINT_RGB[side][0], lw)
        if reprojected_px is not None:
            rp = reprojected_px[h]
            _draw_bones(image_rgb, rp, [(255, 255, 255)] * len(BONES), 1)
            for p in rp:
                if _inside(p):
                    cv2.circle(image_rgb, _pt(p), r + 2, (255, 255, 255), 1, cv2.LINE_AA)
            if _inside(rp[0]):  # which hand the 3D result says this is
                x, y = _pt(rp[0])
                cv2.putText(image_rgb, hands[h][:1].upper(), (x - 3 * r - 8, y + 3 * r),
                            cv2.FONT_HERSHEY_SIMPLEX, max(0.4, h_img / 2400), (255, 255, 255), 1,
                            cv2.LINE_AA)  # fmt: skip
    return image_rgb


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _inside(p: np.ndarray) -> bool:
    return bool(np.isfinite(p).all() and np.abs(p).max() < 1e6)


def _draw_bones(image, pts: np.ndarray, colors, width: int) -> None:
    import cv2

    for (a, b), col in zip(BONES, colors, strict=True):
        if _inside(pts[a]) and _inside(pts[b]):
            cv2.line(image, _pt(pts[a]), _pt(pts[b]), col, width, cv2.LINE_AA)


def _box_around(kp: np.ndarray) -> np.ndarray | None:
    ok = np.isfinite(kp).all(1)
    if ok.sum() < 2:
        return None
    lo, hi = kp[ok].min(0), kp[ok].max(0)
    c, half = (lo + hi) / 2, BOX_MARGIN * (hi - lo).max() / 2 + 4
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half])


def _draw_box(image, box: np.ndarray, hand: str, track_id: int | None, color, width: int) -> None:
    import cv2

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x0, y0), (x1, y1), color, width, cv2.LINE_AA)
    text = hand if track_id is None or track_id < 0 else f"{hand} #{track_id}"
    scale = max(0.4, image.shape[0] / 2000)
    cv2.putText(image, text, (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                max(1, width), cv2.LINE_AA)  # fmt: skip


def _header(image, text: str) -> None:
    import cv2

    scale = max(0.5, image.shape[0] / 1200)
    thick = max(1, int(round(image.shape[0] / 700)))
    org = (10, int(32 * scale) + 6)
    for color, width in (((0, 0, 0), thick + 2), ((255, 255, 255), thick)):
        cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, width, cv2.LINE_AA)


def grid_layout(sizes: Sequence[tuple[int, int]], max_px: tuple[int, int] = GRID_MAX_PX
                ) -> tuple[int, int, tuple[int, int]]:  # fmt: skip
    """Columns, rows and tile size (w, h) for a grid of cameras of ``sizes`` (w, h).

    Tiles share the largest aspect; the column count is the one giving the largest tiles that
    fit in ``max_px``.
    """
    w0 = max(s[0] for s in sizes)
    h0 = max(s[1] for s in sizes)
    n = len(sizes)
    best = (1, n, (2, 2))
    best_scale = 0.0
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        scale = min(max_px[0] / (cols * w0), max_px[1] / (rows * h0), 1.0)
        if scale > best_scale:
            tile = (max(2, int(w0 * scale) // 2 * 2), max(2, int(h0 * scale) // 2 * 2))
            best, best_scale = (cols, rows, tile), scale
    return best


def _frames_at(path: Path, indices: np.ndarray) -> Iterator[np.ndarray | None]:
    """Stream the frames ``indices`` (increasing) of a video; None where unreadable or past
    its end."""
    from mvhand.io.video import iter_frames

    steps = np.diff(indices)
    step = int(steps[0]) if len(steps) and (steps == steps[0]).all() and steps[0] > 0 else 1
    wanted = iter(indices.tolist())
    nxt = next(wanted, None)
    for t, image in iter_frames(path, int(indices[0]), int(indices[-1]) + 1, step):
        while nxt is not None and nxt < t:  # should not happen for increasing indices
            yield None
            nxt = next(wanted, None)
        if nxt == t:
            yield image
            nxt = next(wanted, None)
    while nxt is not None:
        yield None
        nxt = next(wanted, None)


def _check_inputs(videos: dict[str, Path], keypoints2d: Keypoints2D, hands3d: Hands3D | None,
                  rig: Rig, frame_indices) -> tuple[list[str], np.ndarray]:  # fmt: skip
    T = keypoints2d.n_frames
    if hands3d is not None and hands3d.keypoints3d.shape[0] != T:
        raise InputError(f"the 2D keypoints have {T} frames but the 3D results "
                         f"{hands3d.keypoints3d.shape[0]}; give files of the same run")  # fmt: skip
    return match_cameras(videos, keypoints2d.cameras, rig), check_frame_indices(frame_indices, T)


def check_frame_indices(frame_indices, n_frames: int) -> np.ndarray:
    """``(T,)`` increasing video frame numbers (``0 .. T-1`` for None); InputError if not."""
    T = n_frames
    idx = np.arange(T) if frame_indices is None else np.asarray(list(frame_indices), np.int64)
    if idx.shape != (T,) or (np.diff(idx) <= 0).any() or (idx < 0).any():
        raise InputError(f"frame_indices must be {T} increasing video frame numbers, one per "
                         f"keypoint frame; got {idx.shape[0]} values")  # fmt: skip
    return idx


def match_cameras(videos: dict[str, Path], cameras: Sequence[str], rig: Rig) -> list[str]:
    """The ``cameras`` that have a video (a warning names the others); InputError if one is
    not in ``rig`` or none has a video."""
    cams = [c for c in cameras if c in videos]
    missing = [c for c in cameras if c not in videos]
    if missing:
        log.warning("no video for camera(s) %s; their overlays are skipped", ", ".join(missing))
    absent = [c for c in cams if c not in rig.names]
    if absent:
        raise InputError(f"camera(s) {', '.join(absent)} of the keypoints are not in the "
                         f"calibration (it has: {', '.join(rig.names)})")  # fmt: skip
    if not cams:
        raise InputError(f"no video matches a camera of the keypoints ({', '.join(cameras)}); "
                         "name each video after its camera (file stem = camera name)")
    return cams


def write_overlays(out_dir: str | Path, videos: dict[str, Path], keypoints2d: Keypoints2D,
                   hands3d: Hands3D | None, rig: Rig, frame_indices=None, grid: bool = True,
                   progress: Progress | None = None, *, boxes: np.ndarray | None = None,
                   track_ids: np.ndarray | None = None, min_score: float = 0.0,
                   fps: float | None = None) -> list[Path]:  # fmt: skip
    """Write ``out_dir/<camera>.mp4`` per camera (and ``out_dir/grid.mp4``) with overlays.

    Args:
        out_dir: output folder (created).
        videos: camera name -> video file.
        keypoints2d: the 2D keypoints ``(C, T, H, 21, 2)``.
        hands3d: the 3D results ``(T, H, 21, 3)`` to reproject, or None.
        rig: the calibration (its units those of ``hands3d``).
        frame_indices: ``(T,)`` video frame of each keypoint frame (array or range); None:
            ``0 .. T-1``.
        grid: also write the grid video of all cameras.
        progress: ``progress(done, total)`` per frame.
        boxes: ``(C, T, H, 4)`` hand boxes x0, y0, x1, y1 (NaN: none); default: around the
            keypoints.
        track_ids: ``(C, T, H)`` track ids (negative: untracked).
        min_score: keypoints below this score are not drawn.
        fps: frame rate of the outputs (default: the keypoints', else the first video's).

    Returns:
        The written videos, cameras in keypoint order, then the grid.

    Raises:
        InputError: inputs of different runs, no matching video, or an unwritable output.
    """
    cams, idx = _check_inputs(videos, keypoints2d, hands3d, rig, frame_indices)
    ci = [keypoints2d.cameras.index(c) for c in cams]
    reproj = {c: rig[c].project(hands3d.keypoints3d) for c in cams} if hands3d is not None else {}

    def draw(k: int, cam: str, t: int, image: np.ndarray) -> np.ndarray:
        return draw_frame(image, keypoints2d.keypoints_px[ci[k], t], keypoints2d.scores[ci[k], t],
                          reproj[cam][t] if cam in reproj else None, keypoints2d.hands,
                          None if boxes is None else boxes[ci[k], t],
                          None if track_ids is None else track_ids[ci[k], t],
                          min_score)  # fmt: skip

    return write_camera_videos(out_dir, {c: videos[c] for c in cams}, rig, idx, draw, grid,
                               progress, fps or keypoints2d.fps)  # fmt: skip


#: ``draw(k, camera, t, image_rgb) -> image_rgb``: the overlay of the k-th camera at frame t.
DrawFn = Callable[[int, str, int, np.ndarray], np.ndarray]


def write_camera_videos(out_dir: str | Path, videos: dict[str, Path], rig: Rig,
                        frame_indices: np.ndarray, draw: DrawFn, grid: bool = True,
                        progress: Progress | None = None,
                        fps: float | None = None) -> list[Path]:  # fmt: skip
    """Stream each camera's video frames ``frame_indices`` through ``draw`` into
    ``out_dir/<camera>.mp4`` (and the grid of all into ``out_dir/grid.mp4``).

    The frame-by-frame machinery of :func:`write_overlays` and of the several-people overlays
    (:mod:`mvhand.viz.people`): size checks against the calibration, a placeholder image where
    a frame is missing, the "camera frame N" header, the grid.

    Args:
        videos: camera name -> video, in the order of the outputs (every camera in ``rig``).
        frame_indices: ``(T,)`` increasing video frame numbers.
        draw: the overlay of one camera and frame (``t`` counts along ``frame_indices``).
        fps: frame rate of the outputs (default: the first video's, else 30).
    """
    import cv2

    from mvhand.io.video import probe_video

    cams, idx = list(videos), np.asarray(frame_indices, np.int64)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = {c: probe_video(videos[c]) for c in cams}
    _check_sizes(infos, rig)
    fps = fps or infos[cams[0]].fps or 30.0
    cols, rows, tile = grid_layout([infos[c].size_px for c in cams])
    paths = [out_dir / f"{c}.mp4" for c in cams] + ([out_dir / "grid.mp4"] if grid else [])
    sizes = [infos[c].size_px for c in cams] + ([(cols * tile[0], rows * tile[1])] if grid else [])
    writers = []
    try:
        for path, size in zip(paths, sizes, strict=True):
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            if not w.isOpened():
                raise InputError("cannot write this video", path)
            writers.append(w)
        streams = [_frames_at(videos[c], idx) for c in cams]
        for t in range(len(idx)):
            tiles = []
            for k, c in enumerate(cams):
                image = next(streams[k])
                image = draw(k, c, t, _missing_frame(infos[c].size_px) if image is None else image)
                _header(image, f"{c}  frame {idx[t]}")
                writers[k].write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                tiles.append(image)
            if grid:
                writers[-1].write(cv2.cvtColor(_grid_image(tiles, cols, rows, tile),
                                               cv2.COLOR_RGB2BGR))  # fmt: skip
            if progress:
                progress(t + 1, len(idx))
    finally:
        for w in writers:
            w.release()
    return paths


def _check_sizes(infos: dict, rig: Rig) -> None:
    """A video whose size is not the calibration's would get misplaced overlays: refuse one
    that differs by more than 2 % (e.g. a half-resolution copy), warn about a few pixels."""
    for cam, info in infos.items():
        vw, vh = info.size_px
        cw, ch = rig[cam].size_px
        if (vw, vh) == (cw, ch):
            continue
        if abs(vw - cw) > 0.02 * cw or abs(vh - ch) > 0.02 * ch:
            raise InputError(f"the video is {vw}x{vh} px but camera '{cam}' is calibrated at "
                             f"{cw}x{ch} px; overlays would be misplaced: give the videos the "
                             "run used", info.path)  # fmt: skip
        log.warning("camera '%s': video %dx%d px, calibration %dx%d px; drawn at the "
                    "video's size", cam, vw, vh, cw, ch)


def _missing_frame(size_px: tuple[int, int]) -> np.ndarray:
    """A dark placeholder saying the video has no frame here."""
    import cv2

    image = np.zeros((size_px[1], size_px[0], 3), np.uint8)
    cv2.putText(image, "frame missing", (20, size_px[1] // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.0,
                (200, 200, 200), 2)  # fmt: skip
    return image


def _grid_image(tiles: list[np.ndarray], cols: int, rows: int, tile: tuple[int, int]) -> np.ndarray:
    """The tiles, each scaled into a ``tile`` cell (aspect kept), in a ``rows x cols`` grid."""
    import cv2

    tw, th = tile
    out = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for k, img in enumerate(tiles):
        h, w = img.shape[:2]
        s = min(tw / w, th / h)
        nw, nh = max(1, int(w * s)), max(1, int(h * s))
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        r, c = divmod(k, cols)
        y, x = r * th + (th - nh) // 2, c * tw + (tw - nw) // 2
        out[y:y + nh, x:x + nw] = small
    return out


def load_tracks(run_dir: str | Path, keypoints2d: Keypoints2D
                ) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """Hand boxes ``(C, T, H, 4)`` and track ids ``(C, T, H)`` of a run, where it has them.

    Read from ``keypoints2d.npz``'s optional ``boxes`` / ``track_ids`` arrays, else the track
    ids from the per-camera cache (``cache/<camera>.npz``, key ``track_id``). Anything missing
    or of the wrong shape gives None (boxes are then drawn around the keypoints).
    """
    run_dir = Path(run_dir)
    C, T, H = keypoints2d.keypoints_px.shape[:3]
    extra: dict[str, np.ndarray] = {}
    path = RunFolder(run_dir).path("keypoints2d")
    if path.is_file():
        with np.load(path, allow_pickle=False) as d:
            extra = {k: d[k] for k in ("boxes", "track_ids") if k in d.files}
    boxes = extra.get("boxes")
    boxes = boxes.astype(float) if boxes is not None and boxes.shape == (C, T, H, 4) else None
    ids = extra.get("track_ids")
    if ids is None or ids.shape != (C, T, H):
        ids = _cached_track_ids(run_dir, keypoints2d.cameras, (T, H))
    return boxes, ids


def _cached_track_ids(run_dir: Path, cameras: Sequence[str], shape: tuple[int, int]
                      ) -> np.ndarray | None:  # fmt: skip
    out = []
    for cam in cameras:
        path = RunFolder(run_dir).cache_dir / f"{cam}.npz"
        try:
            with np.load(path, allow_pickle=False) as d:
                ids = d["track_id"] if "track_id" in d.files else None
        except (OSError, ValueError, EOFError):
            return None
        if ids is None or ids.shape != shape:
            return None
        out.append(ids)
    return np.stack(out).astype(np.int64)
