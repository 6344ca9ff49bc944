"""Calibration files: anipose TOML (read and write); converters live in ``calib_convert``.

The anipose TOML layout, one table per camera plus ``[metadata]``::

    [cam_0]
    name = "cam_0"
    size = [1920, 1080]           # width, height (px)
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]   # fisheye: [k1, k2, k3, k4] and fisheye = true
    rotation = [rx, ry, rz]       # Rodrigues vector, world to camera
    translation = [tx, ty, tz]    # world to camera, in the file's units

    [metadata]
    units = "m"                   # mvhand's addition; anipose files without it need --units

Cameras keep the file's order (aniposelib sorts table names as strings, so ``cam_10`` would
come before ``cam_2``; mvhand does not).
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Camera, Rig
from mvhand.errors import CalibrationError, MvhandError
from mvhand.io.atomic import write_text_atomic

log = logging.getLogger(__name__)


def _camera_from_table(key: str, table: Any, path: Path) -> Camera:
    if not isinstance(table, dict):
        raise CalibrationError(f"[{key}] must be a table", path)
    missing = [k for k in ("size", "matrix", "rotation", "translation") if k not in table]
    if missing:
        raise CalibrationError(f"camera [{key}] lacks the key(s) {', '.join(missing)}", path)
    fisheye = bool(table.get("fisheye", False))
    name = str(table.get("name", key))
    try:
        return Camera.from_rvec(
            name,
            tuple(int(v) for v in table["size"]),
            table["matrix"],
            table.get("distortions", []),
            table["rotation"],
            table["translation"],
            model="fisheye" if fisheye else "pinhole",
        )
    except CalibrationError as exc:
        raise CalibrationError(f"[{key}]: {exc}", path) from None
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"camera [{key}] has a malformed value ({exc})", path) from None


def load_calibration(path: str | Path, units: str | None = None) -> Rig:
    """Read an anipose-style TOML calibration into a :class:`Rig`.

    Args:
        path: the TOML file.
        units: units of the file's translations when its ``[metadata]`` has no ``units``;
            defaults to metres. If both are given and differ, the file's units are converted
            to ``units``.

    Raises:
        CalibrationError: the file is missing, not TOML, or a camera is malformed.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError("calibration file not found", path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"not a valid TOML calibration ({exc})", path) from None
    meta = data.get("metadata", {})
    file_units = meta.get("units") if isinstance(meta, dict) else None
    if file_units is not None and file_units not in UNIT_SCALE_M:
        raise CalibrationError(f"[metadata] units must be one of {list(UNIT_SCALE_M)}", path)
    cams = [_camera_from_table(k, v, path) for k, v in data.items() if k != "metadata"]
    if not cams:
        raise CalibrationError("no camera tables found", path)
    try:
        rig = Rig(tuple(cams), file_units or units or "m")
    except MvhandError as exc:
        raise CalibrationError(str(exc), path) from None
    if file_units is None and units is None:
        _warn_if_units_look_wrong(rig, path)
    if units is not None and units != rig.units:
        rig = rig.to_units(units)
    return rig


def _warn_if_units_look_wrong(rig: Rig, path: Path) -> None:
    """Warn when a file without units, read as metres, has cameras implausibly far apart."""
    centers = np.array([c.center_world for c in rig.cameras])
    spread = float(np.max(np.linalg.norm(centers - centers.mean(axis=0), axis=1)))
    if spread > 50.0:
        log.warning("%s: the file does not state its units and is read as metres, but its "
                    "cameras lie up to %.0f units apart; if it is in millimetres, pass "
                    "--units mm (or add units = \"mm\" to its [metadata])", path, spread)


def calibration_to_toml(rig: Rig, metadata: dict[str, Any] | None = None) -> str:
    """The rig as anipose TOML text, cameras in rig order, with ``[metadata] units``."""
    import tomli_w

    doc: dict[str, Any] = {}
    # zero-padded table names, so that readers sorting them as strings keep the order
    width = len(str(len(rig) - 1))
    for i, cam in enumerate(rig.cameras):
        table: dict[str, Any] = {
            "name": cam.name,
            "size": list(cam.size_px),
            "matrix": cam.K.tolist(),
            "distortions": cam.dist.tolist(),
            "rotation": cam.rvec.tolist(),
            "translation": cam.t_cam_world.tolist(),
        }
        if cam.model == "fisheye":
            table["fisheye"] = True
        doc[f"cam_{i:0{width}d}"] = table
    doc["metadata"] = {"units": rig.units, **(metadata or {})}
    return tomli_w.dumps(doc)


def save_calibration(path: str | Path, rig: Rig, metadata: dict[str, Any] | None = None) -> None:
    """Write the rig as anipose TOML (atomically)."""
    write_text_atomic(path, calibration_to_toml(rig, metadata))


def rig_summary(rig: Rig) -> list[dict[str, Any]]:
    """Per camera: name, size, focal, centre position and viewing direction (world)."""
    rows = []
    for cam in rig.cameras:
        rows.append({
            "name": cam.name,
            "size_px": list(cam.size_px),
            "focal_px": float((cam.K[0, 0] + cam.K[1, 1]) / 2),
            "center": np.round(cam.center_world, 4).tolist(),
            "view_dir": np.round(cam.R_cam_world[2], 4).tolist(),
        })  # fmt: skip
    return rows
