"""``mvhand fit`` end to end: kinematic and MANO (synthetic model files), help, bad input."""

from __future__ import annotations

import sys

import numpy as np
from click.testing import CliRunner

from mvhand.cli.main import cli
from mvhand.core.data import Hands3D
from mvhand.core.synthetic import make_hand_motion
from mvhand.fit.kinematic import DOF_NAMES
from mvhand.io.results import save_hands3d

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import mano_synth  # noqa: E402

#: Mean fitted-joint error of the kinematic hand on noiseless synthetic input (mm).
NOISELESS_MM = 1.0


def _write_hands3d(path, T=30, nan_left=False):
    X = make_hand_motion(T, speed="slow", seed=0) * 1000.0
    if nan_left:
        X[:, 0] = np.nan
    z = np.zeros(X.shape[:-1])
    save_hands3d(path, Hands3D(X, z, z.astype(int) + 3, z + 0.9, "mm"))
    return X


def test_help():
    result = CliRunner().invoke(cli, ["fit", "--help"])
    assert result.exit_code == 0
    assert "--mano-dir" in result.output and "--hands3d" in result.output


def test_kinematic_end_to_end(tmp_path):
    X = _write_hands3d(tmp_path / "hands3d.npz")
    out = tmp_path / "fit"
    result = CliRunner().invoke(cli, ["fit", "--hands3d", str(tmp_path / "hands3d.npz"),
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(out / "hand_model.npz") as d:
        assert str(d["model"]) == "kinematic" and str(d["units"]) == "mm"
        for h, side in enumerate(("left", "right")):
            err = np.linalg.norm(d[f"{side}_joints3d"] - X[:, h], axis=-1)
            assert err.mean() < NOISELESS_MM
            np.testing.assert_allclose(d[f"{side}_fit_error"], err, atol=1e-9)
            assert d[f"{side}_params"].shape == (30, 27)
    header = (out / "joint_angles.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "frame" and f"right_{DOF_NAMES[6]}_deg" in header
    assert len(header) == 1 + 2 * len(DOF_NAMES)
    assert (out / "fit_config.toml").is_file()


def test_mano_end_to_end_with_meshes(tmp_path):
    _write_hands3d(tmp_path / "hands3d.npz", T=20, nan_left=True)
    mano_dir = mano_synth.write_mano_dir(tmp_path / "mano")
    out = tmp_path / "fit"
    result = CliRunner().invoke(cli, ["fit", "--hands3d", str(tmp_path / "hands3d.npz"),
                                      "--mano-dir", str(mano_dir), "--mesh-frames", "0,5",
                                      "--set", "mesh_format=\"ply\"", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out / "hand_model.npz") as d:
        assert str(d["model"]) == "mano" and list(d["hands"]) == ["right"]  # left skipped
        assert d["right_betas"].shape == (10,)
    with np.load(out / "mesh_right.npz") as m:
        assert m["vertices"].shape == (20, 778, 3) and m["faces"].shape == (1538, 3)
        # the mesh and the fitted joints agree: the index tip is vertex 320
        with np.load(out / "hand_model.npz") as d:
            np.testing.assert_allclose(m["vertices"][:, 320], d["right_joints3d"][:, 8],
                                       atol=1e-3)  # fmt: skip
    ply = (out / "mesh_right_000005.ply").read_text()
    assert ply.startswith("ply") and "element vertex 778" in ply


def test_missing_mano_files_explain_what_to_do(tmp_path):
    _write_hands3d(tmp_path / "hands3d.npz", T=5)
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", "--hands3d", str(tmp_path / "hands3d.npz"),
                                 "--mano-dir", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "mano.is.tue.mpg.de" in result.output and "--mano-dir" in result.output
    result = runner.invoke(cli, ["fit", "--hands3d", str(tmp_path / "hands3d.npz"),
                                 "--model", "mano", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "MANO" in result.output


def test_bad_inputs(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", "--hands3d", str(tmp_path / "no.npz"), "--out",
                                 str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "not found" in result.output
    _write_hands3d(tmp_path / "hands3d.npz", T=5)
    result = runner.invoke(cli, ["fit", "--hands3d", str(tmp_path / "hands3d.npz"),
                                 "--keypoints", str(tmp_path / "kp.npz"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--calib" in result.output
