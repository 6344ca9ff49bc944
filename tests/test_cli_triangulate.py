"""``mvhand triangulate`` and ``mvhand demo-data`` end to end through the CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.cli.main import COMMANDS, cli


def test_every_subcommand_has_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        assert "Usage" in res.output


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    res = CliRunner().invoke(cli, ["demo-data", "--out", str(out), "--cameras", "5",
                                   "--frames", "40", "--seed", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_triangulate_end_to_end(sample, tmp_path):
    out = tmp_path / "res"
    args = ["triangulate", "--calib", str(sample / "calibration.toml"), "--keypoints",
            str(sample / "keypoints2d.npz"), "--out", str(out),
            "--set", "optimizer.max_iterations=30"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    for name in ("hands3d.npz", "hands3d.csv", "config.toml", "report.json", "calibration.toml"):
        assert (out / name).is_file(), name
    truth = np.load(sample / "truth3d.npz")["keypoints3d"]
    pred = np.load(out / "hands3d.npz")["keypoints3d"]
    err_mm = np.linalg.norm(pred - truth, axis=-1) * 1000
    assert np.isfinite(err_mm).mean() > 0.9
    assert np.nanmedian(err_mm) < 10.0  # 5 cameras, 2 px noise, outliers and swaps
    report = json.loads((out / "report.json").read_text())
    assert report["reconstruction"]["units"] == "m"
    assert set(report["reconstruction"]["hands"]) == {"left", "right"}
    assert "max_iterations = 30" in (out / "config.toml").read_text()


def test_units_mm_scales_output(sample, tmp_path):
    # the file says metres; asking for mm converts the output
    args = ["triangulate", "--calib", str(sample / "calibration.toml"), "--keypoints",
            str(sample / "keypoints2d.npz"), "--set", "optimizer.enabled=false"]  # fmt: skip
    r1 = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "m")])
    r2 = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "mm"), "--units", "mm"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    a = np.load(tmp_path / "m" / "hands3d.npz")["keypoints3d"]
    b = np.load(tmp_path / "mm" / "hands3d.npz")["keypoints3d"]
    np.testing.assert_allclose(b, a * 1000, rtol=1e-6, atol=1e-6)
    assert str(np.load(tmp_path / "mm" / "hands3d.npz")["units"]) == "mm"


@pytest.mark.parametrize(
    "mutate, needle",
    [
        ("bad_key", "'optimizer.nope' is not a known setting"),
        ("unknown_camera", "not in the calibration"),
        ("not_toml", "not a valid TOML calibration"),
        ("missing_kp", "not found"),
    ],
)
def test_bad_input_is_one_clear_line(sample, tmp_path, mutate, needle):
    calib, kp = sample / "calibration.toml", sample / "keypoints2d.npz"
    extra = []
    if mutate == "bad_key":
        extra = ["--set", "optimizer.nope=1"]
    elif mutate == "unknown_camera":
        data = dict(np.load(kp))
        data["cameras"] = np.array(["cam_1", "cam_2", "cam_3", "cam_4", "elsewhere"])
        kp = tmp_path / "kp.npz"
        np.savez(kp, **data)
    elif mutate == "not_toml":
        calib = tmp_path / "cal.toml"
        calib.write_text("[cam_0\nname=")
    elif mutate == "missing_kp":
        kp = tmp_path / "absent.npz"
    res = CliRunner().invoke(cli, ["triangulate", "--calib", str(calib), "--keypoints", str(kp),
                                   "--out", str(tmp_path / "o"), *extra])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o" / "hands3d.npz").exists()


def test_a_pipeline_config_is_accepted_for_its_reconstruct_section(sample, tmp_path):
    cfg = tmp_path / "pipe.toml"
    cfg.write_text("[backend]\nname = 'mediapipe'\n[reconstruct.optimizer]\nenabled = false\n")
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["triangulate", "--calib", str(sample / "calibration.toml"),
                                   "--keypoints", str(sample / "keypoints2d.npz"),
                                   "--out", str(out), "--config", str(cfg)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "enabled = false" in (out / "config.toml").read_text()
    report = json.loads((out / "report.json").read_text())
    assert "optimization" not in report["reconstruction"]["timings_s"]
