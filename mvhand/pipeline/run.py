"""``mvhand run``: videos + calibration -> 2D hands per camera (cached) -> 3D hands -> files.

Outputs in ``out_dir``: everything ``mvhand triangulate`` writes (``hands3d.npz``,
``hands3d.csv``, ``config.toml``, ``report.json``) plus ``keypoints2d.npz`` and
``cache/<camera>.npz`` (the per-camera 2D results; a later run with the same settings, videos and
frames reuses them, so an interrupted run resumes where it stopped). Library code: no printing;
progress goes to the ``progress`` callback and problems to ``logging`` and the report.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.config import config_to_toml
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.errors import InputError, MvhandError
from mvhand.io.atomic import write_text_atomic
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import save_keypoints
from mvhand.io.video import VideoCheck, check_videos, find_videos, probe_video
from mvhand.pipeline.camera2d import Camera2D, Progress, _no_progress
from mvhand.pipeline.config import PipelineConfig, frontend_dict
from mvhand.pipeline.workers import compute_cameras_2d

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RunResult:
    """What ``run_pipeline`` produced.

    Attributes:
        out_dir: the output folder.
        keypoints: the 2D keypoints of all cameras ``(C, T, 2, 21, 2)``.
        cameras: per camera its 2D result.
        report: the report written to ``report.json``.
        reused: cameras whose 2D result came from the cache.
    """

    out_dir: Path
    keypoints: Keypoints2D
    cameras: dict[str, Camera2D]
    report: dict[str, Any]
    reused: tuple[str, ...]


def load_rig(calib: str | Path | Rig, units: str | None = None) -> Rig:
    """A rig from any calibration format ``mvhand calib convert`` reads (or a Rig), in
    ``units`` (None: the file's)."""
    if isinstance(calib, Rig):
        return calib if units is None else calib.to_units(units)
    from mvhand.io.calib_convert import load_any_calibration

    return load_any_calibration(calib, units=units)


def prepare_inputs(rig: Rig, videos_dir: str | Path, cfg: PipelineConfig
                   ) -> tuple[dict[str, Path], VideoCheck, list[str]]:  # fmt: skip
    """Match and check the videos; returns the videos, the check and the warnings.

    Raises:
        InputError: fewer than two usable cameras, or none at all (the message says why).
    """
    match = find_videos(videos_dir, rig.names, cfg.video.mapping_dict())
    warnings = match.problems()
    infos, videos = {}, {}
    for cam, path in match.videos.items():
        try:
            infos[cam] = probe_video(path)
            videos[cam] = path
        except InputError as exc:
            warnings.append(f"camera '{cam}' is left out: {exc}")
    if len(videos) < 2:
        raise InputError(
            f"3D needs at least two cameras with a readable video; usable: "
            f"{', '.join(videos) or 'none'}. " + " ".join(w + "." for w in warnings), videos_dir)
    check = check_videos(infos, rig.subset(list(videos)))
    return videos, check, warnings + list(check.warnings)


def frame_range(cfg: PipelineConfig, n_frames: int, frames: tuple[int, int | None] | None = None
                ) -> range:  # fmt: skip
    """The processed frames: ``frames`` (start, stop) if given, else the config's, clipped to
    the common video length, with the config's step."""
    start, stop = frames if frames is not None else (cfg.video.start, cfg.video.stop)
    stop = n_frames if stop is None else min(stop, n_frames)
    rng = range(start, stop, cfg.video.step)
    if len(rng) == 0:
        raise InputError(f"the frame range {start}:{stop} is empty (the videos have {n_frames} "
                         "common frames)")  # fmt: skip
    return rng


def _camera_warnings(results: dict[str, Camera2D]) -> list[str]:
    out = []
    for cam, r in results.items():
        if r.missing.any():
            out.append(f"camera '{cam}': {int(r.missing.sum())} frame(s) could not be decoded "
                       "and are marked missing")  # fmt: skip
        if not r.person.any():
            out.append(f"camera '{cam}': no person was found in any frame; check that the "
                       "video shows the subject")  # fmt: skip
        elif not np.isfinite(r.keypoints_px).any():
            out.append(f"camera '{cam}': a person but no hand was found in any frame")
    return out


def run_pipeline(calib: str | Path | Rig, videos_dir: str | Path, out_dir: str | Path,
                 cfg: PipelineConfig | None = None, *,
                 frames: tuple[int, int | None] | None = None, overlay: bool = False,
                 use_cache: bool = True, progress: Progress | None = None,
                 units: str | None = None, backend_factory: Callable | None = None
                 ) -> RunResult:  # fmt: skip
    """Run the whole pipeline and write its outputs.

    Args:
        calib: calibration file (any format ``load_any_calibration`` reads) or a Rig.
        videos_dir: folder with one video per camera.
        out_dir: output folder (created).
        cfg: the pipeline config (None: the defaults).
        frames: ``(start, stop)`` frames to process (stop None: to the end); overrides
            ``cfg.video.start/stop``.
        overlay: also write one video per camera with the 2D and reprojected 3D joints.
        use_cache: reuse per-camera 2D results from ``out_dir/cache``.
        progress: ``progress(stage, camera, done, total)`` callback.
        units: units of the 3D output (None: the calibration's).
        backend_factory: builds the 2D backend from ``cfg.backend`` (tests pass a fake).

    Raises:
        MvhandError: bad input, with a message that says what to do.
    """
    from mvhand.backends.registry import make_backend
    from mvhand.stages.reconstruct import run_reconstruct, write_reconstruction

    t0 = time.perf_counter()
    cfg = cfg if cfg is not None else PipelineConfig()
    progress = progress or _no_progress
    out = Path(out_dir)
    rig = load_rig(calib, units)
    videos, check, warnings = prepare_inputs(rig, videos_dir, cfg)
    rng = frame_range(cfg, check.n_frames, frames)
    for w in warnings:
        log.warning(w)
    t_in = time.perf_counter()
    results, reused = compute_cameras_2d(videos, rng, cfg, out, progress, use_cache,
                                 backend_factory or make_backend)  # fmt: skip
    cam_warnings = _camera_warnings(results)
    for w in cam_warnings:
        log.warning(w)
    t_2d = time.perf_counter()
    fps = check.fps / rng.step if check.fps > 0 else None
    kp = Keypoints2D(np.stack([r.keypoints_px for r in results.values()]),
                     np.stack([r.scores for r in results.values()]), tuple(results), fps=fps)
    save_keypoints(out / "keypoints2d.npz", kp)
    if not np.isfinite(kp.keypoints_px).any():
        raise InputError("no hand was found in any camera, so there is nothing to reconstruct; "
                         f"the 2D results are in {out / 'keypoints2d.npz'}")  # fmt: skip
    progress("3d", "all", 0, 1)
    rec = run_reconstruct(kp, check.rig, cfg.reconstruct)
    progress("3d", "all", 1, 1)
    refine_info = None
    if cfg.refine.enabled:
        from mvhand.stages.refine import refine_step

        kp, rec, refine_info = refine_step(
            out, videos, rng, kp, rec, check.rig, cfg.refine, cfg.reconstruct,
            np.stack([r.presence for r in results.values()]),
            lambda: (backend_factory or make_backend)(cfg.backend).hand,
            backend=frontend_dict(cfg)["backend"], joints=cfg.hands2d,
            max_bad_run=cfg.video.max_bad_run,
            use_cache=use_cache, progress=progress)
        save_keypoints(out / "keypoints2d.npz", kp)
    timings = {"inputs": round(t_in - t0, 3), "cameras_2d": round(t_2d - t_in, 3),
               "reconstruct": round(time.perf_counter() - t_2d, 3)}
    extra = _run_report(videos, rng, fps, check, warnings + cam_warnings, results, reused,
                        refine_info, timings)  # fmt: skip
    report = write_reconstruction(out, rec, config_to_toml(cfg), extra, fps)
    save_calibration(out / "calibration.toml", check.rig)
    if cfg.fit.enabled:
        _fit(out, rec.hands3d, kp, check.rig, cfg, report)
    if cfg.summary:
        from mvhand.viz.summary import summary_figure

        summary_figure(rec.hands3d, kp, out / "summary.png", title=str(videos_dir), fps=fps)
    if overlay:
        _write_overlays(out, videos, rng, kp, rec, check.rig, report)
    return RunResult(out, kp, results, report, tuple(reused))


def _run_report(videos: dict[str, Path], rng: range, fps: float | None, check: VideoCheck,
                warnings: list[str], results: dict[str, Camera2D], reused: list[str],
                refine_info: dict | None, timings: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """The run's own part of report.json (the 3D stage adds its part)."""
    inputs = {"videos": {c: str(p) for c, p in videos.items()},
              "frames": {"start": rng.start, "stop": rng.stop, "step": rng.step,
                         "count": len(rng)},
              "fps": fps,
              "image_sizes_px": {c.name: list(c.size_px) for c in check.rig}}  # fmt: skip
    report = {"inputs": inputs, "warnings": warnings,
              "cameras": {c: r.stats() for c, r in results.items()},
              "cameras_from_cache": reused}  # fmt: skip
    if refine_info is not None:
        report["refine"] = refine_info
    report["timings_s"] = timings
    return report


def _fit(out: Path, hands3d, kp: Keypoints2D, rig: Rig, cfg: PipelineConfig,
         report: dict) -> None:  # fmt: skip
    """Fit the configured hand model to the 3D hands and write its files next to them."""
    from mvhand.fit import run_fit, save_fit

    t0 = time.perf_counter()
    result = run_fit(hands3d, cfg.fit, kp, rig)
    save_fit(out, result, cfg.fit.mesh_frames, cfg.fit.mesh_format)
    report["timings_s"]["fit"] = round(time.perf_counter() - t0, 3)
    write_text_atomic(out / "report.json", json.dumps(report, indent=2, default=str))


def _write_overlays(out: Path, videos: dict[str, Path], rng: range, kp: Keypoints2D, rec,
                    rig: Rig, report: dict) -> None:  # fmt: skip
    """One video per camera with 2D and reprojected 3D joints (mvhand.viz.overlay, issue 6)."""
    from mvhand.viz import overlay as viz_overlay

    try:
        boxes, track_ids = viz_overlay.load_tracks(out, kp)
        viz_overlay.write_overlays(out / "overlay", videos, kp, rec.hands3d, rig, rng,
                                   boxes=boxes, track_ids=track_ids, fps=kp.fps)  # fmt: skip
    except MvhandError as exc:
        log.warning("--overlay failed: %s", exc)
