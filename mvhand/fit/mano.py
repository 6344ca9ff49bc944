"""The MANO hand model: linear blend skinning with shape and pose blend shapes (numpy only).

The model data come from the official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (read by
:mod:`mvhand.fit.mano_io`; mvhand never ships them). Conventions, as in the MANO paper and
smplx with ``flat_hand_mean=True``:

- ``betas`` ``(10,)``: shape coefficients; ``v_shaped = v_template + shapedirs @ betas``.
- ``global_orient`` ``(3,)`` rad: axis-angle of the wrist, rotating about the wrist joint.
- ``hand_pose`` ``(45,)`` rad: axis-angle of the 15 finger joints (MANO order, each relative
  to its parent, axes in the template's frame), relative to the flat template hand. The
  official ``hands_mean`` is the mean of this vector; the PCA space is
  ``hand_pose = hands_mean + coeffs @ hands_components[:n]``.
- ``transl`` ``(3,)`` m: added to every joint and vertex.
- Pose blend shapes ``posedirs @ (R_k - I)`` for k = 1..15 (135 features, row-major).

The 21 keypoints are MANO's 16 skeleton joints (wrist, index 1-3, middle 1-3, little 1-3,
ring 1-3, thumb 1-3) plus five fingertip vertices, reordered to mvhand's joint order with
:data:`mvhand.core.skeleton.MANO`. Fingertip vertex ids (:data:`TIP_VERTEX_IDS`): thumb 744,
index 320, middle 443, ring 554, little 671, the ids of smplx's ``vertex_ids['mano']`` used by
most MANO fitting code. Why these are the tips: in the official template each finger's vertices
form a block (the ids grow index, middle, ring, little, thumb, the order of the tips above), and
each id is a vertex at the distal end of its finger, skinned (almost) only to the finger's last
joint. :func:`check_tip_vertices` verifies exactly that on a loaded model (dominant skinning
joint is the finger's distal joint, and the vertex lies beyond that joint along the finger), so a
user's file that breaks the convention is reported rather than silently mis-fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mvhand.core.skeleton import MANO as MANO_TO_MVHAND
from mvhand.fit.rotation import rodrigues

N_VERTS = 778
N_FACES = 1538
N_JOINTS_MANO = 16
N_BETAS = 10
#: Parent of each MANO skeleton joint (-1 for the wrist).
MANO_PARENTS: np.ndarray = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
#: Fingertip vertex ids: thumb, index, middle, ring, little (the order of mano21[16:21]).
TIP_VERTEX_IDS: np.ndarray = np.array([744, 320, 443, 554, 671])
#: MANO joints by depth in the tree: 5 children of the wrist, then their children, ...
_LEVELS = (np.array([1, 4, 7, 10, 13]), np.array([2, 5, 8, 11, 14]), np.array([3, 6, 9, 12, 15]))


@dataclass(frozen=True, eq=False)
class ManoModel:
    """One hand's MANO model arrays (metres).

    Attributes:
        side: "left" or "right".
        v_template: ``(778, 3)`` template vertices.
        faces: ``(1538, 3)`` triangle vertex ids.
        weights: ``(778, 16)`` skinning weights (rows sum to 1).
        J_regressor: ``(16, 778)`` joint regressor (dense).
        shapedirs: ``(778, 3, n_betas)`` shape blend shapes.
        posedirs: ``(778, 3, 135)`` pose blend shapes.
        hands_components: ``(45, 45)`` PCA basis of ``hand_pose`` (rows are components).
        hands_mean: ``(45,)`` mean ``hand_pose``.
    """

    side: str
    v_template: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    J_regressor: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray

    @property
    def n_betas(self) -> int:
        return self.shapedirs.shape[-1]

    @cached_property
    def joint_template(self) -> np.ndarray:
        """``(16, 3)`` rest joints of the mean shape."""
        return self.J_regressor @ self.v_template

    @cached_property
    def joint_shapedirs(self) -> np.ndarray:
        """``(16, 3, n_betas)`` how the rest joints move with the betas."""
        return np.einsum("jv,vcb->jcb", self.J_regressor, self.shapedirs)


def _as_batch(a: np.ndarray, n: int, width: int) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return np.broadcast_to(a.reshape(-1, width), (n, width)) if a.ndim == 1 else a


def _rest_joints(model: ManoModel, betas: np.ndarray) -> np.ndarray:
    """Rest joints ``(N, 16, 3)`` for betas ``(N, n_betas)``."""
    return model.joint_template + np.einsum("jcb,nb->njc", model.joint_shapedirs, betas)


def _kinematics(model: ManoModel, R: np.ndarray, J: np.ndarray):
    """World rotations ``(N, 16, 3, 3)`` and positions ``(N, 16, 3)`` of the joints."""
    G_R = np.empty_like(R)
    G_t = np.empty_like(J)
    G_R[:, 0] = R[:, 0]
    G_t[:, 0] = J[:, 0]
    for level in _LEVELS:
        par = MANO_PARENTS[level]
        G_R[:, level] = G_R[:, par] @ R[:, level]
        G_t[:, level] = np.einsum("nkij,nkj->nki", G_R[:, par], J[:, level] - J[:, par])
        G_t[:, level] += G_t[:, par]
    return G_R, G_t


def _skin(model: ManoModel, idx: np.ndarray | slice, betas: np.ndarray, R: np.ndarray,
          G_R: np.ndarray, G_t: np.ndarray, J: np.ndarray) -> np.ndarray:  # fmt: skip
    """Posed vertices ``idx`` ``(N, V, 3)`` (before translation)."""
    v = model.v_template[idx] + np.einsum("vcb,nb->nvc", model.shapedirs[idx], betas)
    pose_feature = (R[:, 1:] - np.eye(3)).reshape(R.shape[0], -1)
    v = v + np.einsum("vcp,np->nvc", model.posedirs[idx], pose_feature)
    A_t = G_t - np.einsum("nkij,nkj->nki", G_R, J)
    w = model.weights[idx]
    T_R = np.einsum("vk,nkij->nvij", w, G_R)
    T_t = np.einsum("vk,nki->nvi", w, A_t)
    return np.einsum("nvij,nvj->nvi", T_R, v) + T_t


def mano_forward(model: ManoModel, betas: np.ndarray, global_orient: np.ndarray,
                 hand_pose: np.ndarray, transl: np.ndarray, vertices: bool = False,
                 ref_rotation: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Pose the model: 21 keypoints in mvhand's order, and optionally all vertices.

    Args:
        model: the hand's model.
        betas: ``(n_betas,)`` or ``(N, n_betas)``.
        global_orient: ``(N, 3)`` rad.
        hand_pose: ``(N, 45)`` rad, relative to the flat hand (see the module docstring).
        transl: ``(N, 3)`` m.
        vertices: also return the ``(N, 778, 3)`` mesh vertices.
        ref_rotation: ``(3, 3)``; when given the wrist rotation is ``ref_rotation @
            R(global_orient)`` (the fitter keeps the axis-angle small this way).

    Returns:
        ``(keypoints (N, 21, 3), vertices (N, 778, 3) or None)`` in metres.

    Example:
        >>> kp, _ = mano_forward(model, np.zeros(10), np.zeros((1, 3)), np.zeros((1, 45)),
        ...                      np.zeros((1, 3)))  # doctest: +SKIP
    """
    global_orient = np.asarray(global_orient, dtype=float).reshape(-1, 3)
    N = global_orient.shape[0]
    betas = _as_batch(betas, N, model.n_betas)
    pose = np.concatenate([global_orient, _as_batch(hand_pose, N, 45)], axis=1)
    R = rodrigues(pose.reshape(N, N_JOINTS_MANO, 3))
    if ref_rotation is not None:
        R[:, 0] = ref_rotation @ R[:, 0]
    J = _rest_joints(model, betas)
    G_R, G_t = _kinematics(model, R, J)
    tips = _skin(model, TIP_VERTEX_IDS, betas, R, G_R, G_t, J)
    transl = _as_batch(transl, N, 3)[:, None, :]
    mano21 = np.concatenate([G_t, tips], axis=1) + transl
    verts = _skin(model, slice(None), betas, R, G_R, G_t, J) + transl if vertices else None
    return mano21[:, MANO_TO_MVHAND], verts


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Axis-angle vectors ``(..., 3k)`` of a hand mirrored through the x = 0 plane.

    Reflection ``M = diag(-1, 1, 1)`` maps a rotation ``R`` to ``M R M``, whose axis-angle
    is ``(a, -b, -c)``. The official left model is the mirror of the right one, so a right-hand
    pose mirrored this way poses the left model into the mirror image.
    """
    pose = np.array(pose, dtype=float)
    p = pose.reshape(*pose.shape[:-1], -1, 3)
    p[..., 1:] *= -1
    return p.reshape(pose.shape)


#: The distal MANO joint of each tip in TIP_VERTEX_IDS: thumb3, index3, middle3, ring3, little3.
_TIP_PARENT_JOINT = np.array([15, 3, 6, 12, 9])


def check_tip_vertices(model: ManoModel) -> list[str]:
    """Problems with the fingertip vertex ids on ``model`` (empty when all is well).

    A tip vertex must be skinned mostly to its finger's distal joint, and lie beyond that
    joint: farther from the middle joint of the finger than the distal joint is.
    """
    problems = []
    J = model.joint_template
    names = ("thumb", "index", "middle", "ring", "little")
    for name, vid, joint in zip(names, TIP_VERTEX_IDS, _TIP_PARENT_JOINT, strict=True):
        dominant = int(np.argmax(model.weights[vid]))
        if dominant != joint:
            problems.append(f"{name} tip vertex {vid} is skinned mostly to joint {dominant}, "
                            f"not to the distal joint {joint}")  # fmt: skip
        v = model.v_template[vid]
        bone = J[joint] - J[joint - 1]
        if np.dot(v - J[joint], bone) <= 0:
            problems.append(f"{name} tip vertex {vid} does not lie beyond the distal joint")
    return problems


def mano_keypoints_jacobian(model: ManoModel, betas: np.ndarray, global_orient: np.ndarray,
                            hand_pose: np.ndarray, transl: np.ndarray,
                            ref_rotation: np.ndarray | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Keypoints and their derivatives, for fitting.

    Args:
        model, betas ``(n_betas,)``, global_orient ``(N, 3)``, hand_pose ``(N, 45)``,
        transl ``(N, 3)``, ref_rotation: as in :func:`mano_forward`.

    Returns:
        ``keypoints (N, 21, 3)`` m (mvhand order), ``d/d[global_orient, transl, hand_pose]``
        ``(N, 21, 3, 51)`` and ``d/d betas`` ``(N, 21, 3, n_betas)``. Betas, translation and
        the pose blend shapes are differentiated exactly; the rigid part treats each fingertip
        vertex as moving with its distal joint (its skinning weight there is ~1), so the pose
        derivative is exact for one-joint tips and close otherwise, which Gauss-Newton
        tolerates: the cost itself is always exact.
    """
    from mvhand.fit.kinematic import right_jacobian

    N = global_orient.shape[0]
    betas = np.asarray(betas, dtype=float).reshape(1, -1)
    pose = np.concatenate([global_orient, hand_pose], axis=1).reshape(N, N_JOINTS_MANO, 3)
    R = rodrigues(pose)
    if ref_rotation is not None:
        R[:, 0] = ref_rotation @ R[:, 0]
    J = np.broadcast_to(_rest_joints(model, betas), (N, N_JOINTS_MANO, 3))
    G_R, G_t = _kinematics(model, R, J)
    tips = _skin(model, TIP_VERTEX_IDS, np.broadcast_to(betas, (N, betas.shape[1])), R, G_R,
                 G_t, J)  # fmt: skip
    pts = np.concatenate([G_t, tips], axis=1)  # (N, 21, 3) MANO order, before transl
    A = G_R @ right_jacobian(pose)  # world axes of each joint's 3 parameters (N, 16, 3, 3)
    # d point / d r_k = A_k[:, a] x (point - joint k), for the <= 4 ancestors k of each point
    anc, mask = _ANC_IDX, _ANC_MASK > 0
    rel = pts[:, :, None, :] - G_t[:, anc]  # (N, 21, 4, 3)
    jp = np.stack([np.cross(A[..., a][:, anc], rel) for a in range(3)], axis=-1)  # N,21,4,3,3
    jac = np.zeros((N, 21, 3, 16, 3))
    I, S = np.nonzero(mask)
    jac.transpose(1, 3, 0, 2, 4)[I, anc[I, S]] = jp.transpose(1, 2, 0, 3, 4)[I, S]
    jac[:, 16:, :, 1:] += _tip_blendshape_jacobian(model, R, G_R, pose)
    jac = np.concatenate([jac[..., 0, :], np.broadcast_to(np.eye(3), (N, 21, 3, 3)),
                          jac[..., 1:, :].reshape(N, 21, 3, 45)], axis=-1)  # fmt: skip
    jb = _betas_jacobian(model, G_R)
    order = MANO_TO_MVHAND
    return (pts + transl[:, None])[:, order], jac[:, order], jb[:, order]


def _ancestors() -> tuple[np.ndarray, np.ndarray]:
    """``(21, 4)`` ancestor-or-owner MANO joints of each keypoint (padded) and a validity mask."""
    owner = np.concatenate([np.arange(16), _TIP_PARENT_JOINT])
    idx = np.zeros((21, 4), dtype=np.int64)
    mask = np.zeros((21, 4))
    for i, k in enumerate(owner):
        n = 0
        while k >= 0:
            idx[i, n], mask[i, n] = k, 1.0
            k, n = MANO_PARENTS[k], n + 1
    return idx, mask


def _tip_blendshape_jacobian(model: ManoModel, R: np.ndarray, G_R: np.ndarray,
                             pose: np.ndarray) -> np.ndarray:  # fmt: skip
    """How the pose blend shapes move the tip vertices: ``(N, 5, 3, 15, 3)``."""
    from mvhand.fit.kinematic import right_jacobian

    N = R.shape[0]
    Rk = R[:, 1:]  # (N, 15, 3, 3)
    skew = np.zeros((3, 3, 3))
    for a in range(3):
        e = np.eye(3)[a]
        skew[a] = [[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]]
    dR = np.einsum("nkij,ajl,nkab->nkilb", Rk, skew, right_jacobian(pose[:, 1:]), optimize=True)
    dR = dR.reshape(N, 15, 9, 3)
    pdirs = model.posedirs[TIP_VERTEX_IDS].reshape(5, 3, 15, 9)
    dv = np.einsum("vckp,nkpb->nvckb", pdirs, dR, optimize=True)  # rest-pose offset derivatives
    T_R = np.einsum("vm,nmij->nvij", model.weights[TIP_VERTEX_IDS], G_R)
    return np.einsum("nvij,nvjkb->nvikb", T_R, dv, optimize=True)


def _betas_jacobian(model: ManoModel, G_R: np.ndarray) -> np.ndarray:
    """Exact ``d keypoints / d betas`` ``(N, 21, 3, n_betas)`` in MANO order."""
    dJ = model.joint_shapedirs  # (16, 3, B)
    N = G_R.shape[0]
    dO = np.empty((N, 16, 3, dJ.shape[-1]))
    dO[:, 0] = dJ[0]
    for level in _LEVELS:
        par = MANO_PARENTS[level]
        dO[:, level] = np.einsum("nkij,kjb->nkib", G_R[:, par], dJ[level] - dJ[par]) + dO[:, par]
    w = model.weights[TIP_VERTEX_IDS]  # (5, 16)
    local = model.shapedirs[TIP_VERTEX_IDS][:, None] - dJ[None]  # (5, 16, 3, B)
    tips = np.einsum("vk,nkij,vkjb->nvib", w, G_R, local, optimize=True)
    tips += np.einsum("vk,nkib->nvib", w, dO, optimize=True)
    return np.concatenate([dO, tips], axis=1)


_ANC_IDX, _ANC_MASK = _ancestors()
