"""The two hand models behind one small interface for the sequence fitter.

A model maps per-frame parameters ``x (N, P)`` and shared shape ``s (S,)`` to the 21 joints
``(N, 21, 3)`` in metres (mvhand's order), with Jacobians, and says how to initialise them from
observed joints. Both work on right hands; the left hand is handled by mirroring (kinematic)
or by MANO's own left model.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from mvhand.core.skeleton import bone_lengths
from mvhand.fit import kinematic as kin
from mvhand.fit.mano import ManoModel, mano_forward, mano_keypoints_jacobian
from mvhand.fit.rotation import kabsch, rodrigues, rotvec_from_matrix

#: Smoothness/prior scale of each kind of parameter: millimetres of joint motion per unit
#: (rad of a global rotation or a joint, m of translation).
MM_PER_RAD_GLOBAL = 100.0
MM_PER_M = 1000.0
MM_PER_RAD_JOINT = 40.0


class KinematicModel:
    """The license-free kinematic hand; ``x`` = [rotvec 3, transl 3, angles 21], no ``s``."""

    name = "kinematic"

    def __init__(self, hand: kin.KinematicHand, mirror: bool) -> None:
        self.hand = hand
        self.mirror = mirror
        self.ref = np.eye(3)  # x[:, :3] is the rotation relative to this one
        self.n_params = 6 + kin.N_DOF
        self.n_shared = 0
        lim = np.radians(kin.LIMITS_DEG)
        self.lower = np.concatenate([np.full(6, -np.inf), lim[:, 0]])
        self.upper = np.concatenate([np.full(6, np.inf), lim[:, 1]])
        self.prior_mean = np.zeros(self.n_params)
        self.scale = np.concatenate([np.full(3, MM_PER_RAD_GLOBAL), np.full(3, MM_PER_M),
                                     np.full(kin.N_DOF, MM_PER_RAD_JOINT)])  # fmt: skip
        self.articulation = np.arange(6, self.n_params)

    def evaluate(self, x: np.ndarray, s: np.ndarray, jacobian: bool):
        pts, J = kin.kinematic_forward(self.hand, x, jacobian, self.ref)
        if self.mirror:
            pts = pts * [-1.0, 1.0, 1.0]
            J = None if J is None else J * np.array([-1.0, 1.0, 1.0])[:, None]
        return pts, J, None if J is None else np.zeros(J.shape[:3] + (0,))

    def rest_points(self, s: np.ndarray) -> np.ndarray:
        """Joints ``(21, 3)`` at zero parameters (palm frame = world, wrist at the origin)."""
        return self.evaluate(np.zeros((1, self.n_params)), s, False)[0][0]

    def global_from_kabsch(self, R: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Per-frame ``[rotvec relative to self.ref, transl]`` from data ~ R rest + t."""
        if self.mirror:  # fitted right hand = mirror of the data: conjugate by the reflection
            M = np.diag([-1.0, 1.0, 1.0])
            R = M @ R @ M
            t = t * [-1.0, 1.0, 1.0]
        return np.concatenate([rotvec_from_matrix(self.ref.T @ R), t], axis=-1)

    def init_articulation(self, obs: np.ndarray) -> np.ndarray:
        ang = kin.angles_from_points(obs * [-1.0, 1.0, 1.0] if self.mirror else obs)
        lim = np.radians(kin.LIMITS_DEG)
        return np.clip(np.nan_to_num(ang), lim[:, 0], lim[:, 1])

    def angles(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        return x[:, 6:]


class ManoFitModel:
    """MANO; ``x`` = [global_orient 3, transl 3, hand_pose 45 or PCA coefficients n]."""

    name = "mano"

    def __init__(self, model: ManoModel, n_pca: int = 0, pose_limit_rad: float = 2.0) -> None:
        self.model = model
        self.n_pca = n_pca
        self.ref = np.eye(3)  # x[:, :3] is the wrist rotation relative to this one
        n_art = n_pca if n_pca else 45
        self.n_params = 6 + n_art
        self.n_shared = model.n_betas
        self.scale = np.concatenate([np.full(3, MM_PER_RAD_GLOBAL), np.full(3, MM_PER_M),
                                     np.full(n_art, MM_PER_RAD_JOINT)])  # fmt: skip
        self.prior_mean = np.zeros(self.n_params)
        if not n_pca:
            self.prior_mean[6:] = model.hands_mean
        lim = np.inf if n_pca else pose_limit_rad
        self.lower = np.concatenate([np.full(6, -np.inf), np.full(n_art, -lim)])
        self.upper = np.concatenate([np.full(6, np.inf), np.full(n_art, lim)])
        self.articulation = np.arange(6, self.n_params)

    def hand_pose(self, x: np.ndarray) -> np.ndarray:
        if not self.n_pca:
            return x[:, 6:]
        return self.model.hands_mean + x[:, 6:] @ self.model.hands_components[: self.n_pca]

    def evaluate(self, x: np.ndarray, s: np.ndarray, jacobian: bool):
        if not jacobian:
            return self.vertices(x, s, False)[0], None, None
        pts, J, Jb = mano_keypoints_jacobian(self.model, s, x[:, :3], self.hand_pose(x),
                                             x[:, 3:6], self.ref)  # fmt: skip
        if self.n_pca:
            J = np.concatenate([J[..., :6], J[..., 6:] @ self.model.hands_components[
                : self.n_pca].T], axis=-1)  # fmt: skip
        return pts, J, Jb

    def vertices(self, x: np.ndarray, s: np.ndarray, vertices: bool = True):
        """Keypoints ``(N, 21, 3)`` and vertices ``(N, 778, 3)`` (or None), metres."""
        return mano_forward(self.model, s, x[:, :3], self.hand_pose(x), x[:, 3:6], vertices,
                            self.ref)  # fmt: skip

    def rest_points(self, s: np.ndarray) -> np.ndarray:
        z = np.zeros((1, 3))
        return mano_forward(self.model, s, z, np.zeros((1, 45)), z)[0][0]

    def global_from_kabsch(self, R: np.ndarray, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        # model: R (X - J0) + J0 + transl; Kabsch: R X + t  =>  transl = t - J0 + R J0
        J0 = self.rest_points(s)[0]
        transl = t - J0 + np.einsum("...ij,j->...i", R, J0)
        return np.concatenate([rotvec_from_matrix(self.ref.T @ R), transl], axis=-1)

    def init_articulation(self, obs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.prior_mean[6:], (obs.shape[0], self.n_params - 6)).copy()

    def angles(self, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        pts = self.evaluate(x, s, False)[0]
        return kin.angles_from_points(pts * [-1.0, 1.0, 1.0] if self.model.side == "left" else pts)

    def fit_betas(self, obs: np.ndarray, prior: float) -> np.ndarray:
        """Betas whose rest bone lengths match the observed median bone lengths."""
        with np.errstate(all="ignore"):
            target = np.nanmedian(bone_lengths(obs), axis=0)
        ok = np.isfinite(target)
        if ok.sum() < 3:
            return np.zeros(self.n_shared)

        def res(b):
            return np.concatenate([(bone_lengths(self.rest_points(b)) - target)[ok] * 1000.0,
                                   prior * b])  # fmt: skip

        return least_squares(res, np.zeros(self.n_shared), method="lm").x


def initial_global(model, obs: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per-frame global parameters ``(N, 6)`` by Kabsch of the rest hand onto the data.

    Sets ``model.ref`` to the rotation of the frame nearest the middle of the sequence, so the
    axis-angle parameters stay small and away from the +-pi wrap, where frame-to-frame
    smoothness would otherwise see a jump of 2 pi between equal rotations.

    The palm joints are used where at least three are seen, else all seen joints; frames with
    fewer than three seen joints copy the nearest frame that had enough (NaN if none did).
    """
    model.ref = np.eye(3)
    rest = model.rest_points(s)
    palm = kin.PALM_JOINTS
    N = obs.shape[0]
    R, t = kabsch(np.broadcast_to(rest[palm], (N, 6, 3)), obs[:, palm])
    bad = ~np.isfinite(t).all(-1)
    if bad.any():
        R2, t2 = kabsch(np.broadcast_to(rest, (N, 21, 3)), obs)
        R[bad], t[bad] = R2[bad], t2[bad]
    good = np.flatnonzero(np.isfinite(t).all(-1))
    out = np.full((N, 6), np.nan)
    if good.size == 0:
        return out
    mid = good[np.argmin(np.abs(good - N // 2))]
    model.ref = rodrigues(model.global_from_kabsch(R[mid], t[mid], s)[:3])
    out[good] = model.global_from_kabsch(R[good], t[good], s)
    nearest = good[np.abs(np.arange(N)[:, None] - good[None]).argmin(axis=1)]
    return out[nearest]


def absolute_params(model, x: np.ndarray) -> np.ndarray:
    """``x`` with its first three columns turned from ref-relative to absolute axis-angle."""
    out = x.copy()
    out[:, :3] = rotvec_from_matrix(model.ref @ rodrigues(x[:, :3]))
    return out
