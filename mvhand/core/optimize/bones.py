"""Bone lengths shared over a sequence: their estimate and the bone-length residuals."""

from __future__ import annotations

import warnings

import numpy as np

from mvhand.core.optimize.residuals import var
from mvhand.core.skeleton import BONES


def initial_lengths(x: np.ndarray) -> np.ndarray:
    """Median length of each bone over the frames where both ends are finite (20,)."""
    d = np.linalg.norm(x[:, BONES[:, 1]] - x[:, BONES[:, 0]], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bone never seen: NaN
        return np.nanmedian(d, axis=0) if len(d) else np.full(len(BONES), np.nan)


def frame_lengths(x: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per-frame bone lengths (T, 20), NaN where a bone's ends are not both active."""
    ok = active[:, BONES[:, 0]] & active[:, BONES[:, 1]]
    d = np.linalg.norm(x[:, BONES[:, 1]] - x[:, BONES[:, 0]], axis=-1)
    return np.where(ok, d, np.nan)


def median_lengths(d: np.ndarray, initial: np.ndarray, n_initial: np.ndarray) -> np.ndarray:
    """Per bone, the weighted median of the lengths ``d`` (T, 20) (weight 1 each) and of
    ``initial`` (weight ``n_initial``); ``initial`` where there is nothing."""
    if not np.any(n_initial > 0):  # one window (the usual case): a plain median per bone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # bones never seen: NaN
            med = np.nanmedian(d, axis=0) if len(d) else np.full(d.shape[1], np.nan)
        return np.where(np.isfinite(med), med, initial)
    out = initial.copy()
    for b in range(d.shape[1]):
        vals = d[np.isfinite(d[:, b]), b]
        w = np.ones(len(vals))
        if np.isfinite(initial[b]) and n_initial[b] > 0:
            vals, w = np.append(vals, initial[b]), np.append(w, n_initial[b])
        if len(vals) == 0:
            continue
        order = np.argsort(vals)
        cum = np.cumsum(w[order])
        out[b] = vals[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return out


class LengthState:
    """Bone lengths shared over the sequence, estimated window by window.

    Given the joints, each bone's length is the median of its per-frame lengths: robust to
    frames where a joint is badly placed. (The mean, the least-squares minimiser, lets a few
    stretched frames raise every frame's target length, and the bone term then stretches the
    whole sequence: on real detections that inflated hands by a third.) Lengths of finished
    windows are kept (20 floats per frame); frames of windows still to come count with the
    initial estimate (the median over the initial joints), so that every window sees the whole
    sequence.
    """

    def __init__(self, initial: np.ndarray, active: np.ndarray) -> None:
        self.initial = initial
        self.done: list[np.ndarray] = []  # per finished frame and bone, NaN where unused
        remaining = frame_lengths(np.zeros(active.shape + (3,)), active)
        self.remaining = np.isfinite(remaining).sum(0).astype(float)

    def estimate(self, x: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Lengths (20,) mm for window joints ``x`` (T, J, 3) mm with mask ``active``."""
        d = frame_lengths(x, active)
        future = np.maximum(self.remaining - np.isfinite(d).sum(0), 0.0)
        return median_lengths(np.concatenate([*self.done, d]), self.initial, future)

    def commit(self, x: np.ndarray, active: np.ndarray) -> None:
        """Keep the lengths of finished frames ``x`` (T, J, 3) mm."""
        d = frame_lengths(x, active)
        self.done.append(d)
        self.remaining -= np.isfinite(d).sum(0)

    def final(self) -> np.ndarray:
        if not self.done:
            return self.initial
        return median_lengths(np.concatenate(self.done), self.initial, np.zeros(len(BONES)))


def bone_rows(x: np.ndarray, L: np.ndarray, active: np.ndarray, sw: float):
    """Rows ``sw * (|x_child - x_parent| - L_b)`` for each frame and bone with both ends.

    Returns:
        ``(residuals (R,), variable indices (R, 6), Jacobian (R, 6))``.
    """
    par, chi = BONES[:, 0], BONES[:, 1]
    t, b = np.nonzero(active[:, par] & active[:, chi])
    d = x[t, chi[b]] - x[t, par[b]]
    norm = np.linalg.norm(d, axis=-1)
    known = np.isfinite(L[b])
    res = np.where(known, sw * (norm - np.nan_to_num(L[b])), 0.0)
    unit = np.where(known[:, None], d / np.maximum(norm, 1e-9)[:, None], 0.0)
    k = np.arange(3)
    idx = np.concatenate([var(t[:, None], chi[b, None], k), var(t[:, None], par[b, None], k)],
                         axis=1)  # fmt: skip
    return res, idx, sw * np.concatenate([unit, -unit], axis=1)
