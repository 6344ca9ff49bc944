"""Which joints the optimizer solves for (short gaps bridged), and the windows of a sequence."""

from __future__ import annotations

import numpy as np


def bridge_gaps(x: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Joints to solve for and their initial values.

    Args:
        x: ``(T, J, 3)`` initial joints, NaN where missing.
        max_gap: longest run of missing frames to bridge.

    Returns:
        ``active`` (T, J) bool: finite joints plus interior gaps of at most ``max_gap`` frames;
        ``x0`` (T, J, 3): ``x`` with bridged gaps filled by linear interpolation, 0 elsewhere.

    Example:
        >>> x = np.zeros((5, 1, 3)); x[1:3] = np.nan; x[4] = 3.0
        >>> active, x0 = bridge_gaps(x, 2)
        >>> active[:, 0].tolist(), x0[:, 0, 0].tolist()
        ([True, True, True, True, True], [0.0, 0.0, 0.0, 0.0, 3.0])
    """
    T, J, _ = x.shape
    anchored = np.isfinite(x).all(-1)
    active = anchored.copy()
    x0 = np.where(anchored[..., None], x, 0.0)
    frames = np.arange(T)
    for j in range(J):
        known = frames[anchored[:, j]]
        if len(known) < 2:
            continue
        gaps = np.diff(known) - 1
        for k in np.flatnonzero((gaps > 0) & (gaps <= max_gap)):
            active[known[k] + 1 : known[k + 1], j] = True
        fill = active[:, j] & ~anchored[:, j]
        for d in range(3):
            x0[fill, j, d] = np.interp(frames[fill], known, x[known, j, d])
    return active, x0


def windows(T: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of windows of ``window`` frames overlapping by ``overlap``.

    Example:
        >>> windows(10, 4, 1)
        [(0, 4), (3, 7), (6, 10)]
    """
    if T <= window:
        return [(0, T)]
    step = window - overlap
    out = []
    start = 0
    while True:
        stop = min(start + window, T)
        out.append((max(0, stop - window), stop))
        if stop == T:
            return out
        start += step
