"""Hand regions kept from a streamed video, so the tracker can go backward without re-decoding.

The paper's tracker runs forward and backward from each seed frame. Seeking backward in a
compressed video decodes from the last keyframe each time (230 ms for frame 90 of a Pose2Sim
demo video, against 3.5-8 ms per frame read in order), and holding whole frames costs 6 MB
each at 1080x1920. So while the video streams through the body stage, only a square region
around each hand is kept per frame, at native resolution: centred on the body model's hand
crop (or, where the body lost the hand, on the last place it was seen), ``scale`` times the
crop's side. Memory grows with frames x hands x region size (about 110 kB per hand and frame
for the Pose2Sim demo's 30-60 px hands), never with the video's frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.backends.base import HandCrop, HandKeypointEstimator, HandKeypoints


@dataclass(frozen=True, eq=False)
class Patch:
    """A square region of one frame.

    Attributes:
        offset_px: ``(2,)`` image position (x, y) of the patch's top-left pixel.
        pixels: ``(s, s, 3)`` uint8 RGB (may be smaller at the image border).
    """

    offset_px: np.ndarray
    pixels: np.ndarray

    @property
    def center_px(self) -> np.ndarray:
        h, w = self.pixels.shape[:2]
        return self.offset_px + np.array([(w - 1) / 2, (h - 1) / 2])


class HandPatches:
    """Per processed frame and hand, the region the hand model may need later.

    Args:
        n_frames: processed frames T.
        scale: region side over the body hand crop's side.
        min_px, max_px: bounds on the region side (pixels).
    """

    def __init__(self, n_frames: int, scale: float = 2.5, min_px: int = 160,
                 max_px: int = 640) -> None:  # fmt: skip
        self.patches: list[list[Patch | None]] = [[None, None] for _ in range(n_frames)]
        self.scale, self.min_px, self.max_px = scale, min_px, max_px
        self._last: list[tuple[np.ndarray, float] | None] = [None, None]

    @property
    def nbytes(self) -> int:
        return sum(p.pixels.nbytes for row in self.patches for p in row if p is not None)

    def add(self, t: int, image: np.ndarray, crops: tuple[HandCrop | None, HandCrop | None]
            ) -> None:  # fmt: skip
        """Keep the regions of frame position ``t`` around ``crops`` (None: last known)."""
        for h, crop in enumerate(crops):
            if crop is not None:
                self._last[h] = (np.asarray(crop.center_px, float), float(crop.size_px))
            if self._last[h] is None:
                continue
            center, size = self._last[h]
            side = int(np.clip(self.scale * size, self.min_px, self.max_px))
            self.patches[t][h] = _cut(image, center, side)

    def estimate(self, model: HandKeypointEstimator, t: int,
                 crop: HandCrop) -> HandKeypoints | None:  # fmt: skip
        """Run ``model`` on ``crop`` of frame position ``t`` using the nearest kept region.

        Returns:
            keypoints in full-image pixels, or None when no region of that frame was kept.
        """
        cands = [p for p in self.patches[t] if p is not None]
        if not cands:
            return None
        center = np.asarray(crop.center_px, dtype=float)
        patch = min(cands, key=lambda p: float(np.hypot(*(p.center_px - center))))
        local = HandCrop(center - patch.offset_px, crop.size_px, crop.angle_rad)
        res = model.estimate(patch.pixels, local)
        return HandKeypoints(np.asarray(res.keypoints_px, float) + patch.offset_px,
                             np.asarray(res.scores, float), float(res.presence))  # fmt: skip


def _cut(image: np.ndarray, center: np.ndarray, side: int) -> Patch | None:
    h, w = image.shape[:2]
    x0 = int(round(center[0] - side / 2))
    y0 = int(round(center[1] - side / 2))
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + side, w), min(y0 + side, h)
    if xb <= xa or yb <= ya:
        return None
    return Patch(np.array([xa, ya], dtype=float), np.ascontiguousarray(image[ya:yb, xa:xb]))
