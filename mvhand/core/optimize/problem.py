"""The least-squares problem of one hand in one window, and its solution by the LM core."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from mvhand.core.optimize.bones import LengthState, bone_rows
from mvhand.core.optimize.config import OptimizerConfig
from mvhand.core.optimize.noise import REFERENCE_FPS, REFERENCE_MOTION
from mvhand.core.optimize.residuals import (
    NV,
    Cameras,
    HandData,
    Observations,
    angle_rows,
    difference_operator,
    reprojection,
    robust,
    shape_rows,  # fmt: skip
)
from mvhand.core.optimize.solver import (
    CG_MAX_ITER,
    LMResult,
    Sparsity,
    StepSolver,
    levenberg_marquardt,  # fmt: skip
)
from mvhand.core.skeleton import N_JOINTS


class Problem:
    """The least-squares problem of one hand in one window, in millimetres.

    Args:
        hand: the window's observations; active: (T, J) joints to solve for.
        cams: cameras in mm; cfg: settings; smooth_s2: smoothness weight (per mm^2).
        x0: (T, J, 3) initial joints (finite everywhere), mm; L0: (20,) bone lengths, mm.
        fps: frame rate; sparsity: a pattern to share (same masks and terms).
    """

    def __init__(self, hand: HandData, active: np.ndarray, cams: Cameras,
                 cfg: OptimizerConfig, smooth_s2: float, x0: np.ndarray,
                 L0: np.ndarray, fps: float = REFERENCE_FPS,
                 sparsity: Sparsity | None = None) -> None:  # fmt: skip
        self.cfg, self.active, self.sign = cfg, active, hand.sign
        self.T = active.shape[0]
        self.n = self.T * NV
        self.obs = Observations.build(hand, active, cams)
        order = 1 if cfg.smoothness == "velocity" else 2
        self.D = difference_operator(active, order) if cfg.w_smoothness > 0 else None
        self._robust_limit = cfg.smoothness_robust_limit * REFERENCE_MOTION[order - 1] / fps**order
        self.set_weights(smooth_s2, cfg.w_bone)
        self.loss, self.loss_scale = cfg.loss, cfg.loss_scale  # set_loss changes them
        self.limits = np.sin(np.radians([cfg.max_hyperextension_deg, cfg.max_sideways_deg]))
        if sparsity is None:  # the pattern depends on the masks and terms, not on the views
            points = np.arange(self.T * N_JOINTS)
            block_idx = [points[:, None] * 3 + np.arange(3)]
            block_idx += [idx for _, idx, _ in self._rows(x0, L0)]
            sparsity = Sparsity(self.n, self.T, block_idx, self.smooth,
                                np.repeat(~active.ravel(), 3))  # fmt: skip
        self.sparsity = sparsity
        self.steps = StepSolver(sparsity)  # its state (the preconditioner) is this problem's
        self.cg_max_iter = CG_MAX_ITER  # conjugate-gradient iterations per step at most

    def set_weights(self, s2: float, w_bone: float) -> None:
        """Set the smoothness weight (per mm^2) and the bone weight (multiplier of the prior;
        the term must be on, or off, as at construction): the pattern does not change."""
        self.s2 = s2
        self.smooth = None if self.D is None else (s2 * (self.D.T @ self.D)).tocsr()
        if self.smooth is not None:
            self.smooth.sort_indices()
        # robust smoothness: squared scaled difference where its loss turns linear
        self.smooth_c2 = s2 * self._robust_limit**2
        self.bone_w = w_bone / self.cfg.bone_sigma_mm**2  # per mm^2
        self.bone_c2 = self.bone_w * self.cfg.bone_robust_mm**2

    def set_loss(self, loss: str, scale: float) -> None:
        """Set the robust loss of the reprojection term and its scale (noise units)."""
        self.loss, self.loss_scale = loss, scale

    def describe(self) -> str:
        return (f"hand optimizer (weights {self.cfg.weights()}, smoothness {self.s2:.3g} per "
                f"mm^2, bones {self.bone_w:.3g} per mm^2)")  # fmt: skip

    def _rows(self, x: np.ndarray, L: np.ndarray):
        """The terms given as rows: (residual (R,), variable index (R, k), Jacobian (R, k))."""
        cfg = self.cfg
        if cfg.w_bone > 0:
            yield bone_rows(x, L, self.active, np.sqrt(self.bone_w))
        if cfg.w_shape > 0:
            yield shape_rows(x, self.active, np.sqrt(cfg.w_shape))
        if cfg.w_angle_limits > 0:
            yield angle_rows(x, self.active, self.sign, self.limits, np.sqrt(cfg.w_angle_limits))

    def _row_loss(self, k: int, res: np.ndarray) -> tuple[float, np.ndarray]:
        """Cost of the ``k``-th row term and its IRLS weights (robust for bones if asked)."""
        c2 = self.bone_c2 if k == 0 and self.cfg.w_bone > 0 else 0
        if c2 == 0:
            return float(res @ res), np.ones_like(res)
        rho, drho = robust(res * res / c2, "soft_l1")
        return float(c2 * rho.sum()), drho

    def _smoothness(self, x: np.ndarray) -> tuple[float, np.ndarray, csr_matrix | None]:
        """Smoothness cost, its half gradient (n,) and Gauss-Newton matrix (IRLS-weighted)."""
        if self.D is None:
            return 0.0, np.zeros(self.n), None
        d = self.D @ x.ravel()
        if self.smooth_c2 == 0:
            return float(self.s2 * d @ d), self.smooth @ x.ravel(), self.smooth
        r2 = self.s2 * np.sum(d.reshape(-1, 3) ** 2, axis=1)
        rho, drho = robust(r2 / self.smooth_c2, "soft_l1")
        w = np.repeat(drho, 3)
        grad = self.s2 * (self.D.T @ (w * d))
        mat = (self.s2 * (self.D.T @ self.D.multiply(w[:, None]))).tocsr()
        mat.sort_indices()
        return float(self.smooth_c2 * rho.sum()), grad, mat

    def cost(self, x: np.ndarray, L: np.ndarray) -> float:
        """Total cost of joints ``x`` (T, J, 3) mm and bone lengths ``L`` (20,) mm."""
        total = reprojection(x, self.obs, self.loss, self.loss_scale, jacobian=False)
        total += self._smoothness(x)[0]
        for k, (res, _, _) in enumerate(self._rows(x, L)):
            total += self._row_loss(k, res)[0]
        return total

    def linearize(self, x: np.ndarray, L: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Cost, Gauss-Newton normal-matrix values (nnz,) and gradient ``J^T r`` (n,)."""
        cost, rep_blocks, rep_grad = reprojection(x, self.obs, self.loss, self.loss_scale, True)
        c_s, g, smooth = self._smoothness(x)
        cost += c_s
        g = g + rep_grad.ravel()
        blocks = [rep_blocks]
        for k, (res, idx, jac) in enumerate(self._rows(x, L)):
            c_k, w = self._row_loss(k, res)
            cost += c_k
            blocks.append(w[:, None, None] * jac[:, :, None] * jac[:, None, :])
            g += np.bincount(idx.ravel(), (jac * (w * res)[:, None]).ravel(), self.n)
        return cost, self.sparsity.assemble(blocks, smooth), g

    def minimise(self, x0: np.ndarray, lengths: LengthState, iterations: int | None = None
                 ) -> LMResult:  # fmt: skip
        """Levenberg-Marquardt from ``x0`` (T, J, 3) mm; bone lengths are re-estimated after
        every step (``LMResult.state`` is ``(x, L)``)."""

        def linearize(state):
            c, data, g = self.linearize(*state)
            return c, (data, g)

        def apply(state, dx):
            x = state[0] + dx.reshape(state[0].shape)
            return x, lengths.estimate(x, self.active)

        x = x0.copy()
        return levenberg_marquardt(
            linearize, lambda sys, lam: self.steps.solve(sys[0], sys[1], lam, self.cg_max_iter),
            apply,
            lambda state: self.cost(*state), (x, lengths.estimate(x, self.active)),
            iterations or self.cfg.max_iterations, self.cfg.tolerance, what=self.describe())
