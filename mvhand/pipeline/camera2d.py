"""The 2D front-end of one camera: stream the video through the body stage, keep the hand
regions, track both hands, clean the keypoints. Returns plain arrays (cached per camera)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvhand.backends.registry import Backend
from mvhand.core.people import Detections2D
from mvhand.io.video import iter_frames
from mvhand.pipeline.config import PipelineConfig
from mvhand.stages.body import BodyFrame, run_body
from mvhand.stages.hands2d import run_hands2d
from mvhand.stages.palm import PalmConfig, assign_hands, run_palm
from mvhand.stages.patches import HandPatches
from mvhand.stages.track import run_track

#: ``progress(stage, camera, done, total)``; called by library code, rendered by the CLI.
Progress = Callable[[str, str, int, int], None]


def _no_progress(stage: str, camera: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True, eq=False)
class Camera2D:
    """The 2D result of one camera over T processed frames.

    Attributes:
        camera: camera name.
        frames: ``(T,)`` video frame indices.
        keypoints_px: ``(T, 2, 21, 2)`` pixels, NaN where missing.
        scores: ``(T, 2, 21)`` in [0, 1].
        presence: ``(T, 2)`` hand-model presence of tracked hands, 0 elsewhere.
        track_id: ``(T, 2)`` track index per hand, -1 where untracked.
        source: ``(T, 2)`` crop source (see ``mvhand.stages.track.SOURCE_*``).
        person: ``(T,)`` True where a body was found.
        body_hand_confidence: ``(T, 2)`` the body model's hand confidence.
        missing: ``(T,)`` True where the frame could not be decoded.
        detected: ``(T,)`` True where the person detector ran.
        people: ``(T,)`` people the detector reported where it ran, -1 elsewhere.
        body_px: ``(T, 17, 2)`` the followed person's body joints (COCO-17 order), NaN where
            no body was found (self-calibration uses them); NaN throughout with several
            people, whose bodies are in ``detections``.
        body_scores: ``(T, 17)`` their scores, 0 where missing.
        timings_s: seconds per step.
        info: counters (hand-model calls, megabytes of kept hand regions).
        detections: with ``detect.max_people > 1``, every person this camera followed and
            every lone hand the palm path found, as rows of a one-camera
            :class:`~mvhand.core.people.Detections2D` (frames are positions in ``frames``);
            the per-hand arrays above then hold the camera's main person (the one followed
            longest), for the per-camera figures. None in single-person mode.
    """

    camera: str
    frames: np.ndarray
    keypoints_px: np.ndarray
    scores: np.ndarray
    presence: np.ndarray
    track_id: np.ndarray
    source: np.ndarray
    person: np.ndarray
    body_hand_confidence: np.ndarray
    missing: np.ndarray
    detected: np.ndarray
    people: np.ndarray
    body_px: np.ndarray
    body_scores: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)
    info: dict[str, float] = field(default_factory=dict)
    detections: Detections2D | None = None

    ARRAYS = ("frames", "keypoints_px", "scores", "presence", "track_id", "source", "person",
              "body_hand_confidence", "missing", "detected", "people", "body_px",
              "body_scores")  # fmt: skip

    def stats(self) -> dict:
        """Per-camera figures for the report."""
        found = np.isfinite(self.keypoints_px).all(-1).any(-1)  # (T, 2)
        out = {
            "frames": int(self.frames.size),
            "frames_missing": int(self.missing.sum()),
            "frames_with_person": int(self.person.sum()),
            "detector_runs": int(self.detected.sum()),
            "most_people_seen": int(self.people.max(initial=-1)),
            "detector_runs_with_several_people": int((self.people >= 2).sum()),
        }
        for h, name in enumerate(("left", "right")):
            sc = self.scores[:, h][found[:, h]]
            out[f"frames_with_{name}_hand"] = int(found[:, h].sum())
            out[f"mean_confidence_{name}"] = round(float(sc[sc > 0].mean()), 4) if (
                sc > 0).any() else None
            out[f"tracks_{name}"] = int(self.track_id[:, h].max() + 1)
        body = self.body_hand_confidence[self.person]
        out["mean_body_hand_confidence"] = round(float(body.mean()), 4) if body.size else None
        out.update({k: round(v, 3) for k, v in self.info.items()})
        out["timings_s"] = {k: round(v, 3) for k, v in self.timings_s.items()}
        return out


def body_arrays(poses: list) -> dict[str, np.ndarray]:
    """``body_px (T, 17, 2)`` and ``body_scores (T, 17)`` of one pose (or None) per frame."""
    from mvhand.stages.bodies import N_BODY, body_coco17

    px, sc = np.full((len(poses), N_BODY, 2), np.nan), np.zeros((len(poses), N_BODY))
    for t, pose in enumerate(poses):
        if pose is not None:
            px[t], sc[t] = body_coco17(pose)
    return {"body_px": px, "body_scores": sc}


def with_palm_hands(bf: BodyFrame, image: np.ndarray | None, i: int, backend: Backend,
                    cfg: PalmConfig) -> BodyFrame:  # fmt: skip
    """The body frame with the hand-first path's hands in the hand slots the body left empty
    (``[palm]``: on frames where the body gave no hand, or on every frame; every N-th)."""
    if (image is None or backend.palm is None or cfg.mode == "off" or i % cfg.every
            or (cfg.mode == "fallback" and any(h is not None for h in bf.hands))
            or all(h is not None for h in bf.hands)):  # fmt: skip
        return bf
    found = assign_hands(run_palm(image, backend.palm, backend.hand, cfg))
    hands = tuple(b if b is not None else p for b, p in zip(bf.hands, found, strict=True))
    return BodyFrame(bf.index, bf.person, bf.pose, hands, bf.detected, bf.n_people)


def process_camera(camera: str, video: Path, frames: range, backend: Backend,
                   cfg: PipelineConfig, progress: Progress = _no_progress,
                   spill_dir: Path | None = None) -> Camera2D:  # fmt: skip
    """Run stages 2-5 on one camera's video over ``frames`` (a range of frame indices)."""
    if cfg.detect.max_people > 1:
        from mvhand.pipeline.people2d import process_camera_people

        return process_camera_people(camera, video, frames, backend, cfg, progress, spill_dir)
    T = len(frames)
    tc = cfg.tracking
    patches = HandPatches(T, tc.patch_scale, tc.patch_min_px, tc.patch_max_px, spill_dir)
    body_frames: list[BodyFrame] = []
    missing = np.zeros(T, dtype=bool)
    t_start, cpu_start = time.perf_counter(), time.process_time()
    stream = iter_frames(video, frames.start, frames.stop, frames.step, cfg.video.max_bad_run)
    for i, (bf, image) in enumerate(run_body(stream, backend.person, backend.body, cfg.detect)):
        bf = with_palm_hands(bf, image, i, backend, cfg.palm)
        body_frames.append(bf)
        missing[i] = image is None
        if image is not None:
            patches.add(i, image, tuple(None if h is None else h.crop for h in bf.hands))
        progress("body", camera, i + 1, T)
    t_body, cpu_body = time.perf_counter(), time.process_time()
    # body_frames may be shorter than T if the file ended early: pad as missing
    while len(body_frames) < T:
        missing[len(body_frames)] = True
        body_frames.append(BodyFrame(frames[len(body_frames)], None, None, (None, None)))
    body_hands = [bf.hands for bf in body_frames]
    progress("track", camera, 0, 1)
    with patches:  # the kept regions' temporary file goes when tracking is done
        track = run_track(body_hands, lambda t, crop: patches.estimate(backend.hand, t, crop),
                          tc)  # fmt: skip
    progress("track", camera, 1, 1)
    hands = run_hands2d(track, cfg.hands2d, body_hands)
    t_end, cpu_end = time.perf_counter(), time.process_time()
    return Camera2D(
        camera=camera,
        frames=np.asarray(list(frames), dtype=np.int64),
        keypoints_px=hands.keypoints_px,
        scores=hands.scores,
        presence=track.presence,
        track_id=track.track_id,
        source=track.source,
        person=np.array([bf.pose is not None for bf in body_frames]),
        body_hand_confidence=np.stack([bf.hand_confidence for bf in body_frames]),
        missing=missing,
        detected=np.array([bf.detected for bf in body_frames]),
        people=np.array([bf.n_people for bf in body_frames], dtype=np.int64),
        **body_arrays([bf.pose for bf in body_frames]),
        timings_s={"decode_detect_body": t_body - t_start, "track_hands": t_end - t_body},
        info={"hand_model_calls": track.n_model_calls, "patch_megabytes": patches.nbytes / 1e6,
              "cpu_s_decode_detect_body": cpu_body - cpu_start,
              "cpu_s_track_hands": cpu_end - cpu_body},  # fmt: skip
    )
