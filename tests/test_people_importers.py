"""Multi-person importers (COCO keypoint results + image table, OpenPose with several people)
and the ``mvhand people`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mvhand.bench.synth import SynthConfig, score_people, synthesize_people
from mvhand.cli.main import cli
from mvhand.core.people import SOURCES, Detections2D
from mvhand.core.skeleton import COCO_WHOLEBODY_LEFT, COCO_WHOLEBODY_RIGHT
from mvhand.errors import InputError
from mvhand.io.calibration import save_calibration
from mvhand.io.importers import (
    _OPENPOSE_BODY_TO_COCO17,
    import_coco_people,
    import_openpose_people,
    read_image_table,
)


@pytest.fixture(scope="module")
def seq():
    return synthesize_people(SynthConfig(level="L3", n_cameras=6, n_frames=24, seed=3))


def _trip(xy: np.ndarray, sc: np.ndarray) -> np.ndarray:
    t = np.concatenate([np.nan_to_num(xy), sc[:, None]], axis=1)
    t[sc <= 0] = 0.0
    return t


def _image_id(c: int, t: int) -> int:
    return int(1000 * (c + 1) + t)


def write_coco(det: Detections2D, path: Path, table: Path, wholebody: bool = True) -> None:
    """Each row as a COCO(-WholeBody) result, and the image table as CSV."""
    out = []
    for n in range(len(det)):
        kps = np.zeros((133 if wholebody else 17, 3))
        kps[:17] = _trip(det.body_px[n], det.body_scores[n])
        if wholebody:
            kps[COCO_WHOLEBODY_LEFT] = _trip(det.hands_px[n, 0], det.hands_scores[n, 0])
            kps[COCO_WHOLEBODY_RIGHT] = _trip(det.hands_px[n, 1], det.hands_scores[n, 1])
        out.append({"image_id": _image_id(det.camera[n], det.frame[n]),
                    "keypoints": kps.reshape(-1).tolist(), "score": 0.9})  # fmt: skip
    path.write_text(json.dumps(out))
    lines = ["image_id,camera,frame"] + [f"{_image_id(c, t)},{name},{t}"
                                         for c, name in enumerate(det.cameras)
                                         for t in range(det.n_frames)]  # fmt: skip
    table.write_text("\n".join(lines) + "\n")


def _same_rows(a: Detections2D, b: Detections2D, hands: bool = True) -> None:
    assert len(a) == len(b) and a.cameras == b.cameras and a.n_frames == b.n_frames
    np.testing.assert_array_equal(a.camera, b.camera)
    np.testing.assert_array_equal(a.frame, b.frame)
    np.testing.assert_allclose(a.body_px, b.body_px, equal_nan=True)
    np.testing.assert_allclose(a.body_scores, b.body_scores)
    if hands:
        np.testing.assert_allclose(a.hands_px, b.hands_px, equal_nan=True)
        np.testing.assert_allclose(a.hands_scores, b.hands_scores)
    assert (b.source == SOURCES.index("import")).all()


def test_coco_wholebody_round_trip(tmp_path, seq):
    det = seq.detections
    write_coco(det, tmp_path / "res.json", tmp_path / "table.csv")
    got = import_coco_people(tmp_path / "res.json", read_image_table(tmp_path / "table.csv"),
                             seq.rig, fps=30.0)  # fmt: skip
    _same_rows(det, got)


def test_coco17_bodies_only(tmp_path, seq):
    det = seq.detections
    write_coco(det, tmp_path / "res.json", tmp_path / "table.csv", wholebody=False)
    got = import_coco_people(tmp_path / "res.json", read_image_table(tmp_path / "table.csv"),
                             seq.rig)  # fmt: skip
    _same_rows(det, got, hands=False)
    assert np.isnan(got.hands_px).all()


def test_image_table_json_and_bad_tables(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps([{"image_id": 5, "camera": "cam_1", "frame": 2}]))
    assert read_image_table(p) == {5: ("cam_1", 2)}
    p.write_text(json.dumps([{"image_id": 5, "camera": "cam_1", "frame": 2}] * 2))
    with pytest.raises(InputError, match="listed twice"):
        read_image_table(p)
    q = tmp_path / "t.csv"
    q.write_text("id,cam\n1,a\n")
    with pytest.raises(InputError, match="image_id,camera,frame"):
        read_image_table(q)


def test_unmapped_image_ids_are_named(tmp_path, seq):
    det = seq.detections
    write_coco(det, tmp_path / "res.json", tmp_path / "table.csv")
    table = read_image_table(tmp_path / "table.csv")
    missing = sorted(table)[:2]
    for k in missing:
        del table[k]
    with pytest.raises(InputError) as err:
        import_coco_people(tmp_path / "res.json", table, seq.rig)
    msg = str(err.value)
    assert "no camera and frame" in msg and all(str(k) in msg for k in missing)


def test_table_camera_not_in_calibration(tmp_path, seq):
    write_coco(seq.detections, tmp_path / "res.json", tmp_path / "table.csv")
    table = {k: ("nope", t) for k, (_, t) in read_image_table(tmp_path / "table.csv").items()}
    with pytest.raises(InputError, match="nope"):
        import_coco_people(tmp_path / "res.json", table, seq.rig)


def test_wrong_keypoint_count(tmp_path, seq):
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"image_id": 1001, "keypoints": [1.0] * 30, "score": 1.0}]))
    with pytest.raises(InputError, match="10 keypoints"):
        import_coco_people(p, {1001: ("cam_1", 0)}, seq.rig)


def write_openpose(det: Detections2D, root: Path) -> list[Path]:
    """One folder per camera, BODY_25 bodies, every row of a frame as one person."""
    inverse = _OPENPOSE_BODY_TO_COCO17[25]
    folders = []
    for c, name in enumerate(det.cameras):
        folder = root / name
        folder.mkdir()
        for t in range(det.n_frames):
            people = []
            for n in np.flatnonzero((det.camera == c) & (det.frame == t)):
                pose = np.zeros((25, 3))
                pose[inverse] = _trip(det.body_px[n], det.body_scores[n])
                people.append({
                    "pose_keypoints_2d": pose.reshape(-1).tolist(),
                    "hand_left_keypoints_2d": _trip(det.hands_px[n, 0],
                                                    det.hands_scores[n, 0]).reshape(-1).tolist(),
                    "hand_right_keypoints_2d": _trip(det.hands_px[n, 1],
                                                     det.hands_scores[n, 1]).reshape(-1).tolist(),
                })  # fmt: skip
            (folder / f"frame_{t:06d}_keypoints.json").write_text(json.dumps({"people": people}))
        folders.append(folder)
    return folders


def test_openpose_several_people_round_trip(tmp_path, seq):
    det = seq.detections
    folders = write_openpose(det, tmp_path)
    got = import_openpose_people(folders[::-1], seq.rig)  # matched by folder name
    order = np.lexsort((np.arange(len(det)), det.frame, det.camera))
    _same_rows(det.take(order), got)


def test_openpose_bad_body_layout(tmp_path, seq):
    folder = tmp_path / "cam_1"
    folder.mkdir()
    (folder / "0_keypoints.json").write_text(json.dumps(
        {"people": [{"pose_keypoints_2d": [1.0] * 30}]}))  # fmt: skip
    with pytest.raises(InputError, match="BODY_25"):
        import_openpose_people([folder], seq.rig.subset(["cam_1"]))


def test_cli_people_help():
    res = CliRunner().invoke(cli, ["people", "--help"])
    assert res.exit_code == 0 and "--image-table" in res.output


def test_cli_people_coco_end_to_end(tmp_path, seq):
    det = seq.detections
    write_coco(det, tmp_path / "res.json", tmp_path / "table.csv")
    save_calibration(tmp_path / "calib.toml", seq.rig)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["people", "--calib", str(tmp_path / "calib.toml"),
                                   "--format", "coco", "--image-table",
                                   str(tmp_path / "table.csv"), "--out", str(out),
                                   str(tmp_path / "res.json")])  # fmt: skip
    assert res.exit_code == 0, res.output
    with np.load(out / "hands3d_people.npz") as z:
        hands, ids = z["hands3d"], z["person_ids"]
        hand_person, side = z["det_hand_person"], z["det_side"]
    assert hands.shape[0] == det.n_frames and hands.shape[2:] == (2, 21, 3)
    assert len(ids) == hands.shape[1] >= 3
    score = score_people(seq, hands, hand_person, side)
    assert np.nanmax(score["mpjpe_mm"][:3]) < 10.0
    report = json.loads((out / "report.json").read_text())
    assert report["people_found"] == len(ids)
    assert "warnings" in report and (out / "config.toml").is_file()


def test_cli_people_coco_needs_table(tmp_path, seq):
    save_calibration(tmp_path / "calib.toml", seq.rig)
    (tmp_path / "r.json").write_text("[]")
    res = CliRunner().invoke(cli, ["people", "--calib", str(tmp_path / "calib.toml"),
                                   "--format", "coco", "--out", str(tmp_path / "o"),
                                   str(tmp_path / "r.json")])  # fmt: skip
    assert res.exit_code == 2 and "--image-table" in res.output


def test_cli_people_openpose_end_to_end(tmp_path, seq):
    folders = write_openpose(seq.detections, tmp_path)
    save_calibration(tmp_path / "calib.toml", seq.rig)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["people", "--calib", str(tmp_path / "calib.toml"),
                                   "--format", "openpose", "--out", str(out),
                                   *map(str, folders)])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["people_found"] >= 3 and "people found" in res.output


def test_people_file_round_trip(tmp_path, seq):
    from mvhand.io.people import load_people, save_people
    from mvhand.stages.people import reconstruct_people

    det = seq.detections
    res = reconstruct_people(seq.rig, det)
    save_people(tmp_path / "p.npz", res, det, frames=range(10, 10 + det.n_frames), primary=1,
                run_id="abc")  # fmt: skip
    back = load_people(tmp_path / "p.npz")
    for k in ("camera", "frame", "body_px", "body_scores", "hands_px", "hands_scores", "source"):
        np.testing.assert_array_equal(getattr(back.detections, k), getattr(det, k))
    assert back.detections.cameras == det.cameras and back.detections.fps == det.fps
    for k in ("hands3d", "body3d", "person_ids", "det_person", "det_hand_person", "det_side"):
        np.testing.assert_array_equal(getattr(back.result, k), getattr(res, k))
    assert back.result.units == res.units and back.primary == 1 and back.run_id == "abc"
    np.testing.assert_array_equal(back.frames, np.arange(10, 10 + det.n_frames))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        load_people(tmp_path / "bad.npz")


def _triangulate_people(tmp_path: Path, seq, *extra: str, out: str = "tri"):
    save_calibration(tmp_path / "calib.toml", seq.rig)
    return CliRunner().invoke(cli, ["triangulate", "--people", "--calib",
                                    str(tmp_path / "calib.toml"), "--out",
                                    str(tmp_path / out), *extra])  # fmt: skip


def test_cli_triangulate_people_coco_end_to_end(tmp_path, seq):
    det = seq.detections
    write_coco(det, tmp_path / "res.json", tmp_path / "table.csv")
    coco = ["--format", "coco", "--image-table", str(tmp_path / "table.csv"),
            str(tmp_path / "res.json")]  # fmt: skip
    res = _triangulate_people(tmp_path, seq, *coco)
    assert res.exit_code == 0, res.output
    out = tmp_path / "tri"
    assert {p.name for p in out.iterdir()} >= {"hands3d_people.npz", "report.json",
                                               "config.toml"}  # fmt: skip
    assert not (out / "hands3d.npz").exists()
    with np.load(out / "hands3d_people.npz") as z:
        got = {k: z[k] for k in ("hands3d", "person_ids", "det_hand_person", "det_side")}
    score = score_people(seq, got["hands3d"], got["det_hand_person"], got["det_side"])
    assert (score["match"][:3] >= 0).all()  # the three people at the table are found
    assert np.nanmax(score["mpjpe_mm"][:3]) < 10.0 and score["id_switches"] == 0
    assert score["idf1"] > 0.9
    report = json.loads((out / "report.json").read_text())
    assert report["people_found"] == len(got["person_ids"]) >= 3
    # the same code as `mvhand people`: the same result
    save_calibration(tmp_path / "calib.toml", seq.rig)
    ref = CliRunner().invoke(cli, ["people", "--calib", str(tmp_path / "calib.toml"), "--out",
                                   str(tmp_path / "ppl"), *coco])  # fmt: skip
    assert ref.exit_code == 0, ref.output
    with np.load(tmp_path / "ppl" / "hands3d_people.npz") as z:
        np.testing.assert_array_equal(z["hands3d"], got["hands3d"])
        np.testing.assert_array_equal(z["det_hand_person"], got["det_hand_person"])
    body = [(d / "config.toml").read_text().split("\n", 1)[1] for d in (tmp_path / "ppl", out)]
    assert body[0] == body[1]  # after the run-id line


def test_cli_triangulate_people_openpose_settings(tmp_path, seq):
    folders = write_openpose(seq.detections, tmp_path)
    names = ",".join(seq.detections.cameras[::-1])
    res = _triangulate_people(tmp_path, seq, "--format", "openpose", "--fps", "25",
                              "--cameras", names, "--set", "max_people=2",
                              *map(str, folders[::-1]))  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "tri" / "report.json").read_text())
    assert report["people_found"] == 2  # the setting reached the people stage
    assert any("max_people = 2" in w for w in report["warnings"])
    assert "max_people = 2" in (tmp_path / "tri" / "config.toml").read_text()
    with np.load(tmp_path / "tri" / "hands3d_people.npz") as z:
        assert float(z["fps"]) == 25.0


def test_cli_triangulate_people_unmapped_image_ids(tmp_path, seq):
    write_coco(seq.detections, tmp_path / "res.json", tmp_path / "table.csv")
    lines = (tmp_path / "table.csv").read_text().splitlines()
    dropped = [int(line.split(",")[0]) for line in lines[1:3]]
    (tmp_path / "table.csv").write_text("\n".join(lines[:1] + lines[3:]) + "\n")
    res = _triangulate_people(tmp_path, seq, "--format", "coco", "--image-table",
                              str(tmp_path / "table.csv"), str(tmp_path / "res.json"))
    assert res.exit_code == 2, res.output
    msg = [line for line in res.output.splitlines() if line.strip()]
    assert len(msg) == 1 and "Traceback" not in res.output
    assert "no camera and frame" in msg[0] and all(str(k) in msg[0] for k in dropped)
    assert not (tmp_path / "tri" / "hands3d_people.npz").exists()


@pytest.mark.parametrize("args, needle", [
    (["--people", "--keypoints", "kp.npz", "--format", "coco", "r.json"], "--people takes"),
    (["--people", "r.json"], "--format"),
    ([], "--keypoints FILE is required"),
    (["--keypoints", "kp.npz", "--format", "coco"], "go with --people"),
])  # fmt: skip
def test_cli_triangulate_people_usage(tmp_path, seq, args, needle):
    save_calibration(tmp_path / "calib.toml", seq.rig)
    res = CliRunner().invoke(cli, ["triangulate", "--calib", str(tmp_path / "calib.toml"),
                                   "--out", str(tmp_path / "o"), *args])  # fmt: skip
    assert res.exit_code == 2 and needle in res.output, res.output


def test_cli_triangulate_help_says_what_people_does():
    res = CliRunner().invoke(cli, ["triangulate", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "--people" in text and "hands3d_people.npz" in text and "mvhand people" in text
