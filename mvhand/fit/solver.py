"""Levenberg-Marquardt over a whole sequence with block-banded normal equations (numpy/scipy).

Unknowns: per-frame parameters ``x (N, P)`` and shared parameters ``s (S,)`` (hand shape).
Residuals: per-frame data blocks whose Jacobians are dense ``(R, P)`` and ``(R, S)`` per frame,
plus linear terms (temporal smoothness between linked neighbours, a Gaussian prior on the
articulation, a prior on ``s``). The frame part of ``J^T J`` is banded (bandwidth ``P``: frame
t couples only to t +- 1 through the smoothness), so each step is one banded Cholesky
factorisation and a Schur complement for the few shared parameters: linear in N. The
iterations run on mvhand's one Levenberg-Marquardt core
(:func:`mvhand.core.optimize.levenberg_marquardt`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded

from mvhand.core.optimize.solver import Damping, single_threaded_blas
from mvhand.core.optimize.solver import levenberg_marquardt as lm_core

#: ``(x, s, with_jacobian) -> (r (N, R), J (N, R, P) | None, Js (N, R, S) | None)``
DataFn = Callable[[np.ndarray, np.ndarray, bool], tuple]


@dataclass(frozen=True)
class Terms:
    """The linear regularisers of the problem.

    Attributes:
        smooth: ``(P,)`` square-root weights of ``x[t+1] - x[t]`` per parameter.
        links: ``(N - 1,)`` True where frames t and t + 1 are neighbours in time.
        prior: ``(P,)`` square-root weights of ``x - prior_mean`` (0 = no prior).
        prior_mean: ``(P,)``.
        shared_prior: square-root weight of ``s`` (towards 0).
        lower, upper: ``(P,)`` hard bounds (±inf where none); steps are clipped to them.
        free: ``(P,)`` False for parameters held fixed.
        free_shared: whether ``s`` is optimised.
    """

    smooth: np.ndarray
    links: np.ndarray
    prior: np.ndarray
    prior_mean: np.ndarray
    shared_prior: float
    lower: np.ndarray
    upper: np.ndarray
    free: np.ndarray
    free_shared: bool = True


def _linear_residuals(x: np.ndarray, s: np.ndarray, t: Terms) -> np.ndarray:
    rs = (t.smooth * (x[1:] - x[:-1]))[t.links]
    rp = t.prior * (x - t.prior_mean)
    return np.concatenate([rs.ravel(), rp.ravel(), t.shared_prior * s])


def cost(data: DataFn, x: np.ndarray, s: np.ndarray, t: Terms) -> float:
    """Half the sum of squared residuals."""
    r = data(x, s, False)[0]
    return 0.5 * (float(np.sum(r * r)) + float(np.sum(_linear_residuals(x, s, t) ** 2)))


def _banded(blocks: np.ndarray, coupling: np.ndarray) -> np.ndarray:
    """Upper banded storage (u = P) of a block-tridiagonal matrix with diagonal off-blocks."""
    N, P, _ = blocks.shape
    ab = np.zeros((P + 1, N * P))
    base = (np.arange(N) * P)[:, None]
    for d in range(P):
        a = np.arange(P - d)
        ab[P - d, (base + a + d).ravel()] = blocks[:, a, a + d].ravel()
    ab[0, P:] = coupling.ravel()
    return ab


def _normal_equations(r, J, Js, x, s, t: Terms):
    """Blocks of ``J^T J`` and ``J^T r`` including the linear terms."""
    N, P = x.shape
    Jt = J.transpose(0, 2, 1)  # batched BLAS products: einsum would be ~20x slower here
    H = Jt @ J
    g = (Jt @ r[..., None])[..., 0]
    Hfs = Jt @ Js
    Js_flat = Js.reshape(Js.shape[0] * Js.shape[1], Js.shape[-1])
    Hss = Js_flat.T @ Js_flat + t.shared_prior**2 * np.eye(s.size)
    gs = Js_flat.T @ r.ravel() + t.shared_prior**2 * s
    w = t.smooth**2 * t.links[:, None]  # (N - 1, P)
    diff = w * (x[1:] - x[:-1])
    idx = np.arange(P)
    H[:-1, idx, idx] += w
    H[1:, idx, idx] += w
    g[:-1] -= diff
    g[1:] += diff
    H[:, idx, idx] += t.prior**2
    g += t.prior**2 * (x - t.prior_mean)
    return H, g, Hfs, Hss, gs, -w


def _step(H, g, Hfs, Hss, gs, coupling, mu: float, t: Terms):
    """Solve the damped normal equations; returns ``(dx (N, P), ds (S,))``."""
    N, P, _ = H.shape
    idx = np.arange(P)
    H = H.copy()
    H[:, idx, idx] *= 1.0 + mu
    H[:, idx, idx] += 1e-9 + mu * 1e-6
    fixed = ~t.free
    H[:, fixed, :] = 0.0
    H[:, :, fixed] = 0.0
    H[:, fixed, fixed] = 1.0
    g = np.where(fixed, 0.0, g)
    Hfs = np.where(fixed[None, :, None], 0.0, Hfs)
    coupling = np.where(fixed, 0.0, coupling)
    chol = cholesky_banded(_banded(H, coupling), lower=False)
    S = gs.size
    if S == 0 or not t.free_shared:
        return -cho_solve_banded((chol, False), g.ravel()).reshape(N, P), np.zeros(S)
    rhs = np.concatenate([g.reshape(-1, 1), Hfs.reshape(N * P, S)], axis=1)
    sol = cho_solve_banded((chol, False), rhs)
    Hfs_flat = Hfs.reshape(N * P, S)
    schur = Hss * (1.0 + mu) + 1e-9 * np.eye(S) - Hfs_flat.T @ sol[:, 1:]
    ds = np.linalg.solve(schur, -gs + Hfs_flat.T @ sol[:, 0])
    dx = -(sol[:, 0] + sol[:, 1:] @ ds)
    return dx.reshape(N, P), ds


def levenberg_marquardt(data: DataFn, x0: np.ndarray, s0: np.ndarray, t: Terms,
                        iterations: int = 30, tol: float = 1e-7,
                        reweight: Callable[[np.ndarray, np.ndarray], None] | None = None
                        ) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """Minimise the problem from ``(x0, s0)``.

    Args:
        data: the data residuals and their per-frame Jacobians (see :data:`DataFn`).
        x0, s0: start, ``(N, P)`` and ``(S,)``.
        t: the linear terms, bounds and fixed parameters.
        iterations: most Jacobian evaluations.
        tol: stop when an accepted step lowers the cost by less than this fraction.
        reweight: called with ``(x, s)`` before each Jacobian (robust re-weighting).

    Returns:
        ``(x, s, iterations used)``.
    """
    with single_threaded_blas():
        return _lm(data, np.asarray(x0, dtype=float), np.asarray(s0, dtype=float), t,
                   iterations, tol, reweight)  # fmt: skip


#: The fit's damping schedule: start at 1e-3, x5 after a rejected step, /3 after an accepted
#: one, 12 tries per iteration.
_DAMPING = Damping(initial=1e-3, up=5.0, down=3.0, floor=1e-9, ceiling=np.inf, max_tries=12)


def _lm(data, x, s, t, iterations, tol, reweight):
    """The hand-model fit on mvhand's one Levenberg-Marquardt core."""

    def linearize(state):
        if reweight is not None:
            reweight(*state)
        r, J, Js = data(*state, True)
        return cost(data, *state, t), _normal_equations(r, J, Js, *state, t)

    def solve(normal, mu):
        try:
            return _step(*normal, mu, t), 0
        except LinAlgError:
            return None, 0

    def apply(state, step):
        return np.clip(state[0] + step[0], t.lower, t.upper), state[1] + step[1]

    res = lm_core(linearize, solve, apply, lambda st: cost(data, *st, t),
                  (np.clip(x, t.lower, t.upper), s.copy()), iterations, tol,
                  _DAMPING, what="hand-model fit")  # fmt: skip
    return res.state[0], res.state[1], res.iterations
