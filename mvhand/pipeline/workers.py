"""The per-camera 2D work of a run: cached results reused, the rest computed.

This is the unit of parallel work (one camera's 2D front-end); ``mvhand run`` and ``mvhand
batch`` schedule it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mvhand.pipeline.cache import cache_key, cache_path, load_camera, save_camera
from mvhand.pipeline.camera2d import Camera2D, Progress, process_camera
from mvhand.pipeline.config import PipelineConfig, frontend_dict


def compute_cameras_2d(cams: dict[str, Path], frames: range, cfg: PipelineConfig, out_dir: Path,
               progress: Progress, use_cache: bool, backend_factory: Callable
               ) -> tuple[dict[str, Camera2D], list[str]]:  # fmt: skip
    """Per camera: the cached 2D result, or compute and cache it (in camera order)."""
    results: dict[str, Camera2D] = {}
    reused: list[str] = []
    backend = None
    frontend = frontend_dict(cfg)
    for cam, video in cams.items():
        key = cache_key(video, frames, frontend)
        path = cache_path(out_dir, cam)
        cached = load_camera(path, key) if use_cache else None
        if cached is not None:
            results[cam] = cached
            reused.append(cam)
            progress("body", cam, len(frames), len(frames))
            progress("track", cam, 1, 1)
            continue
        if backend is None:
            backend = backend_factory(cfg.backend)
        results[cam] = process_camera(cam, video, frames, backend, cfg, progress)
        save_camera(path, results[cam], key)  # now safe against Ctrl-C in a later camera
    return results, reused


