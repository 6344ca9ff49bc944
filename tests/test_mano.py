"""MANO layer: the chumpy-free loader, forward conventions, Jacobians and sequence fits.

No real MANO files exist here: ``mano_synth`` builds files with the official structure.
"""

from __future__ import annotations

import logging
import pickle
import sys

import numpy as np
import pytest

from mvhand.core.data import Hands3D
from mvhand.core.skeleton import JOINT_NAMES, MANO
from mvhand.errors import InputError
from mvhand.fit import FitConfig, run_fit
from mvhand.fit.mano import (
    TIP_VERTEX_IDS,
    check_tip_vertices,
    mano_forward,
    mano_keypoints_jacobian,  # fmt: skip
    mirror_pose,
)
from mvhand.fit.mano_io import load_mano_dir, mano_model_from_dict, read_mano_pickle
from mvhand.fit.rotation import rodrigues

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import mano_synth  # noqa: E402

#: Mean fitted-joint error on noiseless input (m); the issue's target is 3 mm.
NOISELESS_JOINT_M = 0.001
#: Exactness of the forward conventions (m).
EXACT_M = 1e-9
#: Finite-difference agreement of the analytic Jacobian (m per unit).
JACOBIAN_TOL = 1e-5


@pytest.fixture(scope="module")
def mano_dir(tmp_path_factory):
    return mano_synth.write_mano_dir(tmp_path_factory.mktemp("mano"))


@pytest.fixture(scope="module")
def models(mano_dir):
    return load_mano_dir(mano_dir)


def _zeros(n=1):
    return np.zeros((n, 3)), np.zeros((n, 45)), np.zeros((n, 3))


def test_loader_reads_chumpy_file_without_chumpy(mano_dir):
    raw = read_mano_pickle(mano_dir / "MANO_RIGHT.pkl")
    truth = mano_synth.make_mano_dict(0, "right")
    assert "chumpy" not in sys.modules
    np.testing.assert_array_equal(raw["shapedirs"], truth["shapedirs"])
    np.testing.assert_array_equal(raw["J_regressor"], truth["J_regressor"].toarray())
    assert raw["bs_style"] == "lbs"


def test_missing_key_is_named(tmp_path):
    d = mano_synth.make_mano_dict(0)
    del d["posedirs"]
    mano_synth.write_mano_pickle(tmp_path / "MANO_RIGHT.pkl", d)
    with pytest.raises(InputError, match="posedirs"):
        load_mano_dir(tmp_path, ("right",))


def test_wrong_shape_and_foreign_globals_are_refused(tmp_path):
    d = mano_synth.make_mano_dict(0)
    d["hands_mean"] = np.zeros(44)
    with pytest.raises(InputError, match="hands_mean"):
        mano_model_from_dict(d, "right")
    evil = tmp_path / "MANO_RIGHT.pkl"
    evil.write_bytes(pickle.dumps({"v_template": print}, protocol=2))
    with pytest.raises(InputError, match="refusing"):
        read_mano_pickle(evil)


def test_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(InputError) as exc:
        load_mano_dir(tmp_path / "nowhere")
    assert "mano.is.tue.mpg.de" in str(exc.value) and "--mano-dir" in str(exc.value)
    with pytest.raises(InputError, match="MANO_LEFT.pkl is missing"):
        load_mano_dir(tmp_path)


def test_left_shapedirs_defect_is_repaired(tmp_path):
    folder = mano_synth.write_mano_dir(tmp_path, left_shapedirs_bug=True)
    left = load_mano_dir(folder)["left"]
    truth = mano_synth.make_mano_dict(0, "left")["shapedirs"]
    np.testing.assert_allclose(left.shapedirs, truth)


def test_convention_rest_pose_and_tips(models):
    m = models["right"]
    kp, verts = mano_forward(m, np.zeros(10), *_zeros(), vertices=True)
    joints, tips = mano_synth.canonical_mano_joints()
    mano21 = np.concatenate([joints, tips])
    np.testing.assert_allclose(kp[0], mano21[MANO], atol=EXACT_M)
    np.testing.assert_allclose(verts[0], m.v_template, atol=EXACT_M)
    fingers = ("thumb", "index", "middle", "ring", "little")
    for name, vid in zip(fingers, TIP_VERTEX_IDS, strict=True):
        np.testing.assert_allclose(kp[0, JOINT_NAMES.index(f"{name}_tip")], verts[0, vid])
    assert check_tip_vertices(m) == []


def test_tip_check_flags_a_misplaced_tip(models):
    m = models["right"]
    bad = mano_model_from_dict({**mano_synth.make_mano_dict(0), "weights": np.roll(
        m.weights, 1, axis=1)}, "right")  # fmt: skip
    assert check_tip_vertices(bad)


def test_convention_known_rotations(models):
    m = models["right"]
    rest = mano_forward(m, np.zeros(10), *_zeros())[0][0]
    rot = np.array([[0.0, 0.0, np.pi / 2]])
    go, hp, tr = _zeros()
    kp = mano_forward(m, np.zeros(10), rot, hp, tr + [0.1, 0.2, 0.3])[0][0]
    R = rodrigues(rot[0])
    np.testing.assert_allclose(kp, (rest - rest[0]) @ R.T + rest[0] + [0.1, 0.2, 0.3],
                               atol=EXACT_M)  # fmt: skip
    # bending the index MCP (MANO joint 1) moves only the index joints beyond it (the other
    # fingertips are vertices, which the pose blend shapes may nudge)
    hp = np.zeros((1, 45))
    hp[0, 0:3] = [0.8, 0.0, 0.0]
    kp = mano_forward(m, np.zeros(10), go, hp, tr)[0][0]
    moved = np.linalg.norm(kp - rest, axis=1) > 1e-6
    skeleton_moved = [JOINT_NAMES[j] for j in np.flatnonzero(moved) if "tip" not in JOINT_NAMES[j]]
    assert skeleton_moved == ["index_pip", "index_dip"]
    tip = JOINT_NAMES.index("index_tip")
    assert np.linalg.norm(kp[tip] - rest[tip]) > 0.02


def test_both_hands_mirror_each_other(models, rng):
    b = rng.normal(size=10)
    go, hp, tr = rng.normal(size=(4, 3)), 0.3 * rng.normal(size=(4, 45)), rng.normal(size=(4, 3))
    kr, vr = mano_forward(models["right"], b, go, hp, tr, vertices=True)
    kl, vl = mano_forward(models["left"], b, mirror_pose(go), mirror_pose(hp), tr * [-1, 1, 1],
                          vertices=True)  # fmt: skip
    np.testing.assert_allclose(kl, kr * [-1, 1, 1], atol=EXACT_M)
    np.testing.assert_allclose(vl, vr * [-1, 1, 1], atol=EXACT_M)


def test_jacobian_matches_finite_differences(models, rng):
    m = models["right"]
    b, go = rng.normal(size=10), rng.normal(size=(3, 3))
    hp, tr = 0.4 * rng.normal(size=(3, 45)), rng.normal(size=(3, 3))
    kp, J, Jb = mano_keypoints_jacobian(m, b, go, hp, tr)
    x = np.concatenate([go, tr, hp], axis=1)
    eps = 1e-7
    for k in range(0, 51, 5):
        y = x.copy()
        y[:, k] += eps
        num = (mano_forward(m, b, y[:, :3], y[:, 6:], y[:, 3:6])[0] - kp) / eps
        np.testing.assert_allclose(J[..., k], num, atol=JACOBIAN_TOL)
    bb = b.copy()
    bb[3] += eps
    num = (mano_forward(m, bb, go, hp, tr)[0] - kp) / eps
    np.testing.assert_allclose(Jb[..., 3], num, atol=JACOBIAN_TOL)


def _sequence(models, T=40, seed=3, n_pca=0):
    """Ground-truth MANO motion of both hands: (X (T, 2, 21, 3), truth per side)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 30.0
    X = np.zeros((T, 2, 21, 3))
    truth = {}
    for h, side in enumerate(("left", "right")):
        m = models[side]
        betas = rng.normal(0, 1, 10)
        go = np.stack([2.8 + 0.3 * np.sin(t), 0.2 * np.cos(0.7 * t), 0.5 * np.sin(0.5 * t)], 1)
        if n_pca:
            coeffs = 0.5 * np.sin(t[:, None] + rng.uniform(0, 6, n_pca))
            hp = m.hands_mean + coeffs @ m.hands_components[:n_pca]
        else:
            coeffs = None
            grip = 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
            hp = m.hands_mean * (1 + 3 * grip[:, None])
        tr = np.stack([0.1 * np.sin(0.3 * t) + (h - 0.5) * 0.4, 0.05 * np.cos(t), 1.0 + 0 * t], 1)
        X[:, h] = mano_forward(m, betas, go, hp, tr)[0]
        truth[side] = {"betas": betas, "global_orient": go, "transl": tr, "coeffs": coeffs}
    return X, truth


def _hands3d(X):
    z = np.zeros(X.shape[:-1])
    return Hands3D(X, z, z.astype(int) + 3, z + 1.0, "m")


def _mean_err(a, b):
    return float(np.nanmean(np.linalg.norm(a - b, axis=-1)))


def test_fit_recovers_noiseless_sequence_both_hands(models):
    X, truth = _sequence(models)
    res = run_fit(_hands3d(X), FitConfig(model="mano", mano_dir="given"), mano_models=models)
    assert set(res.hands) == {"left", "right"}
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side]
        assert _mean_err(fit.joints3d, X[:, h]) < NOISELESS_JOINT_M
        R_fit = rodrigues(fit.params[:, :3])
        R_true = rodrigues(truth[side]["global_orient"])
        assert np.abs(R_fit - R_true).max() < 0.1  # shape and wrist trade off slightly
        np.testing.assert_allclose(fit.params[:, 3:6], truth[side]["transl"], atol=0.005)


def test_fit_recovers_shape_and_pca_articulation(models):
    X, truth = _sequence(models, n_pca=6, seed=5)
    cfg = FitConfig(model="mano", mano_dir="given", mano_pca_components=6, shape_prior_weight=0.0,
                    prior_weight=0.0, iterations=40)  # fmt: skip
    res = run_fit(_hands3d(X), cfg, mano_models=models)
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side]
        assert _mean_err(fit.joints3d, X[:, h]) < NOISELESS_JOINT_M / 5
        np.testing.assert_allclose(fit.params[:, 6:], truth[side]["coeffs"], atol=0.05)
        np.testing.assert_allclose(fit.shared["betas"], truth[side]["betas"], atol=0.1)


def test_noisy_fit_is_closer_to_truth_than_input_and_smoother(models):
    X, _ = _sequence(models, T=60)
    noisy = X + np.random.default_rng(0).normal(0, 0.003, X.shape)
    res = run_fit(_hands3d(noisy), FitConfig(model="mano", mano_dir="given"), mano_models=models)
    for h, side in enumerate(("left", "right")):
        fit = res.hands[side].joints3d
        assert _mean_err(fit, X[:, h]) < 0.6 * _mean_err(noisy[:, h], X[:, h])
        jitter_fit = np.abs(np.diff(fit, 2, axis=0)).mean()
        jitter_in = np.abs(np.diff(noisy[:, h], 2, axis=0)).mean()
        assert jitter_fit < 0.5 * jitter_in


def test_missing_joints_and_gaps(models, caplog):
    X, _ = _sequence(models, T=40)
    holes = X.copy()
    rng = np.random.default_rng(1)
    holes[rng.random(holes.shape[:-1]) < 0.2] = np.nan  # 20 % of joints missing
    holes[15:20] = np.nan  # a 5-frame gap in both hands
    holes[:, 0, :, :][:, 4:] = np.nan  # left hand: only 4 joints ever seen... then none at all
    holes[:, 0] = np.nan
    with caplog.at_level(logging.WARNING):
        res = run_fit(_hands3d(holes), FitConfig(model="mano", mano_dir="given"),
                      mano_models=models)  # fmt: skip
    assert "left" not in res.hands and "not fitted" in caplog.text
    fit = res.hands["right"]
    assert fit.fitted.all()
    assert _mean_err(fit.joints3d, X[:, 1]) < 2 * NOISELESS_JOINT_M
    assert _mean_err(fit.joints3d[15:20], X[15:20, 1]) < 0.01  # bridged, within 1 cm
