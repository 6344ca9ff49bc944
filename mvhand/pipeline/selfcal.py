"""Self-calibration in a run: the scene's points from the 2D, the refined rig, its report
and warnings (the numeric core is :mod:`mvhand.calibrate.selfcal`)."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from mvhand.calibrate.selfcal import ScenePoints, SelfCalibration, SelfCalibrationConfig
from mvhand.calibrate.selfcal import self_calibrate as _self_calibrate
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.people import Detections2D, PeopleResult
from mvhand.core.skeleton import N_JOINTS
from mvhand.core.triangulate import TriangulationConfig, triangulate

log = logging.getLogger(__name__)


def single_person_points(rig: Rig, kp: Keypoints2D, body_px: np.ndarray | None,
                         body_scores: np.ndarray | None, cfg: SelfCalibrationConfig,
                         tri_cfg: TriangulationConfig) -> ScenePoints:  # fmt: skip
    """The joints of one person per camera: hands after the left/right repair (the
    triangulation's), bodies ``(C, T, 17, 2)`` scored at least ``body_min_score``."""
    parts = []
    if cfg.sources in ("hands+body", "hands"):
        views = triangulate(rig.subset(kp.cameras), kp, tri_cfg).views.keypoints
        parts.append(ScenePoints.from_arrays(views.keypoints_px, views.scores, 0))
    if cfg.sources in ("hands+body", "body") and body_px is not None:
        parts.append(ScenePoints.from_arrays(body_px, body_scores, 1, cfg.body_min_score))
    return ScenePoints.concatenate(parts) if parts else _empty(len(kp.cameras))


def people_points(det: Detections2D, res: PeopleResult, cfg: SelfCalibrationConfig
                  ) -> ScenePoints:  # fmt: skip
    """Everybody's joints, as the association put them together: each person-hand's rows
    and each person's body rows."""
    C, T, P = len(det.cameras), det.n_frames, len(res.person_ids)
    parts = []
    if cfg.sources in ("hands+body", "hands"):
        px = np.full((C, T, 2 * P, N_JOINTS, 2), np.nan)
        sc = np.zeros(px.shape[:-1])
        rows, slots = np.nonzero(res.det_hand_person >= 0)
        col = 2 * res.det_hand_person[rows, slots] + res.det_side[rows, slots]
        px[det.camera[rows], det.frame[rows], col] = det.hands_px[rows, slots]
        sc[det.camera[rows], det.frame[rows], col] = det.hands_scores[rows, slots]
        parts.append(ScenePoints.from_arrays(px, sc, 0))
    if cfg.sources in ("hands+body", "body"):
        B = det.body_px.shape[1]
        px = np.full((C, T, P, B, 2), np.nan)
        sc = np.zeros(px.shape[:-1])
        rows = np.flatnonzero(res.det_person >= 0)
        px[det.camera[rows], det.frame[rows], res.det_person[rows]] = det.body_px[rows]
        sc[det.camera[rows], det.frame[rows], res.det_person[rows]] = det.body_scores[rows]
        parts.append(ScenePoints.from_arrays(px, sc, 1, cfg.body_min_score))
    return ScenePoints.concatenate(parts) if parts else _empty(C)


def _empty(C: int) -> ScenePoints:
    return ScenePoints(np.zeros((C, 0, 2)), np.zeros((C, 0)), np.zeros(0, np.int64),
                       np.zeros(0, np.int64))  # fmt: skip


def self_calibrate(rig: Rig, points: ScenePoints, cfg: SelfCalibrationConfig,
                   tri_cfg: TriangulationConfig) -> SelfCalibration:  # fmt: skip
    """The refinement of ``rig`` (its cameras in the points' order), logged; a used
    refinement that turns a camera by more than ``warn_deg`` is a warning."""
    try:
        res = _self_calibrate(rig, points, cfg, replace(tri_cfg, swap_repair=False))
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:  # degenerate points
        log.warning("self-calibration failed (%s): the given cameras are used", exc)
        return SelfCalibration(rig, False, {"applied": False, "reason": f"failed: {exc}"})
    for w in selfcal_warnings(res, cfg):
        log.warning(w)
    if not res.applied:
        log.info("self-calibration not used: %s", res.info.get("reason"))
    return res


def selfcal_warnings(res: SelfCalibration, cfg: SelfCalibrationConfig) -> list[str]:
    """One warning when the scene says the given calibration is off by more than
    ``warn_deg``."""
    if not res.applied:
        return []
    cams = res.info["cameras"]
    off = {c: v for c, v in cams.items() if v["rotation_deg"] > cfg.warn_deg}
    if not off:
        return []
    units = res.info["units"]
    worst = ", ".join(f"{c} {v['rotation_deg']:.1f} deg / {v['moved_' + units]:.3g} {units}"
                      for c, v in sorted(off.items(), key=lambda kv: -kv[1]["rotation_deg"]))
    before, after = res.info["check"]["held_out_median_px"]
    return [f"the calibration disagrees with the recording: self-calibration turned {worst}; "
            f"on frames it did not see, the held-out-camera error fell {before:.1f} -> "
            f"{after:.1f} px, so the refined cameras were used (calibration.toml; the given ones "
            "are in calibration_given.toml; --no-self-calibrate keeps them)"]  # fmt: skip


__all__ = ["SelfCalibration", "SelfCalibrationConfig", "people_points", "self_calibrate",
           "selfcal_warnings", "single_person_points"]
