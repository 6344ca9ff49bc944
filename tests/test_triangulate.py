"""Robust triangulation: exact recovery, detector failures, invariances, real data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mvhand.config import config_from_dict
from mvhand.core.camera import Camera, Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.synthetic import DetectorNoise, make_hand_motion, make_or_rig, render_detections
from mvhand.core.triangulate import (
    TriangulationConfig,
    camera_pairs,
    dlt,
    reprojection_errors,
    triangulate,
)
from mvhand.errors import CalibrationError, ConfigError, InputError
from tests.tolerances import EXACT_RECOVERY_M

#: Mean / worst joint error (m) with 2 px detector noise on the 12-camera OR rig.
NOISE_MPJPE_M, NOISE_MAX_M = 0.003, 0.010
#: Plain DLT must be at least this many times worse than robust with confident outliers.
ROBUST_GAIN = 3.0
#: handmocap: median distance (mm) of our 3D to the study's own 3D.
HANDMOCAP_MEDIAN_MM = 2.0
#: handmocap, all four cameras: our mean reprojection error per camera relative to the study's.
HANDMOCAP_PER_CAMERA = 1.1
#: handmocap leave-one-camera-out: median px in the held-out camera, absolute and relative
#: to the reference's in-sample error there (the reference was fitted with that camera).
HANDMOCAP_LOO_PX, HANDMOCAP_LOO_RATIO = 3.0, 2.5

PLAIN = TriangulationConfig(robust=False, swap_repair=False)
NO_NOISE = DetectorNoise(0.0, 0.0, 0.0, 0.0, 0.0)


def _clean(rig: Rig, truth: np.ndarray) -> Keypoints2D:
    return render_detections(rig, truth, NO_NOISE)


def _mpjpe(res, truth) -> tuple[float, float]:
    d = np.linalg.norm(res.keypoints3d - truth, axis=-1)
    return float(np.nanmean(d)), float(np.nanmax(d))


def _true_swaps(rig, truth, noise, seed) -> np.ndarray:
    """(C, T) views the generator swapped: it draws swaps last, so swap_rate=0 replays the rest."""
    a = render_detections(rig, truth, noise, seed=seed).keypoints_px
    b = render_detections(rig, truth, dataclasses.replace(noise, swap_rate=0.0), seed=seed)
    return ~np.isclose(a, b.keypoints_px, equal_nan=True).all(axis=(2, 3, 4))


def _fisheye_rig(n: int) -> Rig:
    cams = []
    for i, c in enumerate(make_or_rig(n, seed=5, distortion=False)):
        K = c.K.copy()
        K[0, 0] *= 0.6
        K[1, 1] *= 0.6
        dist = [0.05, -0.02, 0.01, -0.003 * i]
        cams.append(Camera(c.name, c.size_px, K, dist, c.R_cam_world, c.t_cam_world, "fisheye"))
    return Rig(tuple(cams))


def _seeded_noise_kp(rig, truth, noise_px=2.0, seed=0):
    return render_detections(rig, truth, DetectorNoise(noise_px, 0.05, 0, 0, 0), seed=seed)


@pytest.fixture(scope="module")
def motion() -> np.ndarray:
    return make_hand_motion(40, seed=3)


# ----------------------------------------------------------------------------- exact recovery


@pytest.mark.parametrize("rig", [
    make_or_rig(12), make_or_rig(3, seed=1, distortion=False), make_or_rig(6, seed=2),
    _fisheye_rig(5),
], ids=["or12", "pinhole3", "or6", "fisheye5"])  # fmt: skip
def test_exact_recovery_without_noise(rig, motion):
    kp = _clean(rig, motion)
    res = triangulate(rig, kp)
    np.testing.assert_allclose(res.keypoints3d, motion, atol=EXACT_RECOVERY_M)
    visible = (kp.scores > 0).sum(0)
    np.testing.assert_array_equal(res.n_views, visible)
    assert np.nanmax(res.reprojection_error_px) < 1e-4
    assert not res.views.swapped.any()
    np.testing.assert_allclose(res.score, kp.scores.sum(0) / visible)
    plain = triangulate(rig, kp, PLAIN)
    np.testing.assert_allclose(plain.keypoints3d, motion, atol=EXACT_RECOVERY_M)


def test_dlt_direct_and_nan_below_two_views(rng):
    rig = make_or_rig(4, distortion=False)
    pts = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.1, (5, 7, 3))
    xy = rig.undistort(rig.project(pts))  # (4, 5, 7, 2)
    w = np.ones(xy.shape[:-1])
    np.testing.assert_allclose(dlt(rig.extrinsics, xy, w), pts, atol=EXACT_RECOVERY_M)
    w[1:, 0, 0] = 0.0  # one view left
    xy[:, 0, 1] = np.nan  # no view left
    xy[2:, 0, 2] = np.nan  # two views left: still fine
    out = dlt(rig.extrinsics, xy, w)
    assert np.isnan(out[0, 0]).all() and np.isnan(out[0, 1]).all()
    np.testing.assert_allclose(out[0, 2], pts[0, 2], atol=EXACT_RECOVERY_M)
    with pytest.raises(InputError, match="extrinsics"):
        dlt(rig.extrinsics[:3], xy, w)
    with pytest.raises(InputError, match="weights"):
        dlt(rig.extrinsics, xy, w[:, 0])


def test_dlt_weights_pull_towards_confident_views(rng):
    rig = make_or_rig(3, distortion=False)
    X = np.array([[0.02, -0.03, 1.05]])
    xy = rig.undistort(rig.project(X))
    xy[0] += 0.01  # view 0 is off
    w_low = np.array([[0.01], [1.0], [1.0]])
    w_high = np.array([[1.0], [1.0], [1.0]])
    err_low = np.linalg.norm(dlt(rig.extrinsics, xy, w_low) - X)
    err_high = np.linalg.norm(dlt(rig.extrinsics, xy, w_high) - X)
    assert err_low < 0.2 * err_high


# ----------------------------------------------------------------------------- detector failures


def test_accuracy_under_pixel_noise(motion):
    rig = make_or_rig(12)
    res = triangulate(rig, _seeded_noise_kp(rig, motion))
    mean, worst = _mpjpe(res, motion)
    assert mean < NOISE_MPJPE_M and worst < NOISE_MAX_M
    assert np.isfinite(res.keypoints3d).all()
    assert 0.5 < np.nanmean(res.reprojection_error_px) < 5.0  # about the 2 px noise


def test_robust_beats_plain_dlt_on_confident_outliers(motion):
    rig = make_or_rig(12)
    kp = _seeded_noise_kp(rig, motion, seed=1)
    gen = np.random.default_rng(11)
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    bad = (gen.random(sc.shape) < 0.1) & (sc > 0)
    px[bad] += gen.uniform(40, 300, (bad.sum(), 1)) * gen.choice([-1, 1], (bad.sum(), 2))
    sc[bad] = 0.9  # a detector that is confidently wrong
    kp = Keypoints2D(px, sc, kp.cameras)
    robust, plain = triangulate(rig, kp), triangulate(rig, kp, PLAIN)
    r_mean, r_max = _mpjpe(robust, motion)
    p_mean, _ = _mpjpe(plain, motion)
    assert r_mean < NOISE_MPJPE_M and r_max < NOISE_MAX_M
    assert p_mean > ROBUST_GAIN * r_mean
    # the injected outliers are (nearly) never used
    assert (robust.views.inliers & bad).sum() < 0.01 * bad.sum()


@pytest.mark.parametrize("n_cams", [12, 6])
def test_left_right_swaps_repaired(n_cams):
    rig = make_or_rig(n_cams)
    truth = make_hand_motion(90, seed=4)
    noise = DetectorNoise(swap_rate=0.02)  # ~1/3 of view-frames swapped, some frames mostly
    kp = render_detections(rig, truth, noise, seed=2)
    res = triangulate(rig, kp)
    truth_sw = _true_swaps(rig, truth, noise, 2)
    seen = (kp.scores > 0).sum(axis=(2, 3)) >= 3
    assert (res.views.swapped == truth_sw)[seen].mean() > 0.99
    mean, worst = _mpjpe(res, truth)
    assert mean < NOISE_MPJPE_M and worst < 2 * NOISE_MAX_M
    # the repaired 2D is what was used: swapped views' hands exchanged
    c, t = np.argwhere(res.views.swapped)[0]
    repaired = res.views.keypoints.keypoints_px
    np.testing.assert_array_equal(repaired[c, t], kp.keypoints_px[c, t, ::-1])
    no_repair = triangulate(rig, kp, TriangulationConfig(swap_repair=False))
    assert _mpjpe(no_repair, truth)[0] > 10 * mean


def test_single_hand_with_the_wrong_label_is_moved(motion):
    rig = make_or_rig(6)
    kp = _seeded_noise_kp(rig, motion, noise_px=1.0)
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    px[2, 5:15, 0], sc[2, 5:15, 0] = px[2, 5:15, 1], sc[2, 5:15, 1]  # right hand called left
    px[2, 5:15, 1], sc[2, 5:15, 1] = np.nan, 0.0
    res = triangulate(rig, Keypoints2D(px, sc, kp.cameras))
    assert res.views.swapped[2, 5:15].all() and res.views.swapped.sum() == 10
    assert np.isnan(res.views.keypoints.keypoints_px[2, 5:15, 0]).all()
    assert res.views.inliers[2, 5:15, 1].mean() > 0.9
    assert _mpjpe(res, motion)[1] < NOISE_MAX_M


def test_dropouts_and_heavy_noise_stay_accurate():
    rig = make_or_rig(12)
    truth = make_hand_motion(60, seed=3)
    kp = render_detections(rig, truth, DetectorNoise(3.0, 0.1, 0.1, 0.03, 0.2), seed=5)
    mean, worst = _mpjpe(triangulate(rig, kp), truth)
    assert mean < NOISE_MPJPE_M and worst < NOISE_MAX_M
    assert _mpjpe(triangulate(rig, kp, PLAIN), truth)[0] > 20 * mean


def test_hand_seen_by_two_cameras_only(motion):
    rig = make_or_rig(8)
    kp = _seeded_noise_kp(rig, motion, noise_px=1.0)
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    px[2:, :, 0], sc[2:, :, 0] = np.nan, 0.0  # left hand only in cameras 0 and 1
    res = triangulate(rig, Keypoints2D(px, sc, kp.cameras))
    both = (sc[:2, :, 0] > 0).all(0)
    assert both.mean() > 0.8
    np.testing.assert_array_equal(res.n_views[:, 0], np.where(both, 2, 0))
    d = np.linalg.norm(res.keypoints3d[:, 0] - motion[:, 0], axis=-1)
    assert np.nanmean(d) < 2 * NOISE_MPJPE_M
    assert not res.views.swapped.any()


def test_fewer_than_min_views_gives_nan_not_error(motion):
    rig = make_or_rig(4)
    kp = _clean(rig, motion)
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    px[1:, :, 1], sc[1:, :, 1] = np.nan, 0.0  # right hand in one camera only
    px[:, :3], sc[:, :3] = np.nan, 0.0  # nothing at all in the first frames
    res = triangulate(rig, Keypoints2D(px, sc, kp.cameras))
    assert np.isnan(res.keypoints3d[:, 1]).all() and np.isnan(res.keypoints3d[:3]).all()
    assert (res.n_views[:, 1] == 0).all() and not res.views.inliers[:, :, 1].any()
    assert np.isnan(res.reprojection_error_px[:, 1]).all() and (res.score[:, 1] == 0).all()
    np.testing.assert_allclose(res.keypoints3d[3:, 0], motion[3:, 0], atol=EXACT_RECOVERY_M)
    three = triangulate(rig, kp, TriangulationConfig(min_views=5))
    assert np.isnan(three.keypoints3d).all()


def test_low_scores_are_ignored(motion):
    rig = make_or_rig(5)
    kp = _clean(rig, motion)
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    px[0] += 80.0
    sc[0] = 0.05  # below min_score: must not pull the result
    res = triangulate(rig, Keypoints2D(px, sc, kp.cameras), PLAIN)
    np.testing.assert_allclose(res.keypoints3d, motion, atol=EXACT_RECOVERY_M)
    assert not res.views.inliers[0].any()


# ----------------------------------------------------------------------------- invariances


def test_camera_order_invariance():
    rig = make_or_rig(12)
    truth = make_hand_motion(30, seed=6)
    kp = render_detections(rig, truth, DetectorNoise(), seed=3)
    perm = np.random.default_rng(0).permutation(12)
    names = tuple(rig.names[i] for i in perm)
    res = triangulate(rig, kp)
    res_p = triangulate(rig, kp.subset_cameras(names))  # rig stays in file order
    assert res_p.views.cameras == names
    np.testing.assert_allclose(res_p.keypoints3d, res.keypoints3d, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(res_p.views.inliers, res.views.inliers[perm])
    np.testing.assert_array_equal(res_p.views.swapped, res.views.swapped[perm])


def test_rig_may_hold_more_cameras_but_not_fewer(motion):
    rig = make_or_rig(6)
    kp = _clean(rig, motion).subset_cameras(("cam_5", "cam_2", "cam_3"))
    res = triangulate(rig, kp)
    np.testing.assert_allclose(res.keypoints3d, motion, atol=EXACT_RECOVERY_M)
    with pytest.raises(CalibrationError, match="cam_5"):
        triangulate(rig.subset(["cam_1", "cam_2", "cam_3"]), kp)


def test_units_mm_rig_gives_the_same_points_in_mm():
    rig = make_or_rig(12)
    truth = make_hand_motion(30, seed=7)
    kp = render_detections(rig, truth, DetectorNoise(), seed=4)
    res_m = triangulate(rig, kp)
    res_mm = triangulate(rig.to_units("mm"), kp)
    assert res_mm.units == "mm" and res_m.units == "m"
    np.testing.assert_allclose(res_mm.keypoints3d, 1000 * res_m.keypoints3d, rtol=1e-9, atol=1e-9,
                               equal_nan=True)  # fmt: skip
    np.testing.assert_array_equal(res_mm.views.inliers, res_m.views.inliers)
    np.testing.assert_allclose(res_mm.reprojection_error_px, res_m.reprojection_error_px,
                               atol=1e-6, equal_nan=True)  # fmt: skip


def test_many_cameras_sample_a_bounded_set_of_pairs(motion):
    names = tuple(f"c{i}" for i in range(20))
    pairs = camera_pairs(names, 40, seed=0)
    assert pairs.shape == (40, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == 40
    # drawn on sorted names: the same camera pairs whatever the order
    rev = camera_pairs(names[::-1], 40, seed=0)
    as_names = {frozenset((names[a], names[b])) for a, b in pairs}
    assert as_names == {frozenset((names[::-1][a], names[::-1][b])) for a, b in rev}
    assert len(camera_pairs(names[:5], 40)) == 10
    rig = make_or_rig(16)
    kp = render_detections(rig, motion, DetectorNoise(), seed=8)
    res = triangulate(rig, kp, TriangulationConfig(max_pairs=30))
    assert _mpjpe(res, motion)[0] < NOISE_MPJPE_M


# ----------------------------------------------------------------------------- API details


def test_reprojection_errors_and_result_conversions(motion):
    rig = make_or_rig(4)
    kp = _seeded_noise_kp(rig, motion)
    res = triangulate(rig, kp)
    err = reprojection_errors(rig, res.keypoints3d, res.views.keypoints.keypoints_px)
    assert err.shape == kp.scores.shape
    manual = np.linalg.norm(rig[1].project(res.keypoints3d[5, 1, 7]) - kp.keypoints_px[1, 5, 1, 7])
    assert err[1, 5, 1, 7] == pytest.approx(manual) or np.isnan(manual)
    used = np.where(res.views.inliers, err, 0).sum(0) / np.maximum(res.n_views, 1)
    np.testing.assert_allclose(res.reprojection_error_px, np.where(res.n_views > 0, used, np.nan))
    with pytest.raises(InputError, match="do not match"):
        reprojection_errors(rig, res.keypoints3d, res.views.keypoints.keypoints_px[:3])
    assert res.units == "m" and res.n_views.dtype == np.int64
    k2 = res.views.keypoints
    assert k2.cameras == rig.names and k2.hands == kp.hands
    inl = res.views.inlier_keypoints()
    assert (np.isfinite(inl.keypoints_px).all(-1) == res.views.inliers).all()


def test_config_is_strict():
    cfg = config_from_dict(TriangulationConfig, {"inlier_threshold_px": 12, "robust": False})
    assert cfg.inlier_threshold_px == 12.0 and not cfg.robust
    with pytest.raises(ConfigError, match="min_views"):
        config_from_dict(TriangulationConfig, {"min_views": 1})
    with pytest.raises(ConfigError, match="not a known setting"):
        config_from_dict(TriangulationConfig, {"threshold": 3})


# ----------------------------------------------------------------------------- real data


def _handmocap(shared_data):
    from mvhand.io.calibration import load_calibration

    folder = shared_data / "handmocap"
    rig = load_calibration(folder / "calibration.toml", units="mm")
    raw = np.load(folder / "right_2d.npy").astype(float)  # (4, 598, 21, 2), -1 = missing
    ref = np.load(folder / "right_3d_reference_0123.npy")  # (598, 21, 3) mm
    missing = (raw < 0).any(-1)
    raw[missing] = np.nan
    C, T, J, _ = raw.shape
    px = np.full((C, T, 2, J, 2), np.nan)
    px[:, :, 1] = raw  # right hand only
    sc = np.zeros((C, T, 2, J))
    sc[:, :, 1] = np.where(missing, 0.0, 1.0)
    return rig, Keypoints2D(px, sc, rig.names), ref


def test_handmocap_matches_the_study_3d(shared_data):
    rig, kp, ref = _handmocap(shared_data)
    assert rig.names == ("0", "1", "2", "3") and rig.units == "mm"
    res = triangulate(rig, kp)
    assert np.isnan(res.keypoints3d[:, 0]).all() and not res.views.swapped.any()
    d = np.linalg.norm(res.keypoints3d[:, 1] - ref, axis=-1)
    assert np.isfinite(d).mean() > 0.99
    assert np.nanmedian(d) < HANDMOCAP_MEDIAN_MM
    # with the same four cameras, our 3D fits the 2D no worse than the study's 3D overall,
    # and in every camera within HANDMOCAP_PER_CAMERA (a joint fit trades cameras off)
    ours = reprojection_errors(rig, res.keypoints3d, kp.keypoints_px)[:, :, 1]
    theirs = reprojection_errors(rig, np.stack([ref, ref], 1), kp.keypoints_px)[:, :, 1]
    ok = np.isfinite(ours) & np.isfinite(theirs)
    assert np.mean(ours[ok]) <= np.mean(theirs[ok])
    for c in range(4):
        assert np.mean(ours[c][ok[c]]) <= HANDMOCAP_PER_CAMERA * np.mean(theirs[c][ok[c]])


def test_handmocap_leave_one_camera_out(shared_data):
    rig, kp, ref = _handmocap(shared_data)
    theirs = reprojection_errors(rig, np.stack([ref, ref], 1), kp.keypoints_px)[:, :, 1]
    for c, name in enumerate(rig.names):
        others = tuple(n for n in rig.names if n != name)
        res = triangulate(rig, kp.subset_cameras(others))
        held = reprojection_errors(rig.subset([name]), res.keypoints3d, kp.keypoints_px[[c]])[0]
        held = held[:, 1]
        ok = np.isfinite(held) & np.isfinite(theirs[c])
        assert ok.sum() > 0.7 * np.isfinite(theirs[c]).sum()
        med = np.median(held[ok])
        assert med < HANDMOCAP_LOO_PX
        assert med < HANDMOCAP_LOO_RATIO * np.median(theirs[c][ok])
