"""``mvhand run`` on a synthetic scene with a scripted backend: 3D against ground truth, the
cache and resuming after an interrupted run, and bad input (each a clear message, no crash).

The scene: two moving hands seen by three cameras (256x256 px). The videos are lossless and each
pixel encodes where it is and which camera/frame it belongs to (R = x, G = y,
B = 64 * camera + frame), so the fake models, which get only pixels, can look up the true
projection and answer exactly what a perfect model would.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.backends.base import BodyPose, HandKeypoints, PersonDetection
from mvhand.backends.registry import Backend
from mvhand.cli.main import cli
from mvhand.core.camera import Rig
from mvhand.core.synthetic import look_at, make_hand_motion
from mvhand.errors import InputError, MvhandError
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import load_keypoints
from mvhand.pipeline.config import PipelineConfig, load_pipeline
from mvhand.pipeline.run import run_pipeline

SIZE = 256
N_FRAMES = 24
#: With perfect 2D, the 3D joints are recovered to well under a millimetre (triangulation only).
EXACT_3D_MM = 0.5
#: 2D keypoints round-trip through the hand regions exactly (float32 storage).
EXACT_2D_PX = 1e-3
FAST = ["reconstruct.optimizer.enabled=false"]


def make_rig() -> Rig:
    target = np.array([0.0, 0.0, 0.0])
    cams = []
    for i, az in enumerate(np.deg2rad([0.0, 110.0, 230.0])):
        center = [1.1 * np.cos(az), 1.1 * np.sin(az), 0.5]
        cams.append(look_at(f"cam{i + 1}", center, target, (SIZE, SIZE), 240.0))
    return Rig(tuple(cams), "m")


def make_hands() -> np.ndarray:
    hands = make_hand_motion(N_FRAMES, speed="slow", seed=2)
    return hands - hands.reshape(-1, 3).mean(axis=0)


class Scene:
    """Ground truth and the fake backend's view of it."""

    def __init__(self) -> None:
        self.rig = make_rig()
        self.hands = make_hands()  # (T, 2, 21, 3) m
        self.proj = self.rig.project(self.hands)  # (C, T, 2, 21, 2)
        self.no_person: set[int] = set()
        self.no_hand: set[int] = set()

    @staticmethod
    def decode(image: np.ndarray) -> tuple[int, int, np.ndarray]:
        """camera index, frame, image offset (x, y) of the pixel at [0, 0]."""
        r, g, b = (int(v) for v in image[0, 0])
        return b // 64, b % 64, np.array([r, g], dtype=float)

    def write(self, folder: Path, n_frames: dict[str, int] | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        x = np.arange(SIZE, dtype=np.uint8)
        for c, cam in enumerate(self.rig.names):
            w = cv2.VideoWriter(str(folder / f"{cam}.avi"), cv2.VideoWriter_fourcc(*"FFV1"),
                                30.0, (SIZE, SIZE))  # fmt: skip
            for t in range((n_frames or {}).get(cam, N_FRAMES)):
                img = np.empty((SIZE, SIZE, 3), np.uint8)
                img[..., 2], img[..., 1], img[..., 0] = x[None, :], x[:, None], 64 * c + t
                w.write(img)
            w.release()
        return folder


class FakePerson:
    def __init__(self, scene):
        self.scene = scene

    def detect(self, image):
        c, _, _ = Scene.decode(image)
        if c in self.scene.no_person:
            return []
        return [PersonDetection(np.array([0.0, 0, SIZE - 1, SIZE - 1]), 0.9)]


class FakeBody:
    """MediaPipe-33 layout: hand points at the true wrist, little/index MCP and thumb tip."""

    def __init__(self, scene):
        self.scene = scene

    def estimate(self, image, box):
        c, t, _ = Scene.decode(image)
        if c in self.scene.no_person or box is None:
            return None
        kp = np.full((33, 2), SIZE / 2.0)
        for h, (w, p, i, th) in enumerate([(15, 17, 19, 21), (16, 18, 20, 22)]):
            kp[[w, p, i, th]] = self.scene.proj[c, t, h][[0, 17, 5, 4]]
        return BodyPose(kp, np.full(33, 0.9), "mediapipe_pose33")


class FakeHand:
    """The true hand nearest the crop centre, if its wrist is within the crop."""

    def __init__(self, scene):
        self.scene, self.calls = scene, 0

    def estimate(self, image, crop):
        self.calls += 1
        c, t, offset = Scene.decode(image)
        truth = self.scene.proj[c, t]  # (2, 21, 2) full-image px
        center = np.asarray(crop.center_px) + offset
        d = np.linalg.norm(truth.mean(axis=1) - center, axis=1)
        h = int(np.argmin(d))
        ok = d[h] < crop.size_px / 2 and c not in self.scene.no_hand
        return HandKeypoints(truth[h] - offset, np.full(21, 0.9), 0.95 if ok else 0.01)


class Factory:
    """Counts backend constructions; ``fail`` makes construction an error (cache tests)."""

    def __init__(self, scene, fail: bool = False):
        self.scene, self.fail, self.made = scene, fail, 0

    def __call__(self, cfg):
        if self.fail:
            raise AssertionError("the backend should not be needed: every camera is cached")
        self.made += 1
        self.hand = FakeHand(self.scene)
        return Backend(FakePerson(self.scene), FakeBody(self.scene), self.hand, "fake")


def make_scene_dir(root: Path) -> tuple[Scene, Path]:
    """The scene's videos and calibration under ``root``."""
    scene = Scene()
    scene.write(root / "videos")
    save_calibration(root / "cams.toml", scene.rig)
    return scene, root


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene_dir(tmp_path_factory.mktemp("scene"))


def run(scene, root, out, overrides=FAST, **kw):
    cfg = load_pipeline(None, overrides)
    return run_pipeline(root / "cams.toml", root / "videos", out, cfg,
                        backend_factory=kw.pop("factory", Factory(scene)), **kw)  # fmt: skip


def test_synthetic_run_recovers_the_truth(scene_dir, tmp_path):
    scene, root = scene_dir
    res = run(scene, root, tmp_path / "out")
    kp = load_keypoints(tmp_path / "out" / "keypoints2d.npz")
    assert kp.cameras == scene.rig.names and kp.keypoints_px.shape == (3, N_FRAMES, 2, 21, 2)
    np.testing.assert_allclose(kp.keypoints_px, scene.proj, atol=EXACT_2D_PX)
    pred = np.load(tmp_path / "out" / "hands3d.npz")["keypoints3d"]
    err_mm = np.linalg.norm(pred - scene.hands, axis=-1) * 1000
    assert np.nanmax(err_mm) < EXACT_3D_MM and np.isfinite(err_mm).all()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    cam = report["cameras"]["cam1"]
    assert cam["frames_with_person"] == N_FRAMES and cam["frames_with_left_hand"] == N_FRAMES
    # one track per hand: one call per hand and frame, plus one re-crop at each seed
    assert cam["tracks_left"] == 1 and cam["hand_model_calls"] == 2 * N_FRAMES + 2
    assert report["reconstruction"]["frames_with_both_hands"] == N_FRAMES
    assert set(report["timings_s"]) == {"inputs", "cameras_2d", "reconstruct"}
    for name in ("hands3d.csv", "config.toml", "calibration.toml"):
        assert (tmp_path / "out" / name).is_file()
    cfg_text = (tmp_path / "out" / "config.toml").read_text()
    assert "[tracking]" in cfg_text and "enabled = false" in cfg_text
    assert res.reused == ()


def test_resume_after_interrupt_reuses_finished_cameras(scene_dir, tmp_path):
    scene, root = scene_dir
    out = tmp_path / "out"

    def interrupt_at_cam2(stage, camera, done, total):
        if camera == "cam2" and done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(scene, root, out, progress=interrupt_at_cam2)
    assert (out / "cache" / "cam1.npz").is_file()
    assert not (out / "cache" / "cam2.npz").exists()
    assert not list((out / "cache").glob(".*tmp"))  # no half-written file left
    res = run(scene, root, out)
    assert res.reused == ("cam1",)
    res = run(scene, root, out, factory=Factory(scene, fail=True))  # all cached now
    assert res.reused == ("cam1", "cam2", "cam3")
    np.testing.assert_allclose(res.keypoints.keypoints_px, scene.proj, atol=EXACT_2D_PX)
    # a setting the 2D results depend on invalidates the cache; a 3D-only one does not
    res = run(scene, root, out, FAST + ["tracking.min_presence=0.6"])
    assert res.reused == ()
    res = run(scene, root, out, FAST + ["tracking.min_presence=0.6",
                                        "reconstruct.triangulation.min_views=3"],
              factory=Factory(scene, fail=True))  # fmt: skip
    assert res.reused == ("cam1", "cam2", "cam3")


def test_frame_range_and_step(scene_dir, tmp_path):
    scene, root = scene_dir
    res = run(scene, root, tmp_path / "out", FAST + ["video.step=2"], frames=(4, 20))
    assert res.keypoints.n_frames == 8
    np.testing.assert_allclose(res.keypoints.keypoints_px, scene.proj[:, 4:20:2],
                               atol=EXACT_2D_PX)  # fmt: skip
    assert res.report["inputs"]["frames"] == {"start": 4, "stop": 20, "step": 2, "count": 8}
    assert res.keypoints.fps == pytest.approx(15.0)


def test_camera_without_person_or_hand_is_reported_not_fatal(scene_dir, tmp_path):
    scene, root = scene_dir
    scene.no_person, scene.no_hand = {0}, {1}
    try:
        res = run(scene, root, tmp_path / "out")
    finally:
        scene.no_person, scene.no_hand = set(), set()
    text = " ".join(res.report["warnings"])
    assert "'cam1': no person" in text and "'cam2': a person but no hand" in text
    assert res.report["cameras"]["cam1"]["frames_with_person"] == 0
    assert not np.isfinite(res.keypoints.keypoints_px[:2]).any()
    with pytest.raises(InputError, match="no hand was found in any camera"):
        scene.no_hand = {0, 1, 2}
        try:
            run(scene, root, tmp_path / "out2")
        finally:
            scene.no_hand = set()


def test_mismatched_folders(scene_dir, tmp_path):
    scene, root = scene_dir
    vids = scene.write(tmp_path / "v", {"cam1": N_FRAMES, "cam2": 20, "cam3": N_FRAMES})
    (vids / "cam3.avi").rename(vids / "extra.avi")
    res = run_pipeline(root / "cams.toml", vids, tmp_path / "out", load_pipeline(None, FAST),
                       backend_factory=Factory(scene))  # fmt: skip
    text = " ".join(res.report["warnings"])
    assert "no video for calibration camera(s) cam3" in text
    assert "extra.avi match no camera" in text
    assert "common length of 20" in text
    assert res.keypoints.cameras == ("cam1", "cam2") and res.keypoints.n_frames == 20
    (vids / "cam2.avi").unlink()
    with pytest.raises(InputError, match="at least two cameras"):
        run_pipeline(root / "cams.toml", vids, tmp_path / "out2", load_pipeline(None, FAST),
                     backend_factory=Factory(scene))  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no video files"):
        run_pipeline(root / "cams.toml", tmp_path / "empty", tmp_path / "o", PipelineConfig())


def test_default_pipeline_file_is_valid_and_strict(tmp_path):
    cfg = load_pipeline()
    assert cfg.backend.name == "mediapipe" and cfg.tracking.seed_min_confidence == 0.3
    bad = tmp_path / "bad.toml"
    bad.write_text("[tracking]\nseed_confidence = 0.3\n")
    with pytest.raises(MvhandError, match="tracking.seed_confidence"):
        load_pipeline(bad)
    with pytest.raises(MvhandError, match="video.mapping"):
        load_pipeline(None, ["video.mapping=['cam1']"])
    with pytest.raises(MvhandError, match="tracking.method"):
        load_pipeline(None, ["tracking.method=csrt"])


def test_cli_help_and_bad_input(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["run", "--help"])
    assert res.exit_code == 0 and "--calib" in res.output and "--frames" in res.output
    res = runner.invoke(cli, ["run", "--calib", str(tmp_path / "none.toml"), str(tmp_path)])
    assert res.exit_code == 2 and "calibration file not found" in res.output
    res = runner.invoke(cli, ["run", "--calib", "x.toml", str(tmp_path), "--frames", "5:2"])
    assert res.exit_code == 2 and "--frames" in res.output


def test_cli_end_to_end_with_fake_backend(scene_dir, tmp_path, monkeypatch):
    scene, root = scene_dir
    monkeypatch.setattr("mvhand.backends.registry.make_backend", Factory(scene))
    runner = CliRunner()
    args = ["run", "--calib", str(root / "cams.toml"), str(root / "videos"), "--out",
            str(tmp_path / "o"), "--frames", "0:10", "--set", FAST[0]]  # fmt: skip
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "3D hands" in res.output and (tmp_path / "o" / "hands3d.npz").is_file()
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and "reused" in res.output
