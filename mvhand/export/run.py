"""Read a run folder and write the configured exports (the I/O side of the exporters)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from mvhand.errors import ConfigError, InputError
from mvhand.export.config import FORMATS, ExportConfig
from mvhand.export.markers import MarkerSet, hand_prefix, marker_set
from mvhand.io.runfolder import RunFolder

log = logging.getLogger(__name__)


def _frames_info(run_dir: Path, npz: Path, rate_hz: float | None) -> tuple[float, int, int]:
    """(rate of the exported frames, first video frame, step) from the run's files."""
    fps = None
    with np.load(npz, allow_pickle=False) as d:
        if "fps" in d.files:
            fps = float(d["fps"])
    start, step = 0, 1
    report = RunFolder(run_dir).path("report")
    if report.is_file():
        frames = json.loads(report.read_text()).get("inputs", {}).get("frames", {})
        start, step = int(frames.get("start", 0)), int(frames.get("step", 1))
    rate = rate_hz or fps
    if not rate or rate <= 0:
        raise InputError("the frame rate is unknown (hands3d.npz has no fps); give it with "
                         "--rate", npz)  # fmt: skip
    return float(rate), start, step


def export_run(run_dir: str | Path, cfg: ExportConfig, out_dir: str | Path | None = None,
               rate_hz: float | None = None) -> list[Path]:  # fmt: skip
    """Write ``cfg.formats`` from the run folder ``run_dir``; returns the written files.

    Args:
        run_dir: a folder written by ``mvhand run`` / ``triangulate`` (``hands3d.npz``).
        cfg: formats, units, up axis, person id.
        out_dir: where to write (None: ``run_dir / cfg.folder``).
        rate_hz: frame rate of the 3D frames (None: from ``hands3d.npz``).

    Raises:
        ConfigError: an unknown format. InputError: missing or unreadable inputs.
        MissingDependencyError: C3D without ezc3d.
    """
    from mvhand.io.results import load_hands3d

    unknown = [f for f in cfg.formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"'export.formats': unknown format(s) {', '.join(unknown)}; known: "
                          f"{', '.join(FORMATS)}")  # fmt: skip
    run = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run / cfg.folder
    npz = RunFolder(run).path("hands3d")
    hands = load_hands3d(npz)
    rate, start, step = _frames_info(run, npz, rate_hz)
    markers = marker_set(hands, rate, cfg.units, cfg.up, cfg.person, start, step)
    written: list[Path] = []
    for fmt in (f for f in FORMATS if f in cfg.formats):
        written += _write_format(fmt, run, out, markers, hands.hands, cfg)
    people = RunFolder(run).path("hands3d_people")
    if people.is_file():
        written += _write_people(people, out, rate, start, step, cfg)
    return written


def _write_people(path: Path, out: Path, rate: float, start: int, step: int,
                  cfg: ExportConfig) -> list[Path]:  # fmt: skip
    """Every person of ``hands3d_people.npz`` in one file per format, markers ``P<id>_L_wrist``
    (the 2D score is not kept per person: NaN in the tables' score column)."""
    from mvhand.core.data import Hands3D
    from mvhand.io.people import load_people

    res = load_people(path).result
    sets, who = [], []
    for p, pid in enumerate(res.person_ids):
        h = Hands3D(res.hands3d[:, p], res.hands_reprojection_error_px[:, p],
                    res.hands_n_views[:, p], np.full(res.hands_n_views[:, p].shape, np.nan),
                    res.units)  # fmt: skip
        sets.append(marker_set(h, rate, cfg.units, cfg.up, f"P{pid}", start, step))
        who += [f"P{pid}", f"P{pid}"]
    if not sets:
        return []
    markers = MarkerSet.concatenate(sets)
    hands = ("left", "right") * len(sets)
    written = [_write_markers(f, out / _PEOPLE_FILES[f], markers, tuple(who), hands, cfg.up)
               for f in FORMATS if f in cfg.formats and f in _PEOPLE_FILES]  # fmt: skip
    return written


#: The file of each format: the run's person, and everybody (a several-people run).
_FILES = {"trc": "hands.trc", "c3d": "hands.c3d", "anipose": "hands_anipose.csv",
          "csv": "hands_long.csv"}  # fmt: skip
_PEOPLE_FILES = {"trc": "people.trc", "c3d": "people.c3d", "anipose": "people_anipose.csv",
                 "csv": "people_long.csv"}  # fmt: skip


def _write_format(fmt: str, run: Path, out: Path, markers: MarkerSet, hands: tuple[str, ...],
                  cfg: ExportConfig) -> list[Path]:  # fmt: skip
    if fmt == "bvh":
        return write_bvh_files(run, out, markers.rate_hz, cfg)
    return [_write_markers(fmt, out / _FILES[fmt], markers, cfg.person, hands, cfg.up)]


def _write_markers(fmt: str, target: Path, markers: MarkerSet, person: str | tuple[str, ...],
                   hands: tuple[str, ...], up: str) -> Path:  # fmt: skip
    """One marker file of format ``fmt`` (not bvh)."""
    if fmt == "trc":
        from mvhand.export.trc import write_trc

        return write_trc(target, markers)
    if fmt == "c3d":
        from mvhand.export.c3d import write_c3d

        return write_c3d(target, markers)
    if fmt == "anipose":
        from mvhand.export.markers import UP_ROTATION
        from mvhand.export.tables import write_anipose_csv

        return write_anipose_csv(target, markers, UP_ROTATION[up])
    from mvhand.export.tables import write_long_csv

    return write_long_csv(target, markers, person, hands)


def write_bvh_files(run: Path, out: Path, rate_hz: float, cfg: ExportConfig) -> list[Path]:
    """One BVH per fitted hand of ``run/hand_model.npz`` (a kinematic fit)."""
    from mvhand.export.bvh import kinematic_bvh, write_bvh
    from mvhand.fit.kinematic import CHAIN_BONES

    path = RunFolder(run).path("hand_model")
    if not path.is_file():
        raise InputError("BVH export needs a kinematic hand fit: run `mvhand fit --model "
                         "kinematic` (or set fit.enabled = true) first", path)  # fmt: skip
    written = []
    with np.load(path, allow_pickle=False) as d:
        if str(d["model"]) != "kinematic":
            raise InputError(f"BVH export needs a kinematic fit, this is a {d['model']} fit; "
                             "run `mvhand fit --model kinematic`", path)  # fmt: skip
        for hand in (str(h) for h in d["hands"]):
            lengths = d[f"{hand}_bone_lengths_m"][CHAIN_BONES]
            skel = kinematic_bvh(hand_prefix(hand, cfg.person), d[f"{hand}_params"],
                                 d[f"{hand}_palm_m"], lengths, hand == "left", rate_hz,
                                 cfg.units, cfg.up)  # fmt: skip
            written.append(write_bvh(out / f"hand_{hand_prefix(hand, cfg.person)}.bvh", skel))
    return written
