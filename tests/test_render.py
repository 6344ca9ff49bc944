"""The rendered benchmark: skinning, rasterizer, truth 2D and visibility, the hand model on a
rendered hand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mvhand.bench.dataset import load_sequence, load_truth2d
from mvhand.bench.render.camera_render import OCCLUDER_NAMES, SURFACE_TOL_M
from mvhand.bench.render.closeup import render_open_hand
from mvhand.bench.render.geometry import Material, plane
from mvhand.bench.render.raster import Buffers, rasterize
from mvhand.bench.render.scene import (
    HAND_ID,
    LEVEL_SCENES,
    frame_mesh,
    make_motion,
    static_scene,
)
from mvhand.bench.render.sequence import RenderConfig, render_sequence
from mvhand.bench.render.skin import WEBXR_21, load_hand
from mvhand.core.synthetic import hand_pose, look_at


# ----------------------------------------------------------------------------- skinning
@pytest.mark.parametrize("side", ["left", "right"])
def test_skinning_reproduces_bind_pose(side):
    hand = load_hand(side)
    verts, normals = hand.skin(hand.rest)
    np.testing.assert_allclose(verts, hand.mesh.vertices, atol=1e-6)
    cos = (normals * hand.mesh.normals).sum(1) / np.linalg.norm(hand.mesh.normals, axis=1)
    assert cos.min() > 0.9999
    assert len(set(WEBXR_21)) == 21 and set(WEBXR_21) <= set(hand.mesh.joint_names)
    np.testing.assert_allclose(hand.pose_from_joints(hand.joints21(hand.rest)), hand.rest,
                               atol=1e-9)  # fmt: skip


@pytest.mark.parametrize("side", ["left", "right"])
def test_posed_bones_point_at_the_target(side):
    rng = np.random.default_rng(1)
    target = hand_pose(rng.uniform(0, 1.2, (5, 3)), 1.0, left=side == "left")
    hand = load_hand(side)
    joints = hand.joints21(hand.pose_from_joints(target))
    np.testing.assert_allclose(joints[0], target[0], atol=1e-12)
    for j in range(1, 21):
        if j % 4 == 1 and j > 1:  # finger MCPs ride on the palm, turned as a whole
            continue
        parent = 0 if j % 4 == 1 else j - 1
        a, b = joints[j] - joints[parent], target[j] - target[parent]
        if j % 4 == 1:
            continue
        assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.9999, j


def test_skinned_vertices_follow_their_bones():
    hand = load_hand("right")
    target = hand_pose(np.full((5, 3), 1.0), 1.0)
    verts, _ = hand.skin(hand.pose_from_joints(target))
    rest = hand.mesh.vertices
    # a bent hand: fingertip vertices moved, palm vertices near the wrist did not move much
    moved = np.linalg.norm(verts - (rest - hand.joints21(hand.rest)[0] + target[0]), axis=1)
    assert moved.max() > 0.03


# --------------------------------------------------------------------------- rasterizer
def test_rasterizer_covers_pixel_centres_exactly_and_keeps_the_nearest():
    buf = Buffers.empty((40, 30))
    # a square from x 9.5..19.5, y 4.5..14.5 covers pixel centres 10..19 x 5..14: 100 pixels
    xy = np.array([[9.5, 4.5], [19.5, 4.5], [19.5, 14.5], [9.5, 14.5]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    rasterize(xy, np.full(4, 2.0), faces, 1, buf)
    assert (buf.object_id == 1).sum() == 100
    assert (buf.object_id[5:15, 10:20] == 1).all()
    rasterize(xy + 5, np.full(4, 1.0), faces, 2, buf)  # nearer, overlapping
    rasterize(xy - 5, np.full(4, 3.0), faces, 3, buf)  # farther, overlapping
    assert buf.object_id[12, 17] == 2 and buf.object_id[7, 12] == 1
    assert (buf.object_id == 3).sum() == 100 - 25
    np.testing.assert_allclose(buf.depth[buf.object_id == 2], 1.0)
    np.testing.assert_allclose(buf.bary.sum(-1)[buf.object_id >= 0], 1.0, atol=1e-6)


def test_rasterizer_depth_is_perspective_correct():
    cam = look_at("c", [0, 0, 0], [0, 0, 1], (64, 48), 50.0, up=(0, -1, 0))
    mat = Material((0.5, 0.5, 0.5))
    slanted = plane([0, 0, 2.0], [1, 0, 1.0], [0, 1, 0], 2.0, 2.0, 1, 1, mat, 5)
    buf = Buffers.empty(cam.size_px)
    rasterize(cam.project(slanted.vertices), cam.world_to_cam(slanted.vertices)[:, 2],
              slanted.faces, slanted.object_id, buf)  # fmt: skip
    ys, xs = np.nonzero(buf.object_id == 5)
    # the plane z = 2 + x: a pixel's ray (u, v, 1) meets it at z = 2 / (1 - u)
    u = (xs - cam.K[0, 2]) / cam.K[0, 0]
    np.testing.assert_allclose(buf.depth[ys, xs], 2.0 / (1.0 - u), rtol=1e-6)


# -------------------------------------------------------------------- a rendered sequence
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "L2_tiny"
    cfg = RenderConfig(level="L2", n_frames=6, n_keyframes=2, size_px=(540, 960), n_far=1,
                       n_near=2, seed=3)  # fmt: skip
    return render_sequence(out, cfg), cfg


def test_rendered_sequence_files(rendered):
    root, cfg = rendered
    seq = load_sequence(root)
    assert seq.info.source == "rendered" and seq.info.level == "L2"
    assert sorted(seq.videos) == ["cam_1", "cam_2", "cam_3"]
    cap = cv2.VideoCapture(str(seq.videos["cam_2"]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == cfg.n_frames
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (960, 540, 3)
    assert seq.annotations is not None and seq.annotations.frames.tolist() == [1, 4]
    assert seq.gt3d.keypoints3d.shape == (6, 2, 21, 3)


def test_convention_truth_2d_is_the_distorted_projection(rendered):
    root, _ = rendered
    seq = load_sequence(root)
    truth = load_truth2d(root / "truth_2d.npz")
    pts = seq.gt3d.keypoints3d  # (T, H, 21, 3) metres
    for c, cam in enumerate(seq.rig.cameras):
        assert np.abs(cam.dist[:2]).min() > 1e-3  # the rig really has lens distortion
        ref, _ = cv2.projectPoints(pts.reshape(-1, 3), cam.rvec, cam.t_cam_world, cam.K,
                                   cam.dist)  # fmt: skip
        np.testing.assert_allclose(truth.keypoints_px[c].reshape(-1, 2), ref[:, 0], atol=2e-3)
    # the keyframe labels are the same points, where labeled
    ann = seq.annotations
    lab = ann.visibility > 0
    np.testing.assert_allclose(ann.keypoints_px[lab], truth.keypoints_px[:, ann.frames][lab],
                               atol=1e-3)  # fmt: skip
    np.testing.assert_array_equal(ann.visibility[lab], truth.visibility[:, ann.frames][lab])


def _ray_hits(origin: np.ndarray, target: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Möller-Trumbore: ray parameter (0 at origin, 1 at target) of each triangle hit."""
    d = target - origin
    e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    p = np.cross(d, e2)
    det = (e1 * p).sum(1)
    ok = np.abs(det) > 1e-15
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origin - tris[:, 0]
    u = (s * p).sum(1) * inv
    q = np.cross(s, e1)
    v = (q @ d) * inv
    t = (q * e2).sum(1) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, np.inf)


def test_visibility_agrees_with_a_ray_cast_depth_test(rendered):
    root, cfg = rendered
    seq = load_sequence(root)
    truth = load_truth2d(root / "truth_2d.npz")
    level = LEVEL_SCENES[cfg.level]
    rng = np.random.default_rng([cfg.seed, int(cfg.level[1:])])
    motion = make_motion(level, cfg.n_frames, cfg.fps, rng)  # same seed: the same motion
    np.testing.assert_allclose(motion.joints, seq.gt3d.keypoints3d, atol=1e-9)
    scene = static_scene(rng)
    agree = total = 0
    kinds = set()
    for t in range(0, cfg.n_frames, 2):
        mesh = frame_mesh(motion, level, t)
        tris = np.concatenate([mesh.vertices[mesh.faces], scene.vertices[scene.faces]])
        ids = np.concatenate([mesh.object_id, scene.object_id])
        for c, cam in enumerate(seq.rig.cameras):
            eye = cam.center_world
            for h in range(2):
                for j in range(21):
                    if truth.visibility[c, t, h, j] == 0:
                        continue
                    joint = motion.joints[t, h, j]
                    hits = _ray_hits(eye, joint, tris)
                    k = int(np.argmin(hits))
                    dist = np.linalg.norm(joint - eye)
                    own = ids[k] == HAND_ID + h
                    seen = own and (1.0 - hits[k]) * dist <= SURFACE_TOL_M * 1.05
                    seen |= not np.isfinite(hits[k]) or hits[k] > 1.0
                    agree += seen == (truth.visibility[c, t, h, j] == 2)
                    total += 1
                    kinds.add(OCCLUDER_NAMES[truth.occluder[c, t, h, j]])
    assert total > 100
    assert agree / total > 0.95, agree / total
    assert {"visible", "self"} <= kinds


@pytest.mark.slow
@pytest.mark.parametrize(("side", "sign"), [("left", 1.0), ("right", 1.0), ("right", -1.0)])
def test_a_rendered_upright_open_hand_is_found_by_the_hand_model(side, sign):
    """Palm towards the camera (sign 1) or the back of the hand (-1; the left one's back view
    is half hidden by the draped patient here)."""
    pytest.importorskip("ai_edge_litert")
    from mvhand.backends.mediapipe_backend import MediapipeHandKeypoints, TFLiteModel, model_path
    from mvhand.core.crops import crop_from_hand_keypoints

    model = MediapipeHandKeypoints(TFLiteModel(model_path("hand")))
    image, cam, joints = render_open_hand(side, sign)
    truth = cam.project(joints)
    res = model.estimate(image, crop_from_hand_keypoints(truth))
    size = np.linalg.norm(truth.max(0) - truth.min(0))
    err = np.linalg.norm(res.keypoints_px - truth, axis=1)
    assert res.presence > 0.5, res.presence
    assert np.median(err) < 0.08 * size, (np.median(err), size)
    assert (res.handedness > 0.5) == (side == "right"), res.handedness
