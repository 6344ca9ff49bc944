"""Benchmark reports: Markdown and CSV tables (overall, per level, per sequence, per joint) and
PNG plots (PCK curves, per-joint errors) from the scores of one or more methods."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from mvhand.bench.evaluate import (
    DEFAULT_EVAL,
    EvalConfig,
    SequenceScores,
    group_by,
    per_joint,
    summarize,
)
from mvhand.core import metrics
from mvhand.core.skeleton import JOINT_NAMES
from mvhand.io.atomic import write_text_atomic

Results = dict[str, list[SequenceScores]]

#: (key in :func:`summarize`'s output, column title, decimals) of the main tables.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("mpjpe_mm", "MPJPE mm", 1),
    ("pa_mpjpe_mm", "PA-MPJPE mm", 1),
    ("mpck3d", "mPCK3D %", 1),
    ("pck3d@5mm", "PCK3D@5", 1),
    ("pck3d@10mm", "@10", 1),
    ("pck3d@25mm", "@25", 1),
    ("pck3d@50mm", "@50", 1),
    ("completeness3d", "3D found %", 1),
    ("reproj_px", "reproj. px", 1),
    ("mje_px", "2D MJE px", 1),
    ("mpck2d", "mPCK2D %", 1),
    ("ap", "OKS AP", 1),
    ("mje_all_px", "2D MJE all frames px", 1),
    ("mpck2d_all", "mPCK2D all %", 1),
    ("found2d_all", "2D found all %", 1),
    ("mje_hidden_px", "2D MJE hidden px", 1),
    ("mje_used_all_px", "2D MJE used by 3D px", 1),
    ("time_s", "time s", 2),
)


def summary_rows(results: Results, by: str, cfg: EvalConfig = DEFAULT_EVAL) -> list[dict]:
    """One row per method (and per level or sequence unless ``by == "all"``)."""
    rows = []
    for method, scores in results.items():
        groups = {"all": scores} if by == "all" else group_by(scores, by)
        for group, items in groups.items():
            row = {"method": method, by if by != "all" else "group": group}
            row.update(summarize(items, cfg))
            row["completeness3d"] = 100 * row["completeness3d"]
            rows.append(row)
    return rows


def _fmt(value, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def _used_columns(rows: list[dict]) -> list[tuple[str, str, int]]:
    """The columns with at least one value."""
    return [c for c in COLUMNS if any(not math.isnan(r.get(c[0], math.nan)) for r in rows)]


def markdown_table(rows: list[dict], key: str) -> str:
    """A Markdown table of ``rows`` grouped by ``key`` ("level", "sequence" or "group")."""
    cols = _used_columns(rows)
    head = ["method", key] + [c[1] for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["method"]), str(r[key])] + [_fmt(r[c[0]], c[2]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[dict]) -> str:
    """All columns of ``rows`` as CSV (full precision, empty for NaN)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["method"])
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                         for k, v in r.items()})  # fmt: skip
    return buf.getvalue()


def per_joint_csv(results: Results) -> str:
    """Per-joint MPJPE (mm) of each method: one row per joint."""
    methods = [m for m, s in results.items() if any(x.err3d_mm is not None for x in s)]
    table = {m: per_joint(results[m]) for m in methods}
    lines = ["joint," + ",".join(f'"{m}"' for m in methods)]
    for j, name in enumerate(JOINT_NAMES):
        lines.append(name + "," + ",".join(_fmt(table[m][j], 3).replace("-", "")
                                           for m in methods))  # fmt: skip
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, results: Results, cfg: EvalConfig = DEFAULT_EVAL,
                 title: str = "mvhand benchmark",
                 command: str | None = None) -> dict[str, Path]:  # fmt: skip
    """Write ``report.md``, ``by_level.csv``, ``by_sequence.csv``, ``per_joint.csv`` and plots.

    Returns:
        Name -> written path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overall = summary_rows(results, "all", cfg)
    by_level = summary_rows(results, "level", cfg)
    by_seq = summary_rows(results, "sequence", cfg)
    paths = {"report": out / "report.md", "by_level": out / "by_level.csv",
             "by_sequence": out / "by_sequence.csv",
             "per_joint": out / "per_joint.csv"}  # fmt: skip
    write_text_atomic(paths["by_level"], csv_table(by_level))
    write_text_atomic(paths["by_sequence"], csv_table(by_seq))
    write_text_atomic(paths["per_joint"], per_joint_csv(results))
    paths.update(write_plots(out, results, cfg))
    md = [f"# {title}\n"]
    if command:
        md.append(f"Command: `{command}`\n")
    excluded = ", ".join(cfg.exclude_joints) or "none"
    md.append(f"Joints excluded: {excluded}. Misses count as wrong in PCK and AP and are left "
              "out of mean errors (see the completeness column).\n")  # fmt: skip
    md += ["## Overall\n", markdown_table(overall, "group"), "## Per level\n",
           markdown_table(by_level, "level"), "## Per sequence\n",
           markdown_table(by_seq, "sequence")]  # fmt: skip
    notes = [f"- {method}: {note}" for method, scores in results.items()
             for note in dict.fromkeys(n for s in scores for n in s.notes)]  # fmt: skip
    if notes:
        md += ["## Notes\n", "\n".join(notes) + "\n"]
    for name in ("pck3d", "per_joint_plot", "pck2d"):
        if name in paths:
            md.append(f"\n![{name}]({paths[name].name})\n")
    write_text_atomic(paths["report"], "\n".join(md))
    return paths


def write_plots(out: Path, results: Results, cfg: EvalConfig = DEFAULT_EVAL) -> dict[str, Path]:
    """PCK3D and PCK2D curves, per-joint MPJPE bars (methods with data only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    for key, attr, max_thr, unit in (("pck3d", "err3d_mm", 60.0, "mm"),
                                     ("pck2d", "err2d_px", 40.0, "px")):  # fmt: skip
        curves = {m: np.concatenate([getattr(s, attr).ravel() for s in scores])
                  for m, scores in results.items()
                  if any(getattr(s, attr) is not None for s in scores)
                  and all(getattr(s, attr) is not None for s in scores)}  # fmt: skip
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for method, err in curves.items():
            thr, pct = metrics.pck_curve(err, max_thr, 121)
            ax.plot(thr, pct, label=method)
        ax.set_xlabel(f"threshold ({unit})")
        ax.set_ylabel("PCK (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"{'3D' if key == 'pck3d' else '2D'} PCK")
        fig.tight_layout()
        paths[key] = out / f"{key}.png"
        fig.savefig(paths[key], dpi=120)
        plt.close(fig)
    path = _per_joint_plot(out, results, plt)
    if path is not None:
        paths["per_joint_plot"] = path
    return paths


def _per_joint_plot(out: Path, results: Results, plt) -> Path | None:
    methods = [m for m, s in results.items() if all(x.err3d_mm is not None for x in s)]
    if not methods:
        return None
    fig, ax = plt.subplots(figsize=(13, 4.5))
    width = 0.8 / len(methods)
    x = np.arange(len(JOINT_NAMES))
    values = {m: np.nan_to_num(per_joint(results[m])) for m in methods}
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, values[m], width, label=m)
    ax.set_xticks(x, JOINT_NAMES, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("MPJPE (mm)")
    if max(v.max() for v in values.values()) > 0:  # methods differ by orders of magnitude
        ax.set_yscale("log")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title("per-joint 3D error")
    fig.tight_layout()
    path = out / "per_joint.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
