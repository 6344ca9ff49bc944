"""Stages 2-5 on scripted inputs: tracking schedule (seed, propagate, restart), the tracker's
checks, hand regions, 2D clean-up and the person follower."""

from __future__ import annotations

import numpy as np
import pytest

from mvhand.backends.base import BodyPose, HandCrop, HandKeypoints, PersonDetection
from mvhand.core.crops import BodyHand
from mvhand.stages.body import DetectConfig, box_from_pose, follow_detection, iou, run_body
from mvhand.stages.hands2d import Hands2DConfig, run_hands2d
from mvhand.stages.patches import HandPatches
from mvhand.stages.track import (
    SOURCE_BODY,
    SOURCE_TRACK,
    TrackingConfig,
    plan_tracks,
    run_track,
)

#: Keypoints must come back through the hand-region store to float precision (px).
PATCH_ROUNDTRIP_PX = 1e-9


def scripted(fail_at: set[int], seed_fails: set[int] = frozenset()):
    """seed/step functions whose track fails at the frames ``fail_at``; they log calls."""
    log: list[tuple[str, int]] = []

    def seed(t):
        log.append(("seed", t))
        return None if t in seed_fails else t

    def step(t, prev):
        log.append(("step", t))
        assert abs(t - prev) == 1, "a step must come from the neighbouring frame"
        return None if t in fail_at else t

    return seed, step, log


def test_plan_seeds_at_best_frame_and_propagates_both_ways():
    conf = np.full(10, 0.5)
    conf[6] = 0.9
    seed, step, log = scripted(fail_at=set())
    tid, states = plan_tracks(conf, seed, step, 0.3)
    assert log[0] == ("seed", 6)
    assert [t for kind, t in log[1:]] == [7, 8, 9, 5, 4, 3, 2, 1, 0]
    assert (tid == 0).all() and sorted(states) == list(range(10))


def test_plan_restarts_from_next_best_remaining_frame():
    conf = np.array([0.4, 0.5, 0.35, 0.9, 0.6, 0.2, 0.8, 0.7, 0.31, 0.1])
    seed, step, log = scripted(fail_at={5, 1})
    tid, _ = plan_tracks(conf, seed, step, 0.3)
    # track 0 seeds at 3 (0.9) and covers 2..4 (steps into 5 and 1 fail); track 1 seeds at 6
    # (0.8) and covers 6..9 (stepping back into 5 fails); track 2 seeds at 1 (0.5): a failed
    # step does not remove a frame from the candidates, only tracked frames are removed
    assert tid.tolist() == [2, 2, 0, 0, 0, -1, 1, 1, 1, 1]
    assert [t for kind, t in log if kind == "seed"] == [3, 6, 1]
    # track 2 stops at frame 2, already held by track 0, without stepping into it
    assert log.count(("step", 2)) == 1


def test_plan_respects_confidence_floor_and_failed_seeds():
    conf = np.array([0.3, 0.29, np.nan, 0.31, 0.8])
    seed, step, log = scripted(fail_at={3}, seed_fails={4})
    tid, _ = plan_tracks(conf, seed, step, 0.3)
    # 0.3 is not above the floor, NaN counts as 0; frame 4 fails to seed, frame 3 seeds; the
    # track from 3 may still step into 4 (seeding and stepping use different crops)
    assert [t for kind, t in log if kind == "seed"] == [4, 3]
    assert tid.tolist() == [0, 0, 0, 0, 0]


def test_plan_no_candidates():
    seed, step, log = scripted(set())
    tid, states = plan_tracks(np.full(5, 0.2), seed, step, 0.3)
    assert (tid == -1).all() and not states and not log


# --- the tracker on a scripted hand model -------------------------------------------------


def hand_at(center: np.ndarray, size: float = 40.0) -> np.ndarray:
    """21 keypoints of an upright synthetic hand centred at ``center``: wrist at the bottom."""
    rng = np.random.default_rng(0)
    local = np.concatenate([[[0.0, 0.45]], rng.uniform(-0.4, 0.4, (20, 2)) + [0, -0.1]])
    return center + local * size


def truth_track(T: int = 30) -> np.ndarray:
    """(T, 2, 2) hand centres: left moves right, right moves left, 60 px apart at least."""
    t = np.arange(T)
    left = np.stack([100 + 2.0 * t, 200 + 0 * t], 1)
    right = np.stack([400 - 2.0 * t, 200 + 0 * t], 1)
    return np.stack([left, right], 1)


class ScriptedHandModel:
    """Finds the true hand nearest the crop centre, if within half a crop side; logs calls."""

    def __init__(self, centers: np.ndarray, absent: set[tuple[int, int]] = frozenset()):
        self.centers, self.absent, self.calls = centers, absent, []

    def __call__(self, t: int, crop: HandCrop) -> HandKeypoints:
        self.calls.append((t, crop))
        d = np.linalg.norm(self.centers[t] - crop.center_px, axis=1)
        h = int(np.argmin(d))
        present = d[h] < crop.size_px / 2 and (t, h) not in self.absent
        return HandKeypoints(hand_at(self.centers[t, h]), np.full(21, 0.9), 0.95 if present
                             else 0.05)  # fmt: skip


def body_hands(centers: np.ndarray, conf: np.ndarray, offset: float = 0.0):
    """Body-model hand estimates around the true centres (shifted by ``offset`` px in x)."""
    out = []
    for t in range(centers.shape[0]):
        row = []
        for h in range(2):
            c = centers[t, h] + [offset, 0.0]
            kp = np.full((21, 2), np.nan)
            kp[0] = hand_at(c)[0]
            sc = np.zeros(21)
            sc[0] = conf[t, h]
            row.append(BodyHand(HandCrop(c, 60.0, 0.0), float(conf[t, h]), kp, sc))
        out.append(tuple(row))
    return out


def test_run_track_follows_keypoints_after_seed():
    centers = truth_track()
    conf = np.full((30, 2), 0.5)
    conf[10, 0], conf[20, 1] = 0.9, 0.95
    model = ScriptedHandModel(centers)
    res = run_track(body_hands(centers, conf), model, TrackingConfig())
    assert (res.track_id >= 0).all()
    np.testing.assert_allclose(res.keypoints_px[:, 0, 0], [hand_at(c)[0] for c in centers[:, 0]])
    np.testing.assert_allclose(res.keypoints_px[:, 1, 0], [hand_at(c)[0] for c in centers[:, 1]])
    assert res.source[10, 0] == SOURCE_BODY and res.source[20, 1] == SOURCE_BODY
    assert (np.delete(res.source[:, 0], 10) == SOURCE_TRACK).all()
    # one call per hand and frame while the track holds, plus one re-crop per seed
    assert res.n_model_calls == 60 + 2
    crops = [c for t, c in model.calls if t == 10]
    assert crops[0].size_px == 60.0  # the body crop, then the re-crop from the keypoints
    assert crops[1].size_px != 60.0 and res.source[10, 0] == SOURCE_BODY


def test_run_track_restarts_after_a_failure():
    centers = truth_track()
    conf = np.full((30, 2), 0.5)
    conf[5, 0] = 0.9
    conf[25, 0] = 0.8
    absent = {(15, 0)}  # the left hand is not found at frame 15 (occluded)
    res = run_track(body_hands(centers, conf), ScriptedHandModel(centers, absent),
                    TrackingConfig())  # fmt: skip
    tid = res.track_id[:, 0]
    assert tid[15] == -1
    assert (tid[:15] == 0).all() and (tid[16:] == 1).all()
    assert np.isnan(res.keypoints_px[15, 0]).all() and res.presence[15, 0] == 0


def test_body_method_uses_body_crops_only():
    centers = truth_track()
    conf = np.full((30, 2), 0.5)
    model = ScriptedHandModel(centers)
    res = run_track(body_hands(centers, conf, offset=5.0), model,
                    TrackingConfig(method="body", refine=False))  # fmt: skip
    assert (res.source[res.track_id >= 0] == SOURCE_BODY).all()
    assert all(abs(c.center_px[0] - centers[t, :, 0]).min() == 5.0 for t, c in model.calls)


def test_track_jumping_to_the_other_hand_fails():
    """A body crop that lands on the other hand must not continue the track."""
    centers = truth_track(12)
    centers[:, 1] = centers[:, 0] + [45.0, 0.0]  # the right hand right beside the left
    conf = np.full((12, 2), 0.5)
    conf[0, 0] = 0.9
    bh = body_hands(centers, conf)
    # from frame 6 the left hand vanishes; the body's left crop sits on the right hand
    absent = {(t, 0) for t in range(6, 12)}
    model = ScriptedHandModel(centers, absent)
    res = run_track(bh, model, TrackingConfig(max_jump=0.5))
    assert (res.track_id[:6, 0] == 0).all()
    assert (res.track_id[6:, 0] == -1).all()


def test_hands2d_thresholds_wrist_and_duplicates():
    centers = truth_track(4)
    centers[2, 1] = centers[2, 0] + [1.0, 0.0]  # frame 2: both tracks on the left hand
    conf = np.full((4, 2), 0.9)
    res = run_track(body_hands(centers, conf), ScriptedHandModel(centers),
                    TrackingConfig(max_jump=100.0))  # fmt: skip
    sc = res.scores.copy()
    sc[1, 0, 3] = 0.05  # a weak joint
    sc[1, 0, 0] = 0.2  # a weak wrist
    track = type(res)(res.keypoints_px, sc, res.presence, res.track_id, res.source,
                      res.n_model_calls)  # fmt: skip
    bh = body_hands(truth_track(4), conf)  # the body knows where the right hand really is
    out = run_hands2d(track, Hands2DConfig(), bh)
    assert np.isnan(out.keypoints_px[1, 0, 3]).all() and out.scores[1, 0, 3] == 0
    assert out.scores[1, 0, 0] == 1.0
    assert out.n_duplicates == 1
    assert np.isfinite(out.keypoints_px[2, 0]).all() and np.isnan(out.keypoints_px[2, 1]).all()
    keep = run_hands2d(track, Hands2DConfig(wrist_score_one=False, min_joint_score=0.0), bh)
    assert keep.scores[1, 0, 0] == pytest.approx(0.2)


# --- hand regions --------------------------------------------------------------------------


class BrightSpotModel:
    """Reports the brightest pixel inside the crop as every joint (image px of its input)."""

    def estimate(self, image, crop):
        h, w = image.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        inside = np.hypot(xs - crop.center_px[0], ys - crop.center_px[1]) < crop.size_px / 2
        val = np.where(inside, image[..., 0].astype(int), -1)
        y, x = np.unravel_index(np.argmax(val), val.shape)
        return HandKeypoints(np.tile([x, y], (21, 1)).astype(float), np.ones(21), 1.0)


def test_patches_give_the_same_answer_as_the_full_image():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 100, (300, 400, 3)).astype(np.uint8)
    image[120, 250, 0] = 255
    crop = HandCrop(np.array([245.0, 125.0]), 40.0, 0.3)
    store = HandPatches(1, scale=2.0, min_px=64, max_px=200)
    store.add(0, image, (HandCrop(np.array([240.0, 130.0]), 40.0, 0.0), None))
    full = BrightSpotModel().estimate(image, crop)
    via = store.estimate(BrightSpotModel(), 0, crop)
    np.testing.assert_allclose(via.keypoints_px, full.keypoints_px, atol=PATCH_ROUNDTRIP_PX)
    np.testing.assert_allclose(full.keypoints_px[0], [250, 120])
    assert store.nbytes == 80 * 80 * 3
    # kept on disk, read back bit-exact
    np.testing.assert_array_equal(store.patch(0, 0).pixels, image[90:170, 200:280])
    assert store.patch(0, 1) is None
    store.close()


def test_patches_follow_the_last_known_place_and_clip_at_borders():
    image = np.zeros((100, 100, 3), np.uint8)
    store = HandPatches(3, scale=1.0, min_px=40, max_px=40)
    store.add(0, image, (None, None))
    store.add(1, image, (HandCrop(np.array([5.0, 5.0]), 10.0, 0.0), None))
    store.add(2, image, (None, None))
    assert store.patch(0, 0) is None and store.patch(0, 1) is None
    p1, p2 = store.patch(1, 0), store.patch(2, 0)
    assert p1.pixels.shape == (25, 25, 3) and p1.offset_px.tolist() == [0, 0]
    assert p2.pixels.shape == p1.pixels.shape  # carried forward
    assert store.estimate(BrightSpotModel(), 0, HandCrop(np.zeros(2), 5.0, 0.0)) is None


# --- person follower -----------------------------------------------------------------------


class CountingDetector:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def detect(self, image):
        self.calls += 1
        return [PersonDetection(np.array(b, float), s) for b, s in self.boxes]


class BoxBody:
    """A body whose keypoints fill the given box; None when no box."""

    def __init__(self, lost_at=()):
        self.lost_at, self.t = set(lost_at), -1

    def estimate(self, image, box):
        self.t += 1
        if box is None or self.t in self.lost_at:
            return None
        b = np.asarray(box.box_xyxy, float)
        kp = np.column_stack([np.linspace(b[0] + 10, b[2] - 10, 33),
                              np.linspace(b[1] + 10, b[3] - 10, 33)])  # fmt: skip
        return BodyPose(kp, np.full(33, 0.9), "mediapipe_pose33")


def test_detector_runs_every_n_frames_and_when_lost():
    frames = [(i, np.zeros((400, 400, 3), np.uint8)) for i in range(10)]
    det = CountingDetector([((100, 50, 300, 390), 0.9)])
    out = list(run_body(frames, det, BoxBody(lost_at={4}), DetectConfig(detect_every=3)))
    detected = [bf.detected for bf, _ in out]
    # frame 0 detects; 1-2 follow; 3 detects; 4 follows but the body is lost -> detect again
    assert detected == [True, False, False, True, True, False, False, True, False, False]
    assert det.calls == 4
    assert all(bf.pose is not None for bf, _ in out)


class ScriptedDetector:
    """Returns the next list of (box, score) per call."""

    def __init__(self, script):
        self.script = list(script)

    def detect(self, image):
        return [PersonDetection(np.array(b, float), s) for b, s in self.script.pop(0)]


def test_follower_keeps_the_same_person_over_a_higher_scoring_bystander():
    frames = [(i, np.zeros((400, 400, 3), np.uint8)) for i in range(3)]
    surgeon, bystander = (100, 50, 300, 390), (0, 0, 60, 100)
    det = ScriptedDetector([[(surgeon, 0.9)], [(bystander, 0.99), (surgeon, 0.6)],
                            [(bystander, 0.99), (surgeon, 0.6)]])  # fmt: skip
    out = list(run_body(frames, det, BoxBody(), DetectConfig(detect_every=1)))
    assert [bf.person.score for bf, _ in out] == [0.9, 0.6, 0.6]
    # with nobody followed (a fresh start), the best-scoring person is taken
    det = ScriptedDetector([[(bystander, 0.99), (surgeon, 0.6)]])
    first = next(run_body(frames[:1], det, BoxBody(), DetectConfig()))[0]
    assert first.person.score == 0.99


def test_box_helpers():
    assert iou(np.array([0, 0, 10, 10.0]), np.array([5, 0, 15, 10.0])) == pytest.approx(1 / 3)
    pose = BodyPose(np.array([[10, 10], [30, 50], [20, 20], [np.nan, 5]]),
                    np.array([0.9, 0.9, 0.9, 0.9]), "x")  # fmt: skip
    box = box_from_pose(pose, 0.5, 0.3, (35, 100))
    np.testing.assert_allclose(box, [0, 0, 34, 71])
    assert missing_none_frames_pass_through()


def missing_none_frames_pass_through() -> bool:
    det = CountingDetector([((0, 0, 100, 100), 0.9)])
    out = list(run_body([(0, None), (1, np.zeros((100, 100, 3), np.uint8))], det, BoxBody()))
    return out[0][0].pose is None and out[0][1] is None and out[1][0].pose is not None


def test_follow_detection_rotated_like_the_detector():
    kp = np.full((33, 2), np.nan)
    kp[[23, 24]] = [[100, 300], [120, 300]]  # hips
    kp[[11, 12]] = [[100, 200], [120, 200]]  # shoulders
    kp[0] = [110, 150]  # head: 150 px above the hip centre
    kp[27] = [110, 400]  # ankle: 100 px below
    pose = BodyPose(kp, np.where(np.isfinite(kp[:, 0]), 0.9, 0.0), "mediapipe_pose33")
    det = follow_detection(pose, 0.1, 0.3, (500, 500))
    np.testing.assert_allclose(det.keypoints_px[0], [110, 300])
    np.testing.assert_allclose(det.keypoints_px[1], [110, 300 - 150 * 1.1])
    other = follow_detection(BodyPose(kp, pose.scores, "coco_wholebody133"), 0.1, 0.3, (500, 500))
    assert other.keypoints_px is None and other.box_xyxy[1] < 150
