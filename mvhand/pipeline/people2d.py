"""The 2D front-end of one camera for several people (``detect.max_people > 1``).

Streams the video through the several-people body stage (:mod:`mvhand.stages.bodies`),
keeps every followed person's hand regions, tracks each person's two hands with the same
seed-propagate-restart tracker as the single-person path (:mod:`mvhand.stages.track`, per
camera-local person), cleans the keypoints (:mod:`mvhand.stages.hands2d`), and adds the hands
the palm path finds away from every body's hands (hands whose body is out of view) as rows of
their own. The result is one camera's :class:`~mvhand.core.people.Detections2D`: which rows of
different cameras are the same person is left to the 3D association.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mvhand.backends.registry import Backend
from mvhand.core.people import N_BODY, SOURCES, Detections2D
from mvhand.core.skeleton import N_JOINTS
from mvhand.io.video import iter_frames
from mvhand.pipeline.camera2d import Camera2D, Progress, _no_progress, body_arrays
from mvhand.pipeline.config import PipelineConfig
from mvhand.stages.bodies import PeopleFrame, body_coco17, run_bodies
from mvhand.stages.hands2d import clean_joints, run_hands2d
from mvhand.stages.palm import PalmConfig, PalmHand, assign_hands, run_palm
from mvhand.stages.patches import HandPatches
from mvhand.stages.track import TrackResult, run_track

#: A palm-path hand whose wrist lies within this many crop sides of a body's tracked wrist is
#: that body's hand, not a lone one.
_PALM_NEAR = 0.5


def _palm_due(pf: PeopleFrame, i: int, backend: Backend, cfg: PalmConfig) -> bool:
    """``[palm]`` on this frame: 'always', or 'fallback' when no body here gave a hand."""
    if backend.palm is None or cfg.mode == "off" or i % cfg.every:
        return False
    return cfg.mode == "always" or not any(h is not None for bf in pf.people for h in bf.hands)


#: Camera-local id of the hand-first path's pseudo person: the best left and right hand the
#: palm path finds (:func:`~mvhand.stages.palm.assign_hands`), tracked like a body's hands.
PALM_ID = -1


class _Slots:
    """Patch slots of the people followed (two per person, reused when a person goes), and
    the last two for the palm path's hands."""

    def __init__(self, n_people: int) -> None:
        self.n, self.of = n_people, {}

    def crops(self, pf: PeopleFrame, palm: tuple) -> tuple:
        self.of = {k: v for k, v in self.of.items() if k in pf.ids}
        for pid in pf.ids:
            if pid not in self.of:
                self.of[pid] = min(set(range(self.n)) - set(self.of.values()))
        out: list = [None] * (2 * self.n + 2)
        for pid, bf in zip(pf.ids, pf.people, strict=True):
            for h, bh in enumerate(bf.hands):
                out[2 * self.of[pid] + h] = None if bh is None else bh.crop
        for h, bh in enumerate(palm):
            out[2 * self.n + h] = None if bh is None else bh.crop
        return tuple(out)


def _stream(camera: str, video: Path, frames: range, backend: Backend, cfg: PipelineConfig,
            progress: Progress, patches: HandPatches
            ) -> tuple[list[PeopleFrame], dict[int, list[PalmHand]], np.ndarray]:  # fmt: skip
    """Body stage over the video, keeping hand regions and the palm path's hands (each frame's
    best left and right as the palm pseudo person's seeds, the others as they are)."""
    T = len(frames)
    per_frame: list[PeopleFrame] = []
    palm: dict[int, list[PalmHand]] = {}
    missing = np.zeros(T, dtype=bool)
    slots = _Slots(cfg.detect.max_people)
    stream = iter_frames(video, frames.start, frames.stop, frames.step, cfg.video.max_bad_run)
    for i, (pf, image) in enumerate(run_bodies(stream, backend.person, backend.body,
                                               cfg.detect)):  # fmt: skip
        per_frame.append(pf)
        missing[i] = image is None
        seeds: tuple = (None, None)
        if image is not None:
            if _palm_due(pf, i, backend, cfg.palm):
                palm[i] = run_palm(image, backend.palm, backend.hand, cfg.palm)
                seeds = assign_hands(palm[i])
                pf = PeopleFrame(pf.index, pf.ids, pf.people, pf.detected, pf.n_people, seeds)
                per_frame[-1] = pf
            patches.add(i, image, slots.crops(pf, seeds))
        progress("body", camera, i + 1, T)
    while len(per_frame) < T:  # the file ended early: the rest is missing
        missing[len(per_frame)] = True
        per_frame.append(PeopleFrame(frames[len(per_frame)]))
    return per_frame, palm, missing


def _person_arrays(per_frame: list[PeopleFrame], pid: int, backend: Backend,
                   patches: HandPatches, cfg: PipelineConfig) -> tuple:  # fmt: skip
    """One camera-local person: body (T, 17, 2) + scores, tracked and cleaned hands, track."""
    T = len(per_frame)
    body = np.full((T, N_BODY, 2), np.nan)
    body_sc = np.zeros((T, N_BODY))
    body_hands = []
    for t, pf in enumerate(per_frame):
        if pid == PALM_ID:
            body_hands.append(pf.palm)
        elif pid in pf.ids:
            bf = pf.people[pf.ids.index(pid)]
            body[t], body_sc[t] = body_coco17(bf.pose)
            body_hands.append(bf.hands)
        else:
            body_hands.append((None, None))
    track = run_track(body_hands, lambda t, crop: patches.estimate(backend.hand, t, crop),
                      cfg.tracking)  # fmt: skip
    hands = run_hands2d(track, cfg.hands2d, body_hands)
    return body, body_sc, hands.keypoints_px, hands.scores, track, body_hands


def _palm_rows(palm: dict[int, list[PalmHand]], wrists: np.ndarray, cfg: PipelineConfig
               ) -> list[tuple[int, np.ndarray, np.ndarray]]:  # fmt: skip
    """(frame, hands (2, 21, 2), scores (2, 21)) of the palm hands that no body's tracked hand
    explains; the slot is the hand model's handedness."""
    rows = []
    for t, found in sorted(palm.items()):
        w = wrists[t][np.isfinite(wrists[t]).all(-1)]
        for p in found:
            kp, sc = clean_joints(p.hand.keypoints_px, p.hand.scores, True, cfg.hands2d)
            if not np.isfinite(kp[0]).all():
                continue
            if len(w) and np.min(np.linalg.norm(w - kp[0], axis=-1)) < _PALM_NEAR * p.crop.size_px:
                continue
            side = 1 if (p.hand.handedness if p.hand.handedness is not None else 0.5) >= 0.5 else 0
            hk, hs = np.full((2, N_JOINTS, 2), np.nan), np.zeros((2, N_JOINTS))
            hk[side], hs[side] = kp, sc
            rows.append((t, hk, hs))
    return rows


def _wrists(people: list[tuple], T: int) -> np.ndarray:
    """``(T, 2 * len(people), 2)`` every tracked hand's wrist (NaN where none)."""
    if not people:
        return np.full((T, 0, 2), np.nan)
    return np.concatenate([p[2][:, :, 0] for p in people], axis=1)


def _drop_near(kp: np.ndarray, sc: np.ndarray, wrists: np.ndarray) -> None:
    """Empty, in place, the hands of ``kp (T, 2, 21, 2)`` whose wrist lies within
    ``_PALM_NEAR`` hand sizes of one of ``wrists (T, K, 2)``: a body's hand seen twice."""
    for t, h in zip(*np.nonzero(np.isfinite(kp[:, :, 0]).all(-1)), strict=True):
        w = wrists[t][np.isfinite(wrists[t]).all(-1)]
        size = np.nanmax(np.ptp(kp[t, h][np.isfinite(kp[t, h]).all(-1)], axis=0))
        if len(w) and np.min(np.linalg.norm(w - kp[t, h, 0], axis=-1)) < _PALM_NEAR * 2 * size:
            kp[t, h], sc[t, h] = np.nan, 0.0


def _table(camera: str, T: int, people: list[tuple], palm_only: list[bool],
           palm_rows: list[tuple], fps: float | None) -> Detections2D:  # fmt: skip
    """The camera's rows: every person-frame with a body or a hand, then the lone hands."""
    cols: dict[str, list] = {k: [] for k in ("frame", "body", "bsc", "hands", "hsc", "src")}
    for (body, bsc, hk, hs, *_), lone in zip(people, palm_only, strict=True):
        has = (bsc > 0).any(-1) | (hs > 0).any((-1, -2))
        src = SOURCES.index("palm" if lone else "body")
        for t in np.flatnonzero(has):
            for k, v in zip(cols, (t, body[t], bsc[t], hk[t], hs[t], src),
                            strict=True):  # fmt: skip
                cols[k].append(v)
    for t, hk, hs in palm_rows:
        for k, v in zip(cols, (t, np.full((N_BODY, 2), np.nan), np.zeros(N_BODY), hk, hs,
                               SOURCES.index("palm")), strict=True):  # fmt: skip
            cols[k].append(v)
    n = len(cols["frame"])
    shape = {"body": (N_BODY, 2), "bsc": (N_BODY,), "hands": (2, N_JOINTS, 2),
             "hsc": (2, N_JOINTS)}  # fmt: skip
    arr = {k: (np.array(v).reshape(n, *shape[k]) if k in shape else np.array(v, dtype=np.int64))
           for k, v in cols.items()}  # fmt: skip
    return Detections2D(np.zeros(n, np.int64), arr["frame"], arr["body"], arr["bsc"],
                        arr["hands"], arr["hsc"], arr["src"], (camera,), T, fps)  # fmt: skip


def process_camera_people(camera: str, video: Path, frames: range, backend: Backend,
                          cfg: PipelineConfig, progress: Progress = _no_progress,
                          spill_dir: Path | None = None) -> Camera2D:  # fmt: skip
    """Stages 2-5 for everybody in one camera's video over ``frames``."""
    T, tc = len(frames), cfg.tracking
    patches = HandPatches(T, tc.patch_scale, tc.patch_min_px, tc.patch_max_px, spill_dir,
                          n_slots=2 * cfg.detect.max_people + 2)  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    per_frame, palm, missing = _stream(camera, video, frames, backend, cfg, progress, patches)
    t1, c1 = time.perf_counter(), time.process_time()
    ids = sorted({pid for pf in per_frame for pid in pf.ids})
    if any(h is not None for pf in per_frame for h in pf.palm):
        ids.append(PALM_ID)
    progress("track", camera, 0, 1)
    with patches:
        people = [_person_arrays(per_frame, pid, backend, patches, cfg) for pid in ids]
    progress("track", camera, 1, 1)
    if ids and ids[-1] == PALM_ID:  # the palm path's tracks where no body hand explains them
        _drop_near(people[-1][2], people[-1][3], _wrists(people[:-1], T))
    det = _table(camera, T, people, [pid == PALM_ID for pid in ids],
                 _palm_rows(palm, _wrists(people, T), cfg), None)  # fmt: skip
    t2, c2 = time.perf_counter(), time.process_time()
    return _camera2d(camera, frames, per_frame, people, missing, det,
                     {"decode_detect_body": t1 - t0, "track_hands": t2 - t1},
                     {"hand_model_calls": sum(p[4].n_model_calls for p in people),
                      "patch_megabytes": patches.nbytes / 1e6, "cpu_s_decode_detect_body": c1 - c0,
                      "cpu_s_track_hands": c2 - c1, "people_followed": len(ids),
                      "lone_hands": int((det.source == SOURCES.index("palm")).sum())})  # fmt: skip


def _camera2d(camera: str, frames: range, per_frame: list[PeopleFrame], people: list[tuple],
              missing: np.ndarray, det: Detections2D, timings: dict, info: dict
              ) -> Camera2D:  # fmt: skip
    """The Camera2D: per-hand arrays of the main person (followed longest), every row."""
    T = len(per_frame)
    kp, sc = np.full((T, 2, N_JOINTS, 2), np.nan), np.zeros((T, 2, N_JOINTS))
    track = TrackResult(kp, sc, np.zeros((T, 2)), np.full((T, 2), -1), np.zeros((T, 2), int), 0)
    conf = np.zeros((T, 2))
    if people:
        main = int(np.argmax([(p[1] > 0).any(-1).sum() for p in people]))
        _, _, kp, sc, track, body_hands = people[main]
        conf = np.array([[0.0 if h is None else h.confidence for h in bh] for bh in body_hands])
    return Camera2D(
        camera=camera, frames=np.asarray(list(frames), dtype=np.int64), keypoints_px=kp,
        scores=sc, presence=track.presence, track_id=track.track_id, source=track.source,
        person=np.array([len(pf.ids) > 0 for pf in per_frame]), body_hand_confidence=conf,
        missing=missing, detected=np.array([pf.detected for pf in per_frame]),
        people=np.array([pf.n_people for pf in per_frame], dtype=np.int64),
        **body_arrays([None] * T), timings_s=timings, info=info, detections=det)
