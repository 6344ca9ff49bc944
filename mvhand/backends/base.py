"""The Protocols every 2D model backend implements, and the data they exchange.

Images are ``(height, width, 3)`` uint8 **RGB** arrays. Coordinates are full-image pixels
(OpenCV convention). A backend never reads files or videos itself: the stages hand it frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, eq=False)
class PersonDetection:
    """One detected person.

    Attributes:
        box_xyxy: ``(4,)`` x0, y0, x1, y1 pixels.
        score: detector confidence in [0, 1].
        keypoints_px: ``(K, 2)`` optional detector keypoints in pixels that a matching body
            model uses to place its region of interest (MediaPipe: hip centre, a point whose
            distance from it is the body's radius, shoulder centre, upper-body point); None
            for plain boxes.
    """

    box_xyxy: np.ndarray
    score: float
    keypoints_px: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class BodyPose:
    """Whole-body 2D keypoints of one person.

    Attributes:
        keypoints_px: ``(K, 2)`` pixels, NaN where missing.
        scores: ``(K,)`` in [0, 1].
        layout: the keypoint layout, e.g. "mediapipe_pose33" or "coco_wholebody133".
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    layout: str


@dataclass(frozen=True, eq=False)
class HandCrop:
    """A rotated square crop around one hand, fingers pointing up in the crop.

    Attributes:
        center_px: ``(2,)`` crop centre in image pixels.
        size_px: side length of the square in image pixels.
        angle_rad: rotation of the crop's "up" direction from the image's up (-y), counter-
            clockwise as seen on screen; 0 means an axis-aligned crop.
    """

    center_px: np.ndarray
    size_px: float
    angle_rad: float


@dataclass(frozen=True, eq=False)
class HandKeypoints:
    """21 hand keypoints in mvhand's joint order.

    Attributes:
        keypoints_px: ``(21, 2)`` full-image pixels.
        scores: ``(21,)`` per-joint confidence in [0, 1].
        presence: the model's confidence that a hand is in the crop, in [0, 1].
        handedness: the model's probability that it is a right hand (the person's own right),
            None if the model does not say.
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    presence: float
    handedness: float | None = None


@dataclass(frozen=True, eq=False)
class HandDetection:
    """One hand found by a hand (palm) detector, before the hand model has seen it.

    Attributes:
        box_xyxy: ``(4,)`` x0, y0, x1, y1 pixels of the palm.
        score: detector confidence in [0, 1].
        keypoints_px: ``(K, 2)`` detector keypoints in pixels (MediaPipe's palm detector: 7,
            wrist first and the middle finger's MCP third, which give the hand's direction);
            None if the detector has none.
    """

    box_xyxy: np.ndarray
    score: float
    keypoints_px: np.ndarray | None = None


@runtime_checkable
class HandDetector(Protocol):
    """Finds hands (of anyone) in a frame, or in one square region of it, best first.

    ``region`` is a rotated square of the image (a :class:`HandCrop`) to look in, which lets a
    caller tile a large frame so that small hands stay large enough for the detector; None
    means the whole frame.
    """

    def detect(self, image_rgb: np.ndarray, region: HandCrop | None = None
               ) -> list[HandDetection]: ...  # fmt: skip


@runtime_checkable
class PersonDetector(Protocol):
    """Finds people in a frame, best first."""

    def detect(self, image_rgb: np.ndarray) -> list[PersonDetection]: ...


@runtime_checkable
class BodyPoseEstimator(Protocol):
    """Whole-body 2D pose of the person inside ``box`` (or the whole image if None)."""

    def estimate(self, image_rgb: np.ndarray, box: PersonDetection | None) -> BodyPose | None: ...


@runtime_checkable
class HandKeypointEstimator(Protocol):
    """21 hand keypoints from a rotated crop of the full image."""

    def estimate(self, image_rgb: np.ndarray, crop: HandCrop) -> HandKeypoints: ...
