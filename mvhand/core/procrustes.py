"""Orthogonal Procrustes (Kabsch): the rotation, translation and scale that best map one set
of 3D points onto another, batched over any leading axes.

The one implementation in mvhand: the optimizer's shape term and the PA-MPJPE metric use it.
"""

from __future__ import annotations

import numpy as np


def procrustes(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None,
               scale: bool = False, center: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``R, t, s`` minimising ``sum_n w_n |target_n - (s R source_n + t)|^2`` (a proper rotation).

    Args:
        source: ``(..., N, 3)`` points; NaN rows are ignored.
        target: ``(..., N, 3)`` points, same shape; NaN rows are ignored.
        weights: ``(..., N)`` non-negative weights (default 1); 0 ignores a point.
        scale: also fit the scale ``s`` (else 1).
        center: fit the translation (else ``t = 0``: rotation about the origin).

    Returns:
        ``R (..., 3, 3)``, ``t (..., 3)``, ``s (...)``; the identity (with the centroid shift)
        where fewer than 3 points (1 without ``center``) have weight, NaN where none has.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> src = rng.normal(size=(10, 3))
        >>> R0 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> R, t, s = procrustes(src, 2.0 * src @ R0.T + 1.0, scale=True)
        >>> bool(np.allclose(R, R0) and np.allclose(t, 1.0) and np.isclose(s, 2.0))
        True
    """
    src = np.asarray(source, dtype=float)
    tgt = np.asarray(target, dtype=float)
    w = np.ones(src.shape[:-1]) if weights is None else np.asarray(weights, dtype=float)
    ok = np.isfinite(src).all(-1) & np.isfinite(tgt).all(-1) & (w > 0)
    w = np.where(ok, w, 0.0)
    src = np.where(ok[..., None], src, 0.0)
    tgt = np.where(ok[..., None], tgt, 0.0)
    wsum = w.sum(-1)
    safe = np.where(wsum > 0, wsum, 1.0)[..., None]
    if center:
        mu_s = np.einsum("...n,...ni->...i", w, src) / safe
        mu_t = np.einsum("...n,...ni->...i", w, tgt) / safe
    else:
        mu_s = mu_t = np.zeros(src.shape[:-2] + (3,))
    ps, pt = src - mu_s[..., None, :], tgt - mu_t[..., None, :]
    M = np.einsum("...n,...ni,...nj->...ij", w, ps, pt)  # sum w source target^T
    U, S, Vt = np.linalg.svd(M)
    V, Ut = Vt.swapaxes(-1, -2), U.swapaxes(-1, -2)
    d = np.sign(np.linalg.det(V @ Ut))
    d = np.where(d == 0, 1.0, d)
    D = np.zeros(M.shape)
    D[..., 0, 0] = D[..., 1, 1] = 1.0
    D[..., 2, 2] = d
    R = V @ D @ Ut
    var = np.einsum("...n,...ni,...ni->...", w, ps, ps)
    s = np.ones(wsum.shape)
    if scale:
        trace = S[..., 0] + S[..., 1] + d * S[..., 2]
        s = np.where(var > 0, trace / np.where(var > 0, var, 1.0), 1.0)
    few = ok.sum(-1) < (3 if center else 1)
    R[few] = np.eye(3)
    s = np.where(few, 1.0, s)
    t = mu_t - s[..., None] * np.einsum("...ij,...j->...i", R, mu_s)
    none = wsum <= 0
    R[none], t[none] = np.nan, np.nan
    s = np.where(none, np.nan, s)
    return R, t, s
