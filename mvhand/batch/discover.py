"""Finding the recordings of a batch: a folder tree, or an explicit TOML manifest.

Folder layout (``mvhand batch ROOT``): every folder under ROOT that holds a ``videos/`` folder
with video files is one recording. Its calibration is the calibration file of that folder, or,
if it has none, of the nearest folder above it up to ROOT, so one calibration can serve a whole
session, as in Pose2Sim's session/participant/trial tree::

    ROOT/                          ROOT/session1/
      case01/                        calibration/Calib.qca.txt   <- shared by the trials
        calib.toml                   P1/trial1/videos/cam01.mp4 ...
        videos/cam01.mp4 ...         P1/trial2/videos/...
      case02/...                     P2/trial1/videos/...

A calibration file is a file whose name contains "calib" (any case) with the suffix ``.toml``,
``.txt``, ``.xml``, ``.json``, ``.yml`` or ``.yaml`` (any format ``mvhand calib convert``
reads), directly in the folder or in its ``calibration/`` or ``calib/`` folder. Two candidates
in one place are an error for that recording (the message lists them).

Manifest (``mvhand batch recordings.toml``), paths relative to the manifest's folder::

    calib = "session/Calib.qca.txt"        # optional default for every recording
    [[recording]]
    name = "case01"                        # optional: default the videos folder's parent name
    videos = "case01/videos"
    calib = "case01/calib.toml"            # optional when the default is set

Each recording's outputs go to ``OUT/<name>`` (name: the folder's path below ROOT).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from mvhand.errors import ConfigError, InputError
from mvhand.io.video import VIDEO_SUFFIXES

CALIB_SUFFIXES = (".toml", ".txt", ".xml", ".json", ".yml", ".yaml")
CALIB_FOLDERS = ("", "calibration", "Calibration", "calib")


@dataclass(frozen=True)
class Recording:
    """One recording of a batch.

    Attributes:
        name: unique name (a relative path; its output folder below the batch's).
        videos: folder with one video per camera.
        calib: its calibration file (None when none was found: reported as its error).
        problem: why it cannot run, found while discovering it (None: fine so far).
    """

    name: str
    videos: Path
    calib: Path | None
    problem: str | None = None


def _has_videos(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                                   for p in folder.iterdir())  # fmt: skip


def calibration_candidates(folder: Path) -> list[Path]:
    """Calibration files directly in ``folder`` or in its calibration subfolder."""
    out = []
    for sub in CALIB_FOLDERS:
        d = folder / sub if sub else folder
        if d.is_dir():
            out += sorted(p for p in d.iterdir() if p.is_file() and "calib" in p.name.lower()
                          and p.suffix.lower() in CALIB_SUFFIXES)  # fmt: skip
    return list(dict.fromkeys(out))


def _find_calibration(folder: Path, root: Path) -> tuple[Path | None, str | None]:
    d = folder
    while True:
        found = calibration_candidates(d)
        if len(found) == 1:
            return found[0], None
        if len(found) > 1:
            return None, (f"several calibration files in {d}: "
                          f"{', '.join(p.name for p in found)}; keep one, or use a manifest")
        if d == root or root not in d.parents:
            return None, (f"no calibration file (a file named *calib* with one of "
                          f"{', '.join(CALIB_SUFFIXES)}) in {folder} or above it up to {root}")
        d = d.parent


def discover(root: str | Path, exclude: Path | None = None) -> list[Recording]:
    """The recordings under ``root`` (a folder, or a ``.toml`` manifest), sorted by name.

    Args:
        root: the batch's folder or manifest.
        exclude: a folder not to search (the batch's output folder, if it is under ROOT).

    Raises:
        InputError: ROOT does not exist or holds no recording. ConfigError: a bad manifest.
    """
    root = Path(root).resolve()
    if root.is_file() and root.suffix == ".toml":
        return _from_manifest(root)
    if not root.is_dir():
        raise InputError("batch root not found (a folder of recordings or a .toml manifest)",
                         root)  # fmt: skip
    skip = exclude.resolve() if exclude is not None else None
    recs = []
    for videos in sorted(root.rglob("videos")):
        folder = videos.parent
        if skip is not None and (folder == skip or skip in folder.parents):
            continue
        if not _has_videos(videos):
            continue
        calib, problem = _find_calibration(folder, root)
        name = folder.relative_to(root).as_posix() if folder != root else root.name
        recs.append(Recording(name, videos, calib, problem))
    if not recs:
        raise InputError("no recording found: expected folders with a videos/ folder of "
                         "video files (see `mvhand batch --help`)", root)  # fmt: skip
    return recs


def _from_manifest(path: Path) -> list[Recording]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML manifest ({exc})") from None
    unknown = set(doc) - {"calib", "recording"}
    if unknown:
        raise ConfigError(f"{path}: unknown manifest key(s) {', '.join(sorted(unknown))}; "
                          "expected 'calib' and [[recording]] tables")  # fmt: skip
    base, default = path.parent, doc.get("calib")
    recs, names = [], set()
    for i, entry in enumerate(doc.get("recording", [])):
        bad = set(entry) - {"name", "videos", "calib"}
        if bad or "videos" not in entry:
            raise ConfigError(f"{path}: recording {i + 1} needs 'videos' (and optionally "
                              f"'name', 'calib'); got {', '.join(sorted(entry))}")  # fmt: skip
        videos = (base / entry["videos"]).resolve()
        name = str(entry.get("name") or videos.parent.name)
        if name in names:
            raise ConfigError(f"{path}: recording name {name!r} is used twice")
        names.add(name)
        calib = entry.get("calib", default)
        problem = None if calib else "no calibration: set 'calib' in the manifest"
        recs.append(Recording(name, videos, (base / calib).resolve() if calib else None,
                              problem))  # fmt: skip
    if not recs:
        raise ConfigError(f"{path}: the manifest lists no [[recording]]")
    return recs
