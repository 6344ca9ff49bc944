"""``mvhand view``: open a run's 3D hands, cameras and meshes in an Open3D window."""

from __future__ import annotations

from pathlib import Path

import click

run_dir_argument = click.argument("run_dir", type=click.Path(path_type=Path))
calib_option = click.option(
    "--calib", "calib_path", type=click.Path(path_type=Path), default=None,
    help="Calibration to use instead of RUN_DIR/calibration.toml (any format `mvhand calib "
    "convert` reads).",
)  # fmt: skip
error_option = click.option(
    "--color-by-error", is_flag=True, help="Colour joints by reprojection error (green 0 px, "
    "red at --max-error px) instead of by finger.",
)  # fmt: skip
single_option = click.option(
    "--single", is_flag=True, help="Show the primary person only (hands3d.npz), as for a "
    "single-person run, even when RUN_DIR holds several people (hands3d_people.npz).",
)  # fmt: skip
max_error_option = click.option(
    "--max-error", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
    help="Reprojection error (px) drawn fully red.",
)  # fmt: skip


@click.command("view")
@run_dir_argument
@calib_option
@error_option
@max_error_option
@click.option("--no-mesh", is_flag=True, help="Hide the fitted hand meshes.")
@single_option
def command(run_dir: Path, calib_path: Path | None, color_by_error: bool, max_error: float,
            no_mesh: bool, single: bool) -> None:  # fmt: skip
    """Open RUN_DIR (the output folder of `mvhand run`) in an interactive 3D viewer.

    Shows both hands' skeletons coloured per finger (the left hand paler), the fitted hand
    meshes when the run has them, the cameras with their names, a floor grid, and a timeline
    (play/pause, step, speed). A run of several people (hands3d_people.npz, also the output
    folder of `mvhand people` with --calib) shows every person's hands and arms in its colour,
    labelled P<id> L / P<id> R. Needs a display and Open3D (pip install 'mvhand[viz]'); on a
    machine without a display use `mvhand render`.
    """
    from mvhand.viz.rundata import load_run
    from mvhand.viz.scene import SceneOptions
    from mvhand.viz.viewer import check_display, run_viewer

    check_display()
    run = load_run(run_dir, calib_path, people=not single)
    run_viewer(run, SceneOptions(mesh=not no_mesh, color_by_error=color_by_error,
                                 max_error_px=max_error))  # fmt: skip
