"""``mvhand batch``: the whole pipeline over many recordings, on a process pool or on Ray.

:func:`run_batch` finds the recordings (:mod:`mvhand.batch.discover`), plans each one (what is
cached, what is finished), runs the camera tasks and then each recording's 3D task on the
chosen engine (:mod:`mvhand.batch.engines`), and writes ``summary.csv``, ``summary.md`` and
``batch.json`` into the output folder. Each recording's results and caches live in
``OUT/<recording>``, so an interrupted batch resumes, and a finished one run again with the
same inputs and settings does nothing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvhand.batch.discover import Recording, discover
from mvhand.batch.engines import Event, ray_available, run_pool, run_ray
from mvhand.batch.tasks import ROW_KEYS, RecordingPlan, failed_row, plan_recording
from mvhand.errors import ConfigError
from mvhand.io.atomic import write_text_atomic
from mvhand.pipeline.config import PipelineConfig
from mvhand.pipeline.workers import available_cores

log = logging.getLogger(__name__)

ENGINES = ("auto", "ray", "pool")


@dataclass(frozen=True)
class BatchResult:
    """What a batch did.

    Attributes:
        rows: one summary row per recording (see ``ROW_KEYS``), in recording order.
        engine: "ray" or "pool".
        wall_s: the batch's wall time.
        camera_frames: camera-frames processed by this call for the recordings that finished
            (cached cameras not counted).
        skipped: recordings finished earlier with the same inputs (nothing done).
    """

    rows: list[dict[str, Any]]
    engine: str
    wall_s: float
    camera_frames: int
    skipped: tuple[str, ...]

    @property
    def failed(self) -> list[str]:
        return [r["recording"] for r in self.rows if r["status"] == "failed"]


def _no_event(kind: str, recording: str, detail: Any) -> None:
    return None


def run_batch(root: str | Path, out_root: str | Path, cfg: PipelineConfig | None = None, *,
              engine: str = "auto", workers: int = 0, address: str | None = None,
              gpus_per_camera: float = 0.0, frames: tuple[int, int | None] | None = None,
              backend_factory: Callable | None = None, on_event: Event | None = None
              ) -> BatchResult:  # fmt: skip
    """Run the pipeline on every recording under ``root`` (a folder or a TOML manifest).

    Args:
        root: the recordings (layout: :mod:`mvhand.batch.discover`).
        out_root: output folder; each recording's outputs go to ``out_root/<name>``.
        cfg: the pipeline config for every recording (None: the defaults).
        engine: "ray", "pool" (local processes), or "auto" (ray if installed, else pool).
        workers: local CPUs to use (0: the cores available); ignored with ``address``.
        address: an existing Ray cluster ("auto" or "ray://host:10001"); implies Ray.
        gpus_per_camera: GPUs each camera task asks Ray for (a GPU backend: 1, or 0.5 to
            share a GPU between two).
        frames: ``(start, stop)`` frames of every recording (None: the config's).
        backend_factory: builds the 2D backend (tests pass a fake; it must pickle).
        on_event: progress callback (see :mod:`mvhand.batch.engines`).

    Raises:
        ConfigError: an unknown engine. InputError: no recording found.
    """
    from mvhand.backends.registry import make_backend

    if engine not in ENGINES:
        raise ConfigError(f"unknown batch engine {engine!r}; use one of {', '.join(ENGINES)}")
    if address:
        engine = "ray"
    elif engine == "auto":
        engine = "ray" if ray_available() else "pool"
    t0 = time.perf_counter()
    cfg = cfg if cfg is not None else PipelineConfig()
    out = Path(out_root)
    recs = discover(root, exclude=out)
    plans = [plan_recording(rec, out, cfg, frames) for rec in recs]
    rows, skipped = _initial_rows(plans)
    runnable = [p for p in plans if p.error is None and p.done_row is None]
    factory = backend_factory or make_backend
    on_event = on_event or _no_event
    for plan in plans:
        if plan.error is not None:
            on_event("failed", plan.rec.name, plan.error)
    n = max(1, workers or available_cores())
    if runnable and engine == "ray":
        results = run_ray(runnable, None if address else n, factory, on_event, address,
                          gpus_per_camera)  # fmt: skip
    elif runnable:
        results = run_pool(runnable, min(n, sum(max(1, len(p.todo)) for p in runnable)),
                           factory, on_event)  # fmt: skip
    else:
        results = {}
    for plan in runnable:
        r = results.get(plan.rec.name, "not run")
        rows[plan.rec.name] = r if isinstance(r, dict) else failed_row(plan, r)
    ordered = [rows[p.rec.name] for p in plans]
    cam_frames = sum(len(p.todo) * p.n_frames for p in runnable
                     if rows[p.rec.name]["status"] == "ok")  # fmt: skip
    result = BatchResult(ordered, engine, time.perf_counter() - t0, cam_frames, skipped)
    write_summary(out, result)
    return result


def _initial_rows(plans: list[RecordingPlan]) -> tuple[dict[str, dict], tuple[str, ...]]:
    rows, skipped = {}, []
    for plan in plans:
        if plan.error is not None:
            rows[plan.rec.name] = failed_row(plan, plan.error)
        elif plan.done_row is not None:
            rows[plan.rec.name] = plan.done_row
            skipped.append(plan.rec.name)
    return rows, tuple(skipped)


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def summary_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ROW_KEYS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in ROW_KEYS})
    return buf.getvalue()


def summary_markdown(result: BatchResult) -> str:
    head = ["recording", "status", "cameras", "frames", "complete L", "reproj px L",
            "complete R", "reproj px R", "warnings", "wall s", "error"]  # fmt: skip
    keys = ["recording", "status", "cameras", "frames", "completeness_left",
            "median_reproj_px_left", "completeness_right", "median_reproj_px_right", "warnings",
            "wall_s", "error"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.rows:
        cells = []
        for k in keys:
            v = r.get(k)
            if k.startswith("completeness") and v is not None:
                v = f"{100 * v:.1f} %"
            cells.append(_cell(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    fps = result.camera_frames / result.wall_s if result.wall_s > 0 else 0.0
    lines += ["", f"{len(result.rows)} recording(s), {len(result.failed)} failed, "
              f"{len(result.skipped)} already done; engine {result.engine}; "
              f"{result.wall_s:.1f} s; {result.camera_frames} camera-frames "
              f"({fps:.1f} per second)"]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_summary(out: Path, result: BatchResult) -> None:
    """``summary.csv``, ``summary.md`` and ``batch.json`` in ``out``."""
    write_text_atomic(out / "summary.csv", summary_csv(result.rows))
    write_text_atomic(out / "summary.md", summary_markdown(result))
    doc = {"engine": result.engine, "wall_s": round(result.wall_s, 3),
           "camera_frames": result.camera_frames, "skipped": list(result.skipped),
           "failed": result.failed, "rows": result.rows}  # fmt: skip
    write_text_atomic(out / "batch.json", json.dumps(doc, indent=2))


__all__ = ["BatchResult", "Recording", "discover", "run_batch"]
