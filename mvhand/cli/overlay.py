"""``mvhand overlay``: each camera's video with the 2D keypoints and reprojected 3D joints."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.view import calib_option, run_dir_argument, single_option


@click.command("overlay")
@run_dir_argument
@click.option("--videos", "videos_dir", required=True, type=click.Path(path_type=Path),
              help="Folder with one video per camera (file stem = camera name).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default RUN_DIR/overlay).")
@click.option("--no-grid", is_flag=True, help="Do not write grid.mp4 (all cameras in one).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Hide detected keypoints with a lower score.")
@calib_option
@single_option
def command(run_dir: Path, videos_dir: Path, out_dir: Path | None, no_grid: bool,
            min_score: float, calib_path: Path | None, single: bool) -> None:  # fmt: skip
    """Write RUN_DIR/overlay/<camera>.mp4 and grid.mp4: each camera's video with the detected
    2D keypoints (dots in finger colours), the reprojected 3D joints (white rings), the hand
    boxes and track ids.

    When RUN_DIR holds several people (hands3d_people.npz with its detections), every person
    is drawn in its colour instead: each hand's box labelled P<id> L / P<id> R (the side
    decided in 3D), the arm chains, detections no person got in grey ("?"), and every
    person's reprojected 3D hands (rings). --single draws the primary person only, as above.
    """

    from mvhand.viz.rundata import load_run

    run = load_run(run_dir, calib_path, people=not single)
    if run.people is not None and run.people.detections is not None:
        _people(run, videos_dir, out_dir, not no_grid, min_score)
        return
    if run.people is not None:
        click.secho("warning: hands3d_people.npz holds no 2D detections (an earlier version "
                    "wrote it); drawing the primary person only", fg="yellow", err=True)
    _single(run, videos_dir, out_dir, not no_grid, min_score)


def _people(run, videos_dir: Path, out_dir: Path | None, grid: bool, min_score: float) -> None:
    from rich.progress import Progress

    from mvhand.io.video import find_videos
    from mvhand.viz.people import write_people_overlays

    people = run.people
    match = find_videos(videos_dir, people.detections.cameras)
    for problem in match.problems():
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    frames = people.frames if people.frames is not None else run.frame_indices
    with Progress(transient=True) as bar:
        task = bar.add_task("overlays (people)", total=run.n_frames)

        def write(folder: Path) -> list[Path]:
            return write_people_overlays(folder, match.videos, people, run.rig, frames, grid,
                                         lambda done, _n: bar.update(task, completed=done),
                                         min_score=min_score)  # fmt: skip

        paths, out_dir = _staged(run.folder, out_dir, write)
    click.echo(f"wrote {len(paths)} videos of {people.result.n_people} people to {out_dir}: "
               f"{', '.join(p.name for p in paths)}")  # fmt: skip


def _single(run, videos_dir: Path, out_dir: Path | None, grid: bool, min_score: float) -> None:
    from rich.progress import Progress

    from mvhand.errors import InputError
    from mvhand.io.video import find_videos
    from mvhand.viz.overlay import load_tracks, write_overlays

    run_dir = run.folder
    if run.keypoints2d is None:
        raise InputError("the run folder has no keypoints2d.npz, so there is nothing to draw "
                         "in 2D", run_dir)  # fmt: skip
    match = find_videos(videos_dir, run.keypoints2d.cameras)
    for problem in match.problems():
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    boxes, track_ids = load_tracks(run.folder, run.keypoints2d)
    with Progress(transient=True) as bar:
        task = bar.add_task("overlays", total=run.n_frames)

        def write(folder: Path) -> list[Path]:
            return write_overlays(folder, match.videos, run.keypoints2d, run.hands3d, run.rig,
                                  run.frame_indices, grid=grid,
                                  progress=lambda done, _n: bar.update(task, completed=done),
                                  boxes=boxes, track_ids=track_ids,
                                  min_score=min_score)  # fmt: skip

        paths, out_dir = _staged(run.folder, out_dir, write)
    click.echo(f"wrote {len(paths)} videos to {out_dir}: {', '.join(p.name for p in paths)}")


def _staged(run_folder: Path, out_dir: Path | None, write) -> tuple[list[Path], Path]:
    """Write the videos where an interruption leaves no half-written ones: into the run's
    next output set (default), or into a sibling folder renamed into place at the end."""
    import os
    import shutil

    from mvhand.io.runfolder import NAMES, RunFolder

    if out_dir is None:
        folder = RunFolder(run_folder)
        with folder.transaction(keep=True) as tx:
            paths = write(tx.fresh_folder(NAMES["overlay"]))
        final = folder.path("overlay")
        return [final / p.name for p in paths], final
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        paths = write(tmp)
        if out_dir.is_dir():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out_dir / p.name for p in paths], out_dir
