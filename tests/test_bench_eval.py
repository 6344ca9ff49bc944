"""Scoring against a benchmark (misses, units, 2D/3D) and the CLI end to end on a tiny benchmark."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.bench import dataset as ds
from mvhand.bench.evaluate import EvalConfig, score_sequence, summarize
from mvhand.bench.synth import SynthConfig, write_benchmark
from mvhand.cli.main import cli
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.io.keypoints import save_keypoints
from mvhand.io.results import save_hands3d

EXACT_MM = 1e-6
EXACT_PX = 1e-6
TINY = SynthConfig(n_cameras=4, n_frames=30, n_keyframes=5, seed=0, mocap_path=None)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    write_benchmark(out, ("L0", "L1"), TINY)
    return out


@pytest.fixture(scope="module")
def seq(bench_dir: Path) -> ds.SequenceData:
    return ds.load_sequence(bench_dir / "L1_synth_s0")


def _hands(points: np.ndarray, units: str = "m") -> Hands3D:
    shape = points.shape[:-1]
    return Hands3D(points, np.zeros(shape), np.ones(shape, int), np.ones(shape), units)


def _perfect_2d(seq: ds.SequenceData) -> Keypoints2D:
    kp = seq.rig.project(seq.gt3d.keypoints3d[:, :2])
    return Keypoints2D(kp, np.ones(kp.shape[:-1]), seq.rig.names)


def test_perfect_prediction_scores_perfectly(seq):
    gt = seq.gt3d.keypoints3d[:, :2]
    s = summarize([score_sequence(seq, _hands(gt), _perfect_2d(seq))])
    assert s["mpjpe_mm"] < EXACT_MM and s["pa_mpjpe_mm"] < EXACT_MM
    assert s["mpck3d"] == 100.0 and s["completeness3d"] == 1.0
    assert s["reproj_px"] < EXACT_PX and s["mje_px"] < EXACT_PX
    assert s["mpck2d"] == 100.0 and s["ap"] == pytest.approx(100.0)


def test_units_are_converted(seq):
    gt_mm = seq.gt3d.keypoints3d[:, :2] * 1000.0
    s = summarize([score_sequence(seq, _hands(gt_mm + [0.6, 0.8, 0.0], "mm"))])
    assert s["mpjpe_mm"] == pytest.approx(1.0)
    assert s["pck3d@5mm"] == 100.0 and s["pck3d@10mm"] == 100.0


def test_missing_frames_and_hands_count_as_misses(seq):
    gt = seq.gt3d.keypoints3d[:15, :1]  # half the frames, left hand only
    left = Hands3D(gt, np.zeros(gt.shape[:-1]), np.ones(gt.shape[:-1], int),
                   np.ones(gt.shape[:-1]), "m", ("left",))  # fmt: skip
    sc = score_sequence(seq, left)
    s = summarize([sc])
    assert s["mpjpe_mm"] < EXACT_MM  # the frames that were predicted are right
    assert s["completeness3d"] == pytest.approx(0.25)
    assert s["mpck3d"] == pytest.approx(25.0)
    assert any("no 'right' hand" in n for n in sc.notes)
    assert any("15 frames" in n for n in sc.notes)


def test_missing_camera_in_2d_counts_as_missed(seq):
    full = _perfect_2d(seq)
    three = full.subset_cameras(full.cameras[:3])
    s_full = summarize([score_sequence(seq, pred2d=full)])
    s3 = summarize([score_sequence(seq, pred2d=three)])
    assert s3["mje_px"] < EXACT_PX
    assert s3["mpck2d"] < s_full["mpck2d"] and s3["ap"] < s_full["ap"]


def test_joint_exclusion(seq):
    pred = seq.gt3d.keypoints3d[:, :2].copy()
    pred[:, :, 0] += [0.05, 0.0, 0.0]  # wrist 50 mm off
    s_all = summarize([score_sequence(seq, _hands(pred))])
    cfg = EvalConfig(exclude_joints=("wrist", "thumb_cmc"))
    s_paper = summarize([score_sequence(seq, _hands(pred), cfg=cfg)], cfg)
    assert s_all["mpjpe_mm"] == pytest.approx(50.0 / 21)
    assert s_paper["mpjpe_mm"] < EXACT_MM


# ------------------------------------------------------------------------------------- CLI
def _run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.mark.parametrize("args", [["eval", "--help"], ["bench", "--help"],
                                  ["bench", "synth", "--help"], ["bench", "baselines", "--help"]])
def test_help(args):
    res = _run(args)
    assert res.exit_code == 0 and "Usage" in res.output


def test_cli_end_to_end(tmp_path: Path):
    data = tmp_path / "bench"
    res = _run(["bench", "synth", "--out", str(data), "--level", "L0,L2", "--cameras", "4",
                "--frames", "30", "--keyframes", "5", "--mocap", "none"])  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = Path(__file__).resolve().parents[1] / "benchmark_data" / "manifests"
    assert tomllib.loads((data / ds.DATASET_FILE).read_text()) == tomllib.loads(
        (manifest / "synthetic_ci.toml").read_text())  # the documented recipe is this run
    res = _run(["eval", "--check", str(data)])
    assert res.exit_code == 0 and "0 error(s)" in res.output
    report = tmp_path / "report"
    res = _run(["bench", "baselines", "--dataset", str(data), "--methods",
                "dlt,robust,optimizer,anipose_dlt", "--out", str(report)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {"report.md", "by_level.csv", "by_sequence.csv", "per_joint.csv", "pck3d.png",
            "per_joint.png"} <= {p.name for p in report.iterdir()}  # fmt: skip
    rows = (report / "by_level.csv").read_text().splitlines()
    header = rows[0].split(",")
    mpjpe = {}
    for line in rows[1:]:
        cells = dict(zip(header, line.split(","), strict=True))
        mpjpe.setdefault(cells["method"], []).append(float(cells["mpjpe_mm"] or "nan"))
    assert np.mean(mpjpe["optimizer (full)"]) < np.mean(mpjpe["DLT"])
    assert "| method | level |" in (report / "report.md").read_text()


def test_cli_eval_pred_and_pipeline(bench_dir: Path, seq, tmp_path: Path):
    pred = tmp_path / "pred"
    for s in ds.load_dataset(bench_dir):
        save_hands3d(pred / s.name / "hands3d.npz", _hands(s.gt3d.keypoints3d[:, :2]))
        save_keypoints(pred / s.name / "keypoints2d.npz", _perfect_2d(s))
    out = tmp_path / "eval"
    res = _run(["eval", "--dataset", str(bench_dir), "--pred", str(pred), "--out", str(out),
                "--exclude-joints", "paper"])  # fmt: skip
    assert res.exit_code == 0, res.output
    row = (out / "by_level.csv").read_text().splitlines()[1].split(",")
    header = (out / "by_level.csv").read_text().splitlines()[0].split(",")
    cells = dict(zip(header, row, strict=True))
    assert float(cells["mpjpe_mm"]) < EXACT_MM and float(cells["mpck2d"]) == 100.0
    out2 = tmp_path / "pipe"
    res = _run(["eval", "--dataset", str(bench_dir), "--pipeline", "default", "--out", str(out2),
                "--set", "optimizer.max_iterations=3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (out2 / "predictions" / "L0_synth_s0" / "hands3d.npz").is_file()
    assert (out2 / "pipeline_config.toml").is_file()


def test_cli_missing_predictions_scored_as_misses(bench_dir: Path, tmp_path: Path):
    pred = tmp_path / "empty"
    pred.mkdir()
    res = _run(["eval", "--dataset", str(bench_dir), "--pred", str(pred), "--out",
                str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "scored as all missed" in res.output


def test_cli_bad_input(bench_dir: Path, tmp_path: Path):
    broken = tmp_path / "broken" / "seq"
    broken.mkdir(parents=True)
    for f in (ds.SEQUENCE_FILE, ds.CALIBRATION_FILE):
        (broken / f).write_bytes((bench_dir / "L0_synth_s0" / f).read_bytes())
    (broken / ds.ANNOTATIONS_FILE).write_text(json.dumps({"images": [], "annotations": [{}]}))
    res = _run(["eval", "--check", str(broken.parent)])
    assert res.exit_code == 1 and "annotations[0]" in res.output
    res = _run(["eval", "--dataset", str(broken.parent), "--pred", str(tmp_path)])
    assert res.exit_code == 2 and "annotations[0]" in res.output
    res = _run(["eval", "--dataset", str(bench_dir), "--pred", str(tmp_path),
                "--exclude-joints", "pinky"])  # fmt: skip
    assert res.exit_code == 2 and "unknown joint" in res.output
    res = _run(["bench", "synth", "--out", str(tmp_path / "x"), "--level", "L7"])
    assert res.exit_code == 2


def test_eval_config_replace():
    cfg = replace(EvalConfig(), exclude_joints=("wrist",))
    assert cfg.joints.sum() == 20
