"""Render benchmark sequences: videos, calibration, 3D truth, 2D truth with visibility, labels.

A sequence folder in the benchmark format (``benchmark_data/README.md``) gets:
``videos/<camera>.mp4``, ``calibration.toml``, ``gt3d.npz`` (every frame), ``truth_2d.npz``
(every frame and view: the distorted projection of the truth, COCO visibility and what hides
each joint), ``annotations_2d.json`` (the paper's protocol: keyframes, every view) and
``sequence.toml`` (the level, the seed, the scene's settings and the render time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mvhand.bench.dataset import (
    HAND_BOX_SCALE,
    LEVELS,
    Annotations2D,
    GroundTruth3D,
    SequenceInfo,
    Truth2D,
    hand_names,
    save_truth2d,
    write_sequence,
)
from mvhand.bench.render.camera_render import (
    OCCLUDER_NAMES,
    OUTSIDE,
    VISIBLE,
    classify_joints,
    render_frame,
    render_static,
)
from mvhand.bench.render.rig import or_rig
from mvhand.bench.render.scene import (
    LEVEL_SCENES,
    frame_mesh,
    make_motion,
    static_scene,
    surgical_lights,
)
from mvhand.core.camera import Rig
from mvhand.errors import InputError

log = logging.getLogger(__name__)

#: ``progress(camera, frames done, frames total)``.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RenderConfig:
    """What ``mvhand bench render`` makes.

    Attributes:
        level: complexity level L0-L5 (see :data:`mvhand.bench.render.scene.LEVEL_SCENES`).
        n_frames: frames per sequence. fps: frame rate.
        seed: seeds the motion, the scene and the rig: same config, same files.
        n_keyframes: frames labeled in ``annotations_2d.json`` (the paper: 10 per camera).
        size_px: image (width, height) of the default rig (portrait 1080x1920).
        n_far, n_near: far- and near-field cameras of the default rig.
        rig: a calibration to render instead of the default rig (its sizes are used).
        mocap_path: the real capture driving level L1's fingers (None: procedural).
        workers: cameras rendered in parallel (processes).
        noise: sensor noise, standard deviation in 8-bit grey levels.
    """

    level: str = "L0"
    n_frames: int = 300
    fps: float = 30.0
    seed: int = 0
    n_keyframes: int = 10
    size_px: tuple[int, int] = (1080, 1920)
    n_far: int = 4
    n_near: int = 8
    rig: Rig | None = None
    mocap_path: Path | None = None
    workers: int = 1
    noise: float = 2.0


def keyframes(n_frames: int, n_keyframes: int) -> np.ndarray:
    """Evenly spaced keyframe indices (as :mod:`mvhand.bench.synth` labels them)."""
    step = n_frames / n_keyframes
    return np.floor(step / 2 + step * np.arange(n_keyframes)).astype(np.int64)


_JOB: dict = {}  # the scene shared with forked camera workers


def _render_camera(c: int) -> tuple[np.ndarray, float, float]:
    """Render camera ``c`` of ``_JOB`` to its video: ``(T, H, 21)`` occluder codes, wall and
    CPU seconds."""
    import cv2

    job = _JOB
    cfg, cam, motion, level = job["cfg"], job["rig"][c], job["motion"], job["level"]
    start, cpu = time.perf_counter(), time.process_time()
    rng = np.random.default_rng([cfg.seed, c, 7])
    static = render_static(cam, job["scene"], job["lights"], level.glare, cfg.noise)
    path = job["videos"] / f"{cam.name}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, cam.size_px)
    if not writer.isOpened():
        raise InputError("cannot write this video", path)
    occ = np.empty((cfg.n_frames, *motion.joints.shape[1:3]), np.int8)
    try:
        for t in range(cfg.n_frames):
            mesh = frame_mesh(motion, level, t)
            image, win, buf = render_frame(cam, static, mesh, job["lights"], level.glare, rng,
                                           cfg.noise)  # fmt: skip
            occ[t] = classify_joints(cam, motion.joints[t], static, win, buf)
            writer.write(image[..., ::-1])
            if job["progress"] is not None:
                job["progress"](cam.name, t + 1, cfg.n_frames)
    finally:
        writer.release()
    return occ, time.perf_counter() - start, time.process_time() - cpu


def _labels(true_px: np.ndarray, vis: np.ndarray, frames: np.ndarray, rig: Rig,
            hands: tuple[str, ...]) -> Annotations2D:  # fmt: skip
    """Keyframe labels: a hand is labeled in a view when >= 5 of its joints are visible."""
    v = vis[:, frames]
    annotated = (v == 2).sum(-1) >= 5
    v = np.where(annotated[..., None], v, 0).astype(np.int8)
    kp = np.where((v > 0)[..., None], true_px[:, frames], np.nan)
    lo = np.where((v > 0)[..., None], kp, np.inf).min(-2)
    hi = np.where((v > 0)[..., None], kp, -np.inf).max(-2)
    span = np.where(annotated[..., None], hi - lo, 0.0)
    area = span[..., 0] * span[..., 1] * HAND_BOX_SCALE**2
    return Annotations2D(kp, v, annotated, area, np.ones(v.shape[:2], bool), frames, rig.names,
                         hands)  # fmt: skip


def render_sequence(out: str | Path, cfg: RenderConfig, progress: Progress | None = None
                    ) -> Path:  # fmt: skip
    """Render one sequence into ``out`` (a sequence folder); returns the folder.

    Raises:
        ValueError: an unknown level, or more keyframes than frames.
    """
    if cfg.level not in LEVEL_SCENES:
        raise ValueError(f"level must be one of {list(LEVEL_SCENES)}, got {cfg.level!r}")
    if cfg.n_keyframes > cfg.n_frames:
        raise ValueError("n_keyframes cannot exceed n_frames")
    out = Path(out)
    level = LEVEL_SCENES[cfg.level]
    rig = cfg.rig if cfg.rig is not None else or_rig(cfg.n_far, cfg.n_near, cfg.size_px, cfg.seed)
    rig = rig.to_units("m")
    rng = np.random.default_rng([cfg.seed, int(cfg.level[1:])])
    start = time.perf_counter()
    motion = make_motion(level, cfg.n_frames, cfg.fps, rng, cfg.mocap_path)
    scene = static_scene(rng)
    lights = surgical_lights(rng, level.glare)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    _JOB.update(cfg=cfg, rig=rig, motion=motion, level=level, scene=scene, lights=lights,
                videos=out / "videos", progress=progress if cfg.workers <= 1 else None)
    try:
        if cfg.workers > 1:
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(cfg.workers) as pool:
                results = pool.map(_render_camera, range(len(rig)))
        else:
            results = [_render_camera(c) for c in range(len(rig))]
    finally:
        _JOB.clear()
    occ = np.stack([r[0] for r in results])  # (C, T, H, 21)
    seconds = time.perf_counter() - start
    _write(out, cfg, rig, motion, occ, seconds, sum(r[1] for r in results),
           sum(r[2] for r in results))
    return out


def _write(out: Path, cfg: RenderConfig, rig: Rig, motion, occ: np.ndarray, seconds: float,
           camera_seconds: float, cpu_seconds: float) -> None:  # fmt: skip
    level = LEVEL_SCENES[cfg.level]
    names = hand_names(level.persons)
    true_px = rig.project(motion.joints)  # (C, T, H, 21, 2), distortion applied
    vis = np.where(occ == VISIBLE, 2, np.where(occ == OUTSIDE, 0, 1)).astype(np.int8)
    frames = keyframes(cfg.n_frames, cfg.n_keyframes)
    labels = _labels(true_px, vis, frames, rig, names)
    info = SequenceInfo(
        name=out.name, level=cfg.level, fps=cfg.fps, n_frames=cfg.n_frames,
        n_persons=level.persons, source="rendered",
        description=f"rendered OR sequence, level {cfg.level} ({LEVELS[cfg.level]})",
        metadata={"generator": "mvhand bench render", "seed": cfg.seed,
                  "motion": "handmocap (retargeted)" if level.mocap and cfg.mocap_path
                  else f"procedural {level.speed}",
                  "gloves": list(motion.gloves), "held_instrument": level.held,
                  "instrument_sweeps_per_s": level.sweeps, "glare": level.glare,
                  "distortion": "rendered", "n_cameras": len(rig),
                  "render_seconds": round(seconds, 1),
                  "render_camera_seconds": round(camera_seconds, 1),
                  "render_cpu_seconds": round(cpu_seconds, 1),
                  "workers": cfg.workers},
    )  # fmt: skip
    gt = GroundTruth3D(motion.joints, np.arange(cfg.n_frames), "m", names)
    write_sequence(out, info, rig, labels, gt)
    save_truth2d(out, Truth2D(true_px, vis, occ, rig.names, names, OCCLUDER_NAMES))


def render_benchmark(out: str | Path, levels: tuple[str, ...], cfg: RenderConfig,
                     progress: Progress | None = None) -> list[Path]:  # fmt: skip
    """One sequence per level into ``out/<level>_render_s<seed>/`` and the manifest."""
    from mvhand.bench.dataset import Problems, read_manifest, write_manifest

    out = Path(out)
    paths, infos = [], []
    for lv in levels:
        c = replace(cfg, level=lv)
        name = f"{lv}_render_s{cfg.seed}"
        log.info("rendering %s", name)
        paths.append(render_sequence(out / name, c, progress))
        infos.append(SequenceInfo(name, lv, cfg.fps, cfg.n_frames))
    listed = read_manifest(out, Problems()) or []
    kept = [SequenceInfo(str(e["name"]), str(e.get("level", "L0")), cfg.fps, cfg.n_frames)
            for e in listed if str(e["name"]) not in {i.name for i in infos}]  # fmt: skip
    write_manifest(out, "mvhand rendered OR benchmark",
                   "Rendered multi-view videos of rigged hands with exact 3D and 2D truth.",
                   sorted(kept + infos, key=lambda i: i.name),
                   f"mvhand bench render --level {','.join(levels)} --seed {cfg.seed}")  # fmt: skip
    return paths
