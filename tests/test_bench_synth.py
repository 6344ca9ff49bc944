"""The synthetic OR benchmark generator: determinism, exact ground truth, realistic failures."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from mvhand.bench.synth import (
    LEVEL_PRESETS,
    SynthConfig,
    make_bench_rig,
    mocap_articulation,
    person_motion,
    synthesize,
)
from mvhand.core import metrics
from mvhand.core.skeleton import bone_lengths

EXACT_PX = 1e-6
TINY = SynthConfig(n_cameras=4, n_frames=30, n_keyframes=5)


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Median over the last axis, NaN (without a warning) where all are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=-1)


@pytest.fixture(scope="module")
def l2():
    return synthesize(SynthConfig(level="L2", n_cameras=6, n_frames=120, seed=1))


def test_deterministic():
    a = synthesize(replace(TINY, level="L1", seed=5))
    b = synthesize(replace(TINY, level="L1", seed=5))
    c = synthesize(replace(TINY, level="L1", seed=6))
    np.testing.assert_array_equal(a.gt3d.keypoints3d, b.gt3d.keypoints3d)
    np.testing.assert_array_equal(a.detections.keypoints_px, b.detections.keypoints_px)
    np.testing.assert_array_equal(a.detections.scores, b.detections.scores)
    np.testing.assert_array_equal(a.annotations.visibility, b.annotations.visibility)
    assert not np.allclose(a.gt3d.keypoints3d, c.gt3d.keypoints3d)


@pytest.mark.parametrize("level", list(LEVEL_PRESETS))
def test_ground_truth_reprojects_onto_labels(level):
    s = synthesize(replace(TINY, level=level))
    ann = s.annotations
    assert ann.n_instances > 0
    proj = s.rig.project(s.gt3d.keypoints3d[ann.frames])  # (C, K, H, 21, 2)
    lab = ann.labeled
    assert np.abs(proj[lab] - ann.keypoints_px[lab]).max() < EXACT_PX
    assert s.gt3d.keypoints3d.shape[1] == 2 * LEVEL_PRESETS[level].persons
    assert s.detections.keypoints_px.shape[2] == 2  # the primary person's hands only


def test_skeleton_is_rigid_and_hands_move_at_level_speed():
    rng = np.random.default_rng(0)
    speeds = {}
    for speed in ("static", "slow", "fast"):
        hands = person_motion(150, 30.0, speed, 0, rng)
        lengths = bone_lengths(hands)  # (T, 2, 20)
        assert np.ptp(lengths, axis=0).max() < 1e-9
        assert (hands[..., 2] > 0.9).all()  # above the table top
        v = np.linalg.norm(np.diff(hands[:, :, 0], axis=0), axis=-1) * 30.0
        speeds[speed] = float(np.median(v))
    assert speeds["static"] < 0.01 < speeds["slow"] < 0.15 < speeds["fast"] < 1.0


def test_rig_layout():
    rig = make_bench_rig(12, seed=0)
    assert len(rig) == 12 and rig[0].size_px == (2160, 3840)
    dist = np.linalg.norm([c.center_world[:2] for c in rig.cameras], axis=1)
    assert (dist[:4] > 2.8).all() and (dist[4:] < 1.9).all()  # 4 far-field, 8 near-field
    table = np.array([0.0, 0.0, 1.0])
    for cam in rig.cameras:  # every camera looks at the table
        assert cam.world_to_cam(table)[2] > 0
        u, v = cam.project(table)
        assert 0 < u < 2160 and 0 < v < 3840


def test_detector_failure_modes(l2):
    det, rig = l2.detections, l2.rig
    truth = rig.project(l2.gt3d.keypoints3d[:, :2])
    err = metrics.point_errors(det.keypoints_px, truth)
    finite = np.isfinite(err)
    assert 0.6 < metrics.completeness(err) < 0.97  # dropouts and occlusions
    assert np.median(err[finite]) < 15.0  # most detections are good ...
    assert (err[finite] > 50).mean() > 0.01  # ... some are gross outliers
    # scores fall with the error
    assert np.corrcoef(det.scores[finite], np.minimum(err[finite], 100))[0, 1] < -0.1
    # left/right swaps: a view's left detection lying on the right hand
    cross = np.linalg.norm(det.keypoints_px[:, :, 0] - truth[:, :, 1], axis=-1)
    assert np.nanmin(_nanmedian(cross)) < 20.0


def test_noise_grows_with_distance():
    s = synthesize(SynthConfig(level="L0", n_cameras=12, n_frames=60, seed=2))
    truth = s.rig.project(s.gt3d.keypoints3d)
    err = metrics.point_errors(s.detections.keypoints_px, truth)
    per_cam = np.array([np.nanmedian(np.where(e < 30, e, np.nan)) for e in err])
    assert per_cam[:4].mean() > 1.2 * per_cam[4:].mean()  # far-field cameras are noisier


def test_multi_person_distractors():
    s = synthesize(SynthConfig(level="L5", n_cameras=6, n_frames=90, seed=0))
    assert s.annotations.hands[2:] == ("p1_left", "p1_right", "p2_left", "p2_right")
    gt = s.gt3d.keypoints3d
    truth_other = s.rig.project(gt[:, 2:])  # (C, T, 4, 21, 2)
    det = s.detections.keypoints_px
    d = np.linalg.norm(det[:, :, :, None] - truth_other[:, :, None], axis=-1)  # (C,T,2,4,21)
    on_other = (_nanmedian(d) < 25.0).any(-1)
    assert on_other.any()  # some primary detections are another person's hand


def test_mocap_retarget(shared_data):
    capture = np.load(shared_data / "handmocap" / "right_3d_reference_0123.npy")
    flex, rot = mocap_articulation(capture)
    assert flex.shape == (len(capture), 5, 3)
    assert (flex >= 0).all() and (flex <= 1.7).all() and flex.std(0).mean() > 0.02
    s = synthesize(replace(TINY, level="L1", mocap_path=shared_data / "handmocap"
                           / "right_3d_reference_0123.npy"))  # fmt: skip
    assert s.info.metadata["motion"].startswith("handmocap")
    assert np.ptp(bone_lengths(s.gt3d.keypoints3d), axis=0).max() < 1e-9


def test_bad_config():
    with pytest.raises(ValueError, match="level"):
        synthesize(replace(TINY, level="L9"))
    with pytest.raises(ValueError, match="keyframes"):
        synthesize(replace(TINY, n_frames=3))
