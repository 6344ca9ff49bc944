"""Scene geometry, run loading and the viewer's timeline (no Open3D needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mvhand.core.camera import Camera, Rig
from mvhand.core.data import Hands3D
from mvhand.core.skeleton import BONES, FINGERS
from mvhand.core.synthetic import DetectorNoise, make_hand_motion, make_or_rig, render_detections
from mvhand.errors import CalibrationError, InputError, MvhandError
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import save_keypoints
from mvhand.io.results import save_hands3d
from mvhand.viz import geometry as geo
from mvhand.viz.rundata import load_run
from mvhand.viz.scene import Scene
from mvhand.viz.viewer import Timeline, check_display

#: Reprojection of a 3D point through the view camera of a camera matches the camera (px).
VIEW_PROJECTION_PX = 1e-6


def write_synthetic_run(folder: Path, n_frames: int = 12, n_cameras: int = 4,
                        size_px: tuple[int, int] = (640, 480), seed: int = 0,
                        rig: Rig | None = None) -> tuple[Rig, np.ndarray]:  # fmt: skip
    """A run folder like `mvhand run` writes, from a synthetic scene with known truth.

    Returns the rig and the true joints ``(T, 2, 21, 3)`` metres (stored as the 3D result).
    """
    rig = rig or make_or_rig(n_cameras, seed=seed, size_px=size_px, distortion=False)
    pts = make_hand_motion(n_frames, speed="slow", seed=seed)
    kp = render_detections(rig, pts, DetectorNoise(noise_px=1.0, dropout=0.0, outlier_rate=0.0,
                                                   swap_rate=0.0, occluded_views=0.0), seed)
    err = np.random.default_rng(seed).uniform(0, 30, pts.shape[:-1])
    folder.mkdir(parents=True, exist_ok=True)
    save_hands3d(folder / "hands3d.npz", Hands3D(pts, err, np.full(pts.shape[:-1], 3),
                                                 np.ones(pts.shape[:-1])), fps=30.0)  # fmt: skip
    save_keypoints(folder / "keypoints2d.npz", kp)
    save_calibration(folder / "calibration.toml", rig)
    return rig, pts


def test_finger_colours_distinct_and_left_paler():
    right, left = geo.joint_rgb(1), geo.joint_rgb(0)
    tips = right[[4, 8, 12, 16, 20]]
    gaps = np.linalg.norm(tips[:, None] - tips[None], axis=-1)[np.triu_indices(5, 1)]
    assert gaps.min() > 0.3
    assert (left >= right - 1e-12).all() and (left.sum(1) > right.sum(1))[1:].all()
    np.testing.assert_array_equal(geo.bone_rgb(1), right[BONES[:, 1]])
    assert len(geo.FINGER_RGB) == len(FINGERS)


def test_error_colours_green_to_red_and_grey_for_nan():
    rgb = geo.error_rgb(np.array([0.0, 20.0, 100.0, np.nan]), max_px=20.0)
    assert rgb[0, 1] == 1 and rgb[0, 0] == 0
    assert rgb[1, 0] == 1 and rgb[1, 1] == 0
    np.testing.assert_array_equal(rgb[2], rgb[1])
    np.testing.assert_array_equal(rgb[3], [0.5, 0.5, 0.5])


def test_skeleton_mesh_leaves_out_missing_joints():
    pts = make_hand_motion(1, seed=1)[0]
    full = geo.skeleton_mesh(pts, "m")
    pts[0, 8] = np.nan  # index tip of the left hand: one sphere and one bone fewer
    part = geo.skeleton_mesh(pts, "m")
    n_sphere = len(geo.spheres(np.zeros((1, 3)), 1.0, [[1, 0, 0]]).vertices)
    n_tube = len(geo.tubes(np.zeros((1, 3)), np.ones((1, 3)), 1.0, [[1, 0, 0]]).vertices)
    assert len(full.vertices) - len(part.vertices) == n_sphere + n_tube
    assert np.isfinite(part.vertices).all()
    assert part.triangles.max() < len(part.vertices)


def test_sizes_follow_units():
    pts_m = make_hand_motion(1, seed=2)[0]
    mesh_m = geo.skeleton_mesh(pts_m, "m")
    mesh_mm = geo.skeleton_mesh(pts_m * 1000, "mm")
    np.testing.assert_allclose(mesh_mm.vertices, mesh_m.vertices * 1000, atol=1e-9)


def test_tubes_have_the_radius_and_span_the_segment():
    a, b = np.array([[0.0, 0, 0]]), np.array([[0.0, 0, 2.0]])
    m = geo.tubes(a, b, 0.5, [[1, 0, 0]])
    np.testing.assert_allclose(np.hypot(m.vertices[:, 0], m.vertices[:, 1]), 0.5)
    assert set(np.round(m.vertices[:, 2], 9)) == {0.0, 2.0}


def test_frustum_apex_at_camera_centre_and_corners_project_to_image_corners():
    rig = make_or_rig(3, seed=3, size_px=(400, 300), distortion=False)
    ls = geo.frustum_lines(rig, 0.3)
    for i, cam in enumerate(rig.cameras):
        block = ls.points[8 * i:8 * i + 8]
        np.testing.assert_allclose(block[0], cam.center_world, atol=1e-9)
        np.testing.assert_allclose(cam.project(block[1:5]), [[0, 0], [399, 0], [399, 299],
                                                              [0, 299]], atol=1e-6)  # fmt: skip
        np.testing.assert_allclose(cam.world_to_cam(block[1:5])[:, 2], 0.3, atol=1e-9)


def test_up_vector_is_z_for_an_or_rig_and_follows_a_rotated_world():
    rig = make_or_rig(6, seed=4)
    np.testing.assert_array_equal(geo.up_vector(rig), [0, 0, 1])
    flip = np.diag([1.0, -1.0, -1.0])  # world z down: up must become -z
    turned = Rig(tuple(Camera(c.name, c.size_px, c.K, c.dist, c.R_cam_world @ flip,
                              c.t_cam_world) for c in rig.cameras))  # fmt: skip
    np.testing.assert_array_equal(geo.up_vector(turned), [0, 0, -1])


def test_view_of_camera_keeps_projection_up_to_scale():
    cam = make_or_rig(2, seed=5, size_px=(1080, 1920), distortion=False)[1]
    view = geo.view_of_camera(cam, (1280, 720))
    assert view.size_px[1] == 720 and view.size_px[0] <= 1280
    pts = make_hand_motion(2, seed=5).reshape(-1, 3)
    s = np.array(view.size_px) / np.array(cam.size_px)
    expected = (cam.project(pts) + 0.5) * s - 0.5  # pixel centres scale about the corner
    np.testing.assert_allclose(view.project(pts), expected, atol=VIEW_PROJECTION_PX)


def test_orbit_camera_looks_at_target():
    target = np.array([0.1, -0.2, 1.0])
    cam = geo.orbit_camera(target, 2.0, 0.7, 0.4, np.array([0, 0, 1.0]), (640, 480))
    np.testing.assert_allclose(cam.project(target), [319.5, 239.5], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(cam.center_world - target), 2.0)
    above = cam.project(target + [0, 0, 0.1])
    assert above[1] < 239.5  # world up is image up


def test_floor_grid_lies_on_the_floor_under_everything():
    rig = make_or_rig(4, seed=6)
    pts = make_hand_motion(3, seed=6)
    grid = geo.floor_grid(rig, pts, np.array([0, 0, 1.0]), "m")
    np.testing.assert_allclose(grid.points[:, 2], 0.0)
    lo, hi = grid.points[:, :2].min(0), grid.points[:, :2].max(0)
    centers = np.stack([c.center_world for c in rig.cameras])[:, :2]
    assert (centers > lo).all() and (centers < hi).all()


def test_load_run_round_trip(tmp_path):
    rig, pts = write_synthetic_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    np.testing.assert_allclose(run.hands3d.keypoints3d, pts)
    assert run.rig.names == rig.names and run.fps == 30.0
    np.testing.assert_array_equal(run.frame_indices, np.arange(len(pts)))
    assert run.meshes is None


def test_load_run_names_missing_results_and_calibration(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no 3D results"):
        load_run(tmp_path / "empty")
    write_synthetic_run(tmp_path / "run")
    (tmp_path / "run" / "calibration.toml").unlink()
    with pytest.raises(CalibrationError, match="pass --calib"):
        load_run(tmp_path / "run")


def test_calibration_that_does_not_match_is_named(tmp_path):
    rig, _ = write_synthetic_run(tmp_path / "run")
    cams = rig.cameras  # the same cameras under each other's names (a mixed-up calibration)
    wrong = Rig(tuple(Camera(c.name, c.size_px, c.K, c.dist, d.R_cam_world, d.t_cam_world)
                      for c, d in zip(cams, cams[1:] + cams[:1], strict=True)))  # fmt: skip
    save_calibration(tmp_path / "wrong.toml", wrong)
    with pytest.raises(CalibrationError, match="does not match") as exc:
        load_run(tmp_path / "run", calib=tmp_path / "wrong.toml")
    assert "wrong.toml" in str(exc.value)
    other = Rig(tuple(Camera(f"x{i}", c.size_px, c.K, c.dist, c.R_cam_world, c.t_cam_world)
                      for i, c in enumerate(rig.cameras)))  # fmt: skip
    save_calibration(tmp_path / "names.toml", other)
    with pytest.raises(CalibrationError, match="not in this calibration"):
        load_run(tmp_path / "run", calib=tmp_path / "names.toml")


def test_calibration_check_without_2d_uses_visibility(tmp_path):
    write_synthetic_run(tmp_path / "run")
    (tmp_path / "run" / "keypoints2d.npz").unlink()
    assert load_run(tmp_path / "run").keypoints2d is None
    rig = make_or_rig(4, seed=0, size_px=(640, 480), distortion=False)
    save_calibration(tmp_path / "mm.toml", rig)
    text = (tmp_path / "mm.toml").read_text().replace('units = "m"', 'units = "mm"')
    (tmp_path / "mm.toml").write_text(text)  # metres read as millimetres: cameras 1000x closer
    with pytest.raises(CalibrationError, match="does not match"):
        load_run(tmp_path / "run", calib=tmp_path / "mm.toml")


def test_hand_meshes_are_read_and_checked(tmp_path):
    write_synthetic_run(tmp_path / "run", n_frames=5)
    verts = np.random.default_rng(0).normal(size=(5, 30, 3))
    verts[2] = np.nan
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    np.savez(tmp_path / "run" / "mesh_right.npz", vertices=verts.astype(np.float32), faces=faces)
    run = load_run(tmp_path / "run")
    assert run.meshes.vertices[0] is None
    np.testing.assert_allclose(run.meshes.vertices[1], verts, rtol=1e-6)
    meshes = Scene(run).frame_meshes(1)
    assert len(meshes) == 2 and len(meshes[1].triangles) == 2
    assert len(Scene(run).frame_meshes(2)[1].triangles) == 0  # not fitted in frame 2
    np.savez(tmp_path / "run" / "mesh_right.npz", vertices=verts, faces=faces + 100)
    with pytest.raises(InputError, match="faces"):
        load_run(tmp_path / "run")
    np.savez(tmp_path / "run" / "mesh_right.npz", vertices=verts[:3], faces=faces)
    with pytest.raises(InputError, match="vertices"):
        load_run(tmp_path / "run")


def test_scene_view_camera_by_name_and_unknown(tmp_path):
    rig, pts = write_synthetic_run(tmp_path / "run")
    scene = Scene(load_run(tmp_path / "run"))
    cam = scene.view_camera(rig.names[1], 0, (320, 240))
    assert cam.size_px == (320, 240)
    with pytest.raises(CalibrationError, match="not in the calibration"):
        scene.view_camera("nope", 0, (320, 240))
    labels = scene.labels(0, exclude_camera=rig.names[1])
    assert rig.names[1] not in [lab.text for lab in labels] and "L" in [lab.text for lab in labels]


def test_empty_results_are_named(tmp_path):
    rig, pts = write_synthetic_run(tmp_path / "run", n_frames=3)
    nan = np.full(pts.shape, np.nan)
    save_hands3d(tmp_path / "run" / "hands3d.npz", Hands3D(nan, nan[..., 0], np.zeros(
        pts.shape[:-1]), nan[..., 0]))  # fmt: skip
    with pytest.raises(InputError, match="no reconstructed joint"):
        Scene(load_run(tmp_path / "run"))


def test_hand_close_up_looks_at_that_hand(tmp_path):
    _, pts = write_synthetic_run(tmp_path / "run", n_frames=4)
    scene = Scene(load_run(tmp_path / "run"))
    cam = scene.view_camera("hand:right", 2, (400, 300))
    np.testing.assert_allclose(cam.project(pts[2, 1].mean(0)), [199.5, 149.5], atol=1e-6)
    assert np.linalg.norm(cam.center_world - pts[2, 1].mean(0)) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="unknown hand"):
        scene.view_camera("hand:middle", 0, (400, 300))


def test_timeline_plays_steps_and_loops():
    tl = Timeline(n_frames=10, fps=30.0)
    assert not tl.advance(1.0)  # paused
    tl.toggle()
    assert tl.advance(0.1) and tl.frame == 3
    tl.speed = 2.0
    tl.advance(0.2)
    assert tl.frame == 5  # 12 frames on from 3, looping over 10
    assert tl.step(-6) == 9 and not tl.playing
    assert tl.seek(50) == 9 and tl.seek(-3) == 0


def test_no_display_points_to_render(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(MvhandError, match="mvhand render"):
        check_display()
