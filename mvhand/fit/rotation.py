"""Batched rotation helpers for the hand models (numpy only, no I/O).

Rotations are axis-angle vectors (radians, right-hand rule) or 3x3 matrices acting on column
vectors: ``x_out = R @ x_in``.
"""

from __future__ import annotations

import numpy as np


def rodrigues(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle vectors ``(..., 3)`` rad to rotation matrices ``(..., 3, 3)``.

    Exact near zero (Taylor series of the coefficients), vectorized over leading axes.

    Example:
        >>> R = rodrigues(np.array([0.0, 0.0, np.pi / 2]))
        >>> np.round(R @ [1.0, 0.0, 0.0], 6)
        array([0., 1., 0.])
    """
    r = np.asarray(rotvec, dtype=float)
    theta2 = np.einsum("...i,...i->...", r, r)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*r.shape[:-1], 3, 3)
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)


def rotvec_from_matrix(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` to axis-angle vectors ``(..., 3)`` rad."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, dtype=float)
    flat = R.reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(*R.shape[:-2], 3)


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotations about coordinate axis ``axis`` (0 x, 1 y, 2 z) by ``angle`` ``(...)`` rad.

    Returns:
        ``(..., 3, 3)`` matrices.
    """
    angle = np.asarray(angle, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def kabsch(source: np.ndarray, target: np.ndarray,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Rigid transform (no scale) that best maps ``source`` onto ``target``, batched.

    Args:
        source: ``(..., N, 3)`` points.
        target: ``(..., N, 3)`` points; NaN rows are ignored (weight 0).
        weights: ``(..., N)`` non-negative weights, or None for 1.

    Returns:
        ``R (..., 3, 3)`` and ``t (..., 3)`` with ``target ~ source @ R.T + t``. Batches with
        fewer than 3 usable points give NaN.
    """
    from mvhand.core.procrustes import procrustes

    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    w = np.ones(target.shape[:-1]) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(target).all(-1) & np.isfinite(source).all(-1) & (w > 0)
    R, t, _ = procrustes(source, target, np.where(ok, w, 0.0))
    bad = ok.sum(-1) < 3  # procrustes returns the identity there; the fits want "unknown"
    R, t = np.array(R, dtype=float), np.array(t, dtype=float)
    R[bad] = np.nan
    t[bad] = np.nan
    return R, t
