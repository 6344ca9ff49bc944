"""The per-camera 2D work of a run: cached results reused, the rest computed, in parallel.

This is the unit of parallel work (one camera's 2D front-end); ``mvhand run`` schedules it on
worker processes of one machine (``workers`` in the pipeline config, ``mvhand run --workers``)
and ``mvhand batch`` on a process pool or a Ray cluster.

Parallel runs give the same results as serial ones: each camera is processed by the same
function with its own backend, and each worker writes its camera's cache file (atomically) as
soon as the camera is finished, so an interrupted run resumes with every finished camera.
Workers are spawned (fresh interpreters: forking a process whose OpenCV thread pool has run
deadlocks), so the backend factory must pickle (the default one does). Each worker's BLAS and
OpenCV threads are capped at ``cores // workers`` so that workers do not oversubscribe the
machine; the model threads are ``backend.num_threads`` (default 1).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import signal
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvhand.errors import ModelError, MvhandError
from mvhand.pipeline.cache import cache_key, cache_path, load_camera, save_camera
from mvhand.pipeline.camera2d import Camera2D, Progress, process_camera
from mvhand.pipeline.config import PipelineConfig, frontend_dict

log = logging.getLogger(__name__)

#: Seconds between the progress messages a worker sends for one camera (the last always goes).
PROGRESS_INTERVAL_S = 0.2


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(requested: int, n_tasks: int) -> int:
    """Worker processes to use: ``requested`` (0: the cores available), at most ``n_tasks``."""
    n = available_cores() if requested <= 0 else requested
    return max(1, min(n, n_tasks))


def map_processes(fn: Callable[[Any], Any], items: list[Any], n_workers: int,
                  done: Callable[[int], None] | None = None) -> list[Any]:  # fmt: skip
    """``[fn(x) for x in items]``, on ``n_workers`` spawned processes when more than one
    (``fn`` and the items must pickle; numeric work only: no models, no files). ``done(k)``
    is called as results arrive, with their count."""
    if n_workers <= 1 or len(items) <= 1:
        out = []
        for x in items:
            out.append(fn(x))
            if done:
                done(len(out))
        return out
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(fn, x) for x in items]
        out = []
        for f in futures:
            out.append(f.result())
            if done:
                done(len(out))
        return out


@dataclass(frozen=True)
class CameraTask:
    """One camera's 2D front-end: everything a worker needs (picklable).

    Attributes:
        camera: camera name.
        video: its video file.
        frames: the processed frame indices.
        cfg: the pipeline config.
        out_dir: the run folder (the cache goes to ``out_dir/cache/<camera>.npz``).
        key: the cache key of this camera's result.
    """

    camera: str
    video: Path
    frames: range
    cfg: PipelineConfig
    out_dir: Path
    key: str


def camera_tasks(cams: dict[str, Path], frames: range | Mapping[str, range], cfg: PipelineConfig,
                 out_dir: Path) -> list[CameraTask]:  # fmt: skip
    """One task per camera, in camera order; ``frames`` is one range for all cameras or each
    camera's own (frame offsets); the cache key is made with the camera's own range."""
    frontend = frontend_dict(cfg)
    own = (lambda c: frames[c]) if isinstance(frames, Mapping) else (lambda c: frames)
    return [CameraTask(cam, Path(video), own(cam), cfg, Path(out_dir),
                       cache_key(video, own(cam), frontend)) for cam, video in cams.items()]


def load_cached(task: CameraTask) -> Camera2D | None:
    """The task's cached result, or None."""
    return load_camera(cache_path(task.out_dir, task.camera), task.key)


def run_camera_task(task: CameraTask, backend: Any, progress: Progress) -> Camera2D:
    """Process one camera and write its cache file (atomically)."""
    result = process_camera(task.camera, task.video, task.frames, backend, task.cfg, progress)
    save_camera(cache_path(task.out_dir, task.camera), result, task.key)
    return result


def compute_cameras_2d(cams: dict[str, Path], frames: range | Mapping[str, range],
               cfg: PipelineConfig, out_dir: Path,
               progress: Progress, use_cache: bool, backend_factory: Callable
               ) -> tuple[dict[str, Camera2D], list[str]]:  # fmt: skip
    """Per camera: the cached 2D result, or compute and cache it.

    ``frames``: one range for every camera, or camera -> its own range (all of one length).
    The cameras to compute run on ``cfg.workers`` worker processes (0: the cores available;
    1: in this process).

    Returns:
        camera -> result in camera order, and the cameras whose result came from the cache.

    Raises:
        MvhandError: a camera failed; the message names it (the error's own type is kept for
            mvhand's errors, other exceptions become a ModelError).
    """
    results: dict[str, Camera2D | None] = {}
    reused: list[str] = []
    todo: list[CameraTask] = []
    for task in camera_tasks(cams, frames, cfg, out_dir):
        cached = load_cached(task) if use_cache else None
        results[task.camera] = cached
        if cached is not None:
            reused.append(task.camera)
            progress("body", task.camera, len(task.frames), len(task.frames))
            progress("track", task.camera, 1, 1)
        else:
            todo.append(task)
    n_workers = resolve_workers(cfg.workers, len(todo))
    if n_workers <= 1:
        computed = _compute_serial(todo, progress, backend_factory, cfg)
    else:
        computed = compute_parallel(todo, n_workers, progress, backend_factory)
    results.update(computed)
    return {cam: r for cam, r in results.items() if r is not None}, reused


def _compute_serial(tasks: list[CameraTask], progress: Progress, backend_factory: Callable,
                    cfg: PipelineConfig) -> dict[str, Camera2D]:  # fmt: skip
    out: dict[str, Camera2D] = {}
    backend = None
    for task in tasks:
        try:
            if backend is None:
                backend = backend_factory(cfg.backend)
            out[task.camera] = run_camera_task(task, backend, progress)
        except Exception as exc:
            raise camera_error(task.camera, exc) from exc
    return out


def camera_error(camera: str, exc: BaseException) -> MvhandError:
    """The error to raise for ``exc`` in ``camera``'s work: mvhand's own errors keep their type
    (with the camera in the message), others become a ModelError."""
    msg = f"camera '{camera}': {exc}"
    if isinstance(exc, MvhandError):
        try:
            return type(exc)(msg)
        except TypeError:  # a subclass with another constructor
            return MvhandError(msg)
    return ModelError(f"camera '{camera}': the 2D front-end failed with "
                      f"{type(exc).__name__}: {exc}")  # fmt: skip


# --- worker processes ---------------------------------------------------------------------

def _context(backend_factory: Callable, start_method: str | None) -> mp.context.BaseContext:
    """``spawn`` by default (fresh interpreters), so the factory must pickle (the default one
    does). ``fork`` is not offered: forking a process whose OpenCV thread pool has run leaves
    the child waiting forever on that pool (seen here, at 0 % CPU, after earlier 2D work in
    the same process)."""
    method = start_method or "spawn"
    if method == "fork":
        raise ModelError("fork is not a safe start method for camera workers (OpenCV's thread "
                         "pool deadlocks in forked children); use spawn or forkserver")
    try:
        pickle.dumps(backend_factory)
    except (pickle.PicklingError, AttributeError, TypeError):
        raise ModelError(f"the backend factory {backend_factory!r} cannot be pickled for the "
                         "camera worker processes; pass a module-level function or class "
                         "instance, or use workers = 1") from None  # fmt: skip
    return mp.get_context(method)


def _limit_threads(n_threads: int) -> Any:
    """Cap BLAS/OpenMP and OpenCV threads in this (worker) process; returns the limiter."""
    from threadpoolctl import threadpool_limits

    try:
        import cv2

        cv2.setNumThreads(n_threads)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    return threadpool_limits(limits=n_threads)


def _raise_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # runs the atomic writers' cleanup


class _Relay:
    """A worker's progress callback: sends the events to the parent, at most one per stage
    every ``PROGRESS_INTERVAL_S`` (and always the last)."""

    def __init__(self, events: Any) -> None:
        self.events, self.last = events, 0.0

    def __call__(self, stage: str, camera: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or done == 0 or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.events.put(("progress", stage, camera, done, total))


def _worker_main(tasks: Any, events: Any, backend_factory: Callable, n_threads: int) -> None:
    """A worker: take tasks until the ``None`` sentinel, send events for each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates us
    signal.signal(signal.SIGTERM, _raise_exit)
    limiter = _limit_threads(n_threads)  # noqa: F841 - keeps the limits for the process's life
    backend = None
    while (task := tasks.get()) is not None:
        events.put(("start", task.camera, os.getpid()))
        try:
            if backend is None:
                backend = backend_factory(task.cfg.backend)
            result = run_camera_task(task, backend, _Relay(events))
            events.put(("done", task.camera, result))
        except Exception as exc:
            events.put(("error", task.camera, _portable(exc), traceback.format_exc()))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it pickles, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def compute_parallel(tasks: list[CameraTask], n_workers: int, progress: Progress,
                     backend_factory: Callable, start_method: str | None = None
                     ) -> dict[str, Camera2D]:  # fmt: skip
    """Run ``tasks`` on ``n_workers`` processes; relays their progress; results by camera.

    ``start_method``: "spawn" or "forkserver" (None: spawn).

    On the first failure (or an exception in ``progress``, e.g. Ctrl-C) the workers are
    stopped and the error is raised; cameras finished before that keep their cache files.
    """
    ctx = _context(backend_factory, start_method)
    task_q, events = ctx.Queue(), ctx.Queue()
    for task in tasks:
        task_q.put(task)
    n_threads = max(1, available_cores() // n_workers)
    procs = [ctx.Process(target=_worker_main, args=(task_q, events, backend_factory, n_threads),
                         daemon=True, name=f"mvhand-camera-worker-{i}")
             for i in range(n_workers)]  # fmt: skip
    for _ in procs:
        task_q.put(None)
    try:
        for p in procs:
            p.start()
        return _collect(tasks, procs, events, progress)
    finally:
        _stop(procs)
        task_q.close()
        events.close()


def _collect(tasks: list[CameraTask], procs: list[Any], events: Any, progress: Progress
             ) -> dict[str, Camera2D]:  # fmt: skip
    """Relay events until every task has a result; raise on a failure or a dead worker."""
    out: dict[str, Camera2D] = {}
    running: dict[int, str] = {}  # worker pid -> camera
    while len(out) < len(tasks):
        try:
            event = events.get(timeout=0.5)
        except queue_mod.Empty:
            _check_alive(procs, running)
            continue
        kind = event[0]
        if kind == "progress":
            progress(*event[1:])
        elif kind == "start":
            running[event[2]] = event[1]
        elif kind == "done":
            out[event[1]] = event[2]
            running = {pid: cam for pid, cam in running.items() if cam != event[1]}
        elif kind == "error":
            _, camera, exc, tb = event
            log.debug("camera '%s' failed in its worker:\n%s", camera, tb)
            raise camera_error(camera, exc) from exc
    return out


def _check_alive(procs: list[Any], running: dict[int, str]) -> None:
    for p in procs:
        if p.exitcode not in (None, 0) and p.pid in running:
            raise ModelError(f"camera '{running[p.pid]}': its worker process died (exit code "
                             f"{p.exitcode}); run with workers = 1 to see the error in this "
                             "process")  # fmt: skip
    if all(p.exitcode is not None for p in procs):
        codes = ", ".join(str(p.exitcode) for p in procs)
        raise ModelError(f"the camera worker processes exited (exit codes {codes}) before all "
                         "cameras were done; run with workers = 1 to see the error in this "
                         "process")  # fmt: skip


def _stop(procs: list[Any]) -> None:
    """Let finished workers exit; terminate the others (they remove their partial files)."""
    for p in procs:
        if p.is_alive():
            p.join(timeout=0.5)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():  # pragma: no cover - a worker stuck in native code
            p.kill()
            p.join()
