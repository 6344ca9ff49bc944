"""Rotated square hand crops: from body keypoints, from hand keypoints, and their affine maps.

A :class:`~mvhand.backends.base.HandCrop` is a square of side ``size_px`` centred on
``center_px`` and turned by ``angle_rad`` so that the fingers point up in the crop. The angle is
measured from the image's up direction (-y) counter-clockwise as seen on screen, so the crop's
up direction in image coordinates is ``(-sin a, -cos a)`` and its right direction
``(cos a, -sin a)`` (a proper rotation: a crop is never mirrored).

Pixel convention (OpenCV): pixel centres sit at integer coordinates in the image and in the
crop, so the crop centre maps to ``((out - 1) / 2, (out - 1) / 2)`` and
``cv2.warpAffine(image, crop_affine(crop, out), (out, out))`` samples exactly the crop.

Sizing. A hand crop is ``scale`` times the hand's extent:

- from 21 hand keypoints (the tracker), the extent is the larger side of the keypoints'
  bounding box in the rotated frame; ``HAND_KEYPOINT_SCALE`` = 1.8. Measured with the
  MediaPipe hand model: from annotated keypoints (FreiHAND, InterHand2.6M crops) 1.5-1.7 are
  best and 1.8 within about 1 px; re-cropping from the model's own keypoints on small, blurred
  Pose2Sim hands keeps 96 % of hands at 1.7-2.0 but 88 % at 1.5 (predicted hands come out
  slightly small, so the tracker needs the larger margin);
- from the four hand points of the MediaPipe body (wrist, index, pinky, thumb), the extent is
  the palm length (wrist to the middle of the index and pinky points) or the hand's width,
  whichever is larger; the crop is ``BODY33_SCALE`` = 3.5 of those, centred
  ``BODY33_CENTER_SHIFT`` = 0.75 of them from the wrist along the fingers. Chosen by the hand
  model's mean presence on 40 body-derived crops (Pose2Sim frames and messi5): shift 0.5-1.0 and
  scale 3.0-4.0 are within 0.05 of each other (0.63), larger shifts lose the wrist and score
  lower (MediaPipe's own pose-to-hand ROI uses about 2.6 palms and re-crops with a second
  model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.backends.base import BodyPose, HandCrop, PersonDetection
from mvhand.core.skeleton import COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT, N_JOINTS

#: Crop side over the hand keypoints' extent (tracker crops from the previous frame's hand).
HAND_KEYPOINT_SCALE = 1.8
#: Crop side over the palm length for crops from the 33-point MediaPipe body.
BODY33_SCALE = 3.5
#: Crop centre offset from the wrist along the fingers, in palm lengths (33-point body).
BODY33_CENTER_SHIFT = 0.75

#: MediaPipe pose33 hand points (the person's own left/right): wrist, pinky, index, thumb.
POSE33_HAND_POINTS: dict[int, tuple[int, int, int, int]] = {0: (15, 17, 19, 21),
                                                            1: (16, 18, 20, 22)}  # fmt: skip

LAYOUTS: tuple[str, ...] = ("mediapipe_pose33", "coco_wholebody133")


@dataclass(frozen=True, eq=False)
class BodyHand:
    """A hand as seen by the whole-body model.

    Attributes:
        crop: the crop to run the hand model on.
        confidence: mean body score of the hand's joints, in [0, 1] (the paper's tracker seed
            criterion compares it with 0.3).
        keypoints_px: ``(21, 2)`` the body model's coarse hand joints in mvhand's order, NaN
            where the layout has none (the 33-point body gives only the wrist).
        scores: ``(21,)`` their scores, 0 where missing.
    """

    crop: HandCrop
    confidence: float
    keypoints_px: np.ndarray
    scores: np.ndarray


def _up_vector(angle_rad: float) -> np.ndarray:
    return np.array([-np.sin(angle_rad), -np.cos(angle_rad)])


def angle_from_direction(direction: np.ndarray) -> float:
    """Crop angle that makes ``direction`` (image px, ``(2,)``) point up in the crop.

    Example:
        >>> round(angle_from_direction(np.array([-1.0, 0.0])), 6)  # pointing left: +90 deg
        1.570796
    """
    dx, dy = float(direction[0]), float(direction[1])
    return float(np.arctan2(-dx, -dy))


def crop_affine(crop: HandCrop, out_size: int = 224) -> np.ndarray:
    """The ``(2, 3)`` matrix taking image pixels to crop pixels (for ``cv2.warpAffine``).

    Args:
        crop: the rotated square.
        out_size: side of the crop image in pixels.

    Returns:
        ``A`` with ``crop_xy = A[:, :2] @ image_xy + A[:, 2]``.
    """
    a = float(crop.angle_rad)
    s = out_size / float(crop.size_px)
    rows = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s  # right; down
    half = (out_size - 1) / 2.0
    t = np.array([half, half]) - rows @ np.asarray(crop.center_px, dtype=float)
    return np.concatenate([rows, t[:, None]], axis=1)


def crop_affine_inverse(crop: HandCrop, out_size: int = 224) -> np.ndarray:
    """The ``(2, 3)`` matrix taking crop pixels back to image pixels (inverse of
    :func:`crop_affine`)."""
    a = float(crop.angle_rad)
    inv_s = float(crop.size_px) / out_size
    cols = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * inv_s
    half = (out_size - 1) / 2.0
    t = np.asarray(crop.center_px, dtype=float) - cols @ np.array([half, half])
    return np.concatenate([cols, t[:, None]], axis=1)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def image_to_crop(points_px: np.ndarray, crop: HandCrop, out_size: int = 224) -> np.ndarray:
    """Image pixels ``(..., 2)`` to crop pixels ``(..., 2)``; NaN stays NaN."""
    return _apply(crop_affine(crop, out_size), points_px)


def crop_to_image(points_crop: np.ndarray, crop: HandCrop, out_size: int = 224) -> np.ndarray:
    """Crop pixels ``(..., 2)`` to image pixels ``(..., 2)``; NaN stays NaN.

    Example:
        >>> c = HandCrop(np.array([100.0, 50.0]), 112.0, 0.0)
        >>> crop_to_image(np.array([111.5, 111.5]), c).round(6).tolist()
        [100.0, 50.0]
    """
    return _apply(crop_affine_inverse(crop, out_size), points_crop)


def crop_from_points(points_px: np.ndarray, angle_rad: float, scale: float) -> HandCrop:
    """Square crop at ``angle_rad`` around the finite rows of ``points_px`` ``(N, 2)``.

    The centre is the middle of the points' bounding box in the rotated frame, the side
    ``scale`` times its larger extent (at least 1 px).
    """
    pts = np.asarray(points_px, dtype=float)
    pts = pts[np.isfinite(pts).all(axis=1)]
    up = _up_vector(angle_rad)
    right = np.array([np.cos(angle_rad), -np.sin(angle_rad)])
    local = np.stack([pts @ right, pts @ up], axis=1)
    lo, hi = local.min(axis=0), local.max(axis=0)
    mid = (lo + hi) / 2.0
    center = mid[0] * right + mid[1] * up
    size = max(float(np.max(hi - lo)) * scale, 1.0)
    return HandCrop(center_px=center, size_px=size, angle_rad=angle_rad)


def crop_from_hand_keypoints(keypoints_px: np.ndarray, scores: np.ndarray | None = None,
                             scale: float = HAND_KEYPOINT_SCALE,
                             min_score: float = 0.0) -> HandCrop | None:  # fmt: skip
    """Crop for the next frame from 21 hand keypoints (e.g. the previous frame's).

    The fingers point up: the angle follows wrist -> middle MCP, or, if either is missing,
    wrist (else the joints' centroid) -> the mean of the available MCPs and fingertips.

    Args:
        keypoints_px: ``(21, 2)`` image pixels, NaN where missing.
        scores: ``(21,)`` optional; joints with ``score <= min_score`` are ignored.
        scale: crop side over the keypoints' extent in the rotated frame.
        min_score: see ``scores``.

    Returns:
        The crop, or None when fewer than 3 usable joints remain.
    """
    kp = np.array(keypoints_px, dtype=float).reshape(N_JOINTS, 2)
    ok = np.isfinite(kp).all(axis=1)
    if scores is not None:
        ok &= np.asarray(scores, dtype=float).reshape(N_JOINTS) > min_score
    if ok.sum() < 3:
        return None
    kp[~ok] = np.nan
    if ok[0] and ok[9]:
        direction = kp[9] - kp[0]
    else:
        base = kp[0] if ok[0] else np.nanmean(kp, axis=0)
        distal = [j for j in (5, 9, 13, 17, 8, 12, 16, 20) if ok[j]]
        if not distal:
            return None
        direction = kp[distal].mean(axis=0) - base
    if not np.any(direction):
        direction = np.array([0.0, -1.0])
    return crop_from_points(kp, angle_from_direction(direction), scale)


def hand_crops_from_body(pose: BodyPose, hand: int, scale: float | None = None) -> BodyHand | None:
    """The hand crop of one hand from a whole-body pose.

    Left/right is the person's own (the body model's), never the image side.

    Args:
        pose: layout "mediapipe_pose33" or "coco_wholebody133".
        hand: 0 left, 1 right.
        scale: crop side over the hand's extent; None uses the layout's measured default
            (``BODY33_SCALE`` or ``HAND_KEYPOINT_SCALE``).

    Returns:
        The crop with its confidence, or None when the needed joints are missing.

    Raises:
        ValueError: on an unknown layout or hand index.
    """
    if hand not in (0, 1):
        raise ValueError(f"hand must be 0 (left) or 1 (right), got {hand}")
    kp = np.asarray(pose.keypoints_px, dtype=float)
    sc = np.nan_to_num(np.asarray(pose.scores, dtype=float), nan=0.0)
    if pose.layout == "coco_wholebody133":
        idx = (COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT)[hand]
        hand_kp, hand_sc = kp[idx], sc[idx]
        crop = crop_from_hand_keypoints(hand_kp, hand_sc, HAND_KEYPOINT_SCALE if scale is None
                                        else scale)  # fmt: skip
        if crop is None:
            return None
        missing = ~np.isfinite(hand_kp).all(axis=1)
        hand_sc = np.where(missing, 0.0, hand_sc)
        return BodyHand(crop, float(hand_sc.mean()), np.where(missing[:, None], np.nan, hand_kp),
                        hand_sc)  # fmt: skip
    if pose.layout == "mediapipe_pose33":
        return _hand_from_pose33(kp, sc, hand, BODY33_SCALE if scale is None else scale)
    raise ValueError(f"unknown body layout {pose.layout!r}; known: {list(LAYOUTS)}")


def _hand_from_pose33(kp: np.ndarray, sc: np.ndarray, hand: int, scale: float) -> BodyHand | None:
    wrist_i, pinky_i, index_i, thumb_i = POSE33_HAND_POINTS[hand]
    wrist, pinky, index, thumb = kp[wrist_i], kp[pinky_i], kp[index_i], kp[thumb_i]
    if not np.isfinite(np.stack([wrist, pinky, index])).all():
        return None
    knuckles = (pinky + index) / 2.0
    direction = knuckles - wrist
    palm = float(np.hypot(*direction))
    width = float(np.hypot(*(index - pinky)))
    thumb_len = float(np.hypot(*(thumb - wrist))) if np.isfinite(thumb).all() else 0.0
    extent = max(palm, width, 0.8 * thumb_len, 1.0)
    if palm < 1e-6:
        direction = np.array([0.0, -1.0])
        palm = 1e-6
    center = wrist + direction / palm * BODY33_CENTER_SHIFT * extent
    crop = HandCrop(center_px=center, size_px=scale * extent,
                    angle_rad=angle_from_direction(direction))  # fmt: skip
    joint_scores = sc[[wrist_i, pinky_i, index_i, thumb_i]]
    hand_kp = np.full((N_JOINTS, 2), np.nan)
    hand_sc = np.zeros(N_JOINTS)
    hand_kp[0], hand_sc[0] = wrist, sc[wrist_i]
    return BodyHand(crop, float(np.mean(joint_scores)), hand_kp, hand_sc)


def person_from_body(pose: BodyPose, min_score: float = 0.5) -> PersonDetection | None:
    """A person box around a body pose's confident keypoints, e.g. to give the body model the
    previous frame's person when the detector misses (a far or face-hidden person).

    Args:
        pose: any layout.
        min_score: keypoints scoring at or below this are ignored.

    Returns:
        The tight box of the kept keypoints with score = their mean score (body models add
        their own margin), or None with fewer than 3 kept keypoints.
    """
    kp = np.asarray(pose.keypoints_px, dtype=float)
    sc = np.nan_to_num(np.asarray(pose.scores, dtype=float), nan=0.0)
    keep = np.isfinite(kp).all(axis=1) & (sc > min_score)
    if keep.sum() < 3:
        return None
    pts = kp[keep]
    box = np.concatenate([pts.min(axis=0), pts.max(axis=0)])
    return PersonDetection(box_xyxy=box, score=float(sc[keep].mean()))
