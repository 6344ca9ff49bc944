"""The benchmark dataset format: round trip, loaders, and the validator's reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mvhand.bench import dataset as ds
from mvhand.bench.synth import SynthConfig, synthesize
from mvhand.bench.validate import check_dataset
from mvhand.errors import InputError
from mvhand.io.calibration import save_calibration

ROUNDTRIP_PX = 1e-9


@pytest.fixture(scope="module")
def tiny_seq():
    return synthesize(SynthConfig(level="L3", n_cameras=4, n_frames=30, n_keyframes=5, seed=3))


@pytest.fixture
def seq_dir(tmp_path: Path, tiny_seq) -> Path:
    s = tiny_seq
    return ds.write_sequence(tmp_path / "data" / s.info.name, s.info, s.rig, s.annotations,
                             s.gt3d, s.detections)  # fmt: skip


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _messages(problems) -> list[str]:
    return [str(p) for p in problems]


def test_roundtrip(seq_dir: Path, tiny_seq):
    seq = ds.load_sequence(seq_dir)
    ann, ref = seq.annotations, tiny_seq.annotations
    assert seq.info == tiny_seq.info
    assert seq.rig.names == tiny_seq.rig.names
    np.testing.assert_array_equal(ann.frames, ref.frames)
    np.testing.assert_array_equal(ann.visibility, ref.visibility)
    np.testing.assert_array_equal(ann.annotated, ref.annotated)
    np.testing.assert_allclose(ann.keypoints_px, ref.keypoints_px, atol=ROUNDTRIP_PX)
    np.testing.assert_allclose(ann.area_px2, ref.area_px2, rtol=1e-12)
    assert ann.hands == ("left", "right", "p1_left", "p1_right")
    np.testing.assert_array_equal(seq.gt3d.keypoints3d, tiny_seq.gt3d.keypoints3d)
    det = seq.detections()
    np.testing.assert_allclose(det.keypoints_px, tiny_seq.detections.keypoints_px, atol=1e-3)
    assert check_dataset(seq_dir.parent) == []


def test_coco_layout(seq_dir: Path):
    data = _load_json(seq_dir / ds.ANNOTATIONS_FILE)
    assert data["categories"][0]["keypoints"][0] == "wrist"
    ann = data["annotations"][0]
    assert len(ann["keypoints"]) == 63 and ann["hand"] in ("left", "right")
    assert set(ann["keypoints"][2::3]) <= {0, 1, 2}
    image = next(i for i in data["images"] if i["id"] == ann["image_id"])
    assert {"camera", "frame", "width", "height"} <= set(image)


def test_gt_dense_units(tiny_seq):
    dense = tiny_seq.gt3d.dense(30, "mm")
    np.testing.assert_allclose(dense, tiny_seq.gt3d.keypoints3d * 1000.0)


def test_malformed_annotation_names_file_and_entry(seq_dir: Path):
    path = seq_dir / ds.ANNOTATIONS_FILE
    data = _load_json(path)
    data["annotations"][2]["keypoints"] = data["annotations"][2]["keypoints"][:-3]
    data["annotations"][4]["hand"] = "middle"
    data["annotations"][5]["keypoints"][2] = 7
    path.write_text(json.dumps(data))
    msgs = _messages(check_dataset(seq_dir))
    assert any(str(path) in m and "annotations[2]" in m and "63 numbers" in m for m in msgs)
    assert any("annotations[4]" in m and ".hand" in m for m in msgs)
    assert any("annotations[5]" in m and "visibility of joint wrist" in m for m in msgs)
    with pytest.raises(InputError, match=r"annotations\[2\]"):
        ds.load_sequence(seq_dir)


def test_bad_json_and_missing_files(tmp_path: Path, seq_dir: Path):
    (seq_dir / ds.ANNOTATIONS_FILE).write_text('{"images": [}')
    msgs = _messages(check_dataset(seq_dir))
    assert any("not valid JSON" in m and "line 1" in m for m in msgs)
    empty = tmp_path / "empty_seq"
    empty.mkdir()
    (empty / ds.SEQUENCE_FILE).write_text('[sequence]\nlevel = "L9"\nfps = -1\nn_frames = 3\n')
    msgs = _messages(check_dataset(empty))
    assert any("sequence.level" in m for m in msgs)
    assert any("sequence.fps" in m for m in msgs)
    assert any(ds.CALIBRATION_FILE in m and "not found" in m for m in msgs)


def test_validator_catches_camera_disagreement(seq_dir: Path, tiny_seq):
    path = seq_dir / ds.ANNOTATIONS_FILE
    data = _load_json(path)
    data["images"][0]["camera"] = "cam_99"
    data["images"][1]["width"] = 1920
    path.write_text(json.dumps(data))
    msgs = _messages(check_dataset(seq_dir))
    assert any("images[0]" in m and "cam_99" in m and "not in the calibration" in m for m in msgs)
    assert any("images[1]" in m and "1920x3840 disagrees" in m for m in msgs)


def test_validator_catches_wrong_calibration(seq_dir: Path, tiny_seq):
    # a calibration from another rig: cameras exist, but the geometry does not fit the labels
    from mvhand.bench.synth import make_bench_rig

    save_calibration(seq_dir / ds.CALIBRATION_FILE, make_bench_rig(4, seed=99))
    msgs = _messages(check_dataset(seq_dir))
    assert any("reprojects" in m and "disagree" in m for m in msgs)


def test_validator_checks_detections_cameras_and_frames(seq_dir: Path, tiny_seq):
    from mvhand.core.data import Keypoints2D
    from mvhand.io.keypoints import save_keypoints

    d = tiny_seq.detections
    save_keypoints(seq_dir / ds.DETECTIONS_FILE,
                   Keypoints2D(d.keypoints_px[:, :20], d.scores[:, :20],
                               ("cam_1", "cam_2", "cam_3", "camX")))  # fmt: skip
    msgs = _messages(check_dataset(seq_dir))
    assert any("camX not in the calibration" in m for m in msgs)
    assert any("20 frames" in m and "n_frames = 30" in m for m in msgs)


def test_gt3d_shape_error(seq_dir: Path):
    np.savez(seq_dir / ds.GT3D_FILE, keypoints3d=np.zeros((30, 2, 21, 3)), units="m")
    msgs = _messages(check_dataset(seq_dir))
    assert any("keypoints3d" in m and "(T, 4, 21, 3)" in m for m in msgs)


def test_empty_dataset(tmp_path: Path):
    msgs = _messages(check_dataset(tmp_path))
    assert any("no sequence folders" in m for m in msgs)
    with pytest.raises(InputError, match="no sequence folders"):
        ds.load_dataset(tmp_path)


def test_manifest_lists_sequences(tmp_path: Path):
    import shutil

    from mvhand.bench.synth import write_benchmark

    cfg = SynthConfig(n_cameras=3, n_frames=12, n_keyframes=2, mocap_path=None)
    write_benchmark(tmp_path, ("L0",), cfg)
    write_benchmark(tmp_path, ("L2",), cfg)  # merged into the same manifest
    text = (tmp_path / ds.DATASET_FILE).read_text()
    assert "L0_synth_s0" in text and "L2_synth_s0" in text and "--cameras 3" in text
    assert check_dataset(tmp_path) == []
    (tmp_path / "L2_synth_s0" / ds.SEQUENCE_FILE).write_text(
        (tmp_path / "L2_synth_s0" / ds.SEQUENCE_FILE).read_text().replace('"L2"', '"L1"'))
    shutil.rmtree(tmp_path / "L0_synth_s0")
    msgs = _messages(check_dataset(tmp_path))
    assert any("sequences[0]" in m and "'L0_synth_s0' not found" in m for m in msgs)
    assert any("sequences[1]" in m and "disagrees" in m for m in msgs)
