"""Stage 5: the 21 hand keypoints of the tracked crops, cleaned for the 3D stage.

The tracker already ran the hand model on every tracked crop (its crop from the neighbouring
frame *is* the crop the keypoints come from), and mapped them back to full-image pixels. This
stage applies the paper's rules: joints scoring below ``min_joint_score`` are dropped (NaN), the
wrist of a found hand gets confidence 1 (optional), and where the left and right tracks landed
on the same hand the one farther from its own body wrist is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mvhand.config import param
from mvhand.core.crops import BodyHand
from mvhand.stages.track import TrackResult


@dataclass(frozen=True)
class Hands2DConfig:
    """2D hand keypoints (the ``[hands2d]`` section)."""

    min_joint_score: float = param(
        0.1, "joints whose score is below this are dropped (the paper's 0.1)", ge=0.0, le=1.0)
    wrist_score_one: bool = param(
        True, "give the wrist of every found hand confidence 1, as the paper does")
    duplicate_distance: float = param(
        0.25, "left and right hands whose joints are on average closer than this fraction of "
        "the hand's size are one hand seen twice; the one farther from its body wrist is "
        "dropped", ge=0.0, le=1.0)


@dataclass(frozen=True, eq=False)
class Hands2DResult:
    """2D hands of one camera.

    Attributes:
        keypoints_px: ``(T, 2, 21, 2)`` pixels, NaN where missing.
        scores: ``(T, 2, 21)`` in [0, 1], 0 where missing.
        n_duplicates: frames where both tracks were on one hand.
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    n_duplicates: int


def _hand_size(kp: np.ndarray) -> float:
    ok = np.isfinite(kp).all(axis=1)
    if ok.sum() < 2:
        return np.nan
    span = kp[ok].max(axis=0) - kp[ok].min(axis=0)
    return float(np.max(span))


def _drop_duplicates(kp: np.ndarray, sc: np.ndarray,
                     body_hands: Sequence[tuple[BodyHand | None, BodyHand | None]] | None,
                     frac: float) -> int:  # fmt: skip
    """Drop, in place, one of two hands that sit on the same pixels; returns how many."""
    n = 0
    for t in range(kp.shape[0]):
        left, right = kp[t, 0], kp[t, 1]
        both = np.isfinite(left).all(axis=1) & np.isfinite(right).all(axis=1)
        if both.sum() < 5:
            continue
        size = np.nanmax([_hand_size(left), _hand_size(right), 1.0])
        if np.linalg.norm(left[both] - right[both], axis=1).mean() >= frac * size:
            continue
        dist = [np.inf, np.inf]
        for h in range(2):
            b = None if body_hands is None else body_hands[t][h]
            if b is not None and np.isfinite(b.keypoints_px[0]).all():
                dist[h] = float(np.hypot(*(kp[t, h, 0] - b.keypoints_px[0])))
        drop = int(np.argmax(dist)) if np.isfinite(min(dist)) else int(np.argmin(sc[t].mean(1)))
        kp[t, drop], sc[t, drop] = np.nan, 0.0
        n += 1
    return n


def clean_joints(keypoints_px: np.ndarray, scores: np.ndarray, found: np.ndarray | bool,
                 cfg: Hands2DConfig) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The paper's rules on hand-model output: hands not found are emptied, the wrist of a found
    hand gets confidence 1 (``wrist_score_one``), joints below ``min_joint_score`` are dropped.

    Args:
        keypoints_px: ``(..., 21, 2)`` pixels; scores: ``(..., 21)``.
        found: ``(...)`` True where the hand model found the hand.

    Returns:
        Cleaned copies: keypoints (NaN where dropped) and scores (0 where dropped).
    """
    kp = np.array(keypoints_px, dtype=float)
    sc = np.nan_to_num(np.array(scores, dtype=float), nan=0.0)
    found = np.broadcast_to(np.asarray(found, bool), sc.shape[:-1])
    sc[~found] = 0.0
    kp[~found] = np.nan
    if cfg.wrist_score_one:
        sc[..., 0] = np.where(found & np.isfinite(kp[..., 0, :]).all(-1), 1.0, sc[..., 0])
    low = (sc < cfg.min_joint_score) | ~np.isfinite(kp).all(-1)
    kp[low] = np.nan
    sc[low] = 0.0
    return kp, sc


def run_hands2d(track: TrackResult, cfg: Hands2DConfig = Hands2DConfig(),
                body_hands: Sequence[tuple[BodyHand | None, BodyHand | None]] | None = None
                ) -> Hands2DResult:  # fmt: skip
    """Clean the tracked keypoints of one camera.

    Args:
        track: the tracker's output.
        cfg: thresholds.
        body_hands: the body stage's hand estimates per frame, to settle duplicates.
    """
    kp, sc = clean_joints(track.keypoints_px, track.scores, track.track_id >= 0, cfg)
    n_dup = _drop_duplicates(kp, sc, body_hands, cfg.duplicate_distance)
    return Hands2DResult(kp, sc, n_dup)
