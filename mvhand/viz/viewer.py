"""The interactive 3D viewer (``mvhand view``): Open3D's GUI with a timeline.

The window shows the same scene as the renders (:mod:`mvhand.viz.scene`): both hands'
skeletons coloured per finger (or by reprojection error), fitted meshes, the cameras as frusta
with their names, a floor grid; a side panel has play/pause, step back/forward, a frame slider,
the playback speed and the colour mode. Keys: space play/pause, left/right step. A run of
several people shows every person in its colour, labelled ``P<id> L`` / ``P<id> R``, with a
legend of the people in the panel.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from mvhand.errors import MvhandError
from mvhand.viz.geometry import person_rgb
from mvhand.viz.rundata import RunData
from mvhand.viz.scene import Scene, SceneOptions

SPEEDS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Timeline:
    """Playback state: which frame is shown, whether it plays and how fast.

    Attributes:
        n_frames: frames in the sequence.
        fps: frames per second at speed 1.
        frame: the current frame.
        playing: advancing with time.
        speed: playback speed factor.
    """

    n_frames: int
    fps: float = 30.0
    frame: int = 0
    playing: bool = False
    speed: float = 1.0
    _clock: float = 0.0

    def toggle(self) -> None:
        """Play or pause."""
        self.playing = not self.playing
        self._clock = 0.0

    def step(self, delta: int) -> int:
        """Move ``delta`` frames (wrapping around) and pause; returns the frame."""
        self.playing = False
        self.frame = (self.frame + delta) % self.n_frames
        return self.frame

    def seek(self, frame: int) -> int:
        """Go to ``frame`` (clipped to the sequence)."""
        self.frame = min(max(int(frame), 0), self.n_frames - 1)
        self._clock = 0.0
        return self.frame

    def advance(self, dt_s: float) -> bool:
        """Let ``dt_s`` seconds pass; True if the frame changed (loops at the end)."""
        if not self.playing or self.n_frames < 2:
            return False
        self._clock += dt_s * self.fps * self.speed
        n = int(self._clock)
        if n == 0:
            return False
        self._clock -= n
        self.frame = (self.frame + n) % self.n_frames
        return True


def check_display() -> None:
    """Raise MvhandError pointing to ``mvhand render`` when there is no display (Linux)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):  # fmt: skip
        raise MvhandError(
            "no display found (DISPLAY and WAYLAND_DISPLAY are unset), so no window can open; "
            "on a headless machine render to a video instead: mvhand render RUN_DIR --out "
            "video.mp4 (or --out frames/ for PNG images)")  # fmt: skip


def run_viewer(run: RunData, options: SceneOptions | None = None, width: int = 1400,
               height: int = 850) -> None:  # fmt: skip
    """Open the viewer window and block until it is closed.

    Raises:
        MvhandError: no display.
        MissingDependencyError: Open3D missing.
    """
    check_display()
    from mvhand.viz.o3d import require_open3d

    o3d = require_open3d()
    app = o3d.visualization.gui.Application.instance
    app.initialize()
    _ViewerWindow(o3d, app, Scene(run, options or SceneOptions()), width, height)
    app.run()


class _ViewerWindow:
    """The window: a 3D scene widget and a side panel (layout and callbacks only)."""

    def __init__(self, o3d, app, scene: Scene, width: int, height: int) -> None:
        gui, rendering = o3d.visualization.gui, o3d.visualization.rendering
        self.o3d, self.scene = o3d, scene
        self.timeline = Timeline(scene.n_frames, scene.run.fps or 30.0)
        self.window = app.create_window(f"mvhand - {scene.run.folder}", width, height)
        self.widget = gui.SceneWidget()
        self.widget.scene = rendering.Open3DScene(self.window.renderer)
        self.widget.scene.set_background([*scene_bg(), 1.0])
        self._mat = rendering.MaterialRecord()
        self._mat.shader = "defaultUnlit"
        self._line_mat = rendering.MaterialRecord()
        self._line_mat.shader = "unlitLine"
        self._line_mat.line_width = 1.5
        self._add_static()
        self.panel = self._build_panel(gui)
        self.window.add_child(self.widget)
        self.window.add_child(self.panel)
        self.window.set_on_layout(self._on_layout)
        self.window.set_on_tick_event(self._on_tick)
        self.widget.set_on_key(self._on_key)
        self._labels: list = []
        self._frame_names: list[str] = []
        self._show(0)
        cam = scene.view_camera("overview", 0, (width, height))
        self.widget.look_at(scene.target, cam.center_world, scene.up)

    def _add_static(self) -> None:
        from mvhand.viz.o3d import to_o3d_lines

        for i, lines in enumerate(self.scene.static_lines()):
            self.widget.scene.add_geometry(f"static{i}", to_o3d_lines(self.o3d, lines),
                                           self._line_mat)  # fmt: skip
        lo, hi = self.scene.bounds()
        bbox = self.o3d.geometry.AxisAlignedBoundingBox(lo, hi)
        self.widget.setup_camera(45.0, bbox, self.scene.target)
        for lab in self.scene.labels(0):
            if not lab.per_frame:
                self.widget.add_3d_label(lab.position, lab.text)

    def _build_panel(self, gui):
        em = self.window.theme.font_size
        panel = gui.Vert(0.4 * em, gui.Margins(0.5 * em, 0.5 * em, 0.5 * em, 0.5 * em))
        self.play = gui.Button("Play")
        self.play.set_on_clicked(self._on_play)
        back, fwd = gui.Button("<"), gui.Button(">")
        back.set_on_clicked(lambda: self._show(self.timeline.step(-1)))
        fwd.set_on_clicked(lambda: self._show(self.timeline.step(1)))
        row = gui.Horiz(0.3 * em)
        for w in (back, self.play, fwd):
            row.add_child(w)
        panel.add_child(row)
        self.slider = gui.Slider(gui.Slider.INT)
        self.slider.set_limits(0, max(self.scene.n_frames - 1, 1))
        self.slider.set_on_value_changed(lambda v: self._show(self.timeline.seek(int(v))))
        panel.add_child(self.slider)
        self.info = gui.Label("")
        panel.add_child(self.info)
        panel.add_child(gui.Label("speed"))
        speed = gui.Combobox()
        for s in SPEEDS:
            speed.add_item(f"{s:g}x")
        speed.selected_index = SPEEDS.index(1.0)
        speed.set_on_selection_changed(lambda _t, i: setattr(self.timeline, "speed", SPEEDS[i]))
        panel.add_child(speed)
        err = gui.Checkbox("colour joints by reprojection error")
        err.checked = self.scene.options.color_by_error
        err.set_on_checked(self._on_error_mode)
        panel.add_child(err)
        panel.add_child(gui.Label("space: play/pause, left/right: step"))
        people = self.scene.run.people
        if people is not None:
            panel.add_child(gui.Label(f"{people.result.n_people} people:"))
            for pid in people.result.person_ids.tolist():
                item = gui.Label(f"  P{pid}" + ("  (primary)" if pid == people.primary else ""))
                item.text_color = gui.Color(*[float(v) for v in person_rgb(pid)])
                panel.add_child(item)
        return panel

    def _on_layout(self, ctx) -> None:
        r = self.window.content_rect
        width = 18 * ctx.theme.font_size
        self.widget.frame = self.o3d.visualization.gui.Rect(r.x, r.y, r.width - width, r.height)
        self.panel.frame = self.o3d.visualization.gui.Rect(r.get_right() - width, r.y, width,
                                                           r.height)  # fmt: skip

    def _on_tick(self) -> bool:
        if self.timeline.advance(1.0 / 60.0):  # the GUI ticks at about 60 Hz
            self._show(self.timeline.frame)
            return True
        return False

    def _on_play(self) -> None:
        self.timeline.toggle()
        self.play.text = "Pause" if self.timeline.playing else "Play"

    def _on_key(self, event) -> bool:
        gui = self.o3d.visualization.gui
        if event.type != gui.KeyEvent.DOWN:
            return False
        if event.key == gui.KeyName.SPACE:
            self._on_play()
        elif event.key == gui.KeyName.LEFT:
            self._show(self.timeline.step(-1))
        elif event.key == gui.KeyName.RIGHT:
            self._show(self.timeline.step(1))
        else:
            return False
        return True

    def _on_error_mode(self, checked: bool) -> None:
        from dataclasses import replace

        self.scene.options = replace(self.scene.options, color_by_error=checked)
        self._show(self.timeline.frame)

    def _show(self, t: int) -> None:
        from mvhand.viz.o3d import to_o3d_mesh

        sc = self.widget.scene
        for name in self._frame_names:  # the count varies with several people: remove all
            if sc.has_geometry(name):
                sc.remove_geometry(name)
        self._frame_names = []
        for i, mesh in enumerate(self.scene.frame_meshes(t)):
            if len(mesh.triangles):
                sc.add_geometry(f"frame{i}", to_o3d_mesh(self.o3d, mesh), self._mat)
                self._frame_names.append(f"frame{i}")
        for lab in self._labels:
            self.widget.remove_3d_label(lab)
        self._labels = []
        for lab in self.scene.labels(t):
            if lab.per_frame:
                item = self.widget.add_3d_label(lab.position, lab.text)
                if lab.rgb is not None:
                    item.color = self.o3d.visualization.gui.Color(*[float(v) for v in lab.rgb])
                self._labels.append(item)
        run = self.scene.run
        self.slider.int_value = t
        secs = f", {t / run.fps:.2f} s" if run.fps else ""
        self.info.text = f"frame {int(run.frame_indices[t])} ({t + 1}/{run.n_frames}{secs})"
        self.window.post_redraw()


def scene_bg() -> list[float]:
    from mvhand.viz.geometry import BACKGROUND_RGB

    return [float(v) for v in BACKGROUND_RGB]
