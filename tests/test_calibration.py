"""Calibration I/O: anipose TOML, Qualisys QCA, OpenCV YAML, CMU Panoptic; rig checks; CLI."""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from mvhand.cli.main import cli
from mvhand.core.camera import Camera, Rig
from mvhand.core.synthetic import make_or_rig
from mvhand.errors import CalibrationError
from mvhand.io.calib_convert import (
    attention_point,
    detect_format,
    load_any_calibration,
    natural_key,
    read_qca,
    rig_report,
    save_any_calibration,
    save_opencv_yaml,  # fmt: skip
)
from mvhand.io.calibration import load_calibration, save_calibration

REPO = Path(__file__).resolve().parents[1]
#: Reprojection agreement after a write/read round trip through decimal text (px).
ROUNDTRIP_PX = 1e-6
#: Pose2Sim demo: the cameras stand 3-4 m from the subject (m).
QCA_DISTANCE_RANGE_M = (3.0, 4.0)
#: A camera "faces" the scene when the scene centre is this close to its optical axis (deg).
FACING_DEG = 10.0
#: Motion in the demo videos (the balancing person) is centred this close to the projection
#: of a point 0.4 m above the scene centre (px; the person is ~900 px tall in the images).
VIDEO_PERSON_PX = 250.0


def _points(rig: Rig, n: int = 50, seed: int = 0) -> np.ndarray:
    """Points around the rig's scene centre, within ~30 cm (or the rig-unit equivalent)."""
    centre, _ = attention_point(rig)
    scale = {"m": 1.0, "cm": 100.0, "mm": 1000.0}[rig.units]
    return centre + np.random.default_rng(seed).uniform(-0.3, 0.3, (n, 3)) * scale


def _assert_same_projection(a: Rig, b: Rig, points: np.ndarray, tol: float = ROUNDTRIP_PX):
    assert a.names == b.names
    scale = {"m": 1.0, "cm": 100.0, "mm": 1000.0}
    pts_b = points * scale[b.units] / scale[a.units]
    np.testing.assert_allclose(a.project(points), b.project(pts_b), atol=tol)
    for ca, cb in zip(a.cameras, b.cameras, strict=True):
        assert ca.size_px == cb.size_px


# ----------------------------------------------------------------------------- anipose TOML


def test_anipose_roundtrip_keeps_order_units_and_projection(tmp_path):
    rig = make_or_rig(12)
    path = tmp_path / "rig.toml"
    save_calibration(path, rig)
    loaded = load_calibration(path)
    assert loaded.names == tuple(f"cam_{i}" for i in range(1, 13))  # not cam_1, cam_10, ...
    assert loaded.units == "m"
    assert tomllib.loads(path.read_text())["metadata"]["units"] == "m"
    _assert_same_projection(rig, loaded, _points(rig))


def test_anipose_without_metadata_needs_units(tmp_path, shared_data):
    """The handmocap fixture is in mm but does not say so: in_units decides."""
    src = shared_data / "handmocap" / "calibration.toml"
    as_mm = load_any_calibration(src, in_units="mm")
    as_m = load_any_calibration(src, in_units="mm", units="m")
    assert as_mm.units == "mm" and as_m.units == "m"
    np.testing.assert_allclose(as_m.cameras[1].center_world * 1000, as_mm.cameras[1].center_world)
    # the study's own 3D (mm) reprojects onto its 2D detections only in the right units
    ref = np.load(shared_data / "handmocap" / "right_3d_reference_0123.npy")
    kp = np.load(shared_data / "handmocap" / "right_2d.npy").astype(float)
    kp[(kp == -1).all(axis=-1)] = np.nan
    err = np.linalg.norm(as_mm.project(ref) - kp, axis=-1)
    assert np.nanmedian(err) < 2.0
    err_m = np.linalg.norm(as_m.project(ref / 1000) - kp, axis=-1)
    np.testing.assert_allclose(err_m, err, atol=1e-6, equal_nan=True)


def test_example_rig_matches_its_generator():
    """calibration/or12_synthetic.toml is make_or_rig(12) (see calibration/README.md)."""
    path = REPO / "calibration" / "or12_synthetic.toml"
    loaded = load_calibration(path)
    assert tomllib.loads(path.read_text())["metadata"]["units"] == "m"
    _assert_same_projection(make_or_rig(12), loaded, _points(loaded))


# ----------------------------------------------------------------------------- Qualisys QCA


def test_qca_demo_geometry(shared_data):
    rig = load_any_calibration(shared_data / "pose2sim_single" / "Calib.qca.txt", units="m")
    assert rig.names == ("cam01", "cam02", "cam03", "cam04")
    assert rig.units == "m"
    assert all(c.size_px == (1088, 1920) for c in rig.cameras)
    rows, warnings = rig_report(rig)
    assert warnings == []
    for cam, row in zip(rig.cameras, rows, strict=True):
        assert QCA_DISTANCE_RANGE_M[0] < row["distance"] < QCA_DISTANCE_RANGE_M[1], cam.name
        assert row["off_axis_deg"] < FACING_DEG, cam.name
        u, v = row["centre_px"]
        w, h = cam.size_px
        assert 0.2 * w < u < 0.8 * w and 0.2 * h < v < 0.8 * h, (cam.name, u, v)
        # intrinsics: 1/64 sub-pixels -> px, principal point near the image centre
        assert 1600 < cam.K[0, 0] < 1750 and abs(cam.K[0, 2] - w / 2) < 0.1 * w


def test_convention_qca_world_up_is_image_up(shared_data):
    """Upright images: a point above the scene centre projects higher (smaller v) in every
    camera, and cameras stand above the scene centre (world z up, Qualisys' convention)."""
    rig = load_any_calibration(shared_data / "pose2sim_single" / "Calib.qca.txt", units="m")
    centre, _ = attention_point(rig)
    for cam in rig.cameras:
        low, high = cam.project(np.stack([centre, centre + [0, 0, 0.5]]))
        assert high[1] < low[1] - 100, cam.name
        assert abs(high[0] - low[0]) < 0.5 * (low[1] - high[1]), cam.name
        assert cam.center_world[2] > centre[2]


def _motion_centre(video: Path) -> np.ndarray:
    """Median position (px) of pixels that change between a few frames of ``video``."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    for k in range(61):
        if k % 30 == 0:
            ok, frame = cap.read()
            assert ok, video
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.int16))
        else:
            cap.grab()
    cap.release()
    moving = np.zeros(frames[0].shape, bool)
    for a, b in zip(frames, frames[1:], strict=False):
        moving |= np.abs(a - b) > 40
    ys, xs = np.nonzero(moving)
    return np.array([np.median(xs), np.median(ys)])


def test_qca_demo_projects_onto_the_person(shared_data):
    """Real check: the moving person in each demo video is where the calibration puts the
    scene centre's upper body."""
    folder = shared_data / "pose2sim_single"
    rig = load_any_calibration(folder / "Calib.qca.txt", units="m")
    centre, _ = attention_point(rig)
    for i, cam in enumerate(rig.cameras):
        uv = cam.project(centre + [0, 0, 0.4])
        motion = _motion_centre(folder / "videos" / f"cam0{i + 1}.mp4")
        assert np.linalg.norm(uv - motion) < VIDEO_PERSON_PX, (cam.name, uv, motion)


def _write_qca(path: Path, rig: Rig, left: int = 0, top: int = 0) -> None:
    """A QCA file for ``rig`` (mm) in Qualisys' conventions, with a video window offset."""
    cams = []
    for cam in rig.cameras:
        R_qca = np.diag([1.0, -1.0, -1.0]) @ cam.R_cam_world
        c = cam.center_world
        w, h = cam.size_px
        k1, k2, p1, p2, k3 = cam.dist
        rot = " ".join(f'r{i + 1}{j + 1}="{R_qca[i, j]!r}"' for i in range(3) for j in range(3))
        cams.append(
            f'<camera active="1" model="Miqus Video" serial="{cam.name}">'
            f'<fov_video left="{left}" top="{top}" right="{left + w - 1}" bottom="{top + h - 1}"/>'
            f'<transform x="{c[0]!r}" y="{c[1]!r}" z="{c[2]!r}" {rot}/>'
            f'<intrinsic focalLengthU="{cam.K[0, 0] * 64!r}" focalLengthV="{cam.K[1, 1] * 64!r}" '
            f'centerPointU="{(cam.K[0, 2] + left) * 64!r}" '
            f'centerPointV="{(cam.K[1, 2] + top) * 64!r}" radialDistortion1="{k1!r}" '
            f'radialDistortion2="{k2!r}" radialDistortion3="{k3!r}" '
            f'tangentalDistortion1="{p1!r}" tangentalDistortion2="{p2!r}"/></camera>')
    marker = ('<camera active="1" model="Miqus M3" serial="ir1"><fov_video left="0" top="0" '
              'right="9" bottom="9"/></camera>')  # a marker camera: dropped, never parsed
    path.write_text(f'<?xml version="1.0"?><calibration><cameras>{"".join(cams)}{marker}'
                    "</cameras></calibration>")


def test_qca_synthetic_roundtrip(tmp_path):
    rig = make_or_rig(12).to_units("mm")
    path = tmp_path / "rig.qca.txt"
    _write_qca(path, rig, left=16, top=8)
    assert detect_format(path) == "qca"
    loaded = read_qca(path)
    assert loaded.units == "mm"
    _assert_same_projection(rig, loaded, _points(rig), tol=1e-6)


def test_qca_units_are_fixed(tmp_path, caplog):
    rig = make_or_rig(3).to_units("mm")
    path = tmp_path / "rig.qca"
    _write_qca(path, rig)
    with caplog.at_level(logging.WARNING):
        loaded = load_any_calibration(path, in_units="m")
    assert loaded.units == "mm" and "always in mm" in caplog.text
    in_cm = load_any_calibration(path, units="cm")
    np.testing.assert_allclose(in_cm.cameras[0].t_cam_world * 10, loaded.cameras[0].t_cam_world)


# ----------------------------------------------------------------------------- OpenCV YAML


@pytest.mark.parametrize("target", ["one.yml", "easymocap"])
def test_opencv_yaml_roundtrip(tmp_path, target):
    rig = make_or_rig(12).to_units("mm")
    written = save_opencv_yaml(tmp_path / target, rig)
    assert len(written) == (1 if target.endswith(".yml") else 2)
    src = tmp_path / target
    assert detect_format(src) == "opencv"
    loaded = load_any_calibration(src)
    assert loaded.units == "mm"  # recorded in the file, not assumed
    _assert_same_projection(rig, loaded, _points(rig))
    if target == "easymocap":  # the pair can be named by either file too
        assert load_any_calibration(src / "extri.yml").names == rig.names


def _per_camera_yaml(cam: Camera, header: bool) -> str:
    """A hand-written per-camera file: ROS-like matrices, integer literals, rvec + tvec."""
    K = ", ".join(repr(float(v)) if v != int(v) else str(int(v)) for v in cam.K.ravel())
    lines = [
        "%YAML:1.0" if header else "# no header",
        f"image_width: {cam.size_px[0]}",
        f"image_height: {cam.size_px[1]}",
        "camera_matrix:", "  rows: 3", "  cols: 3", f"  data: [{K}]",
        "distortion_coefficients: !!opencv-matrix", "  rows: 1", "  cols: 5", "  dt: d",
        f"  data: [{', '.join(repr(v) for v in cam.dist)}]",
        f"rvec: [{', '.join(repr(v) for v in cam.rvec)}]",
        f"tvec: [{', '.join(repr(v) for v in cam.t_cam_world)}]",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_opencv_per_camera_folder_natural_order(tmp_path):
    cams = []
    for cam in make_or_rig(12).cameras:  # integer principal point: exact integer literals
        K = cam.K.copy()
        K[:2, 2] = np.round(K[:2, 2])
        cams.append(Camera(cam.name, cam.size_px, K, cam.dist, cam.R_cam_world,
                           cam.t_cam_world))  # fmt: skip
    rig = Rig(tuple(cams), "m")
    for i, cam in enumerate(rig.cameras):
        (tmp_path / f"{cam.name}.yaml").write_text(_per_camera_yaml(cam, header=i % 2 == 0))
    loaded = load_any_calibration(tmp_path, in_units="m")
    assert loaded.names == rig.names  # cam_2 before cam_10
    _assert_same_projection(rig, loaded, _points(rig), tol=1e-5)
    single = load_any_calibration(tmp_path / "cam_7.yaml")
    assert single.names == ("cam_7",)


def test_opencv_multi_file_with_rotation_matrices(tmp_path):
    """``Rot_<name>`` 3x3 (no rvec) and no image size: size from the principal point."""
    rig = make_or_rig(4, distortion=False)
    text = ["%YAML:1.0", "names:"] + [f"  - {c.name}" for c in rig.cameras]
    for c in rig.cameras:
        for key, mat in ((f"K_{c.name}", c.K), (f"Rot_{c.name}", c.R_cam_world),
                         (f"T_{c.name}", c.t_cam_world.reshape(3, 1))):  # fmt: skip
            text += [f"{key}: !!opencv-matrix", f"  rows: {mat.shape[0]}",
                     f"  cols: {mat.shape[1]}", "  dt: d",
                     f"  data: [{', '.join(repr(float(v)) for v in mat.ravel())}]"]  # fmt: skip
    path = tmp_path / "cams.yml"
    path.write_text("\n".join(text) + "\n")
    loaded = load_any_calibration(path)
    assert loaded.cameras[0].size_px == rig.cameras[0].size_px
    _assert_same_projection(rig, loaded, _points(rig))


# ----------------------------------------------------------------------------- CMU Panoptic


def _panoptic_json(rig_cm: Rig) -> dict:
    cams = []
    for i, c in enumerate(rig_cm.cameras):
        cams.append({"name": f"00_{i:02d}", "type": "hd" if i % 2 == 0 else "vga",
                     "resolution": list(c.size_px), "K": c.K.tolist(),
                     "distCoef": c.dist.tolist(), "R": c.R_cam_world.tolist(),
                     "t": c.t_cam_world.reshape(3, 1).tolist()})  # fmt: skip
    return {"calibDataSource": "synthetic", "cameras": cams}


def test_panoptic_projects_like_a_direct_construction(tmp_path):
    rig_cm = make_or_rig(6, seed=3).to_units("cm")
    path = tmp_path / "calibration_seq.json"
    path.write_text(json.dumps(_panoptic_json(rig_cm)))
    loaded = load_any_calibration(path, units="m")
    assert loaded.units == "m" and loaded.names[0] == "00_00"
    direct = Rig(tuple(Camera(f"00_{i:02d}", c.size_px, c.K, c.dist, c.R_cam_world,
                              c.t_cam_world) for i, c in enumerate(rig_cm.cameras)), "cm")
    _assert_same_projection(direct, loaded, _points(direct))
    hd = load_any_calibration(path, camera_type="hd")
    assert hd.names == ("00_00", "00_02", "00_04") and hd.units == "cm"


# ----------------------------------------------------------------------------- rig checks


def test_rig_report_flags_a_camera_facing_away():
    rig = make_or_rig(6, distortion=False)
    bad = rig.cameras[2]
    flip = Rotation.from_euler("y", np.pi).as_matrix()  # half turn about the camera's y axis
    R = flip @ bad.R_cam_world
    turned = Camera(bad.name, bad.size_px, bad.K, bad.dist, R, -R @ bad.center_world)
    cams = list(rig.cameras)
    cams[2] = turned
    _, warnings = rig_report(Rig(tuple(cams), "m"))
    assert any("'cam_3'" in w and "faces away" in w for w in warnings), warnings
    assert rig_report(rig)[1] == []


def test_rig_report_flags_units_and_swapped_size():
    rig = make_or_rig(4, distortion=False)
    as_if_mm = Rig(rig.to_units("mm").cameras, "m")  # mm numbers labelled as metres
    assert any("units" in w for w in rig_report(as_if_mm)[1])
    c = rig.cameras[0]
    cams = (c.with_size((c.size_px[1], c.size_px[0])),) + rig.cameras[1:]
    assert any("swapped" in w for w in rig_report(Rig(cams, "m"))[1])


# ----------------------------------------------------------------------------- bad input


def _bad_files(tmp_path: Path) -> list[tuple[Path, str]]:
    rig = make_or_rig(2).to_units("mm")
    qca = tmp_path / "ok.qca.txt"
    _write_qca(qca, rig)
    text = qca.read_text()
    cases = {
        "broken.qca.txt": (text[:200], "malformed XML"),
        "nofocal.qca.txt": (text.replace('focalLengthU="', 'focalLength_U="', 1),
                            "lacks the attribute 'focalLengthU'"),
        "nan.qca.txt": (text.replace('focalLengthV="', 'focalLengthV="nan" x_="', 1),
                        "NaN"),
        "empty.qca.txt": ('<?xml version="1.0"?><calibration/>', "no active <camera>"),
        "bad.toml": ("[cam_0\nsize = 3", "not a valid TOML"),
        "nokey.toml": ('[cam_0]\nsize = [640, 480]\n', "lacks the key(s)"),
        "singular.yml": ("%YAML:1.0\nK: [0, 0, 0, 0, 0, 0, 0, 0, 1]\nR: [0, 0, 0]\n"
                         "T: [0, 0, 1]\nimage_size: [640, 480]\n", "singular"),
        "noext.yml": ("%YAML:1.0\nK: [500, 0, 320, 0, 500, 240, 0, 0, 1]\n", "no extrinsics"),
        "garbage.yml": ("%YAML:1.0\nK: [1, 2\n : : }\n", "not a readable OpenCV"),
        "nocams.json": ('{"foo": 1}', "'cameras' list"),
        "badjson.json": ('{"cameras": [', "not valid JSON"),
        "nok.json": ('{"cameras": [{"name": "a", "resolution": [4, 4], "R": [], "t": []}]}',
                     "lacks K"),
        "what.dat": ("hello", "cannot tell the calibration format"),
    }  # fmt: skip
    out = []
    for name, (content, msg) in cases.items():
        (tmp_path / name).write_text(content)
        out.append((tmp_path / name, msg))
    out.append((tmp_path / "missing.toml", "not found"))
    return out


def test_bad_inputs_name_the_file_and_problem(tmp_path):
    for path, msg in _bad_files(tmp_path):
        with pytest.raises(CalibrationError) as info:
            load_any_calibration(path)
        assert path.name in str(info.value), (path.name, str(info.value))
        assert msg in str(info.value), (path.name, str(info.value))


def test_natural_key_orders_numbers():
    names = ["cam_10", "cam_2", "cam_1", "Cam_11"]
    assert sorted(names, key=natural_key) == ["cam_1", "cam_2", "cam_10", "Cam_11"]


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("args", [["calib"], ["calib", "convert"], ["calib", "show"]])
def test_cli_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_cli_convert_and_show(tmp_path):
    rig = make_or_rig(12).to_units("mm")
    src = tmp_path / "lab.qca.txt"
    _write_qca(src, rig)
    out = tmp_path / "out" / "lab.toml"
    runner = CliRunner()
    result = runner.invoke(cli, ["calib", "convert", str(src), str(out), "--units", "cm"])
    assert result.exit_code == 0, result.output
    meta = tomllib.loads(out.read_text())["metadata"]
    assert meta["units"] == "cm" and meta["source_format"] == "qca"
    _assert_same_projection(rig, load_calibration(out), _points(rig))
    yml = tmp_path / "lab.yml"
    result = runner.invoke(cli, ["calib", "convert", str(out), str(yml), "-q",
                                 "--cameras", "cam_2,cam_10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_any_calibration(yml).names == ("cam_2", "cam_10")
    result = runner.invoke(cli, ["calib", "show", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "cam_12" in result.output and "no problems found" in result.output


def test_cli_show_check_fails_on_a_suspicious_rig(tmp_path):
    rig = make_or_rig(4, distortion=False)
    path = tmp_path / "wrong_units.toml"
    save_any_calibration(path, Rig(rig.to_units("mm").cameras, "m"))
    result = CliRunner().invoke(cli, ["calib", "show", str(path), "--check"])
    assert result.exit_code == 1
    assert "warning" in result.output and "units" in result.output


def test_cli_bad_input_is_a_short_error(tmp_path):
    path = tmp_path / "broken.qca.txt"
    path.write_text("<calibration><cameras><camera")
    result = CliRunner().invoke(cli, ["calib", "convert", str(path), str(tmp_path / "o.toml")])
    assert result.exit_code == 2
    assert "error:" in result.output and "broken.qca.txt" in result.output
    assert "Traceback" not in result.output
