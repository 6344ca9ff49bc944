"""3D-guided re-detection: project the first 3D hands into every camera and run the hand model
again on the crops they give.

After the first reconstruction each 3D hand is projected into each camera; where at least
``min_joints`` joints were reconstructed, the rotated crop of the projected 21 joints
(:func:`mvhand.core.crops.crop_from_hand_keypoints`) is given to the 2D hand model, streaming
the video once more. A re-detection is *accepted* when the model's presence reaches
``min_presence`` and its joints lie on average within ``max_offset`` hand sizes of the
projection (so it is the same hand, not the other one or a false hit). An accepted re-detection
*replaces* the first pass where the first pass had no hand, or where it has at least the first
pass's presence and agrees better with the projection. The caller reconstructs again.

Where the first pass already agrees with the projection to within ``skip_offset`` hand sizes
no model call is made (and a video in which no frame needs one is not decoded), which keeps the
added cost to the frames that can gain.

Measured on the Pose2Sim demo (4 cameras x 100 frames, first pass from the cache; CPU times on
a loaded 2-core machine, noisy). First pass: 665 of 800 camera-hands found, 95 frames with both
hands after triangulation alone (7.8 / 8.0 px median reprojection, left / right), 100 after
the optimizer (9.5 / 10.5 px); leave-one-camera-out (triangulate from the other three,
reproject, compare with the held-out camera's own 2D) median 19.1 px, 90th percentile 60.6 px.
Refined, ``skip_offset`` 0.1 / 0.3: 686 camera-hands, 98 frames with both hands after
triangulation (7.5 / 7.0 and 7.7 / 7.3 px), optimizer 8.8 / 10.8 and 9.2 / 11.2 px;
leave-one-out 16.4 / 17.1 px median, 39.0 / 40.6 px 90th percentile; 21 / 12 ms added CPU per
camera-frame (about 7 ms of it decoding the frame again; a hand-model call about 8 ms). The
leave-one-out gain is partly selection: a re-detection is kept where it agrees better with a
projection the other cameras shaped. Off by default: the 2D front-end (about 46 ms per
camera-frame) plus this pass reaches the 60 ms budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from mvhand.backends.base import HandKeypointEstimator
from mvhand.config import param
from mvhand.core.camera import Rig
from mvhand.core.crops import HAND_KEYPOINT_SCALE, crop_from_hand_keypoints
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.stages.hands2d import Hands2DConfig, clean_joints

#: The first pass's joint rules, when the caller gives none.
_JOINT_RULES = Hands2DConfig()

log = logging.getLogger(__name__)

#: ``progress(stage, camera, done, total)`` as in :mod:`mvhand.pipeline.camera2d`.
Progress = Callable[[str, str, int, int], None]


@dataclass(frozen=True)
class RefineConfig:
    """3D-guided re-detection (the ``[refine]`` section)."""

    enabled: bool = param(
        False, "after the first 3D reconstruction, run the hand model again on crops from the "
        "projected 3D hands and reconstruct again with the better 2D")
    min_joints: int = param(
        10, "a 3D hand is projected into a camera only in frames where at least this many of "
        "its joints were reconstructed", ge=3, le=21)
    crop_scale: float = param(
        HAND_KEYPOINT_SCALE, "crop side over the projected hand's extent", gt=1.0, le=4.0)
    min_presence: float = param(
        0.3, "hand-model presence a re-detection needs to be used", ge=0.0, le=1.0)
    max_offset: float = param(
        0.3, "a re-detection is used only if its joints lie on average within this fraction "
        "of the projected hand's size from the projection", gt=0.0)
    skip_offset: float = param(
        0.3, "frames whose first-pass hand lies on average within this fraction of the hand's "
        "size from the projection are not re-detected (0: re-detect every projected hand)",
        ge=0.0)


@dataclass(frozen=True, eq=False)
class RefineResult:
    """The refined 2D of all cameras.

    Attributes:
        keypoints: ``(C, T, H, 21, 2)`` the first pass with accepted re-detections swapped in.
        presence: ``(C, T, H)`` hand-model presence of the kept hand (0 where none).
        replaced: ``(C, T, H)`` True where the re-detection replaced a first-pass hand.
        added: ``(C, T, H)`` True where it filled a hand the first pass missed.
        attempted: ``(C, T, H)`` True where the hand model was run.
        cpu_s: per camera the CPU seconds spent (decoding and model).
    """

    keypoints: Keypoints2D
    presence: np.ndarray
    replaced: np.ndarray
    added: np.ndarray
    attempted: np.ndarray
    cpu_s: dict[str, float] = field(default_factory=dict)

    def stats(self) -> dict:
        """Figures for the report: per camera frames with each hand and what changed."""
        found = np.isfinite(self.keypoints.keypoints_px).all(-1).any(-1)  # (C, T, H)
        out: dict = {}
        for c, cam in enumerate(self.keypoints.cameras):
            d = {f"frames_with_{n}_hand": int(found[c, :, h].sum())
                 for h, n in enumerate(self.keypoints.hands)}  # fmt: skip
            d.update(hand_model_calls=int(self.attempted[c].sum()),
                     hands_added=int(self.added[c].sum()),
                     hands_replaced=int(self.replaced[c].sum()),
                     cpu_s=round(self.cpu_s.get(cam, 0.0), 3))  # fmt: skip
            out[cam] = d
        return out


def project_hands(hands3d: Hands3D, rig: Rig, min_joints: int) -> np.ndarray:
    """The 3D hands in every camera, ``(C, T, H, 21, 2)`` px; NaN for hands with fewer than
    ``min_joints`` reconstructed joints."""
    X = np.asarray(hands3d.keypoints3d, dtype=float)
    enough = np.isfinite(X).all(-1).sum(-1) >= min_joints  # (T, H)
    X = np.where(enough[..., None, None], X, np.nan)
    return np.asarray(rig.project(X), dtype=float)


def _hand_size(proj: np.ndarray) -> np.ndarray:
    """``(...)`` larger side of the bounding box of ``(..., 21, 2)`` points (NaN-aware)."""
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            span = np.nanmax(proj, axis=-2) - np.nanmin(proj, axis=-2)
    return np.max(span, axis=-1)


def offset(kp: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Mean distance of ``kp`` from ``proj`` over joints finite in both, in hand sizes;
    shapes ``(..., 21, 2)`` -> ``(...)``, NaN where no joint is shared."""
    d = np.linalg.norm(kp - proj, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(d, axis=-1) / np.maximum(_hand_size(proj), 1.0)


def plan_refine(kp: np.ndarray, proj: np.ndarray, cfg: RefineConfig) -> np.ndarray:
    """``(..., )`` True where the hand model should run: a projected hand whose first-pass 2D
    is missing or off the projection by more than ``skip_offset`` hand sizes."""
    has_proj = np.isfinite(proj).all(-1).sum(-1) >= 3
    off = offset(kp, proj)
    good = np.isfinite(off) & (off < cfg.skip_offset)
    return has_proj & ~good


def _decide(old_kp: np.ndarray, old_presence: float, new_kp: np.ndarray, new_presence: float,
            proj: np.ndarray, cfg: RefineConfig) -> str:  # fmt: skip
    """'add', 'replace' or 'keep' for one camera, frame and hand."""
    new_off = float(offset(new_kp, proj))
    if new_presence < cfg.min_presence or not np.isfinite(new_off) or new_off > cfg.max_offset:
        return "keep"
    if np.isfinite(new_kp).all(-1).sum() < 3:
        return "keep"
    if not np.isfinite(old_kp).all(-1).any():
        return "add"
    old_off = float(offset(old_kp, proj))
    if new_presence >= old_presence and (not np.isfinite(old_off) or new_off < old_off):
        return "replace"
    return "keep"


def frames_needed(todo: np.ndarray) -> int:
    """How many leading frames of a camera must be decoded for ``todo`` ``(T, H)`` (0: none)."""
    return int(np.flatnonzero(todo.any(axis=1)).max()) + 1 if todo.any() else 0


def estimate_crops(model: HandKeypointEstimator, image: np.ndarray, crops: list) -> list:
    """The hand model on every crop of one frame: in one batch where the backend offers
    ``estimate_batch`` (OpenMMLab), else one by one."""
    if not crops:
        return []
    batch = getattr(model, "estimate_batch", None)
    return list(batch(image, crops)) if batch is not None else [
        model.estimate(image, crop) for crop in crops]


def _refine_camera(images: Iterable, c: int, kp: Keypoints2D, presence: np.ndarray,
                   proj: np.ndarray, todo: np.ndarray, model: HandKeypointEstimator,
                   cfg: RefineConfig, joints: Hands2DConfig, out: dict,
                   progress: Progress) -> None:  # fmt: skip
    """Re-detect camera ``c`` in place into the arrays of ``out``."""
    T = kp.n_frames
    if not todo.any():
        return
    for i, image in enumerate(images):
        if i >= T:
            break
        progress("refine", kp.cameras[c], i + 1, T)
        if image is None:
            continue
        crops = {int(h): crop_from_hand_keypoints(proj[i, h], scale=cfg.crop_scale)
                 for h in np.flatnonzero(todo[i])}  # fmt: skip
        crops = {h: crop for h, crop in crops.items() if crop is not None}
        for h, res in zip(crops, estimate_crops(model, image, list(crops.values())),
                          strict=True):  # fmt: skip
            out["attempted"][c, i, h] = True
            new_kp, new_sc = clean_joints(res.keypoints_px, res.scores, True, joints)
            what = _decide(kp.keypoints_px[c, i, h], float(presence[i, h]), new_kp,
                           float(res.presence), proj[i, h], cfg)  # fmt: skip
            if what == "keep":
                continue
            out["kp"][c, i, h], out["sc"][c, i, h] = new_kp, new_sc
            out["presence"][c, i, h] = float(res.presence)
            out["added" if what == "add" else "replaced"][c, i, h] = True


def run_refine(images: Callable[[str, int], Iterable], kp: Keypoints2D, hands3d: Hands3D,
               rig: Rig, hand_model: HandKeypointEstimator, cfg: RefineConfig = RefineConfig(),
               presence: np.ndarray | None = None, *,
               joints: Hands2DConfig = _JOINT_RULES,
               progress: Progress | None = None) -> RefineResult:  # fmt: skip
    """Re-detect the 2D hands of every camera from the projected 3D hands.

    Args:
        images: ``images(camera, n)`` yields the first ``n`` processed frames of that camera
            as images (None for a frame that could not be decoded), in the order of ``kp``'s
            frames; it is not called for a camera that needs no re-detection.
        kp: the first-pass 2D keypoints ``(C, T, H, 21, 2)``.
        hands3d: the first reconstruction ``(T, H, 21, 3)`` in ``rig``'s units.
        rig: the calibration (cameras matched by name).
        hand_model: the 2D hand model (full-image pixels in and out).
        cfg: thresholds.
        joints: the first pass's joint rules (threshold, wrist), applied to re-detections too.
        presence: ``(C, T, H)`` first-pass hand-model presence (None: the highest joint score
            other than the wrist, which the backends derive from the presence).
        progress: ``progress("refine", camera, done, total)``.

    Returns:
        The refined 2D and what changed.
    """
    progress = progress or (lambda *a: None)
    rig = rig.subset(kp.cameras)
    proj = project_hands(hands3d, rig, cfg.min_joints)  # (C, T, H, 21, 2)
    if presence is None:
        presence = kp.scores[..., 1:].max(axis=-1)
    todo = plan_refine(kp.keypoints_px, proj, cfg)
    shape = kp.keypoints_px.shape[:3]
    out = {"kp": kp.keypoints_px.copy(), "sc": kp.scores.copy(),
           "presence": np.asarray(presence, dtype=float).copy(),
           "attempted": np.zeros(shape, bool), "added": np.zeros(shape, bool),
           "replaced": np.zeros(shape, bool)}  # fmt: skip
    cpu: dict[str, float] = {}
    for c, cam in enumerate(kp.cameras):
        t0 = time.process_time()
        n = frames_needed(todo[c])
        if n:
            _refine_camera(images(cam, n), c, kp, out["presence"][c], proj[c], todo[c],
                           hand_model, cfg, joints, out, progress)  # fmt: skip
        cpu[cam] = time.process_time() - t0
    refined = Keypoints2D(out["kp"], out["sc"], kp.cameras, kp.hands, kp.fps)
    return RefineResult(refined, out["presence"], out["replaced"], out["added"],
                        out["attempted"], cpu)  # fmt: skip
