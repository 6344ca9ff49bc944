"""2D keypoint importers: OpenPose JSON, COCO-WholeBody JSON, anipose/handmocap arrays; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.cli.main import cli
from mvhand.core.camera import Rig
from mvhand.core.skeleton import COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT, N_JOINTS
from mvhand.core.synthetic import make_hand_motion, make_or_rig
from mvhand.errors import InputError
from mvhand.io.calib_convert import load_any_calibration
from mvhand.io.calibration import save_calibration
from mvhand.io.importers import (
    import_array,
    import_keypoints,
    match_inputs,
    read_coco_wholebody,  # fmt: skip
)
from mvhand.io.keypoints import load_keypoints

#: JSON keeps floats exactly (repr round trip); NPZ stores float32 (px).
EXACT_PX = 1e-9
FLOAT32_PX = 1e-3
N_FRAMES = 6


@pytest.fixture(scope="module")
def scene() -> tuple[Rig, np.ndarray, np.ndarray]:
    """A 12-camera rig, true 2D ``(C, T, 2, 21, 2)`` and a seeded missing mask ``(C, T, 2, 21)``."""
    rig = make_or_rig(12)
    truth = rig.project(make_hand_motion(N_FRAMES, seed=1))
    missing = np.random.default_rng(5).random(truth.shape[:-1]) < 0.1
    return rig, truth, missing


def _scores(missing: np.ndarray, seed: int = 2) -> np.ndarray:
    sc = np.random.default_rng(seed).uniform(0.2, 1.0, missing.shape)
    return np.where(missing, 0.0, sc)


def _flat(xy: np.ndarray, sc: np.ndarray) -> list[float]:
    """(J, 2) + (J,) to OpenPose/COCO's flat [x, y, c, ...]; missing joints are 0, 0, 0."""
    trip = np.concatenate([np.nan_to_num(xy), sc[:, None]], axis=1)
    trip[sc == 0] = 0.0
    return [float(v) for v in trip.ravel()]


def _write_openpose(root: Path, rig: Rig, truth, missing, skip_frame: int | None = None):
    scores = _scores(missing)
    for c, name in enumerate(rig.names):
        folder = root / name
        folder.mkdir(parents=True)
        for t in range(truth.shape[1]):
            if c == 0 and t == skip_frame:
                continue  # a frame file OpenPose never wrote
            real = {"person_id": [-1], "pose_keypoints_2d": [500.0, 500.0, 0.9] * 25,
                    "hand_left_keypoints_2d": _flat(truth[c, t, 0], scores[c, t, 0]),
                    "hand_right_keypoints_2d": _flat(truth[c, t, 1], scores[c, t, 1])}
            decoy = {"person_id": [-1], "pose_keypoints_2d": [10.0, 10.0, 0.1] * 25,
                     "hand_left_keypoints_2d": [1.0, 1.0, 0.1] * N_JOINTS,
                     "hand_right_keypoints_2d": []}  # fmt: skip
            people = [decoy, real] if t % 2 else [real, decoy]
            doc = {"version": 1.3, "people": people}
            (folder / f"{name}_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    return scores


def test_openpose_import_recovers_truth(tmp_path, scene):
    rig, truth, missing = scene
    scores = _write_openpose(tmp_path, rig, truth, missing, skip_frame=3)
    folders = sorted(tmp_path.iterdir())  # lexicographic: cam_1, cam_10, cam_11, cam_12, cam_2
    kp = import_keypoints("openpose", folders, rig, fps=30.0)
    assert kp.cameras == rig.names and kp.fps == 30.0
    assert kp.keypoints_px.shape == (12, N_FRAMES, 2, N_JOINTS, 2)
    expect = np.where(missing[..., None], np.nan, truth)
    expect[0, 3] = np.nan  # the file that was never written
    np.testing.assert_allclose(kp.keypoints_px, expect, atol=EXACT_PX)
    sc = scores.copy()
    sc[0, 3] = 0.0
    np.testing.assert_allclose(kp.scores, sc, atol=EXACT_PX)


def test_openpose_person_choice_and_hand_filter(tmp_path, scene):
    rig, truth, missing = scene
    _write_openpose(tmp_path, rig, truth, missing)
    folders = [tmp_path / n for n in rig.names]
    first = import_keypoints("openpose", folders, rig, person="first")
    # odd frames list the decoy first: its left hand sits at (1, 1) and its right is empty
    np.testing.assert_allclose(first.keypoints_px[:, 1, 0], 1.0)
    assert np.isnan(first.keypoints_px[:, 1, 1]).all()
    right = import_keypoints("openpose", folders, rig, hand="right")
    assert np.isnan(right.keypoints_px[:, :, 0]).all()
    assert np.isfinite(right.keypoints_px[:, :, 1]).mean() > 0.8


def _coco_doc(truth, missing, cam: int, gt: bool) -> dict:
    """One camera's COCO-WholeBody file; frames named so that only natural order is right."""
    scores = _scores(missing)
    T = truth.shape[1]
    ids = np.random.default_rng(cam).permutation(np.arange(100, 100 + T))
    images = [{"id": int(ids[t]), "file_name": f"frame_{t}.jpg"} for t in range(T)]
    anns = []
    for t in range(T):
        kps = np.zeros((133, 3))
        kps[:17] = [400.0, 400.0, 0.9]
        for h, idx in enumerate((COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT)):
            vis = np.where(missing[cam, t, h], 0.0, 2.0 if gt else scores[cam, t, h])
            kps[idx] = np.concatenate([np.nan_to_num(truth[cam, t, h]), vis[:, None]], axis=1)
            kps[idx][vis == 0] = 0.0
        ann = {"id": len(anns), "image_id": int(ids[t]), "keypoints": kps.ravel().tolist()}
        decoy = {"id": len(anns) + 1, "image_id": int(ids[t]),
                 "keypoints": [5.0, 5.0, 2.0 if gt else 0.05] * 133}  # fmt: skip
        if gt:  # a small person in the background, every joint labelled
            ann["area"], decoy["area"] = 90000.0, 900.0
        else:
            ann["score"], decoy["score"] = 0.9, 0.3
        anns += [decoy, ann]
    return {"images": images[::-1], "annotations": anns, "categories": [{"id": 1}]}


@pytest.mark.parametrize("gt", [False, True])
def test_coco_wholebody_import_recovers_truth(tmp_path, scene, gt):
    rig, truth, missing = scene
    rig4 = rig.subset(rig.names[:4])
    files = []
    for c, name in enumerate(rig4.names):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(_coco_doc(truth, missing, c, gt)))
    kp = import_keypoints("coco-wholebody", files[::-1], rig4)  # matched by name
    assert kp.cameras == rig4.names
    expect = np.where(missing[:4, ..., None], np.nan, truth[:4])
    np.testing.assert_allclose(kp.keypoints_px, expect, atol=EXACT_PX)
    want = np.where(missing[:4], 0.0, 1.0 if gt else _scores(missing)[:4])
    np.testing.assert_allclose(kp.scores, want, atol=EXACT_PX)


def test_coco_results_list_and_split_layout(tmp_path, scene):
    _, truth, missing = scene
    doc = _coco_doc(truth, missing, 0, gt=False)
    results = [a for a in doc["annotations"] if a["score"] > 0.5]
    (tmp_path / "res.json").write_text(json.dumps(results))
    kp, _, ids = read_coco_wholebody(tmp_path / "res.json")
    assert ids == sorted(ids)  # no file names: frames by image id
    split = [{"image_id": a["image_id"], "keypoints": a["keypoints"][:51],
              "lefthand_kpts": a["keypoints"][91 * 3:112 * 3],
              "righthand_kpts": a["keypoints"][112 * 3:133 * 3]} for a in results]  # fmt: skip
    (tmp_path / "split.json").write_text(json.dumps({"images": doc["images"],
                                                     "annotations": split}))  # fmt: skip
    kp_split, _, _ = read_coco_wholebody(tmp_path / "split.json", frame_order="id")
    np.testing.assert_allclose(kp_split, kp, atol=EXACT_PX, equal_nan=True)


def test_handmocap_array(shared_data):
    folder = shared_data / "handmocap"
    rig = load_any_calibration(folder / "calibration.toml", in_units="mm")
    raw = np.load(folder / "right_2d.npy")
    kp = import_keypoints("array", [folder / "right_2d.npy"], rig, fps=30)
    assert kp.cameras == ("0", "1", "2", "3")  # the calibration's camera names
    assert kp.keypoints_px.shape == (4, 598, 2, N_JOINTS, 2)
    assert np.isnan(kp.keypoints_px[:, :, 0]).all()  # one hand: the left is missing
    seen = ~(raw == -1).all(axis=-1)
    np.testing.assert_array_equal(np.isfinite(kp.keypoints_px[:, :, 1, :, 0]), seen)
    np.testing.assert_array_equal(kp.keypoints_px[:, :, 1][seen], raw[seen])
    np.testing.assert_array_equal(kp.scores[:, :, 1], seen.astype(float))
    # the right cameras: the study's 3D reprojects onto each camera's own 2D
    ref = np.load(folder / "right_3d_reference_0123.npy")
    err = np.linalg.norm(rig.project(ref) - kp.keypoints_px[:, :, 1], axis=-1)
    assert np.nanmedian(err, axis=(1, 2)).max() < 2.0
    left = import_keypoints("array", [folder / "right_2d.npy"], rig, hand="left")
    np.testing.assert_array_equal(left.keypoints_px[:, :, 0], kp.keypoints_px[:, :, 1])


def test_array_scores_and_nan(tmp_path):
    arr = np.random.default_rng(0).uniform(0, 100, (2, 5, 2, N_JOINTS, 3))
    arr[0, 1, 1, 3, :2] = np.nan
    arr[1, 2, 0, 4, :2] = -1
    np.save(tmp_path / "a.npy", arr)
    kp, sc = import_array(tmp_path / "a.npy")
    assert np.isnan(kp[0, 1, 1, 3]).all() and np.isnan(kp[1, 2, 0, 4]).all()
    assert sc[0, 1, 1, 3] == 0 and sc[1, 2, 0, 4] == 0
    ok = np.isfinite(kp[..., 0])
    np.testing.assert_allclose(sc[ok], np.clip(arr[..., 2], 0, 1)[ok])


def test_match_inputs_by_name_order_and_explicit(tmp_path):
    names = tuple(f"cam_{i}" for i in range(1, 13))
    lexi = sorted(tmp_path / n for n in names)
    assert [n for _, n in match_inputs(lexi, names)] == [p.name for p in lexi]
    other = [tmp_path / f"view{i}" for i in (1, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9)]
    pairs = match_inputs(other, names)
    assert [(p.name, n) for p, n in pairs][:3] == [("view1", "cam_1"), ("view2", "cam_2"),
                                                   ("view3", "cam_3")]  # fmt: skip
    assert match_inputs(other[:2], names, ["cam_5", "cam_3"])[1] == (other[1], "cam_3")
    with pytest.raises(InputError, match="--cameras"):
        match_inputs(other[:2], names)
    with pytest.raises(InputError, match="not in the calibration"):
        match_inputs(other[:1], names, ["cam_99"])


def test_bad_inputs(tmp_path, scene):
    rig = scene[0].subset(["cam_1"])
    empty = tmp_path / "cam_1"
    empty.mkdir()
    with pytest.raises(InputError, match="no \\*.json"):
        import_keypoints("openpose", [empty], rig)
    (empty / "f_0_keypoints.json").write_text("{not json")
    with pytest.raises(InputError, match="f_0_keypoints.json: not valid JSON"):
        import_keypoints("openpose", [empty], rig)
    (empty / "f_0_keypoints.json").write_text(json.dumps(
        {"people": [{"hand_right_keypoints_2d": [1.0] * 60}]}))
    with pytest.raises(InputError, match="has 60 values, expected 63"):
        import_keypoints("openpose", [empty], rig)
    coco = tmp_path / "cam_1.json"
    coco.write_text(json.dumps([{"image_id": 1, "keypoints": [1.0] * 51}]))
    with pytest.raises(InputError, match="17 keypoints; COCO-WholeBody needs 133"):
        import_keypoints("coco-wholebody", [coco], rig)
    np.save(tmp_path / "bad.npy", np.zeros((1, 4, 17, 2)))
    with pytest.raises(InputError, match="bad.npy: array shape"):
        import_keypoints("array", [tmp_path / "bad.npy"], rig)
    np.save(tmp_path / "two.npy", np.zeros((2, 4, 21, 2)))
    with pytest.raises(InputError, match="2 cameras, the calibration 1"):
        import_keypoints("array", [tmp_path / "two.npy"], rig)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("args", [["keypoints"], ["keypoints", "import"], ["keypoints", "info"]])
def test_cli_help(args):
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_cli_import_and_info(tmp_path, scene):
    rig, truth, missing = scene
    rig3 = rig.subset(["cam_2", "cam_10", "cam_11"])
    calib = tmp_path / "rig.toml"
    save_calibration(calib, rig3)
    _write_openpose(tmp_path / "op", rig, truth, missing)
    folders = [str(tmp_path / "op" / n) for n in ("cam_11", "cam_2", "cam_10")]
    out = tmp_path / "kp.npz"
    runner = CliRunner()
    result = runner.invoke(cli, ["keypoints", "import", "--format", "openpose", *folders,
                                 "--calib", str(calib), "--out", str(out), "--fps", "25"])
    assert result.exit_code == 0, result.output
    kp = load_keypoints(out)
    assert kp.cameras == rig3.names and kp.fps == 25.0
    idx = [rig.index(n) for n in rig3.names]
    expect = np.where(missing[idx, ..., None], np.nan, truth[idx])
    np.testing.assert_allclose(kp.keypoints_px, expect, atol=FLOAT32_PX)
    result = runner.invoke(cli, ["keypoints", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "cam_10" in result.output and f"{N_FRAMES} frames" in result.output
    # more camera names than inputs: a short error, exit code 2
    result = runner.invoke(cli, ["keypoints", "import", "--format", "openpose", folders[0],
                                 "--calib", str(calib), "--out", str(out),
                                 "--cameras", "cam_2,cam_10"])
    assert result.exit_code == 2 and "error:" in result.output
    assert "Traceback" not in result.output
