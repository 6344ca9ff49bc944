"""Headless renders of a run: the 3D scene frame by frame into a video or a folder of PNGs
(every person in its colour when the run has ``hands3d_people.npz``, see
:mod:`mvhand.viz.scene`).

Example:
    >>> run = load_run("out/")                                      # doctest: +SKIP
    >>> render_run(run, "hands.mp4", view="orbit")                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.core.camera import Camera
from mvhand.errors import InputError
from mvhand.viz.geometry import centred_canvas
from mvhand.viz.scene import Label, Scene, SceneOptions

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_run` wrote.

    Attributes:
        paths: the video file, or the PNG frames in order.
        n_frames: frames rendered.
        seconds: wall time of the rendering loop (without setup).
    """

    paths: tuple[Path, ...]
    n_frames: int
    seconds: float

    @property
    def fps(self) -> float:
        """Frames rendered per second."""
        return self.n_frames / self.seconds if self.seconds > 0 else float("inf")


def draw_labels(image_rgb: np.ndarray, cam: Camera, labels: list[Label],
                header: str | None = None) -> np.ndarray:  # fmt: skip
    """Write ``labels`` at their projections through ``cam`` (those in front of it and inside
    the image; in their colour, else white) and an optional ``header`` line at the top left;
    returns the image (modified)."""
    import cv2

    h, w = image_rgb.shape[:2]
    scale = max(0.4, h / 1200)
    thick = max(1, int(round(h / 600)))
    for lab in labels:
        if cam.world_to_cam(lab.position)[2] <= 0:
            continue
        u, v = cam.project(lab.position)
        if not (0 <= u < w and 0 <= v < h):
            continue
        org = (int(u) + 6, int(v) - 6)
        rgb = (255, 255, 255) if lab.rgb is None else tuple(int(round(255 * c)) for c in lab.rgb)
        cv2.putText(image_rgb, lab.text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thick + 2, cv2.LINE_AA)  # fmt: skip
        cv2.putText(image_rgb, lab.text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, thick,
                    cv2.LINE_AA)  # fmt: skip
    if header:
        cv2.putText(image_rgb, header, (10, int(30 * scale) + 8), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (230, 230, 230), thick, cv2.LINE_AA)  # fmt: skip
    return image_rgb


class SceneRenderer:
    """Render frames of a :class:`Scene` headless.

    Args:
        scene: what to draw.
        size_px: (width, height) requested; a camera view keeps its camera's aspect and is
            fitted inside it.
        view: "orbit", "overview" or a camera name (see :meth:`Scene.view_camera`).
        orbit_period_frames: frames per orbit turn.
    """

    def __init__(self, scene: Scene, size_px: tuple[int, int] = (1280, 720), view: str = "orbit",
                 orbit_period_frames: float = 300.0) -> None:  # fmt: skip
        from mvhand.viz.o3d import HeadlessRenderer

        views = ("orbit", "overview", *(f"hand:{h}" for h in scene.run.hands3d.hands))
        if view not in views and view not in scene.run.rig.names:
            raise InputError(f"--view must be one of {', '.join(views)} or a camera name "
                             f"({', '.join(scene.run.rig.names)}); got {view!r}")  # fmt: skip
        self.scene = scene
        self.view = view
        self.period = orbit_period_frames
        first = scene.view_camera(view, 0, size_px, orbit_period_frames)
        self.size_px = first.size_px
        self._requested = size_px
        # orbit and overview cameras are centred; a calibration camera may not be, and is
        # then rendered on a larger centred canvas and cropped (see geo.centred_canvas)
        canvas, self._offset = centred_canvas(first)
        self._renderer = HeadlessRenderer(canvas.size_px)
        self._renderer.add_static(scene.static_lines(view), scene.bounds())

    def camera(self, t: int) -> Camera:
        """The virtual camera of frame ``t``."""
        return self.scene.view_camera(self.view, t, self._requested, self.period)

    def render(self, t: int, labels: bool = True) -> np.ndarray:
        """Frame ``t`` as an RGB image ``(height, width, 3)`` uint8."""
        cam = self.camera(t)
        self._renderer.set_meshes(self.scene.frame_meshes(t))
        self._renderer.set_camera(centred_canvas(cam)[0])
        (ox, oy), (w, h) = self._offset, self.size_px
        image = np.ascontiguousarray(self._renderer.render()[oy:oy + h, ox:ox + w])
        if labels:
            run = self.scene.run
            time_s = f"  t={t / run.fps:.2f} s" if run.fps else ""
            header = f"frame {int(run.frame_indices[t])} ({t + 1}/{run.n_frames}){time_s}"
            if run.people is not None:
                header += f"  {len(self.scene.person_groups(t))} people"
            draw_labels(image, cam, self.scene.labels(t, self.view), header)
        return image

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_run(run, out: str | Path, view: str = "orbit", size_px: tuple[int, int] = (1280, 720),
               frames: range | None = None, options: SceneOptions | None = None,
               orbit_seconds: float = 10.0, fps: float | None = None,
               progress: Progress | None = None) -> RenderResult:  # fmt: skip
    """Render a run to ``out``: a video file (``.mp4``, ``.avi``) or a folder of PNG frames.

    Args:
        run: a :class:`~mvhand.viz.rundata.RunData`.
        out: ``*.mp4``/``*.avi`` for a video; anything else is a folder (created) that
            receives ``frame_000000.png`` ... named by result frame.
        view: "orbit", "overview" or a camera name.
        size_px: (width, height).
        frames: result frames to render (default all).
        options: what to show.
        orbit_seconds: seconds per orbit turn (at the run's frame rate).
        fps: frame rate of the video (default: the run's, else 30).
        progress: ``progress(done, total)`` callback.

    Raises:
        InputError: bad view name or frame range, or an unwritable output.
        MissingDependencyError: Open3D missing.
    """
    frames = range(run.n_frames) if frames is None else frames
    if len(frames) == 0 or frames[0] < 0 or frames[-1] >= run.n_frames:
        raise InputError(f"frames {frames.start}:{frames.stop} are outside the run's "
                         f"{run.n_frames} frames")  # fmt: skip
    fps = fps or run.fps or 30.0
    scene = Scene(run, options or SceneOptions())
    out = Path(out)
    with SceneRenderer(scene, size_px, view, orbit_seconds * (run.fps or fps)) as renderer:
        writer = _Writer(out, renderer.size_px, fps)
        t0 = time.perf_counter()
        try:
            for i, t in enumerate(frames):
                writer.write(renderer.render(t), t)
                if progress:
                    progress(i + 1, len(frames))
        finally:
            writer.close()
        seconds = time.perf_counter() - t0
    log.debug("rendered %d frames in %.1f s (%.1f frames/s)", len(frames), seconds,
             len(frames) / max(seconds, 1e-9))  # fmt: skip
    return RenderResult(tuple(writer.paths), len(frames), seconds)


VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".mkv": "mp4v"}


class _Writer:
    """Writes frames to a video file or to numbered PNGs in a folder."""

    def __init__(self, out: Path, size_px: tuple[int, int], fps: float) -> None:
        import cv2

        self.paths: list[Path] = []
        self._video = None
        codec = VIDEO_SUFFIXES.get(out.suffix.lower())
        if codec is None:
            out.mkdir(parents=True, exist_ok=True)
            self._folder = out
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        self._video = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*codec), fps, size_px)
        if not self._video.isOpened():
            raise InputError("cannot write this video (check the folder and the suffix)", out)
        self.paths.append(out)

    def write(self, image_rgb: np.ndarray, t: int) -> None:
        import cv2

        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if self._video is not None:
            self._video.write(bgr)
            return
        path = self._folder / f"frame_{t:06d}.png"
        if not cv2.imwrite(str(path), bgr):
            raise InputError("cannot write this image", path)
        self.paths.append(path)

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
