"""The run folder: the one owner of an output folder's layout, its files and their consistency.

What a user sees in ``OUT/`` (each name is written by one function, all listed in ``NAMES``):

- ``hands3d.npz``, ``hands3d.csv``: the 3D hands (see :mod:`mvhand.io.results`);
- ``keypoints2d.npz``: the 2D keypoints of every camera (``mvhand run``);
- ``report.json``: quality figures and every warning; ``config.toml``: the resolved config
  that replays the run; ``calibration.toml``: the cameras as used (refined by the
  self-calibration when it was used; the given ones then in ``calibration_given.toml``);
- ``hands3d_people.npz``: every person's hands and body (``mvhand people``);
- ``summary.png``; ``hand_model.npz``, ``joint_angles.csv``, ``fit_config.toml`` and meshes
  (the hand-model fit); ``overlay/`` (videos);
- ``cache/``: per-camera 2D results, key-checked, kept across runs (not part of a set).

**Atomic sets.** A run's outputs are written into a staging folder ``OUT/.sets/<run>.partial``
and published in one step: the folder is renamed to ``OUT/.sets/<run>``, and the symbolic
link ``OUT/.sets/current`` is replaced by one pointing at it (``rename`` of a link is atomic).
Every top-level name is a relative link through ``current`` (``OUT/hands3d.npz ->
.sets/current/hands3d.npz``), so after a kill at any point ``OUT`` shows either the whole old
set or the whole new one, never a mixture, and files the new run did not write (an old fit,
old overlays) disappear with the old set. A staging folder left by a kill is removed by the
next transaction. Every file of a set carries the same ``run_id`` (report, arrays, config).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.errors import InputError, OutputError
from mvhand.io.atomic import write_text_atomic

log = logging.getLogger(__name__)

#: The file of each output, by role. Writers take their path from here.
NAMES: dict[str, str] = {
    "hands3d": "hands3d.npz",
    "hands3d_csv": "hands3d.csv",
    "keypoints2d": "keypoints2d.npz",
    "report": "report.json",
    "config": "config.toml",
    "calibration": "calibration.toml",
    "calibration_given": "calibration_given.toml",
    "summary": "summary.png",
    "hand_model": "hand_model.npz",
    "joint_angles": "joint_angles.csv",
    "fit_config": "fit_config.toml",
    "overlay": "overlay",
    "hands3d_people": "hands3d_people.npz",
    "summary_people": "summary_people.png",
}
#: Top-level names that are not part of a set.
CACHE_DIR = "cache"
SETS_DIR = ".sets"
CURRENT = "current"


def to_json(obj: Any) -> str:
    """The one JSON serializer of mvhand's reports (numpy scalars and arrays, paths, NaN as
    null)."""
    return json.dumps(_jsonable(obj), indent=2, allow_nan=False)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__} in a report")


def new_run_id() -> str:
    """A sortable, unique id: UTC time plus a random suffix."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def check_output_dir(out: str | Path) -> Path:
    """Create ``out`` if needed; OutputError with a one-line reason if it cannot be used."""
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{parent} is a file, so the output folder {out} cannot be "
                                  "created there; choose another --out")  # fmt: skip
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to the output folder {out}: {exc.strerror or exc}"
                          ) from None  # fmt: skip
    return out


class RunFolder:
    """An output folder of ``mvhand run`` / ``triangulate`` / ``fit``.

    Args:
        root: the folder (created on the first transaction).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, role: str) -> Path:
        """Where the current set's file of ``role`` is read from (see ``NAMES``)."""
        return self.root / NAMES[role]

    @property
    def cache_dir(self) -> Path:
        return self.root / CACHE_DIR

    def exists(self, role: str) -> bool:
        return self.path(role).exists()

    def report(self) -> dict[str, Any]:
        """The current ``report.json`` (empty dict if there is none); InputError if damaged."""
        path = self.path("report")
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable report ({exc})", path) from None

    @contextlib.contextmanager
    def transaction(self, keep: bool = False) -> Iterator[Transaction]:
        """Stage a new set and publish it when the block ends without an exception.

        Args:
            keep: start from the current set (files the block does not rewrite stay, e.g.
                ``mvhand fit`` adding a fit to a run); else the new set holds only what the
                block writes.

        On any exception (Ctrl-C included) the staging folder is removed and the current set
        stays as it was. OSErrors (full disk, permissions) become :class:`OutputError`.
        """
        check_output_dir(self.root)
        sets = self.root / SETS_DIR
        self._remove_leftovers(sets)
        set_id = new_run_id()
        current = self._current_dir() if keep else None
        # a set carried over stays the same run (its files keep their run_id)
        run_id = self.report().get("run_id", set_id) if current is not None else set_id
        tx = Transaction(self, run_id, set_id)
        try:
            tx.dir.mkdir(parents=True)
            tx._pid_file.write_text(str(os.getpid()))
            if keep:
                tx.carry_over(self._set_files(current))
            yield tx
            self._publish(tx)
        except OSError as exc:
            shutil.rmtree(tx.dir, ignore_errors=True)
            raise OutputError(f"writing the outputs into {self.root} failed: "
                              f"{exc.strerror or exc}" + (
                                  f" ({exc.filename})" if exc.filename else "")) from None
        except BaseException:
            shutil.rmtree(tx.dir, ignore_errors=True)
            raise

    # ------------------------------------------------------------------ internals

    def _set_files(self, current: Path | None) -> list[Path]:
        """The current set's files; for a folder written by an older mvhand (plain files, no
        sets) its known output files."""
        if current is not None:
            return [p for p in current.iterdir() if not p.name.startswith(".")]
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if not p.is_symlink() and (
            p.name in NAMES.values() or p.name.startswith("mesh_"))]

    def _current_dir(self) -> Path | None:
        cur = self.root / SETS_DIR / CURRENT
        return cur.resolve() if cur.is_symlink() and cur.resolve().is_dir() else None

    def _remove_leftovers(self, sets: Path) -> None:
        """Staging folders of killed runs, and sets no longer current."""
        if not sets.is_dir():
            return
        current = self._current_dir()
        for d in sets.iterdir():
            if d.name == CURRENT or (current is not None and d.resolve() == current):
                continue
            if d.name.endswith(".partial") and _pid_alive(d):
                continue  # another process is writing it right now
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)

    def _publish(self, tx: Transaction) -> None:
        sets = self.root / SETS_DIR
        final = sets / tx.set_id
        tx._pid_file.unlink(missing_ok=True)
        os.replace(tx.dir, final)
        old = self._current_dir()
        link_tmp = sets / f".{CURRENT}.{tx.set_id}"
        os.symlink(tx.set_id, link_tmp)
        os.replace(link_tmp, sets / CURRENT)  # the one atomic step
        names = {p.name for p in final.iterdir() if not p.name.startswith(".")}
        for name in names:
            self._link_top_level(name)
        self._unlink_stale(names)
        if old is not None and old != final.resolve():
            shutil.rmtree(old, ignore_errors=True)

    def _link_top_level(self, name: str) -> None:
        top = self.root / name
        target = Path(SETS_DIR) / CURRENT / name
        if top.is_symlink() and Path(os.readlink(top)) == target:
            return
        tmp = self.root / f".{name}.link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        if top.is_dir() and not top.is_symlink():
            shutil.rmtree(top)  # an output folder of an older mvhand (e.g. overlay/)
        os.replace(tmp, top)

    def _unlink_stale(self, names: set[str]) -> None:
        """Top-level links (and old-style output files) the new set does not have."""
        for p in self.root.iterdir():
            if p.name in names or p.name in (SETS_DIR, CACHE_DIR) or p.name.startswith("."):
                continue
            through = p.is_symlink() and os.readlink(p).startswith(f"{SETS_DIR}/")
            known = p.name in NAMES.values() or p.name.startswith("mesh_")
            if through or (known and not p.is_symlink()):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


class Transaction:
    """The staging folder of one set; writers ask it for their paths."""

    def __init__(self, folder: RunFolder, run_id: str, set_id: str | None = None) -> None:
        self.folder = folder
        self.run_id = run_id  # what the files say (kept when a set is extended)
        self.set_id = set_id or run_id  # the set's folder under .sets
        self.dir = folder.root / SETS_DIR / f"{self.set_id}.partial"
        self._pid_file = self.dir / ".pid"

    def path(self, role: str) -> Path:
        """Where to write the file of ``role`` in this set."""
        return self.dir / NAMES[role]

    def fresh_folder(self, name: str) -> Path:
        """An empty folder ``name`` of this set, for writers that write files in place (video
        writers): the copy carried over from the current set is removed first, so the current
        set's files are never written into."""
        path = self.dir / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def write_report(self, report: dict[str, Any]) -> None:
        """``report.json`` with this set's ``run_id``."""
        write_text_atomic(self.path("report"), to_json({"run_id": self.run_id, **report}))

    def write_config(self, toml_text: str) -> None:
        """``config.toml``, headed by this set's ``run_id``."""
        write_text_atomic(self.path("config"), f"# mvhand run {self.run_id}\n{toml_text}")

    def carry_over(self, files: list[Path]) -> None:
        """Hard-link (or copy) the current set's files into the staging folder. Writers
        replace files atomically (new inode), so the old set's files are never modified."""
        for src in files:
            dst = self.dir / src.name
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=_link_or_copy)
            else:
                _link_or_copy(src, dst)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst)


def _pid_alive(staging: Path) -> bool:
    """Whether the process that created a staging folder still runs (its name holds no pid,
    so a ``.pid`` file inside records it)."""
    pid_file = staging / ".pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


__all__ = ["NAMES", "RunFolder", "Transaction", "check_output_dir", "new_run_id", "to_json"]
