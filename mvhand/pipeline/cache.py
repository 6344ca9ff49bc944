"""Per-camera cache of 2D results, so an interrupted run resumes without redoing cameras.

One NPZ per camera under ``OUT/cache/<camera>.npz``, written atomically (a Ctrl-C during the
write leaves the old file or none). It holds the :class:`Camera2D` arrays and a key: a hash of
the settings the 2D results depend on (backend, detect, tracking, hands2d), the video's
identity (:func:`file_identity`: resolved path, size, modification time and a SHA-256 of its
first and last MiB, so a re-encoded or replaced video of the same size is noticed), and the
frame range. A file whose key differs is ignored and
recomputed; a damaged file likewise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from mvhand.core.people import Detections2D
from mvhand.io.atomic import save_npz_atomic
from mvhand.pipeline.camera2d import Camera2D

log = logging.getLogger(__name__)

#: Bump when the cached arrays' meaning changes.
CACHE_VERSION = 4
#: Bytes hashed at each end of a video for its identity.
_IDENTITY_BYTES = 1 << 20


def file_identity(path: str | Path) -> dict:
    """Path, size, modification time and a content hash of the first and last MiB."""
    path = Path(path).resolve()
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_IDENTITY_BYTES))
        if st.st_size > _IDENTITY_BYTES:
            fh.seek(max(st.st_size - _IDENTITY_BYTES, _IDENTITY_BYTES))
            h.update(fh.read(_IDENTITY_BYTES))
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256_ends": h.hexdigest()}


def cache_key(video: Path, frames: range, frontend: dict) -> str:
    """Hex digest identifying one camera's 2D result."""
    doc = {
        "version": CACHE_VERSION,
        "video": file_identity(video),
        "frames": [frames.start, frames.stop, frames.step],
        "settings": frontend,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_path(out_dir: Path, camera: str) -> Path:
    from mvhand.io.runfolder import RunFolder

    return RunFolder(out_dir).cache_dir / f"{camera}.npz"


def save_camera(path: Path, result: Camera2D, key: str) -> None:
    """Write one camera's result atomically."""
    arrays = {name: getattr(result, name) for name in Camera2D.ARRAYS}
    if result.detections is not None:  # several people: the camera's every-person rows
        arrays.update({f"det_{k}": getattr(result.detections, k) for k in Detections2D.ARRAYS})
    meta = {"camera": result.camera, "timings_s": result.timings_s, "info": result.info}
    save_npz_atomic(path, key=np.array(key), meta=np.array(json.dumps(meta)), **arrays)


def load_camera(path: Path, key: str) -> Camera2D | None:
    """The cached result if ``path`` exists and holds ``key``; else None."""
    if not Path(path).is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                log.info("%s: cached 2D result is for other settings or video; recomputing", path)
                return None
            meta = json.loads(str(data["meta"]))
            arrays = {name: data[name] for name in Camera2D.ARRAYS}
            if "det_frame" in data.files:
                arrays["detections"] = Detections2D(
                    *(data[f"det_{k}"] for k in Detections2D.ARRAYS), cameras=(meta["camera"],),
                    n_frames=len(arrays["frames"]))  # fmt: skip
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s: unreadable cache file (%s); recomputing", path, exc)
        return None
    return Camera2D(camera=meta["camera"], timings_s=meta["timings_s"], info=meta["info"],
                    **arrays)  # fmt: skip
