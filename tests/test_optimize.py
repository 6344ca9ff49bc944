"""Tests of the spatiotemporal hand optimizer against synthetic ground truth and real data."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from mvhand.config import ConfigError, config_from_dict, describe_config
from mvhand.core import optimize as opt
from mvhand.core import synthetic
from mvhand.core.optimize import OptimizationResult, OptimizerConfig, optimize
from mvhand.core.skeleton import bone_lengths
from mvhand.errors import InputError

#: The optimizer must beat its initialisation by this factor in MPJPE (noisy synthetic scene).
IMPROVEMENT_FACTOR = 0.75
#: Noiseless input, default (adaptive) smoothness: mean and largest drift from the truth (m);
#: the smoothness prior is strongest on slow hands, where it bends finger motion a little.
NOISELESS_DRIFT_M = 3e-4
NOISELESS_MAX_DRIFT_M = 3e-3
#: Noiseless input, reprojection and bones only: exact (m).
NOISELESS_EXACT_M = 1e-7
#: Mean error of the recovered bone lengths (m) on the noisy scene.
BONE_LENGTH_ERR_M = 3e-4
#: Windows with overlap against one window: largest joint difference (m), bone lengths (m).
WINDOW_DIFF_M = 1.5e-3
WINDOW_MEAN_DIFF_M = 3e-4
WINDOW_LENGTH_DIFF_M = 5e-4
#: A bridged 6-frame gap of one joint: its error stays below this (m).
GAP_ERR_M = 5e-3


def _dlt(rig, kp, weights):
    """Weighted DLT of every point: kp (C, ..., 2) px, weights (C, ...) -> (..., 3)."""
    shape = kp.shape[1:-1]
    xy = np.nan_to_num(rig.undistort(kp).reshape(len(rig), -1, 2))
    w = np.nan_to_num(weights.reshape(len(rig), -1))
    P = rig.extrinsics
    rows = np.concatenate(
        [
            (xy[..., :1] * P[:, None, 2] - P[:, None, 0]) * w[..., None],
            (xy[..., 1:] * P[:, None, 2] - P[:, None, 1]) * w[..., None],
        ]
    )
    M = np.einsum("cna,cnb->nab", rows, rows)
    X = np.linalg.eigh(M)[1][:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = X[:, :3] / X[:, 3:]
    out[(w > 0).sum(0) < 2] = np.nan
    return out.reshape(shape + (3,))


def _mpjpe(est, truth):
    ok = np.isfinite(est).all(-1)
    return float(np.linalg.norm(est - truth, axis=-1)[ok].mean())


@dataclasses.dataclass
class Scene:
    rig: object
    truth: np.ndarray
    kp: np.ndarray
    scores: np.ndarray
    init: np.ndarray


def _scene(n_frames=60, n_cams=8, speed="slow", noise=None, seed=3) -> Scene:
    rig = synthetic.make_or_rig(n_cams, seed=seed)
    truth = synthetic.make_hand_motion(n_frames, speed=speed, seed=seed)
    noise = noise or synthetic.DetectorNoise(noise_px=2.0, dropout=0.05, outlier_rate=0.0,
                                             swap_rate=0.0, occluded_views=0.1)  # fmt: skip
    det = synthetic.render_detections(rig, truth, noise, seed=seed)
    init = _dlt(rig, det.keypoints_px, det.scores)
    return Scene(rig, truth, det.keypoints_px, det.scores, init)


@pytest.fixture(scope="module")
def noisy() -> Scene:
    return _scene()


@pytest.fixture(scope="module")
def noisy_result(noisy) -> OptimizationResult:
    return optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, None, OptimizerConfig())


# ---- accuracy against the truth ------------------------------------------------------------
def test_recovers_truth_better_than_initialisation(noisy, noisy_result):
    before = _mpjpe(noisy.init, noisy.truth)
    after = _mpjpe(noisy_result.points3d, noisy.truth)
    assert after < IMPROVEMENT_FACTOR * before, (before, after)
    assert np.isfinite(noisy_result.points3d).all()


def test_bone_lengths_converge_to_truth(noisy, noisy_result):
    true_lengths = bone_lengths(noisy.truth[0])
    err = np.abs(noisy_result.bone_lengths - true_lengths).mean()
    init_err = np.abs(np.nanmedian(bone_lengths(noisy.init), axis=0) - true_lengths).mean()
    assert err < BONE_LENGTH_ERR_M
    assert err < init_err


def test_statistics_report_views_scores_and_errors(noisy, noisy_result):
    used = np.isfinite(noisy.kp).all(-1) & (noisy.scores > 0)
    np.testing.assert_array_equal(noisy_result.n_views, used.sum(0))
    mean_score = np.where(used, noisy.scores, 0).sum(0) / np.maximum(used.sum(0), 1)
    np.testing.assert_allclose(noisy_result.score, mean_score)
    # 2 px Gaussian noise per axis: mean distance about 2.5 px, never tens of px
    assert 1.0 < np.nanmean(noisy_result.reprojection_error_px) < 4.0


@pytest.mark.parametrize("speed", ["static", "slow"])
def test_noiseless_input_stays_at_truth(speed):
    rig = synthetic.make_or_rig(6)
    truth = synthetic.make_hand_motion(60, speed=speed)
    kp = rig.project(truth)
    res = optimize(rig, kp, np.ones(kp.shape[:-1]), truth, None, OptimizerConfig())
    drift = np.linalg.norm(res.points3d - truth, axis=-1)
    assert drift.mean() < NOISELESS_DRIFT_M and drift.max() < NOISELESS_MAX_DRIFT_M
    exact = OptimizerConfig(w_smoothness=0.0, w_shape=0.0)  # no temporal term: exact
    res = optimize(rig, kp, np.ones(kp.shape[:-1]), truth, None, exact)
    assert np.abs(res.points3d - truth).max() < NOISELESS_EXACT_M
    np.testing.assert_allclose(res.bone_lengths, bone_lengths(truth[0]), atol=NOISELESS_EXACT_M)
    assert np.nanmax(res.reprojection_error_px) < 1e-3


def test_robust_loss_resists_outliers_without_inlier_mask():
    noise = synthetic.DetectorNoise(noise_px=1.0, dropout=0.0, outlier_rate=0.05, swap_rate=0.0,
                                    occluded_views=0.0)  # fmt: skip
    s = _scene(n_frames=30, noise=noise)
    init = s.truth + np.random.default_rng(0).normal(0, 0.002, s.truth.shape)
    per_frame = OptimizerConfig(w_smoothness=0.0, w_bone=0.0)
    robust = optimize(s.rig, s.kp, s.scores, init, None, per_frame)
    plain = optimize(s.rig, s.kp, s.scores, init, None,
                     dataclasses.replace(per_frame, loss="linear"))  # fmt: skip
    assert _mpjpe(robust.points3d, s.truth) < 0.7 * _mpjpe(plain.points3d, s.truth)


def test_inlier_mask_excludes_views(noisy):
    inliers = np.ones(noisy.scores.shape, bool)
    inliers[0] = False
    res = optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, inliers, OptimizerConfig())
    used = np.isfinite(noisy.kp).all(-1) & (noisy.scores > 0) & inliers
    np.testing.assert_array_equal(res.n_views, used.sum(0))
    # moving camera 0's detections far away changes nothing once it is excluded
    kp = noisy.kp.copy()
    kp[0] += 200.0
    moved = optimize(noisy.rig, kp, noisy.scores, noisy.init, inliers, OptimizerConfig())
    np.testing.assert_allclose(moved.points3d, res.points3d, atol=1e-9)


# ---- invariances ---------------------------------------------------------------------------
def test_unit_invariance_m_vs_mm(noisy, noisy_result):
    rig_mm = noisy.rig.to_units("mm")
    res = optimize(rig_mm, noisy.kp, noisy.scores, noisy.init * 1000, None, OptimizerConfig())
    np.testing.assert_allclose(res.points3d / 1000, noisy_result.points3d, atol=1e-9)
    np.testing.assert_allclose(res.bone_lengths / 1000, noisy_result.bone_lengths, atol=1e-9)
    np.testing.assert_allclose(res.reprojection_error_px, noisy_result.reprojection_error_px,
                               atol=1e-6)  # fmt: skip


def test_windows_with_overlap_match_one_window(noisy, noisy_result):
    cfg = OptimizerConfig(window=30, overlap=15)
    res = optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, None, cfg)
    frames = [w["frames"] for w in res.info["hands"][0]]
    assert len(frames) == 3 and all(b - a <= 30 for a, b in frames)
    assert frames[0][0] == 0 and frames[-1][1] == len(noisy.truth)
    diff = np.linalg.norm(res.points3d - noisy_result.points3d, axis=-1)
    assert diff.max() < WINDOW_DIFF_M and diff.mean() < WINDOW_MEAN_DIFF_M
    assert np.abs(res.bone_lengths - noisy_result.bone_lengths).max() < WINDOW_LENGTH_DIFF_M
    # and the windowed result is as accurate as the single window
    assert _mpjpe(res.points3d, noisy.truth) < 1.15 * _mpjpe(noisy_result.points3d, noisy.truth)


def test_windows_bound_memory():
    s = _scene(n_frames=160, n_cams=6)

    def peak(cfg):
        tracemalloc.start()
        optimize(s.rig, s.kp, s.scores, s.init, None, cfg)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    whole, windowed = (
        peak(OptimizerConfig(window=160)),
        peak(OptimizerConfig(window=40, overlap=10)),
    )
    assert windowed < 0.6 * whole, (whole, windowed)


def test_smoothness_weight_is_defined_in_physical_units():
    """With a fixed weight, a constant acceleration costs the same per frame at 30 and 60 fps."""
    accel = np.array([0.0, 0.0, 2000.0])  # mm / s^2
    cfg = OptimizerConfig(smoothness_adaptivity=0.0)
    costs = []
    for fps in (30.0, 60.0):
        T = 20
        t = np.arange(T) / fps
        x = np.broadcast_to(0.5 * accel * t[:, None, None] ** 2, (T, 21, 3)).copy()
        s2, _ = opt._smoothness_weight(x, cfg, fps)
        D = opt._difference_operator(np.ones((T, 21), bool), cfg)
        d = D @ x.ravel()
        costs.append(s2 * float(d @ d) / (T - 2))
    np.testing.assert_allclose(costs[0], costs[1], rtol=1e-9)
    # (2000 / 1000)^2 per coordinate with motion, times the weight, times 21 joints
    np.testing.assert_allclose(costs[0], cfg.w_smoothness * 4.0 * 21, rtol=1e-9)


@pytest.mark.parametrize("speed", ["slow", "fast"])
def test_motion_scale_sees_through_noise(speed):
    truth = synthetic.make_hand_motion(150, speed=speed) * 1000
    noisy = truth + np.random.default_rng(0).normal(0, 1.0, truth.shape)
    noisy[np.random.default_rng(1).random(truth.shape[:-1]) < 0.02] += 10.0  # outliers
    for h in range(2):
        d2 = truth[2:, h] - 2 * truth[1:-1, h] + truth[:-2, h]
        true_rms = np.sqrt(np.mean(d2**2))
        est = opt._motion_scale(noisy[:, h], order=2)
        assert abs(est - true_rms) < 0.25 * true_rms, (est, true_rms)
    static = np.random.default_rng(2).normal(0, 1.0, (150, 21, 3))
    assert opt._motion_scale(static, order=2) < 0.05


# ---- gaps and missing hands ----------------------------------------------------------------
def test_short_gaps_are_bridged_long_gaps_stay_nan(noisy):
    kp, scores, init = noisy.kp.copy(), noisy.scores.copy(), noisy.init.copy()
    short, long_ = slice(20, 26), slice(35, 55)  # 6 frames, 20 frames
    for sl, joint in ((short, 8), (long_, 12)):
        kp[:, sl, 1, joint] = np.nan
        scores[:, sl, 1, joint] = 0.0
        init[sl, 1, joint] = np.nan
    res = optimize(noisy.rig, kp, scores, init, None, OptimizerConfig(max_gap_frames=10))
    bridged = res.points3d[short, 1, 8]
    assert np.isfinite(bridged).all()
    assert np.linalg.norm(bridged - noisy.truth[short, 1, 8], axis=-1).max() < GAP_ERR_M
    assert np.isnan(res.points3d[long_, 1, 12]).all()
    assert (res.n_views[short, 1, 8] == 0).all()
    assert np.isnan(res.reprojection_error_px[short, 1, 8]).all()
    # gaps are only bridged between known frames: a missing start stays missing
    init[:3, 0, 4] = np.nan
    kp[:, :3, 0, 4] = np.nan
    res = optimize(noisy.rig, kp, scores, init, None, OptimizerConfig())
    assert np.isnan(res.points3d[:3, 0, 4]).all()


def test_nan_only_hand_stays_nan(noisy):
    kp, scores, init = noisy.kp.copy(), noisy.scores.copy(), noisy.init.copy()
    kp[:, :, 0] = np.nan
    scores[:, :, 0] = 0.0
    init[:, 0] = np.nan
    res = optimize(noisy.rig, kp, scores, init, None, OptimizerConfig())
    assert np.isnan(res.points3d[:, 0]).all() and np.isnan(res.bone_lengths[0]).all()
    assert (res.n_views[:, 0] == 0).all()
    assert np.isfinite(res.points3d[:, 1]).all()


# ---- terms ---------------------------------------------------------------------------------
def test_each_term_can_be_switched_off(noisy):
    base = OptimizerConfig(w_smoothness=0.0, w_bone=0.0, w_shape=0.0)
    sub = slice(10, 30)
    whole = optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, None, base)
    part = optimize(noisy.rig, noisy.kp[:, sub], noisy.scores[:, sub], noisy.init[sub], None,
                    base)  # fmt: skip
    # reprojection only: every frame is independent of the others
    np.testing.assert_allclose(part.points3d, whole.points3d[sub], atol=1e-7)
    results = {}
    for name, cfg in {
        "smooth": dataclasses.replace(base, w_smoothness=16.0),
        "bones": dataclasses.replace(base, w_bone=30.0),
        "shape": dataclasses.replace(base, w_shape=5.0),
        "angles": dataclasses.replace(base, w_angle_limits=10.0),
        "off": dataclasses.replace(base, enabled=False),
    }.items():
        results[name] = optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, None, cfg)
    np.testing.assert_array_equal(results["off"].points3d, noisy.init)
    for name in ("smooth", "bones", "shape"):
        assert np.abs(results[name].points3d - whole.points3d).max() > 1e-5, name
        assert _mpjpe(results[name].points3d, noisy.truth) < _mpjpe(whole.points3d, noisy.truth)
    # natural poses violate no angle limit: the term barely acts on them
    assert np.abs(results["angles"].points3d - whole.points3d).max() < 1e-3
    assert _mpjpe(results["angles"].points3d, noisy.truth) < 1.01 * _mpjpe(
        whole.points3d, noisy.truth
    )


def test_shape_term_is_rotation_invariant():
    hand = synthetic.hand_pose(np.full((5, 3), 0.3)) * 1000
    rot = synthetic.Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    moved = hand @ rot.T + [10.0, -5.0, 3.0]
    active = np.ones((2, 21), bool)
    res, _, _ = opt._shape_rows(np.stack([hand, moved]), active, 1.0)
    assert np.abs(res).max() < 1e-9
    bent = synthetic.hand_pose(np.full((5, 3), 0.6)) * 1000
    res, _, _ = opt._shape_rows(np.stack([hand, bent]), active, 1.0)
    assert np.abs(res).max() > 1.0  # mm


@pytest.mark.parametrize("left", [False, True])
def test_convention_angle_limits_penalise_hyperextension_not_flexion(left):
    """Flexion towards the palm is free for both hands; bending backwards is penalised."""
    cfg = OptimizerConfig()
    limits = np.sin(np.radians([cfg.max_hyperextension_deg, cfg.max_sideways_deg]))
    flexion = np.full((5, 3), 0.5)
    hyper = flexion.copy()
    hyper[1:, 1] = -0.6  # PIP bent backwards by 34 degrees
    sign = -1.0 if left else 1.0
    active = np.ones((1, 21), bool)
    for pose, expect_penalty in ((flexion, False), (hyper, True)):
        x = synthetic.hand_pose(pose, left=left)[None] * 1000
        res, _, jac = opt._angle_rows(x, active, sign, limits, 1.0)
        if expect_penalty:
            assert res.max() > 5.0  # mm: sin(24 deg) times a 20-30 mm bone
            assert np.abs(jac).max() > 0
        else:
            assert np.abs(res).max() == 0.0


def test_procrustes_recovers_rotation(rng):
    R = synthetic.Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    prev = rng.normal(size=(1, 21, 3))
    cur = prev @ R.T
    est = opt._procrustes(prev, cur, np.ones((1, 21), bool))
    np.testing.assert_allclose(est[0], R, atol=1e-10)


@pytest.mark.parametrize("robust", [False, True])
def test_gradient_matches_finite_differences(noisy, robust):
    """The Gauss-Newton gradient J^T r is half the gradient of the cost.

    Exact for reprojection, smoothness, bones and the shape term (its Procrustes rotation is
    the minimiser, so holding it fixed loses nothing); the angle term holds the hand's lateral
    axis fixed and is checked separately.
    """
    cfg = OptimizerConfig(w_shape=2.0, loss="soft_l1")
    if robust:  # IRLS smoothness and bones: their gradient is exact too
        cfg = dataclasses.replace(cfg, smoothness_robust_limit=0.3, bone_robust_mm=0.5)
    T = 6
    rig_mm = noisy.rig.to_units("mm")
    cams = opt._Cameras(np.stack([c.R_cam_world for c in rig_mm]),
                        np.stack([c.t_cam_world for c in rig_mm]), rig_mm.focal_px)  # fmt: skip
    obs = np.nan_to_num(noisy.rig.undistort(noisy.kp[:, :T, 1]))
    hand = opt._HandData(obs, noisy.scores[:, :T, 1], 1.0)
    x = noisy.init[:T, 1] * 1000 + np.random.default_rng(1).normal(0, 2.0, (T, 21, 3))
    L = np.nanmedian(bone_lengths(x), axis=0) + 1.0
    problem = opt._Problem(hand, np.ones((T, 21), bool), cams, cfg, 1.0, x, L)
    _, _, g = problem.linearize(x, L)
    rng = np.random.default_rng(2)
    for _ in range(5):
        d = rng.normal(size=x.shape)
        h = 1e-5
        numeric = (problem.cost(x + h * d, L) - problem.cost(x - h * d, L)) / (2 * h)
        np.testing.assert_allclose(numeric, 2 * g @ d.ravel(), rtol=1e-4)


# ---- configuration and bad input -----------------------------------------------------------
def test_every_config_field_is_documented():
    rows = describe_config(OptimizerConfig)
    assert len(rows) == len(dataclasses.fields(OptimizerConfig))
    assert all(doc for _, _, doc in rows)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="loss"):
        config_from_dict(OptimizerConfig, {"loss": "cauchy"})
    with pytest.raises(ConfigError, match="w_bone"):
        config_from_dict(OptimizerConfig, {"w_bone": -1.0})
    with pytest.raises(ConfigError, match="overlap"):
        config_from_dict(OptimizerConfig, {"window": 20, "overlap": 20})


def test_bad_input_shapes_raise(noisy):
    with pytest.raises(InputError, match="keypoints"):
        optimize(noisy.rig, noisy.kp[:3], noisy.scores[:3], noisy.init, None)
    with pytest.raises(InputError, match="initial 3D"):
        optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init[:-1], None)
    with pytest.raises(InputError, match="inliers"):
        optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, np.ones(3, bool))
    with pytest.raises(InputError, match="fps"):
        optimize(noisy.rig, noisy.kp, noisy.scores, noisy.init, None, fps=0.0)


# ---- real data -----------------------------------------------------------------------------
def test_real_handmocap_bones_steadier_reprojection_kept(shared_data):
    from mvhand.io.calibration import load_calibration

    folder = shared_data / "handmocap"
    rig = load_calibration(folder / "calibration.toml", units="mm")  # the README says mm
    raw = np.load(folder / "right_2d.npy").astype(float)[:, :150]
    raw[raw < 0] = np.nan
    kp = np.stack([np.full_like(raw, np.nan), raw], axis=2)  # (C, T, H=2, J, 2); no left hand
    scores = np.where(np.isfinite(kp).all(-1), 1.0, 0.0)
    init = _dlt(rig, kp, scores)
    res = optimize(rig, kp, scores, init, None, OptimizerConfig(), fps=30.0)
    assert np.isnan(res.points3d[:, 0]).all()

    def spread(points):  # per-bone spread of lengths over time relative to the median
        lengths = bone_lengths(points[:, 1])
        return np.nanmean(np.nanstd(lengths, axis=0) / np.nanmedian(lengths, axis=0))

    assert spread(res.points3d) < 0.5 * spread(init)
    init_err = []
    for c, cam in enumerate(rig.cameras):
        init_err.append(np.linalg.norm(cam.project(init[:, 1]) - kp[c, :, 1], axis=-1))
    # the optimizer smooths, so it may reproject a little worse than free triangulation, but
    # not much: within 2 px of it on this 640x480 data
    assert np.nanmean(res.reprojection_error_px[:, 1]) < np.nanmean(init_err) + 2.0


def test_angle_limits_leave_synthetic_motion_alone():
    truth = synthetic.make_hand_motion(40, speed="fast") * 1000
    cfg = OptimizerConfig()
    limits = np.sin(np.radians([cfg.max_hyperextension_deg, cfg.max_sideways_deg]))
    for h, sign in ((0, -1.0), (1, 1.0)):
        res, _, _ = opt._angle_rows(truth[:, h], np.ones((40, 21), bool), sign, limits, 1.0)
        assert np.abs(res).max() == 0.0


def test_robust_smoothness_keeps_a_sudden_movement():
    """A hand that jumps 4 cm within 3 frames: quadratic smoothness smears the jump over many
    frames, the robust version keeps it sharp while still smoothing the static stretches."""
    rig = synthetic.make_or_rig(6, seed=1)
    T = 60
    truth = synthetic.make_hand_motion(T, speed="static", seed=1)
    step = np.clip((np.arange(T) - 29) / 3.0, 0, 1)[:, None, None, None]
    truth = truth + step * np.array([0.04, 0.0, 0.0])
    noise = synthetic.DetectorNoise(noise_px=2.0, dropout=0.0, outlier_rate=0.0, swap_rate=0.0,
                                    occluded_views=0.0)  # fmt: skip
    det = synthetic.render_detections(rig, truth, noise, seed=1)
    init = _dlt(rig, det.keypoints_px, det.scores)
    errs, whole = {}, {}
    for limit in (0.0, 0.5):
        cfg = OptimizerConfig(smoothness_robust_limit=limit, smoothness_adaptivity=0.0,
                              w_smoothness=50.0)  # fmt: skip
        res = optimize(rig, det.keypoints_px, det.scores, init, None, cfg)
        near = slice(26, 36)
        errs[limit] = _mpjpe(res.points3d[near], truth[near])
        whole[limit] = _mpjpe(res.points3d, truth)
    assert errs[0.5] < 0.5 * errs[0.0]
    assert whole[0.5] < 0.7 * _mpjpe(init, truth)  # still smooths the static stretches


def test_stretched_frames_do_not_inflate_bone_lengths():
    """A fingertip placed 25 mm too far out in every view on 20 % of frames (a detector that
    confuses the tip with a tool): the shared length must stay that of the other 80 %."""
    rig = synthetic.make_or_rig(6, seed=2)
    T = 60
    truth = synthetic.make_hand_motion(T, speed="slow", seed=2)
    moved = truth.copy()
    bad = np.random.default_rng(0).random(T) < 0.2
    tip, dip = 8, 7  # index tip and DIP
    direction = truth[:, :, tip] - truth[:, :, dip]
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    moved[bad, :, tip] += 0.025 * direction[bad]
    noise = synthetic.DetectorNoise(noise_px=1.0, dropout=0.0, outlier_rate=0.0, swap_rate=0.0,
                                    occluded_views=0.0)  # fmt: skip
    det = synthetic.render_detections(rig, moved, noise, seed=2)
    init = _dlt(rig, det.keypoints_px, det.scores)
    res = optimize(rig, det.keypoints_px, det.scores, init, None, OptimizerConfig())
    true_len = np.linalg.norm(truth[0, :, tip] - truth[0, :, dip], axis=-1)  # (2,) per hand
    bone = int(np.flatnonzero((opt.BONES[:, 0] == dip) & (opt.BONES[:, 1] == tip))[0])
    np.testing.assert_allclose(res.bone_lengths[:, bone], true_len, atol=0.002)
    fitted = np.linalg.norm(res.points3d[:, :, tip] - res.points3d[:, :, dip], axis=-1)
    np.testing.assert_allclose(np.median(fitted[~bad], axis=0), true_len, atol=0.002)


def _ar1_noise(rng, shape, rho, sigma):
    """Temporally correlated pixel noise along axis 1 (frames), like a tracker's jitter."""
    out = np.empty(shape)
    out[:, 0] = rng.normal(0, sigma, out[:, 0].shape)
    for t in range(1, shape[1]):
        innov = rng.normal(0, sigma * np.sqrt(1 - rho**2), out[:, t].shape)
        out[:, t] = rho * out[:, t - 1] + innov
    return out


def test_cross_validation_smooths_a_still_hand_harder():
    """Correlated detector jitter looks like motion to the motion-adaptive weight; held-out
    cameras do not: cross-validation picks a stronger weight and gets closer to the truth."""
    rig = synthetic.make_or_rig(12, seed=4)
    truth = synthetic.make_hand_motion(90, speed="static", seed=4)
    kp = rig.project(truth) + _ar1_noise(np.random.default_rng(4), (12, 90, 2, 21, 2), 0.9, 4.0)
    scores = np.ones(kp.shape[:-1])
    init = _dlt(rig, kp, scores)
    fixed = optimize(rig, kp, scores, init, None, OptimizerConfig(smoothness_selection="fixed"))
    cv = optimize(rig, kp, scores, init, None, OptimizerConfig())
    chosen = [w[0]["smoothness_selection"]["multiplier"] for w in cv.info["hands"]]
    assert min(chosen) > 1.0
    assert _mpjpe(cv.points3d, truth) < 0.8 * _mpjpe(fixed.points3d, truth)


def test_cross_validation_needs_eight_cameras(noisy):
    few = opt._camera_folds(np.ones((7, 5, 21)))
    assert few == []
    folds = opt._camera_folds(np.ones((9, 5, 21)))
    assert len(folds) == 2 and not (folds[0] & folds[1]).any() and (folds[0] | folds[1]).all()
    # cameras that never see the hand are in no fold
    w = np.ones((10, 5, 21))
    w[3] = 0.0
    assert not any(f[3] for f in opt._camera_folds(w))
