"""Headless renders checked on the image itself: colours where the renderer's camera projects
the joints, per-finger colours, camera viewpoints, outputs and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_viz_geometry import write_synthetic_run

from mvhand.cli.main import cli
from mvhand.core.camera import Camera, Rig
from mvhand.core.skeleton import JOINT_FINGER
from mvhand.core.synthetic import look_at, make_or_rig
from mvhand.viz import geometry as geo
from mvhand.viz.rundata import load_run
from mvhand.viz.scene import Scene, SceneOptions

pytest.importorskip("open3d", reason="open3d-cpu (the 'viz' extra) is not installed")

#: Unlit colours come out exactly, up to 8-bit rounding (per channel, 0-255).
COLOUR_TOL = 2
#: Share of joints whose centre pixel must show their own colour (the rest may be hidden
#: behind other joints or bones); every joint's pixel must at least show some hand.
MIN_VISIBLE_SHARE = 0.7
SIZE = (640, 360)


def _renderer(run, view, options=None, size=SIZE):
    from mvhand.viz.render import SceneRenderer

    return SceneRenderer(Scene(run, options or SceneOptions()), size, view)


def _colour_at(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    u, v = np.round(uv).astype(int)
    return image[v, u].astype(int)


def _on_background(image, cam, pts) -> np.ndarray:
    """Per joint: True if the pixel at its projection shows the background."""
    bg = np.round(255 * geo.BACKGROUND_RGB)
    return np.array([np.abs(_colour_at(image, cam.project(p)) - bg).max() <= COLOUR_TOL
                     for p in pts])  # fmt: skip


def _matches(image, cam, pts, colours) -> np.ndarray:
    """Per joint: True if the pixel at its projection has its colour."""
    out = []
    for p, c in zip(pts, colours, strict=True):
        px = _colour_at(image, cam.project(p))
        out.append(np.abs(px - np.round(255 * c)).max() <= COLOUR_TOL)
    return np.array(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("viz") / "run"
    write_synthetic_run(folder, n_frames=8)
    return load_run(folder)


def test_render_joint_colours_where_the_camera_projects_them(run):
    with _renderer(run, "orbit") as r:
        t = 3
        image = r.render(t, labels=False)
        cam = r.camera(t)
    assert image.shape == (SIZE[1], SIZE[0], 3) and image.dtype == np.uint8
    bg = np.round(255 * geo.BACKGROUND_RGB)
    assert (np.abs(image.astype(int) - bg).max(-1) > COLOUR_TOL).mean() > 0.01  # not empty
    assert np.abs(image[0, 0].astype(int) - bg).max() <= COLOUR_TOL  # a corner: background
    pts = run.hands3d.keypoints3d[t]
    for h in (0, 1):
        ok = _matches(image, cam, pts[h], geo.joint_rgb(h))
        assert ok.mean() >= MIN_VISIBLE_SHARE, f"hand {h}: {ok}"
        assert not _on_background(image, cam, pts[h]).any()
        seen = set(JOINT_FINGER[ok]) - {-1}
        assert seen == {0, 1, 2, 3, 4}, f"hand {h}: fingers seen in their colour {seen}"


def test_colours_follow_the_view_camera(run):
    """Guards against a renderer that ignores the camera: another view, other pixels."""
    with _renderer(run, "orbit") as r:
        image_orbit = r.render(2, labels=False)
        cam_orbit = r.camera(2)
    with _renderer(run, "overview") as r:
        image_over = r.render(2, labels=False)  # hands a few pixels wide, far from the orbit's
    pts = run.hands3d.keypoints3d[2, 1]
    assert _matches(image_orbit, cam_orbit, pts, geo.joint_rgb(1)).mean() >= MIN_VISIBLE_SHARE
    assert _matches(image_over, cam_orbit, pts, geo.joint_rgb(1)).mean() < 0.2


def test_calibration_camera_view_with_off_centre_principal_point(tmp_path):
    cams = make_or_rig(3, seed=7, size_px=(480, 640), distortion=False).cameras
    c0 = look_at("side", [0.9, 0.9, 1.5], [0.0, 0.0, 1.0], (480, 640), 900.0)
    K = c0.K.copy()
    K[0, 2], K[1, 2] = 170.0, 380.0  # far from the image centre
    K[0, 1] = 0.0
    side = Camera("side", (480, 640), K, np.zeros(5), c0.R_cam_world, c0.t_cam_world)
    rig = Rig((side, *cams))
    write_synthetic_run(tmp_path / "run", n_frames=3, rig=rig)
    run = load_run(tmp_path / "run")
    with _renderer(run, "side", size=(480, 640)) as r:
        assert r.size_px == (480, 640)
        image = r.render(1, labels=False)
        cam = r.camera(1)
    np.testing.assert_allclose(cam.K, side.K)  # same size: the calibration camera itself
    for h in (0, 1):
        ok = _matches(image, side, run.hands3d.keypoints3d[1, h], geo.joint_rgb(h))
        assert ok.mean() >= MIN_VISIBLE_SHARE
        assert not _on_background(image, side, run.hands3d.keypoints3d[1, h]).any()


def test_colour_by_error_paints_joints_by_their_error(run):
    with _renderer(run, "orbit", SceneOptions(color_by_error=True, max_error_px=20.0)) as r:
        image = r.render(4, labels=False)
        cam = r.camera(4)
    err = run.hands3d.reprojection_error_px[4]
    pts = run.hands3d.keypoints3d[4]
    ok = np.concatenate([_matches(image, cam, pts[h], geo.error_rgb(err[h], 20.0))
                         for h in (0, 1)])  # fmt: skip
    assert ok.mean() >= MIN_VISIBLE_SHARE


def test_render_run_writes_video_and_frames(run, tmp_path):
    import cv2

    from mvhand.viz.render import render_run

    res = render_run(run, tmp_path / "a.mp4", "overview", (320, 240), range(0, 4))
    cap = cv2.VideoCapture(str(res.paths[0]))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320
    cap.release()
    res = render_run(run, tmp_path / "frames", "orbit", (320, 240), range(2, 5))
    assert [p.name for p in res.paths] == [f"frame_{t:06d}.png" for t in (2, 3, 4)]
    assert cv2.imread(str(res.paths[0])).shape == (240, 320, 3)


def test_cli_render_end_to_end(run, tmp_path):
    out = tmp_path / "r.mp4"
    res = CliRunner().invoke(cli, ["render", str(run.folder), "--out", str(out), "--size",
                                   "320x240", "--frames", "0:3", "--view", "hand:left"])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000 and "rendered 3 frames" in res.output
    res = CliRunner().invoke(cli, ["render", str(run.folder), "--out", str(out), "--view", "x"])
    assert res.exit_code == 2 and "camera name" in res.output
    res = CliRunner().invoke(cli, ["render", str(tmp_path), "--out", str(out)])
    assert res.exit_code == 2 and "no 3D results" in res.output


@pytest.mark.parametrize("name", ["view", "render", "overlay"])
def test_cli_help(name):
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0 and "RUN_DIR" in res.output


def test_cli_view_without_display(run, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    res = CliRunner().invoke(cli, ["view", str(run.folder)])
    assert res.exit_code == 2 and "mvhand render" in res.output


def test_fitted_mesh_is_drawn(tmp_path):
    write_synthetic_run(tmp_path / "run", n_frames=3)
    run = load_run(tmp_path / "run")
    wrist = run.hands3d.keypoints3d[:, 0, 0]  # (T, 3): a 12 cm triangle hanging off each wrist
    verts = np.stack([wrist + [0.0, 0.0, -0.02], wrist + [0.12, 0.0, -0.14],
                      wrist + [-0.12, 0.0, -0.14]], axis=1)  # fmt: skip
    np.savez(run.folder / "mesh_left.npz", vertices=verts, faces=np.array([[0, 1, 2]]))
    mesh_rgb = np.round(255 * geo.MESH_RGB)
    counts = []
    for show in (True, False):
        with _renderer(load_run(run.folder), "orbit", SceneOptions(mesh=show)) as r:
            image = r.render(1, labels=False)
        counts.append((np.abs(image.astype(int) - mesh_rgb).max(-1) <= COLOUR_TOL).sum())
    assert counts[0] > 200 and counts[1] == 0
