"""The 2D keypoint file (NPZ) and the 3D result files.

2D keypoint file, ``*.npz``:

- ``keypoints``: float ``(C, T, H, 21, 2)`` pixels, NaN = missing;
- ``scores``: float ``(C, T, H, 21)`` in [0, 1];
- ``cameras``: ``(C,)`` strings, the calibration's camera names;
- ``hands``: ``["left", "right"]``;
- ``fps`` (optional): scalar frame rate.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mvhand.core.data import Keypoints2D
from mvhand.errors import InputError
from mvhand.io.atomic import save_npz_atomic


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
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
        return Keypoints2D(kp.astype(float), data["scores"].astype(float), cameras, hands, fps)
    except ValueError as exc:
        raise InputError(str(exc), path) from None


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
