"""``mvhand bench``: synthetic OR benchmarks and baselines side by side."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

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


@command.command("baselines")
@click.option("--dataset", required=True, type=click.Path(path_type=Path),
              help="Benchmark dataset folder (e.g. from `mvhand bench synth`).")
@click.option("--methods", default="all", show_default=True,
              help="Comma-separated methods: dlt, robust, opt_reproj, opt_smooth, optimizer, "
              "opt_shape, anipose_dlt, anipose_ransac, anipose_optim; or 'all'.")
@click.option("--quick", is_flag=True, help="Leave out the slow methods (aniposelib RANSAC "
              "and optim_points).")  # fmt: skip
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
