"""Render one camera's video of a scene, and the truth visibility from its depth and id
buffers.

Per camera the static room is rasterized and shaded once; per frame only the moving geometry
is rasterized, in the window of the image it covers, and composited over the static image by
depth. Shading is linear Blinn-Phong under the surgical lights, with a bloom around highlights
(glare), then sRGB, sensor noise, and the video encoder's compression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mvhand.bench.render.geometry import Mesh
from mvhand.bench.render.raster import Buffers, rasterize
from mvhand.bench.render.scene import FOREARM_ID, HAND_ID, INSTRUMENT_ID, SCENE_ID, Light, shade
from mvhand.core.camera import Camera

#: Occluder codes of the truth (``truth_2d.npz`` ``occluder``).
VISIBLE, BY_SELF, BY_OTHER_HAND, BY_INSTRUMENT, BY_SCENE, OUTSIDE = 0, 1, 2, 3, 4, 5
OCCLUDER_NAMES = ("visible", "self", "other_hand", "instrument", "scene", "outside")
#: A joint is seen when its own hand's surface in front of it lies within this depth (m) of
#: the joint: joints sit inside the finger, 5-20 mm under the skin.
SURFACE_TOL_M = 0.025


def _linear_to_srgb8(rgb: np.ndarray) -> np.ndarray:
    c = np.clip(rgb, 0.0, 1.0)
    s = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return (s * 255.0 + 0.5).astype(np.uint8)


def _shade_pixels(mesh: Mesh, face: np.ndarray, bary: np.ndarray, eye: np.ndarray,
                  lights: list[Light]) -> np.ndarray:  # fmt: skip
    tri = mesh.faces[face]  # (N, 3)
    b = bary.astype(np.float32)

    def interp(attr: np.ndarray) -> np.ndarray:
        a = attr.astype(np.float32)[tri]
        return np.einsum("nk,nkc->nc", b, a) if a.ndim == 3 else np.einsum("nk,nk->n", b, a)

    return shade(interp(mesh.vertices), interp(mesh.normals), interp(mesh.albedo),
                 interp(mesh.specular), interp(mesh.shininess), eye, lights)  # fmt: skip


def _bloom(hdr: np.ndarray, strength: float) -> np.ndarray:
    """Glare: light above white spread around bright spots (HDR ``(h, w, 3)``)."""
    import cv2

    over = np.clip(hdr - 0.9, 0.0, None).astype(np.float32)
    if not over.any():
        return hdr
    sigma = 0.004 * max(hdr.shape[:2]) + 1.5
    return hdr + strength * cv2.GaussianBlur(over, (0, 0), sigma)


@dataclass
class StaticView:
    """The static room as seen by one camera: sRGB image, depth and object ids."""

    rgb: np.ndarray
    hdr: np.ndarray
    depth: np.ndarray
    object_id: np.ndarray


def render_static(cam: Camera, scene: Mesh, lights: list[Light], glare: float,
                  noise: float = 2.0) -> StaticView:
    """Rasterize and shade the static room for ``cam``."""
    w, h = cam.size_px
    buf = Buffers.empty((w, h))
    rasterize(cam.project(scene.vertices), cam.world_to_cam(scene.vertices)[:, 2], scene.faces,
              scene.object_id, buf)  # fmt: skip
    hdr = np.zeros((h, w, 3), np.float32)
    hit = buf.face >= 0
    hdr[hit] = _shade_pixels(scene, buf.face[hit], buf.bary[hit], cam.center_world, lights)
    hdr = _bloom(hdr, 0.35 * glare)
    rgb = _linear_to_srgb8(hdr).astype(np.int16)
    rgb += np.rint(np.random.default_rng(0).normal(0.0, noise, rgb.shape)).astype(np.int16)
    return StaticView(np.clip(rgb, 0, 255).astype(np.uint8), hdr, buf.depth.astype(np.float32),
                      buf.object_id)  # fmt: skip


def _window(xy: np.ndarray, z: np.ndarray, size: tuple[int, int], pad: int = 24):
    ok = (z > 0.05) & np.isfinite(xy).all(1)
    if not ok.any():
        return None
    lo = np.floor(xy[ok].min(0)).astype(int) - pad
    hi = np.ceil(xy[ok].max(0)).astype(int) + pad
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, np.array(size) - 1)
    if (hi < lo).any():
        return None
    return int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1


def classify_joints(cam: Camera, joints: np.ndarray, static: StaticView, win, buf: Buffers | None,
                    tol_m: float = SURFACE_TOL_M) -> np.ndarray:  # fmt: skip
    """``(H, 21)`` occluder code of each joint ``(H, 21, 3)`` (see ``OCCLUDER_NAMES``).

    A joint is visible when the front surface in its pixel is its own hand's and lies at most
    ``tol_m`` in front of the joint (or, when that pixel shows something behind the joint, not
    the hand, one of the 8 around it does: a joint on a thin finger's silhouette). Otherwise
    the front surface in its pixel says what hides it.
    """
    H = joints.shape[0]
    xy = cam.project(joints.reshape(-1, 3))
    zj = cam.world_to_cam(joints.reshape(-1, 3))[:, 2]
    w, h = cam.size_px
    out = np.full(H * 21, OUTSIDE, np.int8)
    ix, iy = np.rint(xy[:, 0]).astype(int), np.rint(xy[:, 1]).astype(int)
    inside = (zj > 0.05) & (ix >= 0) & (iy >= 0) & (ix < w) & (iy < h)
    own = np.repeat(np.arange(H), 21)
    for k in np.flatnonzero(inside):
        ids, depths = [], []
        for dy in (0, -1, 1):
            for dx in (0, -1, 1):
                x, y = min(max(ix[k] + dx, 0), w - 1), min(max(iy[k] + dy, 0), h - 1)
                oid, d = int(static.object_id[y, x]), float(static.depth[y, x])
                if buf is not None and win[0] <= x < win[2] and win[1] <= y < win[3]:
                    bd = float(buf.depth[y - win[1], x - win[0]])
                    if bd < d:
                        oid, d = int(buf.object_id[y - win[1], x - win[0]]), bd
                ids.append(oid)
                depths.append(d)
        ids_a, d_a = np.array(ids), np.array(depths)
        mine = (ids_a == HAND_ID + own[k]) & (d_a >= zj[k] - tol_m)
        c = ids_a[0]
        # the centre pixel decides; its neighbours only when it misses the hand altogether
        # (a joint on the silhouette of a thin finger)
        if mine[0] or (c not in (HAND_ID + own[k], FOREARM_ID + own[k]) and mine.any()
                       and d_a[0] >= zj[k] - tol_m):  # fmt: skip
            out[k] = VISIBLE
            continue
        if c in (HAND_ID + own[k], FOREARM_ID + own[k]):
            out[k] = BY_SELF
        elif HAND_ID <= c < INSTRUMENT_ID:
            out[k] = BY_OTHER_HAND
        elif c >= INSTRUMENT_ID:
            out[k] = BY_INSTRUMENT
        else:
            out[k] = BY_SCENE if c == SCENE_ID or c < 0 else BY_INSTRUMENT
    return out.reshape(H, 21)


def render_frame(cam: Camera, static: StaticView, mesh: Mesh, lights: list[Light], glare: float,
                 rng: np.random.Generator, noise: float = 2.0):  # fmt: skip
    """One frame: ``(h, w, 3)`` uint8 RGB, the window ``(x0, y0, x1, y1)`` and the moving
    geometry's buffers in it (None when nothing moving is in view)."""
    xy = cam.project(mesh.vertices)
    z = cam.world_to_cam(mesh.vertices)[:, 2]
    win = _window(xy, z, cam.size_px)
    image = static.rgb.copy()
    if win is None:
        return image, None, None
    x0, y0, x1, y1 = win
    buf = Buffers.empty((x1 - x0, y1 - y0))
    rasterize(xy - [x0, y0], z, mesh.faces, mesh.object_id, buf)
    front = buf.depth < static.depth[y0:y1, x0:x1]
    if front.any():
        hdr = static.hdr[y0:y1, x0:x1].copy()
        hdr[front] = _shade_pixels(mesh, buf.face[front], buf.bary[front], cam.center_world,
                                   lights)  # fmt: skip
        bright = np.where(front[..., None], hdr, 0.0)
        hdr = hdr + (_bloom(bright, 0.35 * glare) - bright)
        changed = np.abs(hdr - static.hdr[y0:y1, x0:x1]).max(-1) > 1e-4
        patch = _linear_to_srgb8(hdr[changed]).astype(np.int16)
        patch += np.rint(rng.normal(0.0, noise, patch.shape)).astype(np.int16)
        image[y0:y1, x0:x1][changed] = np.clip(patch, 0, 255).astype(np.uint8)
    return image, win, buf


ProgressFn = Callable[[int, int], None]
