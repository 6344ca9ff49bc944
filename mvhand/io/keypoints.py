"""The 2D keypoint file (NPZ) and the 3D result files.

2D keypoint file, ``*.npz``:

- ``keypoints``: float ``(C, T, H, 21, 2)`` pixels, NaN = missing;
- ``scores``: float ``(C, T, H, 21)`` in [0, 1];
- ``cameras``: ``(C,)`` strings, the calibration's camera names;
- ``hands``: ``["left", "right"]``;
- ``fps`` (optional): scalar frame rate.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from mvhand.core.data import Keypoints2D
from mvhand.errors import InputError
from mvhand.io.atomic import save_npz_atomic

log = logging.getLogger(__name__)


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        raise InputError("is a folder; expected a 2D keypoint file (.npz)", path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(
                f"is a single array {getattr(data, 'shape', '')} (.npy), not a 2D keypoint file; "
                "convert it with `mvhand keypoints import --format array`", path)
        with data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable NPZ file ({exc})", path) from None


def load_keypoints(path: str | Path) -> Keypoints2D:
    """Read a 2D keypoint file, checking keys, shapes and values.

    Raises:
        InputError: naming the file and what is wrong.
    """
    path = Path(path)
    data = _open_npz(path)
    missing = [k for k in ("keypoints", "scores", "cameras") if k not in data]
    if missing:
        raise InputError(
            f"2D keypoint file lacks {', '.join(missing)} (has: {', '.join(data) or 'nothing'})",
            path,
        )
    kp = data["keypoints"]
    if kp.size == 0:
        raise InputError("the keypoint file is empty (no cameras or no frames)", path)
    hands = tuple(str(h) for h in data["hands"]) if "hands" in data else ("left", "right")
    fps = float(data["fps"]) if "fps" in data and np.ndim(data["fps"]) == 0 else None
    if not np.issubdtype(kp.dtype, np.number):
        raise InputError(f"'keypoints' must be numeric, got dtype {kp.dtype}", path)
    try:
        cameras = tuple(str(c) for c in np.atleast_1d(data["cameras"]))
        scores = np.asarray(data["scores"], dtype=float)
        _check_scores(kp.astype(float), scores, path)
        return Keypoints2D(kp.astype(float), scores, cameras, hands, fps)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc), path) from None


def _check_scores(kp: np.ndarray, scores: np.ndarray, path: Path) -> None:
    """Warn about joints with coordinates whose score makes them count as missing."""
    if scores.shape != kp.shape[:-1]:
        return  # Keypoints2D reports the shape mismatch
    has_xy = np.isfinite(kp).all(-1)
    bad = has_xy & ~(np.isfinite(scores) & (scores >= 0))
    if bad.any():
        log.warning("%s: %d 2D joints have coordinates but a NaN or negative score; they are "
                    "ignored (scores must be confidences in [0, 1])", path, int(bad.sum()))
    high = has_xy & np.isfinite(scores) & (scores > 1)
    if high.any():
        log.warning("%s: %d scores are above 1 and are clipped to 1 (scores must be "
                    "confidences in [0, 1])", path, int(high.sum()))


def save_keypoints(path: str | Path, kp: Keypoints2D) -> None:
    """Write a 2D keypoint file atomically."""
    arrays = {
        "keypoints": kp.keypoints_px.astype(np.float32),
        "scores": kp.scores.astype(np.float32),
        "cameras": np.array(kp.cameras),
        "hands": np.array(kp.hands),
    }
    if kp.fps is not None:
        arrays["fps"] = np.array(kp.fps)
    save_npz_atomic(path, **arrays)
