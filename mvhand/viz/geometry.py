"""The scene as plain arrays: skeleton meshes, camera frusta, a floor grid, colours, framing.

Nothing here imports Open3D: :mod:`mvhand.viz.o3d` turns these arrays into Open3D objects
(for the renderer and the viewer), and the tests check them without Open3D. Lengths are in the
scene's units (those of the 3D results); sizes are given in metres and converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M, Camera, Rig
from mvhand.core.people import ARM_CHAIN
from mvhand.core.skeleton import BONES, FINGERS, JOINT_FINGER

#: Colour of each finger (RGB in [0, 1], order of ``FINGERS``): thumb red, index orange,
#: middle yellow, ring green, little blue. Chosen to stay apart on a dark background.
FINGER_RGB: np.ndarray = np.array([
    [0.92, 0.12, 0.12],
    [1.00, 0.55, 0.00],
    [0.95, 0.90, 0.10],
    [0.15, 0.80, 0.25],
    [0.20, 0.45, 1.00],
])  # fmt: skip
#: Colour of the wrist joint.
WRIST_RGB: np.ndarray = np.array([0.95, 0.95, 0.95])
#: The left hand is drawn with its finger colours mixed this much towards white (pastel), so
#: both hands keep the per-finger code and can still be told apart.
LEFT_HAND_WHITEN = 0.45
#: Background of renders (dark grey), floor grid and camera colours.
BACKGROUND_RGB: np.ndarray = np.array([0.12, 0.12, 0.14])
GRID_RGB: np.ndarray = np.array([0.38, 0.38, 0.42])
CAMERA_RGB: np.ndarray = np.array([0.55, 0.85, 1.00])
MESH_RGB: np.ndarray = np.array([0.85, 0.72, 0.62])

# Drawing sizes in metres (converted to the scene's units).
JOINT_RADIUS_M = 0.006
BONE_RADIUS_M = 0.0035
ARM_RADIUS_M = 0.010
FRUSTUM_DEPTH_M = 0.3
GRID_SPACING_M = 0.5

assert len(FINGER_RGB) == len(FINGERS)  # a programming invariant, not user input


def joint_rgb(hand: int) -> np.ndarray:
    """Colour of each joint of hand ``hand`` (0 left, 1 right): ``(21, 3)`` in [0, 1]."""
    rgb = np.where(JOINT_FINGER[:, None] >= 0, FINGER_RGB[np.maximum(JOINT_FINGER, 0)], WRIST_RGB)
    return _whiten(rgb) if hand == 0 else rgb


def bone_rgb(hand: int) -> np.ndarray:
    """Colour of each bone (its child joint's finger) of hand ``hand``: ``(20, 3)``."""
    return joint_rgb(hand)[BONES[:, 1]]


def _whiten(rgb: np.ndarray) -> np.ndarray:
    return rgb * (1 - LEFT_HAND_WHITEN) + LEFT_HAND_WHITEN


#: One colour per person id (RGB in [0, 1]), the same in the 2D overlays, the summary and the
#: 3D views; chosen to stay apart from each other, from the unassociated grey and on both a
#: dark background and video. Ids beyond the table reuse it (``id % len``).
PERSON_RGB: np.ndarray = np.array([
    [0.10, 0.55, 1.00],  # blue
    [1.00, 0.50, 0.05],  # orange
    [0.15, 0.85, 0.25],  # green
    [0.95, 0.10, 0.45],  # crimson
    [0.65, 0.35, 1.00],  # violet
    [0.00, 0.90, 0.90],  # cyan
    [1.00, 0.90, 0.10],  # yellow
    [0.75, 0.45, 0.20],  # brown
    [1.00, 0.60, 0.85],  # pink
    [0.55, 0.75, 0.05],  # olive
])  # fmt: skip
#: Colour of detections that no person got (2D).
UNASSOCIATED_RGB: np.ndarray = np.array([0.6, 0.6, 0.6])
#: A person's left hand is drawn this much paler than the right (its box and label are not).
PERSON_LEFT_WHITEN = 0.35


def person_rgb(person_id: int) -> np.ndarray:
    """The colour ``(3,)`` in [0, 1] of person ``person_id`` (negative: unassociated grey)."""
    if person_id < 0:
        return UNASSOCIATED_RGB.copy()
    return PERSON_RGB[int(person_id) % len(PERSON_RGB)].copy()


def person_hand_rgb(person_id: int, side: int) -> np.ndarray:
    """The colour of person ``person_id``'s hand ``side`` (0 left: paler, 1 right)."""
    rgb = person_rgb(person_id)
    return rgb * (1 - PERSON_LEFT_WHITEN) + PERSON_LEFT_WHITEN if side == 0 else rgb


def error_rgb(error_px: np.ndarray, max_px: float = 20.0) -> np.ndarray:
    """Colour by reprojection error: green at 0 px, yellow at half ``max_px``, red beyond.

    Args:
        error_px: ``(...)`` errors in pixels; NaN gives grey.
        max_px: error drawn fully red.

    Returns:
        ``(..., 3)`` RGB in [0, 1].
    """
    e = np.clip(np.asarray(error_px, dtype=float) / max_px, 0.0, 1.0)
    rgb = np.stack([np.clip(2 * e, 0, 1), np.clip(2 - 2 * e, 0, 1), np.full_like(e, 0.1)], -1)
    return np.where(np.isfinite(error_px)[..., None], rgb, 0.5)


def units_per_m(units: str) -> float:
    """How many scene units make a metre."""
    return 1.0 / UNIT_SCALE_M[units]


@dataclass(frozen=True, eq=False)
class TriMesh:
    """A coloured triangle mesh.

    Attributes:
        vertices: ``(N, 3)`` scene units.
        triangles: ``(M, 3)`` vertex indices.
        colors: ``(N, 3)`` per-vertex RGB in [0, 1].
    """

    vertices: np.ndarray
    triangles: np.ndarray
    colors: np.ndarray

    @staticmethod
    def concat(meshes: Sequence[TriMesh]) -> TriMesh:
        """One mesh holding all of ``meshes``."""
        meshes = [m for m in meshes if len(m.vertices)]
        if not meshes:
            return TriMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int32), np.zeros((0, 3)))
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        tris = [m.triangles + o for m, o in zip(meshes, offsets, strict=True)]
        return TriMesh(np.concatenate([m.vertices for m in meshes]), np.concatenate(tris),
                       np.concatenate([m.colors for m in meshes]))  # fmt: skip


@dataclass(frozen=True, eq=False)
class LineSet:
    """Coloured line segments.

    Attributes:
        points: ``(N, 3)`` scene units.
        segments: ``(M, 2)`` point indices.
        colors: ``(M, 3)`` per-segment RGB in [0, 1].
    """

    points: np.ndarray
    segments: np.ndarray
    colors: np.ndarray


def _icosphere() -> tuple[np.ndarray, np.ndarray]:
    """A unit icosahedron subdivided once: 42 vertices, 80 triangles."""
    p = (1 + 5**0.5) / 2
    v = np.array([[-1, p, 0], [1, p, 0], [-1, -p, 0], [1, -p, 0], [0, -1, p], [0, 1, p],
                  [0, -1, -p], [0, 1, -p], [p, 0, -1], [p, 0, 1], [-p, 0, -1], [-p, 0, 1]],
                 float)  # fmt: skip
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9],
                  [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2],
                  [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
                  [8, 6, 7], [9, 8, 1]])  # fmt: skip
    verts = list(v / np.linalg.norm(v, axis=1, keepdims=True))
    mid: dict[tuple[int, int], int] = {}

    def middle(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in mid:
            m = verts[a] + verts[b]
            verts.append(m / np.linalg.norm(m))
            mid[key] = len(verts) - 1
        return mid[key]

    tris = []
    for a, b, c in f:
        ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
        tris += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    return np.array(verts), np.array(tris, np.int32)


_SPHERE_V, _SPHERE_F = _icosphere()
_TUBE_SIDES = 10


def spheres(centers: np.ndarray, radius: float, colors: np.ndarray) -> TriMesh:
    """Spheres at ``centers`` ``(N, 3)`` with ``colors`` ``(N, 3)``; NaN centres are left out."""
    centers = np.asarray(centers, float).reshape(-1, 3)
    colors = np.broadcast_to(np.asarray(colors, float), centers.shape)
    keep = np.isfinite(centers).all(1)
    c, col = centers[keep], colors[keep]
    nv = len(_SPHERE_V)
    verts = (c[:, None, :] + radius * _SPHERE_V[None]).reshape(-1, 3)
    tris = (_SPHERE_F[None] + nv * np.arange(len(c))[:, None, None]).reshape(-1, 3)
    return TriMesh(verts, tris.astype(np.int32), np.repeat(col, nv, axis=0))


def tubes(starts: np.ndarray, ends: np.ndarray, radius: float, colors: np.ndarray) -> TriMesh:
    """Open cylinders from ``starts`` to ``ends`` (both ``(N, 3)``); NaN or zero-length left out."""
    a = np.asarray(starts, float).reshape(-1, 3)
    b = np.asarray(ends, float).reshape(-1, 3)
    colors = np.broadcast_to(np.asarray(colors, float), a.shape)
    d = b - a
    length = np.linalg.norm(d, axis=1)
    keep = np.isfinite(length) & (length > 0)
    a, d, length, col = a[keep], d[keep], length[keep], colors[keep]
    axis = d / length[:, None]
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(axis, u)
    ang = 2 * np.pi * np.arange(_TUBE_SIDES) / _TUBE_SIDES
    cos, sin = np.cos(ang)[None, :, None], np.sin(ang)[None, :, None]
    ring = radius * (cos * u[:, None] + sin * w[:, None])
    verts = np.concatenate([a[:, None] + ring, (a + d)[:, None] + ring], axis=1)  # (N, 2S, 3)
    s = np.arange(_TUBE_SIDES)
    s1 = (s + 1) % _TUBE_SIDES
    quad = np.concatenate([np.stack([s, s1, s + _TUBE_SIDES], 1),
                           np.stack([s1, s1 + _TUBE_SIDES, s + _TUBE_SIDES], 1)])  # fmt: skip
    n = 2 * _TUBE_SIDES
    tris = quad[None] + n * np.arange(len(a))[:, None, None]
    return TriMesh(verts.reshape(-1, 3), tris.reshape(-1, 3).astype(np.int32),
                   np.repeat(col, n, axis=0))  # fmt: skip


def skeleton_mesh(points: np.ndarray, units: str, error_px: np.ndarray | None = None,
                  max_error_px: float = 20.0, scale: float = 1.0) -> TriMesh:  # fmt: skip
    """Both hands as spheres (joints) and tubes (bones), coloured per finger.

    Args:
        points: ``(H, 21, 3)`` joints of one frame in ``units``; NaN joints are left out.
        units: the points' units (sets the drawing sizes).
        error_px: ``(H, 21)`` reprojection errors; if given, joints are coloured by error
            (:func:`error_rgb`) and bones grey.
        max_error_px: error drawn fully red.
        scale: factor on the joint and bone radii.
    """
    k = units_per_m(units) * scale
    parts = []
    for h in range(points.shape[0]):
        p = points[h]
        if error_px is None:
            jc, bc = joint_rgb(h), bone_rgb(h)
        else:
            jc, bc = error_rgb(error_px[h], max_error_px), np.full((len(BONES), 3), 0.6)
        parts.append(spheres(p, JOINT_RADIUS_M * k, jc))
        parts.append(tubes(p[BONES[:, 0]], p[BONES[:, 1]], BONE_RADIUS_M * k, bc))
    return TriMesh.concat(parts)


def person_mesh(hands: np.ndarray, body: np.ndarray | None, person_id: int, units: str,
                error_px: np.ndarray | None = None, max_error_px: float = 20.0,
                scale: float = 1.0) -> TriMesh:  # fmt: skip
    """One person's hands and arm chains, all in the person's colour (:func:`person_rgb`).

    Args:
        hands: ``(2, 21, 3)`` joints of one frame (0 left, drawn paler; 1 right); NaN left out.
        body: ``(17, 3)`` COCO-17 body joints or None; the shoulder-elbow-wrist chains are drawn.
        person_id: the person's id (sets the colour).
        units: the points' units.
        error_px: ``(2, 21)`` reprojection errors; if given, hand joints by error, bones grey.
        max_error_px: error drawn fully red.
        scale: factor on the radii.
    """
    k = units_per_m(units) * scale
    parts = []
    for h in range(2):
        p = hands[h]
        if error_px is None:
            jc = np.tile(person_hand_rgb(person_id, h), (len(p), 1))
            bc = np.tile(person_hand_rgb(person_id, h) * 0.8, (len(BONES), 1))
        else:
            jc, bc = error_rgb(error_px[h], max_error_px), np.full((len(BONES), 3), 0.6)
        parts.append(spheres(p, JOINT_RADIUS_M * k, jc))
        parts.append(tubes(p[BONES[:, 0]], p[BONES[:, 1]], BONE_RADIUS_M * k, bc))
    if body is not None:
        arm = np.asarray(body, float)[ARM_CHAIN]  # (2, 3, 3): shoulder, elbow, wrist per arm
        rgb = person_rgb(person_id)
        parts.append(spheres(arm.reshape(-1, 3), 1.3 * ARM_RADIUS_M * k, rgb))
        parts.append(tubes(arm[:, :2].reshape(-1, 3), arm[:, 1:].reshape(-1, 3),
                           ARM_RADIUS_M * k, rgb))  # fmt: skip
    return TriMesh.concat(parts)


def hand_mesh(vertices: np.ndarray, faces: np.ndarray) -> TriMesh:
    """A fitted hand mesh ``vertices`` ``(V, 3)``, ``faces`` ``(F, 3)``; empty if any is NaN."""
    if not np.isfinite(vertices).all():
        return TriMesh.concat([])
    return TriMesh(np.asarray(vertices, float), np.asarray(faces, np.int32),
                   np.tile(MESH_RGB, (len(vertices), 1)))  # fmt: skip


def frustum_lines(rig: Rig, depth: float) -> LineSet:
    """Each camera as a pyramid of depth ``depth`` (scene units) plus a small triangle on the
    image's top edge (which way is up in the picture)."""
    pts, segs = [], []
    for cam in rig.cameras:
        w, h = cam.size_px
        corners_px = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1], [0.35 * (w - 1), 0],
                               [0.65 * (w - 1), 0], [0.5 * (w - 1), -0.12 * h]])  # fmt: skip
        rays = np.linalg.solve(cam.K, np.c_[corners_px, np.ones(len(corners_px))].T).T
        corners = (rays * depth - cam.t_cam_world) @ cam.R_cam_world  # camera to world
        base = len(pts) * 8
        pts.append(np.vstack([cam.center_world, corners]))
        segs += [[base, base + i] for i in range(1, 5)]
        segs += [[base + i, base + 1 + i % 4] for i in range(1, 5)]
        segs += [[base + 5, base + 7], [base + 7, base + 6]]
    points = np.vstack(pts)
    segments = np.array(segs, np.int32)
    return LineSet(points, segments, np.tile(CAMERA_RGB, (len(segments), 1)))


def up_vector(rig: Rig) -> np.ndarray:
    """The world's "up", guessed from the cameras: their mean image-up direction snapped to the
    nearest world axis when within 30 degrees (calibrations usually put an axis up)."""
    ups = -np.stack([c.R_cam_world[1] for c in rig.cameras])
    mean = ups.sum(0)
    if np.linalg.norm(mean) < 1e-9:
        return np.array([0.0, 0.0, 1.0])
    mean /= np.linalg.norm(mean)
    axis = int(np.argmax(np.abs(mean)))
    snapped = np.zeros(3)
    snapped[axis] = np.sign(mean[axis])
    return snapped if snapped @ mean > np.cos(np.radians(30)) else mean


def floor_grid(rig: Rig, points: np.ndarray, up: np.ndarray, units: str) -> LineSet:
    """A square grid on the floor under the scene.

    The floor is the plane through the world origin perpendicular to ``up`` when the cameras and
    the hands all lie above it (calibrations usually put the origin on the floor); otherwise
    just below the lowest hand joint. The grid covers the cameras' footprint.

    Args:
        rig: the cameras (scene units).
        points: ``(..., 3)`` hand joints, NaN allowed.
        up: ``(3,)`` unit up vector.
        units: scene units (grid spacing is 0.5 m).
    """
    pts = np.asarray(points, float).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    centers = np.stack([c.center_world for c in rig.cameras])
    everything = np.vstack([centers, pts])
    heights = everything @ up
    floor = 0.0 if heights.min() > 0 else (pts @ up).min() - 0.1 * units_per_m(units) if len(
        pts) else heights.min()  # fmt: skip
    e1 = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    step = GRID_SPACING_M * units_per_m(units)
    c1, c2 = everything @ e1, everything @ e2
    lo1, hi1 = np.floor(c1.min() / step) - 1, np.ceil(c1.max() / step) + 1
    lo2, hi2 = np.floor(c2.min() / step) - 1, np.ceil(c2.max() / step) + 1
    origin = floor * up
    lines = []
    for i in np.arange(lo1, hi1 + 1):
        p = origin + i * step * e1
        lines.append([p + lo2 * step * e2, p + hi2 * step * e2])
    for j in np.arange(lo2, hi2 + 1):
        p = origin + j * step * e2
        lines.append([p + lo1 * step * e1, p + hi1 * step * e1])
    arr = np.array(lines).reshape(-1, 3)
    segs = np.arange(len(arr)).reshape(-1, 2).astype(np.int32)
    return LineSet(arr, segs, np.tile(GRID_RGB, (len(segs), 1)))


def orbit_camera(target: np.ndarray, radius: float, azimuth_rad: float, elevation_rad: float,
                 up: np.ndarray, size_px: tuple[int, int], fov_deg: float = 45.0,
                 name: str = "orbit") -> Camera:  # fmt: skip
    """A pinhole camera on a sphere around ``target``, looking at it, image up along ``up``.

    Args:
        target: ``(3,)`` the point looked at.
        radius: distance from ``target`` (scene units).
        azimuth_rad, elevation_rad: position on the sphere (elevation above the plane normal
            to ``up``).
        up: ``(3,)`` world up.
        size_px: (width, height).
        fov_deg: vertical field of view.
    """
    up = np.asarray(up, float) / np.linalg.norm(up)
    e1 = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 1.0, 0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    horiz = np.cos(azimuth_rad) * e1 + np.sin(azimuth_rad) * e2
    eye = target + radius * (np.cos(elevation_rad) * horiz + np.sin(elevation_rad) * up)
    return look_at_camera(name, eye, target, up, size_px, fov_deg)


def look_at_camera(name: str, eye: np.ndarray, target: np.ndarray, up: np.ndarray,
                   size_px: tuple[int, int], fov_deg: float) -> Camera:  # fmt: skip
    """A distortion-free camera at ``eye`` looking at ``target`` with ``up`` up in the image."""
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:  # looking straight along up: any sideways axis will do
        x = np.cross(z, [1.0, 0, 0] if abs(z[0]) < 0.9 else [0, 1.0, 0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    w, h = size_px
    f = 0.5 * h / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    return Camera(name, (w, h), K, np.zeros(5), R, -R @ eye)


def view_of_camera(cam: Camera, max_size_px: tuple[int, int]) -> Camera:
    """``cam`` without distortion, its image scaled to fit within ``max_size_px``."""
    w, h = cam.size_px
    s = min(max_size_px[0] / w, max_size_px[1] / h)
    nw, nh = max(2, int(round(w * s))), max(2, int(round(h * s)))
    K = cam.K.copy()
    # pixel centres: (0, 0) is the centre of the top-left pixel in both images
    K[0, :] *= nw / w
    K[1, :] *= nh / h
    K[0, 2] = (cam.K[0, 2] + 0.5) * nw / w - 0.5
    K[1, 2] = (cam.K[1, 2] + 0.5) * nh / h - 0.5
    return Camera(cam.name, (nw, nh), K, np.zeros(5), cam.R_cam_world, cam.t_cam_world)


def scene_target(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the region the hands move in (robust: 2nd-98th percentile)."""
    pts = np.asarray(points, float).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        raise ValueError("no finite point")
    lo, hi = np.percentile(pts, 2, axis=0), np.percentile(pts, 98, axis=0)
    return (lo + hi) / 2, max(float(np.linalg.norm(hi - lo)) / 2, 1e-9)



def centred_canvas(cam: Camera) -> tuple[Camera, tuple[int, int]]:
    """A camera with the same rays whose principal point is its image centre, on a larger
    canvas, and where ``cam``'s image lies in it (x, y offsets in pixels).

    Open3D's legacy renderer ignores the principal point (it always uses the image centre), so
    an off-centre camera is rendered on this canvas and cropped. Exact when ``2 * cx`` and
    ``2 * cy`` are integers, else within half a pixel.
    """
    w, h = cam.size_px
    cx, cy = cam.K[0, 2], cam.K[1, 2]
    ox = int(np.ceil(max(0.0, w - 1 - 2 * cx)))
    oy = int(np.ceil(max(0.0, h - 1 - 2 * cy)))
    W = max(int(round(2 * (cx + ox) + 1)), ox + w)
    H = max(int(round(2 * (cy + oy) + 1)), oy + h)
    K = cam.K.copy()
    K[0, 2], K[1, 2] = (W - 1) / 2, (H - 1) / 2
    return Camera(cam.name, (W, H), K, np.zeros(5), cam.R_cam_world, cam.t_cam_world), (ox, oy)
