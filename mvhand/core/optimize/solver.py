"""Levenberg-Marquardt (one core for mvhand's least-squares problems) and the sparse step
solver of the hand optimizer (conjugate gradients with a banded preconditioner).

:func:`levenberg_marquardt` owns the damping schedule, the acceptance test, the stopping rule
and the finiteness checks; a problem supplies how to linearize, how to solve a damped step
and how to apply it. The hand optimizer and the hand-model fit (``mvhand.fit.solver``) both
run on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded
from scipy.sparse import csr_matrix

from mvhand.core.optimize.residuals import NV
from mvhand.core.skeleton import N_JOINTS
from mvhand.errors import NumericalError

#: Conjugate-gradient stopping: relative residual and iteration cap per step (inexact
#: Gauss-Newton steps converge as well and cost a fraction of exact ones).
CG_TOL = 1e-4
CG_MAX_ITER = 200


@dataclass(frozen=True)
class Damping:
    """The Levenberg-Marquardt damping schedule.

    Attributes:
        initial: first damping factor; up, down: factors after a rejected / accepted step;
        floor: smallest damping; ceiling: give up (converged) when damping exceeds it;
        max_tries: rejected steps per iteration before giving up.
    """

    initial: float = 1e-4
    up: float = 10.0
    down: float = 5.0
    floor: float = 1e-7
    ceiling: float = 1e8
    max_tries: int = 64


@dataclass
class LMResult:
    """``state``: the solution; ``costs``: the cost before the first and after each accepted
    step; ``iterations``: linearizations; ``solver_iterations``: summed inner iterations."""

    state: Any
    costs: list[float]
    iterations: int
    solver_iterations: int


def levenberg_marquardt(linearize: Callable[[Any], tuple[float, Any]],
                        solve: Callable[[Any, float], tuple[Any | None, int]],
                        apply: Callable[[Any, Any], Any], cost: Callable[[Any], float],
                        state: Any, max_iterations: int, tolerance: float,
                        damping: Damping = Damping(), what: str = "least squares",
                        ) -> LMResult:  # fmt: skip
    """Minimise a nonlinear least-squares cost from ``state``.

    Args:
        linearize: ``state -> (cost, system)``: the cost and whatever ``solve`` needs.
        solve: ``(system, damping) -> (step or None, inner iterations)``; None: the damped
            system is not positive definite (the damping grows).
        apply: ``(state, step) -> new state`` (e.g. add, clip to bounds, re-estimate).
        cost: ``state -> cost``.
        max_iterations: accepted steps at most; tolerance: stop when a step lowers the cost by
            at most this fraction.
        what: the problem and its weights, named in the error message.

    Raises:
        NumericalError: a cost or step is not finite (a weight too large, or bad input).
    """
    f, system = linearize(state)
    _check(f, what, "cost")
    lam, costs, its, inner = damping.initial, [f], 1, 0
    for _ in range(max_iterations):
        for _ in range(damping.max_tries):
            step, n = solve(system, lam)
            inner += n
            if step is not None:
                if not _finite(step):
                    raise NumericalError(f"{what}: the step is not finite")
                trial = apply(state, step)
                f_new = cost(trial)
                _check(f_new, what, "trial cost")
                if f_new <= f:
                    lam = max(lam / damping.down, damping.floor)
                    break
            lam *= damping.up
            if lam > damping.ceiling:
                return LMResult(state, costs, its, inner)
        else:
            return LMResult(state, costs, its, inner)
        gain = f - f_new
        state = trial
        costs.append(f_new)
        if gain <= tolerance * f:
            break
        f, system = linearize(state)
        _check(f, what, "cost")
        its += 1
    return LMResult(state, costs, its, inner)


def _finite(step: Any) -> bool:
    parts = step if isinstance(step, tuple) else (step,)
    return all(bool(np.isfinite(np.asarray(p)).all()) for p in parts)


def _check(f: float, what: str, name: str) -> None:
    if not np.isfinite(f):
        raise NumericalError(f"{what}: the {name} is {f} (not finite)")


class Sparsity:
    """The fixed sparsity pattern of one window's normal matrix, and the solver on it.

    Terms give Gauss-Newton blocks on fixed sets of variables (the masks of a window do not
    change between iterations), so the pattern and where each block entry lands are computed
    once; an iteration is then a single ``bincount``. Steps are solved by conjugate gradients
    preconditioned with the exact solve of every joint's own trajectory (each joint's 3T
    variables in time order form a narrow band), which leaves only the couplings between
    joints (bones, shape, angles) to the iterations.
    """

    def __init__(self, n: int, T: int, block_idx: list[np.ndarray],
                 smooth: csr_matrix | None, inactive: np.ndarray) -> None:  # fmt: skip
        keys = [(idx[:, :, None] * n + idx[:, None, :]).ravel() for idx in block_idx]
        coo = smooth.tocoo() if smooth is not None else None
        keys.append(np.zeros(0, np.int64) if coo is None else coo.row * np.int64(n) + coo.col)
        keys.append(np.arange(n, dtype=np.int64) * (n + 1))
        uniq, inv = np.unique(np.concatenate(keys), return_inverse=True)
        self.nnz = len(uniq)
        ends = np.cumsum([len(k) for k in keys])
        self.block_map = inv[: ends[-3]]
        self.smooth_map = inv[ends[-3] : ends[-2]]
        self.diag = inv[ends[-2] :]
        self.inactive_diag = self.diag[inactive]
        rows, cols = uniq // n, uniq % n
        self.n = n
        self.indices = cols.astype(np.int32)
        self.indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int32)
        # joint-major order: the preconditioner's band
        v = np.arange(n)
        self.joint_major = ((v // 3 % N_JOINTS) * T + v // NV) * 3 + v % 3
        self.order = np.argsort(self.joint_major)
        pr, pc = self.joint_major[rows], self.joint_major[cols]
        sel = (rows // 3 % N_JOINTS == cols // 3 % N_JOINTS) & (pr <= pc)
        self.pre_u = int((pc - pr)[sel].max(initial=0))
        self.pre_src = np.flatnonzero(sel)
        self.pre_pos = (self.pre_u + pr[sel] - pc[sel]) * n + pc[sel]

    def assemble(self, blocks: list[np.ndarray], smooth: csr_matrix | None) -> np.ndarray:
        """Normal-matrix values (nnz,) from the blocks, in the order of ``block_idx``, plus the
        smoothness matrix (same pattern as the one given at construction)."""
        vals = np.concatenate([b.ravel() for b in blocks])
        data = np.bincount(self.block_map, vals, self.nnz)
        if smooth is not None:
            data += np.bincount(self.smooth_map, smooth.tocoo().data, self.nnz)
        data[self.inactive_diag] = 1.0
        return data

    def solve(self, data: np.ndarray, g: np.ndarray, lam: float,
              max_iter: int = CG_MAX_ITER) -> tuple[np.ndarray | None, int]:  # fmt: skip
        """Step ``dx`` of ``(A + lam * diag(A)) dx = -g`` (None if A is not positive definite)
        and the conjugate-gradient iterations it took."""
        damped = data.copy()
        d = damped[self.diag]
        damped[self.diag] = d + lam * np.maximum(d, 1e-9 * max(float(d.max()), 1.0))
        A = csr_matrix((damped, self.indices, self.indptr), shape=(self.n, self.n))
        band = np.zeros((self.pre_u + 1) * self.n)
        band[self.pre_pos] = damped[self.pre_src]
        try:
            factor = cholesky_banded(band.reshape(self.pre_u + 1, self.n), check_finite=False)
        except LinAlgError:
            return None, 0

        def precondition(r: np.ndarray) -> np.ndarray:
            return cho_solve_banded((factor, False), r[self.order], check_finite=False)[
                self.joint_major
            ]

        return conjugate_gradient(A, -g, precondition, max_iter=max_iter)


def conjugate_gradient(A: csr_matrix, b: np.ndarray, precondition: Callable, tol: float = CG_TOL,
                       max_iter: int = CG_MAX_ITER) -> tuple[np.ndarray, int]:  # fmt: skip
    """Preconditioned conjugate gradients for SPD ``A x = b`` to a relative residual ``tol``.

    Returns:
        The solution and the number of iterations.
    """
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    stop = tol * float(np.linalg.norm(b))
    it = 0
    while it < max_iter:
        it += 1
        Ap = A @ p
        pAp = float(p @ Ap)
        if pAp <= 0:
            break
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        if np.linalg.norm(r) <= stop:
            break
        z = precondition(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, it
