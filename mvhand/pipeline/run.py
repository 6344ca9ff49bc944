"""``mvhand run``: videos + calibration -> 2D hands per camera (cached) -> 3D hands -> files.

The outputs form one set in the run folder (:mod:`mvhand.io.runfolder` owns their names and
publishes them together); ``OUT/cache/<camera>.npz`` holds the per-camera 2D results, so a
later run with the same settings, videos and frames reuses them and an interrupted run resumes
where it stopped. Library code: no printing; progress goes to the ``progress`` callback and
problems to ``logging``, from where they reach the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.config import config_to_toml
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.triangulate import triangulate
from mvhand.errors import ConfigError, InputError, MvhandError
from mvhand.io.calib_convert import load_rig
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import save_keypoints
from mvhand.io.results import save_hands3d, save_hands3d_csv
from mvhand.io.runfolder import RunFolder, check_output_dir
from mvhand.io.video import VideoCheck, check_videos, find_videos, probe_video
from mvhand.pipeline.camera2d import Camera2D, Progress, _no_progress
from mvhand.pipeline.config import PipelineConfig, frontend_dict
from mvhand.pipeline.fit import write_fit
from mvhand.pipeline.people import people_section
from mvhand.pipeline.report import assemble, collect_warnings, reconstruction_section
from mvhand.pipeline.selfcal import (
    SelfCalibration,
    people_points,
    self_calibrate,
    single_person_points,  # fmt: skip
)
from mvhand.pipeline.workers import compute_cameras_2d, map_processes, resolve_workers
from mvhand.stages.reconstruct import reconstruction_report, run_reconstruct

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
        hands3d: the 3D hands (with their repaired 2D in ``hands3d.views``).
    """

    out_dir: Path
    keypoints: Keypoints2D
    cameras: dict[str, Camera2D]
    report: dict[str, Any]
    reused: tuple[str, ...]
    hands3d: Hands3D | None = None


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


def frame_range(cfg: PipelineConfig, n_frames: int) -> range:
    """The processed frames: the config's ``video.start:stop:step``, clipped to the common
    video length."""
    start, stop = cfg.video.start, cfg.video.stop
    stop = n_frames if stop is None else min(stop, n_frames)
    rng = range(start, stop, cfg.video.step)
    if len(rng) == 0:
        raise InputError(f"the frame range {start}:{stop} is empty (the videos have {n_frames} "
                         "common frames)")  # fmt: skip
    return rng


def resolve_config(cfg: PipelineConfig | None, frames: tuple[int, int | None] | None = None,
                   overlay: bool | None = None, units: str | None = None) -> PipelineConfig:
    """The config with the command-line choices folded in, so the saved ``config.toml``
    replays the run (``mvhand run --pipeline OUT/config.toml`` does the same)."""
    cfg = cfg if cfg is not None else PipelineConfig()
    if frames is not None:
        start, stop = frames
        cfg = replace(cfg, video=replace(cfg.video, start=start, stop=stop))
        if stop is not None and stop <= start:
            raise ConfigError(f"the frame range {start}:{stop} is empty")
    if overlay is not None:
        cfg = replace(cfg, overlay=bool(overlay))
    if units is not None:
        cfg = replace(cfg, units=units)
    return cfg


def _camera_warnings(results: dict[str, Camera2D], max_people: int = 1) -> list[str]:
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
        checks = int((r.people >= 0).sum())
        several = int((r.people >= 2).sum())
        if max_people > 1:
            more = int((r.people > max_people).sum())
            if more:
                out.append(f"camera '{cam}': the person detector saw up to "
                           f"{int(r.people.max())} people, more than detect.max_people = "
                           f"{max_people}, in {more} of its {checks} runs; only "
                           f"{max_people} are followed")  # fmt: skip
        elif several and several >= 0.1 * checks:
            out.append(f"camera '{cam}': the person detector saw several people (up to "
                       f"{int(r.people.max())}) in {several} of its {checks} runs; with "
                       "detect.max_people = 1 each camera follows one person, so cameras may "
                       "follow different people and mix their hands in 3D: check the overlays, "
                       "or follow everybody with --max-people (detect.max_people > 1)")  # fmt: skip
    return out


def run_pipeline(calib: str | Path | Rig, videos_dir: str | Path, out_dir: str | Path,
                 cfg: PipelineConfig | None = None, *,
                 frames: tuple[int, int | None] | None = None, overlay: bool | None = None,
                 use_cache: bool = True, progress: Progress | None = None,
                 units: str | None = None, backend_factory: Callable | None = None
                 ) -> RunResult:  # fmt: skip
    """Run the whole pipeline and publish its outputs as one set (:mod:`mvhand.io.runfolder`).

    Args:
        calib: calibration file (any format ``mvhand calib convert`` reads) or a Rig.
        videos_dir: folder with one video per camera.
        out_dir: output folder (created).
        cfg: the pipeline config (None: the defaults).
        frames, overlay, units: override ``cfg.video.start/stop``, ``cfg.overlay`` and
            ``cfg.units`` (the saved config records the values used).
        use_cache: reuse per-camera 2D results from ``out_dir/cache``.
        progress: ``progress(stage, camera, done, total)`` callback.
        backend_factory: builds the 2D backend from ``cfg.backend`` (tests pass a fake).

    Raises:
        MvhandError: bad input or an unwritable output, with a message that says what to do.
    """
    cfg = resolve_config(cfg, frames, overlay, units)
    if cfg.detect.max_people > 1 and cfg.reconstruct.triangulation.swap_repair:
        # several people: left/right is decided once per track in 3D by the association, so
        # the per-view swap repair is off (the saved config says so, and replays the run)
        tri = replace(cfg.reconstruct.triangulation, swap_repair=False)
        cfg = replace(cfg, reconstruct=replace(cfg.reconstruct, triangulation=tri))
    folder = RunFolder(out_dir)
    check_output_dir(folder.root)
    with collect_warnings() as warnings:
        return _run(calib, videos_dir, folder, cfg, use_cache, progress or _no_progress,
                    backend_factory, warnings)  # fmt: skip


def _run(calib, videos_dir, folder: RunFolder, cfg: PipelineConfig, use_cache: bool,
         progress: Progress, backend_factory, warnings: list[str]) -> RunResult:  # fmt: skip
    from mvhand.backends.registry import make_backend

    factory = backend_factory or make_backend
    t0 = time.perf_counter()
    rig = load_rig(calib, cfg.units)
    videos, check, input_warnings = prepare_inputs(rig, videos_dir, cfg)
    rng = frame_range(cfg, check.n_frames)
    offsets = _frame_offsets(calib, videos)
    for w in input_warnings:
        if offsets and w.startswith("videos have different lengths"):
            continue  # with frame offsets each camera reads its own shifted range (below)
        log.warning(w)
    cam_frames: range | dict[str, range] = rng
    if offsets:
        rng, cam_frames, cfg = _offset_ranges(cfg, videos, offsets)
    t_in = time.perf_counter()
    results, reused = compute_cameras_2d(videos, cam_frames, cfg, folder.root, progress,
                                         use_cache, factory)  # fmt: skip
    for w in _camera_warnings(results, cfg.detect.max_people):
        log.warning(w)
    t_2d = time.perf_counter()
    fps = check.fps / rng.step if check.fps > 0 else None
    people = None
    if cfg.detect.max_people > 1:
        kp, rec, people, selfcal = _people(results, len(rng), fps, check.rig, cfg, progress)
    else:
        kp = Keypoints2D(np.stack([r.keypoints_px for r in results.values()]),
                         np.stack([r.scores for r in results.values()]), tuple(results),
                         fps=fps)  # fmt: skip
        _check_any_hand(kp)
        selfcal = _self_calibration(check.rig.subset(kp.cameras), cfg, lambda rig_: (
            single_person_points(rig_, kp, np.stack([r.body_px for r in results.values()]),
                                 np.stack([r.body_scores for r in results.values()]),
                                 cfg.self_calibration, cfg.reconstruct.triangulation)),
            progress)  # fmt: skip
        progress("3d", "all", 0, 1)
        rec = run_reconstruct(kp, selfcal.rig, cfg.reconstruct)
        progress("3d", "all", 1, 1)
    rig = selfcal.rig  # the cameras of the 3D: the given ones, or refined on the recording
    refine_info = None
    if cfg.refine.enabled:
        kp, rec, refine_info = _refine(folder, videos, rng, kp, rec, rig, cfg,
                                       None if people else results, factory, use_cache,
                                       progress)  # fmt: skip
    t_3d = time.perf_counter()
    section, consistency = reconstruction_section(rec, rig)
    for w in consistency:
        log.warning(w)
    timings = {"inputs": t_in - t0, "cameras_2d": t_2d - t_in, "reconstruct": t_3d - t_2d}
    run_info = _run_info(videos, rng, fps, check, results, reused, refine_info)
    run_info["self_calibration"] = selfcal.info
    if offsets:
        run_info["inputs"]["frame_offsets"] = offsets
    if people is not None:
        run_info["people"] = people_section(people[1], people[2], cfg.person)
    report = _publish(folder, cfg, kp, rec, rig, videos, rng, run_info, section,
                      timings, warnings, _title(str(videos_dir), selfcal), people,
                      check.rig if selfcal.applied else None)  # fmt: skip
    return RunResult(folder.root, kp, results, report, tuple(reused), rec.hands3d)


def _title(title: str, selfcal: SelfCalibration) -> str:
    """The figures' title; it says when the cameras were self-calibrated, and by how much."""
    if not selfcal.applied:
        return title
    worst = max(v["rotation_deg"] for v in selfcal.info["cameras"].values())
    return f"{title} (self-calibrated cameras: up to {worst:.1f} deg from the given calibration)"


def _self_calibration(rig: Rig, cfg: PipelineConfig, points: Callable,
                      progress: Progress) -> SelfCalibration:  # fmt: skip
    """The rig the 3D stage uses: refined on ``points(rig)`` (ScenePoints) when
    ``self_calibration`` is on and its check says it helps, else ``rig``."""
    if not cfg.self_calibration.enabled:
        return SelfCalibration(rig, False, {"applied": False, "reason": "switched off"})
    progress("self-calibration", "all", 0, 1)
    res = self_calibrate(rig, points(rig), cfg.self_calibration, cfg.reconstruct.triangulation)
    progress("self-calibration", "all", 1, 1)
    return res


def _frame_offsets(calib, videos: dict[str, Path]) -> dict[str, int]:
    """The calibration's ``[metadata] frame_offsets`` of the used cameras; {} when all 0."""
    from mvhand.calibrate.sync import read_frame_offsets

    if isinstance(calib, Rig):
        return {}
    offsets = read_frame_offsets(calib, list(videos))
    return offsets if any(offsets.values()) else {}


def _offset_ranges(cfg: PipelineConfig, videos: dict[str, Path], offsets: dict[str, int]
                   ) -> tuple[range, dict[str, range], PipelineConfig]:  # fmt: skip
    """Frame offsets (camera c's frame f + offset shows the instant of frame f): each camera
    reads its own shifted range; the common range shrinks to the frames every camera has.
    The refine pass and the overlays read one range for all videos, so they are turned off."""
    from mvhand.calibrate.sync import shifted_ranges

    lengths = {c: probe_video(p).n_frames for c, p in videos.items()}
    rng, per_cam = shifted_ranges(cfg.video.start, cfg.video.stop, cfg.video.step, lengths,
                                  offsets)  # fmt: skip
    log.info("frame offsets %s: reference frames %d:%d", offsets, rng.start, rng.stop)
    if cfg.refine.enabled or cfg.overlay:
        log.warning("the calibration has frame offsets %s: the refine pass and the overlays do "
                    "not support them yet and are skipped", offsets)  # fmt: skip
        cfg = replace(cfg, refine=replace(cfg.refine, enabled=False), overlay=False)
    return rng, per_cam, cfg


def _check_any_hand(kp: Keypoints2D) -> None:
    if not np.isfinite(kp.keypoints_px).any():
        raise InputError("no hand was found in any camera, so there is nothing to reconstruct; "
                         "see the warnings above")  # fmt: skip


def _people(results: dict[str, Camera2D], n_frames: int, fps: float | None, rig: Rig,
            cfg: PipelineConfig, progress: Progress) -> tuple:  # fmt: skip
    """Everybody associated, each person through the run's 3D stage on their own (so one
    person's noise does not set another's weights); the chosen person's 2D and 3D as the
    run's single-person result, and (detections, people, slot)."""
    from mvhand.core.people import lone_hand_pairs, merge_people
    from mvhand.pipeline.people import choose_person, gather_detections
    from mvhand.stages.people import reconstruct_people, refresh_report

    det = gather_detections(results, n_frames, fps)
    rig = rig.subset(det.cameras)

    def points(rig_: Rig):  # everybody's joints, associated with the given cameras
        first = reconstruct_people(rig_, det, cfg.people,
                                   lambda r, k: triangulate(r, k, replace(
                                       cfg.reconstruct.triangulation, swap_repair=False)))
        return people_points(det, first, cfg.self_calibration)

    selfcal = _self_calibration(rig, cfg, points, progress)
    rig = selfcal.rig
    done: list = []  # one ReconstructResult per person slot

    def stage3d(rig_: Rig, kp: Keypoints2D) -> Hands3D:
        _check_any_hand(kp)
        P = kp.keypoints_px.shape[2] // 2
        jobs = [(kp.take_hands([2 * p, 2 * p + 1]), rig_, cfg.reconstruct) for p in range(P)]
        progress("3d", "all", 0, P)
        done.extend(map_processes(_reconstruct_job, jobs, resolve_workers(cfg.workers, P),
                                  lambda k: progress("3d", "all", k, P)))  # fmt: skip
        return Hands3D.concatenate([d.hands3d for d in done], kp.hands)

    res = reconstruct_people(rig, det, cfg.people, stage3d)
    for w in res.report["warnings"]:
        log.warning(w)
    source = [(p, p) for p in range(res.n_people)]  # the result giving each slot's hands
    pairs = lone_hand_pairs(res)
    if pairs:  # one person's two hands, no body in view: one person
        log.info("hand-only people %s are one person's left and right hands", pairs)
        for a, b in pairs:
            source[a] = (a, b)
        gone = {b for _, b in pairs}
        source = [s for p, s in enumerate(source) if p not in gone]
        res = refresh_report(merge_people(res, pairs), cfg.people, fps)
    for s in res.report["suspected_identity_switches"]:
        log.warning("person %d's %s hand moves faster than %.0f m/s over frames %d-%d (%.1f m/s "
                    "at frame %d): a suspected identity switch, a wrong association or a very "
                    "fast movement; check the overlays", s["person"], s["hand"],
                    cfg.people.max_wrist_speed_mps, s["frames"][0], s["frames"][1] - 1,
                    s["speed_mps"], s["frame"])  # fmt: skip
    slot = choose_person(res, cfg.person)
    if slot is None or not done:
        raise InputError("no person was seen by two cameras at once, so there is nothing to "
                         "reconstruct; see the warnings above")  # fmt: skip
    rec = _hands_of(done, *source[slot])
    res.report["weights"] = _people_weights(done, source, res.person_ids)
    return rec.hands3d.views.keypoints, rec, (det, res, slot), selfcal


def _people_weights(done: list, source: list[tuple[int, int]], person_ids) -> dict:
    """Per person id and hand: the optimizer's weights, loss and held-out error (what its
    cross-validation chose), for the report's people section; {} without the optimizer."""
    out: dict = {}
    for p, (left, right) in enumerate(source):
        hands = {}
        for h, (name, k) in enumerate((("left", left), ("right", right))):
            info = (done[k].hands3d.info or {}).get("hands", [])
            if h < len(info) and info[h].get("optimized"):
                cv = info[h].get("cross_validation", {})
                hands[name] = {"w_smoothness": info[h]["w_smoothness"],
                               "w_bone": info[h]["w_bone"], "scheme": cv.get("scheme"),
                               "loss": cv.get("loss"),
                               "held_out_median_px": cv.get("held_out_median_px")}  # fmt: skip
        if hands:
            out[str(int(person_ids[p]))] = hands
    return out


def _reconstruct_job(job: tuple):
    """One person's 3D stage (module level, so that worker processes can run it)."""
    kp, rig, cfg = job
    return run_reconstruct(kp, rig, cfg)


def _hands_of(done: list, left: int, right: int):
    """The 3D stage's result of one person: slot ``left``'s left hand and ``right``'s right
    (the same slot, unless two hand-only people were merged)."""
    from mvhand.stages.reconstruct import ReconstructResult

    if left == right:
        return done[left]
    a, b = done[left], done[right]
    return ReconstructResult(
        Hands3D.concatenate([a.hands3d.take_hands([0], ("left",)),
                             b.hands3d.take_hands([1], ("right",))], ("left", "right")),
        Hands3D.concatenate([a.triangulated.take_hands([0], ("left",)),
                             b.triangulated.take_hands([1], ("right",))], ("left", "right")),
        a.timings_s)


def _refine(folder, videos, rng, kp, rec, rig, cfg, results, factory, use_cache, progress):
    from mvhand.pipeline.refine import refine_pass

    presence = None if results is None else np.stack([r.presence for r in results.values()])
    first = reconstruction_report(rec)
    kp, new_rec, info = refine_pass(
        folder.cache_dir, videos, rng, kp, rec.hands3d, rig, cfg.refine,
        lambda: factory(cfg.backend).hand, lambda k: run_reconstruct(k, rig, cfg.reconstruct),
        backend=frontend_dict(cfg)["backend"], joints=cfg.hands2d, presence=presence,
        max_bad_run=cfg.video.max_bad_run, use_cache=use_cache, progress=progress)
    info["first_pass"] = {"frames_with_both_hands": first["frames_with_both_hands"],
                          "median_reprojection_error_px": {
                              h: v["median_reprojection_error_px"]
                              for h, v in first["hands"].items()}}  # fmt: skip
    return kp, new_rec, info


def _publish(folder: RunFolder, cfg: PipelineConfig, kp: Keypoints2D, rec, rig: Rig,
             videos: dict[str, Path], rng: range, run_info: dict, section: dict,
             timings: dict, warnings: list[str], title: str,
             people: tuple | None = None, given_rig: Rig | None = None
             ) -> dict[str, Any]:  # fmt: skip
    """Write every output into a staging set and publish it (all or nothing); ``given_rig``:
    the calibration as given, when self-calibration replaced it by ``rig``."""
    h3 = rec.hands3d
    with folder.transaction() as tx:
        overlays_done = people is not None and _write_people(tx, cfg, people, videos, rng,
                                                             rig, title)  # fmt: skip
        save_keypoints(tx.path("keypoints2d"), kp)
        save_hands3d(tx.path("hands3d"), h3, kp.fps, tx.run_id)
        save_hands3d_csv(tx.path("hands3d_csv"), h3)
        save_calibration(tx.path("calibration"), rig)
        if given_rig is not None:
            save_calibration(tx.path("calibration_given"), given_rig)
        fit_info = None
        if cfg.fit.enabled:
            t0 = time.perf_counter()
            fit_info = write_fit(tx, h3, cfg.fit, rig)
            timings["fit"] = time.perf_counter() - t0
        if cfg.summary:
            from mvhand.viz.summary import summary_figure

            summary_figure(h3, kp, tx.path("summary"), title=title, fps=kp.fps,
                           per_camera=section.get("cameras"))  # fmt: skip
        if cfg.overlay and not overlays_done:
            _write_overlays(tx, folder, videos, rng, h3, rig)
        run_info["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        report = assemble(warnings, reconstruction=section, fit=fit_info, **run_info)
        tx.write_config(config_to_toml(cfg))
        tx.write_report(report)
        if cfg.export.formats:  # from the staged files, into the same set
            from mvhand.export import export_run

            written = export_run(tx.dir, cfg.export)
            report["exports"] = [str(p.relative_to(tx.dir)) for p in written]
            report["warnings"] = list(warnings)
            tx.write_report(report)
    return {"run_id": tx.run_id, **report}


def _write_people(tx, cfg: PipelineConfig, people: tuple, videos: dict[str, Path],
                  rng: range, rig: Rig, title: str) -> bool:  # fmt: skip
    """Everybody's file, summary and (with ``overlay``) overlays, which then go to
    ``overlay/`` instead of the chosen person's; True when the overlays were written."""
    from mvhand.io.people import PeopleFile, save_people
    from mvhand.viz.people import people_summary_figure, write_people_overlays

    det, res, slot = people
    save_people(tx.path("hands3d_people"), res, det, frames=rng,
                primary=int(res.person_ids[slot]), run_id=tx.run_id)  # fmt: skip
    pf = PeopleFile(res, det, np.asarray(list(rng), dtype=np.int64),
                    int(res.person_ids[slot]), tx.run_id)  # fmt: skip
    if cfg.summary:
        people_summary_figure(pf, tx.path("summary_people"), title=title, fps=det.fps,
                              report=res.report)  # fmt: skip
    if not cfg.overlay:
        return False
    try:
        write_people_overlays(tx.fresh_folder("overlay"), videos, pf, rig, rng, fps=det.fps)
    except MvhandError as exc:
        log.warning("the people overlays failed: %s", exc)
    return True


def _run_info(videos: dict[str, Path], rng: range, fps: float | None, check: VideoCheck,
              results: dict[str, Camera2D], reused: list[str], refine_info: dict | None
              ) -> dict[str, Any]:  # fmt: skip
    """The run's own sections of report.json."""
    inputs = {"videos": {c: str(p) for c, p in videos.items()},
              "frames": {"start": rng.start, "stop": rng.stop, "step": rng.step,
                         "count": len(rng)},
              "fps": fps,
              "image_sizes_px": {c.name: list(c.size_px) for c in check.rig}}  # fmt: skip
    info = {"inputs": inputs, "cameras": {c: r.stats() for c, r in results.items()},
            "cameras_from_cache": reused}  # fmt: skip
    if refine_info is not None:
        info["refine"] = refine_info
    return info


def _write_overlays(tx, folder: RunFolder, videos: dict[str, Path], rng: range, h3, rig: Rig
                    ) -> None:  # fmt: skip
    """One video per camera with the repaired 2D and the reprojected 3D (staged with the
    set: an interrupted overlay publishes nothing)."""
    from mvhand.viz import overlay as viz_overlay

    kp = h3.views.keypoints
    try:
        boxes, track_ids = viz_overlay.load_tracks(folder.root, kp)
        viz_overlay.write_overlays(tx.path("overlay"), videos, kp, h3, rig, rng,
                                   boxes=boxes, track_ids=track_ids, fps=kp.fps)  # fmt: skip
    except MvhandError as exc:
        log.warning("--overlay failed: %s", exc)
