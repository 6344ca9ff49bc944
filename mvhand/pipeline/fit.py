"""The hand-model fit inside a run folder: fitted to the 3D hands and to their *repaired* 2D
(after the triangulation's left/right repair, inlier views only), never to raw detections."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mvhand.config import config_to_toml
from mvhand.core.camera import Rig
from mvhand.core.data import Hands3D
from mvhand.io.runfolder import Transaction

log = logging.getLogger(__name__)


def fit_inputs(hands3d: Hands3D, rig: Rig | None):
    """The 2D keypoints and rig the fit's reprojection term uses: the inlier views of the 3D
    result's repaired 2D (None, None when the 3D carries no 2D or there is no rig)."""
    if hands3d.views is None or rig is None:
        return None, None
    kp = hands3d.views.inlier_keypoints()
    return kp, rig.subset(kp.cameras)


def write_fit(tx: Transaction, hands3d: Hands3D, cfg, rig: Rig | None) -> dict[str, Any]:
    """Fit ``cfg.model`` to ``hands3d`` and write its files into the staging set ``tx``.

    Returns:
        The report's ``fit`` section: per hand frames fitted and mean joint error.
    """
    from mvhand.fit import run_fit, save_fit

    kp, rig = fit_inputs(hands3d, rig)
    result = run_fit(hands3d, cfg, kp, rig)
    save_fit(tx.dir, result, cfg.mesh_frames, cfg.mesh_format, config_to_toml(cfg))
    return fit_summary(result)


def fit_summary(result) -> dict[str, Any]:
    """Per hand: frames fitted and the mean joint error (in the result's units), logged too."""
    out: dict[str, Any] = {"model": result.model, "units": result.units, "hands": {}}
    for name, fit in result.hands.items():
        err = float(np.nanmean(fit.fit_error)) if np.isfinite(fit.fit_error).any() else None
        out["hands"][name] = {"frames_fitted": int(fit.fitted.sum()),
                              "mean_joint_error": err,
                              "seconds": round(result.timings_s.get(name, 0.0), 3)}  # fmt: skip
        log.info("%s hand: %d frames fitted, mean joint error %.4g %s", name,
                 int(fit.fitted.sum()), err if err is not None else float("nan"), result.units)
    if not result.hands:
        log.warning("the hand-model fit found no hand with usable frames; nothing was fitted")
    return out
