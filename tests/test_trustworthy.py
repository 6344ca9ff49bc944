"""Issue 9's battery: correct fits after left/right repair, one units rule, configs that replay
a run, stale files, and every bad input a one-line error or a warning (never a traceback, never
a silent all-NaN exit 0)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner
from test_run_pipeline import FAST, Factory, FakePerson, Scene, make_scene_dir, run

from mvhand.cli.main import cli
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.synthetic import DetectorNoise, make_hand_motion, make_or_rig, render_detections
from mvhand.io.calib_convert import load_rig
from mvhand.io.calibration import save_calibration
from mvhand.io.keypoints import save_keypoints
from mvhand.io.results import load_hands3d
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline

#: The kinematic fit inside a run must match a fit of the same 3D within this (mm).
FIT_AGREEMENT_MM = 1.0
SWAP_FRAMES = range(5, 15)


@pytest.fixture(scope="module")
def detections(tmp_path_factory):
    """A 6-camera synthetic rig and noisy detections of two hands."""
    root = tmp_path_factory.mktemp("det")
    rig = make_or_rig(6, seed=1)
    kp = render_detections(rig, make_hand_motion(30, seed=4), DetectorNoise(), seed=2)
    save_calibration(root / "cams.toml", rig)
    save_keypoints(root / "kp.npz", kp)
    return rig, kp, root



def test_fit_uses_the_repaired_2d(detections, tmp_path):
    """Camera 2 has left and right exchanged in 10 frames: the 3D stage repairs it, and the fit
    (as ``mvhand run`` and ``mvhand fit --keypoints`` do it) must use the repaired views."""
    from mvhand.fit import FitConfig, run_fit
    from mvhand.pipeline.fit import fit_inputs
    from mvhand.pipeline.triangulate import triangulate_to_folder

    rig, kp, root = detections
    px, sc = kp.keypoints_px.copy(), kp.scores.copy()
    frames = list(SWAP_FRAMES)
    px[1, frames], sc[1, frames] = px[1, frames][:, ::-1], sc[1, frames][:, ::-1]
    raw = Keypoints2D(px, sc, kp.cameras, fps=kp.fps)
    rec, _ = triangulate_to_folder(raw, rig, tmp_path / "out")
    h3 = rec.hands3d
    assert h3.views.swapped[1, frames].all()  # the repair found the swapped views
    cfg = FitConfig(model="kinematic")
    alone = run_fit(h3, cfg)  # 3D only
    kp_fit, rig_fit = fit_inputs(h3, rig)
    with_2d = run_fit(h3, cfg, kp_fit, rig_fit)
    wrong = run_fit(h3, cfg, raw, rig)  # what the run used to do: the raw, swapped 2D
    for hand in ("left", "right"):
        ref = np.nanmean(alone.hands[hand].fit_error[frames]) * 1000
        good = np.nanmean(with_2d.hands[hand].fit_error[frames]) * 1000
        bad = np.nanmean(wrong.hands[hand].fit_error[frames]) * 1000
        assert abs(good - ref) < FIT_AGREEMENT_MM, (hand, good, ref)
        assert bad > good + 5 * FIT_AGREEMENT_MM, (hand, bad, good)


def _mm_file_without_units(rig: Rig, path: Path) -> Path:
    save_calibration(path, rig.to_units("mm"))
    data = __import__("tomllib").loads(path.read_text())
    data.pop("metadata", None)
    path.write_text(tomli_w.dumps(data))
    return path


def test_run_and_triangulate_read_a_calibration_the_same_way(scene_dir, tmp_path):
    scene, root = scene_dir
    calib = _mm_file_without_units(scene.rig, tmp_path / "mm.toml")
    res = run_pipeline(calib, root / "videos", tmp_path / "run", load_pipeline(None, FAST),
                       units="mm", backend_factory=Factory(scene))  # fmt: skip
    runner = CliRunner()
    out = runner.invoke(cli, ["triangulate", "--calib", str(calib), "--keypoints",
                              str(tmp_path / "run" / "keypoints2d.npz"), "--units", "mm",
                              "--set", "optimizer.enabled=false", "--out", str(tmp_path / "tri")])
    assert out.exit_code == 0, out.output
    a = load_rig(tmp_path / "run" / "calibration.toml")
    b = load_rig(tmp_path / "tri" / "calibration.toml")
    assert a.units == b.units == "mm"
    np.testing.assert_allclose(a.extrinsics, b.extrinsics)
    np.testing.assert_allclose(a[0].center_world, scene.rig[0].center_world * 1000, atol=1e-9)
    h_run, h_tri = load_hands3d(tmp_path / "run" / "hands3d.npz"), load_hands3d(
        tmp_path / "tri" / "hands3d.npz")
    # the same up to keypoints2d.npz's float32 storage of the 2D
    np.testing.assert_allclose(h_run.keypoints3d, h_tri.keypoints3d, atol=1e-3)
    assert res.report["reconstruction"]["units"] == "mm"


def test_saved_config_replays_frames_units_and_overlay(scene_dir, tmp_path):
    scene, root = scene_dir
    first = run(scene, root, tmp_path / "a", frames=(4, 20), units="mm")
    cfg = load_pipeline(tmp_path / "a" / "config.toml")
    assert (cfg.video.start, cfg.video.stop, cfg.units, cfg.overlay) == (4, 20, "mm", False)
    again = run_pipeline(root / "cams.toml", root / "videos", tmp_path / "b", cfg,
                         backend_factory=Factory(scene))  # fmt: skip
    np.testing.assert_array_equal(again.hands3d.keypoints3d, first.hands3d.keypoints3d)
    assert again.report["inputs"]["frames"] == first.report["inputs"]["frames"]


def test_a_shorter_rerun_leaves_no_stale_fit(scene_dir, tmp_path):
    scene, root = scene_dir
    out = tmp_path / "out"
    run(scene, root, out, FAST + ["fit.enabled=true", "fit.model=kinematic"])
    assert (out / "hand_model.npz").is_file()
    run(scene, root, out, frames=(0, 10))
    assert not (out / "hand_model.npz").exists() and not (out / "joint_angles.csv").exists()
    assert load_hands3d(out / "hands3d.npz").n_frames == 10
    report = json.loads((out / "report.json").read_text())
    assert str(load_run_id(out)) == report["run_id"]


def load_run_id(out: Path) -> str:
    with np.load(out / "hands3d.npz") as d:
        return str(d["run_id"])


# ------------------------------------------------------------------ bad input, CLI level


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene_dir(tmp_path_factory.mktemp("scene"))


def _tri(root: Path, kp_path: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["triangulate", "--calib", str(root / "cams.toml"),
                                    "--keypoints", str(kp_path), "--out", str(out), *extra])


def _one_line_error(res, *needles: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    for n in needles:
        assert n in errors[0], errors[0]


def test_triangulate_never_exits_0_with_nothing(detections, tmp_path, caplog):
    rig, kp, root = detections
    cases = {
        "all missing": Keypoints2D(np.full_like(kp.keypoints_px, np.nan), kp.scores, kp.cameras),
        "score": Keypoints2D(kp.keypoints_px, np.full_like(kp.scores, np.nan), kp.cameras),
        "two cameras": kp.subset_cameras(kp.cameras[:1]),
    }
    for needle, bad in cases.items():
        path = tmp_path / f"{needle}.npz"
        save_keypoints(path, bad)
        res = _tri(root, path, tmp_path / needle)
        _one_line_error(res, needle)
        assert not (tmp_path / needle / "hands3d.npz").exists()
    # negative scores beside valid points: a warning, then the clear reason
    neg = tmp_path / "neg.npz"
    np.savez(neg, keypoints=kp.keypoints_px, scores=-kp.scores, cameras=np.array(kp.cameras))
    res = _tri(root, neg, tmp_path / "neg")
    assert "negative score" in caplog.text  # logged: the console and report show it
    _one_line_error(res, "score")


def test_swapped_camera_names_or_a_moved_camera_are_warned_about(detections, tmp_path):
    rig, kp, root = detections
    res = _tri(root, root / "kp.npz", tmp_path / "good")
    assert res.exit_code == 0 and json.loads(
        (tmp_path / "good" / "report.json").read_text())["warnings"] == []
    names = list(kp.cameras)
    names[1], names[4] = names[4], names[1]
    swapped = tmp_path / "swapped.npz"
    save_keypoints(swapped, Keypoints2D(kp.keypoints_px, kp.scores, tuple(names)))
    res = _tri(root, swapped, tmp_path / "sw")
    assert res.exit_code == 0
    warnings = " ".join(json.loads((tmp_path / "sw" / "report.json").read_text())["warnings"])
    assert f"camera '{names[1]}'" in warnings and f"camera '{names[4]}'" in warnings
    assert "4 warning(s)" in res.output + getattr(res, "stderr", "")
    # one camera's translation wrong by 30 cm
    cams = list(rig.cameras)
    cams[2] = replace(cams[2], t_cam_world=cams[2].t_cam_world + np.array([0.3, 0.0, 0.0]))
    save_calibration(tmp_path / "moved.toml", Rig(tuple(cams), rig.units))
    res = CliRunner().invoke(cli, ["triangulate", "--calib", str(tmp_path / "moved.toml"),
                                   "--keypoints", str(root / "kp.npz"), "--out",
                                   str(tmp_path / "mv")])  # fmt: skip
    warnings = " ".join(json.loads((tmp_path / "mv" / "report.json").read_text())["warnings"])
    assert f"camera '{rig.names[2]}'" in warnings


def test_ordinary_mistakes_are_one_line_errors(detections, tmp_path):
    rig, kp, root = detections
    afile = tmp_path / "afile"
    afile.write_text("")
    _one_line_error(_tri(root, root / "kp.npz", afile / "out"), "is a file")
    np.save(tmp_path / "raw.npy", kp.keypoints_px)
    _one_line_error(_tri(root, tmp_path / "raw.npy", tmp_path / "o1"), ".npy")
    _one_line_error(_tri(root, root / "kp.npz", tmp_path / "o2", "--config", str(tmp_path)),
                    "is a folder")
    _one_line_error(_tri(root, root / "kp.npz", tmp_path / "o3", "--set",
                         "optimizer.w_smoothness=inf"), "w_smoothness")
    _one_line_error(_tri(root, root / "kp.npz", tmp_path / "o4", "--set",
                         "optimizer.w_bone=1e308"), "w_bone")
    res = CliRunner().invoke(cli, ["run", "--calib", str(root / "cams.toml"), str(tmp_path),
                                   "--pipeline", str(tmp_path)])  # fmt: skip
    _one_line_error(res, "is a folder")


def test_fit_refuses_2d_of_another_length(detections, tmp_path):
    rig, kp, root = detections
    assert _tri(root, root / "kp.npz", tmp_path / "r", "--set",
                "optimizer.enabled=false").exit_code == 0
    short = tmp_path / "short.npz"
    save_keypoints(short, kp.frames(0, 20))
    res = CliRunner().invoke(cli, ["fit", "--hands3d", str(tmp_path / "r" / "hands3d.npz"),
                                   "--keypoints", str(short), "--calib", str(root / "cams.toml"),
                                   "--out", str(tmp_path / "f")])  # fmt: skip
    _one_line_error(res, "20 frames")
    res = CliRunner().invoke(cli, ["fit", "--hands3d", str(tmp_path / "r" / "hands3d.npz"),
                                   "--keypoints", str(root / "kp.npz"), "--calib",
                                   str(root / "cams.toml"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    # the fit joined the run's set: the 3D is still there, with the fit beside it
    assert (tmp_path / "r" / "hands3d.npz").is_file()
    assert (tmp_path / "r" / "hand_model.npz").is_file()


class CrowdedPerson(FakePerson):
    """Camera 1 also sees a second, smaller person."""

    def detect(self, image):
        found = super().detect(image)
        c, _, _ = Scene.decode(image)
        if c == 0 and found:
            found.append(replace(found[0], box_xyxy=np.array([10.0, 10, 60, 120]), score=0.6))
        return found


class CrowdedFactory(Factory):
    def __call__(self, cfg):
        backend = super().__call__(cfg)
        backend.person = CrowdedPerson(self.scene)
        return backend


def test_single_person_mode_warns_when_a_camera_sees_several_people(scene_dir, tmp_path):
    scene, root = scene_dir
    res = run(scene, root, tmp_path / "out", factory=CrowdedFactory(scene))
    text = " ".join(res.report["warnings"])
    assert "camera 'cam1': the person detector saw several people (up to 2)" in text
    assert "'cam2': the person detector" not in text
    assert res.report["cameras"]["cam1"]["most_people_seen"] == 2


def test_configured_exports_are_part_of_the_runs_set(scene_dir, tmp_path):
    scene, root = scene_dir
    out = tmp_path / "out"
    res = run(scene, root, out, FAST + ["export.formats=['trc', 'csv']"])
    assert res.report["exports"] and all((out / p).is_file() for p in res.report["exports"])
    assert (out / "export").is_symlink()  # published with the set
    run(scene, root, out)  # a run without exports: the old ones go with the old set
    assert not (out / "export").exists()
