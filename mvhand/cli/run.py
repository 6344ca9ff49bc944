"""``mvhand run``: calibration + one video per camera -> 2D hands -> 3D hands, end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from mvhand.cli.common import (
    print_people_summary,
    print_reconstruction_summary,
    set_option,
    units_option,
)
from mvhand.errors import ConfigError


def parse_frames(text: str | None) -> tuple[int, int | None] | None:
    """``"A:B"`` -> (A, B); ``"A:"`` -> (A, None); ``":B"`` -> (0, B); None -> None."""
    if text is None:
        return None
    start, sep, stop = text.partition(":")
    try:
        a = int(start) if start.strip() else 0
        b = int(stop) if stop.strip() else None
    except ValueError:
        a = b = -1
    if not sep or a < 0 or (b is not None and b <= a):
        raise ConfigError(f"--frames expects START:STOP with 0 <= START < STOP, got {text!r}")
    return a, b


class _Bars:
    """Rich progress bars, one per stage and camera (the CLI layer renders the callback)."""

    LABELS = {"body": "person + body", "track": "hand tracking", "3d": "3D reconstruction",
              "people": "people: association"}

    def __init__(self, progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], int] = {}

    def __call__(self, stage: str, camera: str, done: int, total: int) -> None:
        key = (stage, camera)
        if key not in self.tasks:
            label = self.LABELS.get(stage, stage)
            name = label if camera == "all" else f"{camera}: {label}"
            self.tasks[key] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[key], completed=done, total=total)


@click.command("run")
@click.option("--calib", "calib_path", required=True, type=click.Path(path_type=Path),
              help="Calibration file (anipose TOML, or any format `mvhand calib convert` reads).")
@click.argument("videos", type=click.Path(path_type=Path))
@click.option("--pipeline", "pipeline_path", type=click.Path(path_type=Path), default=None,
              help="Pipeline config TOML (default: pipelines/default.toml).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("out"),
              show_default=True, help="Output folder (created if needed).")
@click.option("--frames", "frames_text", default=None, metavar="A:B",
              help="Process frames A to B-1 only (either side may be left empty).")
@click.option("--overlay", is_flag=True, help="Also write one video per camera with the 2D "
              "keypoints and reprojected 3D joints.")
@click.option("--no-cache", is_flag=True, help="Recompute every camera's 2D result even if "
              "OUT/cache holds one for the same settings and videos.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Worker processes "
              "for the per-camera 2D work and, with several people, each person's 3D stage "
              "(0: one per CPU core; 1: no extra process). Default: "
              "the pipeline's `workers` if set to other than 1, else one per core.")
@click.option("--max-people", type=click.IntRange(1, 32), default=None,
              help="People followed per camera (detect.max_people). 1: the paper's single-"
              "surgeon mode, one person per camera; more: everybody in view is followed, "
              "associated across cameras and time and reconstructed (OUT/hands3d_people.npz), "
              "and --person picks whose hands go to OUT/hands3d.npz.")
@click.option("--person", default=None, help="With several people, whose hands go to "
              "OUT/hands3d.npz: 'primary' (seen in the most views), a person id, or "
              "'near:x,y,z' (nearest that point, in the output's units).")
@click.option("--self-calibrate/--no-self-calibrate", "self_calibrate", default=None,
              help="Refine the cameras' poses on the recording's hands and bodies, used when a "
              "check on frames the refinement did not see says it helps "
              "(self_calibration.enabled; on by default).")
@set_option
@units_option
def command(calib_path: Path, videos: Path, pipeline_path: Path | None, out_dir: Path,
            frames_text: str | None, overlay: bool, no_cache: bool, workers: int | None,
            max_people: int | None, person: str | None, self_calibrate: bool | None,
            overrides: tuple[str, ...], units: str | None) -> None:  # fmt: skip
    """Run the whole pipeline on VIDEOS, a folder with one video per camera.

    Each video's file stem must be a camera name of the calibration (or set [video] mapping
    in the pipeline). Writes OUT/hands3d.npz, hands3d.csv, keypoints2d.npz, calibration.toml,
    config.toml (the resolved pipeline) and report.json. Per-camera 2D results are cached in
    OUT/cache, so an interrupted run resumes without redoing finished cameras. The outputs
    are published together: after an interruption OUT holds the previous complete set.
    OUT/config.toml replays the run: `mvhand run --pipeline OUT/config.toml` (it records
    --frames, --units and --overlay too).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from mvhand.pipeline.config import load_pipeline
    from mvhand.pipeline.run import run_pipeline

    cfg = load_pipeline(pipeline_path, overrides)
    if max_people is not None:
        cfg = dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect,
                                                                  max_people=max_people))
    if self_calibrate is not None:
        cfg = dataclasses.replace(cfg, self_calibration=dataclasses.replace(
            cfg.self_calibration, enabled=self_calibrate))  # fmt: skip
    if person is not None:
        from mvhand.pipeline.config import parse_person

        parse_person(person)
        cfg = dataclasses.replace(cfg, person=person)
    if workers is not None or cfg.workers == 1:
        cfg = dataclasses.replace(cfg, workers=0 if workers is None else workers)
    from mvhand.pipeline.run import resolve_config

    cfg = resolve_config(cfg, parse_frames(frames_text), True if overlay else None, units)
    console = Console(stderr=True)
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as bars:
        result = run_pipeline(calib_path, videos, out_dir, cfg, use_cache=not no_cache,
                              progress=_Bars(bars))  # fmt: skip
    # warnings were logged as they arose; repeat their count so they are not missed
    if result.report.get("warnings"):
        console.print(f"[yellow]{len(result.report['warnings'])} warning(s)[/yellow]: see above "
                      f"and {out_dir / 'report.json'}")  # fmt: skip
    if result.reused:
        console.print(f"2D results reused from {out_dir / 'cache'}: {', '.join(result.reused)}")
    if "people" in result.report:
        print_people_summary(result.report["people"])
    print_reconstruction_summary(result.report)
    extra = ", hands3d_people.npz" if "people" in result.report else ""
    click.echo(f"wrote {out_dir / 'hands3d.npz'}{extra}, hands3d.csv, keypoints2d.npz, "
               "report.json, config.toml, calibration.toml")  # fmt: skip
