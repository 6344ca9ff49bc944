"""Hand regions kept from a streamed video, so the tracker can go backward without re-decoding.

The paper's tracker runs forward and backward from each seed frame. Seeking backward in a
compressed video decodes from the last keyframe each time (230 ms for frame 90 of a Pose2Sim
demo video, against 3.5-8 ms per frame read in order), and holding whole frames costs 6 MB
each at 1080x1920. So while the video streams through the body stage, only a square region
around each hand is kept per frame, at native resolution: centred on the body model's hand
crop (or, where the body lost the hand, on the last place it was seen), ``scale`` times the
crop's side (about 110 kB per hand and frame for the Pose2Sim demo's 30-60 px hands).

The regions are kept on disk, not in memory: appended to an anonymous temporary file (removed
by the operating system when it is closed or the process dies) with a small in-memory index,
and read back with one ``pread`` when the tracker needs them (from the page cache, about as fast
as memory). So peak memory does not grow with the video's length (measured: issue 9's closing
note); the disk holds frames x hands x region size for the duration of one camera's tracking.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

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
    """Per processed frame and hand, the region the hand model may need later (kept on disk).

    Args:
        n_frames: processed frames T.
        scale: region side over the body hand crop's side.
        min_px, max_px: bounds on the region side (pixels).
        spill_dir: folder for the temporary file (None: the system's temporary folder).
        n_slots: hand slots per frame (2: one person's left and right; several people use
            two per followed person).
    """

    def __init__(self, n_frames: int, scale: float = 2.5, min_px: int = 160,
                 max_px: int = 640, spill_dir: str | Path | None = None,
                 n_slots: int = 2) -> None:  # fmt: skip
        # per (t, slot): byte offset in the file, height, width, x0, y0; offset -1 = none kept
        self._index = np.full((n_frames, n_slots, 5), -1, dtype=np.int64)
        self._file = tempfile.TemporaryFile(dir=spill_dir, prefix="mvhand-patches-")
        self._end = 0
        self.scale, self.min_px, self.max_px = scale, min_px, max_px
        self._last: list[tuple[np.ndarray, float] | None] = [None] * n_slots

    @property
    def nbytes(self) -> int:
        """Bytes of kept regions (on disk)."""
        return self._end

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HandPatches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, t: int, image: np.ndarray, crops: tuple[HandCrop | None, ...]) -> None:
        """Keep the regions of frame position ``t`` around ``crops``, one per slot (None: where
        that slot's hand was last seen)."""
        for h, crop in enumerate(crops):
            if crop is not None:
                self._last[h] = (np.asarray(crop.center_px, float), float(crop.size_px))
            if self._last[h] is None:
                continue
            center, size = self._last[h]
            side = int(np.clip(self.scale * size, self.min_px, self.max_px))
            patch = _cut(image, center, side)
            if patch is not None:
                self._store(t, h, patch)

    def _store(self, t: int, h: int, patch: Patch) -> None:
        data = np.ascontiguousarray(patch.pixels, dtype=np.uint8)
        os.pwrite(self._file.fileno(), data.tobytes(), self._end)
        ph, pw = data.shape[:2]
        x0, y0 = (int(v) for v in patch.offset_px)
        self._index[t, h] = (self._end, ph, pw, x0, y0)
        self._end += data.nbytes

    def patch(self, t: int, h: int) -> Patch | None:
        """The region kept for frame position ``t`` and hand ``h``, or None."""
        off, ph, pw, x0, y0 = (int(v) for v in self._index[t, h])
        if off < 0:
            return None
        raw = os.pread(self._file.fileno(), ph * pw * 3, off)
        pixels = np.frombuffer(raw, dtype=np.uint8).reshape(ph, pw, 3)
        return Patch(np.array([x0, y0], dtype=float), pixels)

    def estimate(self, model: HandKeypointEstimator, t: int,
                 crop: HandCrop) -> HandKeypoints | None:  # fmt: skip
        """Run ``model`` on ``crop`` of frame position ``t`` using the nearest kept region.

        Returns:
            keypoints in full-image pixels, or None when no region of that frame was kept.
        """
        cands = [p for p in (self.patch(t, h) for h in range(self._index.shape[1]))
                 if p is not None]  # fmt: skip
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
