"""The numeric core of rig calibration (numpy/scipy only, no I/O).

- Poses are ``(R, t)`` with ``x_to = R @ x_from + t``; a camera's pose is world to camera.
- :func:`camera_graph_init`: relative camera poses from pairs of cameras that saw the same
  board at the same time (robust averages), chained over the maximum spanning tree of the
  camera graph (edge weight: frames seen together). A disconnected graph is an error that
  lists the groups.
- :func:`adjust_board`: bundle adjustment of all cameras and all board poses on every board
  corner observation (robust Huber loss, sparse Jacobian by finite differences), optionally
  with each camera's intrinsics.
- :func:`adjust_points`: the same with free 3D points (people's keypoints) instead of a board.

Camera parameters in the optimizer: ``[rvec(3), t(3)]`` world to camera, and with intrinsics
``[fx, fy, cx, cy, d0..d4]`` on top (pinhole k1, k2, p1, p2, k3; fisheye k1..k4); only
fx, fy, cx, cy, k1, k2 are adjusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from mvhand.core.camera import Camera, distort
from mvhand.errors import CalibrationError

Pose = tuple[np.ndarray, np.ndarray]


def compose(a: Pose, b: Pose) -> Pose:
    """``a o b``: first b, then a."""
    return a[0] @ b[0], a[0] @ b[1] + a[1]


def invert(p: Pose) -> Pose:
    """The inverse pose."""
    return p[0].T, -p[0].T @ p[1]


def average_pose(poses: Sequence[Pose], max_deg: float = 5.0) -> tuple[Pose, int]:
    """Robust mean of poses: chordal mean rotation and median translation of those within
    ``max_deg`` degrees (and 3 median deviations in translation) of a first median estimate.

    Returns:
        the mean pose and the number of poses kept.
    """
    Rs = Rotation.from_matrix(np.stack([p[0] for p in poses]))
    ts = np.stack([p[1] for p in poses])
    # the pose nearest all others (a medoid) is robust to a few gross outliers
    rv = Rs.as_rotvec()
    centre = int(np.argmin(np.median(np.linalg.norm(rv[:, None] - rv[None], axis=2), axis=1)))
    ang = np.degrees((Rs * Rs[centre].inv()).magnitude())
    t_med = np.median(ts, axis=0)
    dev = np.linalg.norm(ts - t_med, axis=1)
    keep = (ang < max_deg) & (dev <= 3 * np.median(dev) + 1e-9)
    if not keep.any():
        keep = np.zeros(len(poses), bool)
        keep[centre] = True
    R = Rs[keep].mean().as_matrix()
    return (R, np.median(ts[keep], axis=0)), int(keep.sum())


def connected_groups(n: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components of an undirected graph on nodes 0..n-1, largest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def camera_graph_init(board_poses: dict[tuple[int, int], Pose], n_cams: int,
                      names: Sequence[str], min_shared: int = 2,
                      reference: int = 0) -> list[Pose]:  # fmt: skip
    """World-to-camera poses (world = camera ``reference``) from per-view board poses.

    Args:
        board_poses: ``(camera, frame) -> board-to-camera pose`` (from PnP).
        n_cams: number of cameras.
        names: camera names, for the error message.
        min_shared: a pair of cameras is linked when it saw the board together this often.
        reference: the camera whose frame is the world.

    Raises:
        CalibrationError: the camera graph is disconnected (the message lists the groups).
    """
    frames: dict[int, dict[int, Pose]] = {c: {} for c in range(n_cams)}
    for (c, f), pose in board_poses.items():
        frames[c][f] = pose
    rel: dict[tuple[int, int], tuple[Pose, int]] = {}
    for i in range(n_cams):
        for j in range(i + 1, n_cams):
            shared = sorted(set(frames[i]) & set(frames[j]))
            if len(shared) < min_shared:
                continue
            # camera j to camera i: board->i composed with j->board
            cands = [compose(frames[i][f], invert(frames[j][f])) for f in shared]
            pose, kept = average_pose(cands)
            rel[(i, j)] = (pose, kept)
    groups = connected_groups(n_cams, list(rel))
    if len(groups) > 1:
        desc = "; ".join("{" + ", ".join(names[c] for c in g) + "}" for g in groups)
        raise CalibrationError(
            f"the cameras form {len(groups)} groups that never saw the board together "
            f"(at least {min_shared} shared frames needed): {desc}; record frames where the "
            "board is seen by cameras of different groups at once")
    return _chain(rel, n_cams, reference)


def _chain(rel: dict[tuple[int, int], tuple[Pose, int]], n: int, ref: int) -> list[Pose]:
    """Poses relative to ``ref`` along the maximum spanning tree (Prim) of the pair graph."""
    poses: dict[int, Pose] = {ref: (np.eye(3), np.zeros(3))}
    while len(poses) < n:
        best = None
        for (i, j), (pose, w) in rel.items():
            if (i in poses) != (j in poses) and (best is None or w > best[2]):
                best = (i, j, w, pose)
        assert best is not None  # the graph is connected (checked by the caller)
        i, j, _, p_ij = best  # p_ij: camera j -> camera i
        if i in poses:  # world -> j = (i -> j) o (world -> i)
            poses[j] = compose(invert(p_ij), poses[i])
        else:
            poses[i] = compose(p_ij, poses[j])
    return [poses[c] for c in range(n)]


@dataclass(frozen=True)
class _Layout:
    """How the parameter vector is cut: cameras first, then the per-frame or per-point block."""

    n_cams: int
    cam_size: int
    n_blocks: int
    block_size: int
    fixed: int  # the camera whose extrinsics stay fixed (gauge), -1: none

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = self.n_cams * self.cam_size
        return x[:k].reshape(self.n_cams, self.cam_size), x[k:].reshape(self.n_blocks,
                                                                        self.block_size)


def _cam_vector(cam: Camera, intrinsics: bool) -> np.ndarray:
    v = [cam.rvec, cam.t_cam_world]
    if intrinsics:
        d = np.zeros(5)
        d[: len(cam.dist)] = cam.dist
        v.append([cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2], *d])
    return np.concatenate(v)


def _project(cp: np.ndarray, cams: Sequence[Camera], ci: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Project world points X (M, 3) through the cameras ci (M,) with parameters cp."""
    R = Rotation.from_rotvec(cp[:, :3]).as_matrix()  # one matrix per camera, not per point
    out = np.empty((len(ci), 2))
    for c in np.unique(ci):
        m = ci == c
        pc = X[m] @ R[c].T + cp[c, 3:6]
        xy = pc[:, :2] / pc[:, 2:3]
        cam = cams[c]
        K, dist = cam.K, cam.dist.copy()
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        if cp.shape[1] > 6:
            fx, fy, cx, cy = cp[c, 6:10]
            dist = cp[c, 10:10 + len(dist)]
        d = distort(xy, dist, cam.model)
        out[m] = np.column_stack([fx * d[:, 0] + K[0, 1] * d[:, 1] + cx, fy * d[:, 1] + cy])
    return out


def _sparsity(lay: _Layout, ci: np.ndarray, bi: np.ndarray) -> lil_matrix:
    m = len(ci)
    A = lil_matrix((2 * m, lay.n_cams * lay.cam_size + lay.n_blocks * lay.block_size), dtype=int)
    rows = np.arange(m)
    for k in range(lay.cam_size):
        A[2 * rows, ci * lay.cam_size + k] = 1
        A[2 * rows + 1, ci * lay.cam_size + k] = 1
    off = lay.n_cams * lay.cam_size
    for k in range(lay.block_size):
        A[2 * rows, off + bi * lay.block_size + k] = 1
        A[2 * rows + 1, off + bi * lay.block_size + k] = 1
    return A


@dataclass(frozen=True, eq=False)
class Adjusted:
    """A bundle adjustment's result.

    Attributes:
        cameras: the adjusted cameras.
        blocks: ``(B, 6)`` board poses ``[rvec, t]`` (board to world) or ``(B, 3)`` points.
        residuals_px: ``(M, 2)`` final reprojection residuals of the observations.
        cost_start_px, cost_end_px: RMS reprojection error before and after.
        cam_of: ``(M,)`` the camera of each residual.
    """

    cameras: tuple[Camera, ...]
    blocks: np.ndarray
    residuals_px: np.ndarray
    cost_start_px: float
    cost_end_px: float
    cam_of: np.ndarray

    def camera_rms_px(self) -> np.ndarray:
        """``(C,)`` RMS reprojection error per camera (NaN: no observation)."""
        e2 = np.sum(self.residuals_px**2, axis=1)
        return np.array([np.sqrt(e2[self.cam_of == c].mean()) if np.any(self.cam_of == c)
                         else np.nan for c in range(len(self.cameras))])  # fmt: skip


def _cameras_from(cp: np.ndarray, cams: Sequence[Camera]) -> tuple[Camera, ...]:
    out = []
    for c, cam in enumerate(cams):
        K, dist = cam.K.copy(), cam.dist.copy()
        if cp.shape[1] > 6:
            K[0, 0], K[1, 1], K[0, 2], K[1, 2] = cp[c, 6:10]
            dist = cp[c, 10:10 + len(dist)]
        out.append(Camera.from_rvec(cam.name, cam.size_px, K, dist, cp[c, :3], cp[c, 3:6],
                                    cam.model))  # fmt: skip
    return tuple(out)


def _solve(fun, x0: np.ndarray, lay: _Layout, ci: np.ndarray, bi: np.ndarray,
           loss_scale_px: float, max_nfev: int, cams: Sequence[Camera],
           loss: str = "huber", hold_scale: bool = False):  # fmt: skip
    """Robust sparse least squares with camera ``lay.fixed`` held (the gauge); with
    ``hold_scale`` also the largest translation component of another camera (a problem
    without a board has no scale: the free direction slows the solver down many times)."""
    free = np.ones(len(x0), bool)
    if hold_scale and lay.n_cams > 1:
        other = 1 if lay.fixed == 0 else 0
        k = int(np.argmax(np.abs(x0[other * lay.cam_size + 3: other * lay.cam_size + 6])))
        free[other * lay.cam_size + 3 + k] = False
    if lay.cam_size > 6:  # refine fx, fy, cx, cy, k1, k2; hold the higher terms (they trade
        # with the poses on the few views of a session: 0.6 degrees on the synthetic test)
        for c in range(len(cams)):
            free[c * lay.cam_size + 12: (c + 1) * lay.cam_size] = False
    if lay.fixed >= 0:
        free[lay.fixed * lay.cam_size: lay.fixed * lay.cam_size + 6] = False
    A = _sparsity(lay, ci, bi).tocsc()[:, free]

    def f(z: np.ndarray) -> np.ndarray:
        x = x0.copy()
        x[free] = z
        return fun(x)

    sol = least_squares(f, x0[free], jac_sparsity=A, method="trf", loss=loss,
                        f_scale=loss_scale_px, x_scale="jac", max_nfev=max_nfev)  # fmt: skip
    x = x0.copy()
    x[free] = sol.x
    return x


def adjust_board(cameras: Sequence[Camera], board_m: np.ndarray, corners_px: np.ndarray,
                 board_world: np.ndarray, intrinsics: bool = False, fixed: int = 0,
                 loss_scale_px: float = 2.0, max_nfev: int = 200) -> Adjusted:  # fmt: skip
    """Bundle adjustment of cameras and per-frame board poses.

    Args:
        cameras: initial cameras (C).
        board_m: ``(N, 3)`` board points in the board frame.
        corners_px: ``(C, F, N, 2)`` observations, NaN where unseen.
        board_world: ``(F, 6)`` initial board-to-world poses ``[rvec, t]`` (NaN: frame unused).
        intrinsics: also adjust each camera's focal lengths, principal point and distortion.
        fixed: the camera whose pose is held (the world frame); -1 to hold none.
    """
    obs = np.isfinite(corners_px[..., 0]) & np.isfinite(board_world[:, 0])[None, :, None]
    ci, fi, ni = np.nonzero(obs)
    uv = corners_px[ci, fi, ni]
    used = np.unique(fi)
    block_of = np.full(corners_px.shape[1], -1)
    block_of[used] = np.arange(len(used))
    bi = block_of[fi]
    lay = _Layout(len(cameras), 15 if intrinsics else 6, len(used), 6, fixed)
    x0 = np.concatenate([np.concatenate([_cam_vector(c, intrinsics) for c in cameras]),
                         board_world[used].ravel()])  # fmt: skip

    def fun(x: np.ndarray) -> np.ndarray:
        cp, bp = lay.split(x)
        Rb = Rotation.from_rotvec(bp[:, :3]).as_matrix()  # one matrix per board pose
        X = np.einsum("mij,mj->mi", Rb[bi], board_m[ni]) + bp[bi, 3:6]
        return (_project(cp, cameras, ci, X) - uv).ravel()

    r0 = fun(x0)
    x = _solve(fun, x0, lay, ci, bi, loss_scale_px, max_nfev, cameras)
    r = fun(x).reshape(-1, 2)
    cp, bp = lay.split(x)
    blocks = np.full((corners_px.shape[1], 6), np.nan)
    blocks[used] = bp
    return Adjusted(_cameras_from(cp, cameras), blocks, r, _rms(r0), _rms(r), ci)


def _rms(r: np.ndarray) -> float:
    r = r.reshape(-1, 2)
    return float(np.sqrt(np.mean(np.sum(r**2, axis=1)))) if len(r) else float("nan")


def adjust_points(cameras: Sequence[Camera], points_px: np.ndarray, points_world: np.ndarray,
                  weights: np.ndarray | None = None, intrinsics: bool = False, fixed: int = 0,
                  loss_scale_px: float = 4.0, max_nfev: int = 100,
                  loss: str = "soft_l1") -> Adjusted:  # fmt: skip
    """Bundle adjustment of cameras and free 3D points.

    The scale is held (by one translation component of a second camera): points alone do
    not fix it. The loss is soft-L1: on the synthetic people test (5% outliers, 5% swaps,
    100 evaluations) it reached 2 mm camera centres where Huber and Cauchy stopped at 4 cm.

    Args:
        cameras: initial cameras (C).
        points_px: ``(C, P, 2)`` observations, NaN where unseen.
        points_world: ``(P, 3)`` initial points (NaN: point unused).
        weights: ``(C, P)`` per-observation weights (e.g. detector scores), default 1.
    """
    obs = np.isfinite(points_px[..., 0]) & np.isfinite(points_world[:, 0])[None, :]
    ci, pi = np.nonzero(obs)
    uv = points_px[ci, pi]
    w = np.ones(len(ci)) if weights is None else np.sqrt(np.clip(weights[ci, pi], 0, None))
    used = np.unique(pi)
    block_of = np.full(points_px.shape[1], -1)
    block_of[used] = np.arange(len(used))
    bi = block_of[pi]
    lay = _Layout(len(cameras), 15 if intrinsics else 6, len(used), 3, fixed)
    x0 = np.concatenate([np.concatenate([_cam_vector(c, intrinsics) for c in cameras]),
                         points_world[used].ravel()])  # fmt: skip

    def fun(x: np.ndarray) -> np.ndarray:
        cp, X = lay.split(x)
        return ((_project(cp, cameras, ci, X[bi]) - uv) * w[:, None]).ravel()

    r0 = fun(x0)
    x = _solve(fun, x0, lay, ci, bi, loss_scale_px, max_nfev, cameras, loss, hold_scale=True)
    cp, X = lay.split(x)
    pts = np.full((points_px.shape[1], 3), np.nan)
    pts[used] = X
    new = _cameras_from(cp, cameras)
    r = _project(cp, cameras, ci, X[bi]) - uv
    return Adjusted(new, pts, r, _rms(r0), _rms(r), ci)


def similarity_align(src: np.ndarray, dst: np.ndarray, scale: bool = True
                     ) -> tuple[float, np.ndarray, np.ndarray]:  # fmt: skip
    """Umeyama: ``s, R, t`` minimizing ``|s R src + t - dst|`` over points ``(P, 3)``."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / a.var(axis=0).sum()) if scale else 1.0
    return s, R, mu_d - s * R @ mu_s


def transform_cameras(cameras: Sequence[Camera], s: float, R: np.ndarray,
                      t: np.ndarray) -> tuple[Camera, ...]:  # fmt: skip
    """The cameras after the world change ``x_new = s R x_old + t``."""
    out = []
    for c in cameras:
        R_new = c.R_cam_world @ R.T
        t_new = s * c.t_cam_world - R_new @ t
        out.append(Camera(c.name, c.size_px, c.K, c.dist, R_new, t_new, c.model))
    return tuple(out)
