"""TRC, OpenSim's marker file, written as Pose2Sim and OpenSim's own examples write it.

Layout (tab-separated): ``PathFileType 4 (X/Y/Z) <name>``; the header names line and its values
(``DataRate CameraRate NumFrames NumMarkers Units OrigDataRate OrigDataStartFrame
OrigNumFrames``); ``Frame# Time <marker> . . ...``; ``. . X1 Y1 Z1 X2 ...``; a blank line; then
one row per frame, frame numbers from 1, time in seconds. Missing coordinates are empty cells,
which OpenSim reads as missing markers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.errors import InputError
from mvhand.export.markers import MarkerSet
from mvhand.io.atomic import write_text_atomic


def trc_text(markers: MarkerSet, name: str = "hands.trc") -> str:
    """The TRC file's text."""
    T, M = markers.n_frames, len(markers.names)
    rate = f"{markers.rate_hz:.6g}"
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame"
        "\tOrigNumFrames",
        f"{rate}\t{rate}\t{T}\t{M}\t{markers.units}\t{rate}\t{markers.first_frame + 1}\t{T}",
        "Frame#\tTime\t" + "\t\t\t".join(markers.names) + "\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, M + 1)),
        "",
    ]
    table = np.column_stack([np.arange(1, T + 1), markers.times_s,
                             markers.points.reshape(T, 3 * M)])  # fmt: skip
    buf = io.StringIO()
    np.savetxt(buf, table, delimiter="\t", fmt=["%d", "%.6f"] + ["%.6f"] * (3 * M))
    body = buf.getvalue().replace("nan", "")
    return "\n".join(lines) + "\n" + body


def write_trc(path: str | Path, markers: MarkerSet) -> Path:
    """Write ``markers`` as a TRC file (atomically)."""
    path = Path(path)
    write_text_atomic(path, trc_text(markers, path.name))
    return path


@dataclass(frozen=True, eq=False)
class TrcData:
    """A TRC file read back: ``names``, ``points`` ``(T, M, 3)`` (NaN where empty), ``times_s``
    ``(T,)``, ``frames`` ``(T,)``, ``rate_hz``, ``units`` and the header values by name."""

    names: list[str]
    points: np.ndarray
    times_s: np.ndarray
    frames: np.ndarray
    rate_hz: float
    units: str
    header: dict[str, str]


def read_trc(path: str | Path) -> TrcData:
    """Parse a TRC file (any writer that follows the layout above)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        keys, values = lines[1].split("\t"), lines[2].split("\t")
        header = dict(zip(keys, values, strict=False))
        names = [n for n in lines[3].split("\t")[2:] if n.strip()]
        rows = [ln.split("\t") for ln in lines[5:] if ln.strip()]
        table = np.array([[float(v) if v.strip() else np.nan for v in r] for r in rows])
    except (OSError, IndexError, ValueError) as exc:
        raise InputError(f"not a readable TRC file ({exc})", path) from None
    M = len(names)
    if int(header["NumMarkers"]) != M or table.shape[1] < 2 + 3 * M:
        raise InputError(f"TRC header says {header['NumMarkers']} markers, found {M}", path)
    return TrcData(names, table[:, 2:2 + 3 * M].reshape(-1, M, 3), table[:, 1],
                   table[:, 0].astype(int), float(header["DataRate"]), header["Units"], header)
