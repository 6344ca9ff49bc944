"""The ``[export]`` section of the pipeline config (light: no exporter is imported here)."""

from __future__ import annotations

from dataclasses import dataclass

from mvhand.config import param

#: Export format names, in the order they are written.
FORMATS: tuple[str, ...] = ("trc", "c3d", "anipose", "csv", "bvh")


@dataclass(frozen=True)
class ExportConfig:
    """Exports written from a run folder (``mvhand export``; ``run``/``batch`` after a run)."""

    formats: tuple[str, ...] = param(
        (), "formats to write: any of trc, c3d, anipose, csv, bvh (bvh needs a kinematic "
        "fit: fit.enabled = true, fit.model = 'kinematic'); empty: none")
    units: str = param("mm", "length units of the exported positions and offsets",
                       choices=("m", "cm", "mm"))  # fmt: skip
    up: str = param(
        "z", "world up axis in the files: 'z' keeps the calibration's frame (z-up studios such "
        "as Qualisys and Pose2Sim's); 'y' turns a z-up world into the y-up one OpenSim and "
        "Blender's BVH import expect", choices=("z", "y"))
    person: str = param("", "person id prefixed to marker and joint names ('P1' gives "
                        "'P1_L_wrist'); empty: no prefix")  # fmt: skip
    folder: str = param("export", "output folder, relative to the run folder")
