"""Stages 2 and 3: the person and their whole-body pose per frame, and hand boxes from it.

Single-surgeon mode (the paper's): one person per camera. The person detector does not run on
every frame: between detections the body model is run on a region of interest made from the
previous frame's body keypoints (:func:`follow_detection`, rotated like the detector's), which is
how MediaPipe's own pose tracker works. The detector runs every ``detect_every`` frames, and at
once when the body is lost. Measured on two Pose2Sim demo cameras (100 frames, CPU time):
detecting on every frame costs 28-29 ms per frame for detector + body, every 10th frame 18 ms,
with the same frames with a body (100 / 99-100) and the same mean body hand confidence
(0.967 vs 0.959 on cam01, 0.742 vs 0.751 on cam03). An upright box from the keypoints instead
of the rotated region lost 0.1 of hand confidence on cam01.

Which person: the paper keeps the best box. Here, while a person is followed, the detection
that overlaps their previous box most (IoU >= ``keep_iou``) is kept, else the best-scoring one;
this stops the choice from flipping to a bystander whose score is briefly higher (Pose2Sim's
cam01 has one in the background).

Hand boxes (stage 3) come from the body's own hand keypoints via
:func:`mvhand.core.crops.hand_crops_from_body`: rotated so that the fingers point up, and
left/right from the body's left/right, never the image side.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from mvhand.backends.base import BodyPose, BodyPoseEstimator, PersonDetection, PersonDetector
from mvhand.config import param
from mvhand.core.crops import BodyHand, hand_crops_from_body


@dataclass(frozen=True)
class DetectConfig:
    """Person detection and whole-body pose (the ``[detect]`` section)."""

    detect_every: int = param(
        10, "run the person detector every N processed frames; in between, the person box "
        "follows the previous frame's body keypoints (1 = detect on every frame)", ge=1)
    min_body_score: float = param(
        0.3, "a body whose mean keypoint score is below this counts as lost", ge=0.0, le=1.0)
    box_margin: float = param(
        0.1, "the followed person box is the body keypoints' box grown by this fraction of "
        "its size on every side", ge=0.0, le=2.0)
    keep_iou: float = param(
        0.3, "keep following the same person while a detection overlaps their box by this IoU",
        ge=0.0, le=1.0)
    max_people: int = param(
        1, "people followed per camera: 1 is the paper's single-surgeon mode (one person per "
        "camera); more follows everybody in view (up to this many), and the 3D stage then "
        "associates them across cameras and time ([people]; hands3d_people.npz)", ge=1, le=32)


@dataclass(frozen=True, eq=False)
class BodyFrame:
    """The body stage's result for one frame.

    Attributes:
        index: frame index in the video.
        person: the person box used, or None when no person was found.
        pose: the whole-body pose, or None.
        hands: per hand (0 left, 1 right) the body's hand estimate with its crop, or None.
        detected: True when the person detector ran on this frame.
        n_people: people the detector reported when it ran (-1 when it did not run).
    """

    index: int
    person: PersonDetection | None
    pose: BodyPose | None
    hands: tuple[BodyHand | None, BodyHand | None]
    detected: bool = False
    n_people: int = -1

    @property
    def hand_confidence(self) -> np.ndarray:
        """``(2,)`` the body model's confidence per hand, 0 where none."""
        return np.array([0.0 if h is None else h.confidence for h in self.hands])


@dataclass
class _Follow:
    """Mutable state of the person follower between frames."""

    box: np.ndarray | None = None
    person: PersonDetection | None = None
    since_detect: int = 10**9
    n_detect: int = field(default=0)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(4,)`` xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_from_pose(pose: BodyPose, margin: float, min_score: float,
                  image_size: tuple[int, int]) -> np.ndarray | None:  # fmt: skip
    """``(4,)`` xyxy box around the pose's keypoints scoring >= ``min_score``, grown by
    ``margin`` of its size per side and clipped to the image ``(width, height)``."""
    kp = np.asarray(pose.keypoints_px, dtype=float)
    ok = np.isfinite(kp).all(axis=1) & (np.nan_to_num(pose.scores) >= min_score)
    if ok.sum() < 3:
        return None
    lo, hi = kp[ok].min(axis=0), kp[ok].max(axis=0)
    grow = (hi - lo) * margin + 1.0
    w, h = image_size
    box = np.array([*(lo - grow), *(hi + grow)])
    box[[0, 2]] = np.clip(box[[0, 2]], 0, w - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, h - 1)
    return box if box[2] > box[0] and box[3] > box[1] else None


#: MediaPipe-33 indices of the hips and shoulders (left, right).
_POSE33_HIPS, _POSE33_SHOULDERS = (23, 24), (11, 12)


def follow_detection(pose: BodyPose, margin: float, min_score: float,
                     image_size: tuple[int, int]) -> PersonDetection | None:  # fmt: skip
    """The person "detection" for the next frame, made from this frame's body pose.

    For the 33-point MediaPipe body it carries the detector's keypoints (hip centre, and a point
    one body radius from it towards the shoulders), so the body model sees the same rotated
    region of interest as after a detection; otherwise it is the keypoints' box.
    """
    box = box_from_pose(pose, margin, min_score, image_size)
    if box is None:
        return None
    kp, sc = np.asarray(pose.keypoints_px, float), np.nan_to_num(pose.scores)
    if pose.layout == "mediapipe_pose33":
        idx = [*_POSE33_HIPS, *_POSE33_SHOULDERS]
        if np.isfinite(kp[idx]).all() and (sc[idx] >= min_score).all():
            hip = kp[list(_POSE33_HIPS)].mean(axis=0)
            up = kp[list(_POSE33_SHOULDERS)].mean(axis=0) - hip
            ok = np.isfinite(kp).all(axis=1) & (sc >= min_score)
            radius = float(np.max(np.linalg.norm(kp[ok] - hip, axis=1))) * (1.0 + margin)
            norm = float(np.hypot(*up))
            if norm > 1e-6 and radius > 1.0:
                point = hip + up / norm * radius
                return PersonDetection(box, 1.0, keypoints_px=np.stack([hip, point]))
    return PersonDetection(box, 1.0)


def _pick(dets: list[PersonDetection], prev: np.ndarray | None,
          cfg: DetectConfig) -> PersonDetection | None:  # fmt: skip
    if not dets:
        return None
    if prev is not None:
        overlaps = [iou(np.asarray(d.box_xyxy, float), prev) for d in dets]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= cfg.keep_iou:
            return dets[best]
    return max(dets, key=lambda d: d.score)


def _pose_ok(pose: BodyPose | None, cfg: DetectConfig) -> bool:
    return pose is not None and float(np.nanmean(np.nan_to_num(pose.scores))) >= cfg.min_body_score


def body_step(image: np.ndarray, detector: PersonDetector, body: BodyPoseEstimator,
              state: _Follow, cfg: DetectConfig, index: int = 0) -> BodyFrame:  # fmt: skip
    """Person and body pose on one RGB frame, updating the follower ``state``."""
    size = (image.shape[1], image.shape[0])
    person, pose, detected, n_people = None, None, False, -1
    if state.person is not None and state.since_detect < cfg.detect_every:
        person = state.person
        pose = body.estimate(image, person)
        state.since_detect += 1
    if not _pose_ok(pose, cfg):
        detected = True
        state.since_detect, state.n_detect = 1, state.n_detect + 1
        found = detector.detect(image)
        n_people = len(found)
        person = _pick(found, state.box, cfg)
        pose = body.estimate(image, person) if person is not None else None
    if not _pose_ok(pose, cfg):
        state.box = state.person = None
        return BodyFrame(index, person, None, (None, None), detected, n_people)
    state.person = follow_detection(pose, cfg.box_margin, cfg.min_body_score, size)
    state.box = None if state.person is None else state.person.box_xyxy
    hands = (hand_crops_from_body(pose, 0), hand_crops_from_body(pose, 1))
    return BodyFrame(index, person, pose, hands, detected, n_people)


def run_body(frames: Iterable[tuple[int, np.ndarray | None]], detector: PersonDetector,
             body: BodyPoseEstimator, cfg: DetectConfig = DetectConfig()
             ) -> Iterator[tuple[BodyFrame, np.ndarray | None]]:  # fmt: skip
    """Stream the body stage over ``(index, image)`` frames (image None: a missing frame).

    Yields:
        ``(BodyFrame, image)`` per frame, the image passed through for the later stages.
    """
    state = _Follow()
    for index, image in frames:
        if image is None:
            state.box = state.person = None  # a gap: the follower cannot trust the old box
            yield BodyFrame(index, None, None, (None, None)), None
            continue
        yield body_step(image, detector, body, state, cfg, index), image
