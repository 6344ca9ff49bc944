"""Synthetic calibration data (tests, benchmarks): known cameras, projected and rendered boards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.calibrate.boards import Board
from mvhand.core.camera import Camera, Rig

CHARUCO = Board("charuco", (5, 7), 0.05, 0.037, "DICT_4X4_50", name="synth_charuco")
CHECKER = Board("checkerboard", (6, 8), 0.04, name="synth_checker")


def look_at(name: str, centre: np.ndarray, target: np.ndarray, K: np.ndarray,
            size=(640, 480), dist=(0.0,) * 5, model: str = "pinhole") -> Camera:  # fmt: skip
    """A camera at ``centre`` looking at ``target`` (world z up, image y down)."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return Camera(name, size, K, dist, R, -R @ centre, model)


def ring_rig(n: int = 4, radius: float = 0.9, f: float = 600.0) -> Rig:
    """``n`` cameras on an arc 0.9 m around the origin, 0.5 m up, looking at the origin."""
    K = np.array([[f, 0, 320.0], [0, f, 240.0], [0, 0, 1]])
    cams = []
    for i in range(n):
        a = -np.pi / 4 + np.pi / 2 * i / max(1, n - 1)  # a 90-degree arc: all see the board
        c = np.array([radius * np.cos(a), radius * np.sin(a), 0.5])
        cams.append(look_at(f"cam{i + 1}", c, np.zeros(3), K))
    return Rig(tuple(cams), "m")


def board_poses(n: int, rng: np.random.Generator, board: Board = CHARUCO, spread: float = 0.1,
                tilt_deg: float = 30.0) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Board-to-world poses near the origin, facing the ring (board normal towards +x)."""
    # board x -> world +y, board y -> world -z (down), board z -> world -x: its printed side
    # faces the cameras, which look along -x
    base = Rotation.from_matrix(np.column_stack([[0, 1.0, 0], [0, 0, -1.0], [-1.0, 0, 0]]))
    poses = []
    for _ in range(n):
        R = (Rotation.from_rotvec(rng.normal(0, np.radians(tilt_deg) / 2, 3)) * base).as_matrix()
        centre = board.points_m().mean(axis=0)
        t = rng.uniform(-spread, spread, 3) - R @ centre
        poses.append((R, t))
    return poses


def project_board(rig: Rig, board: Board, poses, noise_px: float = 0.0,
                  rng: np.random.Generator | None = None) -> np.ndarray:  # fmt: skip
    """``(C, F, N, 2)`` projected corners; NaN outside the image or behind the camera."""
    pts = np.stack([board.points_m() @ R.T + t for R, t in poses])  # (F, N, 3)
    out = rig.project(pts)
    if noise_px and rng is not None:
        out = out + rng.normal(0, noise_px, out.shape)
    for c, cam in enumerate(rig.cameras):
        z = cam.world_to_cam(pts)[..., 2]
        w, h = cam.size_px
        bad = (z <= 0) | (out[c, ..., 0] < 0) | (out[c, ..., 0] > w - 1) | (out[c, ..., 1] < 0) \
            | (out[c, ..., 1] > h - 1)
        out[c][bad] = np.nan
    return out


def board_texture(board: Board, px_per_m: float = 2500.0) -> tuple[np.ndarray, float]:
    """The board printed (uint8 gray) and its pixels per metre; origin = its top-left corner."""

    w = int(board.squares[0] * board.square_size_m * px_per_m)
    h = int(board.squares[1] * board.square_size_m * px_per_m)
    if board.kind == "charuco":
        img = board.cv_board().generateImage((w, h), marginSize=0, borderBits=1)
    else:
        s = int(board.square_size_m * px_per_m)
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.where(((xx // s) + (yy // s)) % 2 == 0, 0, 255).astype(np.uint8)
    return (255 - img if board.inverted else img), px_per_m


def render_view(cam: Camera, board: Board, pose, texture=None, blur: bool = True) -> np.ndarray:
    """A gray image of the board at ``pose`` (board to world) seen by a distortion-free camera,
    on a mid-gray background with a white border round the board."""
    import cv2

    tex, ppm = texture if texture is not None else board_texture(board)
    R, t = pose
    # board pixels (u, v, 1) -> board metres (checkerboard corners at one square in)
    off = 0.0 if board.kind == "charuco" else board.square_size_m
    # texture pixel centres are at (u + 0.5) / ppm metres from the board's corner
    A = np.array([[1 / ppm, 0, 0.5 / ppm - off], [0, 1 / ppm, 0.5 / ppm - off], [0, 0, 1]])
    Rc = cam.R_cam_world @ R
    tc = cam.R_cam_world @ t + cam.t_cam_world
    H = cam.K @ np.column_stack([Rc[:, 0], Rc[:, 1], tc]) @ A
    pad = 60
    big = cv2.copyMakeBorder(tex, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                             value=0 if board.inverted else 255)  # fmt: skip
    H = H @ np.array([[1, 0, -pad], [0, 1, -pad], [0, 0, 1]])
    # render at twice the size and average 2x2 blocks (anti-aliasing); the centre of output
    # pixel x is at 2x + 0.5 in the large image
    H2 = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5], [0, 0, 1]]) @ H
    w, h = cam.size_px
    img = cv2.warpPerspective(big, H2, (2 * w, 2 * h), flags=cv2.INTER_LINEAR, borderValue=128)
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (3, 3), 0.6) if blur else img


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    """A lossless-enough video (MJPG in AVI) of gray frames."""
    import cv2

    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()


def people_session(rng: np.random.Generator, n_cams: int = 4, n_frames: int = 60,
                   noise_px: float = 1.0, outliers: float = 0.05, swaps: float = 0.05
                   ) -> tuple[Rig, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A person-like cloud of 16 keypoints (8 left/right pairs, 1.7 m tall) walking in front of
    ``n_cams`` cameras 3 m away; 2D keypoints with noise, gross outliers and left/right swaps.

    Returns:
        rig, points_px ``(C, T, K, 2)``, scores ``(C, T, K)``, swap ``(K,)``, truth ``(T, K, 3)``,
        and the swapped views ``(C, T)``.
    """
    K = np.array([[800.0, 0, 540], [0, 800, 960], [0, 0, 1]])
    cams = []
    for i in range(n_cams):
        a = 2 * np.pi * i / n_cams + 0.3
        c = np.array([3 * np.cos(a), 3 * np.sin(a), 1.6 + 0.3 * (i % 2)])
        cams.append(look_at(f"cam{i + 1}", c, np.array([0, 0, 1.0]), K, (1080, 1920),
                            (-0.05, 0.02, 0.0, 0.0, 0.0)))  # fmt: skip
    rig = Rig(tuple(cams), "m")
    side = np.array([[0.2, 0, 1.45], [0.25, 0, 1.15], [0.3, 0.05, 0.9], [0.32, 0.1, 0.8],
                     [0.12, 0, 0.95], [0.13, 0, 0.5], [0.14, 0, 0.08], [0.1, 0.15, 0.02]])
    body = np.vstack([side, side * [-1, 1, 1]])  # left keypoints, then their right mirror
    swap = np.r_[np.arange(8, 16), np.arange(8)]
    truth = []
    for t in range(n_frames):
        ang = 0.05 * t
        R = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
        wiggle = rng.normal(0, 0.04, body.shape)
        truth.append((body + wiggle) @ R.T + [0.4 * np.sin(0.07 * t), 0.3 * np.cos(0.05 * t), 0])
    truth = np.stack(truth)
    px = rig.project(truth) + rng.normal(0, noise_px, (n_cams, *truth.shape[:2], 2))
    bad = rng.random(px.shape[:3]) < outliers
    px[bad] = rng.uniform([0, 0], [1080, 1920], (bad.sum(), 2))
    flip = rng.random(px.shape[:2]) < swaps
    for c, t in zip(*np.nonzero(flip), strict=True):
        px[c, t] = px[c, t][swap]
    scores = np.full(px.shape[:3], 0.9)
    return rig, px, scores, swap, truth, flip
