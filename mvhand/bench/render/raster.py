"""A z-buffer triangle rasterizer in numpy, for the benchmark renderer.

Why our own and not Open3D's renderer (measured by ``benchmarks/bench_render.py``): the scene's
static part (table, drapes, floor, lying instruments) is drawn once per camera and each frame only
redraws the hands, forearms and held instruments, a few thousand small triangles covering a
few percent of the image; and the renderer must return, per pixel, which object and which
triangle is in front (the truth's visibility flags need to know what hides a joint: the hand
itself, the other hand, an instrument). Open3D returns colour and depth only, and its offscreen
renderers redraw the whole scene each frame.

Vertices are projected with the camera's full model (distortion included), so images come out
distorted exactly as the calibration says; large surfaces are subdivided finely enough that
their straight triangle edges follow the distortion's curves to well under a pixel.
Depth is interpolated as 1/z (perspective-correct), and so are the barycentric weights
returned for shading. Pixel (i, j) is the sample at its centre (OpenCV convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Candidate pixels per batch (bounds the memory of one vectorized step).
_BATCH = 1 << 21


@dataclass
class Buffers:
    """Per-pixel results of rasterizing into one image.

    Attributes:
        depth: ``(H, W)`` camera z (metres) of the front surface, inf where empty.
        object_id: ``(H, W)`` int32 object id of the front surface, -1 where empty.
        face: ``(H, W)`` int32 triangle index (into the object's faces), -1 where empty.
        bary: ``(H, W, 3)`` float32 perspective-correct barycentric weights.
    """

    depth: np.ndarray
    object_id: np.ndarray
    face: np.ndarray
    bary: np.ndarray

    @classmethod
    def empty(cls, size_px: tuple[int, int]) -> Buffers:
        w, h = size_px
        return cls(np.full((h, w), np.inf), np.full((h, w), -1, np.int32),
                   np.full((h, w), -1, np.int32), np.zeros((h, w, 3), np.float32))  # fmt: skip

    def copy(self) -> Buffers:
        return Buffers(self.depth.copy(), self.object_id.copy(), self.face.copy(),
                       self.bary.copy())  # fmt: skip


def _spans(txy: np.ndarray, lo_y: np.ndarray, hi_y: np.ndarray, lo_x: np.ndarray,
           hi_x: np.ndarray):  # fmt: skip
    """Pixels inside triangles ``txy`` ``(n, 3, 2)``, row by row: ``(tri, x, y)`` arrays.

    On each pixel row the triangle is the interval where its three edge functions agree in
    sign with its area; only those pixels are emitted (no bounding-box waste).
    """
    rows = hi_y - lo_y + 1
    tri = np.repeat(np.arange(len(txy)), rows)
    start = np.repeat(np.cumsum(rows) - rows, rows)
    y = (np.arange(tri.size) - start + lo_y[tri]).astype(np.float64)
    a, b, c = txy[tri, 0], txy[tri, 1], txy[tri, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    sgn = np.sign(area)
    xl, xr = lo_x[tri].astype(np.float64), hi_x[tri].astype(np.float64)
    for u, v in ((b, c), (c, a), (a, b)):
        # edge(p) = (v.x - u.x)(p.y - u.y) - (v.y - u.y)(p.x - u.x) = A + B p.x, times sgn
        B = -(v[:, 1] - u[:, 1]) * sgn
        A = ((v[:, 0] - u[:, 0]) * (y - u[:, 1]) + (v[:, 1] - u[:, 1]) * u[:, 0]) * sgn
        with np.errstate(divide="ignore", invalid="ignore"):
            root = -A / B
        eps = 1e-9
        xl = np.where(B > eps, np.maximum(xl, root), xl)
        xr = np.where(B < -eps, np.minimum(xr, root), xr)
        flat = np.abs(B) <= eps
        xr = np.where(flat & (A < -1e-9), -np.inf, xr)
    x0 = np.ceil(xl - 1e-9).astype(np.int64)
    n = np.maximum(np.floor(xr + 1e-9).astype(np.int64) - x0 + 1, 0)
    keep = n > 0
    tri, x0, n, y = tri[keep], x0[keep], n[keep], y[keep]
    ptri = np.repeat(tri, n)
    first = np.repeat(np.cumsum(n) - n, n)
    px = np.arange(ptri.size) - first + np.repeat(x0, n)
    return ptri, px, np.repeat(y.astype(np.int64), n)


def _barycentric(txy: np.ndarray, tz: np.ndarray, tri: np.ndarray, px: np.ndarray,
                 py: np.ndarray):  # fmt: skip
    """Depth and perspective-correct barycentric weights of pixels in their triangles."""
    a, b, c = txy[tri, 0], txy[tri, 1], txy[tri, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    area = np.where(np.abs(area) < 1e-12, 1e-12, area)
    w0 = ((c[:, 0] - b[:, 0]) * (py - b[:, 1]) - (c[:, 1] - b[:, 1]) * (px - b[:, 0])) / area
    w1 = ((a[:, 0] - c[:, 0]) * (py - c[:, 1]) - (a[:, 1] - c[:, 1]) * (px - c[:, 0])) / area
    bw = np.clip(np.stack([w0, w1, 1.0 - w0 - w1], -1), 0.0, 1.0)
    bw = bw / tz[tri]
    inv_z = bw.sum(-1)
    return 1.0 / inv_z, bw / inv_z[:, None]


def rasterize(xy_px: np.ndarray, z_m: np.ndarray, faces: np.ndarray,
              object_id: int | np.ndarray, buf: Buffers, near_m: float = 0.05) -> None:
    """Draw one object's triangles into ``buf`` where they are in front (in place).

    Args:
        xy_px: ``(V, 2)`` projected vertices (pixels, distortion applied).
        z_m: ``(V,)`` camera-frame depth of the vertices.
        faces: ``(F, 3)`` vertex indices.
        object_id: written to ``buf.object_id`` where a triangle is in front: one id, or
            ``(F,)`` one per triangle (a merged mesh of several objects).
        buf: the buffers to draw into.
        near_m: triangles with a vertex closer than this are skipped.
    """
    h, w = buf.depth.shape
    faces = np.asarray(faces, np.int64)
    tz = z_m[faces]
    txy = xy_px[faces]  # (F, 3, 2)
    # points far outside the image (or behind the camera) would overflow the pixel indices
    finite = np.isfinite(txy).all((1, 2)) & (np.abs(txy) < 1e7).all((1, 2))
    txy = np.where(finite[:, None, None], txy, 0.0)
    hi = np.floor(txy.max(1)).astype(np.int64)
    lo = np.ceil(txy.min(1)).astype(np.int64)
    ok = ((tz > near_m).all(1) & finite & (hi[:, 0] >= 0) & (hi[:, 1] >= 0)
          & (lo[:, 0] < w) & (lo[:, 1] < h) & (hi >= lo).all(1))  # fmt: skip
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return
    lo_c = np.maximum(lo[idx], 0)
    hi_c = np.minimum(hi[idx], [w - 1, h - 1])
    parts = []
    rows = np.cumsum(hi_c[:, 1] - lo_c[:, 1] + 1)
    bounds = np.searchsorted(rows, np.arange(0, rows[-1], max(_BATCH // 64, 1)))
    for s0, s1 in zip(bounds, [*bounds[1:], idx.size], strict=True):
        if s1 <= s0:
            continue
        sel = slice(s0, s1)
        tri, px, py = _spans(txy[idx[sel]], lo_c[sel, 1], hi_c[sel, 1], lo_c[sel, 0],
                             hi_c[sel, 0])  # fmt: skip
        depth, bw = _barycentric(txy[idx[sel]], tz[idx[sel]], tri, px.astype(float),
                                 py.astype(float))  # fmt: skip
        parts.append((py * w + px, depth, idx[sel][tri], bw))
    if not parts:
        return
    pix = np.concatenate([p[0] for p in parts])
    if pix.size == 0:
        return
    depth = np.concatenate([p[1] for p in parts])
    tri = np.concatenate([p[2] for p in parts])
    bw = np.concatenate([p[3] for p in parts])
    order = np.lexsort((depth, pix))
    pix, depth, tri, bw = pix[order], depth[order], tri[order], bw[order]
    first = np.ones(pix.size, bool)
    first[1:] = pix[1:] != pix[:-1]
    pix, depth, tri, bw = pix[first], depth[first], tri[first], bw[first]
    flat_depth = buf.depth.reshape(-1)
    win = depth < flat_depth[pix]
    pix = pix[win]
    flat_depth[pix] = depth[win]
    ids = np.broadcast_to(np.asarray(object_id, np.int32), (faces.shape[0],))
    buf.object_id.reshape(-1)[pix] = ids[tri[win]]
    buf.face.reshape(-1)[pix] = tri[win]
    buf.bary.reshape(-1, 3)[pix] = bw[win]
