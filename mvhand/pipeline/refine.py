"""The pipeline's refine pass: decode the videos again, re-detect the hands where the 3D says
so (:mod:`mvhand.stages.refine`, pure), cache the refined 2D, reconstruct again."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mvhand.backends.base import HandKeypointEstimator
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.io.atomic import save_npz_atomic
from mvhand.io.video import iter_frames
from mvhand.pipeline.cache import file_identity
from mvhand.stages.refine import RefineResult, run_refine

log = logging.getLogger(__name__)

#: Bump when the cached refine arrays change meaning.
REFINE_CACHE_VERSION = 2


def refine_cache_key(videos: Mapping[str, Path], frames: range, kp: Keypoints2D,
                     hands3d: Hands3D, cfg, backend: dict) -> str:  # fmt: skip
    """Hex digest of everything the refined 2D depends on (inputs hashed by content)."""
    h = hashlib.sha256()
    for arr in (kp.keypoints_px, kp.scores, hands3d.keypoints3d):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    doc = {"version": REFINE_CACHE_VERSION,
           "videos": {c: file_identity(v) for c, v in videos.items()}, "cfg": asdict(cfg),
           "frames": [frames.start, frames.stop, frames.step], "backend": backend}  # fmt: skip
    h.update(json.dumps(doc, sort_keys=True, default=str).encode())
    return h.hexdigest()


def save_refine(path: Path, result: RefineResult, key: str) -> None:
    """Write the refined 2D atomically (``OUT/cache/refine.npz``)."""
    k = result.keypoints
    save_npz_atomic(path, key=np.array(key), keypoints_px=k.keypoints_px, scores=k.scores,
                    cameras=np.array(k.cameras), presence=result.presence,
                    replaced=result.replaced, added=result.added, attempted=result.attempted,
                    cpu_s=np.array(json.dumps(result.cpu_s)))  # fmt: skip


def load_refine(path: Path, key: str, like: Keypoints2D) -> RefineResult | None:
    """The cached refined 2D if ``path`` holds ``key``; else None."""
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            if str(d["key"]) != key:
                return None
            kp = Keypoints2D(d["keypoints_px"], d["scores"], like.cameras, like.hands, like.fps)
            return RefineResult(kp, d["presence"], d["replaced"], d["added"], d["attempted"],
                                json.loads(str(d["cpu_s"])))  # fmt: skip
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s: unreadable refine cache (%s); recomputing", path, exc)
        return None


def video_images(videos: Mapping[str, Path], frames: range, max_bad_run: int
                 ) -> Callable[[str, int], object]:  # fmt: skip
    """``images(camera, n)``: the first ``n`` processed frames of that camera's video."""
    def images(cam: str, n: int):
        stop = min(frames.start + n * frames.step, frames.stop)
        for _, image in iter_frames(videos[cam], frames.start, stop, frames.step, max_bad_run):
            yield image

    return images


def refine_pass(cache_dir: Path, videos: Mapping[str, Path], frames: range, kp: Keypoints2D,
                first: Hands3D, rig: Rig, cfg, make_hand_model: Callable[[], HandKeypointEstimator],
                reconstruct: Callable[[Keypoints2D], object], *, backend: dict, joints,
                presence: np.ndarray | None = None, max_bad_run: int = 30,
                use_cache: bool = True, progress=None
                ) -> tuple[Keypoints2D, object, dict]:  # fmt: skip
    """Re-detect (or reuse ``cache_dir/refine.npz``) and ``reconstruct`` again.

    Returns:
        The refined 2D, the new reconstruction and the figures for the report.
    """
    t0 = time.perf_counter()
    path = Path(cache_dir) / "refine.npz"
    key = refine_cache_key(videos, frames, kp, first, cfg,
                           {"backend": backend, "hands2d": asdict(joints)})  # fmt: skip
    res = load_refine(path, key, kp) if use_cache else None
    cached = res is not None
    if res is None:
        res = run_refine(video_images(videos, frames, max_bad_run), kp, first, rig,
                         make_hand_model(), cfg, presence, joints=joints,
                         progress=progress)  # fmt: skip
        save_refine(path, res, key)
    t1 = time.perf_counter()
    new_rec = reconstruct(res.keypoints)
    n_cf = max(kp.n_cameras * kp.n_frames, 1)
    info = {
        "from_cache": cached,
        "cameras": res.stats(),
        "added_ms_per_camera_frame": round(1000 * sum(res.cpu_s.values()) / n_cf, 2),
        "timings_s": {"redetect": round(t1 - t0, 3),
                      "reconstruct": round(time.perf_counter() - t1, 3)},
    }  # fmt: skip
    return res.keypoints, new_rec, info
