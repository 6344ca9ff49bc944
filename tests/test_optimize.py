"""Tests of the spatiotemporal hand optimizer against synthetic ground truth and real data,
through its public boundary (``mvhand.core.optimize``)."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc

import numpy as np
import pytest

from mvhand.config import ConfigError, config_from_dict, describe_config
from mvhand.core import synthetic
from mvhand.core.data import Hands3D, Keypoints2D, Views2D
from mvhand.core.optimize import (
    OptimizerConfig,
    angle_limit_residuals,
    camera_folds,
    hand_objective,
    motion_scale,
    optimize,
    shape_residuals,
    smoothness_weight,
)
from mvhand.core.skeleton import BONES, bone_lengths
from mvhand.errors import InputError, NumericalError

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
FIXED = OptimizerConfig(weight_selection="fixed")


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


def hands3d(rig, kp, scores, init, inliers=None, fps=None) -> Hands3D:
    """The triangulation's result type, built by hand: 3D ``init`` with 2D evidence."""
    kp2 = Keypoints2D(kp, scores, rig.names, fps=fps)
    inl = np.ones(kp2.scores.shape, bool) if inliers is None else inliers
    views = Views2D(kp2, inl, np.zeros(kp2.scores.shape[:2], bool))
    shape = init.shape[:-1]
    return Hands3D(init, np.full(shape, np.nan), np.zeros(shape, int), np.zeros(shape),
                   rig.units, views=views)  # fmt: skip


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

    def hands(self, **kw) -> Hands3D:
        return hands3d(self.rig, self.kp, self.scores, self.init, **kw)


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
def noisy_result(noisy) -> Hands3D:
    return optimize(noisy.rig, noisy.hands(), OptimizerConfig())


# ---- accuracy against the truth ------------------------------------------------------------
def test_recovers_truth_better_than_initialisation(noisy, noisy_result):
    before = _mpjpe(noisy.init, noisy.truth)
    after = _mpjpe(noisy_result.keypoints3d, noisy.truth)
    assert after < IMPROVEMENT_FACTOR * before, (before, after)
    assert np.isfinite(noisy_result.keypoints3d).all()


def test_result_keeps_views_and_reports_json(noisy, noisy_result):
    init = noisy.hands()
    assert noisy_result.views is init.views or noisy_result.views.cameras == init.views.cameras
    np.testing.assert_array_equal(noisy_result.views.inliers, init.views.inliers)
    assert noisy_result.bone_lengths.shape == (2, 20)
    info = json.loads(json.dumps(noisy_result.info))  # JSON-serialisable for report.json
    assert set(info["noise_px"]) == set(noisy.rig.names)
    for hand in info["hands"]:
        cv = hand["cross_validation"]
        assert cv["scheme"] == "halves" and cv["folds"] == 2  # 8 cameras
        assert hand["w_smoothness"] > 0 and hand["w_bone"] >= 0
        assert cv["held_out_median_px"] <= cv["configured_held_out_median_px"]
        assert 1.0 < cv["held_out_median_px"] < 6.0  # 2 px noise per axis


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


def test_noise_model_is_estimated_per_camera():
    """One camera six times as noisy: its estimated noise is several times the others', and
    weighting by it beats treating every view alike. (The estimate comes from the residuals of
    the unweighted triangulation, which the noisy camera pulls towards itself: 6x comes out
    as about 3x.)"""
    rig = synthetic.make_or_rig(6, seed=5)
    truth = synthetic.make_hand_motion(60, speed="slow", seed=5)
    rng = np.random.default_rng(5)
    sigma = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 6.0])
    kp = rig.project(truth) + rng.normal(size=(6, 60, 2, 21, 2)) * sigma[:, None, None, None, None]
    scores = np.ones(kp.shape[:-1])
    init = _dlt(rig, kp, scores)
    est = optimize(rig, hands3d(rig, kp, scores, init), FIXED)
    table = est.info["noise_px"]
    noisy_cam = np.mean(list(table[rig.names[5]].values()))
    others = np.mean([np.mean(list(table[n].values())) for n in rig.names[:5]])
    assert 2.5 < noisy_cam / others < 8.0, table
    fixed = optimize(rig, hands3d(rig, kp, scores, init),
                     dataclasses.replace(FIXED, noise_model="fixed"))  # fmt: skip
    assert _mpjpe(est.keypoints3d, truth) < 0.8 * _mpjpe(fixed.keypoints3d, truth)


@pytest.mark.parametrize("speed", ["static", "slow"])
def test_noiseless_input_stays_at_truth(speed):
    rig = synthetic.make_or_rig(6)
    truth = synthetic.make_hand_motion(60, speed=speed)
    kp = rig.project(truth)
    ones = np.ones(kp.shape[:-1])
    res = optimize(rig, hands3d(rig, kp, ones, truth), OptimizerConfig())
    drift = np.linalg.norm(res.keypoints3d - truth, axis=-1)
    assert drift.mean() < NOISELESS_DRIFT_M and drift.max() < NOISELESS_MAX_DRIFT_M
    exact = OptimizerConfig(w_smoothness=0.0, w_shape=0.0)  # no temporal term: exact
    res = optimize(rig, hands3d(rig, kp, ones, truth), exact)
    assert np.abs(res.keypoints3d - truth).max() < NOISELESS_EXACT_M
    np.testing.assert_allclose(res.bone_lengths, bone_lengths(truth[0]), atol=NOISELESS_EXACT_M)
    assert np.nanmax(res.reprojection_error_px) < 1e-3


@pytest.mark.parametrize("loss", ["soft_l1", "cauchy"])
def test_robust_loss_resists_outliers_without_inlier_mask(loss):
    noise = synthetic.DetectorNoise(noise_px=1.0, dropout=0.0, outlier_rate=0.05, swap_rate=0.0,
                                    occluded_views=0.0)  # fmt: skip
    s = _scene(n_frames=30, noise=noise)
    init = s.truth + np.random.default_rng(0).normal(0, 0.002, s.truth.shape)
    per_frame = OptimizerConfig(w_smoothness=0.0, w_bone=0.0, noise_model="fixed", noise_px=1.0)
    h = hands3d(s.rig, s.kp, s.scores, init)
    robust = optimize(s.rig, h, dataclasses.replace(per_frame, loss=loss))
    plain = optimize(s.rig, h, dataclasses.replace(per_frame, loss="linear"))
    assert _mpjpe(robust.keypoints3d, s.truth) < 0.7 * _mpjpe(plain.keypoints3d, s.truth)


def test_inlier_mask_excludes_views(noisy):
    inliers = np.ones(noisy.scores.shape, bool)
    inliers[0] = False
    res = optimize(noisy.rig, noisy.hands(inliers=inliers), FIXED)
    used = np.isfinite(noisy.kp).all(-1) & (noisy.scores > 0) & inliers
    np.testing.assert_array_equal(res.n_views, used.sum(0))
    # moving camera 0's detections far away changes nothing once it is excluded
    kp = noisy.kp.copy()
    kp[0] += 200.0
    moved = optimize(noisy.rig, hands3d(noisy.rig, kp, noisy.scores, noisy.init, inliers), FIXED)
    np.testing.assert_allclose(moved.keypoints3d, res.keypoints3d, atol=1e-9)


# ---- invariances ---------------------------------------------------------------------------
def test_unit_invariance_m_vs_mm(noisy, noisy_result):
    rig_mm = noisy.rig.to_units("mm")
    res = optimize(rig_mm, hands3d(rig_mm, noisy.kp, noisy.scores, noisy.init * 1000))
    np.testing.assert_allclose(res.keypoints3d / 1000, noisy_result.keypoints3d, atol=1e-9)
    np.testing.assert_allclose(res.bone_lengths / 1000, noisy_result.bone_lengths, atol=1e-9)
    np.testing.assert_allclose(res.reprojection_error_px, noisy_result.reprojection_error_px,
                               atol=1e-6)  # fmt: skip
    assert res.units == "mm"


def test_camera_order_of_the_rig_does_not_matter(noisy):
    res = optimize(noisy.rig, noisy.hands(), FIXED)
    flipped = noisy.rig.subset(list(reversed(noisy.rig.names)))
    res2 = optimize(flipped, noisy.hands(), FIXED)
    np.testing.assert_allclose(res2.keypoints3d, res.keypoints3d, atol=1e-9)


def test_windows_with_overlap_match_one_window(noisy):
    one = optimize(noisy.rig, noisy.hands(), FIXED)
    res = optimize(noisy.rig, noisy.hands(), dataclasses.replace(FIXED, window=30, overlap=15))
    frames = [w["frames"] for w in res.info["hands"][0]["windows"]]
    assert len(frames) == 3 and all(b - a <= 30 for a, b in frames)
    assert frames[0][0] == 0 and frames[-1][1] == len(noisy.truth)
    diff = np.linalg.norm(res.keypoints3d - one.keypoints3d, axis=-1)
    assert diff.max() < WINDOW_DIFF_M and diff.mean() < WINDOW_MEAN_DIFF_M
    assert np.abs(res.bone_lengths - one.bone_lengths).max() < WINDOW_LENGTH_DIFF_M
    # and the windowed result is as accurate as the single window
    assert _mpjpe(res.keypoints3d, noisy.truth) < 1.15 * _mpjpe(one.keypoints3d, noisy.truth)


def test_windows_bound_memory():
    s = _scene(n_frames=160, n_cams=6)

    def peak(cfg):
        tracemalloc.start()
        optimize(s.rig, s.hands(), cfg)
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    whole = peak(dataclasses.replace(FIXED, window=160))
    windowed = peak(dataclasses.replace(FIXED, window=40, overlap=10))
    assert windowed < 0.6 * whole, (whole, windowed)


def test_smoothness_weight_is_defined_in_physical_units():
    """With a fixed weight, a constant acceleration costs the same per frame at 30 and 60 fps
    (quadratic smoothness: the robust limit, in the same physical units, is checked apart)."""
    accel = np.array([0.0, 0.0, 2000.0])  # mm / s^2
    cfg = OptimizerConfig(smoothness_adaptivity=0.0, w_reprojection=0.0, w_bone=0.0,
                          noise_model="fixed", smoothness_robust_limit=0.0)  # fmt: skip
    rig = synthetic.make_or_rig(4)
    base = synthetic.make_hand_motion(1, speed="static")[0, 1] * 1000  # (21, 3) mm
    costs = []
    for fps in (30.0, 60.0):
        T = 20
        t = np.arange(T) / fps
        x = base + 0.5 * accel * t[:, None, None] ** 2  # (T, 21, 3) mm
        init = np.stack([x, x], axis=1) / 1000
        kp = rig.project(init)
        s2, _ = smoothness_weight(x, cfg, fps)
        obj = hand_objective(rig, hands3d(rig, kp, np.ones(kp.shape[:-1]), init), 1, cfg, fps)
        costs.append(obj.cost(x, np.full(20, np.nan)) / (T - 2))
        np.testing.assert_allclose(s2, cfg.w_smoothness / (1000.0 / fps**2) ** 2)
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
        est = motion_scale(noisy[:, h], order=2)
        assert abs(est - true_rms) < 0.25 * true_rms, (est, true_rms)
    static = np.random.default_rng(2).normal(0, 1.0, (150, 21, 3))
    assert motion_scale(static, order=2) < 0.05


# ---- gaps and missing hands ----------------------------------------------------------------
def test_short_gaps_are_bridged_long_gaps_stay_nan(noisy):
    kp, scores, init = noisy.kp.copy(), noisy.scores.copy(), noisy.init.copy()
    short, long_ = slice(20, 26), slice(35, 55)  # 6 frames, 20 frames
    for sl, joint in ((short, 8), (long_, 12)):
        kp[:, sl, 1, joint] = np.nan
        scores[:, sl, 1, joint] = 0.0
        init[sl, 1, joint] = np.nan
    res = optimize(noisy.rig, hands3d(noisy.rig, kp, scores, init),
                   dataclasses.replace(FIXED, max_gap_frames=10))  # fmt: skip
    bridged = res.keypoints3d[short, 1, 8]
    assert np.isfinite(bridged).all()
    assert np.linalg.norm(bridged - noisy.truth[short, 1, 8], axis=-1).max() < GAP_ERR_M
    assert np.isnan(res.keypoints3d[long_, 1, 12]).all()
    assert (res.n_views[short, 1, 8] == 0).all()
    assert np.isnan(res.reprojection_error_px[short, 1, 8]).all()
    # gaps are only bridged between known frames: a missing start stays missing
    init[:3, 0, 4] = np.nan
    kp[:, :3, 0, 4] = np.nan
    res = optimize(noisy.rig, hands3d(noisy.rig, kp, scores, init), FIXED)
    assert np.isnan(res.keypoints3d[:3, 0, 4]).all()


def test_nan_only_hand_stays_nan(noisy):
    kp, scores, init = noisy.kp.copy(), noisy.scores.copy(), noisy.init.copy()
    kp[:, :, 0] = np.nan
    scores[:, :, 0] = 0.0
    init[:, 0] = np.nan
    res = optimize(noisy.rig, hands3d(noisy.rig, kp, scores, init))
    assert np.isnan(res.keypoints3d[:, 0]).all() and np.isnan(res.bone_lengths[0]).all()
    assert (res.n_views[:, 0] == 0).all()
    assert np.isfinite(res.keypoints3d[:, 1]).all()
    assert res.info["hands"][0]["cross_validation"]["scheme"] == "none"


# ---- terms ---------------------------------------------------------------------------------
def test_each_term_can_be_switched_off(noisy):
    base = dataclasses.replace(FIXED, w_smoothness=0.0, w_bone=0.0, w_shape=0.0)
    sub = slice(10, 30)
    whole = optimize(noisy.rig, noisy.hands(), base)
    part = optimize(noisy.rig, hands3d(noisy.rig, noisy.kp[:, sub], noisy.scores[:, sub],
                                       noisy.init[sub]), base)  # fmt: skip
    # reprojection only: every frame is independent of the others (the noise model is
    # estimated per sequence, so fix it)
    fixed_noise = dataclasses.replace(base, noise_model="fixed")
    whole_f = optimize(noisy.rig, noisy.hands(), fixed_noise)
    part_f = optimize(noisy.rig, hands3d(noisy.rig, noisy.kp[:, sub], noisy.scores[:, sub],
                                         noisy.init[sub]), fixed_noise)  # fmt: skip
    np.testing.assert_allclose(part_f.keypoints3d, whole_f.keypoints3d[sub], atol=1e-7)
    assert np.isfinite(part.keypoints3d).all()
    results = {}
    for name, cfg in {
        "smooth": dataclasses.replace(base, w_smoothness=0.5),
        "bones": dataclasses.replace(base, w_bone=1.0),
        "shape": dataclasses.replace(base, w_shape=1.0),
        "angles": dataclasses.replace(base, w_angle_limits=1.0),
        "off": dataclasses.replace(base, enabled=False),
    }.items():
        results[name] = optimize(noisy.rig, noisy.hands(), cfg)
    np.testing.assert_array_equal(results["off"].keypoints3d, noisy.init)
    for name in ("smooth", "bones", "shape"):
        assert np.abs(results[name].keypoints3d - whole.keypoints3d).max() > 1e-5, name
        assert _mpjpe(results[name].keypoints3d, noisy.truth) < _mpjpe(whole.keypoints3d,
                                                                       noisy.truth), name
    # natural poses violate no angle limit: the term barely acts on them
    assert np.abs(results["angles"].keypoints3d - whole.keypoints3d).max() < 1e-3
    assert _mpjpe(results["angles"].keypoints3d, noisy.truth) < 1.01 * _mpjpe(
        whole.keypoints3d, noisy.truth
    )


def test_shape_term_is_rotation_invariant():
    hand = synthetic.hand_pose(np.full((5, 3), 0.3)) * 1000
    rot = synthetic.Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    moved = hand @ rot.T + [10.0, -5.0, 3.0]
    active = np.ones((2, 21), bool)
    res, _, _ = shape_residuals(np.stack([hand, moved]), active, 1.0)
    assert np.abs(res).max() < 1e-9
    bent = synthetic.hand_pose(np.full((5, 3), 0.6)) * 1000
    res, _, _ = shape_residuals(np.stack([hand, bent]), active, 1.0)
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
        res, _, jac = angle_limit_residuals(x, active, sign, limits, 1.0)
        if expect_penalty:
            assert res.max() > 5.0  # mm: sin(24 deg) times a 20-30 mm bone
            assert np.abs(jac).max() > 0
        else:
            assert np.abs(res).max() == 0.0


@pytest.mark.parametrize("robust, loss", [(False, "soft_l1"), (True, "soft_l1"), (True, "cauchy")])
def test_gradient_matches_finite_differences(noisy, robust, loss):
    """The Gauss-Newton gradient 2 J^T r is the gradient of the cost.

    Exact for reprojection, smoothness, bones and the shape term (its Procrustes rotation is
    the minimiser, so holding it fixed loses nothing); the angle term holds the hand's lateral
    axis fixed and is checked separately.
    """
    cfg = OptimizerConfig(w_shape=2.0, loss=loss, bone_robust_mm=0.0)
    if robust:  # IRLS smoothness and bones: their gradient is exact too
        cfg = dataclasses.replace(cfg, smoothness_robust_limit=0.3, bone_robust_mm=0.5)
    T = 6
    obj = hand_objective(noisy.rig, noisy.hands(), 1, cfg, frames=slice(0, T),
                         w_smoothness_per_mm2=1.0)  # fmt: skip
    x = noisy.init[:T, 1] * 1000 + np.random.default_rng(1).normal(0, 2.0, (T, 21, 3))
    L = np.nanmedian(bone_lengths(x), axis=0) + 1.0
    g = obj.gradient(x, L)
    rng = np.random.default_rng(2)
    for _ in range(5):
        d = rng.normal(size=x.shape)
        h = 1e-5
        numeric = (obj.cost(x + h * d, L) - obj.cost(x - h * d, L)) / (2 * h)
        np.testing.assert_allclose(numeric, np.sum(g * d), rtol=1e-4)


# ---- configuration, bad input and numerical safety ------------------------------------------
def test_every_config_field_is_documented():
    rows = describe_config(OptimizerConfig)
    assert len(rows) == len(dataclasses.fields(OptimizerConfig))
    assert all(doc for _, _, doc in rows)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="loss"):
        config_from_dict(OptimizerConfig, {"loss": "tukey"})
    with pytest.raises(ConfigError, match="w_bone"):
        config_from_dict(OptimizerConfig, {"w_bone": -1.0})
    with pytest.raises(ConfigError, match="overlap"):
        config_from_dict(OptimizerConfig, {"window": 20, "overlap": 20})


@pytest.mark.parametrize("key", ["w_smoothness", "w_bone", "w_reprojection", "w_shape",
                                 "w_angle_limits", "bone_sigma_mm", "loss_scale"])
@pytest.mark.parametrize("value", [float("inf"), 1e308, float("nan")])
def test_non_finite_or_huge_weights_are_config_errors(key, value):
    """inf or 1e308 used to turn the cost into NaN and silently return the triangulation."""
    with pytest.raises(ConfigError, match=key):
        OptimizerConfig(**{key: value})
    with pytest.raises(ConfigError, match=key):
        config_from_dict(OptimizerConfig, {key: value}, source="run.toml")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow itself
def test_non_finite_cost_is_a_numerical_error_naming_the_weights(noisy):
    init = noisy.init.copy()
    init[10, 1, 5] = 1e300  # a wild joint: its squared acceleration overflows
    with pytest.raises(NumericalError, match="w_smoothness"):
        optimize(noisy.rig, hands3d(noisy.rig, noisy.kp, noisy.scores, init), FIXED)


def test_bad_input_raises(noisy):
    with pytest.raises(InputError, match="views"):
        optimize(noisy.rig, noisy.hands().replace(views=None))
    with pytest.raises(InputError, match="Hands3D"):
        optimize(noisy.rig, noisy.init)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="units"):
        optimize(noisy.rig.to_units("mm"), noisy.hands())
    with pytest.raises(InputError, match="not in the rig"):
        optimize(noisy.rig.subset(noisy.rig.names[:4]), noisy.hands())
    with pytest.raises(InputError, match="fps"):
        optimize(noisy.rig, noisy.hands(), fps=0.0)


# ---- real data -----------------------------------------------------------------------------
def test_real_handmocap_bones_steadier_reprojection_kept(shared_data):
    from mvhand.core.triangulate import triangulate
    from mvhand.io.calibration import load_calibration

    folder = shared_data / "handmocap"
    rig = load_calibration(folder / "calibration.toml", units="mm")  # the README says mm
    raw = np.load(folder / "right_2d.npy").astype(float)[:, :150]
    raw[raw < 0] = np.nan
    kp = np.stack([np.full_like(raw, np.nan), raw], axis=2)  # (C, T, H=2, J, 2); no left hand
    scores = np.where(np.isfinite(kp).all(-1), 1.0, 0.0)
    tri = triangulate(rig, Keypoints2D(kp, scores, rig.names, fps=30.0))
    res = optimize(rig, tri, OptimizerConfig(), fps=30.0)
    assert np.isnan(res.keypoints3d[:, 0]).all()
    # the detector's noise on this 640x480 desk rig is about a pixel
    noise = [v for cam in res.info["noise_px"].values() for v in cam.values()]
    assert 0.3 <= min(noise) and max(noise) < 3.0, res.info["noise_px"]
    assert res.info["hands"][1]["cross_validation"]["scheme"] == "leave_one_camera_out"

    def spread(points):  # per-bone spread of lengths over time relative to the median
        lengths = bone_lengths(points[:, 1])
        return np.nanmean(np.nanstd(lengths, axis=0) / np.nanmedian(lengths, axis=0))

    assert spread(res.keypoints3d) < 0.85 * spread(tri.keypoints3d)
    # the optimizer smooths, so it may reproject a little worse than free triangulation, but
    # not much
    assert np.nanmean(res.reprojection_error_px[:, 1]) < np.nanmean(
        tri.reprojection_error_px[:, 1]) + 0.5  # fmt: skip


def test_angle_limits_leave_synthetic_motion_alone():
    truth = synthetic.make_hand_motion(40, speed="fast") * 1000
    cfg = OptimizerConfig()
    limits = np.sin(np.radians([cfg.max_hyperextension_deg, cfg.max_sideways_deg]))
    for h, sign in ((0, -1.0), (1, 1.0)):
        res, _, _ = angle_limit_residuals(truth[:, h], np.ones((40, 21), bool), sign, limits, 1.0)
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
        cfg = dataclasses.replace(FIXED, smoothness_robust_limit=limit, smoothness_adaptivity=0.0,
                                  w_smoothness=10.0)  # fmt: skip
        res = optimize(rig, hands3d(rig, det.keypoints_px, det.scores, init), cfg)
        near = slice(26, 36)
        errs[limit] = _mpjpe(res.keypoints3d[near], truth[near])
        whole[limit] = _mpjpe(res.keypoints3d, truth)
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
    res = optimize(rig, hands3d(rig, det.keypoints_px, det.scores, init), OptimizerConfig())
    true_len = np.linalg.norm(truth[0, :, tip] - truth[0, :, dip], axis=-1)  # (2,) per hand
    bone = int(np.flatnonzero((BONES[:, 0] == dip) & (BONES[:, 1] == tip))[0])
    np.testing.assert_allclose(res.bone_lengths[:, bone], true_len, atol=0.002)
    fitted = np.linalg.norm(res.keypoints3d[:, :, tip] - res.keypoints3d[:, :, dip], axis=-1)
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
    cameras do not: cross-validation (halves of 12 cameras) picks a stronger weight and gets
    closer to the truth."""
    n_cams = 12
    rig = synthetic.make_or_rig(n_cams, seed=4)
    truth = synthetic.make_hand_motion(90, speed="static", seed=4)
    kp = rig.project(truth) + _ar1_noise(np.random.default_rng(4), (n_cams, 90, 2, 21, 2),
                                         0.9, 4.0)  # fmt: skip
    scores = np.ones(kp.shape[:-1])
    h = hands3d(rig, kp, scores, _dlt(rig, kp, scores))
    fixed = optimize(rig, h, FIXED)
    cv = optimize(rig, h, OptimizerConfig())
    infos = [hand["cross_validation"] for hand in cv.info["hands"]]
    assert {i["scheme"] for i in infos} == {"halves"}
    assert min(i["smoothness_multiplier"] for i in infos) > 1.0, infos
    assert _mpjpe(cv.keypoints3d, truth) < 0.97 * _mpjpe(fixed.keypoints3d, truth)


def test_leave_one_camera_out_repairs_a_bad_weight():
    """Five cameras, a slow hand, and a smoothness weight 100 times too small: leaving one
    camera out at a time finds a stronger weight, and the result gets closer to the truth."""
    s = _scene(n_frames=60, n_cams=5, seed=6)
    weak = OptimizerConfig(w_smoothness=0.005)
    fixed = optimize(s.rig, s.hands(), dataclasses.replace(weak, weight_selection="fixed"))
    cv = optimize(s.rig, s.hands(), weak)
    infos = [hand["cross_validation"] for hand in cv.info["hands"]]
    assert {i["scheme"] for i in infos} == {"leave_one_camera_out"}
    assert {i["folds"] for i in infos} == {4}
    assert min(i["smoothness_multiplier"] for i in infos) >= 4.0, infos
    assert _mpjpe(cv.keypoints3d, s.truth) < 0.9 * _mpjpe(fixed.keypoints3d, s.truth)


@pytest.mark.parametrize("outlier_rate", [0.0, 0.15])
def test_cross_validation_turns_to_a_redescending_loss_only_for_gross_outliers(outlier_rate):
    """12 cameras, 1.5 px noise; with 15 % of views 15 px off (mislabelled joints the
    triangulation kept as inliers) the held-out cameras prefer the cauchy loss, which lands
    closer to the truth than the configured soft-L1; on clean views the configured loss stays."""
    n_cams = 12
    rig = synthetic.make_or_rig(n_cams, seed=5)
    truth = synthetic.make_hand_motion(60, speed="slow", seed=5)
    rng = np.random.default_rng(5)
    kp = rig.project(truth) + rng.normal(0, 1.5, (n_cams, 60, 2, 21, 2))
    off = rng.random(kp.shape[:-1]) < outlier_rate
    angle = rng.uniform(0, 2 * np.pi, off.shape)
    kp = kp + np.where(off[..., None], 15.0 * np.stack([np.cos(angle), np.sin(angle)], -1), 0.0)
    scores = np.ones(kp.shape[:-1])
    h = hands3d(rig, kp, scores, _dlt(rig, kp, scores))
    cv = optimize(rig, h, OptimizerConfig())
    losses = {hand["cross_validation"]["loss"] for hand in cv.info["hands"]}
    if outlier_rate == 0:
        assert losses == {"soft_l1"}
        return
    assert losses == {"cauchy"}
    without = optimize(rig, h, OptimizerConfig(cv_loss=False))
    assert _mpjpe(cv.keypoints3d, truth) < 0.8 * _mpjpe(without.keypoints3d, truth)


def test_camera_folds_schemes():
    assert camera_folds(np.ones((2, 5, 21)))[0] == "none"
    scheme, folds = camera_folds(np.ones((4, 5, 21)))
    assert scheme == "leave_one_camera_out" and len(folds) == 4
    w = np.ones((7, 5, 21))
    w[2, :3] = 0.0  # camera 2 sees the hand least: with 7 cameras, 4 are held out in turn
    scheme, seven = camera_folds(w)
    assert scheme == "leave_one_camera_out" and len(seven) == 4 and not any(f[2] for f in seven)
    assert all(f.sum() == 1 for f in folds) and np.logical_or.reduce(folds).all()
    assert camera_folds(np.ones((4, 5, 21)), min_cameras=5)[0] == "none"
    scheme, folds = camera_folds(np.ones((9, 5, 21)))
    assert scheme == "halves" and len(folds) == 2
    assert not (folds[0] & folds[1]).any() and (folds[0] | folds[1]).all()
    # cameras that never see the hand are in no fold
    w = np.ones((10, 5, 21))
    w[3] = 0.0
    assert not any(f[3] for f in camera_folds(w)[1])
