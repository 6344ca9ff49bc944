"""C3D through ezc3d (the maintained C3D library of the biomechanics community).

Point labels are the marker names, ``POINT:UNITS`` the export's units, ``POINT:RATE`` the
frame rate, and each point's residual is its mean reprojection error in **pixels** (C3D stores
residuals in one byte scaled by ``|POINT:SCALE|``: with the scale of -0.1 written here that is
0.1 px steps, clipped at 25.5 px). Missing points are NaN with residual -1, C3D's "invalid".
``POINT:DESCRIPTIONS`` says so for each point; ``MVHAND:FIRST_FRAME`` holds the video frame of
the first exported frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvhand.errors import MissingDependencyError
from mvhand.export.markers import MarkerSet

#: Residual resolution (px); the byte they are stored in caps them at 255 steps.
RESIDUAL_STEP_PX = 0.1
RESIDUAL_MAX_PX = 255 * RESIDUAL_STEP_PX


def _ezc3d():
    try:
        import ezc3d
    except ImportError:
        raise MissingDependencyError(
            "C3D export needs ezc3d: pip install ezc3d==1.7.2") from None  # fmt: skip
    return ezc3d


def write_c3d(path: str | Path, markers: MarkerSet) -> Path:
    """Write ``markers`` as a C3D file."""
    ezc3d = _ezc3d()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    T, M = markers.n_frames, len(markers.names)
    c = ezc3d.c3d()
    point = c["parameters"]["POINT"]
    point["RATE"]["value"] = [markers.rate_hz]
    point["SCALE"]["value"] = [-RESIDUAL_STEP_PX]
    point["LABELS"]["value"] = list(markers.names)
    c.add_parameter("POINT", "UNITS", [markers.units])
    c.add_parameter("POINT", "DESCRIPTIONS", ["hand joint; residual = mean reprojection error "
                                              "in px"] * M)  # fmt: skip
    c.add_parameter("MVHAND", "FIRST_FRAME", [int(markers.first_frame)])
    pts = np.ones((4, M, T))
    pts[:3] = markers.points.transpose(2, 1, 0)
    missing = ~np.isfinite(pts[:3]).all(axis=0)  # (M, T)
    err = np.nan_to_num(markers.error_px.T, nan=0.0)
    residuals = np.where(missing, -1.0, np.clip(err, 0.0, RESIDUAL_MAX_PX))[None]
    pts[:3, missing] = np.nan
    c["data"]["points"] = pts
    c["data"]["meta_points"] = {"residuals": residuals}
    tmp = path.with_name(f".{path.stem}.tmp.c3d")  # ezc3d appends .c3d to other names
    try:
        c.write(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
