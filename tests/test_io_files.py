"""2D keypoint and 3D result files: round trips and bad input."""

import numpy as np
import pytest

from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.errors import InputError
from mvhand.io.keypoints import load_keypoints, save_keypoints
from mvhand.io.results import hands3d_csv, load_hands3d, save_hands3d


def _kp(rng, C=3, T=4):
    pts = rng.uniform(0, 500, (C, T, 2, 21, 2))
    pts[0, 1, 0, 3] = np.nan
    return Keypoints2D(pts, rng.uniform(0, 1, (C, T, 2, 21)), ("a", "b", "c"), fps=30.0)


def test_keypoints_round_trip(tmp_path, rng):
    kp = _kp(rng)
    save_keypoints(tmp_path / "kp.npz", kp)
    back = load_keypoints(tmp_path / "kp.npz")
    assert back.cameras == kp.cameras and back.hands == ("left", "right") and back.fps == 30.0
    np.testing.assert_allclose(back.keypoints_px, kp.keypoints_px, rtol=1e-6)  # float32 on disk
    assert back.scores[0, 1, 0, 3] == 0.0  # a missing joint has score 0


def test_keypoints_bad_files_name_the_file(tmp_path, rng):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(InputError, match="text.npz: not a readable NPZ"):
        load_keypoints(tmp_path / "text.npz")
    np.savez(tmp_path / "nokeys.npz", foo=np.zeros(3))
    with pytest.raises(InputError, match="lacks keypoints, scores, cameras"):
        load_keypoints(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "shape.npz", keypoints=np.zeros((2, 3, 2, 21, 2)),
             scores=np.zeros((2, 3, 2, 20)), cameras=np.array(["a", "b"]))  # fmt: skip
    with pytest.raises(InputError, match="scores must have shape"):
        load_keypoints(tmp_path / "shape.npz")
    np.savez(tmp_path / "empty.npz", keypoints=np.zeros((0, 0, 2, 21, 2)),
             scores=np.zeros((0, 0, 2, 21)), cameras=np.array([], dtype=str))  # fmt: skip
    with pytest.raises(InputError, match="empty"):
        load_keypoints(tmp_path / "empty.npz")
    with pytest.raises(InputError, match="not found"):
        load_keypoints(tmp_path / "absent.npz")


def test_inf_becomes_missing(rng):
    kp = _kp(rng)
    pts = kp.keypoints_px.copy()
    pts[1, 0, 1, 5, 0] = np.inf
    kp2 = Keypoints2D(pts, kp.scores, kp.cameras)
    assert np.isnan(kp2.keypoints_px[1, 0, 1, 5]).all() and kp2.scores[1, 0, 1, 5] == 0


def test_hands3d_round_trip_and_csv(tmp_path, rng):
    T = 5
    pts = rng.normal(size=(T, 2, 21, 3))
    pts[2, 1] = np.nan
    h = Hands3D(pts, rng.uniform(0, 3, (T, 2, 21)), np.full((T, 2, 21), 4), np.ones((T, 2, 21)),
                "mm")  # fmt: skip
    save_hands3d(tmp_path / "h.npz", h, fps=25)
    back = load_hands3d(tmp_path / "h.npz")
    np.testing.assert_array_equal(back.keypoints3d, h.keypoints3d)
    assert back.units == "mm" and back.hands == ("left", "right")
    lines = hands3d_csv(h).splitlines()
    header = lines[0].split(",")
    assert len(lines) == T + 1 and len(header) == 1 + 2 * 21 * 6
    assert header[1:7] == ["left_wrist_x", "left_wrist_y", "left_wrist_z", "left_wrist_error",
                           "left_wrist_ncams", "left_wrist_score"]  # fmt: skip
    row = lines[1].split(",")
    assert float(row[1]) == pytest.approx(pts[0, 0, 0, 0], rel=1e-5)
    # a missing joint is an empty cell, not "nan" or 0
    col = header.index("right_wrist_x")
    assert lines[3].split(",")[col] == ""


def test_calibration_without_units_that_look_like_mm_warns(shared_data, caplog):
    from mvhand.io.calibration import load_calibration

    path = shared_data / "handmocap" / "calibration.toml"
    with caplog.at_level("WARNING", logger="mvhand.io.calibration"):
        load_calibration(path, units="mm")
    assert not caplog.records  # told the units: no warning
    with caplog.at_level("WARNING", logger="mvhand.io.calibration"):
        load_calibration(path)
    assert "--units mm" in caplog.text
