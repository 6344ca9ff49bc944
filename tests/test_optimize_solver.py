"""The one Levenberg-Marquardt core and the one Procrustes, against known solutions."""

from __future__ import annotations

import numpy as np
import pytest

from mvhand.core import synthetic
from mvhand.core.metrics import procrustes_align
from mvhand.core.optimize import Damping, levenberg_marquardt
from mvhand.core.procrustes import procrustes
from mvhand.errors import NumericalError


def _exp_problem(t: np.ndarray, y: np.ndarray, nan_after: int | None = None):
    """Least squares of ``y ~ a exp(b t)``: linearize / solve / apply / cost for the core."""
    calls = {"n": 0}

    def residual(p):
        calls["n"] += 1
        if nan_after is not None and calls["n"] > nan_after:
            return np.full_like(t, np.nan)
        return p[0] * np.exp(p[1] * t) - y

    def linearize(p):
        r = residual(p)
        J = np.stack([np.exp(p[1] * t), p[0] * t * np.exp(p[1] * t)], axis=1)
        return float(r @ r), (J.T @ J, J.T @ r)

    def solve(system, lam):
        A, g = system
        return np.linalg.solve(A + lam * np.diag(np.diag(A)), -g), 1

    return linearize, solve, lambda p, d: p + d, lambda p: float(residual(p) @ residual(p))


def test_levenberg_marquardt_recovers_known_parameters():
    t = np.linspace(0.0, 2.0, 40)
    y = 2.5 * np.exp(-1.3 * t)
    res = levenberg_marquardt(*_exp_problem(t, y), np.array([1.0, 0.0]), 100, 1e-12)
    np.testing.assert_allclose(res.state, [2.5, -1.3], atol=1e-6)
    assert res.costs[-1] < 1e-12 and res.costs == sorted(res.costs, reverse=True)
    assert res.iterations == len(res.costs) or res.iterations == len(res.costs) - 1


def test_levenberg_marquardt_stops_on_tolerance_and_iterations():
    t = np.linspace(0.0, 2.0, 40)
    y = 2.5 * np.exp(-1.3 * t) + np.random.default_rng(0).normal(0, 0.01, t.size)
    res = levenberg_marquardt(*_exp_problem(t, y), np.array([1.0, 0.0]), 2, 1e-12)
    assert len(res.costs) <= 3  # two accepted steps at most
    loose = levenberg_marquardt(*_exp_problem(t, y), np.array([1.0, 0.0]), 100, 0.5)
    tight = levenberg_marquardt(*_exp_problem(t, y), np.array([1.0, 0.0]), 100, 1e-12)
    assert len(loose.costs) < len(tight.costs)


def test_non_finite_cost_raises_numerical_error_with_the_problem_named():
    t = np.linspace(0.0, 2.0, 40)
    y = 2.5 * np.exp(-1.3 * t)
    with pytest.raises(NumericalError, match="my weights"):
        levenberg_marquardt(*_exp_problem(t, y, nan_after=2), np.array([1.0, 0.0]), 50, 1e-12,
                            Damping(), what="test problem (my weights)")  # fmt: skip


def test_unsolvable_damped_systems_end_at_the_ceiling():
    """A solve that never succeeds (not positive definite) returns the start, not garbage."""
    t = np.linspace(0.0, 2.0, 10)
    lin, _, apply, cost = _exp_problem(t, np.exp(t))
    res = levenberg_marquardt(lin, lambda s, lam: (None, 0), apply, cost, np.array([1.0, 0.0]),
                              10, 1e-9, Damping(ceiling=1e3))  # fmt: skip
    np.testing.assert_array_equal(res.state, [1.0, 0.0])
    assert len(res.costs) == 1


def test_procrustes_recovers_rotation_translation_scale(rng):
    R = synthetic.Rotation.from_rotvec(rng.normal(size=(5, 3))).as_matrix()  # batch of 5
    src = rng.normal(size=(5, 21, 3))
    t = rng.normal(size=(5, 3))
    tgt = 1.7 * np.einsum("nij,nkj->nki", R, src) + t[:, None]
    R_est, t_est, s_est = procrustes(src, tgt, scale=True)
    np.testing.assert_allclose(R_est, R, atol=1e-10)
    np.testing.assert_allclose(t_est, t, atol=1e-10)
    np.testing.assert_allclose(s_est, 1.7, atol=1e-10)
    R_rot, _, s_rot = procrustes(src, tgt)  # rotation only: the same rotation, scale 1
    np.testing.assert_allclose(R_rot, R, atol=1e-10)
    np.testing.assert_array_equal(s_rot, 1.0)


def test_procrustes_ignores_masked_points_and_gives_proper_rotations(rng):
    R = synthetic.Rotation.from_rotvec([0.2, 0.5, -0.1]).as_matrix()
    src = rng.normal(size=(21, 3))
    tgt = src @ R.T
    tgt[3] += 100.0  # an outlier, masked out
    w = np.ones(21)
    w[3] = 0.0
    R_est, _, _ = procrustes(src, tgt, w)
    np.testing.assert_allclose(R_est, R, atol=1e-10)
    mirrored = src * [1.0, 1.0, -1.0]  # a reflection is not a rotation: det must stay +1
    R_m, _, _ = procrustes(src, mirrored)
    assert np.isclose(np.linalg.det(R_m), 1.0)
    R_n, t_n, s_n = procrustes(np.full((4, 3), np.nan), src[:4])
    assert np.isnan(R_n).all() and np.isnan(t_n).all() and np.isnan(s_n)


def test_pa_mpjpe_alignment_uses_the_same_procrustes(rng):
    R = synthetic.Rotation.from_rotvec([0.3, -0.2, 0.4]).as_matrix()
    gt = rng.normal(size=(21, 3))
    pred = 0.8 * gt @ R.T + 2.0
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-10)


def _window_problem(noise_px: float, T: int = 12, n_cams: int = 4, w_bone: float = 1.0):
    """One hand window of the optimizer on a synthetic rig (detections with ``noise_px``), its
    start and the damped normal equations there: ``(problem, x0 mm, L0 mm, data, g)``."""
    from mvhand.core.optimize import OptimizerConfig
    from mvhand.core.optimize.bones import initial_lengths
    from mvhand.core.optimize.problem import Problem
    from mvhand.core.optimize.residuals import Cameras, HandData

    rng = np.random.default_rng(3)
    rig = synthetic.make_or_rig(n_cams, seed=1)
    truth = synthetic.make_hand_motion(T, speed="slow", seed=2)[:, 1]  # (T, 21, 3) m
    kp = rig.project(truth) + rng.normal(0.0, noise_px, (n_cams, T, 21, 2))
    obs = rig.undistort(kp)
    weight = np.full((n_cams, T, 21), 1.0 / noise_px**2)
    x0 = truth * 1000.0 + rng.normal(0.0, 5.0, truth.shape)
    cfg = OptimizerConfig(w_bone=w_bone, bone_sigma_mm=1.0)
    p = Problem(HandData(obs, weight, 1.0), np.ones((T, 21), bool), Cameras.from_rig(rig), cfg,
                1e-3, x0, initial_lengths(truth * 1000.0))  # fmt: skip
    p.x_start, p.L_start = x0, initial_lengths(truth * 1000.0)  # for the tests' LM runs
    _, data, g = p.linearize(x0, p.L_start)
    return p, data, g


@pytest.mark.parametrize("noise_px, coupled", [(0.5, False), (10.0, True)])
def test_step_solver_matches_a_dense_solve_and_switches_only_when_bones_dominate(
    noise_px, coupled
):  # fmt: skip
    """Against numpy's dense solve of the same damped system: clean views stay on the cheap
    joint-trajectory preconditioner; noisy views with a strong bone prior (the CG would need
    many iterations) switch to the whole-band factor and need far fewer of them."""
    from mvhand.core.optimize import solver

    p, data, g = _window_problem(noise_px)
    lam = 1e-3
    A = p.sparsity.matrix(p.sparsity.damped(data, lam)).toarray()
    exact = np.linalg.solve(A, -g)
    steps = solver.StepSolver(p.sparsity)
    dx, its = steps.solve(data, g, lam)
    assert steps.coupled is coupled
    # CG stops at a relative residual of 1e-4; the error in x is within cond-number bounds
    np.testing.assert_allclose(dx, exact, atol=1e-3 * np.abs(exact).max())
    old = solver.StepSolver(p.sparsity)
    switch = solver.SWITCH_AFTER
    try:
        solver.SWITCH_AFTER = 10**9  # the joint-trajectory preconditioner alone
        dx_old, its_old = old.solve(data, g, lam)
    finally:
        solver.SWITCH_AFTER = switch
    np.testing.assert_allclose(dx_old, exact, atol=1e-3 * np.abs(exact).max())
    if coupled:  # the whole-band factor is exact: one iteration after the switch
        np.testing.assert_allclose(dx, exact, atol=1e-9 * np.abs(exact).max())
        assert its == solver.SWITCH_AFTER + 1 and its_old > 3 * solver.SWITCH_AFTER
    else:
        assert its == its_old


def test_conjugate_gradient_reports_convergence():
    from scipy.sparse import csr_matrix

    from mvhand.core.optimize.solver import conjugate_gradient

    rng = np.random.default_rng(0)
    M = rng.normal(size=(30, 30))
    A = csr_matrix(M @ M.T + 30 * np.eye(30))
    b = rng.normal(size=30)
    x, it, done = conjugate_gradient(A, b, lambda r: r, tol=1e-10, max_iter=100)
    assert done and it <= 30
    np.testing.assert_allclose(A @ x, b, atol=1e-8)
    _, it, done = conjugate_gradient(A, b, lambda r: r, tol=1e-10, max_iter=2)
    assert not done and it == 2
    x, it, done = conjugate_gradient(A, np.zeros(30), lambda r: r)
    assert done and it == 0 and not x.any()


def test_switching_solver_reaches_the_same_optimum_in_fewer_iterations():
    """A whole noisy window by Levenberg-Marquardt: the switching step solver and the joint-
    trajectory preconditioner alone end at the same cost and joints (within the stopping
    tolerance), the former with a fraction of the conjugate-gradient iterations."""
    from mvhand.core.optimize import solver
    from mvhand.core.optimize.bones import LengthState

    p, _, _ = _window_problem(10.0, T=20)
    runs = {}
    switch = solver.SWITCH_AFTER
    try:
        for name, limit in (("switching", switch), ("joint_band", 10**9)):
            solver.SWITCH_AFTER = limit
            p.steps = solver.StepSolver(p.sparsity)
            runs[name] = p.minimise(p.x_start, LengthState(p.L_start, p.active), 30)
    finally:
        solver.SWITCH_AFTER = switch
    a, b = runs["switching"], runs["joint_band"]
    assert abs(a.costs[-1] - b.costs[-1]) <= 1e-3 * b.costs[-1]
    assert np.abs(a.state[0] - b.state[0]).max() < 0.5  # mm, on a 10 px / 1 mm-bone problem
    assert a.solver_iterations * 3 < b.solver_iterations
