"""The license-free kinematic hand: conventions, inverse, Jacobian, fits, limits, real data."""

from __future__ import annotations

import numpy as np
import pytest

from mvhand.core.data import Hands3D
from mvhand.core.skeleton import FINGER_JOINTS
from mvhand.core.synthetic import hand_pose, make_hand_motion
from mvhand.fit import FitConfig, run_fit
from mvhand.fit import kinematic as kin

#: Mean fitted-joint error on noiseless synthetic input (m); the issue's target is 3 mm.
NOISELESS_JOINT_M = 0.001
#: Recovered angles on noiseless input (deg).
ANGLE_DEG = 1.0
#: Real handmocap sequence after triangulation: mean fitted-joint error (mm).
REAL_JOINT_MM = 6.0


def _hands3d(X, units="m"):
    z = np.zeros(X.shape[:-1])
    return Hands3D(X, z, z.astype(int) + 3, z + 1.0, units)


def test_convention_rest_pose_axes():
    hand = kin.default_hand()
    pts, _ = kin.kinematic_forward(hand, np.zeros((1, 27)))
    p = pts[0]
    np.testing.assert_allclose(p[0], 0.0, atol=1e-12)
    mid = p[9] / np.linalg.norm(p[9])
    np.testing.assert_allclose(mid, [0, 1, 0], atol=1e-12)  # palm y towards the middle MCP
    assert p[1, 0] > 0 and p[17, 0] < 0  # thumb on +x (radial), little finger on -x
    x = np.zeros((1, 27))
    x[0, 6 + 5 + 4] = np.radians(60)  # middle MCP flexion
    bent, _ = kin.kinematic_forward(hand, x)
    assert bent[0, 12, 2] > 0.03  # fingers flex towards +z (palmar)
    np.testing.assert_allclose(bent[0, :10], p[:10], atol=1e-12)


def test_angles_invert_forward_and_jacobian_is_exact(rng):
    hand = kin.default_hand(1.1)
    lim = np.radians(kin.LIMITS_DEG)
    x = np.zeros((6, 27))
    x[:, :6] = rng.normal(size=(6, 6))
    x[:, 6:] = rng.uniform(0.9 * lim[:, 0], 0.9 * lim[:, 1], (6, 21))
    x[:, 6 + 3] = np.radians(30)  # a bent thumb MCP defines the thumb's axial rotation
    pts, J = kin.kinematic_forward(hand, x, jacobian=True)
    np.testing.assert_allclose(kin.angles_from_points(pts), x[:, 6:], atol=1e-9)
    eps = 1e-7
    for k in range(27):
        y = x.copy()
        y[:, k] += eps
        num = (kin.kinematic_forward(hand, y)[0] - pts) / eps
        np.testing.assert_allclose(J[..., k], num, atol=1e-5)


def test_flat_hand_angles_near_zero():
    ang = np.degrees(kin.angles_from_points(hand_pose(np.zeros((5, 3)))))
    flexions = [i for i, n in enumerate(kin.DOF_NAMES) if "flexion" in n or "rotation" in n]
    assert np.abs(ang[flexions]).max() < 0.5
    assert np.abs(ang).max() < 20.0  # abductions: the natural splay of the fingers


def test_synthetic_finger_flexion_is_read_back():
    flex = np.random.default_rng(2).uniform(0.0, 1.2, (5, 3))
    ang = np.degrees(kin.angles_from_points(hand_pose(flex)))
    for f, name in enumerate(kin.FINGER_NAMES, start=1):
        for j, joint in enumerate(("mcp", "pip", "dip")):
            assert ang[kin.DOF_NAMES.index(f"{name}_{joint}_flexion")] == pytest.approx(
                np.degrees(flex[f, j]), abs=1e-6)  # fmt: skip


def _kin_sequence(T=40, seed=0):
    """Both hands from the kinematic model itself with known smooth angles (left mirrored)."""
    rng = np.random.default_rng(seed)
    hand = kin.default_hand(1.05)
    lim = np.radians(kin.LIMITS_DEG)
    t = np.arange(T) / 30.0
    X = np.zeros((T, 2, 21, 3))
    params = np.zeros((2, T, 27))
    for h in range(2):
        mid, amp = (lim[:, 0] + lim[:, 1]) / 2, 0.3 * (lim[:, 1] - lim[:, 0])
        params[h, :, 6:] = mid + amp * np.sin(2 * np.pi * 0.4 * t[:, None] + rng.uniform(0, 6, 21))
        params[h, :, :3] = [2.5, 0.3, 0.2] + 0.3 * np.sin(t[:, None] + rng.uniform(0, 6, 3))
        params[h, :, 3:6] = [(h - 0.5) * 0.4, 0.0, 1.0] + 0.05 * np.sin(t[:, None] + [0, 1, 2])
        pts = kin.kinematic_forward(hand, params[h])[0]
        X[:, h] = pts * [-1, 1, 1] if h == 0 else pts
    return X, params


def test_fit_recovers_known_angles_both_hands():
    X, params = _kin_sequence()
    res = run_fit(_hands3d(X), FitConfig(model="kinematic", smooth_weight=0.0, prior_weight=0.0))
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side]
        assert np.nanmean(fit.fit_error) < NOISELESS_JOINT_M
        np.testing.assert_allclose(np.degrees(fit.angles_rad), np.degrees(params[h, :, 6:]),
                                   atol=ANGLE_DEG)  # fmt: skip


def test_limits_hold():
    flex = np.zeros((5, 3))
    flex[1:, 1] = np.radians(-60)  # PIPs hyperextended 60 degrees: beyond the -15 limit
    X = np.broadcast_to(hand_pose(flex) + [0, 0, 1.0], (10, 2, 21, 3)).copy()
    X[:, 0] *= [-1, 1, 1]
    res = run_fit(_hands3d(X), FitConfig(model="kinematic"))
    lo, hi = kin.LIMITS_DEG.T
    for fit in res.hands.values():
        ang = np.degrees(fit.angles_rad)
        assert (ang >= lo - 1e-6).all() and (ang <= hi + 1e-6).all()
        assert np.nanmean(fit.fit_error) > 0.005  # the pose cannot be reached


def test_noisy_fit_and_smoothness_on_moving_hands():
    X = make_hand_motion(60, speed="slow", seed=1)
    noisy = X + np.random.default_rng(0).normal(0, 0.003, X.shape)
    res = run_fit(_hands3d(noisy), FitConfig(model="kinematic"))
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side].joints3d
        err_fit = np.linalg.norm(fit - X[:, h], axis=-1).mean()
        err_in = np.linalg.norm(noisy[:, h] - X[:, h], axis=-1).mean()
        assert err_fit < 0.6 * err_in
        assert np.abs(np.diff(fit, 2, axis=0)).mean() < 0.5 * np.abs(
            np.diff(noisy[:, h], 2, axis=0)).mean()  # fmt: skip


def test_missing_joints_units_and_gaps():
    X = make_hand_motion(40, speed="slow", seed=2) * 1000.0  # millimetres
    holes = X.copy()
    holes[np.random.default_rng(3).random(holes.shape[:-1]) < 0.25] = np.nan
    holes[10:14] = np.nan
    holes[30:, 0, FINGER_JOINTS[1:].ravel()] = np.nan  # left: only palm and thumb seen
    res = run_fit(_hands3d(holes, "mm"), FitConfig(model="kinematic"))
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side]
        assert fit.fitted.all()
        err = np.linalg.norm(fit.joints3d - X[:, h], axis=-1)
        assert np.nanmean(err[:10]) < 1.0  # mm
        assert np.nanmean(err[10:14]) < 10.0  # bridged gap


def test_two_d_refinement_runs_and_stays_accurate():
    from mvhand.core.synthetic import DetectorNoise, make_or_rig, render_detections

    X = make_hand_motion(20, speed="slow", seed=4)
    rig = make_or_rig(4, distortion=False)
    kp = render_detections(rig, X, DetectorNoise(0.5, 0.0, 0.0, 0.0, 0.0), seed=0)
    noisy = X + np.random.default_rng(0).normal(0, 0.004, X.shape)
    cfg = FitConfig(model="kinematic")
    plain = run_fit(_hands3d(noisy), cfg)
    with_2d = run_fit(_hands3d(noisy), cfg, kp, rig)
    for h, side in enumerate(("left", "right")):
        e_plain = np.linalg.norm(plain.hands[side].joints3d - X[:, h], axis=-1).mean()
        e_2d = np.linalg.norm(with_2d.hands[side].joints3d - X[:, h], axis=-1).mean()
        assert e_2d < e_plain


def test_real_handmocap_kinematic_fit(shared_data):
    from mvhand.core.data import Keypoints2D
    from mvhand.core.triangulate import triangulate
    from mvhand.io.calibration import load_calibration

    d = shared_data / "handmocap"
    rig = load_calibration(d / "calibration.toml", "mm")
    raw = np.load(d / "right_2d.npy").astype(float)[:, :150]
    raw[raw < 0] = np.nan
    C, T = raw.shape[:2]
    kp = np.full((C, T, 2, 21, 2), np.nan)
    kp[:, :, 1] = raw
    scores = np.where(np.isfinite(kp).all(-1), 1.0, 0.0)
    h3 = triangulate(rig, Keypoints2D(kp, scores, rig.names))
    assert h3.units == "mm"
    res = run_fit(h3, FitConfig(model="kinematic"))
    assert set(res.hands) == {"right"}  # the left hand has no data and is skipped
    fit = res.hands["right"]
    assert np.nanmean(fit.fit_error) < REAL_JOINT_MM
    lengths = fit.shared["bone_lengths_m"] * 1000.0
    assert ((lengths > 10) & (lengths < 110)).all()  # plausible human bones (mm)
