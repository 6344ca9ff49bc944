"""The mediapipe backend and the registry: real images, annotated hand crops, conventions."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mvhand.backends import registry
from mvhand.backends.base import (
    BodyPoseEstimator,
    HandCrop,
    HandKeypointEstimator,
    PersonDetector,
)
from mvhand.config import config_from_dict
from mvhand.core import crops
from mvhand.core.skeleton import INTERHAND
from mvhand.errors import ConfigError, MissingDependencyError

#: Accuracy floors on the annotated crops, with crops placed from the true keypoints (as the
#: tracker places them from the previous frame). Measured: FreiHAND MJE 10.0 px, PCK 0.85;
#: InterHand2.6M MJE 10.6 px, PCK 0.95 (hand model "full", crop scale 1.8).
FREIHAND_MAX_MJE_PX = 14.0
FREIHAND_MIN_PCK = 0.70
INTERHAND_MAX_MJE_PX = 14.0
INTERHAND_MIN_PCK = 0.85
#: PCK threshold as a fraction of hand size (the larger side of the true keypoints' box).
PCK_FRACTION = 0.2
#: messi5.jpg (548x342): hand centres read off the photograph (the person's left hand is on
#: the image's right), and how far the found keypoints' centroid may lie from them.
MESSI_HANDS_PX = {0: (362.0, 167.0), 1: (88.0, 98.0)}
MESSI_HAND_TOL_PX = 15.0
#: Keypoints from a crop turned by 20 deg agree with the original within this fraction of
#: hand size (median over joints; measured 0.01-0.05).
ROTATION_AGREEMENT = 0.08


@pytest.fixture(scope="module")
def backend() -> registry.Backend:
    return registry.make_backend(registry.BackendConfig())


def _rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def _freihand(root: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    folder = root / "hand_images_gt" / "freihand"
    data = json.loads((folder / "test_freihand.json").read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    out = []
    for ann in data["annotations"]:
        kp = np.asarray(ann["keypoints"], dtype=float).reshape(21, 3)
        out.append((folder / names[ann["image_id"]], kp[:, :2], kp[:, 2] > 0))
    return out


def _interhand(root: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """Each valid hand of each image, its 3D joints projected with the capture's camera."""
    folder = root / "hand_images_gt" / "interhand2.6m"
    images = json.loads((folder / "test_interhand2.6m_data.json").read_text())["images"]
    cams = json.loads((folder / "test_interhand2.6m_camera.json").read_text())
    joints = json.loads((folder / "test_interhand2.6m_joint_3d.json").read_text())
    out = []
    for im in images:
        cam, c = cams[str(im["capture"])], str(im["camera"])
        R = np.asarray(cam["camrot"][c], dtype=float)
        xyz = (np.asarray(joints[str(im["capture"])][str(im["frame_idx"])]["world_coord"])
               - np.asarray(cam["campos"][c])) @ R.T  # fmt: skip
        uv = xyz[:, :2] / xyz[:, 2:] * np.asarray(cam["focal"][c]) + np.asarray(cam["princpt"][c])
        valid = np.ravel(joints[str(im["capture"])][str(im["frame_idx"])]["joint_valid"]) > 0
        for first in (0, 21):  # InterHand: right hand joints 0-20, left 21-41
            idx = first + INTERHAND
            if valid[idx].sum() >= 15:
                out.append((folder / im["file_name"], uv[idx], valid[idx]))
    return out


def _accuracy(backend, samples) -> tuple[float, float]:
    """Mean joint error (px) and PCK@0.2 of hand size; a dropped joint counts as a miss."""
    errors, hits = [], []
    for path, truth, valid in samples:
        crop = crops.crop_from_hand_keypoints(np.where(valid[:, None], truth, np.nan))
        found = backend.hand.estimate(_rgb(path), crop)
        err = np.linalg.norm(found.keypoints_px - truth, axis=1)[valid]
        size = np.max(truth[valid].max(0) - truth[valid].min(0))
        errors.extend(err[np.isfinite(err)])
        hits.extend(np.nan_to_num(err, nan=np.inf) < PCK_FRACTION * size)
    return float(np.mean(errors)), float(np.mean(hits))


def test_registry_unknown_name_lists_known():
    with pytest.raises(ConfigError, match="mediapipe"):
        registry.make_backend(registry.BackendConfig(name="nope"))


def test_backend_config_is_strict():
    cfg = config_from_dict(registry.BackendConfig, {"num_threads": 2, "body_threshold": 0.2})
    assert cfg.num_threads == 2 and cfg.name == "mediapipe"
    with pytest.raises(ConfigError, match="body_threshold"):
        config_from_dict(registry.BackendConfig, {"body_threshold": 1.5})
    with pytest.raises(ConfigError, match="not a known setting"):
        config_from_dict(registry.BackendConfig, {"thresh": 1})


def test_missing_mediapipe_names_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mediapipe" else real(name, *a))
    with pytest.raises(MissingDependencyError, match="pip install mediapipe==0.10.21"):
        registry.make_backend(registry.BackendConfig())


def test_backend_implements_the_protocols(backend):
    assert isinstance(backend.person, PersonDetector)
    assert isinstance(backend.body, BodyPoseEstimator)
    assert isinstance(backend.hand, HandKeypointEstimator)


def test_blank_image_finds_nothing(backend):
    blank = np.zeros((480, 640, 3), np.uint8)
    assert backend.person.detect(blank) == []
    assert backend.body.estimate(blank, None) is None
    hand = backend.hand.estimate(blank, HandCrop(np.array([320.0, 240.0]), 100.0, 0.0))
    assert hand.presence < 0.1
    # the backend reports raw scores; the pipeline's joint rules leave nothing of this hand
    from mvhand.stages.hands2d import Hands2DConfig, clean_joints

    kp, sc = clean_joints(hand.keypoints_px, hand.scores, True,
                          Hands2DConfig(wrist_score_one=False))  # fmt: skip
    assert np.isnan(kp).all() and not sc.any()


def test_messi_both_hands_on_the_hands(backend, shared_data):
    img = _rgb(shared_data / "images" / "messi5.jpg")
    people = backend.person.detect(img)
    assert len(people) >= 1 and people[0].score > 0.5
    pose = backend.body.estimate(img, people[0])
    assert pose is not None and pose.layout == "mediapipe_pose33"
    for hand, centre in MESSI_HANDS_PX.items():
        body_hand = crops.hand_crops_from_body(pose, hand)
        assert body_hand is not None and body_hand.confidence > 0.5
        found = backend.hand.estimate(img, body_hand.crop)
        assert found.presence > 0.5
        ok = np.isfinite(found.keypoints_px).all(axis=1)
        assert ok.sum() >= 18
        assert np.hypot(*(found.keypoints_px[ok].mean(0) - centre)) < MESSI_HAND_TOL_PX
        assert np.all((found.scores[ok] > 0) & (found.scores[ok] <= 1))
        assert np.all(found.scores[~ok] == 0)


def test_convention_crop_rotation_maps_back(backend, shared_data):
    """Turning the crop turns the hand inside it; mapped back to the image the keypoints stay
    put (a wrong angle sign in the inverse map would move them by ~0.2 hand sizes). The
    interacting-hands InterHand images are left out: a turned crop may pick the other hand."""
    samples = _freihand(shared_data)[:4] + _interhand(shared_data)[-2:]
    for path, truth, valid in samples:
        img = _rgb(path)
        base = crops.crop_from_hand_keypoints(np.where(valid[:, None], truth, np.nan))
        ref = backend.hand.estimate(img, base).keypoints_px
        size = np.max(truth[valid].max(0) - truth[valid].min(0))
        for turn in (0.35, -0.35):
            turned = dataclasses.replace(base, angle_rad=base.angle_rad + turn)
            kp = backend.hand.estimate(img, turned).keypoints_px
            assert np.nanmedian(np.linalg.norm(kp - ref, axis=1)) < ROTATION_AGREEMENT * size


def test_freihand_accuracy(backend, shared_data):
    mje, pck = _accuracy(backend, _freihand(shared_data))
    assert mje < FREIHAND_MAX_MJE_PX and pck > FREIHAND_MIN_PCK


def test_interhand_accuracy(backend, shared_data):
    samples = _interhand(shared_data)
    assert len(samples) >= 4
    mje, pck = _accuracy(backend, samples)
    assert mje < INTERHAND_MAX_MJE_PX and pck > INTERHAND_MIN_PCK


def test_pose2sim_portrait_frame(backend, shared_data):
    cap = cv2.VideoCapture(str(shared_data / "pose2sim_single" / "videos" / "cam01.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    img = np.ascontiguousarray(frame[:, :, ::-1])
    people = backend.person.detect(img)
    assert people, "the balancing person is close enough for the detector"
    pose = backend.body.estimate(img, people[0])
    assert pose is not None
    presences = [backend.hand.estimate(img, crops.hand_crops_from_body(pose, h).crop).presence
                 for h in (0, 1)]  # fmt: skip
    assert max(presences) > 0.5
    # the previous frame's body box is a usable person box for the next frame
    again = backend.body.estimate(img, crops.person_from_body(pose))
    assert again is not None
    wrists = np.r_[pose.keypoints_px[15:17]] - np.r_[again.keypoints_px[15:17]]
    assert np.max(np.linalg.norm(wrists, axis=1)) < 30.0
