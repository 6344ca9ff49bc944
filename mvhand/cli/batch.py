"""``mvhand batch``: the whole pipeline over many recordings, locally or on a Ray cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mvhand.cli.common import set_option


@click.command("batch")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("batch_out"),
              show_default=True, help="Output folder: OUT/<recording>/ per recording, and "
              "summary.csv, summary.md, batch.json.")
@click.option("--pipeline", "pipeline_path", type=click.Path(path_type=Path), default=None,
              help="Pipeline config TOML for every recording (default: pipelines/default.toml).")
@click.option("--engine", type=click.Choice(["auto", "ray", "pool"]), default="auto",
              show_default=True, help="ray: Ray tasks (pip install 'mvhand[batch]'); pool: "
              "local processes; auto: ray when installed.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Local CPUs to use (0: all cores available).")
@click.option("--address", default=None, help="Run on an existing Ray cluster: 'auto' (the "
              "cluster this machine is part of) or ray://HEAD:10001.")
@click.option("--gpus-per-camera", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="GPUs each camera task asks Ray for (GPU backends).")
@click.option("--frames", "frames_text", default=None, metavar="A:B",
              help="Process frames A to B-1 of every recording.")
@set_option
def command(root: Path, out_dir: Path, pipeline_path: Path | None, engine: str, workers: int,
            address: str | None, gpus_per_camera: float, frames_text: str | None,
            overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Run the pipeline on every recording under ROOT (or listed in a TOML manifest).

    A recording is a folder with a videos/ folder; its calibration is a file named *calib*
    in that folder (or its calibration/ folder), or in the nearest folder above it, so one
    calibration can serve a session of trials. Finished recordings are skipped when run
    again; an interrupted batch resumes. Exit status 1 when any recording failed.
    """
    from mvhand.batch import run_batch
    from mvhand.cli.run import parse_frames
    from mvhand.pipeline.config import load_pipeline

    cfg = load_pipeline(pipeline_path, overrides)

    def on_event(kind: str, recording: str, detail) -> None:
        if kind == "done":
            click.echo(f"done     {recording} ({detail['wall_s']} s)")
        elif kind == "failed":
            click.echo(f"FAILED   {recording}: {detail.splitlines()[0]}")

    result = run_batch(root, out_dir, cfg, engine=engine, workers=workers, address=address,
                       gpus_per_camera=gpus_per_camera, frames=parse_frames(frames_text),
                       on_event=on_event)  # fmt: skip
    click.echo((out_dir / "summary.md").read_text())
    for name in result.skipped:
        click.echo(f"already done with the same inputs and settings: {name}")
    for row in result.rows:
        if row["status"] == "failed":
            click.echo(f"failed: {row['recording']}: {row['error']}", err=True)
    click.echo(f"wrote {out_dir / 'summary.csv'}, summary.md, batch.json")
    if result.failed:
        sys.exit(1)
