"""Where the batch's tasks run: a local process pool, or Ray (local or an existing cluster).

Both run the same graph: every camera task of every recording as soon as a worker is free,
and a recording's 3D task once all its cameras are done. A failing task fails only its own
recording. Events go to ``on_event(kind, recording, detail)`` with kind "camera" (a camera
finished), "done" (a recording finished; detail: its summary row) or "failed" (detail: the
error message).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from mvhand.batch.tasks import RecordingPlan, camera_job, recording_job
from mvhand.errors import MissingDependencyError

log = logging.getLogger(__name__)

Event = Callable[[str, str, Any], None]


def _pool_init() -> None:
    import signal

    from mvhand.pipeline.workers import _limit_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops the pool on Ctrl-C
    global _LIMITER
    _LIMITER = _limit_threads(1)


_LIMITER: Any = None


def run_pool(plans: list[RecordingPlan], n_workers: int, backend_factory: Callable,
             on_event: Event) -> dict[str, dict[str, Any] | str]:  # fmt: skip
    """Run the plans on ``n_workers`` local processes; recording -> row, or error message."""
    out: dict[str, dict[str, Any] | str] = {}
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_pool_init) as pool:
        cams: dict[Future, RecordingPlan] = {}
        left: dict[str, list[dict[str, Any]]] = {}
        pending: dict[str, int] = {}
        recs: dict[Future, RecordingPlan] = {}
        for plan in plans:
            left[plan.rec.name], pending[plan.rec.name] = [], len(plan.todo)
            for task in plan.todo:
                cams[pool.submit(camera_job, task, backend_factory)] = plan
        for plan in plans:
            if not plan.todo:
                recs[pool.submit(recording_job, plan, backend_factory)] = plan
        try:
            _pool_loop(pool, cams, recs, left, pending, out, on_event, backend_factory)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return out


def _pool_loop(pool, cams, recs, left, pending, out, on_event, backend_factory) -> None:
    while cams or recs:
        done, _ = wait(list(cams) + list(recs), return_when=FIRST_COMPLETED)
        for fut in done:
            if fut in cams:
                plan = cams.pop(fut)
                name = plan.rec.name
                if name in out:  # the recording already failed
                    continue
                try:
                    left[name].append(fut.result())
                except Exception as exc:
                    out[name] = str(exc)
                    on_event("failed", name, str(exc))
                    for f, p in cams.items():
                        if p is plan:
                            f.cancel()
                    continue
                on_event("camera", name, left[name][-1])
                if len(left[name]) == pending[name]:
                    recs[pool.submit(recording_job, plan, backend_factory, *left[name])] = plan
            else:
                plan = recs.pop(fut)
                try:
                    out[plan.rec.name] = fut.result()
                    on_event("done", plan.rec.name, out[plan.rec.name])
                except Exception as exc:
                    out[plan.rec.name] = str(exc)
                    on_event("failed", plan.rec.name, str(exc))


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the Ray engine needs ray: pip install 'mvhand[batch]' (ray==2.60.0), or use "
            "--engine pool") from None  # fmt: skip
    return ray


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_ray(plans: list[RecordingPlan], n_cpus: int | None, backend_factory: Callable,
            on_event: Event, address: str | None = None, gpus_per_camera: float = 0.0
            ) -> dict[str, dict[str, Any] | str]:  # fmt: skip
    """Run the plans on Ray: a local instance of ``n_cpus`` CPUs, or the cluster at
    ``address`` ("auto": the one this machine belongs to). Each camera task asks for one CPU
    and ``gpus_per_camera`` GPUs, each 3D task for one CPU."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.WARNING}  # fmt: skip
        if address:
            kw["address"] = address
        else:
            kw["num_cpus"] = n_cpus
        ray.init(**kw)
    try:
        return _ray_graph(ray, plans, backend_factory, on_event, gpus_per_camera)
    finally:
        if started:
            ray.shutdown()


def _ray_graph(ray, plans, backend_factory, on_event, gpus_per_camera):
    cam_fn = ray.remote(camera_job).options(num_cpus=1, num_gpus=gpus_per_camera,
                                            max_retries=0)  # fmt: skip
    rec_fn = ray.remote(recording_job).options(num_cpus=1, max_retries=0)
    factory_ref = ray.put(backend_factory)
    refs = {}
    for plan in plans:
        cams = [cam_fn.remote(task, factory_ref) for task in plan.todo]
        refs[rec_fn.remote(plan, factory_ref, *cams)] = plan
    out: dict[str, dict[str, Any] | str] = {}
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            plan = refs[ready[0]]
            try:
                out[plan.rec.name] = ray.get(ready[0])
                on_event("done", plan.rec.name, out[plan.rec.name])
            except Exception as exc:  # RayTaskError wraps the task's own exception
                msg = str(getattr(exc, "cause", None) or exc)
                out[plan.rec.name] = msg
                on_event("failed", plan.rec.name, msg)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    return out
