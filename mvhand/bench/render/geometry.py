"""Mesh primitives of the rendered operating room: subdivided planes, boxes, tapered tubes,
and a merged mesh with per-vertex materials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Material:
    """Surface appearance (Blinn-Phong).

    Attributes:
        albedo: ``(3,)`` sRGB base colour in [0, 1].
        specular: specular strength (glare: gloves about 0.3, metal 1-2).
        shininess: Blinn-Phong exponent.
    """

    albedo: tuple[float, float, float]
    specular: float = 0.05
    shininess: float = 20.0


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh with per-vertex material and one object id per triangle.

    Attributes:
        vertices: ``(V, 3)`` world metres. normals: ``(V, 3)`` unit.
        faces: ``(F, 3)``. albedo: ``(V, 3)`` linear RGB. specular, shininess: ``(V,)``.
        object_id: ``(F,)`` int32 (see :mod:`mvhand.bench.render.scene` for the codes).
    """

    vertices: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    albedo: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray
    object_id: np.ndarray

    @staticmethod
    def concat(meshes: Sequence[Mesh]) -> Mesh:
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.normals for m in meshes]),
            np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]),
            np.concatenate([m.albedo for m in meshes]),
            np.concatenate([m.specular for m in meshes]),
            np.concatenate([m.shininess for m in meshes]),
            np.concatenate([m.object_id for m in meshes]),
        )


def srgb_to_linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def make_mesh(vertices: np.ndarray, normals: np.ndarray, faces: np.ndarray, mat: Material,
              object_id: int) -> Mesh:  # fmt: skip
    n = len(vertices)
    return Mesh(np.asarray(vertices, float), np.asarray(normals, float),
                np.asarray(faces, np.int64), np.tile(srgb_to_linear(mat.albedo), (n, 1)),
                np.full(n, mat.specular), np.full(n, mat.shininess),
                np.full(len(faces), object_id, np.int32))  # fmt: skip


def grid_faces(nu: int, nv: int) -> np.ndarray:
    """Triangles of an ``(nu + 1) x (nv + 1)`` vertex grid (row-major in u)."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b, c, d = a + nv + 1, a + 1, a + nv + 2
    return np.concatenate([np.stack([a, b, c], 1), np.stack([c, b, d], 1)])


def plane(center, u_axis, v_axis, size_u: float, size_v: float, n_u: int, n_v: int,
          mat: Material, object_id: int) -> Mesh:  # fmt: skip
    """A subdivided rectangle (normal u x v)."""
    u, v = np.asarray(u_axis, float), np.asarray(v_axis, float)
    su, sv = np.linspace(-0.5, 0.5, n_u + 1) * size_u, np.linspace(-0.5, 0.5, n_v + 1) * size_v
    pts = (np.asarray(center, float) + su[:, None, None] * u + sv[None, :, None] * v).reshape(-1, 3)
    nrm = np.cross(u, v)
    nrm /= np.linalg.norm(nrm)
    return make_mesh(pts, np.tile(nrm, (len(pts), 1)), grid_faces(n_u, n_v), mat, object_id)


def box(center, R: np.ndarray, half: Sequence[float], mat: Material, object_id: int,
        n: int = 1) -> Mesh:  # fmt: skip
    """An oriented box (``R`` columns are its axes, ``half`` its half sizes), each face an
    ``n x n`` grid."""
    meshes = []
    R = np.asarray(R, float)
    for axis in range(3):
        for sign in (-1.0, 1.0):
            a1, a2 = (axis + 1) % 3, (axis + 2) % 3
            c = np.asarray(center, float) + sign * half[axis] * R[:, axis]
            u, v = R[:, a1] * sign, R[:, a2]
            meshes.append(plane(c, u, v, 2 * half[a1], 2 * half[a2], n, n, mat, object_id))
    return Mesh.concat(meshes)


def tube(p0, p1, r0: float, r1: float, mat: Material, object_id: int, sides: int = 14,
         rings: int = 6) -> Mesh:  # fmt: skip
    """A tapered, capped cylinder from ``p0`` (radius r0) to ``p1`` (radius r1)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = np.linalg.norm(axis)
    a = axis / length
    ref = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(a, ref)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(a, e1)
    t = np.linspace(0.0, 1.0, rings + 1)
    ang = np.linspace(0.0, 2 * np.pi, sides + 1)
    radial = np.cos(ang)[None, :, None] * e1 + np.sin(ang)[None, :, None] * e2  # (1, S+1, 3)
    r = (r0 + (r1 - r0) * t)[:, None, None]
    pts = (p0 + t[:, None, None] * axis + r * radial).reshape(-1, 3)
    slope = (r0 - r1) / length
    nrm = (radial + slope * a) / np.sqrt(1 + slope**2)
    nrm = np.broadcast_to(nrm, (rings + 1, sides + 1, 3)).reshape(-1, 3)
    side = make_mesh(pts, nrm, grid_faces(rings, sides), mat, object_id)
    caps = []
    for end, rad, sign in ((p0, r0, -1.0), (p1, r1, 1.0)):
        ring = end + rad * radial[0, :-1]
        verts = np.vstack([end, ring])
        k = np.arange(sides)
        faces = np.stack([np.zeros(sides, int), 1 + k, 1 + (k + 1) % sides], 1)
        caps.append(make_mesh(verts, np.tile(sign * a, (len(verts), 1)), faces, mat, object_id))
    return Mesh.concat([side, *caps])
