"""Frame offsets from people's motion (mvhand.calibrate.sync), `calib sync`, and `run` with them."""

from __future__ import annotations

import tomllib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from test_run_pipeline import FAST, N_FRAMES, SIZE, Factory, Scene

from mvhand.calibrate import sync
from mvhand.cli.main import cli
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.synthetic import make_or_rig
from mvhand.errors import CalibrationError, InputError
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import save_keypoints
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline
from mvhand.pipeline.workers import camera_tasks

N_JOINTS = 20


def person(t: np.ndarray, still: bool = False) -> np.ndarray:
    """(T, J, 3) joints of a swaying person with waving limbs, continuous in t (frames)."""
    rng = np.random.default_rng(5)
    base = rng.uniform(-0.25, 0.25, (N_JOINTS, 3))
    phase = rng.uniform(0, 2 * np.pi, N_JOINTS)
    t = np.asarray(t, dtype=float)[:, None] * (0.0 if still else 1.0)
    body = np.stack([0.3 * np.sin(0.05 * t), 0.2 * np.cos(0.07 * t), 1.0 + 0 * t], axis=-1)
    limbs = 0.15 * np.stack([np.sin(0.3 * t + phase), np.cos(0.23 * t + phase),
                             np.sin(0.17 * t + 2 * phase)], axis=-1)  # fmt: skip
    return body + base + limbs


def observe(rig: Rig, offsets, n_frames: int = 120, noise: float = 1.0, still: bool = False,
            missing: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Keypoints (C, F, J, 2) where camera c's frame f + offsets[c] shows reference frame f."""
    rng = np.random.default_rng(seed)
    pts = np.stack([cam.project(person(np.arange(n_frames) - o, still))
                    for cam, o in zip(rig.cameras, offsets, strict=True)])  # fmt: skip
    pts = pts + rng.normal(0, noise, pts.shape)
    scores = np.full(pts.shape[:3], 0.9)
    gone = rng.random(scores.shape) < missing
    pts[gone] = np.nan
    scores[gone] = 0.0
    return pts, scores


@pytest.fixture(scope="module")
def rig() -> Rig:
    return make_or_rig(4, seed=1, size_px=(1920, 1080))


def test_integer_offsets_recovered(rig):
    true = [0, 5, -3, 2]
    pts, scores = observe(rig, true)
    res = sync.estimate_frame_offsets(rig, pts, scores, max_offset=15)
    assert res.offsets == tuple(true) and res.reference == rig.names[0]
    np.testing.assert_allclose(res.subframe, true, atol=0.25)
    # the 3D check: with the offsets the keypoints reproject at the noise level
    assert max(res.reproj_after_px) < 3.0 < 10 * 3.0 < min(res.reproj_before_px[1:])
    assert res.as_dict() == dict(zip(rig.names, true, strict=True))


def test_synchronized_cameras_stay_at_zero(rig):
    pts, scores = observe(rig, [0, 0, 0, 0], seed=1)
    res = sync.estimate_frame_offsets(rig, pts, scores, max_offset=10)
    assert res.offsets == (0, 0, 0, 0)


def test_subframe_offset_and_another_reference(rig):
    true = np.array([0.0, 2.5, -1.0, 4.0])
    pts, scores = observe(rig, true, noise=0.3, missing=0.0)
    res = sync.estimate_frame_offsets(rig, pts, scores, max_offset=8, reference=2)
    np.testing.assert_allclose(res.subframe, true - true[2], atol=0.2)
    assert res.offsets[2] == 0 and res.offsets[3] == 5 and res.offsets[0] == 1


def test_still_person_gives_a_clear_error(rig):
    pts, scores = observe(rig, [0, 3, 0, 0], still=True)
    with pytest.raises(InputError, match="enough moving keypoints"):
        sync.estimate_frame_offsets(rig, pts, scores, max_offset=10)


def test_bad_shapes(rig):
    with pytest.raises(InputError, match="keypoints must be"):
        sync.estimate_frame_offsets(rig, np.zeros((3, 10, 5, 2)), np.zeros((3, 10, 5)))


def test_shift_frames():
    v = np.arange(2 * 5, dtype=float).reshape(2, 5)
    out = sync.shift_frames(v, [0, 2])
    np.testing.assert_array_equal(out[0], v[0])
    np.testing.assert_array_equal(out[1], [7, 8, 9, np.nan, np.nan])
    np.testing.assert_array_equal(sync.shift_frames(v, [0, -1])[1], [np.nan, 5, 6, 7, 8])


def test_shifted_ranges():
    ref, cams = sync.shifted_ranges(0, None, 1, {"a": 100, "b": 97}, {"a": 0, "b": -3})
    assert ref == range(3, 100) and cams == {"a": range(3, 100), "b": range(0, 97)}
    # the requested grid is kept: start 1, step 2, a +4 offset ends camera c early
    ref, cams = sync.shifted_ranges(1, 50, 2, {"a": 100, "c": 40}, {"c": 4, "a": 0})
    assert ref == range(1, 36, 2) and cams["c"] == range(5, 40, 2)
    assert all(len(r) == len(ref) for r in cams.values())
    with pytest.raises(InputError, match="leave no common frame"):
        sync.shifted_ranges(0, None, 1, {"a": 10, "b": 10}, {"b": -12})


def test_read_frame_offsets(tmp_path, rig):
    path = tmp_path / "c.toml"
    save_calibration(path, rig, {"frame_offsets": {rig.names[1]: -3}})
    assert sync.read_frame_offsets(path, rig.names) == {n: (-3 if i == 1 else 0)
                                                        for i, n in enumerate(rig.names)}
    save_calibration(path, rig)
    assert set(sync.read_frame_offsets(path, rig.names).values()) == {0}
    save_calibration(path, rig, {"frame_offsets": 3})
    with pytest.raises(CalibrationError, match="c.toml.*frame_offsets must be a table"):
        sync.read_frame_offsets(path, rig.names)


def test_cli_sync_writes_the_offsets(tmp_path, rig):
    true = [0, -4, 0, 3]
    pts, scores = observe(rig, true, n_frames=100)
    kp = np.full((4, 100, 2, 21, 2), np.nan)  # the person's 20 points as one "hand"
    sc = np.zeros((4, 100, 2, 21))
    kp[:, :, 0, :N_JOINTS], sc[:, :, 0, :N_JOINTS] = pts, scores
    save_keypoints(tmp_path / "kp.npz", Keypoints2D(kp, sc, rig.names, fps=30.0))
    cal = tmp_path / "cams.toml"
    save_calibration(cal, rig, {"source": "test"})
    res = CliRunner().invoke(cli, ["calib", "sync", "--calib", str(cal), "--keypoints",
                                   str(tmp_path / "kp.npz"), "--max-offset", "10"])
    assert res.exit_code == 0, res.output
    meta = tomllib.loads(cal.read_text())["metadata"]
    assert meta["frame_offsets"] == dict(zip(rig.names, true, strict=True))
    assert meta["source"] == "test" and meta["units"] == "m"
    assert "offset -4 frames" in res.output


def test_camera_tasks_use_each_cameras_range(tmp_path):
    cfg = load_pipeline(None, FAST)
    cams = {"a": tmp_path / "a.avi", "b": tmp_path / "b.avi"}
    for p in cams.values():
        p.write_bytes(b"x")
    same = camera_tasks(cams, range(3, 10), cfg, tmp_path)
    own = camera_tasks(cams, {"a": range(3, 10), "b": range(0, 7)}, cfg, tmp_path)
    assert [t.frames for t in own] == [range(3, 10), range(0, 7)]
    assert own[0].key == same[0].key and own[1].key != same[1].key


def _write_trimmed(scene: Scene, folder, trim: dict[str, int]) -> None:
    """The scene's videos with each camera's first ``trim[cam]`` frames cut off."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.arange(SIZE, dtype=np.uint8)
    for c, cam in enumerate(scene.rig.names):
        w = cv2.VideoWriter(str(folder / f"{cam}.avi"), cv2.VideoWriter_fourcc(*"FFV1"), 30.0,
                            (SIZE, SIZE))  # fmt: skip
        for t in range(trim.get(cam, 0), N_FRAMES):
            img = np.empty((SIZE, SIZE, 3), np.uint8)
            img[..., 2], img[..., 1], img[..., 0] = x[None, :], x[:, None], 64 * c + t
            w.write(img)
        w.release()


def test_run_honours_frame_offsets(tmp_path):
    """cam2's video starts 3 frames late: with frame_offsets cam2 = -3 the run aligns it (the
    3D is exact on the reference frames 3..N); without, the 3D is off."""
    scene = Scene()
    _write_trimmed(scene, tmp_path / "videos", {"cam2": 3})
    cfg = load_pipeline(None, FAST)
    save_calibration(tmp_path / "plain.toml", scene.rig)
    save_calibration(tmp_path / "synced.toml", scene.rig, {"frame_offsets": {"cam2": -3}})
    res = run_pipeline(tmp_path / "synced.toml", tmp_path / "videos", tmp_path / "out", cfg,
                       backend_factory=Factory(scene))  # fmt: skip
    assert res.report["inputs"]["frames"] == {"start": 3, "stop": N_FRAMES, "step": 1,
                                              "count": N_FRAMES - 3}  # fmt: skip
    assert res.report["inputs"]["frame_offsets"] == {"cam1": 0, "cam2": -3, "cam3": 0}
    # the lengths differ because of the offset, which the run handles: no length warning
    assert not any("different lengths" in w for w in res.report["warnings"])
    np.testing.assert_allclose(res.keypoints.keypoints_px, scene.proj[:, 3:], atol=1e-3)
    err = np.linalg.norm(res.hands3d.keypoints3d - scene.hands[3:], axis=-1)
    assert np.nanmax(err) < 5e-4
    plain = run_pipeline(tmp_path / "plain.toml", tmp_path / "videos", tmp_path / "out2", cfg,
                         backend_factory=Factory(scene))  # fmt: skip
    assert plain.keypoints.n_frames == N_FRAMES - 3
    assert any("different lengths" in w for w in plain.report["warnings"])
    assert not np.allclose(plain.keypoints.keypoints_px[1], scene.proj[1, : N_FRAMES - 3])


@pytest.mark.slow
def test_pose2sim_video_without_its_first_frames(shared_data, tmp_path):
    """Real videos: cam02.mp4 re-written without its first 3 frames; `calib sync` (body
    keypoints of the 2D front-end, ~20 s here) finds cam02 = -3 and the others 0 (the
    original videos give 0 everywhere: benchmarks/bench_sync.py)."""
    from mvhand.io.calib_convert import load_any_calibration

    src = shared_data / "pose2sim_single"
    videos = tmp_path / "videos"
    videos.mkdir()
    for cam in ("cam01", "cam03", "cam04"):
        (videos / f"{cam}.mp4").symlink_to(src / "videos" / f"{cam}.mp4")
    cap = cv2.VideoCapture(str(src / "videos" / "cam02.mp4"))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = cv2.VideoWriter(str(videos / "cam02.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                          cap.get(cv2.CAP_PROP_FPS), size)  # fmt: skip
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i >= 3:
            out.write(frame)
        i += 1
    out.release()
    cal = tmp_path / "cams.toml"
    save_calibration(cal, load_any_calibration(src / "Calib.qca.txt"))
    res = CliRunner().invoke(cli, ["calib", "sync", "--calib", str(cal), str(videos),
                                   "--max-offset", "15"])  # fmt: skip
    assert res.exit_code == 0, res.output
    offsets = tomllib.loads(cal.read_text())["metadata"]["frame_offsets"]
    assert offsets == {"cam01": 0, "cam02": -3, "cam03": 0, "cam04": 0}
