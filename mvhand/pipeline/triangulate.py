"""``mvhand triangulate`` as a library call: 2D keypoints + calibration -> a run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mvhand.config import config_to_toml
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.errors import InputError
from mvhand.io.calibration import save_calibration
from mvhand.io.results import save_hands3d, save_hands3d_csv
from mvhand.io.runfolder import RunFolder, check_output_dir
from mvhand.pipeline.report import (
    assemble,
    collect_warnings,
    empty_result_reason,
    reconstruction_section,
)
from mvhand.pipeline.selfcal import SelfCalibrationConfig, self_calibrate, single_person_points
from mvhand.stages.reconstruct import ReconstructConfig, ReconstructResult, run_reconstruct

log = logging.getLogger(__name__)


def triangulate_to_folder(kp: Keypoints2D, rig: Rig, out_dir: str | Path,
                          cfg: ReconstructConfig | None = None,
                          inputs: dict[str, Any] | None = None,
                          self_calibration: SelfCalibrationConfig | None = None
                          ) -> tuple[ReconstructResult, dict[str, Any]]:  # fmt: skip
    """Reconstruct ``kp`` and publish hands3d.npz/.csv, calibration, config and report.

    With ``self_calibration`` (enabled), the cameras are first refined on the hands (as
    ``mvhand run`` does, without bodies) when its check says it helps; the refined cameras
    then go to calibration.toml and the given ones to calibration_given.toml.

    Raises:
        InputError: nothing could be reconstructed (the message says why); nothing is written.
    """
    cfg = cfg if cfg is not None else ReconstructConfig()
    folder = RunFolder(out_dir)
    check_output_dir(folder.root)
    with collect_warnings() as warnings:
        if kp.n_cameras < 2:
            raise InputError(f"3D needs at least two cameras; the keypoints have "
                             f"{kp.n_cameras} ({', '.join(kp.cameras)})")  # fmt: skip
        given = rig = rig.subset(kp.cameras)
        selfcal = None
        if self_calibration is not None and self_calibration.enabled:
            selfcal = self_calibrate(rig, single_person_points(
                rig, kp, None, None, self_calibration, cfg.triangulation), self_calibration,
                cfg.triangulation)  # fmt: skip
            rig = selfcal.rig
        rec = run_reconstruct(kp, rig, cfg)
        reason = empty_result_reason(rec.hands3d, cfg.triangulation.min_score)
        if reason is not None:
            raise InputError(f"no 3D joint could be reconstructed: {reason}")
        section, consistency = reconstruction_section(rec, rig)
        for w in consistency:
            log.warning(w)
        with folder.transaction() as tx:
            save_hands3d(tx.path("hands3d"), rec.hands3d, kp.fps, tx.run_id)
            save_hands3d_csv(tx.path("hands3d_csv"), rec.hands3d)
            save_calibration(tx.path("calibration"), rig)
            extra = {}
            if selfcal is not None:
                extra["self_calibration"] = selfcal.info
                if selfcal.applied:
                    save_calibration(tx.path("calibration_given"), given)
            report = assemble(warnings, reconstruction=section, inputs=inputs, **extra)
            tx.write_config(config_to_toml(cfg))
            tx.write_report(report)
    return rec, {"run_id": tx.run_id, **report}
