"""``mvhand bench``: synthetic OR benchmarks and baselines side by side."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from mvhand.cli.common import set_option
from mvhand.cli.eval import eval_config, exclude_option, print_summary


def _levels(value: str) -> tuple[str, ...]:
    from mvhand.bench.dataset import LEVELS

    if value.strip() == "all":
        return tuple(LEVELS)
    levels = tuple(v.strip().upper() for v in value.split(",") if v.strip())
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise click.BadParameter(f"levels must be among {', '.join(LEVELS)} (or 'all'), "
                                 f"got {value!r}")  # fmt: skip
    return levels


@click.group("bench", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Synthetic OR benchmarks with exact ground truth, and baselines side by side."""


@command.command("synth")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Dataset folder to write (one sequence folder per level).")
@click.option("--level", "levels", default="L0,L1,L2", show_default=True,
              help="Complexity level(s), comma-separated L0..L5, or 'all'.")
@click.option("--cameras", default=12, show_default=True, type=click.IntRange(2, 64),
              help="Cameras (a third far-field, the rest near-field).")
@click.option("--frames", default=300, show_default=True, type=click.IntRange(10, 100000),
              help="Frames per sequence.")
@click.option("--fps", default=30.0, show_default=True, type=click.FloatRange(min=1.0))
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds everything.")
@click.option("--keyframes", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Labeled frames per sequence.")
@click.option("--mocap", default="auto", show_default=True, metavar="PATH|auto|none",
              help="Real hand capture (T, 21, 3) driving level L1's articulation; 'auto' uses "
              "../shared/data/handmocap when present.")  # fmt: skip
def synth(out_dir: Path, levels: str, cameras: int, frames: int, fps: float, seed: int,
          keyframes: int, mocap: str) -> None:  # fmt: skip
    """Generate a synthetic OR benchmark with exact 3D and 2D ground truth."""
    from mvhand.bench.synth import SynthConfig, default_mocap_path, write_benchmark

    if mocap == "auto":
        mocap_path = default_mocap_path()
    elif mocap == "none":
        mocap_path = None
    else:
        mocap_path = Path(mocap)
        if not mocap_path.is_file():
            raise click.BadParameter(f"{mocap_path}: file not found", param_hint="--mocap")
    if keyframes > frames:
        raise click.BadParameter("cannot exceed --frames", param_hint="--keyframes")
    cfg = SynthConfig(n_cameras=cameras, n_frames=frames, fps=fps, seed=seed,
                      n_keyframes=keyframes, mocap_path=mocap_path)  # fmt: skip
    paths = write_benchmark(out_dir, _levels(levels), cfg)
    for p in paths:
        click.echo(f"wrote {p}")


def _size(value: str) -> tuple[int, int]:
    if value.lower() == "4k":
        return (2160, 3840)
    w, sep, h = value.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 64:
        raise click.BadParameter(f"expected WIDTHxHEIGHT (e.g. 1080x1920) or 4k, got {value!r}")
    return size


def _mocap(mocap: str) -> Path | None:
    from mvhand.bench.synth import default_mocap_path

    if mocap == "auto":
        return default_mocap_path()
    if mocap == "none":
        return None
    path = Path(mocap)
    if not path.is_file():
        raise click.BadParameter(f"{path}: file not found", param_hint="--mocap")
    return path


@command.command("render")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Dataset folder to write (one sequence folder per level).")
@click.option("--level", "levels", default="L0,L1,L2", show_default=True,
              help="Complexity level(s), comma-separated L0..L5, or 'all'.")
@click.option("--frames", default=300, show_default=True, type=click.IntRange(1, 100000))
@click.option("--fps", default=30.0, show_default=True, type=click.FloatRange(min=1.0))
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds everything.")
@click.option("--keyframes", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Labeled frames per camera (the paper's protocol: 10).")
@click.option("--calib", "calib_path", type=click.Path(path_type=Path), default=None,
              help="Render through this calibration (any file `mvhand run` reads) instead of "
              "the default operating-room rig; its world frame must be the scene's (z up, "
              "table top at z = 0.9 m, hands near the origin), e.g. a rendered set's "
              "calibration.toml.")  # fmt: skip
@click.option("--size", "size_text", default="1080x1920", show_default=True,
              help="Image size of the default rig, WIDTHxHEIGHT or 4k.")
@click.option("--far", "n_far", default=4, show_default=True, type=click.IntRange(0, 32),
              help="Far-field cameras of the default rig.")
@click.option("--near", "n_near", default=8, show_default=True, type=click.IntRange(0, 64),
              help="Near-field cameras of the default rig.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Cameras rendered in parallel (processes).")
@click.option("--mocap", default="auto", show_default=True, metavar="PATH|auto|none",
              help="Real hand capture (T, 21, 3) driving level L1's fingers; 'auto' uses "
              "../shared/data/handmocap when present.")  # fmt: skip
def render(out_dir: Path, levels: str, frames: int, fps: float, seed: int, keyframes: int,
           calib_path: Path | None, size_text: str, n_far: int, n_near: int, workers: int,
           mocap: str) -> None:  # fmt: skip
    """Render multi-view videos of rigged hands with exact 3D and 2D truth."""
    import time

    from mvhand.bench.render.sequence import RenderConfig, render_benchmark

    if keyframes > frames:
        raise click.BadParameter("cannot exceed --frames", param_hint="--keyframes")
    rig = None
    if calib_path is not None:
        from mvhand.pipeline.run import load_rig

        rig = load_rig(calib_path)
    elif n_far + n_near < 2:
        raise click.BadParameter("the rig needs at least 2 cameras", param_hint="--near")
    cfg = RenderConfig(n_frames=frames, fps=fps, seed=seed, n_keyframes=keyframes,
                       size_px=_size(size_text), n_far=n_far, n_near=n_near, rig=rig,
                       mocap_path=_mocap(mocap), workers=workers)  # fmt: skip
    last = {"cam": ""}

    def progress(cam: str, done: int, total: int) -> None:
        if cam != last["cam"] and done == total:
            click.echo(f"  {cam}: {total} frames", err=True)

    start = time.perf_counter()
    for p in render_benchmark(out_dir, _levels(levels), cfg, progress):
        click.echo(f"wrote {p} ({time.perf_counter() - start:.0f} s so far)")


@command.command("detect")
@click.option("--dataset", required=True, type=click.Path(path_type=Path),
              help="Rendered (or any) benchmark dataset with videos/ per sequence.")
@click.option("--runs", "runs_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the pipeline runs, one RUNS/<sequence>/ each (`mvhand eval "
              "--dataset DATASET --pred RUNS` scores them).")  # fmt: skip
@click.option("--pipeline", "pipeline_path", type=click.Path(path_type=Path), default=None,
              help="Pipeline config TOML (default: pipelines/default.toml).")
@set_option
def detect(dataset: Path, runs_dir: Path, pipeline_path: Path | None,
           overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Run `mvhand run` on every sequence's videos and keep its 2D as detections_2d.npz.

    The same 2D front-end's output is then the input of `mvhand bench baselines`.
    """
    import shutil
    import time

    from mvhand.bench.dataset import DETECTIONS_FILE, load_dataset
    from mvhand.pipeline.config import load_pipeline
    from mvhand.pipeline.run import run_pipeline

    cfg = load_pipeline(pipeline_path, overrides)
    for seq in load_dataset(dataset):
        if not seq.videos:
            click.secho(f"{seq.name}: no videos, skipped", fg="yellow", err=True)
            continue
        out = runs_dir / seq.name
        start = time.perf_counter()
        run_pipeline(seq.root / "calibration.toml", seq.root / "videos", out, cfg)
        shutil.copyfile(out / "keypoints2d.npz", seq.root / DETECTIONS_FILE)
        click.echo(f"{seq.name}: {time.perf_counter() - start:.0f} s; wrote {out} and "
                   f"{seq.root / DETECTIONS_FILE}")  # fmt: skip


@command.command("baselines")
@click.option("--dataset", required=True, type=click.Path(path_type=Path),
              help="Benchmark dataset folder (e.g. from `mvhand bench synth`).")
@click.option("--methods", default="all", show_default=True,
              help="Comma-separated methods: dlt, robust, opt_reproj, opt_smooth, optimizer, "
              "opt_shape, paper, anipose_dlt, anipose_ransac, anipose_optim; or 'all'.")
@click.option("--quick", is_flag=True, help="Leave out the slow methods (the paper objective, "
              "aniposelib RANSAC and optim_points).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Report folder (default DATASET/report).")
@exclude_option
def baselines(dataset: Path, methods: str, quick: bool, out_dir: Path | None,
              exclude_joints: str) -> None:  # fmt: skip
    """Run every 3D method on the same 2D detections and print MPJPE, PCK3D and time."""
    from mvhand.bench.baselines import resolve_methods, run_baselines
    from mvhand.bench.dataset import load_dataset
    from mvhand.bench.report import write_report
    from mvhand.errors import ConfigError

    cfg = eval_config(exclude_joints)
    try:
        chosen = resolve_methods(methods, quick)
    except ValueError as exc:
        raise ConfigError(f"--methods: {exc}") from None
    sequences = load_dataset(dataset)

    def progress(method: str, seq: str) -> None:
        click.echo(f"  {method} on {seq}", err=True)

    results = run_baselines(sequences, chosen, cfg, progress)
    out_dir = out_dir or Path(dataset) / "report"
    command_line = "mvhand " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_report(out_dir, results, cfg, f"mvhand baselines: {dataset}", command_line)
    print_summary(results, "level", f"baselines on {dataset}")
    for rows in results.values():
        for note in dict.fromkeys(n for r in rows for n in r.notes):
            click.secho(f"note: {note}", fg="yellow", err=True)
    click.echo(f"wrote {paths['report']} (+ CSV tables and plots in {out_dir})")
