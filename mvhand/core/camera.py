"""Camera model and rig: OpenCV pinhole (k1, k2, p1, p2, k3) and OpenCV fisheye (k1..k4).

Conventions (pinned by ``tests/test_camera.py``):

- ``x_cam = R_cam_world @ x_world + t_cam_world`` (world to camera, as OpenCV's rvec/tvec).
- Pixel coordinates: OpenCV's, x to the right, y down, (0, 0) at the centre of the top-left
  pixel. ``size_px`` is (width, height).
- Projection matches ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints`` exactly for zero
  skew; a non-zero ``K[0, 1]`` (which OpenCV ignores) is applied as the pinhole skew.
- Translations are in the rig's ``units`` ("m" by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.errors import CalibrationError

UNIT_SCALE_M: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MODELS = ("pinhole", "fisheye")


def _as_float(a, shape: tuple[int, ...], what: str, cam: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.shape != shape:
        raise CalibrationError(f"camera '{cam}': {what} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"camera '{cam}': {what} contains NaN or inf")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        name: the camera's name, as in the calibration file and the keypoint files.
        size_px: image (width, height) in pixels.
        K: intrinsic matrix (3, 3).
        dist: distortion; pinhole: (k1, k2, p1, p2, k3), fisheye: (k1, k2, k3, k4).
        R_cam_world: rotation world to camera (3, 3).
        t_cam_world: translation world to camera (3,), in the rig's units.
        model: "pinhole" or "fisheye".
    """

    name: str
    size_px: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R_cam_world: np.ndarray
    t_cam_world: np.ndarray
    model: str = "pinhole"

    def __post_init__(self) -> None:
        name = self.name
        if self.model not in MODELS:
            raise CalibrationError(f"camera '{name}': model must be one of {MODELS}")
        w, h = (int(v) for v in self.size_px)
        if w <= 0 or h <= 0:
            raise CalibrationError(f"camera '{name}': image size must be positive, got {w}x{h}")
        object.__setattr__(self, "size_px", (w, h))
        K = _as_float(self.K, (3, 3), "K", name)
        if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(np.linalg.det(K)) < 1e-12:
            raise CalibrationError(f"camera '{name}': K is singular or has non-positive focal")
        object.__setattr__(self, "K", K)
        n_dist = 5 if self.model == "pinhole" else 4
        dist = np.zeros(n_dist)
        given = np.asarray(self.dist, dtype=float).ravel()
        if given.size > n_dist:
            raise CalibrationError(
                f"camera '{name}': {self.model} takes at most {n_dist} distortion "
                f"coefficients, got {given.size}"
            )
        dist[: given.size] = given
        object.__setattr__(self, "dist", _as_float(dist, (n_dist,), "dist", name))
        R = _as_float(self.R_cam_world, (3, 3), "rotation", name)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
            raise CalibrationError(f"camera '{name}': rotation is not a proper rotation matrix")
        object.__setattr__(self, "R_cam_world", R)
        t = _as_float(np.ravel(self.t_cam_world), (3,), "translation", name)
        object.__setattr__(self, "t_cam_world", t)

    @classmethod
    def from_rvec(cls, name: str, size_px, K, dist, rvec, tvec, model="pinhole") -> Camera:
        """Build a camera from an OpenCV Rodrigues vector and translation."""
        R = Rotation.from_rotvec(np.asarray(rvec, dtype=float).ravel()).as_matrix()
        return cls(name, tuple(size_px), K, dist, R, np.ravel(tvec), model)

    @property
    def rvec(self) -> np.ndarray:
        """Rodrigues vector of ``R_cam_world`` (3,)."""
        return Rotation.from_matrix(self.R_cam_world).as_rotvec()

    @property
    def center_world(self) -> np.ndarray:
        """Camera centre in world coordinates (3,)."""
        return -self.R_cam_world.T @ self.t_cam_world

    @property
    def extrinsics(self) -> np.ndarray:
        """``[R | t]`` world to camera (3, 4)."""
        return np.hstack([self.R_cam_world, self.t_cam_world[:, None]])

    def world_to_cam(self, points_world: np.ndarray) -> np.ndarray:
        """Transform points (..., 3) from world to camera coordinates."""
        return np.asarray(points_world, dtype=float) @ self.R_cam_world.T + self.t_cam_world

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Apply lens distortion to normalized image coordinates (..., 2)."""
        return distort(xy, self.dist, self.model)

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """Project world points (..., 3) to pixels (..., 2); NaN in, NaN out.

        Points behind the camera are projected as OpenCV does (no clipping); use
        :meth:`world_to_cam` to test depth.

        Example:
            >>> cam = Camera("c", (640, 480), np.diag([500.0, 500, 1]), np.zeros(5),
            ...              np.eye(3), np.zeros(3))
            >>> cam.project(np.array([0.1, 0.0, 1.0]))
            array([50.,  0.])
        """
        pc = self.world_to_cam(points_world)
        xy = pc[..., :2] / pc[..., 2:3]
        return self.normalized_to_pixels(self.distort(xy))

    def normalized_to_pixels(self, xy_distorted: np.ndarray) -> np.ndarray:
        """Apply K to distorted normalized coordinates (..., 2)."""
        K = self.K
        x, y = xy_distorted[..., 0], xy_distorted[..., 1]
        u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
        v = K[1, 1] * y + K[1, 2]
        return np.stack([u, v], axis=-1)

    def undistort(self, points_px: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) to undistorted normalized coordinates (..., 2) (inverse of project)."""
        p = np.asarray(points_px, dtype=float)
        K = self.K
        y = (p[..., 1] - K[1, 2]) / K[1, 1]
        x = (p[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
        return undistort(np.stack([x, y], axis=-1), self.dist, self.model)

    def scaled(self, factor: float) -> Camera:
        """The same camera with translations multiplied by ``factor`` (unit change)."""
        return Camera(self.name, self.size_px, self.K, self.dist, self.R_cam_world,
                      self.t_cam_world * factor, self.model)  # fmt: skip

    def with_size(self, size_px: tuple[int, int]) -> Camera:
        """The same camera with another image size (intrinsics unchanged)."""
        return Camera(self.name, size_px, self.K, self.dist, self.R_cam_world,
                      self.t_cam_world, self.model)  # fmt: skip


def distort(xy: np.ndarray, dist: np.ndarray, model: str = "pinhole") -> np.ndarray:
    """Distort normalized coordinates (..., 2) with OpenCV's pinhole or fisheye model."""
    xy = np.asarray(xy, dtype=float)
    x, y = xy[..., 0], xy[..., 1]
    if model == "fisheye":
        k1, k2, k3, k4 = dist
        r = np.hypot(x, y)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
        return xy * scale[..., None]
    k1, k2, p1, p2, k3 = dist
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def undistort(xy_d: np.ndarray, dist: np.ndarray, model: str = "pinhole",
              iterations: int = 20) -> np.ndarray:  # fmt: skip
    """Invert :func:`distort` by Newton's method (vectorized; NaN stays NaN)."""
    xy_d = np.asarray(xy_d, dtype=float)
    if not np.any(dist):
        return xy_d.copy()
    if model == "fisheye":
        k1, k2, k3, k4 = dist
        rd = np.hypot(xy_d[..., 0], xy_d[..., 1])
        theta = np.clip(rd, 0, np.pi / 2 - 1e-6)
        for _ in range(iterations):
            t2 = theta * theta
            f = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))) - rd
            df = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
            theta = np.clip(theta - f / df, 0, np.pi / 2 - 1e-6)
        scale = np.where(rd > 1e-12, np.tan(theta) / np.where(rd > 1e-12, rd, 1.0), 1.0)
        return xy_d * scale[..., None]
    out = np.full_like(xy_d, np.nan)
    ok = np.isfinite(xy_d).all(axis=-1)
    out[ok] = _undistort_pinhole(xy_d[ok], dist, iterations)
    return out


def _undistort_pinhole(xy_d: np.ndarray, dist: np.ndarray, iterations: int,
                       tol: float = 1e-15) -> np.ndarray:  # fmt: skip
    """Newton's method with the analytic 2x2 Jacobian on finite points (N, 2).

    Stops early once every step is below ``tol`` (normalized units); usually 3-5 iterations.
    """
    k1, k2, p1, p2, k3 = dist
    xd, yd = xy_d[:, 0], xy_d[:, 1]
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        xx, yy, xy2 = x * x, y * y, 2 * x * y
        r2 = xx + yy
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        g2 = 2 * (k1 + r2 * (2 * k2 + r2 * 3 * k3))  # 2 d(radial)/d(r2)
        fx = x * radial + p1 * xy2 + p2 * (r2 + 2 * xx) - xd
        fy = y * radial + p1 * (r2 + 2 * yy) + p2 * xy2 - yd
        jxx = radial + xx * g2 + 2 * p1 * y + 6 * p2 * x
        jyy = radial + yy * g2 + 6 * p1 * y + 2 * p2 * x
        jxy = 0.5 * xy2 * g2 + 2 * p1 * x + 2 * p2 * y  # d xd/dy == d yd/dx
        det = jxx * jyy - jxy * jxy
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        dx = (jyy * fx - jxy * fy) / det
        dy = (jxx * fy - jxy * fx) / det
        x -= dx
        y -= dy
        if not (np.abs(dx).max(initial=0.0) > tol or np.abs(dy).max(initial=0.0) > tol):
            break
    return np.stack([x, y], axis=-1)


@dataclass(frozen=True)
class Rig:
    """Cameras in a fixed order (the calibration file's order) and the units of translations.

    Attributes:
        cameras: the cameras, in file order.
        units: unit of translations and of 3D points, one of "m", "cm", "mm".
    """

    cameras: tuple[Camera, ...]
    units: str = "m"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cams = tuple(self.cameras)
        object.__setattr__(self, "cameras", cams)
        if not cams:
            raise CalibrationError("a rig needs at least one camera")
        if self.units not in UNIT_SCALE_M:
            raise CalibrationError(f"units must be one of {list(UNIT_SCALE_M)}, got {self.units!r}")
        names = [c.name for c in cams]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CalibrationError(f"camera names must be unique; repeated: {dup}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        return self.cameras[self.index(key) if isinstance(key, str) else key]

    @property
    def names(self) -> tuple[str, ...]:
        """Camera names in rig order."""
        return tuple(c.name for c in self.cameras)

    def index(self, name: str) -> int:
        """Position of camera ``name``; CalibrationError if absent."""
        try:
            return self._index[name]
        except KeyError:
            raise CalibrationError(
                f"camera '{name}' is not in the calibration (it has: {', '.join(self.names)})"
            ) from None

    def subset(self, names: Sequence[str]) -> Rig:
        """The cameras ``names``, in that order."""
        return Rig(tuple(self[n] for n in names), self.units)

    def to_units(self, units: str) -> Rig:
        """The rig with translations expressed in ``units``."""
        if units not in UNIT_SCALE_M:
            raise CalibrationError(f"units must be one of {list(UNIT_SCALE_M)}, got {units!r}")
        factor = UNIT_SCALE_M[self.units] / UNIT_SCALE_M[units]
        return Rig(tuple(c.scaled(factor) for c in self.cameras), units)

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """Project points (..., 3) into every camera: (C, ..., 2) pixels."""
        return np.stack([c.project(points_world) for c in self.cameras])

    def undistort(self, points_px: np.ndarray) -> np.ndarray:
        """Per-camera pixels (C, ..., 2) to undistorted normalized coordinates (C, ..., 2)."""
        points_px = np.asarray(points_px, dtype=float)
        if points_px.shape[0] != len(self):
            raise ValueError(f"expected {len(self)} cameras on axis 0, got {points_px.shape[0]}")
        return np.stack([c.undistort(p) for c, p in zip(self.cameras, points_px, strict=True)])

    @property
    def extrinsics(self) -> np.ndarray:
        """``[R | t]`` of every camera (C, 3, 4)."""
        return np.stack([c.extrinsics for c in self.cameras])

    @property
    def focal_px(self) -> np.ndarray:
        """Mean focal length of every camera in pixels (C,), to turn normalized errors to px."""
        return np.array([(c.K[0, 0] + c.K[1, 1]) / 2 for c in self.cameras])
