"""Readers for caliscope/FreeMoCap ``camera_array.toml``, Azure Kinect JSON and 4x4 camera tables.

Used through :func:`mvhand.io.calib_convert.load_any_calibration` (formats "caliscope",
"kinect", "matrix4x4"); each returns a :class:`~mvhand.core.camera.Rig` in OpenCV conventions
(``x_cam = R_cam_world @ x_world + t_cam_world``).

caliscope (``camera_array.toml``, metres)
    One ``[cameras.N]`` table per camera (``N`` = cam_id) with ``size = [w, h]``, ``matrix``
    (3x3), ``distortions`` (5, or 4 with ``fisheye = true``), ``rotation`` (Rodrigues vector,
    or a 3x3 matrix in older files) and ``translation``: world to camera, as caliscope's
    ``CameraData.transformation`` (its projection matrix is ``[R | t]``; the anchor camera of
    its calibrations has R = I, t = 0). Cameras are named ``cam_N`` (caliscope's video
    names). ``ignore = true`` cameras and cameras without extrinsics (not yet posed) are
    skipped with a warning; ``rotation_count`` (frames turned by 90 degrees before
    calibration) is warned about, as the calibration then fits the turned frames.
    Old caliscope files with top-level ``[cam_N]`` tables are anipose TOML and read as such.

kinect (Azure Kinect raw calibration JSON, metres)
    ``{"CalibrationInformation": {"Cameras": [...]}}`` as the SDK's
    ``k4a_device_get_raw_calibration`` (and the ``calibration.json`` attachment of its MKV
    recordings) exports it. The colour camera (``Purpose`` "CALIBRATION_CameraPurposePhotoVideo")
    is read: ``Intrinsics.ModelParameters`` = (cx, cy, fx, fy, k1..k6, codx, cody, p2, p1)
    normalized by the calibration resolution (``SensorWidth`` x ``SensorHeight``, 4:3 or legacy
    16:9) with (0, 0) at the top-left pixel's corner, and ``Rt`` (row-major rotation,
    translation in metres) from the device's reference (its depth camera) to the camera. As
    the SDK does, the intrinsics are converted to one colour resolution mode (``camera_type``,
    default "1080p": scale to the 4:3 mode, crop the 16:9 band, shift by half a pixel). The
    SDK's Brown-Conrady model is OpenCV's rational model; mvhand's pinhole camera has
    (k1, k2, p1, p2, k3), so when k4..k6 are not zero the five coefficients are fitted by
    least squares to the rational model over the image and the worst pixel difference is
    logged (an error above 5 px). For a factory calibration (k1 0.72, k4 0.60, ...) at 1080p
    the fit is 0.7 px off at the median of the image and 1.7 px in the corners: fine for
    hand keypoints, not for sub-pixel work (that needs the rational model in
    :class:`~mvhand.core.camera.Camera`). One file is one device: one camera whose world is the
    device's reference frame.

matrix4x4 (mvhand's camera table, millimetres)
    For published data sets that give each camera's pose as a camera-to-reference matrix.
    JSON: ``{"cameras": [{"name", "size": [w, h], "K": 3x3, "dist": [k1, k2, p1, p2, k3],
    "camera_to_reference": 4x4}]}``, with an optional ``"units": "mm"`` (any other value is an
    error: the format is millimetres). CSV: a header row, then one row per camera with the
    columns ``name, width, height, fx, fy, cx, cy, k1, k2, p1, p2, k3, m00, m01, ..., m33``
    (the 4x4 row by row). ``camera_to_reference`` maps camera coordinates (OpenCV: x right, y
    down, z forward) to the reference frame: its rotation block is ``R_cam_world.T`` and its
    last column the camera centre in mm. Detected from a ``.csv`` name, or from a JSON whose
    cameras have ``camera_to_reference``.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.core.camera import Camera, Rig
from mvhand.errors import CalibrationError

log = logging.getLogger(__name__)

MATRIX4X4_COLUMNS: tuple[str, ...] = (
    ("name", "width", "height", "fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
    + tuple(f"m{i}{j}" for i in range(4) for j in range(4))
)  # fmt: skip
#: Azure Kinect colour modes: (4:3 calibration resolution, crop offset, output size).
KINECT_COLOR_MODES: dict[str, tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "720p": ((1280, 960), (0, 120), (1280, 720)),
    "1080p": ((1920, 1440), (0, 180), (1920, 1080)),
    "1440p": ((2560, 1920), (0, 240), (2560, 1440)),
    "1536p": ((2048, 1536), (0, 0), (2048, 1536)),
    "2160p": ((3840, 2880), (0, 360), (3840, 2160)),
    "3072p": ((4096, 3072), (0, 0), (4096, 3072)),
}
#: Refuse a Kinect lens whose five-coefficient fit is further off than this anywhere.
_KINECT_MAX_FIT_PX = 5.0
_KINECT_COLOR = "CALIBRATION_CameraPurposePhotoVideo"
_CALISCOPE_TABLE = re.compile(r"^\s*\[cameras\.[^\]]+\]", re.MULTILINE)


def detect_new_format(path: Path) -> str | None:
    """"caliscope", "kinect" or "matrix4x4" when the file is unambiguously one, else None."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "matrix4x4"
    if suffix not in (".toml", ".json", ".txt", ""):
        return None
    head = path.read_bytes()[:65536].decode("utf-8", errors="replace")
    if suffix in (".toml", ".txt", "") and _CALISCOPE_TABLE.search(head):
        return "caliscope"
    if '"CalibrationInformation"' in head:
        return "kinect"
    if head.lstrip().startswith("{") and '"camera_to_reference"' in head:
        return "matrix4x4"
    return None


def read_new_format(path: Path, fmt: str, camera_type: str | None = None) -> Rig:
    """Read ``path`` as one of this module's formats (see the module docstring)."""
    if fmt == "caliscope":
        return read_caliscope(path)
    if fmt == "kinect":
        return read_kinect(path, camera_type or "1080p")
    if fmt == "matrix4x4":
        return read_matrix4x4(path)
    raise CalibrationError(f"unknown calibration format {fmt!r}", path)


def _rig(cams: list[Camera], units: str, path: Path) -> Rig:
    from mvhand.io.calib_convert import _make_rig

    return _make_rig(cams, units, path)


def _camera(path: Path, where: str, **kwargs: Any) -> Camera:
    from mvhand.io.calib_convert import _camera as make

    return make(path, where, **kwargs)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError("calibration file not found", path) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise CalibrationError(f"cannot read the file ({exc})", path) from None


def _array(value: Any, shape: tuple[int, ...], where: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where} is not a numeric array", path) from None
    if arr.size != int(np.prod(shape)):
        raise CalibrationError(f"{where} must have {int(np.prod(shape))} values "
                               f"{shape}, has {arr.size}", path)  # fmt: skip
    return arr.reshape(shape)


# ----------------------------------------------------------------------------- caliscope


def _caliscope_camera(key: str, table: Any, path: Path) -> Camera | None:
    where = f"[cameras.{key}]"
    if not isinstance(table, dict):
        raise CalibrationError(f"{where} must be a table", path)
    name = f"cam_{table.get('cam_id', key)}"
    if table.get("ignore", False):
        log.warning("%s: %s is marked ignore = true; skipped", path, name)
        return None
    missing = [k for k in ("size", "matrix") if k not in table]
    if missing:
        raise CalibrationError(f"{where} lacks {', '.join(missing)}", path)
    if "rotation" not in table or "translation" not in table:
        log.warning("%s: %s has no extrinsics (not posed); skipped", path, name)
        return None
    if int(table.get("rotation_count", 0) or 0) % 4:
        log.warning("%s: %s has rotation_count = %s: the calibration fits frames turned by "
                    "%d degrees", path, name, table["rotation_count"],
                    90 * int(table["rotation_count"]))  # fmt: skip
    rot = np.asarray(table["rotation"], dtype=float) if _numeric(table["rotation"]) else None
    if rot is None or rot.size not in (3, 9):
        raise CalibrationError(f"{where}: rotation must be a Rodrigues vector (3) or a 3x3 "
                               "matrix", path)  # fmt: skip
    kw: dict[str, Any] = {"name": name, "K": table["matrix"],
                          "dist": table.get("distortions", []),
                          "model": "fisheye" if table.get("fisheye", False) else "pinhole"}
    try:
        kw["size_px"] = tuple(int(v) for v in table["size"])
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: size must be [width, height]", path) from None
    t = table["translation"]
    if rot.size == 3:
        return _camera(path, where, rvec=rot.ravel(), tvec=t, **kw)
    return _camera(path, where, R_cam_world=rot.reshape(3, 3), t_cam_world=np.ravel(t), **kw)


def _numeric(value: Any) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def read_caliscope(path: str | Path) -> Rig:
    """Read a caliscope/FreeMoCap ``camera_array.toml`` (metres; layout in the module doc)."""
    path = Path(path)
    try:
        data = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"malformed TOML ({exc})", path) from None
    tables = data.get("cameras")
    if not isinstance(tables, dict) or not tables:
        raise CalibrationError("a caliscope camera array needs [cameras.N] tables", path)
    keys = sorted(tables, key=lambda k: (0, int(k)) if str(k).isdigit() else (1, str(k)))
    cams = [c for k in keys if (c := _caliscope_camera(str(k), tables[k], path)) is not None]
    if not cams:
        raise CalibrationError("no posed camera (every camera lacks rotation/translation or "
                               "is ignored)", path)  # fmt: skip
    return _rig(cams, "m", path)


# ----------------------------------------------------------------------------- Azure Kinect


def fit_pinhole5(K: np.ndarray, dist8: np.ndarray, size: tuple[int, int],
                 grid: int = 40) -> tuple[np.ndarray, float]:  # fmt: skip
    """OpenCV (k1, k2, p1, p2, k3) closest to a rational (8-coefficient) model over the image.

    Returns:
        ``(dist5, worst pixel difference)`` on a ``grid`` x ``grid`` lattice of the image.
    """
    import cv2

    dist8 = np.asarray(dist8, dtype=float)
    if not np.any(dist8[5:]):
        return dist8[:5].copy(), 0.0
    w, h = size
    u, v = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid))
    px = np.stack([u.ravel(), v.ravel()], axis=1)
    und = cv2.undistortPointsIter(px.reshape(-1, 1, 2), K, dist8, None, None,
                                  (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
                                  ).reshape(-1, 2)  # fmt: skip
    x, y = und[:, 0], und[:, 1]
    r2 = x * x + y * y
    xd = (px[:, 0] - K[0, 2]) / K[0, 0]
    yd = (px[:, 1] - K[1, 2]) / K[1, 1]
    # distorted - undistorted is linear in (k1, k2, p1, p2, k3)
    ax = np.stack([x * r2, x * r2**2, 2 * x * y, r2 + 2 * x * x, x * r2**3], axis=1)
    ay = np.stack([y * r2, y * r2**2, r2 + 2 * y * y, 2 * x * y, y * r2**3], axis=1)
    A = np.concatenate([ax * K[0, 0], ay * K[1, 1]])
    b = np.concatenate([(xd - x) * K[0, 0], (yd - y) * K[1, 1]])
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    worst = float(np.max(np.hypot(*(A @ coef - b).reshape(2, -1))))
    return coef, worst


def kinect_color_intrinsics(
    params: np.ndarray, sensor: tuple[int, int], mode: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """K, the 8 rational coefficients and the image size of the colour camera in ``mode``."""
    cx, cy, fx, fy = params[:4]
    w, h = sensor
    if w * 9 == h * 16:  # legacy 16:9 calibration: re-express it on the 4:3 sensor
        cy, fy = (cy * 2304 + 384) / 3072, fy * 2304 / 3072
    (bw, bh), (ox, oy), out = KINECT_COLOR_MODES[mode]
    K = np.array([[fx * bw, 0.0, cx * bw - ox - 0.5], [0.0, fy * bh, cy * bh - oy - 0.5],
                  [0.0, 0.0, 1.0]])  # fmt: skip
    k1, k2, k3, k4, k5, k6 = params[4:10]
    p2, p1 = params[12:14]
    return K, np.array([k1, k2, p1, p2, k3, k4, k5, k6]), out


def _kinect_color_entry(data: Any, path: Path) -> dict[str, Any]:
    info = data.get("CalibrationInformation") if isinstance(data, dict) else None
    cams = info.get("Cameras") if isinstance(info, dict) else None
    if not isinstance(cams, list):
        raise CalibrationError("an Azure Kinect calibration needs CalibrationInformation."
                               "Cameras (a list)", path)  # fmt: skip
    color = [c for c in cams if isinstance(c, dict) and c.get("Purpose") == _KINECT_COLOR]
    if not color:
        raise CalibrationError(f"no colour camera (Purpose {_KINECT_COLOR}) in "
                               "CalibrationInformation.Cameras", path)  # fmt: skip
    entry = color[0]
    missing = [k for k in ("Intrinsics", "Rt", "SensorWidth", "SensorHeight") if k not in entry]
    if missing:
        raise CalibrationError(f"the colour camera lacks {', '.join(missing)}", path)
    return entry


def read_kinect(path: str | Path, mode: str = "1080p") -> Rig:
    """Read the colour camera of an Azure Kinect raw calibration JSON (see the module doc)."""
    path = Path(path)
    if mode not in KINECT_COLOR_MODES:
        raise CalibrationError(f"Azure Kinect colour mode must be one of "
                               f"{list(KINECT_COLOR_MODES)}, got {mode!r}", path)  # fmt: skip
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"not valid JSON ({exc})", path) from None
    entry = _kinect_color_entry(data, path)
    intr = entry["Intrinsics"]
    model = intr.get("ModelType", "") if isinstance(intr, dict) else ""
    if "BrownConrady" not in str(model) and "Rational6KT" not in str(model):
        raise CalibrationError(f"colour camera model {model!r} is not supported (Brown-Conrady "
                               "or Rational6KT)", path)  # fmt: skip
    raw = intr.get("ModelParameters")
    params = np.asarray(raw, dtype=float).ravel() if isinstance(raw, list) and _numeric(raw) \
        else None  # fmt: skip
    if params is None or params.size < 14:
        raise CalibrationError("Intrinsics.ModelParameters must hold 14 numbers", path)
    if np.any(params[10:12]):
        raise CalibrationError("a centre of distortion (codx, cody) is not supported", path)
    sensor = (int(entry["SensorWidth"]), int(entry["SensorHeight"]))
    if sensor[0] * 3 != sensor[1] * 4 and sensor[0] * 9 != sensor[1] * 16:
        raise CalibrationError(f"colour sensor {sensor[0]}x{sensor[1]} is neither 4:3 nor "
                               "16:9", path)  # fmt: skip
    K, dist8, size = kinect_color_intrinsics(params, sensor, mode)
    dist, worst = fit_pinhole5(K, dist8, size)
    if worst > _KINECT_MAX_FIT_PX:
        raise CalibrationError(f"the lens model cannot be expressed with k1, k2, p1, p2, k3 "
                               f"(worst difference {worst:.2f} px)", path)  # fmt: skip
    if worst > 0.1:
        log.warning("%s: the rational lens model (k4..k6) was fitted with k1, k2, p1, p2, k3: "
                    "up to %.2f px off in the image corners", path, worst)  # fmt: skip
    rt = entry["Rt"] if isinstance(entry["Rt"], dict) else {}
    R = _array(rt.get("Rotation"), (3, 3), "Rt.Rotation", path)
    t = _array(rt.get("Translation"), (3,), "Rt.Translation", path)
    name = path.name.split(".")[0]
    cam = _camera(path, "colour camera", name=name, size_px=size, K=K, dist=dist,
                  R_cam_world=R, t_cam_world=t)  # fmt: skip
    return _rig([cam], "m", path)


# ----------------------------------------------------------------------------- 4x4 tables


def _camera_from_pose(path: Path, where: str, name: str, size: Any, K: Any, dist: Any,
                      T: Any) -> Camera:  # fmt: skip
    T = _array(T, (4, 4), f"{where} camera_to_reference", path)
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-9):
        raise CalibrationError(f"{where}: camera_to_reference's last row must be 0 0 0 1", path)
    R = T[:3, :3].T
    try:
        size_px = tuple(int(v) for v in size)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: size must be [width, height]", path) from None
    return _camera(path, where, name=name, size_px=size_px, K=K, dist=dist, R_cam_world=R,
                   t_cam_world=-R @ T[:3, 3])  # fmt: skip


def _matrix4x4_json(path: Path, text: str) -> list[Camera]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CalibrationError("a camera table needs a top-level 'cameras' list", path)
    if data.get("units", "mm") != "mm":
        raise CalibrationError(f"camera tables are in mm; 'units' says {data['units']!r}", path)
    cams = []
    for i, e in enumerate(data["cameras"]):
        where = f"cameras[{i}]"
        if not isinstance(e, dict):
            raise CalibrationError(f"{where} must be an object", path)
        missing = [k for k in ("size", "K", "camera_to_reference") if k not in e]
        if missing:
            raise CalibrationError(f"{where} lacks {', '.join(missing)}", path)
        cams.append(_camera_from_pose(path, where, str(e.get("name", f"cam_{i}")), e["size"],
                                      e["K"], e.get("dist", []), e["camera_to_reference"]))
    return cams


def _matrix4x4_csv(path: Path, text: str) -> list[Camera]:
    rows = list(csv.reader(line for line in text.splitlines() if line.strip()))
    if not rows:
        raise CalibrationError("empty camera table", path)
    header = [c.strip() for c in rows[0]]
    if tuple(header) != MATRIX4X4_COLUMNS:
        raise CalibrationError(f"the header must be {','.join(MATRIX4X4_COLUMNS)}", path)
    cams = []
    for n, row in enumerate(rows[1:], start=2):
        where = f"line {n}"
        if len(row) != len(header):
            raise CalibrationError(f"{where} has {len(row)} columns, not {len(header)}", path)
        try:
            v = np.array([float(x) for x in row[1:]])
        except ValueError:
            raise CalibrationError(f"{where} has a value that is not a number", path) from None
        K = [[v[2], 0, v[4]], [0, v[3], v[5]], [0, 0, 1]]
        cams.append(_camera_from_pose(path, where, row[0].strip(), v[:2], K, v[6:11],
                                      v[11:].reshape(4, 4)))  # fmt: skip
    return cams


def read_matrix4x4(path: str | Path) -> Rig:
    """Read a camera table with camera-to-reference 4x4 matrices in mm (JSON or CSV)."""
    path = Path(path)
    text = _read_text(path)
    cams = _matrix4x4_csv(path, text) if path.suffix.lower() == ".csv" or not \
        text.lstrip().startswith("{") else _matrix4x4_json(path, text)  # fmt: skip
    return _rig(cams, "mm", path)
