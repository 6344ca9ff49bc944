"""The pipeline config: one frozen dataclass per stage, loaded strictly from ``pipelines/*.toml``.

Sections: ``[video]``, ``[backend]``, ``[detect]``, ``[palm]``, ``[tracking]``, ``[hands2d]``,
``[self_calibration]``, ``[reconstruct]`` (with ``.triangulation`` and ``.optimizer``),
``[people]``, ``[refine]``, ``[fit]``, ``[export]``. Every key, its default and its range are
declared once, in the stage that uses it; ``mvhand run --set key=value`` overrides any of
them, and the resolved config is written next to the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.backends.registry import BackendConfig
from mvhand.calibrate.selfcal import SelfCalibrationConfig
from mvhand.config import config_to_dict, load_config, param
from mvhand.errors import ConfigError
from mvhand.export.config import ExportConfig
from mvhand.fit import FitConfig
from mvhand.stages.body import DetectConfig
from mvhand.stages.hands2d import Hands2DConfig
from mvhand.stages.palm import PalmConfig
from mvhand.stages.people import PeopleConfig
from mvhand.stages.reconstruct import ReconstructConfig
from mvhand.stages.refine import RefineConfig
from mvhand.stages.track import TrackingConfig

#: The pipeline used when none is given.
DEFAULT_PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "default.toml"


@dataclass(frozen=True)
class VideoConfig:
    """Video input (the ``[video]`` section)."""

    mapping: tuple[str, ...] = param(
        (), "explicit 'camera=file' pairs (file relative to the video folder) for videos not "
        "named after their camera; by default a video's file stem is its camera name")
    start: int = param(0, "first frame to process", ge=0)
    stop: int | None = param(None, "frame to stop before (unset: the end of the shortest video)",
                             ge=1)  # fmt: skip
    step: int = param(1, "process every N-th frame", ge=1)
    max_bad_run: int = param(
        30, "a video with this many undecodable frames in a row is taken as truncated there",
        ge=1)

    def mapping_dict(self) -> dict[str, str]:
        """``mapping`` as camera -> file; ConfigError on a malformed entry."""
        out = {}
        for item in self.mapping:
            cam, sep, name = item.partition("=")
            if not sep or not cam.strip() or not name.strip():
                raise ConfigError(f"'video.mapping' entries must be 'camera=file', got {item!r}")
            out[cam.strip()] = name.strip()
        return out


@dataclass(frozen=True)
class PipelineConfig:
    """Everything ``mvhand run`` does, stage by stage."""

    video: VideoConfig = param(VideoConfig(), "video input")
    backend: BackendConfig = param(BackendConfig(), "2D model backend")
    detect: DetectConfig = param(DetectConfig(), "person detection and whole-body pose")
    palm: PalmConfig = param(PalmConfig(), "hand-first path: palm detector, no body needed")
    tracking: TrackingConfig = param(TrackingConfig(), "hand tracking")
    hands2d: Hands2DConfig = param(Hands2DConfig(), "2D hand keypoints")
    self_calibration: SelfCalibrationConfig = param(
        SelfCalibrationConfig(), "the cameras' poses refined on the recording's hands and "
        "bodies, when a check on frames it did not see says it helps")  # fmt: skip
    reconstruct: ReconstructConfig = param(ReconstructConfig(), "3D reconstruction")
    people: PeopleConfig = param(PeopleConfig(), "several people (detect.max_people > 1): "
                                 "association across cameras and time, 3D per person-hand")
    person: str = param(
        "primary", "with several people, whose hands go to hands3d.npz (and the fit, "
        "overlays and exports made from it): 'primary' (the person seen in the most views), "
        "a person id (e.g. '1'), or 'near:x,y,z' (the person whose wrists are on average "
        "nearest that point, in the output's units)")
    refine: RefineConfig = param(RefineConfig(), "3D-guided re-detection, then 3D again")
    fit: FitConfig = param(FitConfig(), "hand-model fit (MANO or the kinematic hand)")
    summary: bool = param(True, "write summary.png, a one-page figure of the run's quality")
    export: ExportConfig = param(ExportConfig(), "exports for other tools (TRC, C3D, BVH, ...)")
    overlay: bool = param(False, "also write overlay/<camera>.mp4 (and grid.mp4): the 2D "
                          "keypoints and the reprojected 3D joints on every video (--overlay)")
    units: str | None = param(None, "units of the 3D output (--units); a calibration that does "
                              "not record its units is read as being in these; unset: the "
                              "calibration's (metres if it records none)",
                              choices=("m", "cm", "mm"))  # fmt: skip
    workers: int = param(
        1, "worker processes for the per-camera 2D work and, with several people, the 3D "
        "stage of each person (0: one per CPU core available, at most one per camera or "
        "person; 1: in this process; `mvhand run` defaults to 0); results are the same for "
        "any number", ge=0)


def load_pipeline(path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = ()
                  ) -> PipelineConfig:  # fmt: skip
    """Read a pipeline TOML (default: ``pipelines/default.toml`` if present) and overrides."""
    if path is None and DEFAULT_PIPELINE.is_file():
        path = DEFAULT_PIPELINE
    cfg = load_config(PipelineConfig, path, overrides)
    cfg.video.mapping_dict()  # validate early
    parse_person(cfg.person)
    if cfg.video.stop is not None and cfg.video.stop <= cfg.video.start:
        raise ConfigError(f"'video.stop' ({cfg.video.stop}) must be greater than 'video.start' "
                          f"({cfg.video.start})")  # fmt: skip
    return cfg


def frontend_dict(cfg: PipelineConfig) -> dict:
    """The settings the per-camera 2D results depend on (for the cache key)."""
    d = config_to_dict(cfg)
    return {k: d[k] for k in ("backend", "detect", "palm", "tracking", "hands2d")}


def parse_person(text: str) -> tuple[str, object]:
    """``person`` as ("primary", None), ("id", int) or ("near", (x, y, z)); ConfigError if
    it is none of them.

    Example:
        >>> parse_person("near:0.1, 0.2,0.3")
        ('near', (0.1, 0.2, 0.3))
    """
    t = str(text).strip()
    if t == "primary":
        return "primary", None
    if t.lstrip("-").isdigit():
        return "id", int(t)
    if t.startswith("near:"):
        try:
            xyz = tuple(float(v) for v in t[5:].split(","))
        except ValueError:
            xyz = ()
        if len(xyz) == 3 and all(np.isfinite(xyz)):
            return "near", xyz
    raise ConfigError(f"'person' must be 'primary', a person id or 'near:x,y,z', got {text!r}")
