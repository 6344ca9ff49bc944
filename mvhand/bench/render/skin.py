"""The rigged hand: linear blend skinning and posing from 21 target joints.

The WebXR hands store every joint as a direct child of the armature (a flat hierarchy, each
joint's rest transform in the armature frame). Posing uses the anatomical tree instead
(:data:`WEBXR_PARENTS`): wrist -> metacarpals -> phalanges -> tips. A pose is the global
``(25, 4, 4)`` joint transforms; the skinned vertices are
``v' = sum_k w_k G[j_k] IBM[j_k] v`` (linear blend skinning with the file's inverse bind
matrices and per-vertex weights). The rest pose is ``G = joint_global`` of the file, for which
skinning returns the file's vertices (pinned by a test).

Retargeting (:func:`HandModel.pose_from_joints`): the wrist turns so that the hand's four
finger MCPs match the target's (Kabsch), then each finger segment, palm outwards, turns by the
smallest rotation that points it at the target's next joint. The mesh keeps its own bone
lengths, so the truth joints are the posed skeleton's (:meth:`HandModel.joints21`), not the
target; they differ from it in bone lengths only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.bench.render.gltf import SkinnedMesh, read_glb
from mvhand.core.skeleton import N_JOINTS

_FINGER_NAMES = ("index-finger", "middle-finger", "ring-finger", "pinky-finger")
_PHALANGES = ("phalanx-proximal", "phalanx-intermediate", "phalanx-distal", "tip")

#: The 21 mvhand joints as WebXR joint names (thumb CMC = the thumb metacarpal joint).
WEBXR_21: tuple[str, ...] = (
    "wrist",
    "thumb-metacarpal", "thumb-phalanx-proximal", "thumb-phalanx-distal", "thumb-tip",
    *[f"{f}-{p}" for f in _FINGER_NAMES for p in _PHALANGES],
)  # fmt: skip


def _parents() -> dict[str, str | None]:
    out: dict[str, str | None] = {"wrist": None, "thumb-metacarpal": "wrist"}
    chain = ["thumb-metacarpal", "thumb-phalanx-proximal", "thumb-phalanx-distal", "thumb-tip"]
    out.update({c: p for p, c in zip(chain, chain[1:], strict=False)})
    for f in _FINGER_NAMES:
        chain = [f"{f}-metacarpal", *[f"{f}-{p}" for p in _PHALANGES]]
        out[chain[0]] = "wrist"
        out.update({c: p for p, c in zip(chain, chain[1:], strict=False)})
    return out


#: Anatomical parent of each WebXR joint (the file's own hierarchy is flat).
WEBXR_PARENTS: dict[str, str | None] = _parents()
#: Joints whose rotation the retargeting sets from the target: name -> (from, to) 21-indices.
_AIMED: dict[str, tuple[int, int]] = {WEBXR_21[j]: (j, j + 1) for j in range(1, N_JOINTS)
                                      if j % 4 != 0}  # fmt: skip
_PALM_21 = (5, 9, 13, 17)


def _min_rotation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(3, 3)`` the smallest rotation taking direction ``u`` to direction ``v``."""
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    axis = np.cross(u, v)
    s, c = np.linalg.norm(axis), float(u @ v)
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
        return Rotation.from_rotvec(np.pi * perp / np.linalg.norm(perp)).as_matrix()
    return Rotation.from_rotvec(axis / s * np.arctan2(s, c)).as_matrix()


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation R minimising ``|R (src - mean) - (dst - mean)|`` (no reflection)."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    U, _, Vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    return Vt.T @ np.diag([1.0, 1.0, d]) @ U.T


@dataclass(frozen=True, eq=False)
class HandModel:
    """A skinned hand with the anatomical joint tree.

    Attributes:
        mesh: the file's mesh and skin.
        side: "left" or "right".
    """

    mesh: SkinnedMesh
    side: str

    @property
    def rest(self) -> np.ndarray:
        """``(J, 4, 4)`` the rest (bind) pose."""
        return self.mesh.joint_global

    def _idx(self, name: str) -> int:
        return self.mesh.joint_names.index(name)

    @property
    def index21(self) -> np.ndarray:
        """``(21,)`` skin joint index of each mvhand joint."""
        return np.array([self._idx(n) for n in WEBXR_21])

    def joints21(self, pose: np.ndarray) -> np.ndarray:
        """``(21, 3)`` the mvhand joints of a pose ``(J, 4, 4)``."""
        return pose[self.index21, :3, 3]

    def skin(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear blend skinning: ``(V, 3)`` vertices and ``(V, 3)`` unit normals of ``pose``."""
        M = pose @ self.mesh.inverse_bind  # (J, 4, 4)
        blend = np.einsum("vk,vkab->vab", self.mesh.joint_weight, M[self.mesh.joint_index])
        verts = np.einsum("vab,vb->va", blend[:, :3, :3], self.mesh.vertices) + blend[:, :3, 3]
        normals = np.einsum("vab,vb->va", blend[:, :3, :3], self.mesh.normals)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        return verts, normals

    def pose_from_joints(self, target: np.ndarray) -> np.ndarray:
        """``(J, 4, 4)`` pose whose bones point where the target's do.

        Args:
            target: ``(21, 3)`` joints in mvhand's order (metres, any frame).
        """
        rest = self.rest
        out = rest.copy()
        w = self._idx("wrist")
        rest21 = self.joints21(rest)
        R = kabsch(rest21[list(_PALM_21)] - rest21[0], target[list(_PALM_21)] - target[0])
        out[w, :3, :3] = R @ rest[w, :3, :3]
        out[w, :3, 3] = target[0]
        for name in WEBXR_PARENTS:  # parents come before children in this order
            parent = WEBXR_PARENTS[name]
            if parent is None:
                continue
            j, p = self._idx(name), self._idx(parent)
            out[j] = out[p] @ np.linalg.inv(rest[p]) @ rest[j]  # follow the parent rigidly
            if name in _AIMED:
                a, b = _AIMED[name]
                child = self._idx(WEBXR_21[b])
                follow = out[j] @ np.linalg.inv(rest[j]) @ rest[child]
                turn = _min_rotation(follow[:3, 3] - out[j, :3, 3], target[b] - target[a])
                out[j, :3, :3] = turn @ out[j, :3, :3]
        return out

    def forearm_axis(self, pose: np.ndarray) -> np.ndarray:
        """``(3,)`` unit direction from the wrist towards the elbow in ``pose``."""
        rest21 = self.joints21(self.rest)
        back = rest21[0] - rest21[9]
        w = self._idx("wrist")
        R = pose[w, :3, :3] @ np.linalg.inv(self.rest[w, :3, :3])
        d = R @ back
        return d / np.linalg.norm(d)


def asset_path(side: str) -> Path:
    """The shipped ``.glb`` of the ``side`` ("left" / "right") hand."""
    from mvhand.assets import ASSETS_DIR

    return ASSETS_DIR / "webxr_hand" / f"{side}.glb"


@lru_cache(maxsize=4)
def load_hand(side: str) -> HandModel:
    """The shipped hand mesh of ``side`` ("left" or "right")."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return HandModel(read_glb(asset_path(side)), side)
