"""Synthetic scenes with exact ground truth: an operating-room rig, hand motion, detections.

Used by tests, the demo and benchmarks. World frame: metres, z up, the table top at z = 0.9 m
centred on the origin; hands move about 10-20 cm above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.core.camera import Camera, Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.skeleton import FINGER_JOINTS, N_JOINTS

TABLE_CENTER_M = np.array([0.0, 0.0, 1.0])

# Canonical right hand in its own frame (metres): wrist at the origin, fingers along +y,
# palm facing +z (fingers flex towards +z), thumb towards +x. Per finger: base offset,
# segment lengths (cm), splay (rad).
_FINGER_BASE_CM = np.array([[2.2, 2.0, 0.0], [2.6, 8.6, 0.0], [0.6, 9.0, 0.0],
                            [-1.2, 8.6, 0.0], [-2.8, 7.8, 0.0]])  # fmt: skip
_FINGER_SEGMENTS_CM = np.array([[4.0, 3.4, 3.0], [3.9, 2.3, 2.0], [4.4, 2.7, 2.1],
                                [4.0, 2.6, 2.0], [3.1, 1.9, 1.8]])  # fmt: skip
_FINGER_SPLAY_RAD = np.array([0.75, 0.12, 0.0, -0.12, -0.25])


def look_at(name: str, center: np.ndarray, target: np.ndarray, size_px: tuple[int, int],
            focal_px: float, dist=None, up=(0.0, 0.0, 1.0)) -> Camera:  # fmt: skip
    """A pinhole camera at ``center`` looking at ``target``, image y pointing down the world up."""
    center = np.asarray(center, dtype=float)
    z = np.asarray(target, dtype=float) - center
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    K = np.array([[focal_px, 0, (size_px[0] - 1) / 2], [0, focal_px, (size_px[1] - 1) / 2],
                  [0, 0, 1.0]])  # fmt: skip
    return Camera(name, size_px, K, np.zeros(5) if dist is None else dist, R, -R @ center)


def make_or_rig(n_cameras: int = 12, seed: int = 0, size_px: tuple[int, int] = (2160, 3840),
                distortion: bool = True) -> Rig:  # fmt: skip
    """An operating-room rig around a table: a third far-field (3 m), the rest near-field (1.6 m).

    Cameras sit at 1.9-2.6 m height, spread evenly in azimuth with jitter, and look at the table
    centre with jittered aim. 4K portrait images by default, mild radial distortion.
    """
    rng = np.random.default_rng(seed)
    n_far = max(1, n_cameras // 3) if n_cameras >= 3 else 0
    cams = []
    for i in range(n_cameras):
        far = i < n_far
        radius = 3.0 if far else 1.6
        azim = 2 * np.pi * i / n_cameras + rng.uniform(-0.15, 0.15)
        height = (2.6 if far else 1.9) + rng.uniform(-0.1, 0.1)
        center = [radius * np.cos(azim), radius * np.sin(azim), height]
        target = TABLE_CENTER_M + rng.normal(0, 0.05, 3)
        focal = (3000.0 if far else 1900.0) * rng.uniform(0.95, 1.05)
        dist = [rng.uniform(-0.08, 0.0), rng.uniform(0.0, 0.03), 0, 0, 0] if distortion else None
        cams.append(look_at(f"cam_{i + 1}", center, target, size_px, focal, dist))
    return Rig(tuple(cams), "m")


def _finger_chain(base, segs, splay, flex) -> np.ndarray:
    """Joints (4, 3) of one finger given its base, segment lengths and 3 flexion angles."""
    pts = [base]
    direction = np.array([np.sin(splay), np.cos(splay), 0.0])
    bend_axis = np.array([np.cos(splay), -np.sin(splay), 0.0])
    angle = 0.0
    for length, a in zip(segs, flex, strict=True):
        angle += a
        d = Rotation.from_rotvec(bend_axis * angle).apply(direction)
        pts.append(pts[-1] + length * d)
    return np.array(pts)


def hand_pose(flexion_rad: np.ndarray, scale: float = 1.0, left: bool = False) -> np.ndarray:
    """The canonical hand with given flexion, in the hand frame (21, 3) metres.

    Args:
        flexion_rad: (5, 3) flexion of each finger's three joints (0 = straight).
        scale: overall hand size factor.
        left: mirror to a left hand (x negated).
    """
    pts = np.zeros((N_JOINTS, 3))
    for f in range(5):
        base = _FINGER_BASE_CM[f] * 0.01 * scale
        segs = _FINGER_SEGMENTS_CM[f] * 0.01 * scale
        pts[FINGER_JOINTS[f]] = _finger_chain(base, segs, _FINGER_SPLAY_RAD[f], flexion_rad[f])
    if left:
        pts[:, 0] *= -1
    return pts


def make_hand_motion(n_frames: int = 300, fps: float = 30.0, speed: str = "slow",
                     seed: int = 0) -> np.ndarray:  # fmt: skip
    """Two hands moving over the table: ``(T, 2, 21, 3)`` metres (hand 0 left, 1 right).

    ``speed`` is "static", "slow" (about 5 cm/s) or "fast" (about 40 cm/s); fingers open and
    close, wrists translate and rotate smoothly.
    """
    rng = np.random.default_rng(seed)
    amp = {"static": 0.0, "slow": 0.05, "fast": 0.15}[speed]
    freq = {"static": 0.0, "slow": 0.15, "fast": 0.6}[speed]
    t = np.arange(n_frames) / fps
    out = np.zeros((n_frames, 2, N_JOINTS, 3))
    for h in range(2):
        scale = rng.uniform(0.92, 1.08)
        side = -1.0 if h == 0 else 1.0
        phase = rng.uniform(0, 2 * np.pi, size=6)
        wrist = TABLE_CENTER_M + [0.0, side * 0.18, 0.0] + amp * np.stack([
            np.sin(2 * np.pi * freq * t + phase[0]),
            0.6 * np.sin(2 * np.pi * freq * 1.3 * t + phase[1]),
            0.4 * np.sin(2 * np.pi * freq * 0.7 * t + phase[2]),
        ], axis=1)  # fmt: skip
        grip = 0.5 + 0.5 * np.sin(2 * np.pi * max(freq, 0.05) * 0.8 * t + phase[3])
        base_rot = Rotation.from_euler("xyz", [np.pi, 0.0, side * -0.4 - np.pi / 2])
        for i in range(n_frames):
            flex = np.outer(np.full(5, 0.2 + 0.9 * grip[i]), [1.0, 1.1, 0.7])
            flex[0] = [0.1, 0.25 * grip[i], 0.35 * grip[i]]
            wobble = Rotation.from_euler("xyz", 0.5 * amp / 0.15 * np.sin(
                2 * np.pi * freq * t[i] + phase[4:6].sum() + np.arange(3)))  # fmt: skip
            rot = wobble * base_rot
            out[i, h] = rot.apply(hand_pose(flex, scale, left=h == 0)) + wrist[i]
    return out


@dataclass(frozen=True)
class DetectorNoise:
    """How synthetic 2D detections deviate from the truth.

    Attributes:
        noise_px: standard deviation of Gaussian pixel noise.
        dropout: probability that a joint is missing in a view.
        outlier_rate: probability that a joint is a gross outlier (30-300 px off).
        swap_rate: per view and frame, probability that a block of 10-40 frames with the
            left and right hands swapped starts there (0.005 swaps about 11 % of view-frames).
        occluded_views: probability that a hand is unseen in a view for a whole 30-frame block.
    """

    noise_px: float = 2.0
    dropout: float = 0.05
    outlier_rate: float = 0.03
    swap_rate: float = 0.005
    occluded_views: float = 0.15


def render_detections(rig: Rig, hands3d: np.ndarray, noise: DetectorNoise = DetectorNoise(),
                      seed: int = 0, fps: float = 30.0) -> Keypoints2D:  # fmt: skip
    """Project ``hands3d`` (T, H, J, 3) into the rig and corrupt it like a 2D detector would.

    Scores fall with each joint's error, as a detector's confidence tends to. Points outside the
    image or behind the camera are missing.
    """
    rng = np.random.default_rng(seed)
    kp = rig.project(hands3d)  # (C, T, H, J, 2)
    C, T, H, J, _ = kp.shape
    depth = np.stack([c.world_to_cam(hands3d)[..., 2] for c in rig.cameras])
    err = rng.normal(0, noise.noise_px, kp.shape)
    outlier = rng.random((C, T, H, J)) < noise.outlier_rate
    jump = rng.uniform(30, 300, (C, T, H, J, 1)) * _unit2(rng, (C, T, H, J))
    err = np.where(outlier[..., None], jump, err)
    kp = kp + err
    size = np.array([c.size_px for c in rig.cameras], dtype=float)[:, None, None, None, :]
    missing = (depth <= 0) | (kp < 0).any(-1) | (kp > size - 1).any(-1)
    missing |= rng.random((C, T, H, J)) < noise.dropout
    for c in range(C):
        for h in range(H):
            for start in range(0, T, 30):
                if rng.random() < noise.occluded_views:
                    missing[c, start:start + 30, h] = True
    err_px = np.linalg.norm(err, axis=-1)
    scores = np.clip(0.95 - err_px / 60 + rng.normal(0, 0.05, err_px.shape), 0.05, 1.0)
    kp[missing] = np.nan
    scores[missing] = 0.0
    if H == 2 and noise.swap_rate > 0:
        for c in range(C):
            t = 0
            while t < T:
                if rng.random() < noise.swap_rate:
                    n = int(rng.integers(10, 41))
                    kp[c, t:t + n] = kp[c, t:t + n, ::-1].copy()
                    scores[c, t:t + n] = scores[c, t:t + n, ::-1].copy()
                    t += n
                t += 1
    return Keypoints2D(kp, scores, rig.names, fps=fps)


def _unit2(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi, shape)
    return np.stack([np.cos(a), np.sin(a)], axis=-1)
