"""``mvhand run`` end to end on real video: the Pose2Sim demo (4 cameras x 100 frames at 60 fps,
Qualisys calibration read through the converter, two videos 8 px narrower than calibrated).

No ground truth exists, so the run is judged by cross-view consistency: frames with both hands
in 3D, the median reprojection error of the hand joints, and bone-length stability, each with a
floor below the figures measured on the project machine (see the report in the README). The
pipeline runs once per test session; the cache makes the second run cheap.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from mvhand.core.skeleton import bone_lengths
from mvhand.io.calibration import load_calibration
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline
from mvhand.stages.reconstruct import reconstruction_report, run_reconstruct

pytestmark = pytest.mark.slow

#: Floors. Measured on the project machine: 95 frames with both hands after triangulation
#: (median reprojection 7.8 / 8.0 px, left / right) and 100 after the optimizer (9.3 / 9.4 px;
#: the optimizer trades reprojection error for smoothness and steady bones and fills short
#: gaps). The issue's targets are 80 % of the frames and 8 px.
MIN_FRAMES_BOTH_HANDS = 80
MAX_MEDIAN_REPROJECTION_TRIANGULATED_PX = 10.0
MAX_MEDIAN_REPROJECTION_PX = 12.0
#: Median over bones of the relative interquartile range of each bone's length over frames:
#: measured 0.22 / 0.34 (left / right) after triangulation (30-60 px hands, motion blur), and
#: ~0.002 after the optimizer, which holds bone lengths fixed.
MAX_BONE_LENGTH_SPREAD_TRIANGULATED = 0.45
MAX_BONE_LENGTH_SPREAD = 0.05
#: Median bone lengths of a human hand, mm (triangulated: 12-104 measured; optimized: up to
#: 104, the right wrist to index MCP). Both hands of one person: total lengths within 25 %.
MIN_BONE_MM, MAX_BONE_MM, MAX_BONE_MM_OPTIMIZED = 5.0, 120.0, 120.0
MAX_LEFT_RIGHT_SIZE_RATIO = 1.25
#: Each camera sees the person in nearly every frame.
MIN_FRAMES_WITH_PERSON = 90


@pytest.fixture(scope="session")
def demo_run(shared_data, tmp_path_factory):
    base = shared_data / "pose2sim_single"
    if not (base / "videos").is_dir():
        pytest.skip("the Pose2Sim demo videos are not in ../shared/data")
    out = tmp_path_factory.mktemp("pose2sim_run")
    cfg = load_pipeline()
    t0 = time.perf_counter()
    first = run_pipeline(base / "Calib.qca.txt", base / "videos", out, cfg)
    wall = time.perf_counter() - t0
    return base, out, cfg, first, wall


def test_demo_completeness_and_reprojection(demo_run):
    _, out, _, res, _ = demo_run
    rec = res.report["reconstruction"]
    assert rec["frames"] == 100 and rec["units"] == "mm"
    assert rec["frames_with_both_hands"] >= MIN_FRAMES_BOTH_HANDS
    for hand in ("left", "right"):
        err = rec["hands"][hand]["median_reprojection_error_px"]
        assert err is not None and err < MAX_MEDIAN_REPROJECTION_PX, (hand, err)
    h3 = np.load(out / "hands3d.npz")["keypoints3d"]
    assert h3.shape == (100, 2, 21, 3)


@pytest.fixture(scope="session")
def demo_triangulated(demo_run):
    """Robust triangulation of the demo's 2D keypoints, without the optimizer."""
    _, out, cfg, res, _ = demo_run
    rig = load_calibration(out / "calibration.toml")
    tri_cfg = dataclasses.replace(cfg.reconstruct, optimizer=dataclasses.replace(
        cfg.reconstruct.optimizer, enabled=False))  # fmt: skip
    return run_reconstruct(res.keypoints, rig, tri_cfg)


def test_demo_triangulation_of_the_2d_front_end(demo_triangulated):
    """The 2D front-end judged by itself: robust triangulation only, no optimizer."""
    rep = reconstruction_report(demo_triangulated)
    assert rep["frames_with_both_hands"] >= MIN_FRAMES_BOTH_HANDS
    for hand in ("left", "right"):
        err = rep["hands"][hand]["median_reprojection_error_px"]
        assert err < MAX_MEDIAN_REPROJECTION_TRIANGULATED_PX, (hand, err)


def test_demo_bone_lengths_are_stable(demo_run, demo_triangulated):
    _, out, _, _, _ = demo_run
    # before the optimizer: the spread measures the 2D front-end's consistency over time
    lengths = bone_lengths(demo_triangulated.hands3d.keypoints3d)  # (T, H, 20) mm
    for h in range(2):
        q75, q50, q25 = np.nanpercentile(lengths[:, h], [75, 50, 25], axis=0)
        assert np.all(q50 > MIN_BONE_MM) and np.all(q50 < MAX_BONE_MM), q50
        spread = np.median((q75 - q25) / q50)
        assert spread < MAX_BONE_LENGTH_SPREAD_TRIANGULATED, (h, spread)
    # after it: constant bones of a human size
    final = bone_lengths(np.load(out / "hands3d.npz")["keypoints3d"])
    for h in range(2):
        q75, q50, q25 = np.nanpercentile(final[:, h], [75, 50, 25], axis=0)
        assert np.all(q50 > MIN_BONE_MM) and np.all(q50 < MAX_BONE_MM_OPTIMIZED), q50
        assert np.median((q75 - q25) / q50) < MAX_BONE_LENGTH_SPREAD
    sizes = np.nanmedian(final, axis=0).sum(axis=1)  # (H,) total bone length per hand
    assert sizes.max() / sizes.min() < MAX_LEFT_RIGHT_SIZE_RATIO, sizes


def test_demo_2d_report_and_size_mismatch(demo_run):
    _, out, _, res, _ = demo_run
    warnings = " ".join(res.report["warnings"])
    assert "cam01" in warnings and "cam02" in warnings and "1088x1920" in warnings
    assert res.report["inputs"]["image_sizes_px"]["cam01"] == [1080, 1920]
    for cam, stats in res.report["cameras"].items():
        assert stats["frames_with_person"] >= MIN_FRAMES_WITH_PERSON, cam
        assert stats["frames_missing"] == 0
    seen = [min(s["frames_with_left_hand"], s["frames_with_right_hand"])
            for s in res.report["cameras"].values()]  # fmt: skip
    assert sorted(seen)[-3] >= 30  # three cameras see each hand in at least 30 frames
    kp = np.load(out / "keypoints2d.npz")
    assert kp["keypoints"].shape == (4, 100, 2, 21, 2)
    assert (out / "cache" / "cam04.npz").is_file()


def test_demo_second_run_reuses_the_cache(demo_run, tmp_path):
    base, out, cfg, first, _ = demo_run

    def no_backend(_cfg):
        raise AssertionError("every camera should come from the cache")

    res = run_pipeline(base / "Calib.qca.txt", base / "videos", out, cfg,
                       backend_factory=no_backend)  # fmt: skip
    assert res.reused == ("cam01", "cam02", "cam03", "cam04")
    np.testing.assert_array_equal(np.isnan(res.keypoints.keypoints_px),
                                  np.isnan(first.keypoints.keypoints_px))  # fmt: skip
