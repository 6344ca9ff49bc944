"""Stages 2 and 3 for every person in view: each person's body pose per frame, followed.

The several-people counterpart of :mod:`mvhand.stages.body` (``detect.max_people > 1``).
Each camera follows up to ``max_people`` people, each with a camera-local id: between
detections a person's body model runs on the region made from their previous frame's body
keypoints (:func:`~mvhand.stages.body.follow_detection`, as in the single-person stage); the
person detector runs every ``detect_every`` frames, at once when someone is lost, and on every
frame while nobody is followed. A detection is given to the followed person whose box it
overlaps most (Hungarian on the IoU, at least ``keep_iou``); a detection nobody claims starts
a new person while fewer than ``max_people`` are followed. Two followed people whose boxes
come to overlap by more than ``_SAME_PERSON_IOU`` are one person: the younger id goes.

The local ids are only this camera's: which people of different cameras are the same person is
decided in 3D, by geometry (:mod:`mvhand.core.associate`). Hand crops come from each body, so
left/right is the body's own guess, which the association checks against the 3D arm.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mvhand.backends.base import BodyPose, BodyPoseEstimator, PersonDetection, PersonDetector
from mvhand.core.crops import BodyHand, hand_crops_from_body
from mvhand.core.people import N_BODY
from mvhand.stages.body import BodyFrame, DetectConfig, _pose_ok, follow_detection, iou

#: Followed people whose boxes overlap more than this are taken to be one person.
_SAME_PERSON_IOU = 0.6
#: MediaPipe pose-33 index of each COCO-17 body joint.
POSE33_TO_COCO17 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])


def body_coco17(pose: BodyPose) -> tuple[np.ndarray, np.ndarray]:
    """``(17, 2)`` pixels and ``(17,)`` scores of a body pose in COCO-17 order.

    Example:
        >>> kp = np.arange(66, dtype=float).reshape(33, 2)
        >>> xy, sc = body_coco17(BodyPose(kp, np.ones(33), "mediapipe_pose33"))
        >>> xy[5].tolist(), xy.shape    # COCO left shoulder = MediaPipe 11
        ([22.0, 23.0], (17, 2))
    """
    kp = np.asarray(pose.keypoints_px, dtype=float)
    sc = np.nan_to_num(np.asarray(pose.scores, dtype=float), nan=0.0)
    if pose.layout == "mediapipe_pose33":
        return kp[POSE33_TO_COCO17], sc[POSE33_TO_COCO17]
    if pose.layout == "coco_wholebody133":  # its first 17 joints are COCO-17's
        return kp[:N_BODY], sc[:N_BODY]
    raise ValueError(f"unknown body layout {pose.layout!r}")


@dataclass(frozen=True, eq=False)
class PeopleFrame:
    """Every followed person of one frame.

    Attributes:
        index: frame index in the video.
        ids: camera-local id of each person, in the order of ``people``.
        people: one :class:`~mvhand.stages.body.BodyFrame` per person (pose and hand crops).
        detected: True when the person detector ran on this frame.
        n_people: people the detector reported when it ran (-1 when it did not run).
        palm: the hand-first path's best left and right hand on this frame (None: none, or
            it did not run), as seeds for tracking hands whose body is out of view.
    """

    index: int
    ids: tuple[int, ...] = ()
    people: tuple[BodyFrame, ...] = ()
    detected: bool = False
    n_people: int = -1
    palm: tuple[BodyHand | None, BodyHand | None] = (None, None)


@dataclass
class _Person:
    id: int
    roi: PersonDetection | None = None
    box: np.ndarray | None = None


@dataclass
class _Followers:
    """Mutable state between frames: the people followed and the detector's schedule."""

    people: list[_Person] = field(default_factory=list)
    since_detect: int = 10**9
    next_id: int = 0


def _match(dets: list[PersonDetection], people: list[_Person], min_iou: float
           ) -> dict[int, int]:  # fmt: skip
    """detection index -> index in ``people``, by the Hungarian method on the box IoU."""
    if not dets or not people:
        return {}
    m = np.array([[iou(np.asarray(d.box_xyxy, float), p.box) if p.box is not None else 0.0
                   for p in people] for d in dets])  # fmt: skip
    rows, cols = linear_sum_assignment(-m)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if m[r, c] >= min_iou}


def _detect(image: np.ndarray, detector: PersonDetector, body: BodyPoseEstimator,
            st: _Followers, poses: dict[int, tuple[PersonDetection, BodyPose]],
            cfg: DetectConfig) -> int:  # fmt: skip
    """Run the detector; update ``poses`` (person id -> box, pose) and the followed people."""
    found = sorted(detector.detect(image), key=lambda d: -d.score)
    matched = _match(found, st.people, cfg.keep_iou)
    for d, k in matched.items():
        pose = body.estimate(image, found[d])
        if _pose_ok(pose, cfg):
            poses[st.people[k].id] = (found[d], pose)
    st.people = [p for p in st.people if p.id in poses]
    for d, det in enumerate(found):
        if d in matched or len(st.people) >= cfg.max_people:
            continue
        pose = body.estimate(image, det)
        if _pose_ok(pose, cfg):
            st.people.append(_Person(st.next_id))
            poses[st.next_id] = (det, pose)
            st.next_id += 1
    return len(found)


def _drop_doubles(st: _Followers, boxes: dict[int, np.ndarray]) -> None:
    """Of two people whose boxes overlap by more than ``_SAME_PERSON_IOU``, drop the younger."""
    keep: list[_Person] = []
    for p in sorted(st.people, key=lambda p: p.id):
        b = boxes.get(p.id)
        if b is None or all(iou(b, boxes[k.id]) <= _SAME_PERSON_IOU for k in keep
                            if k.id in boxes):  # fmt: skip
            keep.append(p)
    st.people = keep


def bodies_step(image: np.ndarray, detector: PersonDetector, body: BodyPoseEstimator,
                st: _Followers, cfg: DetectConfig, index: int = 0) -> PeopleFrame:  # fmt: skip
    """Every person's body pose on one RGB frame, updating the followers ``st``."""
    size = (image.shape[1], image.shape[0])
    poses: dict[int, tuple[PersonDetection, BodyPose]] = {}
    for p in st.people:
        pose = body.estimate(image, p.roi) if p.roi is not None else None
        if _pose_ok(pose, cfg):
            poses[p.id] = (p.roi, pose)
    st.since_detect += 1
    lost = len(poses) < len(st.people)
    detected, n_people = False, -1
    if not st.people or lost or st.since_detect >= cfg.detect_every:
        detected, st.since_detect = True, 0
        n_people = _detect(image, detector, body, st, poses, cfg)
    for p in st.people:
        p.roi = follow_detection(poses[p.id][1], cfg.box_margin, cfg.min_body_score, size)
        p.box = None if p.roi is None else np.asarray(p.roi.box_xyxy, float)
    _drop_doubles(st, {p.id: p.box for p in st.people if p.box is not None})
    st.people = [p for p in st.people if p.roi is not None]
    frames = tuple(BodyFrame(index, poses[p.id][0], poses[p.id][1],
                             (hand_crops_from_body(poses[p.id][1], 0),
                              hand_crops_from_body(poses[p.id][1], 1)), detected, n_people)
                   for p in st.people)  # fmt: skip
    return PeopleFrame(index, tuple(p.id for p in st.people), frames, detected, n_people)


def run_bodies(frames: Iterable[tuple[int, np.ndarray | None]], detector: PersonDetector,
               body: BodyPoseEstimator, cfg: DetectConfig
               ) -> Iterator[tuple[PeopleFrame, np.ndarray | None]]:  # fmt: skip
    """Stream the several-people body stage over ``(index, image)`` frames (image None: a
    missing frame, after which everybody is detected afresh).

    Yields:
        ``(PeopleFrame, image)`` per frame, the image passed through for the later stages.
    """
    st = _Followers()
    for index, image in frames:
        if image is None:
            st.people, st.since_detect = [], 10**9
            yield PeopleFrame(index), None
            continue
        yield bodies_step(image, detector, body, st, cfg, index), image
