"""The 3D stage for several people: association, then the robust 3D per person-hand.

``reconstruct_people(rig, detections, cfg)`` is pure (arrays in, a :class:`PeopleResult`
out). It associates the detections (:func:`mvhand.core.associate.associate`), keeps at most
``max_people`` person tracks, feeds every person-hand only its associated views through the
robust triangulation (left/right is already decided in 3D, so the triangulation's per-view
swap repair is off) and, when enabled, the optimizer; the body joints come from the
association's verified per-frame triangulation. ``people_report`` says what was found.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mvhand.config import param
from mvhand.core.associate import Association, AssociationConfig, associate
from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.people import Detections2D, PeopleResult
from mvhand.core.skeleton import N_JOINTS, bone_lengths
from mvhand.core.triangulate import TriangulationConfig, triangulate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeopleConfig:
    """Settings of :func:`reconstruct_people` (the ``[people]`` section)."""

    association: AssociationConfig = param(AssociationConfig(), "cross-view and temporal "
                                           "association")  # fmt: skip
    triangulation: TriangulationConfig = param(TriangulationConfig(), "robust triangulation "
                                               "of each person-hand")  # fmt: skip
    optimize: bool = param(False, "run the constrained optimizer on each person-hand after "
                           "the triangulation (slower; default settings)")  # fmt: skip
    max_people: int = param(8, "most person tracks kept (those with the most views); more "
                            "is a warning", ge=1)  # fmt: skip
    min_frames: int = param(5, "frames with 3D a track needs to be kept", ge=1)
    ambiguous_distance_m: float = param(
        0.05, "two people's hands closer than this (m) make a frame ambiguous", gt=0.0)
    max_wrist_speed_mps: float = param(
        5.0, "a wrist faster than this (m/s) between frames is a suspected identity switch",
        gt=0.0)  # fmt: skip


def _track_support(assoc: Association, det: Detections2D) -> np.ndarray:
    """``(K, T)`` views per track and frame (body views, else hand views)."""
    K, T = assoc.n_tracks, det.n_frames
    hand = np.zeros((K, T), dtype=np.int64)
    n, k = np.nonzero(assoc.hand_track >= 0)
    np.add.at(hand, (assoc.hand_track[n, k], det.frame[n]), 1)
    return np.maximum(assoc.body_n_views.T, hand)


def _select_tracks(assoc: Association, det: Detections2D, cfg: PeopleConfig,
                   warn: list[str]) -> np.ndarray:  # fmt: skip
    """Tracks kept, in order of first appearance."""
    support = _track_support(assoc, det)
    frames = (support >= 2).sum(1)
    ok = np.flatnonzero(frames >= cfg.min_frames)
    if len(ok) > cfg.max_people:
        warn.append(f"{len(ok)} people found, more than max_people = {cfg.max_people}; "
                    f"kept the {cfg.max_people} seen in the most views")  # fmt: skip
        ok = ok[np.argsort(-support[ok].sum(1), kind="stable")[: cfg.max_people]]
    first = np.argmax(support[ok] >= 2, axis=1)
    # ties (people present from the same frame) by place, so that the order of the slots does
    # not depend on the order of cameras or of detections
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        place = np.nanmean(assoc.body3d[:, ok], axis=(0, 2))  # (K, 3)
    place = np.where(np.isfinite(place), place, np.inf)
    return ok[np.lexsort((place[:, 1], place[:, 0], first))]


def _person_keypoints(det: Detections2D, assoc: Association, kept: np.ndarray
                      ) -> tuple[Keypoints2D, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The associated 2D of every kept person-hand as ``Keypoints2D (C, T, 2P, 21)``, and
    ``det_person (N,)``, ``det_hand_person (N, 2)``, ``det_side (N, 2)`` in slots of ``kept``."""
    P, C, T = len(kept), det.n_cameras, det.n_frames
    slot = np.full(assoc.n_tracks + 1, -1, dtype=np.int64)
    slot[kept] = np.arange(P)
    kp = np.full((C, T, 2 * P, N_JOINTS, 2), np.nan)
    sc = np.zeros((C, T, 2 * P, N_JOINTS))
    hs = slot[assoc.hand_track]  # (N, 2); -1 maps through slot[-1] = -1
    n, k = np.nonzero(hs >= 0)
    h = 2 * hs[n, k] + assoc.hand_side[n, k]
    # if two detections claim one view of a hand, the higher-scored one wins
    order = np.argsort(det.hands_scores[n, k].mean(-1), kind="stable")
    n, k, h = n[order], k[order], h[order]
    kp[det.camera[n], det.frame[n], h] = det.hands_px[n, k]
    sc[det.camera[n], det.frame[n], h] = det.hands_scores[n, k]
    names = tuple(f"p{i}_{side}" for i in range(P) for side in ("left", "right"))
    det_side = np.where(hs >= 0, assoc.hand_side, -1)
    return Keypoints2D(kp, sc, det.cameras, names, det.fps), slot[assoc.det_track], hs, det_side


#: The 3D stage every person-hand's associated 2D goes through: ``(rig, keypoints (C, T, 2P,
#: 21)) -> Hands3D`` (``mvhand run`` passes its own: triangulation and optimizer as configured).
Stage3D = Callable[[Rig, Keypoints2D], Hands3D]


def default_stage3d(cfg: PeopleConfig, fps: float | None) -> Stage3D:
    """The robust triangulation (left/right is already decided in 3D, so its per-view swap
    repair is off) and, with ``cfg.optimize``, the optimizer with its default settings."""
    tri_cfg = dataclasses.replace(cfg.triangulation, swap_repair=False)

    def run(rig: Rig, kp: Keypoints2D) -> Hands3D:
        h3 = triangulate(rig, kp, tri_cfg)
        if not cfg.optimize:
            return h3
        from mvhand.core.optimize import OptimizerConfig, optimize

        return optimize(rig, h3, OptimizerConfig(), fps)

    return run


def reconstruct_people(rig: Rig, detections: Detections2D,
                       cfg: PeopleConfig = PeopleConfig(),
                       stage3d: Stage3D | None = None) -> PeopleResult:  # fmt: skip
    """Associate and reconstruct everybody's hands and arms.

    Args:
        rig: the calibration (holds ``detections.cameras``; any order); 3D in its units.
        detections: every camera's person detections.
        cfg: the stage's settings.
        stage3d: the 3D stage of the person-hands (None: :func:`default_stage3d`).

    Returns:
        The :class:`PeopleResult`, with ``report`` from :func:`people_report`.
    """
    t0 = time.perf_counter()
    rig = rig.subset(detections.cameras)
    assoc = associate(rig, detections, cfg.association)
    t1 = time.perf_counter()
    warn: list[str] = []
    kept = _select_tracks(assoc, detections, cfg, warn)
    kp, det_person, det_hand, det_side = _person_keypoints(detections, assoc, kept)
    P, T = len(kept), detections.n_frames
    if P:
        h3 = (stage3d or default_stage3d(cfg, detections.fps))(rig, kp)
        hands = h3.keypoints3d.reshape(T, P, 2, N_JOINTS, 3)
        nv = h3.n_views.reshape(T, P, 2, N_JOINTS)
        err = h3.reprojection_error_px.reshape(T, P, 2, N_JOINTS)
    else:
        hands = np.full((T, 0, 2, N_JOINTS, 3), np.nan)
        nv, err = np.zeros((T, 0, 2, N_JOINTS), np.int64), np.full((T, 0, 2, N_JOINTS), np.nan)
    t2 = time.perf_counter()
    ids = np.arange(P, dtype=np.int64)
    result = PeopleResult(hands, nv, err, assoc.body3d[:, kept], assoc.body_n_views[:, kept],
                          ids, det_person, det_hand, det_side, rig.units)  # fmt: skip
    timings = {"association": t1 - t0, "reconstruction": t2 - t1}
    report = people_report(result, assoc, kept, detections, cfg, warn, timings)
    return dataclasses.replace(result, report=report)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the True stretches of a 1-D mask."""
    d = np.diff(np.r_[0, mask.astype(int), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(),
                    strict=True))  # fmt: skip


def _switches(res: PeopleResult, cfg: PeopleConfig, fps: float) -> list[dict[str, Any]]:
    """Wrist moves faster than ``max_wrist_speed_mps`` between consecutive valid frames, one
    entry per run of such steps: ``frame`` of the fastest, ``frames`` [first, last + 1), its
    ``speed_mps`` and the number of ``steps`` (a jump to another person and back is one or
    two steps; a long run is more likely a fast movement)."""
    to_m = UNIT_SCALE_M[res.units]
    out = []
    wrist = res.hands3d[:, :, :, 0]  # (T, P, 2, 3)
    for p in range(res.n_people):
        for s, side in enumerate(("left", "right")):
            t = np.flatnonzero(np.isfinite(wrist[:, p, s]).all(-1))
            if len(t) < 2:
                continue
            v = np.linalg.norm(np.diff(wrist[t, p, s], axis=0), axis=-1) * to_m * fps
            v /= np.diff(t)
            fast = np.flatnonzero(v > cfg.max_wrist_speed_mps)
            for run in np.split(fast, np.flatnonzero(np.diff(fast) > 1) + 1) if len(fast) else []:
                i = int(run[np.argmax(v[run])])
                span = [int(t[run[0]]), int(t[run[-1] + 1]) + 1]
                out.append({"person": int(res.person_ids[p]), "hand": side,
                            "frame": int(t[i + 1]), "frames": span,
                            "speed_mps": round(float(v[i]), 2), "steps": len(run)})
    return out


def _ambiguous(res: PeopleResult, cfg: PeopleConfig) -> list[int]:
    """Frames where two different people's wrists are within ``ambiguous_distance_m``."""
    to_m = UNIT_SCALE_M[res.units]
    T, P = res.hands3d.shape[:2]
    w = res.hands3d[:, :, :, 0].reshape(T, 2 * P, 3) * to_m
    d = np.linalg.norm(w[:, :, None] - w[:, None], axis=-1)
    person = np.repeat(np.arange(P), 2)
    other = person[:, None] != person[None]
    close = np.where(other[None] & np.isfinite(d), d, np.inf) < cfg.ambiguous_distance_m
    return np.flatnonzero(close.any((1, 2))).tolist()


def person_figures(res: PeopleResult, p: int) -> dict[str, Any]:
    """Slot ``p``'s frames (a hand of at least 10 joints, or the body), body frames, frames
    per hand, when it is present, and the bone-length spread (CV) per hand."""
    valid = np.isfinite(res.hands3d[:, p]).all(-1).sum(-1) >= 10  # (T, 2)
    body = np.isfinite(res.body3d[:, p]).all(-1).any(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lengths = bone_lengths(res.hands3d[:, p])  # (T, 2, 20)
        cv = np.nanmedian(np.nanstd(lengths, 0) / np.nanmedian(lengths, 0), axis=-1)
    return {
        "frames": int((valid.any(-1) | body).sum()), "body_frames": int(body.sum()),
        "hand_frames": {"left": int(valid[:, 0].sum()), "right": int(valid[:, 1].sum())},
        "present": [list(r) for r in _runs(valid.any(-1) | body)],
        "bone_length_cv": {side: (round(float(c), 3) if np.isfinite(c) else None)
                           for side, c in zip(("left", "right"), cv, strict=True)},
    }  # fmt: skip


def refresh_report(res: PeopleResult, cfg: PeopleConfig, fps: float | None = None
                   ) -> PeopleResult:  # fmt: skip
    """``res`` with the report's per-person figures, suspected switches and ambiguous frames
    computed again from its 3D (after people were merged)."""
    report = dict(res.report)
    report["people"] = [{**p, **person_figures(res, k)}
                        for k, p in enumerate(res.report["people"])]  # fmt: skip
    report["suspected_identity_switches"] = _switches(res, cfg, float(fps or 30.0))
    report["ambiguous_frames"] = _ambiguous(res, cfg)
    return dataclasses.replace(res, report=report)


def people_report(res: PeopleResult, assoc: Association, kept: np.ndarray,
                  det: Detections2D, cfg: PeopleConfig, warn: list[str],
                  timings: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """People found, frames per person and hand, suspected switches, ambiguous frames."""
    fps = float(det.fps or 30.0)
    people = [{"id": int(res.person_ids[p]), "has_body": bool(assoc.track_body[k]),
               **person_figures(res, p)} for p, k in enumerate(kept)]  # fmt: skip
    single = assoc.single_view_rows
    if single.any():
        frames = np.unique(det.frame[single])
        warn.append(f"{int(single.sum())} person detections in {len(frames)} frames were seen "
                    "by one camera only: no 3D for them")  # fmt: skip
    dropped = assoc.n_tracks - len(kept)
    return {
        "people_found": len(kept), "people": people, "tracks_dropped": int(dropped),
        "single_view_detections": int(single.sum()),
        "suspected_identity_switches": _switches(res, cfg, fps),
        "ambiguous_frames": _ambiguous(res, cfg),
        "detections_associated": float(np.mean((res.det_person >= 0)
                                               | (res.det_hand_person >= 0).any(1)))
        if len(det) else 0.0,
        "association": assoc.info, "timings_s": timings, "warnings": warn,
    }
