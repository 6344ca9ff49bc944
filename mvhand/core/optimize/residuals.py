"""The optimizer's terms, as residual rows with analytic Jacobians, all in millimetres.

Variables of a window: joints ``x (T, J, 3)`` mm, frame-major (:func:`var`). Every term but
the reprojection (blocks per joint) and the smoothness (a sparse difference operator) comes
as rows: ``(residuals (R,), variable indices (R, k), Jacobian (R, k))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from mvhand.core.procrustes import procrustes
from mvhand.core.skeleton import FINGER_JOINTS, N_JOINTS

NV = 3 * N_JOINTS  # variables per frame


def var(t: np.ndarray, j: np.ndarray, k: np.ndarray | int) -> np.ndarray:
    """Index of coordinate ``k`` of joint ``j`` in frame ``t`` (frame-major ordering)."""
    return (t * N_JOINTS + j) * 3 + k


@dataclass(frozen=True)
class Cameras:
    """Cameras in millimetres: R (C, 3, 3), t (C, 3) mm, mean focal length f (C,) px."""

    R: np.ndarray
    t: np.ndarray
    f: np.ndarray

    @classmethod
    def from_rig(cls, rig) -> Cameras:
        rig_mm = rig.to_units("mm")
        return cls(np.stack([c.R_cam_world for c in rig_mm]),
                   np.stack([c.t_cam_world for c in rig_mm]), rig_mm.focal_px)  # fmt: skip


@dataclass(frozen=True)
class HandData:
    """One hand's observations: undistorted normalized ``obs (C, T, J, 2)`` and ``weight
    (C, T, J)`` = ``w_reprojection * score / sigma^2`` (0: view not used)."""

    obs: np.ndarray
    weight: np.ndarray
    sign: float  # +1 right hand, -1 left (mirror image): the sign of finger flexion

    def frames(self, start: int, stop: int) -> HandData:
        return HandData(self.obs[:, start:stop], self.weight[:, start:stop], self.sign)

    def without(self, held: np.ndarray) -> HandData:
        """The observations with the cameras ``held`` (C,) bool removed (weight 0)."""
        return HandData(self.obs, np.where(held[:, None, None], 0.0, self.weight), self.sign)


@dataclass(frozen=True)
class Observations:
    """The views used in one window, flattened: M observations.

    Attributes:
        point: (M,) index ``t * J + j`` of the observed joint.
        xy: (M, 2) undistorted normalized detection.
        weight: (M,) ``w_reprojection * score / sigma^2``.
        R: (M, 3, 3), t: (M, 3) mm, f: (M,) px: the observing camera.
    """

    point: np.ndarray
    xy: np.ndarray
    weight: np.ndarray
    R: np.ndarray
    t: np.ndarray
    f: np.ndarray

    @classmethod
    def build(cls, hand: HandData, active: np.ndarray, cams: Cameras) -> Observations:
        use = (hand.weight > 0) & active[None]
        c, t, j = np.nonzero(use)
        return cls(t * N_JOINTS + j, hand.obs[c, t, j], hand.weight[c, t, j], cams.R[c],
                   cams.t[c], cams.f[c])  # fmt: skip


def robust(s: np.ndarray, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """Robust loss ``rho(s)`` of squared scaled residuals ``s`` and its derivative."""
    if loss == "soft_l1":
        root = np.sqrt(1.0 + s)
        return 2.0 * (root - 1.0), 1.0 / root
    if loss == "cauchy":
        return np.log1p(s), 1.0 / (1.0 + s)
    if loss == "huber":
        root = np.sqrt(np.maximum(s, 1.0))
        return np.where(s <= 1.0, s, 2.0 * root - 1.0), np.where(s <= 1.0, 1.0, 1.0 / root)
    return s, np.ones_like(s)


def reprojection(x: np.ndarray, obs: Observations, loss: str, scale: float, jacobian: bool):
    """Robust reprojection cost and, with ``jacobian``, its Gauss-Newton blocks.

    Each view's pixel error ``e = f (pi(R x + t) - u)`` costs ``w scale^2 rho(|e|^2 w /
    scale^2)`` with ``w = score / sigma^2``: residuals in noise standard deviations, robust
    beyond ``scale`` of them.

    Args:
        x: ``(T, J, 3)`` joints, mm.

    Returns:
        ``cost``, or ``(cost, blocks (T * J, 3, 3), gradient (T * J, 3))``: the IRLS-weighted
        ``J^T J`` and ``J^T r`` of each joint summed over its views.
    """
    xp = x.reshape(-1, 3)[obs.point]
    pc = np.einsum("mab,mb->ma", obs.R, xp) + obs.t
    front = pc[:, 2] > 1e-6
    z = np.where(front, pc[:, 2], 1.0)
    proj = pc[:, :2] / z[:, None]
    e = np.where(front[:, None], obs.f[:, None] * (proj - obs.xy), 0.0)
    w = np.where(front, obs.weight, 0.0)
    scale2 = scale**2
    rho, drho = robust(np.sum(e * e, axis=1) * w / scale2, loss)
    cost = float(rho.sum()) * scale2
    if not jacobian:
        return cost
    # d(f * pi(R x + t)) / dx = f / z * (R[k] - pi_k * R[2]) for image axis k
    a = (obs.f / z)[:, None]
    jx = a * (obs.R[:, 0] - proj[:, 0:1] * obs.R[:, 2])
    jy = a * (obs.R[:, 1] - proj[:, 1:2] * obs.R[:, 2])
    ww = w * drho
    n_points = x.shape[0] * x.shape[1]
    blocks = np.empty((n_points, 3, 3))
    for k1 in range(3):
        for k2 in range(k1, 3):
            v = ww * (jx[:, k1] * jx[:, k2] + jy[:, k1] * jy[:, k2])
            blocks[:, k1, k2] = blocks[:, k2, k1] = np.bincount(obs.point, v, n_points)
    gv = ww[:, None] * (jx * e[:, :1] + jy * e[:, 1:])
    grad = np.stack([np.bincount(obs.point, gv[:, k], n_points) for k in range(3)], axis=1)
    return cost, blocks, grad


def difference_operator(active: np.ndarray, order: int) -> csr_matrix:
    """``D`` (3 m, n): the frame difference (velocity: order 1, acceleration: 2) of every
    active joint.

    Rows come in triples (x, y, z) per frame and joint, so row ``3 i + k`` belongs to the
    ``i``-th (frame, joint) difference. The smoothness cost is ``s2 * |D x|^2`` (or its robust
    version), ``s2`` from :func:`mvhand.core.optimize.noise.smoothness_weight`.
    """
    stencil = np.array([-1.0, 1.0]) if order == 1 else np.array([1.0, -2.0, 1.0])
    T = active.shape[0]
    valid = np.ones((max(T - order, 0), N_JOINTS), bool)
    for i in range(order + 1):
        valid &= active[i : T - order + i]
    t, j = np.nonzero(valid)
    m = len(t)
    k = np.arange(3)
    rows = np.repeat((np.arange(m)[:, None] * 3 + k)[:, None, :], len(stencil), axis=1)
    cols = np.stack([var(t[:, None] + a, j[:, None], k) for a in range(len(stencil))], axis=1)
    vals = np.broadcast_to(stencil[None, :, None], rows.shape)
    D = csr_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * m, T * NV))
    D.sort_indices()
    return D


def shape_rows(x: np.ndarray, active: np.ndarray, sw: float):
    """Rows of the rotation-invariant shape term between consecutive frames.

    The wrist-centred hand of frame t minus the Procrustes-rotated wrist-centred hand of frame
    t - 1, per joint and coordinate; only joints active in both frames, wrist included, count.
    The rotation is the exact minimiser, so holding it fixed in the Jacobian gives the exact
    gradient.
    """
    q = x - x[:, :1]
    mask = active[1:] & active[:-1] & active[1:, :1] & active[:-1, :1]
    mask[:, 0] = False
    R, _, _ = procrustes(q[:-1], q[1:], mask.astype(float), center=False)
    R = np.where(np.isfinite(R), R, np.eye(3))
    r = q[1:] - np.einsum("tab,tjb->tja", R, q[:-1])
    t, j = np.nonzero(mask)
    ones = np.ones((len(t), 1))
    k3 = np.arange(3)
    res, idx, jac = [], [], []
    for k in range(3):
        res.append(sw * r[t, j, k])
        idx.append(np.concatenate([
            var(t + 1, j, k)[:, None], var(t + 1, 0, k)[:, None],
            var(t[:, None], j[:, None], k3), var(t[:, None], 0, k3)], axis=1))  # fmt: skip
        jac.append(sw * np.concatenate([ones, -ones, -R[t, k], R[t, k]], axis=1))
    return np.concatenate(res), np.concatenate(idx), np.concatenate(jac)


#: Finger hinges (proximal, hinge, distal joint) checked by the angle-limit term: the PIP and
#: DIP joints of the four fingers. The thumb is left out: its joints do not flex about the
#: hand's lateral axis.
HINGES = np.array([[f[0], f[1], f[2]] for f in FINGER_JOINTS[1:]]
                  + [[f[1], f[2], f[3]] for f in FINGER_JOINTS[1:]])  # fmt: skip
_INDEX_MCP, _LITTLE_MCP = int(FINGER_JOINTS[1, 0]), int(FINGER_JOINTS[4, 0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _angle_residuals(pts: np.ndarray, lateral: np.ndarray, sign: float,
                     limits: np.ndarray) -> np.ndarray:  # fmt: skip
    """Excess hyperextension and sideways bending (R, 2), as sines times |distal bone| (mm).

    Args:
        pts: (R, 3, 3) proximal, hinge and distal joint; lateral: (R, 3) unit vector from the
            little to the index MCP; sign: +1 right hand, -1 left; limits: sines of the limits.
    """
    u = _unit(pts[:, 1] - pts[:, 0])
    v = pts[:, 2] - pts[:, 1]
    axis = np.cross(u, _unit(v))
    flex = sign * np.sum(axis * lateral, axis=-1)  # > 0 when bending towards the palm
    side = np.sum(axis * _unit(np.cross(lateral, u)), axis=-1)
    excess = np.stack([np.maximum(0.0, -flex - limits[0]),
                       np.maximum(0.0, np.abs(side) - limits[1])], axis=-1)  # fmt: skip
    return excess * np.linalg.norm(v, axis=-1, keepdims=True)


def angle_rows(x: np.ndarray, active: np.ndarray, sign: float, limits: np.ndarray, sw: float):
    """Rows of the joint-angle limit term (two per hinge and frame).

    The hand's lateral axis is held fixed when differentiating; the Jacobian with respect to
    the three joints of each hinge is by central differences (vectorized, 18 evaluations).
    """
    ok = active[:, HINGES].all(-1) & active[:, [_INDEX_MCP]] & active[:, [_LITTLE_MCP]]
    t, h = np.nonzero(ok)
    lateral = _unit(x[t, _INDEX_MCP] - x[t, _LITTLE_MCP])
    pts = x[t[:, None], HINGES[h]]
    res = sw * _angle_residuals(pts, lateral, sign, limits)
    idx = var(t[:, None, None], HINGES[h][:, :, None], np.arange(3)).reshape(len(t), 9)
    jac = np.zeros((len(t), 2, 9))
    step = 1e-4  # mm
    for m in range(9):
        plus, minus = pts.copy(), pts.copy()
        plus[:, m // 3, m % 3] += step
        minus[:, m // 3, m % 3] -= step
        diff = _angle_residuals(plus, lateral, sign, limits) - _angle_residuals(
            minus, lateral, sign, limits
        )
        jac[:, :, m] = sw * diff / (2 * step)
    return res.ravel(), np.repeat(idx, 2, axis=0), jac.reshape(-1, 9)
