"""caliscope camera_array.toml, Azure Kinect JSON and 4x4 camera tables (io.calib_formats)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.cli.main import cli
from mvhand.core.camera import Camera, Rig
from mvhand.core.synthetic import make_or_rig
from mvhand.errors import CalibrationError
from mvhand.io.calib_convert import FORMAT_UNITS, detect_format, load_any_calibration, load_rig
from mvhand.io.calib_formats import MATRIX4X4_COLUMNS, fit_pinhole5


def _rig(n: int = 4, units: str = "m") -> Rig:
    rig = make_or_rig(n, seed=3, size_px=(1920, 1080))
    rig = Rig(tuple(Camera(f"cam_{i}", c.size_px, c.K, c.dist, c.R_cam_world, c.t_cam_world)
                    for i, c in enumerate(rig.cameras)), "m")  # fmt: skip
    return rig if units == "m" else rig.to_units(units)


def _points(rig: Rig, n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(0)
    scale = {"m": 1.0, "cm": 100.0, "mm": 1000.0}[rig.units]
    return (rng.uniform([-0.4, -0.4, 0.7], [0.4, 0.4, 1.3], (n, 3))) * scale


def _assert_same(a: Rig, b: Rig, tol: float = 1e-9) -> None:
    assert a.names == b.names and a.units == b.units
    for ca, cb in zip(a.cameras, b.cameras, strict=True):
        assert ca.size_px == cb.size_px and ca.model == cb.model
        np.testing.assert_allclose(ca.K, cb.K, atol=tol)
        np.testing.assert_allclose(ca.dist, cb.dist, atol=tol)
        np.testing.assert_allclose(ca.R_cam_world, cb.R_cam_world, atol=tol)
        np.testing.assert_allclose(ca.t_cam_world, cb.t_cam_world, atol=tol * 1000)
    pts = _points(a)
    np.testing.assert_allclose(a.project(pts), b.project(pts), atol=1e-6)


# ----------------------------------------------------------------------------- writers


def write_caliscope(path: Path, rig: Rig) -> None:
    """caliscope's CameraArray.to_toml layout (metres, Rodrigues world-to-camera)."""
    lines = []
    for i, cam in enumerate(rig.to_units("m").cameras):
        lines += [f"[cameras.{i}]", f"cam_id = {i}", "rotation_count = 0", "error = 0.2",
                  f"size = [{cam.size_px[0]}, {cam.size_px[1]}]",
                  f"matrix = {[[repr(float(v)) for v in r] for r in cam.K]}".replace("'", ""),
                  f"distortions = {[float(v) for v in cam.dist]}",
                  f"translation = {[float(v) for v in cam.t_cam_world]}",
                  f"rotation = {[float(v) for v in cam.rvec]}",
                  "exposure = -6", "grid_count = 30", "fisheye = false", ""]  # fmt: skip
    path.write_text("\n".join(lines))


def write_matrix4x4(path: Path, rig: Rig) -> None:
    """mvhand's camera table: camera-to-reference 4x4 in mm, JSON or CSV by the suffix."""
    rig = rig.to_units("mm")
    rows = []
    for cam in rig.cameras:
        T = np.eye(4)
        T[:3, :3] = cam.R_cam_world.T
        T[:3, 3] = cam.center_world
        rows.append((cam, T))
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(MATRIX4X4_COLUMNS)
            for cam, T in rows:
                K = cam.K
                w.writerow([cam.name, *cam.size_px, repr(K[0, 0]), repr(K[1, 1]), repr(K[0, 2]),
                            repr(K[1, 2]), *map(repr, cam.dist), *map(repr, T.ravel())])
        return
    path.write_text(json.dumps({"units": "mm", "cameras": [
        {"name": c.name, "size": list(c.size_px), "K": c.K.tolist(), "dist": c.dist.tolist(),
         "camera_to_reference": T.tolist()} for c, T in rows]}))  # fmt: skip


def kinect_json(cam: Camera, sensor: tuple[int, int] = (4096, 3072), mode_rows: int = 1440,
                rational: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> dict:
    """An Azure Kinect raw calibration for colour camera ``cam`` (1080p: 1920x1440 band)."""
    K, (k1, k2, p1, p2, k3) = cam.K, cam.dist
    bw, bh = 1920, mode_rows
    params = [(K[0, 2] + 0.5) / bw, (K[1, 2] + 180 + 0.5) / bh, K[0, 0] / bw, K[1, 1] / bh,
              k1, k2, k3, *rational, 0.0, 0.0, p2, p1]  # fmt: skip
    depth = {"Intrinsics": {"ModelParameterCount": 14, "ModelParameters": [0.5] * 4 + [0] * 10,
                            "ModelType": "CALIBRATION_LensDistortionModelRational6KT"},
             "Location": "CALIBRATION_CameraLocationD0",
             "Purpose": "CALIBRATION_CameraPurposeDepth", "MetricRadius": 1.7,
             "Rt": {"Rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1], "Translation": [0, 0, 0]},
             "SensorHeight": 1024, "SensorWidth": 1024}  # fmt: skip
    color = {"Intrinsics": {"ModelParameterCount": 14, "ModelParameters": params,
                            "ModelType": "CALIBRATION_LensDistortionModelBrownConrady"},
             "Location": "CALIBRATION_CameraLocationPV0",
             "Purpose": "CALIBRATION_CameraPurposePhotoVideo", "MetricRadius": 0,
             "Rt": {"Rotation": cam.R_cam_world.ravel().tolist(),
                    "Translation": cam.t_cam_world.tolist()},
             "SensorHeight": sensor[1], "SensorWidth": sensor[0],
             "Shutter": "CALIBRATION_ShutterTypeUndefined"}  # fmt: skip
    return {"CalibrationInformation": {"Cameras": [depth, color], "InertialSensors": [],
                                       "Metadata": {"SerialId": "000123", "Version": {}}}}


# ----------------------------------------------------------------------------- caliscope


def test_caliscope_roundtrip(tmp_path):
    rig = _rig()
    path = tmp_path / "camera_array.toml"
    write_caliscope(path, rig)
    assert detect_format(path) == "caliscope" and FORMAT_UNITS["caliscope"] == "m"
    _assert_same(load_any_calibration(path), rig)
    # load_rig's units rule: a fixed-units format converts, never re-reads the numbers
    _assert_same(load_rig(path, "mm"), rig.to_units("mm"))


CALISCOPE_PUBLISHED = """\
[cameras.0]
cam_id = 0
rotation_count = 0
error = 0.19
exposure = -7.0
grid_count = 24
ignore = false
size = [1280, 720]
matrix = [[894.5, 0.0, 624.0], [0.0, 896.9, 361.3], [0.0, 0.0, 1.0]]
distortions = [-0.338, 0.0967, -0.00135, 0.00316, -0.00375]
translation = [-0.6425, 0.2629, 1.4515]
rotation = [[0.028454458274723926, -0.8200005191342249, 0.571655046705523],
  [-0.9915778577174362, -0.0954406312087065, -0.0875467760627629],
  [0.12634752031121108, -0.5643493904790591, -0.8158100695487417]]

[cameras.1]
cam_id = 1
rotation_count = 0
size = [1280, 720]
matrix = [[704.0, 0.0, 626.0], [0.0, 706.2, 348.9], [0.0, 0.0, 1.0]]
distortions = [0.192, -0.256, 0.0028, -0.0052, 0.115]
translation = [0.0, 0.0, 0.0]
rotation = [0.0, 0.0, 0.0]

[cameras.2]
cam_id = 2
size = [1280, 720]
matrix = [[637.2, 0.0, 657.4], [0.0, 633.6, 378.2], [0.0, 0.0, 1.0]]
distortions = [0.17, -0.25, -0.00075, 0.0125, 0.156]
"""


def test_caliscope_published_layout(tmp_path, caplog):
    """The layout of caliscope's own test sessions: a legacy 3x3 rotation, the anchor camera
    at the origin (R = I, t = 0: world to camera), an unposed camera skipped."""
    path = tmp_path / "camera_array.toml"
    path.write_text(CALISCOPE_PUBLISHED)
    rig = load_any_calibration(path)
    assert rig.names == ("cam_0", "cam_1") and rig.units == "m"
    np.testing.assert_allclose(rig["cam_1"].center_world, 0.0)
    c0 = rig["cam_0"]
    R = np.array([[0.028454458274723926, -0.8200005191342249, 0.571655046705523],
                  [-0.9915778577174362, -0.0954406312087065, -0.0875467760627629],
                  [0.12634752031121108, -0.5643493904790591, -0.8158100695487417]])
    np.testing.assert_allclose(c0.R_cam_world, R)
    # a point in front of camera 0 (world to camera) projects where OpenCV puts it
    X = c0.center_world + 1.5 * R[2] + 0.1 * R[0]
    ref, _ = cv2.projectPoints(X.reshape(1, 3), cv2.Rodrigues(R)[0],
                               np.array([-0.6425, 0.2629, 1.4515]), c0.K, c0.dist)
    np.testing.assert_allclose(c0.project(X), ref.ravel(), atol=1e-6)
    assert "cam_2 has no extrinsics" in caplog.text


# ----------------------------------------------------------------------------- matrix4x4


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_matrix4x4_roundtrip(tmp_path, suffix):
    rig = _rig()
    path = tmp_path / f"cameras{suffix}"
    write_matrix4x4(path, rig)
    assert detect_format(path) == "matrix4x4"
    got = load_any_calibration(path)
    assert got.units == "mm"
    _assert_same(got, rig.to_units("mm"))
    _assert_same(load_rig(path, "m"), rig)


def test_matrix4x4_direction(tmp_path):
    """camera_to_reference maps the camera's origin to its centre: a camera 2 m up at
    (0, 0, 2000) mm looking down the reference -z sees the reference origin at its centre."""
    T = np.diag([1.0, -1.0, -1.0, 1.0])
    T[:3, 3] = [0, 0, 2000]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"cameras": [{"name": "top", "size": [640, 480],
                                             "K": [[500, 0, 319.5], [0, 500, 239.5], [0, 0, 1]],
                                             "camera_to_reference": T.tolist()}]}))  # fmt: skip
    cam = load_any_calibration(path)["top"]
    np.testing.assert_allclose(cam.center_world, [0, 0, 2000])
    np.testing.assert_allclose(cam.project(np.zeros(3)), [319.5, 239.5])
    np.testing.assert_allclose(cam.project(np.array([100.0, 0, 0])), [319.5 + 25, 239.5])


# ----------------------------------------------------------------------------- Azure Kinect


def _kinect_cam() -> Camera:
    c = _rig(1).cameras[0]
    K = np.array([[904.1, 0, 953.3], [0, 903.5, 555.1], [0, 0, 1]])
    return Camera("kinect_a", (1920, 1080), K, [0.08, -0.05, 0.0008, -0.0001, 0.01],
                  c.R_cam_world, c.t_cam_world)  # fmt: skip


def test_kinect_roundtrip(tmp_path):
    cam = _kinect_cam()
    path = tmp_path / "kinect_a.json"
    path.write_text(json.dumps(kinect_json(cam)))
    assert detect_format(path) == "kinect"
    _assert_same(load_any_calibration(path), Rig((cam,), "m"))
    # 720p: same camera, K scaled by 2/3 about the pixel corners
    small = load_any_calibration(path, camera_type="720p")["kinect_a"]
    assert small.size_px == (1280, 720)
    np.testing.assert_allclose(small.K[0, 0], cam.K[0, 0] * 2 / 3)
    np.testing.assert_allclose(small.K[0, 2] + 0.5, (cam.K[0, 2] + 0.5) * 2 / 3)
    np.testing.assert_allclose(small.K[1, 2] + 0.5, (cam.K[1, 2] + 0.5) * 2 / 3)


def test_kinect_sdk_figures(tmp_path, caplog):
    """The figures a real device's raw calibration and the SDK's k4a_calibration_t give
    (published side by side): 1080p cx 953.284, cy 555.142, fx 904.142, fy 903.521."""
    params = [0.4967627227306366, 0.5108628273010254, 0.470907062292099, 0.6274453997612,
              0.7227460145950317, -2.8855903148651123, 1.6327226161956787, 0.6021990180015564,
              -2.7196261882781982, 1.565053105354309, 0, 0, -0.0001431911950930953,
              0.0007828465895727277]  # fmt: skip
    data = kinect_json(_kinect_cam())
    data["CalibrationInformation"]["Cameras"][1]["Intrinsics"]["ModelParameters"] = params
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    cam = load_any_calibration(path)["dev"]
    np.testing.assert_allclose(cam.K[[0, 1, 0, 1], [2, 2, 0, 1]],
                               [953.284424, 555.142456, 904.141541, 903.521362], atol=1e-3)
    # the rational lens model, fitted with five coefficients, is close to OpenCV's rational
    # projection over the image (about 0.7 px median, under 2 px at the corners)
    dist8 = np.array([0.7227460145950317, -2.8855903148651123, 0.0007828465895727277,
                      -0.0001431911950930953, 1.6327226161956787, 0.6021990180015564,
                      -2.7196261882781982, 1.565053105354309])  # fmt: skip
    pts = _points(Rig((cam,), "m"), 200)
    rv = cv2.Rodrigues(cam.R_cam_world)[0]
    ref = cv2.projectPoints(pts, rv, cam.t_cam_world, cam.K, dist8)[0].reshape(-1, 2)
    inside = (ref >= 0).all(1) & (ref < [1920, 1080]).all(1)
    assert inside.sum() > 50
    err = np.linalg.norm(cam.project(pts)[inside] - ref[inside], axis=1)
    assert np.median(err) < 1.0 and err.max() < 2.0
    _, worst = fit_pinhole5(cam.K, dist8, cam.size_px)
    assert 1.0 < worst < 2.0
    assert "rational lens model" in caplog.text


def test_fit_pinhole5_exact_without_rational():
    K = np.array([[900.0, 0, 960], [0, 900, 540], [0, 0, 1]])
    d = np.array([0.1, -0.05, 0.001, -0.002, 0.01, 0, 0, 0])
    got, worst = fit_pinhole5(K, d, (1920, 1080))
    np.testing.assert_array_equal(got, d[:5])
    assert worst == 0.0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("name", "text", "fmt", "needle"), [
    ("camera_array.toml", "[cameras.0]\nsize = [10, 10]\n", "caliscope", "lacks matrix"),
    ("camera_array.toml", "[cameras.0\n", "caliscope", "malformed TOML"),
    ("camera_array.toml", CALISCOPE_PUBLISHED.replace("rotation = [0.0, 0.0, 0.0]",
                                                      "rotation = [0.0, 0.0]"),
     "caliscope", "rotation must be"),
    ("k.json", '{"CalibrationInformation": {"Cameras": []}}', "kinect", "no colour camera"),
    ("k.json", '{"CalibrationInformation": 3}', "kinect", "Cameras"),
    ("k.json", '{"CalibrationInformation": ', "kinect", "not valid JSON"),
    ("t.csv", "name,width\n", "matrix4x4", "header must be"),
    ("t.csv", ",".join(MATRIX4X4_COLUMNS) + "\nc,1,2\n", "matrix4x4", "line 2 has 3 columns"),
    ("t.json", '{"units": "m", "cameras": []}', "matrix4x4", "in mm"),
    ("t.json", '{"cameras": [{"size": [2, 2], "K": [[1,0,0],[0,1,0],[0,0,1]], '
               '"camera_to_reference": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[1,0,0,1]]}]}',
     "matrix4x4", "last row"),
])  # fmt: skip
def test_bad_input_names_the_file(tmp_path, name, text, fmt, needle):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CalibrationError) as err:
        load_any_calibration(path, fmt)
    msg = str(err.value)
    assert needle in msg and name in msg and "\n" not in msg


def test_kinect_bad_mode(tmp_path):
    path = tmp_path / "k.json"
    path.write_text(json.dumps(kinect_json(_kinect_cam())))
    with pytest.raises(CalibrationError, match="colour mode must be one of"):
        load_any_calibration(path, camera_type="999p")


def test_cli_convert_lists_and_reads_new_formats(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["calib", "convert", "--help"])
    assert res.exit_code == 0
    for fmt in ("caliscope", "kinect", "matrix4x4"):
        assert fmt in res.output
    src = tmp_path / "cams.csv"
    write_matrix4x4(src, _rig())
    out = tmp_path / "out.toml"
    res = runner.invoke(cli, ["calib", "convert", str(src), str(out), "-q"])
    assert res.exit_code == 0, res.output
    _assert_same(load_any_calibration(out), _rig())
