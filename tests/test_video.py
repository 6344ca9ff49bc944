"""Video input: probing, streaming (ranges, steps, corrupt frames), matching videos to cameras,
and checks against each other and the calibration (including the real Pose2Sim mismatch)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mvhand.core.camera import Camera, Rig
from mvhand.errors import CalibrationError, InputError
from mvhand.io.video import VideoInfo, check_videos, find_videos, iter_frames, probe_video

SIZE = (64, 48)


def write_video(path: Path, n: int, size=SIZE, fps: float = 30.0, fourcc: str = "FFV1") -> Path:
    """Frames whose red channel is the frame index (lossless FFV1)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 2] = i  # BGR: red
        img[..., 1] = 7
        w.write(img)
    w.release()
    return path


def corrupt_mjpg_frames(path: Path, *indices: int) -> None:
    """Overwrite the start of the JPEG frames ``indices`` in an MJPG AVI with zeros."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i:i + 3] == b"\xff\xd8\xff"]
    for index in indices:
        k = starts[index]
        data[k:k + 200] = bytes(200)
    path.write_bytes(bytes(data))


def test_probe_and_stream_ranges(tmp_path):
    path = write_video(tmp_path / "a.avi", 20)
    info = probe_video(path)
    assert (info.n_frames, info.size_px, info.fps) == (20, SIZE, 30.0)
    got = [(t, int(img[0, 0, 0]), int(img[0, 0, 1])) for t, img in iter_frames(path)]
    assert got == [(t, t, 7) for t in range(20)]  # RGB order, every frame, in order
    got = [(t, int(img[0, 0, 0])) for t, img in iter_frames(path, 5, 17, 4)]
    assert got == [(5, 5), (9, 9), (13, 13)]
    assert [t for t, _ in iter_frames(path, 18, 100)] == [18, 19]


def test_corrupt_frame_is_missing_and_reading_goes_on(tmp_path):
    path = write_video(tmp_path / "c.avi", 12, fourcc="MJPG")
    corrupt_mjpg_frames(path, 6)
    frames = dict(iter_frames(path))
    assert sorted(frames) == list(range(12))
    assert frames[6] is None
    assert all(frames[t] is not None for t in range(12) if t != 6)
    assert abs(int(frames[7][0, 0, 0]) - 7) <= 2  # MJPG is lossy


def test_truncated_run_gives_up_and_reports_the_rest_missing(tmp_path):
    path = write_video(tmp_path / "c.avi", 12, fourcc="MJPG")
    corrupt_mjpg_frames(path, 4, 5, 6)
    frames = dict(iter_frames(path, max_bad_run=2))
    assert sorted(frames) == list(range(12))
    assert [t for t, v in frames.items() if v is None] == list(range(4, 12))


def test_unreadable_and_missing_videos(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe_video(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(InputError, match="bad.mp4"):
        probe_video(bad)


def test_find_videos_by_stem_and_mapping(tmp_path):
    for name in ("cam_1.avi", "cam_2.mp4", "other.avi", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    match = find_videos(tmp_path, ("cam_1", "cam_2", "cam_3"))
    assert list(match.videos) == ["cam_1", "cam_2"]
    assert match.cameras_without_video == ("cam_3",)
    assert match.videos_without_camera == ("other.avi",)
    assert any("cam_3" in p for p in match.problems())
    match = find_videos(tmp_path, ("cam_1", "cam_2", "cam_3"), {"cam_3": "other.avi"})
    assert match.videos["cam_3"].name == "other.avi" and not match.problems()
    with pytest.raises(InputError, match="no such file"):
        find_videos(tmp_path, ("cam_1",), {"cam_1": "gone.avi"})
    with pytest.raises(InputError, match="lacks"):
        find_videos(tmp_path, ("cam_1",), {"cam_9": "other.avi"})
    with pytest.raises(InputError, match="no video matches"):
        find_videos(tmp_path, ("x", "y"))


def test_find_videos_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no video files"):
        find_videos(tmp_path, ("a",))
    with pytest.raises(InputError, match="not found"):
        find_videos(tmp_path / "missing", ("a",))


def cam(name: str, size=(1088, 1920), cx=540.0, cy=960.0) -> Camera:
    K = np.array([[1600.0, 0, cx], [0, 1600.0, cy], [0, 0, 1]])
    return Camera(name, size, K, np.zeros(5), np.eye(3), np.array([0, 0, 3.0]))


def info(name: str, n=100, fps=60.0, size=(1088, 1920)) -> VideoInfo:
    return VideoInfo(Path(f"{name}.mp4"), n, fps, size)


def test_check_lengths_fps_and_sizes():
    rig = Rig((cam("a"), cam("b"), cam("c")))
    res = check_videos({"a": info("a", 100), "b": info("b", 90, size=(1080, 1920)),
                        "c": info("c", 100, fps=30.0)}, rig)  # fmt: skip
    assert res.n_frames == 90 and res.fps == 60.0
    text = " ".join(res.warnings)
    assert "common length of 90" in text and "frame rates" in text and "1080x1920" in text
    assert res.rig["b"].size_px == (1080, 1920) and res.rig["a"].size_px == (1088, 1920)
    np.testing.assert_array_equal(res.rig["b"].K, rig["b"].K)
    assert not check_videos({"a": info("a")}, Rig((cam("a"),))).warnings


def test_check_scaled_video_scales_intrinsics():
    rig = Rig((cam("a"),))
    res = check_videos({"a": info("a", size=(544, 960))}, rig)
    np.testing.assert_allclose(res.rig["a"].K[:2], rig["a"].K[:2] * 0.5)
    assert "scaled" in res.warnings[0]


def test_check_rejects_sizes_the_principal_point_does_not_allow():
    with pytest.raises(CalibrationError, match="principal point"):
        check_videos({"a": info("a", size=(1000, 1920))}, Rig((cam("a"),)))
    with pytest.raises(CalibrationError, match="recalibrate"):  # pp far off the video centre
        check_videos({"a": info("a", size=(1080, 1920))}, Rig((cam("a", cx=900.0),)))


def test_real_pose2sim_size_mismatch_is_noticed(shared_data):
    from mvhand.io.calib_convert import load_any_calibration

    base = shared_data / "pose2sim_single"
    rig = load_any_calibration(base / "Calib.qca.txt")
    match = find_videos(base / "videos", rig.names)
    assert not match.problems()
    infos = {c: probe_video(p) for c, p in match.videos.items()}
    res = check_videos(infos, rig)
    assert res.n_frames == 100 and res.fps == pytest.approx(60.0)
    assert len(res.warnings) == 2
    assert "cam01" in res.warnings[0] and "cam02" in res.warnings[1]
    assert "1088x1920" in res.warnings[0] and "1080x1920" in res.warnings[0]
    assert [c.size_px for c in res.rig] == [(1080, 1920), (1080, 1920), (1088, 1920),
                                            (1088, 1920)]  # fmt: skip
