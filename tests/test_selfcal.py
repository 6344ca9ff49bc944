"""Self-calibration against known truth: a camera turned and moved is put back, an exact rig is
left alone, and the run reports what it did."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mvhand.calibrate.bundle import similarity_align
from mvhand.calibrate.selfcal import (
    ScenePoints,
    SelfCalibration,
    SelfCalibrationConfig,
    held_out_errors,
    self_calibrate,  # fmt: skip
)
from mvhand.core import synthetic
from mvhand.core.camera import Camera, Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.people import Detections2D, PeopleResult
from mvhand.core.triangulate import TriangulationConfig, triangulate_points
from mvhand.pipeline.selfcal import people_points, selfcal_warnings, single_person_points


def _turned(rig: Rig, c: int, deg: float, shift_m: float) -> Rig:
    """The rig with camera ``c`` turned by ``deg`` about its image x axis and moved sideways."""
    cam = rig.cameras[c]
    R = Rotation.from_rotvec([np.deg2rad(deg), 0, 0]).as_matrix() @ cam.R_cam_world
    centre = cam.center_world + shift_m * cam.R_cam_world[0]
    bad = Camera(cam.name, cam.size_px, cam.K, cam.dist, R, -R @ centre, cam.model)
    return Rig(rig.cameras[:c] + (bad,) + rig.cameras[c + 1 :], rig.units)


def _hands(rig: Rig, T: int = 60, noise_px: float = 1.5, seed: int = 0):
    truth = synthetic.make_hand_motion(T, speed="slow", seed=seed)  # (T, 2, 21, 3)
    px = rig.project(truth) + np.random.default_rng(seed).normal(0, noise_px,
                                                                  (len(rig), *truth.shape[:-1], 2))
    return truth, px


def _shape_and_place_mm(rig: Rig, px: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Median 3D error (mm) of the robust triangulation in ``rig``: after the best similarity
    onto the truth (the shape), and as it is (the place)."""
    X, _ = triangulate_points(rig, px, np.ones(px.shape[:-1]), TriangulationConfig())
    ok = np.isfinite(X).all(-1)
    s, R, t = similarity_align(X[ok], truth[ok])
    shape = np.linalg.norm(s * X[ok] @ R.T + t - truth[ok], axis=-1)
    return 1e3 * float(np.median(shape)), 1e3 * float(np.median(
        np.linalg.norm(X[ok] - truth[ok], axis=-1)))


def test_cameras_off_by_fractions_of_a_degree_are_made_consistent():
    rig = synthetic.make_or_rig(4, distortion=False)
    truth, px = _hands(rig, noise_px=4.0)
    rng = np.random.default_rng(5)
    cams = []
    for c in rig.cameras:  # every camera turned ~0.4 deg and moved ~1 cm, as on Pose2Sim
        R = Rotation.from_rotvec(rng.normal(0, np.deg2rad(0.4), 3)).as_matrix() @ c.R_cam_world
        centre = c.center_world + rng.normal(0, 0.01, 3)
        cams.append(Camera(c.name, c.size_px, c.K, c.dist, R, -R @ centre, c.model))
    given = Rig(tuple(cams), rig.units)
    res = self_calibrate(given, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))
    assert res.applied
    before, after = res.info["check"]["held_out_median_px"]
    assert after < 0.5 * before  # on frames the refinement did not see
    exact, _ = _shape_and_place_mm(rig, px, truth)
    shape_given, place_given = _shape_and_place_mm(given, px, truth)
    shape_new, place_new = _shape_and_place_mm(res.rig, px, truth)
    # the hands' shape as good as with the exact cameras (9.1 mm with the given ones) ...
    assert shape_new < 1.1 * exact and shape_new < 0.6 * shape_given
    # ... in the given calibration's world frame: the scene alone cannot say where that is
    assert abs(place_new - place_given) < 0.1 * place_given
    assert selfcal_warnings(res, SelfCalibrationConfig(warn_deg=0.2))  # cameras off by > 0.2 deg


def test_a_camera_turned_by_a_degree_is_turned_back():
    rig = synthetic.make_or_rig(4, distortion=False)
    truth, px = _hands(rig)
    res = self_calibrate(_turned(rig, 2, 1.0, 0.02),
                         ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))  # fmt: skip
    assert res.applied
    before, after = res.info["check"]["held_out_median_px"]
    assert after < 0.25 * before
    turned = res.info["cameras"][rig.names[2]]["rotation_deg"]
    assert max(v["rotation_deg"] for v in res.info["cameras"].values()) == turned


def test_an_exact_rig_is_left_alone():
    rig = synthetic.make_or_rig(4, distortion=False)
    _, px = _hands(rig, seed=1)
    res = self_calibrate(rig, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))
    assert not res.applied
    assert res.rig is rig
    assert "did not see" in res.info["reason"]
    assert abs(res.info["check"]["gain"]) < SelfCalibrationConfig().min_gain


def test_too_few_points_or_cameras():
    rig = synthetic.make_or_rig(4, distortion=False)
    _, px = _hands(rig, T=3)
    res = self_calibrate(rig, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))
    assert not res.applied and "at least 200 needed" in res.info["reason"]
    two = rig.subset(rig.names[:2])
    _, px2 = _hands(two)
    res = self_calibrate(two, ScenePoints.from_arrays(px2, np.ones(px2.shape[:-1]), 0))
    assert not res.applied and res.info["reason"] == "fewer than 3 cameras"


def test_held_out_errors_are_zero_on_exact_data():
    rig = synthetic.make_or_rig(4, distortion=False)
    truth = synthetic.make_hand_motion(5)
    px = rig.project(truth)
    e = held_out_errors(rig, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0),
                        TriangulationConfig())  # fmt: skip
    assert e.size == 4 * truth[..., 0].size and e.max() < 1e-6


def test_scene_points_of_one_person_and_of_people():
    rig = synthetic.make_or_rig(3, distortion=False)
    truth = synthetic.make_hand_motion(4)
    px = rig.project(truth)
    kp = Keypoints2D(px, np.ones(px.shape[:-1]), rig.names)
    body = np.full((3, 4, 17, 2), 5.0), np.full((3, 4, 17), 0.9)
    body[1][:, :, 0] = 0.2  # below body_min_score: not used
    cfg = SelfCalibrationConfig()
    pts = single_person_points(rig, kp, *body, cfg, TriangulationConfig())
    assert pts.points_px.shape == (3, 4 * 42 + 4 * 17, 2)
    assert np.array_equal(np.bincount(pts.kind), [4 * 42, 4 * 17])
    assert np.allclose(pts.points_px[:, : 4 * 42], px.reshape(3, -1, 2))
    assert (pts.scores[:, 4 * 42 :].reshape(3, 4, 17)[..., 0] == 0).all()
    hands_only = single_person_points(rig, kp, *body, SelfCalibrationConfig(sources="hands"),
                                      TriangulationConfig())  # fmt: skip
    assert (hands_only.kind == 0).all()
    # people: rows of two cameras, one person; slot 1 of the row is the person's left hand
    det = Detections2D(camera=[0, 1], frame=[2, 2], body_px=np.ones((2, 17, 2)),
                       body_scores=np.ones((2, 17)),
                       hands_px=np.stack([px[:2, 2, 1], px[:2, 2, 0]], 1),
                       hands_scores=np.ones((2, 2, 21)), source=[0, 0], cameras=rig.names,
                       n_frames=4)  # fmt: skip
    res = PeopleResult(np.zeros((4, 1, 2, 21, 3)), np.zeros((4, 1, 2, 21)), np.zeros((4, 1, 2, 21)),
                       np.zeros((4, 1, 17, 3)), np.zeros((4, 1)), np.array([0]), np.array([0, 0]),
                       np.array([[0, 0], [0, 0]]), np.array([[1, 0], [1, 0]]), "m", {})  # fmt: skip
    pp = people_points(det, res, cfg)
    hand = pp.points_px[:, pp.kind == 0].reshape(3, 4, 2, 21, 2)
    assert np.allclose(hand[:2, 2, 0], px[:2, 2, 0]) and np.allclose(hand[:2, 2, 1], px[:2, 2, 1])
    assert np.isnan(hand[2]).all() and np.isnan(hand[:, [0, 1, 3]]).all()


@pytest.mark.parametrize("units", ["m", "mm"])
def test_units_do_not_change_the_refinement(units):
    rig = synthetic.make_or_rig(4, distortion=False)
    _, px = _hands(rig, seed=2)
    bad = _turned(rig, 1, 0.8, 0.0).to_units(units)
    res = self_calibrate(bad, ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))
    ref = self_calibrate(_turned(rig, 1, 0.8, 0.0),
                         ScenePoints.from_arrays(px, np.ones(px.shape[:-1]), 0))  # fmt: skip
    assert res.applied and ref.applied
    for name in rig.names:
        assert res.info["cameras"][name]["rotation_deg"] == pytest.approx(
            ref.info["cameras"][name]["rotation_deg"], abs=1e-3)


def test_a_run_with_a_turned_camera_uses_and_reports_the_refined_cameras(tmp_path):
    """``mvhand run`` on the scripted three-camera scene whose calibration has one camera
    turned by 2 degrees: the refined cameras are used, the given ones kept beside them, the
    report and the console say so; with self-calibration off the run keeps the given ones."""
    import json

    from test_run_pipeline import FAST, Factory, make_scene_dir

    from mvhand.io.calibration import load_calibration, save_calibration
    from mvhand.pipeline.config import load_pipeline
    from mvhand.pipeline.run import run_pipeline

    scene, root = make_scene_dir(tmp_path / "scene")
    turned = _turned(scene.rig, 1, 2.0, 0.0)
    save_calibration(root / "turned.toml", turned)
    runs = {}
    for name, extra in (("on", []), ("off", ["self_calibration.enabled=false"])):
        out = tmp_path / name
        run_pipeline(root / "turned.toml", root / "videos", out, load_pipeline(None, FAST + extra),
                     backend_factory=Factory(scene))  # fmt: skip
        runs[name] = (json.loads((out / "report.json").read_text()),
                      np.load(out / "hands3d.npz")["keypoints3d"], out)  # fmt: skip
    report, X_on, out = runs["on"]
    sc = report["self_calibration"]
    assert sc["applied"] and sc["check"]["gain"] > 0.5
    assert max(sc["cameras"], key=lambda c: sc["cameras"][c]["rotation_deg"]) == "cam2"
    assert any("self-calibration turned cam2" in w for w in report["warnings"])
    given = load_calibration(out / "calibration_given.toml")
    np.testing.assert_allclose(given.extrinsics, load_calibration(root / "turned.toml").extrinsics,
                               atol=1e-12)
    used = load_calibration(out / "calibration.toml")
    assert np.abs(used.extrinsics - given.extrinsics).max() > 1e-3
    report_off, X_off, out_off = runs["off"]
    assert report_off["self_calibration"] == {"applied": False, "reason": "switched off"}
    assert not (out_off / "calibration_given.toml").exists()
    truth = scene.hands

    def shape_mm(X):
        ok = np.isfinite(X).all(-1)
        s, R, t = similarity_align(X[ok], truth[ok])
        return 1e3 * np.median(np.linalg.norm(s * X[ok] @ R.T + t - truth[ok], axis=-1))

    # three cameras, one turned: the 3D stays as good (a 2-degree turn barely bends a small
    # scene's shape), and the cameras agree with each other again
    assert shape_mm(X_on) < 1.1 * shape_mm(X_off)
    err = [r["reconstruction"]["hands"]["left"]["median_reprojection_error_px"]
           for r in (report, report_off)]  # fmt: skip
    assert err[0] < 0.2 * err[1]
    assert "self_calibration" in (out / "config.toml").read_text()
    from mvhand.pipeline.run import _title

    worst = max(v["rotation_deg"] for v in sc["cameras"].values())
    assert _title("v", SelfCalibration(used, True, sc)) == (
        f"v (self-calibrated cameras: up to {worst:.1f} deg from the given calibration)")
    assert _title("v", SelfCalibration(given, False, {})) == "v"


def test_a_failing_adjustment_keeps_the_given_cameras(monkeypatch, caplog):
    import mvhand.pipeline.selfcal as ps

    def broken(*a, **k):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(ps, "_self_calibrate", broken)
    rig = synthetic.make_or_rig(3, distortion=False)
    pts = ScenePoints.from_arrays(np.zeros((3, 1, 1, 2)), np.ones((3, 1, 1)), 0)
    res = ps.self_calibrate(rig, pts, SelfCalibrationConfig(), TriangulationConfig())
    assert res.rig is rig and not res.applied and "Singular matrix" in res.info["reason"]
    assert "the given cameras are used" in caplog.text


def test_triangulate_self_calibrates_only_when_asked(tmp_path):
    import json

    from click.testing import CliRunner

    from mvhand.cli.main import cli
    from mvhand.io.calibration import load_calibration, save_calibration
    from mvhand.io.keypoints import save_keypoints

    rig = synthetic.make_or_rig(4, distortion=False)
    truth, px = _hands(rig)
    save_keypoints(tmp_path / "kp.npz", Keypoints2D(px, np.ones(px.shape[:-1]), rig.names,
                                                    fps=30.0))  # fmt: skip
    save_calibration(tmp_path / "turned.toml", _turned(rig, 2, 1.0, 0.02))
    base = ["triangulate", "--calib", str(tmp_path / "turned.toml"), "--keypoints",
            str(tmp_path / "kp.npz"), "--set", "optimizer.enabled=false"]  # fmt: skip
    plain = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "plain" / "calibration_given.toml").exists()
    assert "self_calibration" not in json.loads((tmp_path / "plain" / "report.json").read_text())
    out = CliRunner().invoke(cli, [*base, "--self-calibrate", "--out", str(tmp_path / "sc")])
    assert out.exit_code == 0, out.output
    assert "calibration_given.toml" in out.output
    report = json.loads((tmp_path / "sc" / "report.json").read_text())
    assert report["self_calibration"]["applied"]
    given = load_calibration(tmp_path / "sc" / "calibration_given.toml")
    used = load_calibration(tmp_path / "sc" / "calibration.toml")
    np.testing.assert_allclose(given.extrinsics, load_calibration(tmp_path / "turned.toml")
                               .extrinsics, atol=1e-12)  # fmt: skip
    assert np.abs(used.extrinsics - given.extrinsics).max() > 1e-3
    # the 3D is as near the truth as with the exact cameras (1.36 mm), nearer than with the
    # given ones (1.70 mm: their robust triangulation drops the turned camera's views)
    X = np.load(tmp_path / "sc" / "hands3d.npz")["keypoints3d"]
    X0 = np.load(tmp_path / "plain" / "hands3d.npz")["keypoints3d"]
    err = [np.nanmedian(np.linalg.norm(x - truth, axis=-1)) for x in (X, X0)]
    assert err[0] < 0.85 * err[1]
    bad = CliRunner().invoke(cli, ["triangulate", "--calib", str(tmp_path / "turned.toml"),
                                   "--people", "--self-calibrate", "--format", "coco", "x.json",
                                   "--out", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "--self-calibrate goes with --keypoints" in bad.output
