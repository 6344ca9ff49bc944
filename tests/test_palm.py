"""The hand-first path: tiles, palm detections to crops, the palm detector on rendered hands."""

from __future__ import annotations

import numpy as np
import pytest

from mvhand.backends.base import HandCrop, HandDetection, HandKeypoints
from mvhand.stages.palm import (
    PalmConfig,
    PalmHand,
    assign_hands,
    detection_crop,
    merge_detections,
    run_palm,
    tile_regions,
)


def test_tiles_cover_the_frame_with_overlap():
    tiles = tile_regions((1080, 1920), 640, 0.25)
    assert all(t.size_px == 640 and t.angle_rad == 0 for t in tiles)
    centres = np.array([t.center_px for t in tiles])
    lo, hi = centres - 319.5, centres + 319.5
    assert lo.min(0).tolist() == [0.0, 0.0] and hi.max(0).tolist() == [1079.0, 1919.0]
    xs, ys = np.unique(centres[:, 0]), np.unique(centres[:, 1])
    assert len(xs) * len(ys) == len(tiles) and (np.diff(ys) <= 640 * 0.75 + 1e-9).all()
    whole = tile_regions((1080, 1920), 0, 0.25)
    assert len(whole) == 1 and whole[0].size_px == 1920


def test_detection_crop_points_the_fingers_up():
    # wrist below, middle MCP above: upright; rotate the detection and the crop turns with it
    for deg in (0, 90, 180, -45):
        a = np.radians(deg)
        up = np.array([np.sin(a), -np.cos(a)])  # "up" turned clockwise on screen by deg
        kp = np.zeros((7, 2))
        kp[0], kp[2] = np.array([100.0, 100.0]) - 10 * up, np.array([100.0, 100.0]) + 10 * up
        crop = detection_crop(HandDetection(np.array([90.0, 90, 110, 110]), 0.9, kp))
        np.testing.assert_allclose(crop.center_px, [100, 100] + 0.5 * 20 * up, atol=1e-9)
        assert crop.size_px == pytest.approx(52.0)
        back = np.array([-np.sin(crop.angle_rad), -np.cos(crop.angle_rad)])
        np.testing.assert_allclose(back, up, atol=1e-9)


def test_merge_keeps_the_best_of_overlapping_boxes():
    a = HandDetection(np.array([0.0, 0, 10, 10]), 0.6)
    b = HandDetection(np.array([1.0, 1, 11, 11]), 0.9)
    c = HandDetection(np.array([50.0, 50, 60, 60]), 0.7)
    assert merge_detections([a, b, c], 0.3) == [b, c]


def _palm_hand(right: float, presence: float) -> PalmHand:
    kp = HandKeypoints(np.zeros((21, 2)), np.full(21, presence), presence, right)
    return PalmHand(HandDetection(np.zeros(4), 0.9), HandCrop(np.zeros(2), 10.0, 0.0), kp)


def test_assign_hands_by_handedness():
    left, right = assign_hands([_palm_hand(0.9, 0.9), _palm_hand(0.1, 0.8)])
    assert right.confidence == pytest.approx(0.9) and left.confidence == pytest.approx(0.8)
    # two confident right hands (two people): the second is not forced onto the left
    left, right = assign_hands([_palm_hand(0.95, 0.9), _palm_hand(0.9, 0.8)])
    assert left is None and right.confidence == pytest.approx(0.9)
    # an unsure second hand takes the free side
    left, right = assign_hands([_palm_hand(0.95, 0.9), _palm_hand(0.6, 0.8)])
    assert left.confidence == pytest.approx(0.8)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
def test_palm_detector_finds_a_rendered_hand_in_a_large_frame(side):
    pytest.importorskip("ai_edge_litert")
    from mvhand.backends.registry import make_backend
    from mvhand.bench.render.closeup import render_open_hand

    # a 1080x1920 frame in which the hand is about 120 px tall: found only through the tiles
    image, cam, joints = render_open_hand(side, 1.0, (1080, 1920), 300.0, 0.45)
    truth = cam.project(joints)
    assert 80 < np.ptp(truth[:, 1]) < 160
    backend = make_backend()
    hands = run_palm(image, backend.palm, backend.hand, PalmConfig())
    assert hands, "no hand found"
    best = hands[0]
    err = np.linalg.norm(best.hand.keypoints_px - truth, axis=1)
    assert np.median(err) < 0.1 * np.ptp(truth[:, 1])
    assert (best.hand.handedness > 0.5) == (side == "right")
    slots = assign_hands(hands)
    assert slots[1 if side == "right" else 0] is not None
    whole = run_palm(image, backend.palm, backend.hand, PalmConfig(tile_px=0))
    assert len(whole) <= len(hands)
