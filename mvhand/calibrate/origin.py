"""The world frame of a rig: origin and axes from a board, three points or an up axis.

Every function returns a new rig whose cameras see the same scene; only the world changes
(``x_new = R x_old + t``). The convention mvhand writes: z up (cameras above the floor have
positive z), x along the board's first row of corners (or towards the given x point).
"""

from __future__ import annotations

import numpy as np

from mvhand.calibrate.boards import Board
from mvhand.calibrate.bundle import similarity_align, transform_cameras
from mvhand.core.camera import UNIT_SCALE_M, Rig
from mvhand.errors import CalibrationError

AXES = {"x": 0, "y": 1, "z": 2}


def _apply(rig: Rig, R: np.ndarray, t: np.ndarray) -> Rig:
    return Rig(transform_cameras(rig.cameras, 1.0, R, t), rig.units)


def _frame(origin: np.ndarray, x_dir: np.ndarray, plane_dir: np.ndarray) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """R, t of the change to the frame with this origin, x axis and xy plane."""
    x = x_dir / np.linalg.norm(x_dir)
    z = np.cross(x, plane_dir)
    if np.linalg.norm(z) < 1e-9:
        raise CalibrationError("the three points are collinear; they do not define a plane")
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: new axes in old coordinates
    return R, -R @ origin


def _cameras_up(rig: Rig, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip the new frame (180 degrees about its x axis) when most cameras are below z = 0."""
    z = np.array([(R @ c.center_world + t)[2] for c in rig.cameras])
    if np.median(z) < 0:
        flip = np.diag([1.0, -1.0, -1.0])
        return flip @ R, flip @ t
    return R, t


def set_origin_points(rig: Rig, origin: np.ndarray, x_point: np.ndarray,
                      plane_point: np.ndarray, cameras_up: bool = True) -> Rig:  # fmt: skip
    """World with ``origin`` at 0, x towards ``x_point``, ``plane_point`` in the xy plane
    (points in the rig's current world and units); z up towards the cameras if asked."""
    o = np.asarray(origin, float)
    R, t = _frame(o, np.asarray(x_point, float) - o, np.asarray(plane_point, float) - o)
    if cameras_up:
        R, t = _cameras_up(rig, R, t)
    return _apply(rig, R, t)


def set_origin_board(rig: Rig, board: Board, corners_world: np.ndarray,
                     corner: int = 0) -> tuple[Rig, float]:  # fmt: skip
    """World on a board lying on the floor or table, seen by the rig.

    Args:
        corners_world: ``(N, 3)`` the board's corners triangulated in the current world (NaN:
            not seen); at least three non-collinear ones.
        corner: the corner that becomes the origin.

    Returns:
        the rig, and the board's triangulated scale over its known size (1.0: exact).
    """
    ok = np.isfinite(corners_world[:, 0])
    if ok.sum() < 3:
        raise CalibrationError(f"only {ok.sum()} board corners triangulated; need 3")
    board_u = board.points_m()[ok] / UNIT_SCALE_M[rig.units]
    s, R_bw, t_bw = similarity_align(board_u, corners_world[ok])  # board -> world
    # the board frame in world coordinates: origin at the corner, axes = columns of R_bw
    if not 0 <= corner < board.n_corners:
        raise CalibrationError(f"corner must be in 0..{board.n_corners - 1}, got {corner}")
    origin = s * R_bw @ (board.points_m()[corner] / UNIT_SCALE_M[rig.units]) + t_bw
    R, t = _frame(origin, R_bw[:, 0], R_bw[:, 1])
    R, t = _cameras_up(rig, R, t)
    return _apply(rig, R, t), s


def set_up_axis(rig: Rig, up: str) -> Rig:
    """Rotate the world so that its current axis ``up`` ("x", "-y", ...) becomes +z."""
    sign = -1.0 if up.startswith("-") else 1.0
    key = up.lstrip("+-")
    if key not in AXES:
        raise CalibrationError(f"up axis must be one of x, y, z, -x, -y, -z; got {up!r}")
    new_z = np.zeros(3)
    new_z[AXES[key]] = sign
    helper = np.array([1.0, 0, 0]) if abs(new_z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = helper - new_z * (helper @ new_z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(new_z, x), new_z])
    return _apply(rig, R, np.zeros(3))
