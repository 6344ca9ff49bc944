"""``mvhand eval``: validate a benchmark dataset, or score predictions / a 3D pipeline on it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from mvhand.cli.common import set_option

exclude_option = click.option(
    "--exclude-joints", default="", metavar="NAMES",
    help="Comma-separated joints left out of every metric, e.g. wrist,thumb_cmc; "
    "'paper' drops what the paper's ground truth lacks (wrist, thumb_cmc).",
)  # fmt: skip


def eval_config(exclude: str):
    """An EvalConfig from the ``--exclude-joints`` value (ConfigError on unknown names)."""
    from mvhand.bench.evaluate import EvalConfig
    from mvhand.core.metrics import PAPER_EXCLUDED_JOINTS, joint_mask
    from mvhand.errors import ConfigError

    names = PAPER_EXCLUDED_JOINTS if exclude.strip() == "paper" else tuple(
        n.strip() for n in exclude.split(",") if n.strip())  # fmt: skip
    try:
        joint_mask(names)
    except ValueError as exc:
        raise ConfigError(f"--exclude-joints: {exc}") from None
    return EvalConfig(exclude_joints=names)


def print_summary(results, by: str = "level", title: str = "benchmark") -> None:
    """The main figures per method (and level) as a terminal table."""
    import math

    from rich.console import Console
    from rich.table import Table

    from mvhand.bench.report import summary_rows

    rows = summary_rows(results, by)
    cols = [("mpjpe_mm", "MPJPE mm"), ("pa_mpjpe_mm", "PA-MPJPE mm"), ("mpck3d", "mPCK3D %"),
            ("completeness3d", "3D found %"), ("reproj_px", "reproj. px"), ("mje_px", "2D MJE px"),
            ("mpck2d", "mPCK2D %"), ("ap", "AP"), ("mje_all_px", "2D MJE all px"),
            ("mje_hidden_px", "2D MJE hidden px"), ("mje_used_all_px", "2D MJE used by 3D px"),
            ("time_s", "time s")]  # fmt: skip
    cols = [c for c in cols if any(not math.isnan(r[c[0]]) for r in rows)]
    table = Table(title=title)
    for name in ["method", by, *[c[1] for c in cols]]:
        table.add_column(name)
    for r in rows:
        table.add_row(str(r["method"]), str(r[by]),
                      *["-" if math.isnan(r[k]) else f"{r[k]:.2f}" if k == "time_s"
                        else f"{r[k]:.1f}" for k, _ in cols])  # fmt: skip
    console = Console()
    console.width = max(console.width, 150)
    console.print(table)


def run_check(dataset: Path) -> None:
    """Print every problem of a dataset; exit 1 if there is an error."""
    from mvhand.bench.validate import check_dataset

    problems = check_dataset(dataset)
    for p in problems:
        click.secho(str(p), fg="red" if p.severity == "error" else "yellow")
    n_err = len(problems.errors)
    n_warn = len(problems) - n_err
    click.echo(f"{dataset}: {n_err} error(s), {n_warn} warning(s)")
    if n_err:
        sys.exit(1)


def pipeline_config(path: str, overrides: tuple[str, ...]):
    """ReconstructConfig from a TOML (``[triangulation]``/``[optimizer]`` tables, or a pipeline
    config whose ``[reconstruct]`` table holds them); "default" for the defaults."""
    from mvhand.config import load_config
    from mvhand.stages.reconstruct import ReconstructConfig

    if path == "default":
        return load_config(ReconstructConfig, None, overrides)
    return load_config(ReconstructConfig, Path(path), overrides, section="reconstruct")


def _score_predictions(sequences, pred_dir: Path, cfg):
    from mvhand.bench.evaluate import load_predictions, missed_3d, score_sequence

    rows = []
    for seq in sequences:
        h3, k2 = load_predictions(pred_dir, seq, single=len(sequences) == 1)
        if h3 is None and k2 is None:
            click.secho(f"{seq.name}: no predictions in {pred_dir}; scored as all missed",
                        fg="yellow", err=True)  # fmt: skip
            h3 = missed_3d(seq)
        rows.append(score_sequence(seq, h3, k2, cfg))
    return {pred_dir.name or "predictions": rows}


def _score_pipeline(sequences, rcfg, out: Path, cfg, label: str):
    import time

    from mvhand.bench.evaluate import score_sequence
    from mvhand.config import config_to_toml
    from mvhand.io.atomic import write_text_atomic
    from mvhand.io.results import save_hands3d
    from mvhand.stages.reconstruct import run_reconstruct

    write_text_atomic(out / "pipeline_config.toml", config_to_toml(rcfg))
    rows = []
    for seq in sequences:
        kp = seq.detections()
        start = time.perf_counter()
        result = run_reconstruct(kp, seq.rig, rcfg)
        seconds = time.perf_counter() - start
        save_hands3d(out / "predictions" / seq.name / "hands3d.npz", result.hands3d, kp.fps)
        rows.append(score_sequence(seq, result.hands3d, None, cfg, seconds))
        click.echo(f"{seq.name}: {seconds:.2f} s", err=True)
    return {label: rows}


@click.command("eval")
@click.option("--check", "check_path", type=click.Path(path_type=Path), default=None,
              help="Validate DATASET and report every problem with file and entry.")
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Benchmark dataset folder (see benchmark_data/README.md).")
@click.option("--pred", "pred_dir", type=click.Path(path_type=Path), default=None,
              help="Predictions: PRED/<sequence>/hands3d.npz and/or keypoints2d.npz.")
@click.option("--pipeline", "pipeline_path", default=None, metavar="FILE",
              help="Run the 3D stage with this config TOML (or 'default') on each sequence's "
              "detections_2d.npz and score it.")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("mvhand_eval"),
              show_default=True, help="Report folder: report.md, CSV tables, PNG plots.")
@exclude_option
@set_option
def command(check_path: Path | None, dataset: Path | None, pred_dir: Path | None,
            pipeline_path: str | None, out_dir: Path, exclude_joints: str,
            overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Validate a benchmark dataset, or score predictions or a 3D pipeline against it.

    \b
    mvhand eval --check DATASET
    mvhand eval --dataset DATASET --pred PRED_DIR
    mvhand eval --dataset DATASET --pipeline config.toml
    """
    if check_path is not None:
        run_check(check_path)
        return
    if dataset is None or (pred_dir is None) == (pipeline_path is None):
        raise click.UsageError("give --check DATASET, or --dataset with one of --pred/--pipeline")
    from mvhand.bench.dataset import load_dataset
    from mvhand.bench.report import write_report

    cfg = eval_config(exclude_joints)
    sequences = load_dataset(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    if pred_dir is not None:
        results = _score_predictions(sequences, pred_dir, cfg)
    else:
        rcfg = pipeline_config(pipeline_path, overrides)
        label = "pipeline" if pipeline_path == "default" else Path(pipeline_path).stem
        results = _score_pipeline(sequences, rcfg, out_dir, cfg, label)
    command_line = "mvhand " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_report(out_dir, results, cfg, f"mvhand eval: {dataset}", command_line)
    print_summary(results, "level", f"{dataset}")
    click.echo(f"wrote {paths['report']} (+ CSV tables and plots in {out_dir})")
