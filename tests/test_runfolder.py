"""The run folder: atomic output sets, stale files, carried-over sets, kills at random points."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mvhand.errors import OutputError
from mvhand.io.atomic import write_text_atomic
from mvhand.io.runfolder import NAMES, RunFolder, check_output_dir, to_json


def _write_set(folder: RunFolder, tag: str, extra: tuple[str, ...] = ()) -> str:
    with folder.transaction() as tx:
        write_text_atomic(tx.path("hands3d_csv"), tag)
        for role in extra:
            write_text_atomic(tx.path(role), tag)
        tx.write_report({"tag": tag})
        tx.write_config(f'tag = "{tag}"\n')
    return tx.run_id


def test_a_set_is_published_whole_and_replaces_the_old_one(tmp_path):
    folder = RunFolder(tmp_path / "out")
    first = _write_set(folder, "one", ("hand_model",))
    assert folder.path("hands3d_csv").read_text() == "one"
    assert folder.path("hand_model").read_text() == "one"
    assert folder.report()["run_id"] == first
    second = _write_set(folder, "two")
    assert folder.path("hands3d_csv").read_text() == "two"
    assert folder.report() == {"run_id": second, "tag": "two"}
    assert folder.path("config").read_text().startswith(f"# mvhand run {second}\n")
    # the first run's fit is gone with its set, not left beside the new results
    assert not folder.path("hand_model").exists() and not os.path.lexists(
        folder.path("hand_model"))
    # only the current set is kept
    sets = [p.name for p in (folder.root / ".sets").iterdir() if p.name != "current"]
    assert len(sets) == 1 and folder.path("report").resolve().parent.name == sets[0]


def test_a_failed_or_interrupted_block_publishes_nothing(tmp_path):
    folder = RunFolder(tmp_path / "out")
    _write_set(folder, "good")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), folder.transaction() as tx:
            write_text_atomic(tx.path("hands3d_csv"), "half")
            raise exc
        assert folder.path("hands3d_csv").read_text() == "good"
    leftovers = [p.name for p in (folder.root / ".sets").iterdir()]
    assert not any(n.endswith(".partial") for n in leftovers)


def test_keep_carries_the_current_set_over_without_touching_it(tmp_path):
    folder = RunFolder(tmp_path / "out")
    first = _write_set(folder, "run")
    old_inode = folder.path("hands3d_csv").resolve()
    with folder.transaction(keep=True) as tx:
        write_text_atomic(tx.path("hand_model"), "fit")
        write_text_atomic(tx.path("hands3d_csv"), "rewritten")
    assert folder.path("hand_model").read_text() == "fit"
    assert folder.path("hands3d_csv").read_text() == "rewritten"
    assert folder.report()["tag"] == "run"  # carried over
    assert folder.report()["run_id"] == first  # extending a set keeps its run
    assert not old_inode.exists()  # the old set was removed after the switch


def test_older_plain_files_are_replaced_and_stale_ones_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hands3d.csv").write_text("from an older mvhand")
    (out / "hand_model.npz").write_text("stale")
    (out / "notes.txt").write_text("the user's own file")
    folder = RunFolder(out)
    _write_set(folder, "new")
    assert (out / "hands3d.csv").read_text() == "new"
    assert not (out / "hand_model.npz").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        folder = RunFolder(tmp_path / "out")
        _write_set(folder, "x")
        mode = folder.path("hands3d_csv").resolve().stat().st_mode & 0o777
    finally:
        os.umask(old)
    assert mode == 0o644


def test_unusable_output_folders_are_one_line_errors(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(OutputError, match="is a file"):
        check_output_dir(afile / "out")
    with pytest.raises(OutputError, match="is a file"):
        check_output_dir(afile)


def test_a_full_disk_is_an_output_error_and_keeps_the_old_set(tmp_path, monkeypatch):
    import errno

    folder = RunFolder(tmp_path / "out")
    _write_set(folder, "good")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "hands3d.csv")

    with pytest.raises(OutputError, match="No space left on device"), \
            folder.transaction() as tx:  # fmt: skip
        monkeypatch.setattr("mvhand.io.atomic.os.fsync", full)
        write_text_atomic(tx.path("hands3d_csv"), "never")
    monkeypatch.undo()
    assert folder.path("hands3d_csv").read_text() == "good"


def test_report_json_is_strict_and_handles_numpy():
    text = to_json({"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "p": Path("x")})
    assert json.loads(text) == {"a": 1.5, "b": [0, 1, 2], "c": None, "p": "x"}
    with pytest.raises(TypeError):
        to_json({"x": object()})


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from mvhand.io.runfolder import RunFolder
    from mvhand.io.atomic import save_npz_atomic, write_text_atomic
    folder = RunFolder(sys.argv[1])
    big = np.random.default_rng(0).normal(size=(200, 2, 21, 3))
    print("ready", flush=True)
    while True:
        with folder.transaction() as tx:
            save_npz_atomic(tx.path("hands3d"), keypoints3d=big, run_id=np.array(tx.run_id))
            write_text_atomic(tx.path("hands3d_csv"), tx.run_id * 2000)
            tx.write_config('x = 1\\n')
            tx.write_report({"n": 1})
""")


def _consistent(folder: RunFolder) -> str | None:
    """The run id every file of the current set agrees on; AssertionError if they differ."""
    if not os.path.lexists(folder.path("report")):
        assert not os.path.lexists(folder.path("hands3d"))
        return None
    rid = folder.report()["run_id"]
    with np.load(folder.path("hands3d")) as d:
        assert str(d["run_id"]) == rid
    assert folder.path("hands3d_csv").read_text() == rid * 2000
    assert folder.path("config").read_text().splitlines()[0] == f"# mvhand run {rid}"
    return rid


@pytest.mark.slow
def test_kill_minus_nine_at_random_points_leaves_a_complete_set(tmp_path):
    """25 kills at random times while sets are being written and published."""
    rng = np.random.default_rng(7)
    folder = RunFolder(tmp_path / "out")
    seen = set()
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder.root)],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        rid = _consistent(folder)
        if rid is not None:
            seen.add(rid)
    assert len(seen) >= 5  # the kills did land between many different publications
    _consistent(folder)
    # the next transaction clears what the killed ones left half-written
    with folder.transaction():
        pass
    partial = [p for p in (folder.root / ".sets").iterdir() if p.name.endswith(".partial")]
    assert partial == []


def test_names_are_the_only_place_files_are_named():
    assert len(set(NAMES.values())) == len(NAMES)


def test_extending_a_folder_of_an_older_mvhand_keeps_its_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hands3d.csv").write_text("old results")
    folder = RunFolder(out)
    with folder.transaction(keep=True) as tx:
        write_text_atomic(tx.path("hand_model"), "fit")
    assert (out / "hands3d.csv").read_text() == "old results"
    assert (out / "hands3d.csv").is_symlink() and (out / "hand_model.npz").read_text() == "fit"


def test_a_fresh_folder_never_writes_into_the_current_sets_files(tmp_path):
    folder = RunFolder(tmp_path / "out")
    with folder.transaction() as tx:
        (tx.dir / "overlay").mkdir()
        (tx.dir / "overlay" / "cam1.mp4").write_text("old video")
        tx.write_report({})
    old = folder.path("overlay").resolve() / "cam1.mp4"
    with folder.transaction(keep=True) as tx:
        fresh = tx.fresh_folder("overlay")
        assert not fresh.exists()
        fresh.mkdir()
        with open(fresh / "cam1.mp4", "w") as fh:  # written in place, as video writers do
            fh.write("new video")
        assert old.read_text() == "old video"  # the hard-linked copy was not truncated
    assert (folder.root / "overlay" / "cam1.mp4").read_text() == "new video"
