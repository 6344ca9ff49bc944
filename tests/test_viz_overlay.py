"""2D overlays against known 2D points: colours at the keypoints, rings at the reprojections,
boxes, frame alignment with the videos, the grid, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_viz_geometry import write_synthetic_run

from mvhand.cli.main import cli
from mvhand.core.data import Keypoints2D
from mvhand.errors import InputError
from mvhand.viz import geometry as geo
from mvhand.viz.overlay import draw_frame, grid_layout, load_tracks, write_overlays
from mvhand.viz.rundata import load_run

cv2 = pytest.importorskip("cv2")

#: Lossy video (mp4v) changes colours; a dot's centre stays within this per channel.
VIDEO_COLOUR_TOL = 70
#: Each synthetic video frame shows its index as a bright bar at x = BAR_PX * index.
BAR_PX = 12


def _spread_keypoints(h_img: int) -> np.ndarray:
    """21 keypoints on a 7 x 3 grid, 30 px apart: dots never overlap."""
    xs, ys = np.meshgrid(40 + 30 * np.arange(7), 40 + 30 * np.arange(3))
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(float)


def test_draw_frame_paints_finger_colours_at_the_keypoints():
    image = np.full((480, 640, 3), 90, np.uint8)
    kp = np.full((2, 21, 2), np.nan)
    kp[1] = _spread_keypoints(480)
    scores = np.ones((2, 21))
    draw_frame(image, kp, scores, None)
    expected = np.round(255 * geo.joint_rgb(1)).astype(int)
    for j in range(21):
        u, v = kp[1, j].astype(int)
        np.testing.assert_array_equal(image[v, u], expected[j], err_msg=f"joint {j}")


def test_draw_frame_low_scores_hidden_and_rings_at_reprojections():
    image = np.full((480, 640, 3), 90, np.uint8)
    kp = np.full((2, 21, 2), np.nan)
    kp[0] = _spread_keypoints(480)
    scores = np.ones((2, 21))
    scores[0, 5] = 0.1
    rep = np.full((2, 21, 2), np.nan)
    rep[0, 3] = [400.0, 300.0]
    draw_frame(image, kp, scores, rep, min_score=0.5)
    u, v = kp[0, 5].astype(int)
    np.testing.assert_array_equal(image[v, u], [90, 90, 90])  # hidden: score below min_score
    r = 2 + 2  # dot radius at 480 px plus the ring's margin
    assert image[300, 400 + r].min() > 200  # white ring around the reprojected joint
    np.testing.assert_array_equal(image[300, 400], [90, 90, 90])  # ring, not a dot


def test_draw_frame_box_from_keypoints_and_given_box():
    image = np.full((480, 640, 3), 0, np.uint8)
    kp = np.full((2, 21, 2), np.nan)
    kp[1] = _spread_keypoints(480)
    boxes = np.full((2, 4), np.nan)
    boxes[0] = [300, 300, 400, 420]
    draw_frame(image, kp, np.ones((2, 21)), None, boxes=boxes, track_ids=np.array([3, 7]))
    wrist_right = np.round(255 * geo.joint_rgb(1)[0]).astype(int)
    lo, hi = kp[1].min(0), kp[1].max(0)  # box around the keypoints encloses them
    c, half = (lo + hi) / 2, 1.3 * (hi - lo).max() / 2 + 4
    y = int(round(c[1] + half))  # the bottom edge (the top one is above the image)
    assert np.abs(image[y, int(c[0])].astype(int) - wrist_right).max() <= 60
    # the given box of the left hand has no keypoints but is still drawn
    assert image[360, 300].max() > 100 and image[360, 350].max() == 0


def test_grid_layout_fits_and_keeps_aspect():
    cols, rows, tile = grid_layout([(1080, 1920)] * 4)
    assert (cols, rows) == (4, 1) and cols * tile[0] <= 1920 and rows * tile[1] <= 1080
    assert abs(tile[0] / tile[1] - 1080 / 1920) < 0.01
    cols, rows, _ = grid_layout([(1920, 1080)] * 4)
    assert (cols, rows) == (2, 2)


def _write_videos(folder, rig, n_frames: int) -> dict:
    folder.mkdir()
    videos = {}
    for cam in rig.cameras:
        w, h = cam.size_px
        path = folder / f"{cam.name}.avi"
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
        for t in range(n_frames):
            frame = np.full((h, w, 3), 60, np.uint8)
            frame[h - 20:, BAR_PX * t:BAR_PX * t + 6] = 255
            wr.write(frame)
        wr.release()
        videos[cam.name] = path
    return videos


def _read_frame(path, t: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    for _ in range(t + 1):
        ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_write_overlays_aligns_frames_and_keypoints(tmp_path):
    rig, _ = write_synthetic_run(tmp_path / "run", n_frames=4, n_cameras=3, size_px=(640, 480))
    run = load_run(tmp_path / "run")
    videos = _write_videos(tmp_path / "videos", rig, 12)
    idx = np.array([2, 5, 8, 11])  # every third video frame, from frame 2
    paths = write_overlays(tmp_path / "ov", videos, run.keypoints2d, run.hands3d, run.rig, idx)
    assert [p.name for p in paths] == [f"{c}.mp4" for c in rig.names] + ["grid.mp4"]
    cap = cv2.VideoCapture(str(paths[-1]))
    cols, rows, tile = grid_layout([c.size_px for c in rig.cameras])
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == cols * tile[0]
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()
    c, t = 1, 2
    image = _read_frame(paths[c], t)
    bar_x = BAR_PX * idx[t] + 3
    assert image[470, bar_x].min() > 200  # the video frame idx[t] under overlay frame t
    assert image[470, BAR_PX * (idx[t] - 1) + 3].max() < 120
    kp = run.keypoints2d.keypoints_px[c, t]
    hits = 0
    for h in (0, 1):
        for j in (4, 8, 12, 16, 20):  # fingertips: no ring of another joint nearby
            if np.isfinite(kp[h, j]).all():
                u, v = np.round(kp[h, j]).astype(int)
                want = np.round(255 * geo.joint_rgb(h)[j])
                hits += np.abs(image[v, u].astype(int) - want).max() <= VIDEO_COLOUR_TOL
    assert hits >= 7


def test_write_overlays_rejects_mismatched_inputs(tmp_path):
    rig, _ = write_synthetic_run(tmp_path / "run", n_frames=4, n_cameras=2)
    run = load_run(tmp_path / "run")
    videos = _write_videos(tmp_path / "videos", rig, 4)
    short = Keypoints2D(run.keypoints2d.keypoints_px[:, :3], run.keypoints2d.scores[:, :3],
                        run.keypoints2d.cameras)  # fmt: skip
    with pytest.raises(InputError, match="frames"):
        write_overlays(tmp_path / "ov", videos, short, run.hands3d, run.rig)
    with pytest.raises(InputError, match="no video matches"):
        write_overlays(tmp_path / "ov", {"zz": videos[rig.names[0]]}, run.keypoints2d,
                       run.hands3d, run.rig)  # fmt: skip
    with pytest.raises(InputError, match="increasing"):
        write_overlays(tmp_path / "ov", videos, run.keypoints2d, run.hands3d, run.rig,
                       np.array([0, 2, 1, 3]))  # fmt: skip


def test_load_tracks_from_keypoint_file(tmp_path):
    write_synthetic_run(tmp_path / "run", n_frames=3, n_cameras=2)
    run = load_run(tmp_path / "run")
    assert load_tracks(run.folder, run.keypoints2d) == (None, None)
    with np.load(run.folder / "keypoints2d.npz") as d:
        arrays = dict(d)
    arrays["boxes"] = np.ones((2, 3, 2, 4))
    arrays["track_ids"] = np.arange(12).reshape(2, 3, 2)
    np.savez(run.folder / "keypoints2d.npz", **arrays)
    boxes, ids = load_tracks(run.folder, run.keypoints2d)
    assert boxes.shape == (2, 3, 2, 4) and ids[1, 2, 1] == 11


def test_cli_overlay_end_to_end(tmp_path):
    rig, _ = write_synthetic_run(tmp_path / "run", n_frames=3, n_cameras=2, size_px=(320, 240))
    _write_videos(tmp_path / "videos", rig, 3)
    res = CliRunner().invoke(cli, ["overlay", str(tmp_path / "run"), "--videos",
                                   str(tmp_path / "videos"), "--no-grid"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "run" / "overlay").iterdir()) == [
        f"{c}.mp4" for c in rig.names]
    res = CliRunner().invoke(cli, ["overlay", str(tmp_path / "run"), "--videos",
                                   str(tmp_path / "nope")])  # fmt: skip
    assert res.exit_code == 2 and "video folder not found" in res.output
