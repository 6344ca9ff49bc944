"""Camera conventions of ``mvhand.core.camera``, pinned against OpenCV and by round trips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvhand.core.camera import Camera, Rig, distort, undistort
from mvhand.core.synthetic import make_or_rig
from mvhand.errors import CalibrationError
from tests.tolerances import PROJECTION_VS_OPENCV_PX, UNDISTORT_ROUNDTRIP

#: Relative agreement of the mm and m rigs' projections (floating point only).
UNIT_RELATIVE = 1e-9


def _random_camera(rng: np.random.Generator, model: str = "pinhole", skew: float = 0.0) -> Camera:
    f = rng.uniform(500, 2500)
    K = np.array([[f, skew, rng.uniform(600, 700)], [0, f * rng.uniform(0.95, 1.05),
                  rng.uniform(300, 400)], [0, 0, 1.0]])  # fmt: skip
    if model == "pinhole":
        dist = [rng.uniform(-0.3, 0.1), rng.uniform(-0.05, 0.1), rng.uniform(-2e-3, 2e-3),
                rng.uniform(-2e-3, 2e-3), rng.uniform(-0.02, 0.02)]  # fmt: skip
    else:
        dist = rng.uniform(-0.05, 0.05, 4)
    rvec = rng.normal(0, 0.5, 3)
    tvec = rng.normal(0, 0.3, 3) + [0, 0, 3.0]
    return Camera.from_rvec("c", (1280, 720), K, dist, rvec, tvec, model)


def _points_in_front(cam: Camera, rng: np.random.Generator, n: int = 200) -> np.ndarray:
    """World points inside a 70-degree cone in front of ``cam`` (depth 1-5)."""
    xy = rng.uniform(-0.7, 0.7, (n, 2))
    z = rng.uniform(1, 5, (n, 1))
    pc = np.hstack([xy * z, z])
    return (pc - cam.t_cam_world) @ cam.R_cam_world


@pytest.mark.parametrize("seed", range(5))
def test_convention_projection_matches_cv2_pinhole(seed):
    rng = np.random.default_rng(seed)
    cam = _random_camera(rng)
    pts = _points_in_front(cam, rng)
    ref, _ = cv2.projectPoints(pts, cam.rvec, cam.t_cam_world, cam.K, cam.dist)
    np.testing.assert_allclose(cam.project(pts), ref[:, 0], atol=PROJECTION_VS_OPENCV_PX)


@pytest.mark.parametrize("seed", range(5))
def test_convention_projection_matches_cv2_fisheye(seed):
    rng = np.random.default_rng(seed)
    cam = _random_camera(rng, "fisheye")
    pts = _points_in_front(cam, rng)
    ref, _ = cv2.fisheye.projectPoints(pts[:, None], cam.rvec, cam.t_cam_world, cam.K, cam.dist)
    np.testing.assert_allclose(cam.project(pts), ref[:, 0], atol=PROJECTION_VS_OPENCV_PX)


def test_convention_world_to_camera_is_opencv_rvec_tvec(rng):
    cam = _random_camera(rng)
    R_cv, _ = cv2.Rodrigues(cam.rvec)
    np.testing.assert_allclose(cam.R_cam_world, R_cv, atol=1e-12)
    # the camera centre maps to the camera origin; a point on the optical axis to (0, 0, d)
    np.testing.assert_allclose(cam.world_to_cam(cam.center_world), 0, atol=1e-12)
    on_axis = cam.center_world + 2.0 * cam.R_cam_world[2]
    np.testing.assert_allclose(cam.world_to_cam(on_axis), [0, 0, 2.0], atol=1e-12)
    np.testing.assert_allclose(cam.project(on_axis), cam.K[:2, 2], atol=1e-9)


def test_convention_pixel_axes_x_right_y_down():
    cam = Camera("c", (640, 480), np.diag([500.0, 500, 1]), np.zeros(5), np.eye(3), np.zeros(3))
    u, v = cam.project(np.array([[0.1, 0.2, 1.0]]))[0]
    assert u == pytest.approx(50.0) and v == pytest.approx(100.0)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
@pytest.mark.parametrize("skew", [0.0, 3.0])
def test_undistort_inverts_project(model, skew):
    rng = np.random.default_rng(7)
    cam = _random_camera(rng, model, skew)
    pts = _points_in_front(cam, rng, 500)
    pc = cam.world_to_cam(pts)
    xy_true = pc[:, :2] / pc[:, 2:]
    xy = cam.undistort(cam.project(pts))
    np.testing.assert_allclose(xy, xy_true, atol=UNDISTORT_ROUNDTRIP)


def test_undistort_matches_cv2_iterative(rng):
    cam = _random_camera(rng)
    px = cam.project(_points_in_front(cam, rng))
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)
    ref = cv2.undistortPointsIter(px[:, None], cam.K, cam.dist, None, None, crit)[:, 0]
    np.testing.assert_allclose(cam.undistort(px), ref, atol=1e-7)


def test_undistort_keeps_nan_and_shape():
    rng = np.random.default_rng(3)
    cam = _random_camera(rng)
    px = rng.uniform(0, 700, (4, 5, 2))
    px[1, 2] = np.nan
    out = cam.undistort(px)
    assert out.shape == px.shape
    assert np.isnan(out[1, 2]).all() and np.isfinite(np.delete(out.reshape(-1, 2), 7, 0)).all()
    assert np.isnan(cam.project(np.full(3, np.nan))).all()


def test_distort_zero_is_identity(rng):
    xy = rng.normal(0, 0.3, (10, 2))
    np.testing.assert_array_equal(distort(xy, np.zeros(5)), xy)
    np.testing.assert_array_equal(undistort(xy, np.zeros(4), "fisheye"), xy)


def test_rig_to_units_scales_translations_not_projections(rng):
    rig_m = make_or_rig(4, seed=2)
    rig_mm = rig_m.to_units("mm")
    assert rig_mm.units == "mm"
    pts_m = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.2, (50, 3))
    proj_m = rig_m.project(pts_m)
    np.testing.assert_allclose(rig_mm.project(pts_m * 1000), proj_m, rtol=UNIT_RELATIVE)
    for cm, cmm in zip(rig_m, rig_mm, strict=True):
        np.testing.assert_allclose(cmm.t_cam_world, cm.t_cam_world * 1000)
        np.testing.assert_allclose(cmm.center_world, cm.center_world * 1000)
    back = rig_mm.to_units("m")
    np.testing.assert_allclose(back.extrinsics, rig_m.extrinsics, atol=1e-12)
    with pytest.raises(CalibrationError, match="units"):
        rig_m.to_units("inch")


def test_rig_subset_follows_the_given_order(rng):
    rig = make_or_rig(5, seed=1)
    names = ("cam_4", "cam_1", "cam_5")
    sub = rig.subset(names)
    assert sub.names == names and sub.units == rig.units
    pts = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (8, 3))
    full = rig.project(pts)
    np.testing.assert_array_equal(sub.project(pts), full[[3, 0, 4]])
    assert rig.index("cam_3") == 2 and rig["cam_3"] is rig[2]
    with pytest.raises(CalibrationError, match="cam_9"):
        rig.subset(["cam_1", "cam_9"])


def test_rig_undistort_per_camera_and_checks_axis0(rng):
    rig = make_or_rig(3, seed=4)
    pts = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (6, 3))
    xy = rig.undistort(rig.project(pts))
    for c, cam in enumerate(rig):
        pc = cam.world_to_cam(pts)
        np.testing.assert_allclose(xy[c], pc[:, :2] / pc[:, 2:], atol=UNDISTORT_ROUNDTRIP)
    with pytest.raises(ValueError, match="3 cameras"):
        rig.undistort(np.zeros((2, 6, 2)))


def test_rig_rejects_duplicates_and_bad_cameras():
    cam = make_or_rig(1)[0]
    with pytest.raises(CalibrationError, match="unique"):
        Rig((cam, cam))
    with pytest.raises(CalibrationError, match="rotation"):
        Camera("x", (10, 10), np.eye(3), [], np.diag([1.0, 1, -1]), np.zeros(3))
    with pytest.raises(CalibrationError, match="at most 4"):
        Camera("x", (10, 10), np.eye(3), np.zeros(5), np.eye(3), np.zeros(3), "fisheye")
