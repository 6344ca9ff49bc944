"""Hand crop geometry: round trips, the fingers-up convention, crops from body and hand joints."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvhand.backends.base import BodyPose, HandCrop
from mvhand.core import crops
from mvhand.core.skeleton import COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT

#: Round trips are affine maps in float64.
ROUNDTRIP_PX = 1e-9
#: Where a warped dot's intensity centroid lands vs. the prediction (bilinear sampling).
WARP_DOT_PX = 0.05


def _random_crop(rng: np.random.Generator) -> HandCrop:
    return HandCrop(center_px=rng.uniform(0, 1000, 2), size_px=float(rng.uniform(10, 500)),
                    angle_rad=float(rng.uniform(-np.pi, np.pi)))  # fmt: skip


def _synthetic_hand(rng: np.random.Generator, angle_rad: float, scale_px: float = 40.0):
    """21 joints of an upright open hand (fingers towards -y), rotated by ``angle_rad``
    counter-clockwise on screen, then shifted; returns (keypoints_px (21, 2), wrist)."""
    local = [[0.0, 0.0]]
    for f, x in enumerate((-0.9, -0.45, 0.0, 0.4, 0.75)):
        base = 0.6 if f == 0 else 1.0
        local += [[x * (1 + 0.2 * k), -(base + 0.45 * k)] for k in range(4)]
    local = np.asarray(local) * scale_px
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    # counter-clockwise on screen (y down) is the matrix [[c, s], [-s, c]]
    rot = np.array([[c, s], [-s, c]])
    wrist = rng.uniform(100, 900, 2)
    return local @ rot.T + wrist, wrist


def test_roundtrip_image_crop_image(rng):
    for _ in range(20):
        crop = _random_crop(rng)
        out = int(rng.integers(32, 300))
        pts = rng.uniform(-200, 1200, (50, 2))
        back = crops.crop_to_image(crops.image_to_crop(pts, crop, out), crop, out)
        np.testing.assert_allclose(back, pts, atol=ROUNDTRIP_PX)
        again = crops.image_to_crop(crops.crop_to_image(pts, crop, out), crop, out)
        np.testing.assert_allclose(again, pts, atol=ROUNDTRIP_PX)


def test_affine_and_inverse_compose_to_identity(rng):
    crop = _random_crop(rng)
    a = np.vstack([crops.crop_affine(crop, 224), [0, 0, 1]])
    b = np.vstack([crops.crop_affine_inverse(crop, 224), [0, 0, 1]])
    np.testing.assert_allclose(a @ b, np.eye(3), atol=1e-12)
    # a proper rotation times a scale: no mirroring
    assert np.linalg.det(a[:2, :2]) > 0


def test_nan_stays_nan():
    crop = HandCrop(np.array([10.0, 10.0]), 20.0, 0.3)
    out = crops.crop_to_image(np.array([[np.nan, np.nan], [1.0, 2.0]]), crop)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


def test_convention_center_and_up_direction():
    crop = HandCrop(np.array([300.0, 200.0]), 112.0, np.pi / 2)  # crop "up" = image left
    half = (224 - 1) / 2
    np.testing.assert_allclose(crops.image_to_crop(crop.center_px, crop), [half, half])
    left_of_center = crops.image_to_crop(np.array([250.0, 200.0]), crop)
    np.testing.assert_allclose(left_of_center, [half, half - 100.0], atol=1e-9)  # 50 px * 2


def test_convention_warpaffine_samples_the_crop(rng):
    """A bright dot in the image appears in the cv2-warped crop where image_to_crop says."""
    img = np.zeros((400, 500), np.float32)
    dot = np.array([231.0, 187.0])
    img[int(dot[1]), int(dot[0])] = 1.0
    img = cv2.GaussianBlur(img, (0, 0), 3.0)
    crop = HandCrop(np.array([240.0, 190.0]), 150.0, 0.7)
    patch = cv2.warpAffine(img, crops.crop_affine(crop, 224), (224, 224), flags=cv2.INTER_LINEAR)
    yy, xx = np.mgrid[:224, :224]
    found = np.array([(patch * xx).sum(), (patch * yy).sum()]) / patch.sum()
    np.testing.assert_allclose(found, crops.image_to_crop(dot, crop), atol=WARP_DOT_PX)


@pytest.mark.parametrize("angle_deg", [0.0, 37.0, 90.0, 180.0, -120.0])
def test_crop_from_hand_keypoints_puts_fingers_up(rng, angle_deg):
    kp, _ = _synthetic_hand(rng, np.deg2rad(angle_deg))
    crop = crops.crop_from_hand_keypoints(kp)
    assert crop is not None
    uv = crops.image_to_crop(kp, crop)
    wrist_to_mcp = uv[9] - uv[0]
    assert wrist_to_mcp[1] < 0 and abs(wrist_to_mcp[0]) < 1e-6 * abs(wrist_to_mcp[1]) + 1e-9
    assert np.all((uv >= 0) & (uv <= 223))  # the whole hand inside, with margin
    margin = min(uv.min(), 223 - uv.max())
    assert margin > 0.1 * 224


def test_crop_from_hand_keypoints_size_is_scale_times_extent(rng):
    kp, _ = _synthetic_hand(rng, 0.0)
    crop = crops.crop_from_hand_keypoints(kp, scale=2.0)
    extent = np.max(kp.max(0) - kp.min(0))
    assert crop.size_px == pytest.approx(2.0 * extent)
    np.testing.assert_allclose(crop.center_px, (kp.max(0) + kp.min(0)) / 2)


def test_crop_from_hand_keypoints_rotation_equivariance(rng):
    kp, wrist = _synthetic_hand(rng, 0.4)
    theta = 0.9
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, s], [-s, c]])
    kp_rot = (kp - wrist) @ rot.T + wrist
    a, b = crops.crop_from_hand_keypoints(kp), crops.crop_from_hand_keypoints(kp_rot)
    assert b.size_px == pytest.approx(a.size_px)
    np.testing.assert_allclose(b.center_px, (a.center_px - wrist) @ rot.T + wrist, atol=1e-9)
    assert np.angle(np.exp(1j * (b.angle_rad - a.angle_rad - theta))) == pytest.approx(0, abs=1e-9)


def test_crop_from_hand_keypoints_missing_joints(rng):
    kp, _ = _synthetic_hand(rng, 0.2)
    scores = np.ones(21)
    scores[[0, 9]] = 0.0  # no wrist, no middle MCP: falls back to centroid -> distal joints
    crop = crops.crop_from_hand_keypoints(kp, scores, min_score=0.1)
    uv = crops.image_to_crop(kp, crop)
    assert uv[12, 1] < uv[0, 1]  # the middle fingertip is still above the wrist
    few = np.full((21, 2), np.nan)
    few[:2] = kp[:2]
    assert crops.crop_from_hand_keypoints(few) is None


def _pose33(rng: np.random.Generator) -> tuple[BodyPose, dict[int, np.ndarray]]:
    kp = rng.uniform(0, 1000, (33, 2))
    hands = {}
    for hand, (w, p, i, t) in crops.POSE33_HAND_POINTS.items():
        wrist = np.array([200.0, 500.0]) if hand == 0 else np.array([800.0, 300.0])
        # fingers towards +x (image right) for the left hand, -y for the right hand
        d = np.array([1.0, 0.0]) if hand == 0 else np.array([0.0, -1.0])
        n = np.array([-d[1], d[0]])
        kp[w], kp[p], kp[i], kp[t] = wrist, wrist + 30 * d - 10 * n, wrist + 30 * d + 10 * n, \
            wrist + 15 * d + 20 * n  # fmt: skip
        hands[hand] = wrist
    scores = np.full(33, 0.9)
    scores[[15, 17, 19, 21]] = [0.8, 0.6, 0.7, 0.5]
    return BodyPose(kp, scores, "mediapipe_pose33"), hands


def test_hand_crops_from_pose33_uses_the_persons_own_side(rng):
    pose, wrists = _pose33(rng)
    for hand in (0, 1):
        bh = crops.hand_crops_from_body(pose, hand)
        assert bh is not None
        np.testing.assert_allclose(bh.keypoints_px[0], wrists[hand])
        # the crop lies on that hand: its centre within one crop side of its wrist
        assert np.hypot(*(bh.crop.center_px - wrists[hand])) < bh.crop.size_px
        uv = crops.image_to_crop(pose.keypoints_px[[15, 16][hand]], bh.crop)
        assert 112 < uv[1] < 224 and abs(uv[0] - 111.5) < 1e-6  # wrist below centre
    assert crops.hand_crops_from_body(pose, 0).confidence == pytest.approx(0.65)
    assert crops.hand_crops_from_body(pose, 0).crop.angle_rad == pytest.approx(np.pi / 2 * -1)
    assert crops.hand_crops_from_body(pose, 1).crop.angle_rad == pytest.approx(0.0)


def test_hand_crops_from_pose33_missing_wrist_gives_none(rng):
    pose, _ = _pose33(rng)
    kp = pose.keypoints_px.copy()
    kp[15] = np.nan
    assert crops.hand_crops_from_body(BodyPose(kp, pose.scores, pose.layout), 0) is None
    assert crops.hand_crops_from_body(BodyPose(kp, pose.scores, pose.layout), 1) is not None


def test_hand_crops_from_wholebody133(rng):
    kp = rng.uniform(0, 1000, (133, 2))
    left, _ = _synthetic_hand(rng, 0.3)
    right, _ = _synthetic_hand(rng, -2.0)
    kp[COCO_WHOLEBODY_LEFT], kp[COCO_WHOLEBODY_RIGHT] = left, right
    scores = rng.uniform(0.2, 1.0, 133)
    pose = BodyPose(kp, scores, "coco_wholebody133")
    for hand, pts, idx in ((0, left, COCO_WHOLEBODY_LEFT), (1, right, COCO_WHOLEBODY_RIGHT)):
        bh = crops.hand_crops_from_body(pose, hand)
        ref = crops.crop_from_hand_keypoints(pts)
        np.testing.assert_allclose(bh.crop.center_px, ref.center_px)
        assert bh.crop.size_px == pytest.approx(ref.size_px)
        assert bh.confidence == pytest.approx(scores[idx].mean())
        np.testing.assert_allclose(bh.keypoints_px, pts)


def test_bad_layout_and_hand_raise(rng):
    pose = BodyPose(rng.uniform(0, 10, (17, 2)), np.ones(17), "coco17")
    with pytest.raises(ValueError, match="coco_wholebody133"):
        crops.hand_crops_from_body(pose, 0)
    with pytest.raises(ValueError, match="hand"):
        crops.hand_crops_from_body(pose, 2)


def test_person_from_body(rng):
    kp = rng.uniform(100, 200, (33, 2))
    kp[0] = [5000.0, 5000.0]
    scores = np.full(33, 0.9)
    scores[0] = 0.1  # an unreliable outlier is ignored
    person = crops.person_from_body(BodyPose(kp, scores, "mediapipe_pose33"))
    np.testing.assert_allclose(person.box_xyxy, np.r_[kp[1:].min(0), kp[1:].max(0)])
    assert crops.person_from_body(BodyPose(kp, np.zeros(33), "mediapipe_pose33")) is None
