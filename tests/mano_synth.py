"""A synthetic MANO model file with the official structure, for tests (no real MANO files here).

Same keys, shapes, dtypes and kinematic tree as ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``:
a plausible template (tubes of vertices around the bones of mvhand's canonical hand, built in
MANO's joint order), skinning weights that blend each bone with its parent near the joint, a
sparse ``J_regressor`` that averages a ring of vertices at each joint, smooth random shape and
pose blend shapes, a PCA pose space and a bent ``hands_mean``. ``shapedirs`` is pickled as a
stand-in ``chumpy.ch.Ch`` object (same module and class name, same state layout as chumpy's
``__getstate__``), protocol 2, so the loader's chumpy path runs exactly as on the real file.
The fingertip vertices sit at the ids of ``mvhand.fit.mano.TIP_VERTEX_IDS``.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from mvhand.core.skeleton import MANO
from mvhand.core.synthetic import hand_pose
from mvhand.fit.mano import MANO_PARENTS, TIP_VERTEX_IDS

RING = 8  # vertices per ring
RINGS = 5  # rings per finger segment
# MANO joint of each tip (thumb, index, middle, ring, little)
_TIP_JOINT = np.array([15, 3, 6, 12, 9])
#: Finger of each MANO joint 1..15 as index into (thumb, index, middle, ring, little).
_JOINT_FINGER = np.array([-1, 1, 1, 1, 2, 2, 2, 4, 4, 4, 3, 3, 3, 0, 0, 0])


def canonical_mano_joints(scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Flat right hand in MANO order: 16 joints and 5 tips (thumb..little), metres."""
    mv = hand_pose(np.zeros((5, 3)), scale)
    mano21 = np.empty_like(mv)
    mano21[MANO] = mv
    return mano21[:16], mano21[16:]


def _child_end(joints: np.ndarray, tips: np.ndarray, k: int) -> np.ndarray:
    children = np.flatnonzero(MANO_PARENTS == k)
    if children.size:
        return joints[children[0]]
    return tips[np.flatnonzero(_TIP_JOINT == k)[0]]


def _ring(center: np.ndarray, axis: np.ndarray, radius: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    u = np.cross(axis, [0.0, 0.0, 1.0])
    if np.linalg.norm(u) < 1e-6:
        u = np.cross(axis, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    a = np.linspace(0, 2 * np.pi, RING, endpoint=False)
    return center + radius * (np.cos(a)[:, None] * u + np.sin(a)[:, None] * v)


def _template(joints: np.ndarray, tips: np.ndarray):
    """Vertices (773 non-tip), their weights (773, 16) and joint rings for the regressor."""
    verts, weights, rings = [], [], {}
    for k in range(1, 16):
        start, end = joints[k], _child_end(joints, tips, k)
        p = MANO_PARENTS[k]
        for i, s in enumerate(np.linspace(0.0, 0.8, RINGS)):
            if i == 0:
                rings[k] = len(verts)
            verts += list(_ring(start + s * (end - start), end - start, 0.008))
            w = np.zeros(16)
            w[k], w[p] = min(1.0, 0.5 + s), 1.0 - min(1.0, 0.5 + s)
            weights += [w] * RING
    rings[0] = len(verts)
    verts += list(_ring(joints[0], joints[4] - joints[0], 0.02))
    weights += [np.eye(16)[0]] * RING
    rng = np.random.default_rng(7)
    n_palm = 778 - 5 - len(verts)
    bases = joints[[1, 4, 7, 10, 13]]
    lam = rng.uniform(0, 1, (n_palm, 1))
    pick = bases[rng.integers(0, 5, n_palm)]
    palm = joints[0] + lam * (pick - joints[0]) + rng.normal(0, 0.004, (n_palm, 3))
    verts += list(palm)
    weights += [np.eye(16)[0]] * n_palm
    return np.array(verts), np.array(weights), rings


def _faces(others: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tube triangles between consecutive rings (body vertex ids mapped to final ids), then
    random triangles up to the official count."""
    faces = []
    for seg in range(15):
        for r in range(RINGS - 1):
            a0 = seg * RINGS * RING + r * RING
            for i in range(RING):
                a, b = a0 + i, a0 + (i + 1) % RING
                faces += [[a, b, a + RING], [b, b + RING, a + RING]]
    faces = others[np.array(faces)].tolist()
    while len(faces) < 1538:
        faces.append(list(rng.choice(778, 3, replace=False)))
    return np.array(faces[:1538], dtype=np.uint32)


def make_mano_dict(seed: int = 0, side: str = "right", left_shapedirs_bug: bool = False) -> dict:
    """A dictionary with the official MANO keys (arrays, not yet chumpy-wrapped).

    ``side="left"`` mirrors the right model through x = 0 (template, blend shapes, pose
    space), as the official left file is; ``left_shapedirs_bug`` reproduces the official left
    file's defect (shapedirs x not mirrored).
    """
    rng = np.random.default_rng(seed)
    joints, tips = canonical_mano_joints()
    body, body_w, rings = _template(joints, tips)
    v = np.empty((778, 3))
    W = np.empty((778, 16))
    others = np.setdiff1d(np.arange(778), TIP_VERTEX_IDS)
    v[others], W[others] = body, body_w
    v[TIP_VERTEX_IDS] = tips
    W[TIP_VERTEX_IDS] = np.eye(16)[_TIP_JOINT]
    reg = np.zeros((16, 778))
    for k, start in rings.items():
        reg[k, others[start:start + RING]] = 1.0 / RING
    shapedirs = _shapedirs(v, joints[0], rng)
    posedirs = _smooth_field(v, rng, 135, 0.002)
    comps = np.linalg.qr(rng.normal(size=(45, 45)))[0].T * np.linspace(1.0, 0.1, 45)[:, None]
    mean = _hands_mean(joints)
    d = {
        "v_template": v, "f": _faces(others, rng), "weights": W,
        "kintree_table": np.array([[4294967295] + MANO_PARENTS[1:].tolist(), list(range(16))]),
        "J_regressor": sp.csc_matrix(reg), "J": reg @ v,
        "shapedirs": shapedirs, "posedirs": posedirs,
        "hands_components": comps, "hands_mean": mean, "hands_coeffs": rng.normal(size=(50, 45)),
        "bs_style": "lbs", "bs_type": "lrotmin",
    }  # fmt: skip
    return _mirror(d, left_shapedirs_bug) if side == "left" else d


def _shapedirs(v: np.ndarray, wrist: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smooth, non-rigid shape directions that keep the wrist in place (identifiable)."""
    rel = v - wrist
    out = np.empty((778, 3, 10))
    out[:, :, 0] = 0.06 * rel  # overall size
    for b in range(1, 10):
        A = rng.normal(0, 0.05, (3, 3))
        A = (A + A.T) / 2  # symmetric: a stretch, not a rotation
        Q = rng.normal(0, 0.6, (3, 3))
        out[:, :, b] = rel @ A.T + (rel**2) @ Q.T
    return out


def _smooth_field(v: np.ndarray, rng: np.random.Generator, n: int, amp: float) -> np.ndarray:
    """``(778, 3, n)`` random fields linear in the vertex position (smooth over the mesh)."""
    c = v - v.mean(0)
    c /= np.abs(c).max()
    A = rng.normal(0, amp, (n, 3, 3))
    b = rng.normal(0, amp / 2, (n, 3))
    return (np.einsum("ncd,vd->vcn", A, c) + b.T[None]).astype(float)


def _hands_mean(joints: np.ndarray) -> np.ndarray:
    """A relaxed, slightly bent hand: each finger joint flexed about its bending axis."""
    splay = np.array([0.75, 0.12, 0.0, -0.12, -0.25])
    mean = np.zeros((15, 3))
    for k in range(1, 16):
        s = splay[_JOINT_FINGER[k]]
        mean[k - 1] = 0.25 * np.array([np.cos(s), -np.sin(s), 0.0])
    return mean.ravel()


def _mirror(d: dict, shapedirs_bug: bool) -> dict:
    M = np.array([-1.0, 1.0, 1.0])
    out = dict(d)
    out["v_template"] = d["v_template"] * M
    out["J"] = d["J"] * M
    out["shapedirs"] = d["shapedirs"] * (1.0 if shapedirs_bug else M[None, :, None])
    pd = d["posedirs"].reshape(778, 3, 15, 3, 3)
    out["posedirs"] = (pd * M[None, :, None, None, None] * M[:, None] * M[None, :]).reshape(
        778, 3, 135)
    flip = np.tile(np.array([1.0, -1.0, -1.0]), 15)
    out["hands_mean"] = d["hands_mean"] * flip
    out["hands_components"] = d["hands_components"] * flip
    out["f"] = d["f"][:, ::-1].copy()
    return out


class _Ch:
    """Stand-in for ``chumpy.ch.Ch``: pickles as that class with chumpy's state layout."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x)
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False

    def __getstate__(self) -> dict:
        return dict(self.__dict__)


@contextlib.contextmanager
def _fake_chumpy():
    """Register modules ``chumpy`` and ``chumpy.ch`` holding ``Ch`` while pickling."""
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    pkg, mod = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    _Ch.__module__, _Ch.__qualname__, _Ch.__name__ = "chumpy.ch", "Ch", "Ch"
    mod.Ch = _Ch
    pkg.ch = mod
    sys.modules.update({"chumpy": pkg, "chumpy.ch": mod})
    try:
        yield
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = m


def write_mano_pickle(path: str | Path, d: dict) -> Path:
    """Pickle ``d`` like the official file: protocol 2, ``shapedirs`` as a chumpy object."""
    path = Path(path)
    data = dict(d)
    with _fake_chumpy():
        data["shapedirs"] = _Ch(d["shapedirs"])
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    return path


def write_mano_dir(folder: str | Path, seed: int = 0, left_shapedirs_bug: bool = False) -> Path:
    """Write ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_mano_pickle(folder / "MANO_RIGHT.pkl", make_mano_dict(seed, "right"))
    write_mano_pickle(folder / "MANO_LEFT.pkl",
                      make_mano_dict(seed, "left", left_shapedirs_bug))  # fmt: skip
    return folder
