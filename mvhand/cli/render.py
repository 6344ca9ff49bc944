"""``mvhand render``: render a run's 3D scene headless into a video or PNG frames."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.view import (
    calib_option,
    error_option,
    max_error_option,
    run_dir_argument,
    single_option,
)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT, e.g. 1280x720; got {text!r}") from None
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise click.BadParameter(f"width and height must be 16 to 8192 px; got {text!r}")
    return w, h


def _frames(text: str | None, n: int) -> range:
    if text is None:
        return range(n)
    start, sep, stop = text.partition(":")
    try:
        a = int(start) if start.strip() else 0
        b = int(stop) if sep and stop.strip() else (n if sep else a + 1)
    except ValueError:
        raise click.BadParameter(f"expected A:B (either side may be empty); got {text!r}") from None
    return range(max(a, 0), min(b, n))


@click.command("render")
@run_dir_argument
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="A video file (.mp4, .avi) or a folder that receives PNG frames.")
@click.option("--view", default="orbit", show_default=True,
              help="orbit (circles the hands), overview (fixed, shows the cameras), hand:left "
              "or hand:right (a close-up following that hand), or a camera name (that camera's "
              "viewpoint).")
@click.option("--size", "size_text", default="1280x720", show_default=True,
              help="Image size WIDTHxHEIGHT; a camera view keeps its aspect inside it.")
@click.option("--frames", "frames_text", default=None, metavar="A:B",
              help="Render result frames A to B-1 only.")
@click.option("--orbit-seconds", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds of the run per orbit turn.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Video frame rate (default: the run's).")
@calib_option
@error_option
@max_error_option
@click.option("--no-cameras", is_flag=True, help="Hide the camera frusta and names.")
@click.option("--no-grid", is_flag=True, help="Hide the floor grid.")
@click.option("--no-mesh", is_flag=True, help="Hide the fitted hand meshes.")
@single_option
def command(run_dir: Path, out: Path, view: str, size_text: str, frames_text: str | None,
            orbit_seconds: float, fps: float | None, calib_path: Path | None,
            color_by_error: bool, max_error: float, no_cameras: bool, no_grid: bool,
            no_mesh: bool, single: bool) -> None:  # fmt: skip
    """Render RUN_DIR's 3D scene offscreen (no display needed) to a video or PNG frames.

    The same scene as `mvhand view`: both hands coloured per finger (left hand paler), fitted
    meshes, cameras with names, floor grid, and the frame number. A run of several people
    (hands3d_people.npz) shows every person's hands and arms in its colour, labelled
    P<id> L / P<id> R (--single: the primary person only). Needs Open3D
    (pip install 'mvhand[viz]').
    """
    from rich.progress import Progress

    from mvhand.viz.render import render_run
    from mvhand.viz.rundata import load_run
    from mvhand.viz.scene import SceneOptions

    size = _size(size_text)
    run = load_run(run_dir, calib_path, people=not single)
    frames = _frames(frames_text, run.n_frames)
    if len(frames) == 0:
        raise click.BadParameter(f"no frame of the run's {run.n_frames} in {frames_text!r}",
                                 param_hint="--frames")  # fmt: skip
    options = SceneOptions(cameras=not no_cameras, grid=not no_grid, mesh=not no_mesh,
                           color_by_error=color_by_error, max_error_px=max_error)  # fmt: skip
    with Progress(transient=True) as bar:
        task = bar.add_task("rendering", total=len(frames))
        result = render_run(run, out, view, size, frames, options, orbit_seconds, fps,
                            progress=lambda done, _n: bar.update(task, completed=done))  # fmt: skip
    where = out if len(result.paths) == 1 else f"{out}/ ({len(result.paths)} PNG frames)"
    click.echo(f"rendered {result.n_frames} frames at {result.fps:.1f} frames/s to {where}")
