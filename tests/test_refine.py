"""3D-guided re-detection (mvhand.stages.refine): a hand the first pass missed in one camera is
recovered from the projected 3D hand, a re-detection on the wrong hand is rejected, and the
refined 2D is cached.

Uses the scripted scene of tests/test_run_pipeline.py (three cameras, pixels that encode their
own position, a fake backend that answers with the true projection).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_run_pipeline import FAST, N_FRAMES, Factory, FakeHand, Scene, scene_dir  # noqa: F401

from mvhand.backends.base import HandKeypoints
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline
from mvhand.stages.refine import RefineConfig, _decide, offset, plan_refine

#: The frames and camera where the first-pass hand model is scripted to miss the left hand.
MISSED_CAMERA, MISSED_FRAMES = 1, range(8, 16)
#: Recovered keypoints equal the truth up to float32 storage.
EXACT_2D_PX = 1e-3
#: Triangulation from exact 2D recovers the joints to well under a millimetre.
EXACT_3D_MM = 0.5


class MissingHand(FakeHand):
    """FakeHand that, in the first pass only, reports no left hand in some frames of one
    camera (presence 0.01, as a model that sees no hand)."""

    def __init__(self, scene, miss: bool) -> None:
        super().__init__(scene)
        self.miss = miss

    def estimate(self, image, crop):
        res = super().estimate(image, crop)
        c, t, offset_px = Scene.decode(image)
        center = np.asarray(crop.center_px) + offset_px
        left = self.scene.proj[c, t, 0].mean(axis=0)
        on_left = np.linalg.norm(left - center) < crop.size_px / 2
        if self.miss and c == MISSED_CAMERA and t in MISSED_FRAMES and on_left:
            return HandKeypoints(res.keypoints_px, res.scores, 0.01)
        return res


class ScriptedFactory(Factory):
    """The first backend built (the first pass) misses; later ones (the refine pass) do not."""

    def __call__(self, cfg):
        backend = super().__call__(cfg)
        backend.hand = self.hand = MissingHand(self.scene, miss=self.made == 1)
        return backend


def _run(scene, root, out, overrides, factory):
    cfg = load_pipeline(None, FAST + overrides)
    return run_pipeline(root / "cams.toml", root / "videos", out, cfg, backend_factory=factory)


def test_refine_recovers_a_hand_the_first_pass_missed(scene_dir, tmp_path):  # noqa: F811
    scene, root = scene_dir
    # without refine the scripted miss is there: no left hand in those frames of that camera
    base = _run(scene, root, tmp_path / "base", [], ScriptedFactory(scene))
    missed = base.keypoints.keypoints_px[MISSED_CAMERA, list(MISSED_FRAMES), 0]
    assert not np.isfinite(missed).any()
    assert "refine" not in base.report

    factory = ScriptedFactory(scene)
    res = _run(scene, root, tmp_path / "ref", ["refine.enabled=true"], factory)
    assert factory.made == 2  # the refine pass built its own hand model
    np.testing.assert_allclose(res.keypoints.keypoints_px, scene.proj, atol=EXACT_2D_PX)
    cam = res.report["refine"]["cameras"][scene.rig.names[MISSED_CAMERA]]
    assert cam["hands_added"] == len(MISSED_FRAMES)
    assert cam["frames_with_left_hand"] == N_FRAMES
    # exact first-pass hands agree with the projection: no model call for them
    others = [c for i, c in enumerate(scene.rig.names) if i != MISSED_CAMERA]
    assert all(res.report["refine"]["cameras"][c]["hand_model_calls"] == 0 for c in others)
    assert cam["hand_model_calls"] == len(MISSED_FRAMES)
    h3 = np.load(tmp_path / "ref" / "hands3d.npz")
    err_mm = np.linalg.norm(h3["keypoints3d"] - scene.hands, axis=-1) * 1000
    assert np.nanmax(err_mm) < EXACT_3D_MM
    np.testing.assert_array_equal(h3["n_views"][list(MISSED_FRAMES), 0], 3)
    saved = json.loads((tmp_path / "ref" / "report.json").read_text())
    assert saved["refine"]["first_pass"]["frames_with_both_hands"] == N_FRAMES

    # a second run reuses the cached refined 2D and needs no backend at all
    again = _run(scene, root, tmp_path / "ref", ["refine.enabled=true"],
                 Factory(scene, fail=True))  # fmt: skip
    assert again.report["refine"]["from_cache"] is True
    np.testing.assert_array_equal(again.keypoints.keypoints_px, res.keypoints.keypoints_px)


def _hand(rng, center, size=40.0):
    return center + rng.uniform(-size / 2, size / 2, (21, 2))


def test_decide_rejects_the_other_hand_and_weak_or_worse_detections():
    rng = np.random.default_rng(0)
    cfg = RefineConfig(enabled=True)
    proj = _hand(rng, np.array([100.0, 100.0]))
    near = proj + rng.normal(0, 1.0, proj.shape)
    other_hand = proj + np.array([60.0, 0.0])  # 1.5 hand sizes away
    none = np.full((21, 2), np.nan)
    assert _decide(none, 0.0, near, 0.9, proj, cfg) == "add"
    assert _decide(none, 0.0, other_hand, 0.9, proj, cfg) == "keep"
    assert _decide(none, 0.0, near, cfg.min_presence - 0.01, proj, cfg) == "keep"
    far_old = proj + 8.0
    assert _decide(far_old, 0.5, near, 0.6, proj, cfg) == "replace"
    assert _decide(far_old, 0.7, near, 0.6, proj, cfg) == "keep"  # lower presence
    assert _decide(near, 0.5, far_old, 0.9, proj, cfg) == "keep"  # agrees worse


def test_plan_skips_hands_that_already_agree_and_hands_not_projected():
    rng = np.random.default_rng(1)
    proj = np.stack([_hand(rng, np.array([50.0 * i, 80.0])) for i in range(1, 5)])  # (4, 21, 2)
    kp = proj.copy()
    kp[1] += 20.0  # half a hand size off
    kp[2] = np.nan  # missed
    proj[3] = np.nan  # not reconstructed
    np.testing.assert_array_equal(plan_refine(kp, proj, RefineConfig()), [False, True, True,
                                                                          False])  # fmt: skip
    np.testing.assert_array_equal(plan_refine(kp, proj, RefineConfig(skip_offset=0.0)),
                                  [True, True, True, False])  # fmt: skip
    assert offset(kp[0], proj[0]) == pytest.approx(0.0)


def test_a_frames_crops_go_to_the_hand_model_in_one_batch_when_it_offers_one():
    from mvhand.backends.base import HandCrop, HandKeypoints
    from mvhand.stages.refine import estimate_crops

    class OneByOne:
        def __init__(self):
            self.calls = 0

        def estimate(self, image, crop):
            self.calls += 1
            xy = np.tile(np.asarray(crop.center_px, float), (21, 1))
            return HandKeypoints(xy, np.full(21, 0.9), 0.9)

    class Batched(OneByOne):
        def __init__(self):
            super().__init__()
            self.batches = []

        def estimate_batch(self, image, crops):
            self.batches.append(len(crops))
            return [OneByOne.estimate(self, image, c) for c in crops]

    image = np.zeros((64, 64, 3), np.uint8)
    crops = [HandCrop(np.array([10.0, 20.0]), 30.0, 0.0),
             HandCrop(np.array([40.0, 5.0]), 30.0, 0.0)]
    single, batched = OneByOne(), Batched()
    a, b = estimate_crops(single, image, crops), estimate_crops(batched, image, crops)
    assert single.calls == 2 and batched.batches == [2]
    for x, y, crop in zip(a, b, crops, strict=True):
        np.testing.assert_array_equal(x.keypoints_px, y.keypoints_px)
        np.testing.assert_array_equal(x.keypoints_px[0], crop.center_px)
    assert estimate_crops(batched, image, []) == [] and batched.batches == [2]
