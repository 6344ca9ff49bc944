"""The default camera rig of the rendered benchmark: an operating room with GoPro-like cameras.

Four far-field cameras on the walls (2.9-3.4 m from the table centre, 2.5-2.8 m high, the
GoPro "narrow" field of view: focal about 1500 px at 1080x1920) and eight near-field cameras
around the table (1.3-1.8 m, 1.8-2.2 m high, the "linear" field of view: about 1000 px), all
portrait and aimed near the hands. Lens distortion is GoPro-like barrel distortion
(k1 -0.12 .. -0.06, k2 0.01 .. 0.04) and it is *rendered*: vertices are projected through the
full camera model, so the videos are distorted exactly as ``calibration.toml`` says and the
truth 2D is the distorted projection of the truth 3D.
"""

from __future__ import annotations

import numpy as np

from mvhand.bench.synth import TABLE_TOP_Z_M
from mvhand.core.camera import Camera, Rig
from mvhand.core.synthetic import look_at

#: Focal length (px) at the reference width of 1080 px, far and near field.
FOCAL_FAR_PX, FOCAL_NEAR_PX = 1500.0, 1000.0


def or_rig(n_far: int = 4, n_near: int = 8, size_px: tuple[int, int] = (1080, 1920),
           seed: int = 0) -> Rig:  # fmt: skip
    """The operating-room rig (cameras ``cam_1 .. cam_N``, far-field first)."""
    rng = np.random.default_rng([seed, 11])
    scale = size_px[0] / 1080.0
    cams = []
    for i in range(n_far + n_near):
        far = i < n_far
        k, n_group = (i, n_far) if far else (i - n_far, n_near)
        azim = 2 * np.pi * (k + (0.5 if far else 0.0)) / max(n_group, 1) + rng.uniform(-0.2, 0.2)
        radius = rng.uniform(2.9, 3.4) if far else rng.uniform(1.3, 1.8)
        height = rng.uniform(2.5, 2.8) if far else rng.uniform(1.8, 2.2)
        center = [radius * np.cos(azim), radius * np.sin(azim), height]
        target = np.array([-0.07, 0.0, TABLE_TOP_Z_M + 0.12]) + rng.normal(0, [0.05, 0.05, 0.03])
        focal = (FOCAL_FAR_PX if far else FOCAL_NEAR_PX) * scale * rng.uniform(0.95, 1.05)
        dist = [rng.uniform(-0.12, -0.06), rng.uniform(0.01, 0.04), 0.0, 0.0, 0.0]
        cams.append(look_at(f"cam_{i + 1}", center, target, size_px, focal, dist))
    return Rig(tuple(cams), "m")


def resized(cam: Camera, size_px: tuple[int, int]) -> Camera:
    """``cam`` with its image resampled to ``size_px`` (intrinsics scaled about the pixel
    centres; the aspect ratio must be kept)."""
    s = size_px[0] / cam.size_px[0]
    K = cam.K.copy()
    K[0, 0], K[1, 1], K[0, 1] = K[0, 0] * s, K[1, 1] * s, K[0, 1] * s
    K[0, 2], K[1, 2] = (K[0, 2] + 0.5) * s - 0.5, (K[1, 2] + 0.5) * s - 0.5
    return Camera(cam.name, tuple(size_px), K, cam.dist, cam.R_cam_world, cam.t_cam_world,
                  cam.model)  # fmt: skip
