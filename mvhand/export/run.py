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
    return written


def _write_format(fmt: str, run: Path, out: Path, markers: MarkerSet, hands: tuple[str, ...],
                  cfg: ExportConfig) -> list[Path]:  # fmt: skip
    if fmt == "trc":
        from mvhand.export.trc import write_trc

        return [write_trc(out / "hands.trc", markers)]
    if fmt == "c3d":
        from mvhand.export.c3d import write_c3d

        return [write_c3d(out / "hands.c3d", markers)]
    if fmt == "anipose":
        from mvhand.export.markers import UP_ROTATION
        from mvhand.export.tables import write_anipose_csv

        return [write_anipose_csv(out / "hands_anipose.csv", markers, UP_ROTATION[cfg.up])]
    if fmt == "csv":
        from mvhand.export.tables import write_long_csv

        return [write_long_csv(out / "hands_long.csv", markers, cfg.person, hands)]
    return write_bvh_files(run, out, markers.rate_hz, cfg)


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
