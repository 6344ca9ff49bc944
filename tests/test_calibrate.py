"""Rig calibration (mvhand.calibrate) on synthetic boards with known cameras."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from mvhand.calibrate import synthetic as syn
from mvhand.calibrate.boards import Board, board_from_dict, board_to_toml, load_board
from mvhand.calibrate.bundle import connected_groups, similarity_align, transform_cameras
from mvhand.calibrate.check import check_rig
from mvhand.calibrate.detect import BoardFinder, Detections, diagnose
from mvhand.calibrate.extrinsics import calibrate_extrinsics, shift_frames
from mvhand.calibrate.intrinsics import IntrinsicsConfig, calibrate_intrinsics, select_views
from mvhand.calibrate.origin import set_origin_board, set_origin_points, set_up_axis
from mvhand.cli.main import cli
from mvhand.core.camera import Camera, Rig
from mvhand.errors import CalibrationError, ConfigError, InputError
from mvhand.io.calibration import load_calibration

REPO = Path(__file__).resolve().parents[1]


def _dets(corners: np.ndarray, size=(640, 480)) -> Detections:
    F = len(corners)
    return Detections(Path("synthetic"), size, np.arange(F), corners, np.ones(F))


def _relative_ok(a: Rig, b: Rig, tol_deg: float, tol_m: float) -> None:
    """Rigs equal up to the world frame: compare every camera relative to the first."""
    for ca, cb in zip(a.cameras, b.cameras, strict=True):
        Ra = ca.R_cam_world @ a[0].R_cam_world.T
        Rb = cb.R_cam_world @ b[0].R_cam_world.T
        ang = np.degrees(Rotation.from_matrix(Ra @ Rb.T).magnitude())
        assert ang < tol_deg, (ca.name, ang)
        ta = ca.t_cam_world - Ra @ a[0].t_cam_world
        tb = cb.t_cam_world - Rb @ b[0].t_cam_world
        assert np.linalg.norm(ta - tb) < tol_m, (ca.name, ta, tb)


# ---- boards -------------------------------------------------------------------------------

def test_repository_boards_load():
    caliscope = load_board(REPO / "calibration" / "charuco_caliscope_4x5.toml")
    assert caliscope.kind == "charuco" and caliscope.squares == (4, 5) and caliscope.inverted
    assert caliscope.square_size_m == pytest.approx(0.054)
    assert caliscope.marker_size_m == pytest.approx(0.0405)
    p2s = load_board(REPO / "calibration" / "checkerboard_pose2sim_4x7_60mm.toml")
    assert p2s.inner_corners == (4, 7) and p2s.n_corners == 28 and p2s.square_size_m == 0.06


def test_caliscope_board_file_reads_as_the_same_board(tmp_path):
    text = ('columns = 4\nrows = 5\nboard_height = 11.0\nboard_width = 8.5\n'
            'dictionary = "DICT_4X4_1000"\nunits = "inch"\naruco_scale = 0.75\n'
            'square_size_override_cm = 5.4\ninverted = true\n')  # fmt: skip
    (tmp_path / "charuco.toml").write_text(text)
    b = load_board(tmp_path / "charuco.toml")
    ours = load_board(REPO / "calibration" / "charuco_caliscope_4x5.toml")
    for key in ("kind", "squares", "dictionary", "inverted"):
        assert getattr(b, key) == getattr(ours, key)
    assert b.square_size_m == pytest.approx(ours.square_size_m)
    assert b.marker_size_m == pytest.approx(ours.marker_size_m)


def test_board_toml_round_trip(tmp_path):
    for board in (syn.CHARUCO, syn.CHECKER):
        (tmp_path / "b.toml").write_text(board_to_toml(board))
        again = load_board(tmp_path / "b.toml")
        assert again == board


def test_convention_charuco_points_match_opencv():
    b = syn.CHARUCO
    np.testing.assert_allclose(b.points_m(), b.cv_board().getChessboardCorners(), atol=1e-7)


@pytest.mark.parametrize("data, key", [
    ({"type": "checkerboard", "square_size_m": 0.03}, "inner_corners"),
    ({"type": "charuco", "squares": [4, 5], "square_size_m": 0.03}, "marker_size_m"),
    ({"type": "checkerboard", "inner_corners": [4, 7], "square_size_m": 60}, "metres"),
    ({"type": "checkerboard", "inner_corners": [4, 7], "square": 0.06}, "unknown"),
    ({"type": "charuco", "squares": [4, 5], "square_size_m": 0.05, "marker_size_m": 0.04,
      "dictionary": "DICT_9X9"}, "dictionary"),
])  # fmt: skip
def test_bad_board_files(data, key):
    with pytest.raises(ConfigError, match=key):
        board_from_dict(data, "b.toml")


# ---- detection ----------------------------------------------------------------------------

@pytest.mark.parametrize("board", [syn.CHARUCO, syn.CHECKER, replace(syn.CHARUCO, inverted=True)])
def test_rendered_board_is_found_where_it_projects(board, rng):
    rig = syn.ring_rig(3)
    poses = syn.board_poses(3, rng, board)
    truth = syn.project_board(rig, board, poses)
    finder, tex = BoardFinder(board), syn.board_texture(board)
    found = 0
    for c, cam in enumerate(rig.cameras):
        for k, pose in enumerate(poses):
            got = finder.find(syn.render_view(cam, board, pose, tex))
            if got is None:
                continue
            found += 1
            err = np.linalg.norm(got - truth[c, k], axis=1)
            if board.kind == "checkerboard":  # a symmetric grid: OpenCV may start either end
                err = np.minimum(err, np.linalg.norm(got[::-1] - truth[c, k], axis=1))
            assert np.nanmedian(err) < 0.8 and np.nanmax(err) < 2.0
    assert found >= 7


def test_diagnose_names_inverted_printing(rng):
    rig = syn.ring_rig(2)
    pose = syn.board_poses(1, rng)[0]
    inverted = replace(syn.CHARUCO, inverted=True)
    img = syn.render_view(rig[0], inverted, pose)
    assert BoardFinder(syn.CHARUCO).find(img) is None
    assert "inverted = true" in diagnose([img], syn.CHARUCO)


def test_diagnose_names_the_wrong_dictionary(rng):
    rig = syn.ring_rig(2)
    img = syn.render_view(rig[0], syn.CHARUCO, syn.board_poses(1, rng)[0])
    wrong = replace(syn.CHARUCO, dictionary="DICT_6X6_250")
    assert BoardFinder(wrong).find(img) is None
    assert "DICT_4X4_50" in diagnose([img], wrong)


def test_diagnose_names_a_too_small_charuco_layout(rng):
    rig = syn.ring_rig(2)
    img = syn.render_view(rig[0], syn.CHARUCO, syn.board_poses(1, rng)[0])
    small = replace(syn.CHARUCO, squares=(4, 5))  # the printed board has 5 x 7 squares
    assert BoardFinder(small).find(img) is None
    assert "'squares' is too small" in diagnose([img], small)


def test_diagnose_names_squares_counted_as_corners(rng):
    rig = syn.ring_rig(2)
    img = syn.render_view(rig[0], syn.CHECKER, syn.board_poses(1, rng, syn.CHECKER)[0])
    wrong = Board("checkerboard", (7, 9), 0.04)  # inner corners given as the square count
    assert BoardFinder(wrong).find(img) is None
    assert "5x7 checkerboard is visible" in diagnose([img], wrong)


# ---- intrinsics ---------------------------------------------------------------------------

def _intrinsic_views(cam: Camera, board: Board, n: int, rng, noise: float = 0.1) -> np.ndarray:
    """Board views in front of one camera, spread over the image."""
    rig = Rig((cam,), "m")
    views = []
    while len(views) < n:
        R = Rotation.from_rotvec(rng.normal(0, 0.45, 3)).as_matrix()
        t = np.r_[rng.uniform(-0.25, 0.25, 2), rng.uniform(0.6, 1.1)] - R @ board.points_m().mean(0)
        uv = syn.project_board(rig, board, [(R, t)], noise, rng)[0, 0]
        if np.isfinite(uv[:, 0]).mean() > 0.6:
            views.append(uv)
    return np.stack(views)


@pytest.mark.parametrize("model, dist", [("pinhole", [-0.2, 0.05, 0.001, -0.001, 0.0]),
                                         ("fisheye", [0.05, -0.02, 0.01, 0.0])])
def test_intrinsics_recover_known_camera(model, dist, rng):
    K = np.array([[800.0, 0, 330], [0, 805, 235], [0, 0, 1]])
    cam = Camera("c", (640, 480), K, dist, np.eye(3), np.zeros(3), model)
    board = Board("checkerboard", (6, 8), 0.07)  # fills much of the image, as it should
    corners = _intrinsic_views(cam, board, 30, rng)
    res = calibrate_intrinsics(_dets(corners), board, "c", IntrinsicsConfig(model=model))
    assert res.rms_px < 0.2
    np.testing.assert_allclose(res.camera.K[[0, 1], [0, 1]], [800, 805], rtol=5e-3)
    np.testing.assert_allclose(res.camera.K[:2, 2], [330, 235], atol=3.0)
    pts = np.random.default_rng(1).uniform([-0.3, -0.22, 1], [0.3, 0.22, 1], (50, 3))  # in view
    err = np.linalg.norm(res.camera.project(pts) - cam.project(pts), axis=1)
    assert err.max() < 2.0  # a principal point to about 1 px from 30 views at 0.1 px noise


def test_intrinsics_drop_a_wrong_view(rng):
    K = np.array([[700.0, 0, 320], [0, 700, 240], [0, 0, 1]])
    cam = Camera("c", (640, 480), K, np.zeros(5), np.eye(3), np.zeros(3))
    corners = _intrinsic_views(cam, syn.CHECKER, 16, rng)
    corners[3] = corners[3] + rng.normal(0, 15, corners[3].shape)  # a garbage detection
    res = calibrate_intrinsics(_dets(corners), syn.CHECKER, "c")
    assert 3 in res.dropped.tolist()
    assert res.camera.K[0, 0] == pytest.approx(700, rel=5e-3)


def test_frame_selection_skips_near_duplicates(rng):
    K = np.array([[700.0, 0, 320], [0, 700, 240], [0, 0, 1]])
    cam = Camera("c", (640, 480), K, np.zeros(5), np.eye(3), np.zeros(3))
    distinct = _intrinsic_views(cam, syn.CHECKER, 10, rng)
    # every view repeated 20 times with a sub-pixel jitter, as in a video of a still board
    corners = np.repeat(distinct, 20, axis=0) + rng.normal(0, 0.2, (200, *distinct.shape[1:]))
    picked = select_views(_dets(corners), syn.CHECKER, IntrinsicsConfig())
    assert len(set((picked // 20).tolist())) == len(picked) == 10


def test_too_few_views_is_one_clear_error(rng):
    corners = np.full((5, syn.CHECKER.n_corners, 2), np.nan)
    with pytest.raises(InputError, match="too few views"):
        calibrate_intrinsics(_dets(corners), syn.CHECKER, "c")


# ---- extrinsics ---------------------------------------------------------------------------

def _board_session(rng, n_cams=4, n_frames=25, noise=0.2):
    rig = syn.ring_rig(n_cams)
    poses = syn.board_poses(n_frames, rng)
    corners = syn.project_board(rig, syn.CHARUCO, poses, noise, rng)
    corners[rng.random(corners.shape[:3]) < 0.1] = np.nan  # missed corners
    return rig, corners


def test_extrinsics_recover_known_rig(rng):
    rig, corners = _board_session(rng)
    ex = calibrate_extrinsics(rig.cameras, syn.CHARUCO, corners)
    _relative_ok(ex.rig, rig, tol_deg=0.1, tol_m=1e-3)
    assert np.all(ex.rms_px < 0.35)  # about the 0.2 px noise (x sqrt 2 in 2D)
    np.testing.assert_allclose(ex.rig[0].R_cam_world, np.eye(3), atol=1e-12)


@pytest.mark.slow
def test_extrinsics_with_intrinsics_refinement(rng):
    rig, corners = _board_session(rng)
    scale = np.diag([1.02, 1.02, 1.0])  # focal lengths 2% too long
    off = [Camera(c.name, c.size_px, scale @ c.K, c.dist, c.R_cam_world, c.t_cam_world)
           for c in rig.cameras]  # fmt: skip
    ex = calibrate_extrinsics(off, syn.CHARUCO, corners, refine_intrinsics=True)
    for got, cam in zip(ex.rig.cameras, rig.cameras, strict=True):
        assert got.K[0, 0] == pytest.approx(cam.K[0, 0], rel=3e-3)
    # all nine intrinsics per camera are free: distortion trades a little with the poses
    _relative_ok(ex.rig, rig, tol_deg=0.5, tol_m=5e-3)


def test_extrinsics_find_a_frame_offset(rng):
    rig, corners = _board_session(rng, n_frames=30, noise=0.1)
    late = corners.copy()
    late[2] = shift_frames(corners, [0, 0, -1, 0])[2]  # cam3 recorded one frame late
    ex = calibrate_extrinsics(rig.cameras, syn.CHARUCO, late, max_offset=2)
    assert ex.offsets == (0, 0, 1, 0)
    _relative_ok(ex.rig, rig, tol_deg=0.1, tol_m=2e-3)


def test_disconnected_camera_graph_lists_the_groups(rng):
    rig, corners = _board_session(rng)
    corners[:2, 12:] = np.nan  # cams 1, 2 see the first frames, cams 3, 4 the last ones
    corners[2:, :12] = np.nan
    with pytest.raises(CalibrationError, match=r"2 groups.*\{cam1, cam2\}; \{cam3, cam4\}"):
        calibrate_extrinsics(rig.cameras, syn.CHARUCO, corners)


def test_connected_groups():
    assert connected_groups(5, [(0, 1), (3, 4)]) == [[0, 1], [3, 4], [2]]


# ---- world frame and check ----------------------------------------------------------------

def test_similarity_alignment_recovers_transform(rng):
    src = rng.normal(size=(20, 3))
    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    s, R2, t2 = similarity_align(src, 2.5 * src @ R.T + [1, 2, 3])
    assert s == pytest.approx(2.5) and np.allclose(R2, R) and np.allclose(t2, [1, 2, 3])


def test_world_change_keeps_projections(rng):
    rig = syn.ring_rig(3)
    pts = rng.normal(0, 0.2, (10, 3))
    R = Rotation.from_rotvec([0.1, 0.7, -0.3]).as_matrix()
    t = np.r_[0.5, -1, 2]
    moved = Rig(transform_cameras(rig.cameras, 1.0, R, t), "m")
    np.testing.assert_allclose(moved.project(pts @ R.T + t), rig.project(pts), atol=1e-9)


def test_set_origin_from_board_puts_board_on_z0_and_cameras_up(rng):
    rig = syn.ring_rig(3)
    R = Rotation.from_rotvec([0.2, 0.3, 1.0]).as_matrix()
    cam_world = Rig(transform_cameras(rig.cameras, 1.0, R, np.r_[1.0, 2, 3]), "m")
    # a board lying on the floor (z = 0 of the truth), triangulated in the moved world
    floor = syn.CHARUCO.points_m() + [0.1, -0.1, 0]
    new, scale = set_origin_board(cam_world, syn.CHARUCO, floor @ R.T + [1.0, 2, 3], corner=0)
    assert scale == pytest.approx(1.0)
    for cam in new.cameras:
        assert cam.center_world[2] > 0.3  # the cameras are 0.5 m above the floor
    corners = np.stack([new[0].center_world]) * 0  # origin check below
    got = np.array([c.center_world for c in new.cameras])
    # distances from the origin (corner 0) are preserved
    ref = np.array([c.center_world for c in rig.cameras]) - floor[0]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(ref, axis=1),
                               atol=1e-9)  # fmt: skip
    assert corners.shape == (1, 3)


def test_set_origin_points_and_up_axis():
    rig = syn.ring_rig(3)
    up = set_up_axis(rig, "-z")  # the ring's cameras are at +z: z down puts them below
    assert all(c.center_world[2] < 0 for c in up.cameras)
    back = set_origin_points(up, [0, 0, 0], [1, 0, 0], [0, 1, 0])  # flips to cameras up
    assert all(c.center_world[2] > 0 for c in back.cameras)
    with pytest.raises(CalibrationError, match="collinear"):
        set_origin_points(rig, [0, 0, 0], [1, 0, 0], [2, 0, 0])


def test_check_measures_squares_and_flags_units(rng):
    rig, corners = _board_session(rng, noise=0.1)
    rep = check_rig(rig, syn.CHARUCO, corners)
    assert abs(rep.square_error) < 2e-3 and np.all(rep.rms_px < 0.3) and not rep.warnings
    mm_as_m = Rig(tuple(c.scaled(1000.0) for c in rig.cameras), "m")
    rep = check_rig(mm_as_m, syn.CHARUCO, corners)
    assert any("units off" in w for w in rep.warnings)


def test_check_flags_a_moved_camera(rng):
    rig, corners = _board_session(rng, noise=0.1)
    cams = list(rig.cameras)
    c = cams[2]
    R = Rotation.from_rotvec([0, 0.03, 0]).as_matrix() @ c.R_cam_world  # turned 1.7 degrees
    cams[2] = Camera(c.name, c.size_px, c.K, c.dist, R, -R @ c.center_world)
    rep = check_rig(Rig(tuple(cams), "m"), syn.CHARUCO, corners)
    assert any("cam3" in w and "far above" in w for w in rep.warnings)


# ---- command line -------------------------------------------------------------------------

@pytest.mark.parametrize("sub", ["intrinsics", "extrinsics", "calibrate", "check", "set-origin",
                                 "from-people"])
def test_cli_help(sub):
    result = CliRunner().invoke(cli, ["calib", sub, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def _write_session(folder: Path, rng, n_frames: int = 16) -> tuple[Rig, Path]:
    rig = syn.ring_rig(3)
    poses = syn.board_poses(n_frames, rng, tilt_deg=40)
    tex = syn.board_texture(syn.CHARUCO)
    folder.mkdir()
    for cam in rig.cameras:
        frames = [syn.render_view(cam, syn.CHARUCO, p, tex) for p in poses]
        syn.write_video(folder / f"{cam.name}.avi", frames)
    board = folder.parent / "board.toml"
    board.write_text(board_to_toml(syn.CHARUCO))
    return rig, board


@pytest.mark.slow
def test_cli_calibrate_check_set_origin_end_to_end(tmp_path, rng):
    rig, board = _write_session(tmp_path / "videos", rng)
    out = tmp_path / "cams.toml"
    runner = CliRunner()
    # a synthetic camera has no distortion to find; intrinsics from 16 views of one board
    res = runner.invoke(cli, ["calib", "calibrate", str(tmp_path / "videos"), "--board",
                              str(board), "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    got = load_calibration(out)
    assert got.names == rig.names
    for g, c in zip(got.cameras, rig.cameras, strict=True):
        assert g.K[0, 0] == pytest.approx(c.K[0, 0], rel=0.03)
    # the plumbing, not the accuracy (that is the real-data test): intrinsics from 12-16 small
    # views each are 1-3% off, which moves the cameras by a few centimetres
    _relative_ok(got, rig, tol_deg=2.5, tol_m=0.06)
    assert (tmp_path / "cam1_coverage.png").stat().st_size > 1000
    fig = tmp_path / "check.png"
    res = runner.invoke(cli, ["calib", "check", str(out), str(tmp_path / "videos"), "--board",
                              str(board), "--figure", str(fig)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "square size" in res.output and fig.stat().st_size > 1000
    moved = tmp_path / "up.toml"
    res = runner.invoke(cli, ["calib", "set-origin", str(out), str(moved), "--up", "-y"])
    assert res.exit_code == 0, res.output
    assert "world" in moved.read_text()
    on_board = tmp_path / "board_world.toml"
    res = runner.invoke(cli, ["calib", "set-origin", str(out), str(on_board), "--board",
                              str(board), "--videos", str(tmp_path / "videos")])  # fmt: skip
    assert res.exit_code == 0, res.output
    world = load_calibration(on_board)
    # the board faces the cameras: z up points at them; distances to its corner are kept
    assert all(c.center_world[2] > 0.3 for c in world.cameras)
    np.testing.assert_allclose([np.linalg.norm(c.center_world - world[0].center_world)
                                for c in world.cameras],
                               [np.linalg.norm(c.center_world - got[0].center_world)
                                for c in got.cameras], atol=1e-6)  # fmt: skip


def test_cli_intrinsics_from_image_folder(tmp_path, rng):
    import cv2

    rig = syn.ring_rig(1)
    folder = tmp_path / "cam1"
    folder.mkdir()
    tex = syn.board_texture(syn.CHECKER)
    for i, pose in enumerate(syn.board_poses(8, rng, syn.CHECKER, tilt_deg=45)):
        cv2.imwrite(str(folder / f"img{i}.png"), syn.render_view(rig[0], syn.CHECKER, pose, tex))
    board = tmp_path / "checker.toml"
    board.write_text(board_to_toml(syn.CHECKER))
    out = tmp_path / "intr.toml"
    res = CliRunner().invoke(cli, ["calib", "intrinsics", str(folder), "--board", str(board),
                                   "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    cam = load_calibration(out)[0]
    assert cam.name == "cam1" and cam.K[0, 0] == pytest.approx(600, rel=0.05), cam.K


def test_cli_no_board_in_video_is_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    syn.write_video(folder / "cam1.avi", [np.full((120, 160), 128, np.uint8)] * 5)
    board = tmp_path / "b.toml"
    board.write_text(board_to_toml(syn.CHARUCO))
    res = CliRunner().invoke(cli, ["calib", "intrinsics", str(folder), "--board", str(board),
                                   "--out", str(tmp_path / "o.toml")])  # fmt: skip
    assert res.exit_code == 2
    assert "cam1.avi" in res.output and "found in 0 of 5 frames" in res.output
    assert "Traceback" not in res.output


def test_cli_unreadable_video_and_different_lengths(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "cam1.mp4").write_bytes(b"not a video")
    board = tmp_path / "b.toml"
    board.write_text(board_to_toml(syn.CHARUCO))
    args = ["calib", "calibrate", str(folder), "--board", str(board), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "cam1.mp4" in res.output
    (folder / "cam1.mp4").unlink()
    syn.write_video(folder / "cam1.avi", [np.full((120, 160), 128, np.uint8)] * 5)
    syn.write_video(folder / "cam2.avi", [np.full((120, 160), 128, np.uint8)] * 9)
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "same length" in res.output


# ---- extrinsics from people ---------------------------------------------------------------

def _aligned_errors(got: Rig, truth: Rig) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre errors (m) and orientation errors (deg) after a similarity alignment."""
    A = np.array([c.center_world for c in got.cameras])
    B = np.array([c.center_world for c in truth.cameras])
    s, R, t = similarity_align(A, B)
    centre = np.linalg.norm(s * A @ R.T + t - B, axis=1)
    ang = [np.degrees(Rotation.from_matrix(g.R_cam_world @ R.T @ c.R_cam_world.T).magnitude())
           for g, c in zip(got.cameras, truth.cameras, strict=True)]  # fmt: skip
    return centre, np.array(ang)


@pytest.mark.slow
def test_people_extrinsics_with_outliers_and_swaps(rng):
    from mvhand.calibrate.people import calibrate_from_keypoints, scale_by_length

    rig, px, scores, swap, truth, flips = syn.people_session(rng, outliers=0.05, swaps=0.05)
    res = calibrate_from_keypoints(rig.cameras, px, scores, swap)
    centre, ang = _aligned_errors(res.rig, rig)
    assert centre.max() < 0.03 and ang.max() < 1.0  # cameras 3 m away: 1% and 1 degree
    assert np.all(res.rms_px < 1.6)  # 1 px noise per axis
    # most swapped views found, few others touched
    assert (res.swapped & flips).sum() >= 0.8 * flips.sum()
    assert (res.swapped & ~flips).sum() <= 0.2 * flips.sum()
    # metric scale from a known distance between two keypoints (shoulder to ankle here)
    true_len = float(np.median(np.linalg.norm(truth[:, 0] - truth[:, 6], axis=-1)))
    scaled = scale_by_length(res, 0, 6, true_len)
    baseline = np.linalg.norm(scaled.rig[0].center_world - scaled.rig[2].center_world)
    true_base = np.linalg.norm(rig[0].center_world - rig[2].center_world)
    assert baseline == pytest.approx(true_base, rel=0.03)


def test_people_scale_from_a_board_seen_once(rng):
    from mvhand.calibrate.people import PeopleResult, scale_by_board

    rig = syn.ring_rig(3)
    shrunk = Rig(transform_cameras(rig.cameras, 0.37, np.eye(3), np.zeros(3)), "m")
    res = PeopleResult(shrunk, np.zeros(3), np.zeros(3), np.zeros((3, 1), bool),
                       np.zeros((1, 1, 3)), False)  # fmt: skip
    corners = syn.project_board(rig, syn.CHARUCO, syn.board_poses(1, rng), 0.1, rng)
    scaled = scale_by_board(res, syn.CHARUCO.neighbour_pairs(), syn.CHARUCO.square_size_m,
                            corners)  # fmt: skip
    for a, b in zip(scaled.rig.cameras, rig.cameras, strict=True):
        np.testing.assert_allclose(a.center_world, b.center_world, atol=5e-3)


def test_people_mirror_index():
    from mvhand.calibrate.people import MEDIAPIPE_POSE33, mirror_index

    m = mirror_index(MEDIAPIPE_POSE33)
    assert np.array_equal(m[m], np.arange(33))  # an involution
    assert MEDIAPIPE_POSE33[m[11]] == "right_shoulder" and m[0] == 0


def test_cli_from_people_on_a_keypoint_file(tmp_path, rng):
    from mvhand.core.data import Keypoints2D
    from mvhand.io.calibration import save_calibration
    from mvhand.io.keypoints import save_keypoints

    rig, px, scores, swap, truth, flips = syn.people_session(rng, n_frames=40, swaps=0.0)
    # 16 body keypoints stand in for hand joints: two "hands" of 21 from 42 = 16 + 26 NaN
    kp = np.full((len(rig), 40, 2, 21, 2), np.nan)
    sc = np.zeros(kp.shape[:-1])
    kp[:, :, 0, :8], kp[:, :, 1, :8] = px[:, :, :8], px[:, :, 8:]
    sc[:, :, 0, :8], sc[:, :, 1, :8] = scores[:, :, :8], scores[:, :, 8:]
    save_keypoints(tmp_path / "kp.npz", Keypoints2D(kp, sc, rig.names))
    save_calibration(tmp_path / "intr.toml", rig)
    out = tmp_path / "cams.toml"
    d = float(np.linalg.norm(rig[0].center_world - rig[1].center_world))
    res = CliRunner().invoke(cli, ["calib", "from-people", "--intrinsics",
                                   str(tmp_path / "intr.toml"), "--keypoints",
                                   str(tmp_path / "kp.npz"), "--out", str(out),
                                   "--camera-distance", f"cam1:cam2={d}"])  # fmt: skip
    assert res.exit_code == 0, res.output
    got = load_calibration(out)
    centre, ang = _aligned_errors(got, rig)
    assert centre.max() < 0.05 and ang.max() < 1.5
    assert np.linalg.norm(got[0].center_world - got[1].center_world) == pytest.approx(d)
