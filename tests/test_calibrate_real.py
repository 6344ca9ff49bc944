"""Rig calibration on real recordings (../shared/data): Pose2Sim checkerboard photos against
the Qualisys intrinsics, and caliscope's 4-webcam ChArUco session against the board's size."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.calibrate.boards import load_board
from mvhand.calibrate.check import check_rig
from mvhand.calibrate.detect import detect_in_images
from mvhand.calibrate.extrinsics import shift_frames, synced_corners
from mvhand.calibrate.intrinsics import calibrate_intrinsics
from mvhand.calibrate.workflow import detect_all, expand_sources
from mvhand.cli.main import cli
from mvhand.io.calib_convert import load_any_calibration
from mvhand.io.calibration import load_calibration

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("cam", ["cam01", "cam04"])  # cam01 has the photo with a cut-off board
def test_pose2sim_intrinsics_agree_with_qualisys(shared_data, cam):
    board = load_board(REPO / "calibration" / "checkerboard_pose2sim_4x7_60mm.toml")
    ref = load_any_calibration(shared_data / "pose2sim_single" / "Calib.qca.txt")[cam]
    det = detect_in_images(shared_data / "pose2sim_single" / "intrinsics" / cam, board)
    res = calibrate_intrinsics(det, board, cam)
    assert res.rms_px < 0.5
    f, f_ref = np.diag(res.camera.K)[:2], np.diag(ref.K)[:2]
    np.testing.assert_allclose(f, f_ref, rtol=0.01)  # measured: -0.3% (cam01), -0.0% (cam04)


def test_caliscope_charuco_session(shared_data):
    """The steps of ``mvhand calib calibrate`` on the whole session, detections made once."""
    from mvhand.calibrate.intrinsics import IntrinsicsConfig
    from mvhand.calibrate.workflow import run_extrinsics, run_intrinsics
    from mvhand.core.camera import Rig

    data = shared_data / "calib_charuco"
    board = load_board(data / "charuco.toml")
    dets = detect_all(expand_sources([data / "videos"]), board)
    intr = run_intrinsics(dets, board, IntrinsicsConfig())
    assert all(r.rms_px < 0.5 for r in intr)  # measured 0.17-0.35 px
    ex = run_extrinsics(Rig(tuple(r.camera for r in intr)), dets, board, True, 2)
    assert ex.rig.names == ("cam_0", "cam_1", "cam_2", "cam_3")
    # cam_1's frames are one late against the others (found from the board's motion)
    assert ex.offsets == (0, 1, 0, 0)
    assert np.all(ex.rms_px < 1.0)  # measured 0.70-0.80 px
    # the triangulated board reproduces its 5.4 cm squares
    rep = check_rig(ex.rig, board, shift_frames(synced_corners(dets), list(ex.offsets)))
    assert abs(rep.square_error) < 0.01  # measured: +0.01%
    assert not rep.warnings


def test_cli_calibrate_caliscope_subset(shared_data, tmp_path):
    """The command end to end on every third frame."""
    data = shared_data / "calib_charuco"
    out = tmp_path / "cams.toml"
    res = CliRunner().invoke(cli, ["calib", "calibrate", str(data / "videos"), "--board",
                                   str(data / "charuco.toml"), "--out", str(out),
                                   "--every", "3", "--fixed-intrinsics"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rig = load_calibration(out)
    meta = tomllib.loads(out.read_text())["metadata"]
    assert rig.units == "m" and meta["units"] == "m" and "world" in meta
    assert set(meta["board_rms_px"]) == set(rig.names)
    assert (tmp_path / "cam_0_coverage.png").is_file()
