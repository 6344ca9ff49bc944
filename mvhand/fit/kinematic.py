"""A license-free kinematic hand: per-hand bone lengths and anatomical joint rotations.

The model is a right hand (left hands are fitted mirrored through x = 0 by the fitting code,
so every angle means the same on both hands). Frames and conventions:

- Palm frame (from the rest palm): origin the wrist, ``y`` towards the middle-finger MCP,
  ``x`` towards the thumb side (radial), ``z = x × y`` towards the palm side (palmar).
- The palm (wrist, thumb CMC and the four MCPs) is rigid: :attr:`KinematicHand.palm`.
- Fingers (index..little): MCP flexion (about the finger's x, towards the palm is positive)
  and abduction (about -z, towards the thumb is positive), PIP and DIP flexion (1 DOF each).
  At rest (all zero) a finger points along the palm's y axis.
- Thumb: its rest direction is in the palm plane, :data:`THUMB_REST_RAD` from y towards the
  thumb side. CMC flexion (out of the palm plane, palmar positive), abduction (in the plane,
  away from the index positive) and axial rotation (twist about the metacarpal); MCP and IP
  flexion (1 DOF each) about the twisted frame's x axis.

Per frame the model has 27 parameters: global rotation (axis-angle of the palm frame, 3),
translation of the wrist (3) and the 21 angles of :data:`DOF_NAMES` (radians).
:func:`angles_from_points` is the exact inverse of :func:`kinematic_forward` for the angles,
and gives the same named angles for any 21 joints (e.g. a MANO fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.core.skeleton import BONES, FINGER_JOINTS
from mvhand.core.synthetic import hand_pose
from mvhand.fit.rotation import axis_rotation, kabsch, rodrigues

FINGER_NAMES = ("index", "middle", "ring", "little")
DOF_NAMES: tuple[str, ...] = (
    "thumb_cmc_flexion", "thumb_cmc_abduction", "thumb_cmc_rotation", "thumb_mcp_flexion",
    "thumb_ip_flexion",
    *[f"{f}_{j}" for f in FINGER_NAMES
      for j in ("mcp_flexion", "mcp_abduction", "pip_flexion", "dip_flexion")],
)  # fmt: skip
N_DOF = len(DOF_NAMES)
#: Joint-angle limits in degrees (lower, upper), per DOF.
LIMITS_DEG: np.ndarray = np.array(
    [[-25, 80], [-50, 45], [-60, 60], [-20, 90], [-30, 100]]
    + [[-40, 100], [-35, 35], [-15, 125], [-25, 100]] * 4, dtype=float
)  # fmt: skip
#: Thumb rest direction: this angle (rad) from the palm's y axis towards the thumb side.
THUMB_REST_RAD = np.pi / 4
#: Palm joints (mvhand indices): wrist, thumb CMC, index/middle/ring/little MCP.
PALM_JOINTS = np.array([0, 1, 5, 9, 13, 17])
#: The three bones of each finger chain, thumb first: (5, 3) indices into skeleton.BONES.
#: Wrist to middle MCP of the canonical hand (m), to scale it to a user's hand.
_CANONICAL_PALM_M = 0.0902
CHAIN_BONES = np.array([[1, 2, 3], [5, 6, 7], [9, 10, 11], [13, 14, 15], [17, 18, 19]])


@dataclass(frozen=True, eq=False)
class KinematicHand:
    """The shape of one (right) hand.

    Attributes:
        palm: ``(6, 3)`` palm joints (:data:`PALM_JOINTS`) in the palm frame, metres.
        lengths: ``(5, 3)`` finger segment lengths, thumb first, palm outwards, metres.
    """

    palm: np.ndarray
    lengths: np.ndarray

    @property
    def bone_lengths(self) -> np.ndarray:
        """``(20,)`` bone lengths in skeleton.BONES order."""
        out = np.empty(20)
        out[[0, 4, 8, 12, 16]] = np.linalg.norm(self.palm[1:], axis=1)
        out[CHAIN_BONES.ravel()] = self.lengths.ravel()
        return out


def palm_frame(points: np.ndarray) -> np.ndarray:
    """Palm frame rotations ``(..., 3, 3)`` (columns x, y, z) from joints ``(..., 21, 3)``."""
    w = points[..., 0, :]
    y = points[..., 9, :] - w
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x = points[..., 5, :] - points[..., 17, :]
    x = x - np.sum(x * y, -1, keepdims=True) * y
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def default_hand(scale: float = 1.0) -> KinematicHand:
    """A plausible adult right hand (mvhand's canonical synthetic hand) of size ``scale``."""
    return estimate_hand(hand_pose(np.zeros((5, 3)), scale)[None])


def estimate_hand(points: np.ndarray, fallback: KinematicHand | None = None) -> KinematicHand:
    """Estimate a right hand's shape from observed joints ``(T, 21, 3)`` metres (NaN allowed).

    The palm is the generalized Procrustes mean of the frames whose six palm joints are all
    seen; segment lengths are medians over frames. What no frame shows comes from
    ``fallback`` (default: the canonical hand scaled to the data's median palm size).
    """
    points = np.asarray(points, dtype=float)
    pal = points[:, PALM_JOINTS]
    full = np.isfinite(pal).all(axis=(1, 2))
    with np.errstate(all="ignore"):
        seg = np.nanmedian(np.linalg.norm(
            points[:, BONES[CHAIN_BONES.ravel(), 1]] - points[:, BONES[CHAIN_BONES.ravel(), 0]],
            axis=-1), axis=0).reshape(5, 3)  # fmt: skip
    if full.any():
        mean = pal[full][0]
        for _ in range(3):
            R, t = kabsch(np.broadcast_to(mean, pal[full].shape), pal[full])
            aligned = np.einsum("tji,tnj->tni", R, pal[full] - t[:, None])
            mean = np.median(aligned, axis=0)
        frame = palm_frame(_palm_as_21(mean))
        palm = (mean - mean[0]) @ frame
    else:
        palm = None
    if palm is None or not np.isfinite(seg).all():
        if fallback is None:
            with np.errstate(all="ignore"):
                size = np.nanmedian(np.linalg.norm(pal[:, 3] - pal[:, 0], axis=-1))
            fallback = default_hand(size / _CANONICAL_PALM_M if np.isfinite(size) else 1.0)
        palm = fallback.palm if palm is None else palm
        seg = np.where(np.isfinite(seg), seg, fallback.lengths)
    return KinematicHand(palm, seg)


def _palm_as_21(palm6: np.ndarray) -> np.ndarray:
    p = np.full(palm6.shape[:-2] + (21, 3), np.nan)
    p[..., PALM_JOINTS, :] = palm6
    return p


def right_jacobian(rotvec: np.ndarray) -> np.ndarray:
    """Right Jacobian of SO(3) ``(..., 3, 3)``: ``R(r + d) ~ R(r) exp(J_r(r) d)``."""
    r = np.asarray(rotvec, dtype=float)
    t2 = np.einsum("...i,...i->...", r, r)
    t = np.sqrt(t2)
    small = t2 < 1e-8
    s = np.where(small, 1.0, t)
    a = np.where(small, 0.5 - t2 / 24, (1 - np.cos(s)) / (s * s))
    b = np.where(small, 1 / 6 - t2 / 120, (s - np.sin(s)) / (s * s * s))
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    zero = np.zeros_like(x)
    K = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*r.shape[:-1], 3, 3)
    return np.eye(3) - a[..., None, None] * K + b[..., None, None] * (K @ K)


def _chain(frame0: np.ndarray, origin: np.ndarray, flex: np.ndarray, lengths: np.ndarray):
    """Points and frames of a hinge chain: each flexion about the current x, bone along y."""
    pts, frames, F = [origin], [], frame0
    for i in range(flex.shape[-1]):
        F = F @ axis_rotation(0, flex[..., i])
        frames.append(F)
        pts.append(pts[-1] + lengths[..., i, None] * F[..., :, 1])
    return pts, frames


def kinematic_forward(hand: KinematicHand, params: np.ndarray, jacobian: bool = False,
                      ref_rotation: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Joints ``(N, 21, 3)`` metres from parameters ``(N, 27)``, optionally with the Jacobian.

    Args:
        hand: the hand's shape.
        params: per row global axis-angle (3, rad), wrist translation (3, m), then the 21
            angles of :data:`DOF_NAMES` (rad).
        jacobian: also return ``d joints / d params`` ``(N, 21, 3, 27)`` (exact).
        ref_rotation: ``(3, 3)``; when given the palm's rotation is ``ref_rotation @
            R(params[:, :3])`` (the fitter keeps the axis-angle small this way).

    Example:
        >>> pts, _ = kinematic_forward(default_hand(), np.zeros((1, 27)))
        >>> bool(np.allclose(pts[0, 0], 0.0))
        True
    """
    params = np.asarray(params, dtype=float)
    N = params.shape[0]
    Rg, t, ang = rodrigues(params[:, :3]), params[:, 3:6], params[:, 6:]
    if ref_rotation is not None:
        Rg = ref_rotation @ Rg
    out = np.empty((N, 21, 3))
    out[:, PALM_JOINTS] = np.einsum("nij,pj->npi", Rg, hand.palm) + t[:, None]
    jac = np.zeros((N, 21, 3, 27)) if jacobian else None
    T0 = Rg @ axis_rotation(2, -THUMB_REST_RAD)
    Fa = T0 @ axis_rotation(2, -ang[:, 1])
    Ff = Fa @ axis_rotation(0, ang[:, 0])
    Ft = Ff @ axis_rotation(1, ang[:, 2])
    pts, frames = _chain(Ft, out[:, 1], np.stack([np.zeros(N), ang[:, 3], ang[:, 4]], -1),
                         np.broadcast_to(hand.lengths[0], (N, 3)))  # fmt: skip
    out[:, FINGER_JOINTS[0, 1:]] = np.stack(pts[1:], axis=1)
    axes = [(-T0[..., 2], 1, 1, 7), (Fa[..., 0], 0, 1, 6), (Ft[..., 1], 2, 1, 8),
            (frames[0][..., 0], 3, 2, 9), (frames[1][..., 0], 4, 3, 10)]  # fmt: skip
    for f in range(4):
        a = ang[:, 5 + 4 * f: 9 + 4 * f]
        base = FINGER_JOINTS[f + 1, 0]
        Fa_f = Rg @ axis_rotation(2, -a[:, 1])
        pts, frames = _chain(Fa_f, out[:, base], a[:, [0, 2, 3]],
                             np.broadcast_to(hand.lengths[f + 1], (N, 3)))  # fmt: skip
        out[:, FINGER_JOINTS[f + 1, 1:]] = np.stack(pts[1:], axis=1)
        c = 11 + 4 * f
        axes += [(-Rg[..., 2], c + 1, base, c + 1), (Fa_f[..., 0], c, base, c),
                 (frames[0][..., 0], c + 2, base + 1, c + 2),
                 (frames[1][..., 0], c + 3, base + 2, c + 3)]  # fmt: skip
    if jacobian:
        _fill_jacobian(jac, out, Rg, params[:, :3], axes)
    return out, jac


def _fill_jacobian(jac: np.ndarray, out: np.ndarray, Rg: np.ndarray, rotvec: np.ndarray,
                   axes: list) -> None:  # fmt: skip
    """d point / d angle = axis x (point - joint) for the points beyond each joint."""
    for axis, _dof, joint, col in axes:
        finger = np.flatnonzero((FINGER_JOINTS == joint).any(axis=1))[0]
        chain = FINGER_JOINTS[finger]
        beyond = chain[np.flatnonzero(chain == joint)[0] + 1:]
        jac[..., col][:, beyond] = np.cross(axis[:, None, :], out[:, beyond] - out[:, joint, None])
    A = Rg @ right_jacobian(rotvec)  # world axes of the global rotation's parameters
    rel = out - out[:, :1]
    for i in range(3):
        jac[:, :, :, i] = np.cross(A[:, None, :, i], rel)
    jac[:, :, :, 3:6] = np.eye(3)


def angles_from_points(points: np.ndarray) -> np.ndarray:
    """The 21 named angles (rad) of right-hand joints ``(..., 21, 3)``; NaN where unseen.

    Exact inverse of :func:`kinematic_forward` for the angles. The thumb's axial rotation is
    read from the plane its MCP bends in (0 when the MCP is nearly straight).
    """
    p = np.asarray(points, dtype=float)
    P = palm_frame(p)
    ang = np.full(p.shape[:-2] + (N_DOF,), np.nan)
    T0 = P @ axis_rotation(2, -THUMB_REST_RAD)
    d1 = _unit(p[..., 2, :] - p[..., 1, :])
    flex, abd = _two_dof(d1, T0)
    ang[..., 0], ang[..., 1] = flex, abd
    Ff = T0 @ axis_rotation(2, -abd) @ axis_rotation(0, flex)
    twist = np.zeros(p.shape[:-2])
    for a, b in ((3, 4), (2, 3)):  # the MCP's bend plane, else the IP's (if bent > 5 deg)
        d = np.einsum("...ji,...j->...i", Ff, _unit(p[..., b, :] - p[..., a, :]))
        bent = np.hypot(d[..., 0], d[..., 2]) > np.sin(np.radians(5))
        twist = np.where(bent, np.arctan2(d[..., 0], d[..., 2]), twist)
    d2 = d
    # (flexion, twist) and (-flexion, twist + pi) bend alike: keep |twist| <= 90 degrees
    twist = np.where(twist > np.pi / 2, twist - np.pi, np.where(twist < -np.pi / 2,
                                                                 twist + np.pi, twist))
    twist = np.where(np.isfinite(d2).all(-1), twist, np.nan)
    ang[..., 2] = twist
    Ft = Ff @ axis_rotation(1, twist)
    ang[..., 3:5] = _hinges(p[..., [2, 3, 4], :], Ft)
    for f in range(4):
        j = FINGER_JOINTS[f + 1]
        flex, abd = _two_dof(_unit(p[..., j[1], :] - p[..., j[0], :]), P)
        c = 5 + 4 * f
        ang[..., c], ang[..., c + 1] = flex, abd
        F1 = P @ axis_rotation(2, -abd) @ axis_rotation(0, flex)
        ang[..., c + 2:c + 4] = _hinges(p[..., j[1:], :], F1)
    return ang


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _two_dof(d: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flexion and abduction of direction ``d`` (world) relative to frame ``F``."""
    loc = np.einsum("...ji,...j->...i", F, d)
    return np.arcsin(np.clip(loc[..., 2], -1, 1)), np.arctan2(loc[..., 0], loc[..., 1])


def _hinges(pts: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Successive hinge flexions about x of the bones ``pts[1]-pts[0]``, ``pts[2]-pts[1]``."""
    out = []
    for i in range(2):
        loc = np.einsum("...ji,...j->...i", F, _unit(pts[..., i + 1, :] - pts[..., i, :]))
        a = np.arctan2(loc[..., 2], loc[..., 1])
        out.append(a)
        F = F @ axis_rotation(0, np.nan_to_num(a))
    return np.stack(out, axis=-1)
