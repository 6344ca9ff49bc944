"""The batch's task graph: per recording, its cameras' 2D front-ends, then one 3D task.

:func:`plan_recording` runs in the driver (cheap: it reads the calibration and probes the
videos) and says what is left to do: the cameras without a valid cache, and whether the
recording was finished earlier with the same inputs and settings (then nothing is left). The
two job functions run wherever the engine puts them (a worker process, a Ray worker); they
exchange only file paths and small dicts, because every result goes to the recording's output
folder (on a cluster: a file system all nodes share).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvhand.batch.discover import Recording
from mvhand.config import config_to_toml
from mvhand.errors import MvhandError
from mvhand.io.atomic import write_text_atomic
from mvhand.io.runfolder import RunFolder
from mvhand.pipeline.config import PipelineConfig
from mvhand.pipeline.workers import CameraTask, camera_tasks, load_cached

log = logging.getLogger(__name__)

#: Written last into a recording's output folder: the inputs' key and its summary row.
DONE_FILE = "batch_done.json"


@dataclass(frozen=True)
class RecordingPlan:
    """What a recording needs.

    Attributes:
        rec: the recording.
        out_dir: its output folder.
        cfg: the pipeline config (``workers`` = 1: the engine parallelises; the batch's
            frame range folded into ``video.start/stop``).
        frames: ``(start, stop)`` of the processed frames.
        key: hash of the inputs and settings (a finished recording with this key is skipped).
        todo: camera tasks without a valid cache.
        n_cameras: cameras with a usable video.
        n_frames: processed frames.
        error: why it cannot run (then nothing else is set).
        done_row: the summary row of an earlier finished run with the same key.
    """

    rec: Recording
    out_dir: Path
    cfg: PipelineConfig | None = None
    frames: tuple[int, int] = (0, 0)
    key: str = ""
    todo: tuple[CameraTask, ...] = ()
    n_cameras: int = 0
    n_frames: int = 0
    error: str | None = None
    done_row: dict[str, Any] | None = field(default=None, compare=False)



def plan_recording(rec: Recording, out_root: Path, cfg: PipelineConfig,
                   frames: tuple[int, int | None] | None = None) -> RecordingPlan:  # fmt: skip
    """The plan of one recording; a problem with its inputs becomes ``error``."""
    from mvhand.io.calib_convert import load_rig
    from mvhand.pipeline.cache import file_identity
    from mvhand.pipeline.run import frame_range, prepare_inputs, resolve_config

    out = Path(out_root) / rec.name
    if rec.problem is not None:
        return RecordingPlan(rec, out, error=rec.problem)
    # frames are folded into the config, which is saved with the results
    cfg = dataclasses.replace(resolve_config(cfg, frames), workers=1)
    try:
        rig = load_rig(rec.calib, cfg.units)
        videos, check, _ = prepare_inputs(rig, rec.videos, cfg)
        rng = frame_range(cfg, check.n_frames)
    except (MvhandError, OSError) as exc:
        return RecordingPlan(rec, out, error=str(exc))
    tasks = camera_tasks(videos, rng, cfg, out)
    doc = {"cameras": [t.key for t in tasks], "calib": file_identity(rec.calib),
           "config": config_to_toml(cfg), "frames": [rng.start, rng.stop, rng.step]}
    key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    done = _done_row(out, key)
    todo = () if done is not None else tuple(t for t in tasks if load_cached(t) is None)
    return RecordingPlan(rec, out, cfg, (rng.start, rng.stop), key, todo, len(tasks), len(rng),
                         done_row=done)  # fmt: skip


def _done_row(out: Path, key: str) -> dict[str, Any] | None:
    path = out / DONE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    done = doc.get("key") == key and RunFolder(out).path("hands3d").is_file()
    return doc["row"] if done else None


# --- the jobs (run in workers) ---------------------------------------------------------

_BACKENDS: dict[str, Any] = {}


def camera_job(task: CameraTask, backend_factory: Any) -> dict[str, Any]:
    """One camera's 2D front-end; writes its cache. Reuses one backend per worker process."""
    from mvhand.pipeline.camera2d import _no_progress
    from mvhand.pipeline.workers import camera_error, run_camera_task

    t0 = time.time()
    key = repr(task.cfg.backend)
    try:
        if key not in _BACKENDS:
            _BACKENDS.clear()
            _BACKENDS[key] = backend_factory(task.cfg.backend)
        result = run_camera_task(task, _BACKENDS[key], _no_progress)
    except Exception as exc:
        raise camera_error(task.camera, exc) from None
    return {"camera": task.camera, "frames": int(result.frames.size), "start": t0,
            "end": time.time()}  # fmt: skip


def recording_job(plan: RecordingPlan, backend_factory: Any, *cameras: dict[str, Any]
                  ) -> dict[str, Any]:  # fmt: skip
    """The 3D task of one recording (after its cameras): the whole pipeline on the cached
    cameras (``run_pipeline`` writes the configured exports into the run's set), and the
    ``batch_done.json`` marker. Returns its row."""
    from mvhand.pipeline.run import run_pipeline

    t0 = time.time()
    result = run_pipeline(plan.rec.calib, plan.rec.videos, plan.out_dir, plan.cfg,
                          use_cache=True, backend_factory=backend_factory)
    start = min([c["start"] for c in cameras] + [t0])
    row = summary_row(plan, result.report, time.time() - start,
                      sum(c["end"] - c["start"] for c in cameras))  # fmt: skip
    write_text_atomic(plan.out_dir / DONE_FILE, json.dumps({"key": plan.key, "row": row},
                                                           indent=2))  # fmt: skip
    return row


def summary_row(plan: RecordingPlan, report: dict[str, Any], wall_s: float,
                cameras_s: float) -> dict[str, Any]:  # fmt: skip
    """One line of the batch summary from a run's report."""
    rec = report.get("reconstruction", {})
    row: dict[str, Any] = {"recording": plan.rec.name, "status": "ok",
                           "cameras": plan.n_cameras, "frames": rec.get("frames", plan.n_frames)}
    for name in ("left", "right"):
        h = rec.get("hands", {}).get(name, {})
        c, e = h.get("completeness"), h.get("median_reprojection_error_px")
        row[f"completeness_{name}"] = None if c is None else round(c, 4)
        row[f"median_reproj_px_{name}"] = None if e is None else round(e, 3)
    row["warnings"] = len(report.get("warnings", []))
    row["wall_s"] = round(wall_s, 2)
    row["cameras_2d_s"] = round(cameras_s, 2)
    row["error"] = ""
    return {k: row[k] for k in ROW_KEYS}


def failed_row(plan: RecordingPlan, error: str) -> dict[str, Any]:
    """The summary row of a recording that failed."""
    row = {k: None for k in ("cameras", "frames", "completeness_left", "median_reproj_px_left",
                             "completeness_right", "median_reproj_px_right", "warnings",
                             "wall_s", "cameras_2d_s")}  # fmt: skip
    row.update(recording=plan.rec.name, status="failed", error=error.splitlines()[0][:500])
    return {k: row[k] for k in ROW_KEYS}


ROW_KEYS = ("recording", "status", "cameras", "frames", "completeness_left",
            "median_reproj_px_left", "completeness_right", "median_reproj_px_right", "warnings",
            "wall_s", "cameras_2d_s", "error")  # fmt: skip
