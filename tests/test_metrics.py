"""Metrics against hand-computed values (mvhand.core.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mvhand.core import metrics as M  # noqa: N812
from mvhand.core.camera import Rig
from mvhand.core.synthetic import look_at

EXACT = 1e-9


def test_point_errors_conventions():
    gt = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, np.nan], [2.0, 2.0]])
    pred = np.array([[3.0, 4.0], [np.nan, np.nan], [0.0, 0.0], [2.0, 2.0]])
    err = M.point_errors(pred, gt)
    assert err[0] == pytest.approx(5.0)
    assert np.isposinf(err[1])  # ground truth, no prediction: a miss
    assert np.isnan(err[2])  # no ground truth: not scored
    assert err[3] == 0.0


def test_point_errors_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        M.point_errors(np.zeros((21, 3)), np.zeros((20, 3)))


def test_joint_mask_and_exclusion():
    mask = M.joint_mask(M.PAPER_EXCLUDED_JOINTS)
    assert mask.sum() == 19 and not mask[0] and not mask[1] and mask[2]
    gt = np.zeros((21, 3))
    pred = np.ones((21, 3))
    err = M.point_errors(pred, gt, mask)
    assert np.isnan(err[:2]).all()
    assert M.mean_error(err) == pytest.approx(np.sqrt(3))
    with pytest.raises(ValueError, match="unknown joint"):
        M.joint_mask(["pinky"])


def test_mean_error_and_completeness():
    err = np.array([5.0, np.inf, np.nan, 1.0])
    assert M.mean_error(err) == pytest.approx(3.0)
    assert M.completeness(err) == pytest.approx(2 / 3)
    assert np.isnan(M.mean_error(np.array([np.nan, np.inf])))
    per_row = M.mean_error(np.array([[1.0, 3.0], [np.nan, 4.0]]), axis=1)
    np.testing.assert_allclose(per_row, [2.0, 4.0])


def test_pck_hand_computed():
    err = np.array([1.0, 7.0, np.inf, np.nan, 10.0])
    # scored: 1, 7, inf, 10 -> <=5: 1 of 4; <=10: 3 of 4; <=20: 3 of 4
    np.testing.assert_allclose(M.pck(err, [5.0, 10.0, 20.0]), [25.0, 75.0, 75.0])
    assert np.isnan(M.pck(np.array([np.nan]), [5.0])).all()
    thr, curve = M.pck_curve(err, 10.0, n=3)
    np.testing.assert_allclose(thr, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(curve, [0.0, 25.0, 75.0])


def test_procrustes_recovers_similarity(rng):
    gt = rng.normal(size=(21, 3))
    R = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    pred = 1.7 * gt @ R.T + [4.0, -2.0, 0.5]
    assert M.mean_error(M.point_errors(pred, gt)) > 1.0
    assert np.nanmax(M.pa_point_errors(pred, gt)) < 1e-9


def test_pa_mpjpe_hand_computed():
    # a square scaled by 2 about its centre: MPJPE = half diagonal of the original, PA = 0
    gt = np.array([[1.0, 1.0, 0.0], [-1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [1.0, -1.0, 0.0]])
    pred = 2.0 * gt
    assert M.mean_error(M.point_errors(pred, gt)) == pytest.approx(np.sqrt(2))
    assert np.nanmax(M.pa_point_errors(pred, gt)) < 1e-9
    # without scale the best rigid fit of the doubled square is the identity: each corner
    # stays sqrt(2) from its truth
    aligned = M.procrustes_align(pred, gt, scale=False)
    np.testing.assert_allclose(np.linalg.norm(aligned - gt, axis=1), np.sqrt(2), atol=1e-9)


def test_pa_point_errors_batch_and_misses():
    gt = np.tile(np.eye(3)[None, None], (2, 1, 1, 1))  # (T=2, H=1, J=3, 3)
    gt = np.concatenate([gt, np.zeros((2, 1, 1, 3))], axis=2)
    pred = gt.copy()
    pred[1, 0, 2] = np.nan
    err = M.pa_point_errors(pred, gt)
    assert err.shape == (2, 1, 4)
    assert np.isposinf(err[1, 0, 2])
    assert np.nanmax(np.where(np.isfinite(err), err, 0)) < 1e-9


def test_oks_hand_computed():
    sigmas = np.full(2, 0.025)  # var = (2 * 0.025)^2 = 0.0025
    area = np.array([400.0])  # 2 * var * area = 2, so d^2 = 2 ln 2 gives OKS 0.5
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[np.sqrt(2 * np.log(2)), 0.0], [0.0, 0.0]]])
    vis = np.array([[True, True]])
    assert M.oks(pred, gt, vis, area, sigmas)[0] == pytest.approx((0.5 + 1.0) / 2)
    # an unlabeled joint is ignored, a missing predicted joint scores 0
    assert M.oks(pred, gt, np.array([[True, False]]), area, sigmas)[0] == pytest.approx(0.5)
    pred[0, 1] = np.nan
    assert M.oks(pred, gt, vis, area, sigmas)[0] == pytest.approx(0.25)


def test_average_precision_hand_computed():
    # one ground truth, a prediction with OKS 0.72: TP at 0.50..0.70 (5 of 10 thresholds)
    assert M.average_precision(np.array([0.72]), np.array([0.9]), 1) == pytest.approx(50.0)
    # a false positive ranked above a perfect TP: precision 1/2 at full recall
    o = np.array([np.nan, 1.0])
    assert M.average_precision(o, np.array([0.9, 0.5]), 1) == pytest.approx(50.0)
    # ranked below it, the FP costs nothing
    assert M.average_precision(o, np.array([0.1, 0.5]), 1) == pytest.approx(100.0)
    # a missed ground truth halves recall: precision 1 up to recall 0.5 -> 51 of 101 points
    assert M.average_precision(np.array([1.0]), np.array([1.0]), 2) == pytest.approx(
        100 * 51 / 101)
    assert M.average_precision(np.array([]), np.array([]), 3) == 0.0
    assert np.isnan(M.average_precision(np.array([]), np.array([]), 0))


def test_reprojection_errors_hand_computed():
    cams = tuple(look_at(f"c{i}", [2.0 * np.cos(a), 2.0 * np.sin(a), 1.5], [0, 0, 1.0],
                         (640, 480), 500.0) for i, a in enumerate([0.0, 2.0]))  # fmt: skip
    rig = Rig(cams, "m")
    pts = np.array([0.0, 0.0, 1.0]) + np.random.default_rng(0).normal(0, 0.05, (3, 2, 21, 3))
    gt2d = rig.project(pts)
    err = M.reprojection_errors(rig, pts, gt2d)
    assert err.shape == (2, 3, 2, 21) and np.nanmax(err) < EXACT
    err = M.reprojection_errors(rig, pts, gt2d + [3.0, 4.0])
    np.testing.assert_allclose(err, 5.0)
    pts[0, 0, 0] = np.nan
    assert np.isposinf(M.reprojection_errors(rig, pts, gt2d)[:, 0, 0, 0]).all()


def test_bbox_area():
    gt = np.array([[[0.0, 0.0], [4.0, 0.0], [4.0, 3.0], [100.0, 100.0]]])
    assert M.bbox_area(gt, np.array([[True, True, True, False]]))[0] == pytest.approx(12.0)
    assert M.bbox_area(gt, np.zeros((1, 4), bool))[0] == 0.0


def test_hand_sigmas_cover_21_joints():
    assert M.HAND_OKS_SIGMAS.shape == (21,)
    assert M.OKS_THRESHOLDS[0] == 0.5 and M.OKS_THRESHOLDS[-1] == 0.95
    assert len(M.OKS_THRESHOLDS) == 10
