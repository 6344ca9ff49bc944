"""Evaluation metrics for 2D and 3D hand keypoints, as the surgical hand-pose paper defines them.

Every metric is computed in two steps: first a per-joint error array, then an aggregate. The
error arrays share one convention, which is how misses are counted instead of crashing:

- ``NaN``: there is no ground truth for that joint (not annotated, or excluded); not scored.
- ``inf``: there is ground truth but the prediction is missing (a miss). A miss never counts
  as correct in a PCK, is left out of mean errors (MJE, MPJPE; see :func:`mean_error`), and
  lowers :func:`completeness`.
- a finite value: the distance between prediction and ground truth.

Metrics (units in the names):

- 2D mean joint error, MJE (px): :func:`point_errors` on pixels, then :func:`mean_error`.
- mean PCK2D at 5/10/20/30 px: :func:`pck` with ``PCK2D_THRESHOLDS_PX``, then the mean.
- COCO-style OKS AP: :func:`oks` (sigmas ``HAND_OKS_SIGMAS``) and :func:`average_precision`.
- 3D MPJPE (mm): :func:`point_errors` on millimetres; PA-MPJPE: :func:`pa_point_errors`.
- reprojection error (px): :func:`reprojection_errors`.
- mean PCK3D at 5/10/25/50 mm: :func:`pck` with ``PCK3D_THRESHOLDS_MM``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mvhand.core.camera import Rig
from mvhand.core.procrustes import procrustes
from mvhand.core.skeleton import JOINT_NAMES

PCK2D_THRESHOLDS_PX: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0)
PCK3D_THRESHOLDS_MM: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0)

#: Per-keypoint OKS sigmas for the 21 hand joints (mvhand order): those of the COCO-WholeBody
#: hand keypoints, as used by its official evaluation and by MMPose's ``coco_wholebody_hand``.
HAND_OKS_SIGMAS: np.ndarray = np.array([
    0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024,
    0.022, 0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031,
])  # fmt: skip

#: COCO's OKS thresholds for AP: 0.50, 0.55, ..., 0.95.
OKS_THRESHOLDS: np.ndarray = np.round(np.arange(0.5, 0.951, 0.05), 2)

#: The joints the paper leaves out of its ground truth.
PAPER_EXCLUDED_JOINTS: tuple[str, ...] = ("wrist", "thumb_cmc")


def joint_mask(exclude: Sequence[str] = ()) -> np.ndarray:
    """Boolean ``(21,)`` mask of the joints that are scored.

    Args:
        exclude: joint names (``mvhand.core.skeleton.JOINT_NAMES``) to leave out.

    Raises:
        ValueError: an unknown joint name.
    """
    unknown = [j for j in exclude if j not in JOINT_NAMES]
    if unknown:
        raise ValueError(f"unknown joint name(s) {unknown}; known: {', '.join(JOINT_NAMES)}")
    return np.array([name not in exclude for name in JOINT_NAMES])


def point_errors(pred: np.ndarray, gt: np.ndarray, joints: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance per joint, with NaN (no ground truth) and inf (missed) as documented.

    Args:
        pred: ``(..., J, D)`` predictions, NaN where missing.
        gt: ``(..., J, D)`` ground truth in the same units, NaN where absent.
        joints: optional ``(J,)`` boolean mask of scored joints (see :func:`joint_mask`).

    Returns:
        ``(..., J)`` errors in the input units.

    Example:
        >>> gt = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, np.nan]])
        >>> pred = np.array([[3.0, 4.0], [np.nan, np.nan], [0.0, 0.0]])
        >>> point_errors(pred, gt)
        array([ 5., inf, nan])
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    err = np.linalg.norm(pred - gt, axis=-1)
    has_gt = np.isfinite(gt).all(axis=-1)
    has_pred = np.isfinite(pred).all(axis=-1)
    err = np.where(has_gt & ~has_pred, np.inf, err)
    err = np.where(has_gt, err, np.nan)
    if joints is not None:
        err = np.where(np.asarray(joints, dtype=bool), err, np.nan)
    return err


def mean_error(errors: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray | float:
    """Mean of the finite errors (misses and absent ground truth left out); NaN if none."""
    e = np.asarray(errors, dtype=float)
    finite = np.isfinite(e)
    total = np.where(finite, e, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def completeness(errors: np.ndarray) -> float:
    """Fraction of joints with ground truth that were predicted (misses lower it); NaN if none."""
    e = np.asarray(errors, dtype=float)
    scored = ~np.isnan(e)
    n = int(scored.sum())
    return float(np.isfinite(e).sum() / n) if n else float("nan")


def pck(errors: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Percentage of correct keypoints at each threshold, misses counted as wrong.

    Args:
        errors: per-joint errors in any shape (see the module docstring for NaN and inf).
        thresholds: ``(K,)`` distances in the errors' units; a joint is correct if its
            error is <= the threshold.

    Returns:
        ``(K,)`` percentages in [0, 100]; NaN if nothing is scored.

    Example:
        >>> pck(np.array([1.0, 7.0, np.inf, np.nan]), [5.0, 10.0])
        array([33.33333333, 66.66666667])
    """
    e = np.asarray(errors, dtype=float).ravel()
    e = e[~np.isnan(e)]
    thr = np.asarray(thresholds, dtype=float)
    if e.size == 0:
        return np.full(thr.shape, np.nan)
    return 100.0 * (e[None, :] <= thr[:, None]).mean(axis=1)


def pck_curve(errors: np.ndarray, max_threshold: float,
              n: int = 50) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """PCK at ``n`` thresholds from 0 to ``max_threshold``: ``(thresholds, percentages)``."""
    thr = np.linspace(0.0, max_threshold, n)
    return thr, pck(errors, thr)


def procrustes_align(pred: np.ndarray, gt: np.ndarray, scale: bool = True) -> np.ndarray:
    """Similarity-align ``pred`` to ``gt`` (rotation, translation and optionally scale).

    Uses the joints finite in both; with fewer than 3 such joints the prediction is returned
    translated onto the ground truth's centroid only (NaN if none).

    Args:
        pred: ``(J, 3)`` predicted joints.
        gt: ``(J, 3)`` ground truth joints.
        scale: also fit a scale factor (the usual PA-MPJPE).

    Returns:
        ``(J, 3)`` aligned prediction (NaN stays NaN).
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    R, t, s = procrustes(pred, gt, scale=scale)
    if not np.isfinite(s):  # no joint finite in both
        return np.full_like(pred, np.nan)
    return s * pred @ R.T + t


def pa_point_errors(pred: np.ndarray, gt: np.ndarray,
                    joints: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Per-joint errors after Procrustes alignment of each hand in each frame (PA-MPJPE).

    Args:
        pred: ``(..., J, 3)``; gt: ``(..., J, 3)``; joints: optional ``(J,)`` scored mask.
            The alignment uses the scored joints only.

    Returns:
        ``(..., J)`` errors with the NaN / inf convention of :func:`point_errors`.
    """
    pred = np.asarray(pred, dtype=float)
    gt = np.asarray(gt, dtype=float)
    if joints is not None:
        gt = np.where(np.asarray(joints, dtype=bool)[:, None], gt, np.nan)
    flat_p = pred.reshape(-1, *pred.shape[-2:])
    flat_g = gt.reshape(-1, *gt.shape[-2:])
    R, t, sc = procrustes(flat_p, flat_g, scale=True)  # batched over hands and frames
    aligned = sc[:, None, None] * np.einsum("nij,nkj->nki", R, flat_p) + t[:, None]
    aligned = np.where(np.isfinite(flat_p).all(-1, keepdims=True), aligned, np.nan)
    return point_errors(aligned.reshape(pred.shape), gt, joints)


def reprojection_errors(rig: Rig, points3d: np.ndarray, gt2d_px: np.ndarray,
                        joints: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Pixel distance between projected 3D predictions and 2D ground truth in every camera.

    Args:
        rig: the calibration, in the units of ``points3d``.
        points3d: ``(T, H, J, 3)`` predicted joints, NaN where missing.
        gt2d_px: ``(C, T, H, J, 2)`` 2D ground truth (annotations), NaN where absent.
        joints: optional ``(J,)`` scored mask.

    Returns:
        ``(C, T, H, J)`` errors in pixels (NaN / inf as in :func:`point_errors`).
    """
    return point_errors(rig.project(points3d), gt2d_px, joints)


def oks(pred_px: np.ndarray, gt_px: np.ndarray, visible: np.ndarray, area_px2: np.ndarray,
        sigmas: np.ndarray = HAND_OKS_SIGMAS) -> np.ndarray:  # fmt: skip
    """COCO object keypoint similarity of each prediction with its ground truth.

    ``OKS = mean over labeled joints of exp(-d^2 / (2 * area * (2 sigma)^2))``, as COCO's
    ``computeOks``; a missing predicted joint contributes 0.

    Args:
        pred_px: ``(N, J, 2)`` predicted keypoints, NaN where missing.
        gt_px: ``(N, J, 2)`` annotated keypoints.
        visible: ``(N, J)`` True where the joint is labeled (COCO v > 0).
        area_px2: ``(N,)`` object scale squared: the annotation's area (hand box w * h).
        sigmas: ``(J,)`` per-keypoint sigmas.

    Returns:
        ``(N,)`` OKS in [0, 1]; NaN for an annotation without labeled joints.
    """
    d2 = ((np.asarray(pred_px, float) - np.asarray(gt_px, float)) ** 2).sum(-1)
    var = (2.0 * np.asarray(sigmas, float)) ** 2
    area = np.asarray(area_px2, dtype=float)[:, None]
    e = d2 / (2.0 * var[None, :] * (area + np.spacing(1)))
    sim = np.where(np.isfinite(e), np.exp(-np.where(np.isfinite(e), e, 0.0)), 0.0)
    vis = np.asarray(visible, dtype=bool)
    n = vis.sum(-1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, (sim * vis).sum(-1) / np.maximum(n, 1), np.nan)


def average_precision(oks_values: np.ndarray, scores: np.ndarray, n_gt: int,
                      thresholds: Sequence[float] = tuple(OKS_THRESHOLDS)) -> float:  # fmt: skip
    """COCO-style AP (101-point interpolated precision, averaged over OKS thresholds).

    Each prediction is already paired with one ground truth instance (same camera, frame and
    hand) or with none; pairing is by identity, not by greedy matching.

    Args:
        oks_values: ``(N,)`` OKS of each prediction with its ground truth; NaN or -1 for a
            prediction without ground truth (always a false positive).
        scores: ``(N,)`` prediction confidences used to rank them.
        n_gt: number of ground truth instances (missed ones count against recall).
        thresholds: OKS thresholds.

    Returns:
        AP in [0, 100]; NaN if ``n_gt`` is 0.
    """
    if n_gt <= 0:
        return float("nan")
    o = np.nan_to_num(np.asarray(oks_values, dtype=float), nan=-1.0)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    o = o[order]
    recall_pts = np.linspace(0.0, 1.0, 101)
    aps = []
    for thr in thresholds:
        tp = np.cumsum(o >= thr)
        fp = np.cumsum(o < thr)
        sampled = np.zeros(recall_pts.size)
        if o.size:
            recall = tp / n_gt
            precision = tp / (tp + fp)
            # COCO: make precision non-increasing, then sample it at 101 recall levels
            precision = np.maximum.accumulate(precision[::-1])[::-1]
            idx = np.searchsorted(recall, recall_pts, side="left")
            ok = idx < precision.size
            sampled[ok] = precision[idx[ok]]
        aps.append(sampled.mean())
    return 100.0 * float(np.mean(aps))


def bbox_area(gt_px: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Area ``(N,)`` px^2 of the box around the labeled joints of each ``(N, J, 2)`` instance."""
    vis = np.asarray(visible, bool)[..., None]
    pts = np.asarray(gt_px, float)
    hi = np.where(vis, pts, -np.inf).max(axis=-2)
    lo = np.where(vis, pts, np.inf).min(axis=-2)
    span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    return span[..., 0] * span[..., 1]
