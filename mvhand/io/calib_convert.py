"""Calibration converters: Qualisys QCA, OpenCV YAML (incl. EasyMocap) and CMU Panoptic JSON.

Everything is read into a :class:`~mvhand.core.camera.Rig` (OpenCV conventions:
``x_cam = R_cam_world @ x_world + t_cam_world``) and written as anipose TOML
(:mod:`mvhand.io.calibration`) or OpenCV YAML. Units are explicit everywhere:

============  ==========================  ================================================
format        read from                   units
============  ==========================  ================================================
anipose       ``*.toml``                  ``[metadata] units``; else the caller's ``in_units``
qca           ``*.qca``, ``*.qca.txt``    always millimetres
opencv        ``*.yml``, ``*.yaml``,      a ``units`` node if present; else ``in_units``
              OpenCV ``*.xml``, a folder  (EasyMocap writes metres)
panoptic      ``*.json``                  always centimetres
caliscope     ``camera_array.toml``       always metres (caliscope/FreeMoCap)
              (``[cameras.N]`` tables)
kinect        Azure Kinect raw JSON       always metres (``Rt`` translations)
              (``CalibrationInformation``)
matrix4x4     ``*.csv``, or ``*.json``    always millimetres (camera-to-reference 4x4)
              with ``camera_to_reference``
============  ==========================  ================================================

The last three are described in :mod:`mvhand.io.calib_formats`.

Camera order is the file's order (a folder of per-camera YAML files is sorted naturally, so
``cam_2`` comes before ``cam_10``).

Qualisys conventions (checked against the Pose2Sim demo videos, see ``tests/test_calibration.py``):
``transform`` holds the camera position (mm) and a rotation whose *rows* are the camera axes in
world coordinates, for a camera frame that looks along -z with y up. OpenCV's frame looks along
+z with y down, a half turn about x: ``R_cam_world = diag(1, -1, -1) @ R_qca``. Intrinsics are in
1/64 sub-pixels relative to the sensor; the principal point is shifted by the video window's
``left``/``top``. Distortion coefficients are used as given (OpenCV k1, k2, p1, p2, k3).
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Camera, Rig
from mvhand.errors import CalibrationError, MvhandError
from mvhand.io.atomic import write_text_atomic
from mvhand.io.calibration import load_calibration, save_calibration

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("anipose", "qca", "opencv", "panoptic", "caliscope", "kinect",
                            "matrix4x4")  # fmt: skip
#: Units each format fixes; formats absent here take the file's or the caller's units.
FORMAT_UNITS: dict[str, str] = {"qca": "mm", "panoptic": "cm", "caliscope": "m", "kinect": "m",
                                "matrix4x4": "mm"}  # fmt: skip
_YAML_SUFFIXES = (".yml", ".yaml")
_QCA_SUBPIXEL = 64.0


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers numerically (``cam_2`` before ``cam_10``)."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]


def _check_units(units: str | None, what: str) -> None:
    if units is not None and units not in UNIT_SCALE_M:
        raise CalibrationError(f"{what} must be one of {list(UNIT_SCALE_M)}, got {units!r}")


def detect_format(path: str | Path) -> str:
    """Guess a calibration file's format from its name, then from its first bytes.

    Raises:
        CalibrationError: the path does not exist or the format cannot be recognised.
    """
    path = Path(path)
    if path.is_dir():
        return "opencv"
    if not path.is_file():
        raise CalibrationError("calibration file not found", path)
    name = path.name.lower()
    if name.endswith((".qca", ".qca.txt")):
        return "qca"
    from mvhand.io.calib_formats import detect_new_format

    new = detect_new_format(path)
    if new is not None:
        return new
    by_suffix = {".toml": "anipose", ".json": "panoptic", ".yml": "opencv", ".yaml": "opencv"}
    if path.suffix.lower() in by_suffix:
        return by_suffix[path.suffix.lower()]
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace").lstrip()
    if head.startswith("<") and "<calibration" in head:
        return "qca"
    if head.startswith("%YAML") or "<opencv_storage" in head:
        return "opencv"
    if head.startswith("{"):
        return "panoptic"
    if head.startswith("["):
        return "anipose"
    raise CalibrationError(
        f"cannot tell the calibration format; pass --from one of {', '.join(FORMATS)}", path
    )


def load_any_calibration(path: str | Path, fmt: str = "auto", units: str | None = None,
                         in_units: str | None = None,
                         camera_type: str | None = None) -> Rig:  # fmt: skip
    """Read a calibration in any supported format.

    Args:
        path: the file (or, for OpenCV YAML, a folder of per-camera files or the EasyMocap
            ``intri.yml``/``extri.yml`` pair).
        fmt: "auto" or one of :data:`FORMATS`.
        units: units of the returned rig; None keeps the file's units.
        in_units: units of the file's translations when the file does not record them
            (anipose without ``[metadata] units``, OpenCV YAML without ``units``); default
            metres. Ignored, with a warning, for formats whose units are fixed.
        camera_type: Panoptic: keep cameras of this ``type`` ("hd", "vga", ...); Azure
            Kinect: the colour resolution mode ("720p", "1080p" (default), "1440p", "1536p",
            "2160p", "3072p").

    Raises:
        CalibrationError: naming the file and the problem.
    """
    path = Path(path)
    _check_units(units, "units")
    _check_units(in_units, "in_units")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise CalibrationError(f"unknown calibration format {fmt!r}; use one of {FORMATS}", path)
    fixed = FORMAT_UNITS.get(fmt)
    if fixed and in_units and in_units != fixed:
        log.warning("%s: %s calibrations are always in %s; ignoring in_units=%s",
                    path, fmt, fixed, in_units)  # fmt: skip
    if camera_type is not None and fmt not in ("panoptic", "kinect"):
        raise CalibrationError("camera_type applies to Panoptic and Azure Kinect calibrations "
                               "only", path)  # fmt: skip
    if fmt == "anipose":
        rig = load_calibration(path, in_units)
    elif fmt == "qca":
        rig = read_qca(path)
    elif fmt == "opencv":
        rig = read_opencv_yaml(path, in_units)
    elif fmt == "panoptic":
        rig = read_panoptic(path, camera_type)
    else:
        from mvhand.io import calib_formats

        rig = calib_formats.read_new_format(path, fmt, camera_type)
    return rig if units is None or units == rig.units else rig.to_units(units)


def load_rig(calib: str | Path | Rig, units: str | None = None) -> Rig:
    """The one calibration loader of every command, with one units rule.

    ``units`` (the ``--units`` option): when the file records its units (or its format fixes
    them: Qualisys mm, Panoptic cm) the rig is converted to ``units``; when it does not, the
    file's translations are read as being in ``units``. None: the file's units (metres when
    it records none).

    Args:
        calib: a calibration file of any supported format, or a Rig (converted to ``units``).
        units: "m", "cm", "mm" or None.
    """
    if isinstance(calib, Rig):
        return calib if units is None or units == calib.units else calib.to_units(units)
    path = Path(calib)
    fixed = FORMAT_UNITS.get(detect_format(path)) if path.exists() else None
    return load_any_calibration(path, units=units, in_units=None if fixed else units)


def _make_rig(cams: list[Camera], units: str, path: Path) -> Rig:
    if not cams:
        raise CalibrationError("no cameras found", path)
    try:
        return Rig(tuple(cams), units)
    except MvhandError as exc:
        raise CalibrationError(str(exc), path) from None


def _camera(path: Path, where: str, **kwargs: Any) -> Camera:
    """Build a Camera, turning shape/value problems into a CalibrationError naming ``where``."""
    try:
        if "rvec" in kwargs:
            return Camera.from_rvec(**kwargs)
        return Camera(**kwargs)
    except CalibrationError as exc:
        raise CalibrationError(f"{where}: {exc}", path) from None
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{where}: malformed value ({exc})", path) from None


# ----------------------------------------------------------------------------- Qualisys QCA


def _xml_float(el: ET.Element, key: str, path: Path, where: str) -> float:
    value = el.get(key)
    if value is None:
        raise CalibrationError(f"{where} <{el.tag}> lacks the attribute '{key}'", path)
    try:
        return float(value)
    except ValueError:
        raise CalibrationError(f"{where} <{el.tag} {key}={value!r}> is not a number",
                               path) from None  # fmt: skip


def _xml_child(el: ET.Element, tag: str, path: Path, where: str) -> ET.Element:
    child = el.find(tag)
    if child is None:
        raise CalibrationError(f"{where} lacks a <{tag}> element", path)
    return child


def _qca_camera(el: ET.Element, index: int, path: Path) -> Camera:
    name = el.get("serial") or f"cam_{index + 1}"
    where = f"camera '{name}'"
    fov = _xml_child(el, "fov_video", path, where)
    left, top, right, bottom = (_xml_float(fov, k, path, where)
                                for k in ("left", "top", "right", "bottom"))  # fmt: skip
    size = (int(round(right - left + 1)), int(round(bottom - top + 1)))
    intr = _xml_child(el, "intrinsic", path, where)
    f = {k: _xml_float(intr, k, path, where)
         for k in ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV")}  # fmt: skip
    K = np.array([
        [f["focalLengthU"] / _QCA_SUBPIXEL, 0.0, f["centerPointU"] / _QCA_SUBPIXEL - left],
        [0.0, f["focalLengthV"] / _QCA_SUBPIXEL, f["centerPointV"] / _QCA_SUBPIXEL - top],
        [0.0, 0.0, 1.0],
    ])  # fmt: skip
    dist_keys = ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
                 "tangentalDistortion2", "radialDistortion3")  # fmt: skip
    dist = [_xml_float(intr, k, path, where) if intr.get(k) is not None else 0.0
            for k in dist_keys]  # fmt: skip
    if float(intr.get("skew", "0") or 0) != 0.0:
        log.warning("%s: %s has a non-zero skew, which is ignored", path, where)
    if el.get("viewrotation", "0") not in ("0", ""):
        log.warning("%s: %s has viewrotation=%s; the video may be rotated relative to the "
                    "calibration", path, where, el.get("viewrotation"))  # fmt: skip
    tr = _xml_child(el, "transform", path, where)
    R_qca = np.array([[_xml_float(tr, f"r{i}{j}", path, where) for j in (1, 2, 3)]
                      for i in (1, 2, 3)])  # fmt: skip
    center_mm = np.array([_xml_float(tr, k, path, where) for k in ("x", "y", "z")])
    # Qualisys' camera looks along -z with y up: a half turn about x gives OpenCV's frame.
    R = np.diag([1.0, -1.0, -1.0]) @ R_qca
    return _camera(path, where, name=name, size_px=size, K=K, dist=dist, R_cam_world=R,
                   t_cam_world=-R @ center_mm)  # fmt: skip


def read_qca(path: str | Path) -> Rig:
    """Read a Qualisys QCA calibration (XML) into a rig in millimetres.

    Only active cameras are kept; when the file mixes video and marker cameras (``model``
    containing "Video", or "none"), only the video cameras are kept.

    Raises:
        CalibrationError: unreadable or malformed XML, missing elements or attributes.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise CalibrationError("calibration file not found", path) from None
    except ET.ParseError as exc:
        raise CalibrationError(f"malformed XML, not a QCA calibration ({exc})", path) from None
    elems = [el for el in root.iter("camera") if el.get("active", "1") != "0"]
    if not elems:
        raise CalibrationError("no active <camera> element found (is this a QCA file?)", path)
    video = [el for el in elems if "video" in el.get("model", "none").lower()
             or el.get("model", "none").lower() == "none"]  # fmt: skip
    if video and len(video) < len(elems):
        dropped = [el.get("serial", "?") for el in elems if el not in video]
        log.info("%s: keeping the %d video cameras, dropping marker cameras %s",
                 path, len(video), dropped)  # fmt: skip
        elems = video
    cams = [_qca_camera(el, i, path) for i, el in enumerate(elems)]
    return _make_rig(cams, "mm", path)


# ----------------------------------------------------------------------------- OpenCV YAML


_K_KEYS = ("camera_matrix", "K", "cameraMatrix", "intrinsic_matrix", "intrinsics", "M", "mtx")
_DIST_KEYS = ("dist_coeffs", "distortion_coefficients", "dist", "D", "distCoeffs",
              "distortion", "dist_coeff")  # fmt: skip
_RMAT_KEYS = ("R", "rotation_matrix", "Rot", "Rmat")
_RVEC_KEYS = ("rvec", "rotation_vector", "rvecs", "rotation")
_T_KEYS = ("T", "t", "tvec", "translation", "translation_vector", "tvecs")


def _node_array(node: Any, where: str, path: Path) -> np.ndarray:
    """A FileNode (opencv-matrix, ROS-style {rows, cols, data}, sequence or number) as floats.

    Reads ``data`` element by element: ``FileNode.mat()`` misreads integer literals in a
    ``dt: d`` matrix.
    """
    if node.isMap():
        data = node.getNode("data")
        if data.isNone():
            raise CalibrationError(f"'{where}' is a map without 'data'", path)
        arr = _node_array(data, where, path)
        rows, cols = node.getNode("rows"), node.getNode("cols")
        if not rows.isNone() and not cols.isNone():
            shape = (int(rows.real()), int(cols.real()))
            if arr.size != shape[0] * shape[1]:
                raise CalibrationError(f"'{where}' has {arr.size} values for {shape}", path)
            arr = arr.reshape(shape)
        return arr
    if node.isSeq():
        items = [_node_array(node.at(i), where, path) for i in range(node.size())]
        try:
            return np.array(items, dtype=float)
        except ValueError:
            raise CalibrationError(f"'{where}' is a ragged list", path) from None
    if node.isReal() or node.isInt():
        return np.array(node.real(), dtype=float)
    raise CalibrationError(f"'{where}' is not a number or matrix", path)


def _open_filestorage(path: Path) -> Any:
    """Open an OpenCV YAML/XML file from its text (adds the ``%YAML:1.0`` header if missing)."""
    import cv2

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError("calibration file not found", path) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise CalibrationError(f"cannot read the file ({exc})", path) from None
    stripped = text.lstrip()
    if not stripped.startswith(("<", "%YAML")):
        text = "%YAML:1.0\n---\n" + text
    elif stripped.startswith("%YAML") and not stripped.startswith("%YAML:1."):
        text = "%YAML:1.0\n" + stripped.split("\n", 1)[1]
    try:
        fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError) as exc:
        msg = str(getattr(exc, "__cause__", None) or exc).strip().splitlines()[-1]
        raise CalibrationError(f"not a readable OpenCV YAML/XML file ({msg})", path) from None
    if not fs.isOpened():
        raise CalibrationError("not a readable OpenCV YAML/XML file", path)
    return fs


def _first(fs_or_node: Any, keys: Sequence[str], suffix: str = "") -> tuple[str, Any] | None:
    for key in keys:
        node = fs_or_node.getNode(key + suffix)
        if not node.isNone():
            return key + suffix, node
    return None


def _yaml_size(fs: Any, suffix: str, K: np.ndarray, path: Path, where: str) -> tuple[int, int]:
    w, h = fs.getNode("image_width" + suffix), fs.getNode("image_height" + suffix)
    if w.isNone():
        w, h = fs.getNode("W" + suffix), fs.getNode("H" + suffix)
    if not w.isNone() and not h.isNone():
        return int(w.real()), int(h.real())
    found = _first(fs, ("image_size", "imageSize", "size", "resolution"), suffix)
    if found:
        size = _node_array(found[1], found[0], path).ravel()
        if size.size != 2:
            raise CalibrationError(f"'{found[0]}' must be [width, height]", path)
        return int(size[0]), int(size[1])
    guess = (int(round(2 * K[0, 2] + 1)), int(round(2 * K[1, 2] + 1)))
    log.warning("%s: %s has no image size; assuming %dx%d from the principal point",
                path, where, *guess)  # fmt: skip
    return guess


def _yaml_dist(arr: np.ndarray, path: Path, where: str) -> np.ndarray:
    d = arr.ravel()
    if d.size > 5:
        if np.any(d[5:] != 0):
            raise CalibrationError(
                f"{where}: {d.size} distortion coefficients (rational/thin-prism model) are not "
                "supported; only k1, k2, p1, p2, k3", path)  # fmt: skip
        d = d[:5]
    return d


def _yaml_camera(fs: Any, name: str, suffix: str, path: Path, intri: Any | None = None) -> Camera:
    """One camera from keys ``<key><suffix>`` (suffix "" for a per-camera file)."""
    where = f"camera '{name}'"
    src = intri if intri is not None else fs
    found = _first(src, _K_KEYS, suffix)
    if found is None:
        raise CalibrationError(f"{where}: no intrinsic matrix (looked for "
                               f"{', '.join(k + suffix for k in _K_KEYS[:3])})", path)  # fmt: skip
    K = _node_array(found[1], found[0], path)
    if K.size != 9:
        raise CalibrationError(f"{where}: '{found[0]}' must be 3x3, has {K.size} values", path)
    K = K.reshape(3, 3)
    found = _first(src, _DIST_KEYS, suffix)
    dist = np.zeros(5) if found is None else _yaml_dist(_node_array(found[1], found[0], path),
                                                        path, where)  # fmt: skip
    size = _yaml_size(src, suffix, K, path, where)
    rot = _first(fs, _RMAT_KEYS + _RVEC_KEYS, suffix)
    tr = _first(fs, _T_KEYS, suffix)
    if rot is None or tr is None:
        raise CalibrationError(f"{where}: no extrinsics (need R or rvec, and T; looked for "
                               f"'R{suffix}', 'Rot{suffix}', 'T{suffix}', ...)", path)  # fmt: skip
    R = _node_array(rot[1], rot[0], path)
    if R.size not in (3, 9):
        raise CalibrationError(f"{where}: '{rot[0]}' must be a rotation vector (3) or matrix "
                               f"(3x3), has {R.size} values", path)  # fmt: skip
    t = _node_array(tr[1], tr[0], path).ravel()
    kw = {"name": name, "size_px": size, "K": K, "dist": dist}
    if R.size == 3:
        return _camera(path, where, rvec=R.ravel(), tvec=t, **kw)
    return _camera(path, where, R_cam_world=R.reshape(3, 3), t_cam_world=t, **kw)


def _yaml_units(fs_list: Sequence[Any], in_units: str | None, path: Path) -> str:
    for fs in fs_list:
        node = fs.getNode("units")
        if not node.isNone():
            units = node.string()
            if units not in UNIT_SCALE_M:
                raise CalibrationError(f"'units' must be one of {list(UNIT_SCALE_M)}", path)
            return units
    return in_units or "m"


def _yaml_names(fs: Any, path: Path) -> list[str] | None:
    node = fs.getNode("names")
    if node.isNone():
        return None
    if not node.isSeq():
        raise CalibrationError("'names' must be a list of camera names", path)
    names = []
    for i in range(node.size()):
        item = node.at(i)
        names.append(item.string() if item.isString() else str(int(item.real())))
    return names


def read_opencv_yaml(path: str | Path, in_units: str | None = None) -> Rig:
    """Read OpenCV YAML/XML calibrations.

    Layouts:

    - one file per camera (``camera_matrix``/``K``, ``dist_coeffs``/``distortion``, ``R`` (3x3)
      or ``rvec``, ``T``/``tvec``, ``image_width``/``image_height`` or ``image_size``); the
      camera is named after the file stem. ``path`` may be a folder of such files (natural
      order) or a file.
    - a multi-camera file with a ``names`` list and keys ``K_<name>``, ``dist_<name>``,
      ``R_<name>`` (rvec or 3x3) or ``Rot_<name>`` (3x3), ``T_<name>`` (EasyMocap); a
      folder holding ``intri.yml`` and ``extri.yml``, or either of those files, reads the pair.

    Args:
        path: file or folder.
        in_units: units of translations when no file has a ``units`` entry (default metres).
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    pair = [folder / "intri.yml", folder / "extri.yml"]
    if (path.is_dir() or path.name in ("intri.yml", "extri.yml")) and all(
            p.is_file() for p in pair):  # fmt: skip
        intri, extri = (_open_filestorage(p) for p in pair)
        names = _yaml_names(extri, pair[1]) or _yaml_names(intri, pair[0])
        if not names:
            raise CalibrationError("EasyMocap calibration lacks the 'names' list", pair[1])
        cams = [_yaml_camera(extri, n, f"_{n}", pair[1], intri) for n in names]
        return _make_rig(cams, _yaml_units([extri, intri], in_units, pair[1]), folder)
    if path.is_dir():
        files = sorted((p for p in path.iterdir()
                        if p.suffix.lower() in _YAML_SUFFIXES + (".xml",)),
                       key=lambda p: natural_key(p.name))  # fmt: skip
        if not files:
            raise CalibrationError("folder holds no *.yml/*.yaml calibration files", path)
        fss = [_open_filestorage(p) for p in files]
        cams = [_yaml_camera(fs, p.stem, "", p) for fs, p in zip(fss, files, strict=True)]
        return _make_rig(cams, _yaml_units(fss, in_units, path), path)
    fs = _open_filestorage(path)
    names = _yaml_names(fs, path)
    if names:
        cams = [_yaml_camera(fs, n, f"_{n}", path) for n in names]
    else:
        cams = [_yaml_camera(fs, path.name.split(".")[0], "", path)]
    return _make_rig(cams, _yaml_units([fs], in_units, path), path)


def opencv_yaml_text(rig: Rig, part: str = "all") -> str:
    """The rig as OpenCV YAML in EasyMocap's layout, with ``units`` and image sizes.

    Args:
        rig: the cameras (pinhole only).
        part: "intri" (K, dist, size), "extri" (R as rvec, Rot, T) or "all" (both in one file).
    """
    import cv2

    if any(c.model != "pinhole" for c in rig.cameras):
        raise CalibrationError("OpenCV YAML export supports pinhole cameras only")
    bad = [c.name for c in rig.cameras if not re.fullmatch(r"[A-Za-z0-9_.-]+", c.name)]
    if bad:
        raise CalibrationError(f"camera names {bad} cannot be YAML keys (K_<name>); use "
                               "letters, digits, '_', '-' and '.' only")  # fmt: skip
    fs = cv2.FileStorage(".yml", cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)
    fs.startWriteStruct("names", cv2.FileNode_SEQ)
    for cam in rig.cameras:
        fs.write("", cam.name)
    fs.endWriteStruct()
    fs.write("units", rig.units)
    for cam in rig.cameras:
        n = cam.name
        if part in ("intri", "all"):
            fs.write(f"K_{n}", cam.K)
            fs.write(f"dist_{n}", cam.dist.reshape(1, -1))
            fs.write(f"W_{n}", int(cam.size_px[0]))
            fs.write(f"H_{n}", int(cam.size_px[1]))
        if part in ("extri", "all"):
            fs.write(f"R_{n}", cam.rvec.reshape(3, 1))
            fs.write(f"Rot_{n}", cam.R_cam_world)
            fs.write(f"T_{n}", cam.t_cam_world.reshape(3, 1))
    return fs.releaseAndGetString()


def save_opencv_yaml(path: str | Path, rig: Rig) -> list[Path]:
    """Write OpenCV YAML: one multi-camera file, or to a folder the EasyMocap pair.

    Args:
        path: a ``*.yml``/``*.yaml`` file, or a folder (created) that receives ``intri.yml``
            and ``extri.yml``.

    Returns:
        The files written.
    """
    path = Path(path)
    if path.suffix.lower() in _YAML_SUFFIXES:
        write_text_atomic(path, opencv_yaml_text(rig, "all"))
        return [path]
    out = [path / "intri.yml", path / "extri.yml"]
    write_text_atomic(out[0], opencv_yaml_text(rig, "intri"))
    write_text_atomic(out[1], opencv_yaml_text(rig, "extri"))
    return out


# ----------------------------------------------------------------------------- CMU Panoptic


def _panoptic_camera(entry: Any, i: int, path: Path) -> Camera:
    if not isinstance(entry, dict):
        raise CalibrationError(f"cameras[{i}] must be an object", path)
    name = str(entry.get("name", f"cam_{i}"))
    missing = [k for k in ("resolution", "K", "R", "t") if k not in entry]
    if missing:
        raise CalibrationError(f"camera '{name}' (cameras[{i}]) lacks {', '.join(missing)}", path)
    try:
        size = tuple(int(v) for v in entry["resolution"])
    except (TypeError, ValueError):
        raise CalibrationError(f"camera '{name}': resolution must be [width, height]",
                               path) from None  # fmt: skip
    return _camera(path, f"camera '{name}'", name=name, size_px=size, K=entry["K"],
                   dist=entry.get("distCoef", []), R_cam_world=entry["R"],
                   t_cam_world=np.ravel(np.asarray(entry["t"], dtype=float)))  # fmt: skip


def read_panoptic(path: str | Path, camera_type: str | None = None) -> Rig:
    """Read a CMU Panoptic calibration JSON (``calibration_<seq>.json``) in centimetres.

    Args:
        path: the JSON file: ``{"cameras": [{"name", "type", "resolution": [w, h], "K",
            "distCoef", "R", "t"}]}`` with ``x_cam = R @ x_world + t``.
        camera_type: keep only cameras of this ``type`` (e.g. "hd", "vga", "kinect-color").
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError("calibration file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"not valid JSON ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
        raise CalibrationError("a Panoptic calibration needs a top-level 'cameras' list", path)
    entries = data["cameras"]
    if camera_type is not None:
        types = sorted({str(e.get("type")) for e in entries if isinstance(e, dict)})
        entries = [e for e in entries if isinstance(e, dict) and e.get("type") == camera_type]
        if not entries:
            raise CalibrationError(f"no camera of type {camera_type!r} (types: {types})", path)
    cams = [_panoptic_camera(e, i, path) for i, e in enumerate(entries)]
    return _make_rig(cams, "cm", path)


# ----------------------------------------------------------------------------- writing


def save_any_calibration(path: str | Path, rig: Rig, fmt: str = "auto",
                         metadata: dict[str, Any] | None = None) -> list[Path]:  # fmt: skip
    """Write ``rig`` as anipose TOML (``*.toml``) or OpenCV YAML (``*.yml`` or a folder).

    Args:
        path: output file or folder.
        fmt: "auto" (from the suffix), "anipose" or "opencv".
        metadata: extra ``[metadata]`` entries for TOML (units are always recorded).

    Returns:
        The files written.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = "anipose" if path.suffix.lower() == ".toml" else (
            "opencv" if path.suffix.lower() in _YAML_SUFFIXES or not path.suffix else "")
    if fmt == "anipose":
        save_calibration(path, rig, metadata)
        return [path]
    if fmt == "opencv":
        return save_opencv_yaml(path, rig)
    raise CalibrationError(
        "cannot tell the output format: use a .toml (anipose) or .yml (OpenCV) name, or a "
        "folder for the EasyMocap intri.yml/extri.yml pair", path)  # fmt: skip


# ----------------------------------------------------------------------------- rig checks


def attention_point(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """The point nearest to every camera's optical axis (least squares), and its distances.

    With nearly parallel axes the problem is ill-posed; a weak pull towards the point 1 m in
    front of the mean camera keeps it finite.

    Returns:
        ``(point (3,), distance of the point to each optical axis (C,))`` in the rig's units.
    """
    centers = np.stack([c.center_world for c in rig.cameras])
    dirs = np.stack([c.R_cam_world[2] for c in rig.cameras])
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, d in zip(centers, dirs, strict=True):
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ c
    one_m = 1.0 / UNIT_SCALE_M[rig.units]
    prior = centers.mean(axis=0) + one_m * dirs.mean(axis=0)
    eps = 1e-6 * len(rig)
    point = np.linalg.solve(A + eps * np.eye(3), b + eps * prior)
    off = point - centers
    dist_to_axis = np.linalg.norm(off - (off * dirs).sum(axis=1, keepdims=True) * dirs, axis=1)
    return point, dist_to_axis


def rig_report(rig: Rig) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-camera geometry and warnings about suspicious rigs.

    Returns:
        ``(rows, warnings)``: one row per camera with name, size_px, focal_px, center,
        view_dir (world unit vector), distance (to the attention point, rig units),
        off_axis_deg (angle between the optical axis and the attention point) and
        centre_px (where the attention point projects); and a list of warning strings.
    """
    point, to_axis = attention_point(rig)
    rows, warnings = [], []
    for cam, axis_dist in zip(rig.cameras, to_axis, strict=True):
        d = point - cam.center_world
        dist = float(np.linalg.norm(d))
        cos = float(d @ cam.R_cam_world[2] / max(dist, 1e-12))
        depth = float(cam.world_to_cam(point)[2])
        uv = cam.project(point) if depth > 0 else np.array([np.nan, np.nan])
        rows.append({
            "name": cam.name, "size_px": cam.size_px,
            "focal_px": float((cam.K[0, 0] + cam.K[1, 1]) / 2),
            "center": cam.center_world, "view_dir": cam.R_cam_world[2], "distance": dist,
            "off_axis_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1)))),
            "centre_px": uv, "axis_miss": float(axis_dist),
        })  # fmt: skip
    if len(rig) > 1:
        warnings += _facing_warnings(rig, rows)
        warnings += _layout_warnings(rig, rows)
    warnings += _intrinsics_warnings(rig)
    return rows, warnings


def _facing_warnings(rig: Rig, rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for cam, row in zip(rig.cameras, rows, strict=True):
        u, v = row["centre_px"]
        w, h = cam.size_px
        if not np.isfinite(u):
            out.append(f"camera '{cam.name}' faces away from the scene centre (it is behind "
                       "the camera): wrong extrinsics or a world-to-camera/camera-to-world mixup?")
        elif not (0 <= u < w and 0 <= v < h):
            out.append(f"camera '{cam.name}' does not see the scene centre (it projects to "
                       f"({u:.0f}, {v:.0f}) px, outside {w}x{h}; "
                       f"{row['off_axis_deg']:.0f} deg off its axis)")  # fmt: skip
    dists = np.array([r["distance"] for r in rows])
    med = float(np.median(dists))
    misses = np.array([r["axis_miss"] for r in rows])
    if np.median(misses) > 0.25 * med:
        out.append(f"the optical axes do not converge (median miss {np.median(misses):.3g} "
                   f"{rig.units} at {med:.3g} {rig.units}): is this a rig around one scene?")
    for row in rows:
        if row["distance"] > 4 * med:
            out.append(f"camera '{row['name']}' is {row['distance']:.3g} {rig.units} from the "
                       f"scene centre, over 4x the median ({med:.3g})")  # fmt: skip
    return out


def _layout_warnings(rig: Rig, rows: list[dict[str, Any]]) -> list[str]:
    out = []
    med_m = float(np.median([r["distance"] for r in rows])) * UNIT_SCALE_M[rig.units]
    if not 0.2 <= med_m <= 50:
        out.append(f"cameras are a median {med_m:.3g} m from the scene centre: are the units "
                   f"right (the rig says {rig.units!r})?")  # fmt: skip
    centers = np.stack([c.center_world for c in rig.cameras])
    tol = 1e-3 * max(float(np.median([r["distance"] for r in rows])), 1e-12)
    for i in range(len(rig)):
        for j in range(i + 1, len(rig)):
            if np.linalg.norm(centers[i] - centers[j]) < tol:
                out.append(f"cameras '{rig.cameras[i].name}' and '{rig.cameras[j].name}' are "
                           "at the same position")  # fmt: skip
    return out


def _intrinsics_warnings(rig: Rig) -> list[str]:
    out = []
    for cam in rig.cameras:
        w, h = cam.size_px
        cx, cy = cam.K[0, 2], cam.K[1, 2]
        if abs(cx - (w - 1) / 2) > 0.25 * w or abs(cy - (h - 1) / 2) > 0.25 * h:
            hint = " (width and height swapped?)" if (0 <= cx < h and 0 <= cy < w) else ""
            out.append(f"camera '{cam.name}': principal point ({cx:.0f}, {cy:.0f}) is far from "
                       f"the centre of its {w}x{h} image{hint}")  # fmt: skip
    return out
