"""Levenberg-Marquardt (one core for mvhand's least-squares problems) and the sparse step
solver of the hand optimizer (conjugate gradients with banded preconditioners).

:func:`levenberg_marquardt` owns the damping schedule, the acceptance test, the stopping rule
and the finiteness checks; a problem supplies how to linearize, how to solve a damped step
and how to apply it. The hand optimizer and the hand-model fit (``mvhand.fit.solver``) both
run on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS/LAPACK on one thread: the banded factors here are small, and on a busy machine
    OpenBLAS's spinning threads slowed the whole-band Cholesky of a 100-frame window from 12 ms
    to 0.5-3 s. Uses threadpoolctl when installed, else does nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class Sparsity:
    """The fixed sparsity pattern of one window's normal matrix.

    Terms give Gauss-Newton blocks on fixed sets of variables (the masks of a window do not
    change between iterations), so the pattern and where each block entry lands are computed
    once; an iteration is then a single ``bincount``. The pattern also places its entries in
    the two banded matrices the step solver factors (:class:`StepSolver`): every joint's own
    trajectory (joint-major order, a narrow band) and the whole matrix (frame-major order: the
    band spans the smoothness stencil, about 2 frames of 63 variables).
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
        # joint-major order: the cheap preconditioner's band
        v = np.arange(n)
        self.joint_major = ((v // 3 % N_JOINTS) * T + v // NV) * 3 + v % 3
        self.order = np.argsort(self.joint_major)
        pr, pc = self.joint_major[rows], self.joint_major[cols]
        sel = (rows // 3 % N_JOINTS == cols // 3 % N_JOINTS) & (pr <= pc)
        self.pre_u = int((pc - pr)[sel].max(initial=0))
        self.pre_src = np.flatnonzero(sel)
        self.pre_pos = (self.pre_u + pr[sel] - pc[sel]) * n + pc[sel]
        # frame-major order (the variables' own): the whole matrix as a band
        upper = rows <= cols
        self.full_u = int((cols - rows)[upper].max(initial=0))
        self.full_src = np.flatnonzero(upper)
        self.full_pos = (self.full_u + rows[upper] - cols[upper]) * n + cols[upper]

    def assemble(self, blocks: list[np.ndarray], smooth: csr_matrix | None) -> np.ndarray:
        """Normal-matrix values (nnz,) from the blocks, in the order of ``block_idx``, plus the
        smoothness matrix (same pattern as the one given at construction)."""
        vals = np.concatenate([b.ravel() for b in blocks])
        data = np.bincount(self.block_map, vals, self.nnz)
        if smooth is not None:
            data += np.bincount(self.smooth_map, smooth.tocoo().data, self.nnz)
        data[self.inactive_diag] = 1.0
        return data

    def damped(self, data: np.ndarray, lam: float) -> np.ndarray:
        """The values of ``A + lam * diag(A)`` (the diagonal floored at 1e-9 of its largest)."""
        out = data.copy()
        d = out[self.diag]
        out[self.diag] = d + lam * np.maximum(d, 1e-9 * max(float(d.max()), 1.0))
        return out

    def matrix(self, values: np.ndarray) -> csr_matrix:
        return csr_matrix((values, self.indices, self.indptr), shape=(self.n, self.n))

    def band_factor(self, values: np.ndarray, full: bool) -> np.ndarray | None:
        """Cholesky factor (upper banded) of the joint trajectories' band, or with ``full`` of
        the whole matrix; None if it is not positive definite."""
        u, src, pos = ((self.full_u, self.full_src, self.full_pos) if full
                       else (self.pre_u, self.pre_src, self.pre_pos))  # fmt: skip
        band = np.zeros((u + 1) * self.n)
        band[pos] = values[src]
        try:
            return cholesky_banded(band.reshape(u + 1, self.n), check_finite=False)
        except LinAlgError:
            return None


#: Conjugate-gradient iterations with the joint-trajectory preconditioner after which a
#: problem counts as coupled (strong bone terms against weak, noisy views) and switches to the
#: factor of the whole band. On the synthetic 12-camera benchmark every step takes 1-8; on
#: Pose2Sim (7 px noise) 12-75 (benchmarks/bench_solver.py).
SWITCH_AFTER = 10


class StepSolver:
    """Damped Gauss-Newton steps of one problem by preconditioned conjugate gradients.

    The preconditioner starts as the exact solve of every joint's own trajectory (cheap: a
    band of a few variables), which leaves the couplings between joints (bones, shape, angles)
    to the iterations. When a step takes more than :data:`SWITCH_AFTER` iterations (the bones
    dominate: noisy views), the problem switches for good to the Cholesky factor of the whole
    damped matrix (its frame-major band, about 126 wide for acceleration smoothness: some
    ``T * 1e6`` flops, exact, so one iteration). A factor kept from the previous step as the
    preconditioner took 5-70 iterations on Pose2Sim, no faster than a new factor.
    """

    def __init__(self, sparsity: Sparsity) -> None:
        self.sparsity = sparsity
        self.coupled = False

    def solve(self, data: np.ndarray, g: np.ndarray, lam: float,
              max_iter: int = CG_MAX_ITER) -> tuple[np.ndarray | None, int]:  # fmt: skip
        """Step ``dx`` of ``(A + lam * diag(A)) dx = -g`` (None if not positive definite) and
        the conjugate-gradient iterations it took."""
        sp = self.sparsity
        values = sp.damped(data, lam)
        A = sp.matrix(values)
        spent = 0
        if not self.coupled:
            factor = sp.band_factor(values, full=False)
            if factor is None:
                return None, 0

            def joint_band(r: np.ndarray) -> np.ndarray:
                return cho_solve_banded((factor, False), r[sp.order], check_finite=False)[
                    sp.joint_major
                ]

            x, spent, done = conjugate_gradient(A, -g, joint_band,
                                                max_iter=min(max_iter, SWITCH_AFTER))  # fmt: skip
            if done or max_iter <= SWITCH_AFTER:
                return x, spent
            self.coupled = True
        full = sp.band_factor(values, full=True)
        if full is None:
            return None, spent

        def whole_band(r: np.ndarray) -> np.ndarray:
            return cho_solve_banded((full, False), r, check_finite=False)

        x, it, _ = conjugate_gradient(A, -g, whole_band, max_iter=max_iter)
        return x, spent + it


def conjugate_gradient(A: csr_matrix, b: np.ndarray, precondition: Callable, tol: float = CG_TOL,
                       max_iter: int = CG_MAX_ITER) -> tuple[np.ndarray, int, bool]:  # fmt: skip
    """Preconditioned conjugate gradients for SPD ``A x = b`` to a relative residual ``tol``.

    Returns:
        The solution, the number of iterations and whether it reached ``tol``.
    """
    x = np.zeros_like(b)
    r = b.copy()
    z = precondition(r)
    p = z.copy()
    rz = float(r @ z)
    stop = tol * float(np.linalg.norm(b))
    it = 0
    if float(np.linalg.norm(r)) <= stop:
        return x, it, True
    while it < max_iter:
        it += 1
        Ap = A @ p
        pAp = float(p @ Ap)
        if pAp <= 0:
            return x, it, False
        alpha = rz / pAp
        x += alpha * p
        r -= alpha * Ap
        if np.linalg.norm(r) <= stop:
            return x, it, True
        z = precondition(r)
        rz_new = float(r @ z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, it, False
