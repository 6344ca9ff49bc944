"""The hand-first path: hands found by a palm detector, without a body.

The paper's near-field cameras often see hands and forearms only; the body stage then finds
no person and the body-seeded tracker has nothing to start from. Here a hand (palm) detector
(:class:`~mvhand.backends.base.HandDetector`) looks for hands in the frame, cut into
overlapping square tiles so that a 100 px hand in a 1080x1920 frame is not shrunk to a few
pixels in the detector's 192 px input; each detection becomes a rotated crop
(:func:`detection_crop`, MediaPipe's palm-to-hand rule: fingers up, 2.6 x the palm box,
shifted half a box towards the fingers), the hand model runs on it, and the hands it
confirms are returned, all of them (:func:`run_palm`; the multi-person path uses the list as
it is). :func:`assign_hands` then gives the single-person tracker one hand per side, by the
hand model's handedness, as :class:`~mvhand.core.crops.BodyHand` seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.backends.base import HandCrop, HandDetection, HandDetector, HandKeypointEstimator
from mvhand.backends.base import HandKeypoints as _HandKeypoints
from mvhand.config import param
from mvhand.core.crops import BodyHand, angle_from_direction, crop_from_hand_keypoints

#: MediaPipe's palm detection to hand ROI: crop side over the palm box, shift towards the
#: fingers in box heights.
PALM_CROP_SCALE, PALM_CROP_SHIFT = 2.6, 0.5


@dataclass(frozen=True)
class PalmConfig:
    """The hand-first path (the ``[palm]`` section)."""

    mode: str = param(
        "fallback", "when the palm detector runs: 'off'; 'fallback' on frames where the body "
        "stage gave no hand (no body, or a body without hands); 'always' on every frame (its "
        "hands fill the hand slots the body left empty)",
        choices=("off", "fallback", "always"))  # fmt: skip
    every: int = param(
        5, "run it on every N-th eligible frame; the tracker carries the hands in between",
        ge=1)
    tile_px: int = param(
        640, "side of the square tiles the frame is cut into for the detector, pixels; 0 = the "
        "whole frame in one go (fine for hands larger than about a tenth of the frame)", ge=0)
    overlap: float = param(0.25, "overlap of neighbouring tiles, fraction of a tile", ge=0.0,
                           le=0.9)  # fmt: skip
    min_presence: float = param(
        0.3, "the hand model's presence on a palm crop needed to accept the hand", ge=0.0,
        le=1.0)
    max_hands: int = param(8, "at most this many hands per frame, best first", ge=1)
    nms_iou: float = param(0.3, "palm boxes overlapping more than this are one hand", ge=0.0,
                           le=1.0)  # fmt: skip


@dataclass(frozen=True, eq=False)
class PalmHand:
    """A hand found by the hand-first path.

    Attributes:
        detection: the palm detection.
        crop: the crop the hand model confirmed it on (re-cropped from its keypoints).
        hand: the hand model's keypoints, presence and handedness on that crop.
    """

    detection: HandDetection
    crop: HandCrop
    hand: _HandKeypoints


def tile_regions(size_px: tuple[int, int], tile_px: int, overlap: float) -> list[HandCrop]:
    """Upright square tiles covering a ``(width, height)`` frame (one square if tile_px is 0
    or the frame is smaller than a tile)."""
    w, h = size_px
    if tile_px <= 0 or tile_px >= max(w, h):
        return [HandCrop(np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(w, h)), 0.0)]
    side = min(tile_px, min(w, h))
    step = max(1.0, side * (1.0 - overlap))

    def starts(n: int) -> np.ndarray:
        k = int(np.ceil(max(n - side, 0) / step)) + 1
        return np.linspace(0.0, max(n - side, 0), k)

    return [HandCrop(np.array([x + (side - 1) / 2.0, y + (side - 1) / 2.0]), float(side), 0.0)
            for y in starts(h) for x in starts(w)]  # fmt: skip


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def merge_detections(dets: list[HandDetection], iou: float) -> list[HandDetection]:
    """Best first, dropping any detection that overlaps a better one by more than ``iou``
    (the same palm seen in two overlapping tiles)."""
    kept: list[HandDetection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_iou(np.asarray(d.box_xyxy), np.asarray(k.box_xyxy)) <= iou for k in kept):
            kept.append(d)
    return kept


def detection_crop(det: HandDetection) -> HandCrop:
    """The rotated hand crop of a palm detection (fingers up; MediaPipe's rule).

    Example:
        >>> d = HandDetection(np.array([90.0, 90, 110, 110]), 0.9,
        ...                   np.array([[100.0, 110], [0, 0], [100, 90]] + [[0, 0]] * 4))
        >>> c = detection_crop(d)
        >>> c.center_px.tolist(), round(c.size_px, 1), round(c.angle_rad, 3)
        ([100.0, 90.0], 52.0, 0.0)
    """
    box = np.asarray(det.box_xyxy, dtype=float)
    long_side = float(max(box[2] - box[0], box[3] - box[1]))
    center = (box[:2] + box[2:]) / 2.0
    kp = det.keypoints_px
    if kp is None or not np.isfinite(kp[[0, 2]]).all() or np.allclose(kp[2], kp[0]):
        return HandCrop(center, PALM_CROP_SCALE * long_side, 0.0)
    up = kp[2] - kp[0]
    up = up / np.linalg.norm(up)
    return HandCrop(center + PALM_CROP_SHIFT * long_side * up, PALM_CROP_SCALE * long_side,
                    angle_from_direction(up))  # fmt: skip


def _confirm(image_rgb: np.ndarray, crop: HandCrop, hand_model: HandKeypointEstimator,
             min_presence: float) -> tuple[HandCrop, _HandKeypoints]:
    """The hand model on the palm's crop; if it sees no hand there, on the crop turned by a
    quarter and a half turn (the detector's wrist and MCP keypoints on small, far hands can
    point the crop sideways), keeping the first that it accepts, else the best."""
    best: tuple[HandCrop, _HandKeypoints] | None = None
    for turn in (0.0, np.pi / 2, -np.pi / 2, np.pi):
        c = HandCrop(crop.center_px, crop.size_px, crop.angle_rad + turn)
        res = hand_model.estimate(image_rgb, c)
        if best is None or res.presence > best[1].presence:
            best = (c, res)
        if res.presence >= min_presence:
            break
    return best


def run_palm(image_rgb: np.ndarray, detector: HandDetector, hand_model: HandKeypointEstimator,
             cfg: PalmConfig = PalmConfig()) -> list[PalmHand]:  # fmt: skip
    """All hands the palm detector finds in one frame and the hand model confirms, best
    first (every person's: no left/right or person choice is made here)."""
    h, w = image_rgb.shape[:2]
    dets: list[HandDetection] = []
    for region in tile_regions((w, h), cfg.tile_px, cfg.overlap):
        dets += detector.detect(image_rgb, region)
    out: list[PalmHand] = []
    for det in merge_detections(dets, cfg.nms_iou):
        crop, res = _confirm(image_rgb, detection_crop(det), hand_model, cfg.min_presence)
        if res.presence < cfg.min_presence:
            continue
        better = crop_from_hand_keypoints(res.keypoints_px, res.scores)
        if better is not None:  # MediaPipe's landmarks-to-ROI step: re-crop, keep if better
            again = hand_model.estimate(image_rgb, better)
            if again.presence >= res.presence:
                crop, res = better, again
        out.append(PalmHand(det, crop, res))
        if len(out) >= cfg.max_hands:
            break
    return sorted(out, key=lambda p: -p.hand.presence)


def assign_hands(hands: list[PalmHand]) -> tuple[BodyHand | None, BodyHand | None]:
    """One hand per side for the single-person tracker: the most present hand the model calls
    left, and the one it calls right; a second hand of the same side takes the other side
    only if the model is unsure of it (handedness within 0.3 of 0.5)."""
    slots: list[BodyHand | None] = [None, None]
    for p in hands:
        right = p.hand.handedness if p.hand.handedness is not None else 0.5
        side = 1 if right >= 0.5 else 0
        if slots[side] is not None and abs(right - 0.5) < 0.3:
            side = 1 - side
        if slots[side] is None:
            slots[side] = BodyHand(p.crop, float(p.hand.presence), p.hand.keypoints_px.copy(),
                                   p.hand.scores.copy())  # fmt: skip
    return slots[0], slots[1]
