"""``mvhand batch``: three small recordings and a broken one, on the process pool (always) and
on a local Ray instance (when ray is installed): the same files as serial ``mvhand run``s,
the broken recording reported without stopping the others, resume, and re-runs that do
nothing. Discovery of the documented layouts and of a manifest.

The recordings are the synthetic scene of ``test_run_pipeline`` (three cameras whose pixels
encode the true projection, read by a scripted backend), copied into recording folders.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from test_run_pipeline import FAST, Factory, Scene

from mvhand.batch import run_batch
from mvhand.batch.discover import discover
from mvhand.batch.tasks import DONE_FILE
from mvhand.cli.main import cli
from mvhand.errors import ConfigError, InputError
from mvhand.io.calibration import save_calibration
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.run import run_pipeline

FRAMES = (0, 12)
RECORDINGS = ("case01", "case02", "session/P1/trial1")


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    scene = Scene()
    base = tmp_path_factory.mktemp("batch")
    videos = scene.write(base / "master" / "videos")
    root = base / "root"
    for name in RECORDINGS:
        shutil.copytree(videos, root / name / "videos")
    save_calibration(root / "case01" / "calib.toml", scene.rig)
    save_calibration(root / "case02" / "calib.toml", scene.rig)
    save_calibration(root / "session" / "calibration" / "Calib_session.toml", scene.rig)
    broken = root / "broken"
    shutil.copytree(videos, broken / "videos")
    (broken / "calib.toml").write_text("this is [not a calibration\n")
    return scene, root, base


def cfg():
    return load_pipeline(None, FAST)


def serial_run(scene, root, name, out):
    calib = next(p for p in [root / name / "calib.toml",
                             root / "session" / "calibration" / "Calib_session.toml"]
                 if p.is_file())  # fmt: skip
    return run_pipeline(calib, root / name / "videos", out, cfg(), frames=FRAMES,
                        backend_factory=Factory(scene))  # fmt: skip


def assert_same_outputs(batch_dir, serial_dir):
    files = {p.name for p in serial_dir.iterdir() if p.is_file()}
    assert files <= {p.name for p in batch_dir.iterdir()}
    for name in ("hands3d.npz", "keypoints2d.npz"):
        with np.load(batch_dir / name) as a, np.load(serial_dir / name) as b:
            assert set(a.files) == set(b.files)
            for k in set(a.files) - {"run_id"}:  # each run has its own identity
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}:{k}")
    for cam in ("cam1", "cam2", "cam3"):
        assert (batch_dir / "cache" / f"{cam}.npz").is_file()


def test_discovery_layouts_and_manifest(scene_root, tmp_path):
    _, root, _ = scene_root
    recs = {r.name: r for r in discover(root)}
    assert set(recs) == {*RECORDINGS, "broken"}
    assert recs["session/P1/trial1"].calib.name == "Calib_session.toml"  # shared by the session
    assert recs["case01"].calib == (root / "case01" / "calib.toml").resolve()
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'calib = "{root / "case01" / "calib.toml"}"\n'
                        f'[[recording]]\nname = "a"\nvideos = "{root / "case02" / "videos"}"\n'
                        f'[[recording]]\nvideos = "{root / "case01" / "videos"}"\n')  # fmt: skip
    recs = discover(manifest)
    assert [r.name for r in recs] == ["a", "case01"] and recs[0].calib.name == "calib.toml"
    manifest.write_text('[[recording]]\nvideo = "x"\n')
    with pytest.raises(ConfigError, match="needs 'videos'"):
        discover(manifest)
    two = tmp_path / "two"
    shutil.copytree(root / "case01", two / "r")
    (two / "r" / "calib_copy.toml").write_text("")
    assert "several calibration files" in discover(two)[0].problem
    with pytest.raises(InputError, match="no recording found"):
        discover(tmp_path / "two" / "r" / "videos")


@pytest.mark.slow
def test_pool_batch_equals_serial_runs_contains_failure_and_resumes(scene_root, tmp_path):
    scene, root, base = scene_root
    out = tmp_path / "out"
    events = []
    res = run_batch(root, out, cfg(), engine="pool", workers=2, frames=FRAMES,
                    backend_factory=Factory(scene),
                    on_event=lambda *e: events.append(e[:2]))  # fmt: skip
    assert res.engine == "pool" and res.failed == ["broken"]
    rows = {r["recording"]: r for r in res.rows}
    assert "not a readable" in rows["broken"]["error"] or "calib" in rows["broken"]["error"]
    for name in RECORDINGS:
        assert rows[name]["status"] == "ok" and rows[name]["frames"] == 12
        assert rows[name]["completeness_left"] == 1.0 and rows[name]["cameras"] == 3
        assert_same_outputs(out / name, serial_run(scene, root, name, tmp_path / name).out_dir)
    assert ("done", "case01") in events and ("failed", "broken") in events
    assert res.camera_frames == 3 * 3 * 12
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("recording,status,cameras,frames")
    assert "| case02 | ok | 3 | 12 | 100.0 %" in (out / "summary.md").read_text()
    # a finished batch run again does nothing (the backend may not even be built)
    stamp = (out / "case01" / "hands3d.npz").stat().st_mtime_ns
    again = run_batch(root, out, cfg(), engine="pool", workers=2, frames=FRAMES,
                      backend_factory=Factory(scene, fail=True))  # fmt: skip
    assert set(again.skipped) == set(RECORDINGS) and again.camera_frames == 0
    assert (out / "case01" / "hands3d.npz").stat().st_mtime_ns == stamp
    assert again.rows == res.rows
    # an interrupted batch (one recording without its 3D and one camera) resumes there
    (out / "case02" / DONE_FILE).unlink()
    (out / "case02" / "hands3d.npz").unlink()
    (out / "case02" / "cache" / "cam2.npz").unlink()
    kept = (out / "case02" / "cache" / "cam1.npz").stat().st_mtime_ns
    resumed = run_batch(root, out, cfg(), engine="pool", workers=2, frames=FRAMES,
                        backend_factory=Factory(scene))  # fmt: skip
    assert set(resumed.skipped) == {"case01", "session/P1/trial1"}
    assert resumed.camera_frames == 12  # only case02's cam2
    assert (out / "case02" / "cache" / "cam1.npz").stat().st_mtime_ns == kept
    assert_same_outputs(out / "case02", tmp_path / "case02")


@pytest.mark.slow
def test_a_failing_task_fails_only_its_recording(scene_root, tmp_path):
    scene, root, _ = scene_root
    out = tmp_path / "out"
    (out / "case02").mkdir(parents=True)
    (out / "case02" / "cache").write_text("a file where the cache folder should be")
    res = run_batch(root, out, cfg(), engine="pool", workers=2, frames=FRAMES,
                    backend_factory=Factory(scene))  # fmt: skip
    rows = {r["recording"].split("/")[-1]: r for r in res.rows}
    assert rows["case02"]["status"] == "failed" and "camera 'cam" in rows["case02"]["error"]
    assert rows["case01"]["status"] == "ok" and rows["trial1"]["status"] == "ok"


def test_batch_writes_configured_exports(scene_root, tmp_path):
    scene, root, _ = scene_root
    c = load_pipeline(None, FAST + ["export.formats=['trc', 'anipose']"])
    res = run_batch(root / "case01", tmp_path, c, engine="pool", workers=1, frames=FRAMES,
                    backend_factory=Factory(scene))  # fmt: skip
    assert res.failed == []
    name = res.rows[0]["recording"]
    assert (tmp_path / name / "export" / "hands.trc").is_file()
    assert (tmp_path / name / "export" / "hands_anipose.csv").is_file()


@pytest.mark.slow
def test_ray_batch_equals_serial_runs(scene_root, tmp_path):
    pytest.importorskip("ray")
    from ray import cloudpickle

    scene, root, _ = scene_root
    # the scripted backend lives in a test module the Ray workers cannot import: send it
    cloudpickle.register_pickle_by_value(sys.modules["test_run_pipeline"])
    (tmp_path / "out" / "case02").mkdir(parents=True)  # its camera tasks will fail
    (tmp_path / "out" / "case02" / "cache").write_text("a file where the cache folder goes")
    try:
        res = run_batch(root, tmp_path / "out", cfg(), engine="ray", workers=2, frames=FRAMES,
                        backend_factory=Factory(scene))  # fmt: skip
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules["test_run_pipeline"])
    assert res.engine == "ray" and res.failed == ["broken", "case02"]
    assert "camera 'cam" in next(r for r in res.rows if r["recording"] == "case02")["error"]
    for name in ("case01", "session/P1/trial1"):
        serial = serial_run(scene, root, name, tmp_path / name)
        assert_same_outputs(tmp_path / "out" / name, serial.out_dir)
    report = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert report["engine"] == "ray" and report["camera_frames"] == 2 * 3 * 12


def test_cli_batch(scene_root, tmp_path, monkeypatch):
    scene, root, _ = scene_root
    runner = CliRunner()
    res = runner.invoke(cli, ["batch", "--help"])
    assert res.exit_code == 0 and "--engine" in res.output and "--address" in res.output
    small = tmp_path / "root"
    for name in ("case01", "broken"):
        shutil.copytree(root / name, small / name)
    monkeypatch.setattr("mvhand.backends.registry.make_backend", Factory(scene))
    common = ["--out", str(tmp_path / "o"), "--engine", "pool", "--frames", "0:12",
              "--set", FAST[0]]  # fmt: skip
    res = runner.invoke(cli, ["batch", str(small), *common])
    assert res.exit_code == 1, res.output  # the broken recording
    assert "FAILED   broken" in res.output and "1 failed" in res.output
    assert "| case01 | ok | 3 | 12 | 100.0 %" in res.output
    res = runner.invoke(cli, ["batch", str(small / "case01"), *common])
    assert res.exit_code == 0, res.output
    assert "already done with the same inputs and settings: case01" in res.output
