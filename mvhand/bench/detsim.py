"""A 2D hand detector's behaviour, simulated from 3D ground truth (used by ``bench.synth``).

Everything is seeded through the ``rng`` passed in; arrays follow mvhand's layout with H the
hands of every person (``2 * persons``), hand 0 and 1 being the primary person's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.core.camera import Rig
from mvhand.core.skeleton import BONES, N_JOINTS

_FINGER_RADIUS_M = 0.009
_PALM_RADIUS_M = 0.014
_SELF_EXCLUDE_M = 0.02  # occluders this close to the joint in 3D are part of it
_TIP_NOISE = np.ones(N_JOINTS)
_TIP_NOISE[[4, 8, 12, 16, 20]] = 1.4
_TIP_NOISE[0] = 0.8
_HAND_LENGTH_M = 0.18
#: AR(1) coefficient of the 2D noise from frame to frame.
NOISE_TIME_CORRELATION = 0.8
_PALM_TRIANGLES = ((0, 5, 17), (0, 1, 5), (5, 9, 17), (9, 13, 17))


def _occluder_samples(hands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points on bones and palm of hands ``(..., 21, 3)``: ``(..., S, 3)`` and radii ``(S,)``."""
    t = np.array([0.25, 0.5, 0.75])[:, None, None]
    a, b = hands[..., BONES[:, 0], :], hands[..., BONES[:, 1], :]  # (..., 20, 3)
    bone = a[..., None, :, :] * (1 - t) + b[..., None, :, :] * t  # (..., 3, 20, 3)
    bone = bone.reshape(*hands.shape[:-2], -1, 3)
    w = np.array([[1, 1, 1], [2, 1, 1], [1, 2, 1], [1, 1, 2]], float) / [[3], [4], [4], [4]]
    palm = [np.einsum("kv,...vd->...kd", w, hands[..., list(tri), :]) for tri in _PALM_TRIANGLES]
    samples = np.concatenate([hands, bone, *palm], axis=-2)
    radius = np.r_[np.full(N_JOINTS + bone.shape[-2], _FINGER_RADIUS_M),
                   np.full(4 * len(_PALM_TRIANGLES), _PALM_RADIUS_M)]  # fmt: skip
    return samples, radius


def self_occlusion(rig: Rig, hands: np.ndarray) -> np.ndarray:
    """Which joints a person's own hands hide from each camera.

    Args:
        rig: the cameras.
        hands: ``(T, 2, 21, 3)`` one person's hands.

    Returns:
        ``(C, T, 2, 21)`` True where some bone or palm of either hand lies in front of the joint
        within the finger's projected radius.
    """
    T = hands.shape[0]
    samples, radius = _occluder_samples(hands)  # (T, 2, S, 3)
    samples = samples.reshape(T, -1, 3)
    radius = np.tile(radius, 2)
    joints = hands.reshape(T, -1, 3)  # (T, 42, 3)
    near3d = np.linalg.norm(joints[:, :, None] - samples[:, None], axis=-1) < _SELF_EXCLUDE_M
    out = np.zeros((len(rig), T, 2 * N_JOINTS), bool)
    for c, cam in enumerate(rig.cameras):
        pj, ps = cam.project(joints), cam.project(samples)
        dj, ds = cam.world_to_cam(joints)[..., 2], cam.world_to_cam(samples)[..., 2]
        r_px = cam.K[0, 0] * radius[None] / np.maximum(ds, 1e-6)  # (T, S)
        d2 = ((pj[:, :, None] - ps[:, None]) ** 2).sum(-1)  # (T, 42, S)
        hides = (d2 < r_px[:, None] ** 2) & (ds[:, None] < dj[..., None] - 0.005) & ~near3d
        out[c] = hides.any(-1)
    return out.reshape(len(rig), T, 2, N_JOINTS)


def events(rng: np.random.Generator, lead: tuple[int, ...], n_frames: int, rate_per_frame: float,
           duration: tuple[int, int]) -> np.ndarray:  # fmt: skip
    """Random stretches of time: ``(*lead, T)`` True inside an event (Poisson starts)."""
    out = np.zeros((*lead, n_frames), bool)
    if rate_per_frame <= 0:
        return out
    for idx in np.ndindex(*lead):
        for _ in range(rng.poisson(rate_per_frame * n_frames)):
            start = int(rng.integers(-duration[0], n_frames))
            stop = start + int(rng.integers(duration[0], duration[1] + 1))
            out[idx][max(start, 0):max(stop, 0)] = True
    return out


def ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float, axis: int = 1) -> np.ndarray:
    """Unit-variance AR(1) noise, correlated along ``axis`` (time) with coefficient ``rho``."""
    white = np.moveaxis(rng.normal(size=shape), axis, 0)
    out = np.empty_like(white)
    out[0] = white[0]
    k = np.sqrt(1 - rho * rho)
    for t in range(1, len(white)):
        out[t] = rho * out[t - 1] + k * white[t]
    return np.moveaxis(out, 0, axis)


@dataclass(frozen=True, eq=False)
class Visibility:
    """What each camera can see of each joint.

    Attributes:
        true_px: ``(C, T, H, 21, 2)`` exact projections.
        depth_m: ``(C, T, H, 21)`` depth in the camera.
        in_image: ``(C, T, H, 21)`` in front of the camera and inside the image.
        self_occluded: ``(C, T, H, 21)`` hidden by the person's own hands.
        tool: ``(C, T, H, 21)`` hidden by an instrument.
        hidden: ``(C, T, H, 21)`` hidden by staff or by a static occluder (whole view parts).
    """

    true_px: np.ndarray
    depth_m: np.ndarray
    in_image: np.ndarray
    self_occluded: np.ndarray
    tool: np.ndarray
    hidden: np.ndarray

    @property
    def visibility(self) -> np.ndarray:
        """COCO flags ``(C, T, H, 21)``: 2 visible, 1 occluded (hand or tool), 0 unseen."""
        seen = self.in_image & ~self.hidden
        occluded = self.self_occluded | self.tool
        return np.where(seen, np.where(occluded, 1, 2), 0).astype(np.int8)


def tool_occlusion(rng: np.random.Generator, C: int, T: int, H: int, rate_per_frame: float,
                   whole_prob: float) -> np.ndarray:  # fmt: skip
    """``(C, T, H, 21)`` joints hidden by instruments: whole hands or one or two fingers."""
    out = np.zeros((C, T, H, N_JOINTS), bool)
    if rate_per_frame <= 0:
        return out
    for c, h in np.ndindex(C, H):
        for _ in range(rng.poisson(rate_per_frame * T)):
            start = int(rng.integers(-15, T))
            stop = start + int(rng.integers(15, 60))
            if rng.random() < whole_prob:
                joints = np.arange(N_JOINTS)
            else:
                f = int(rng.integers(0, 5))
                fingers = [f] if rng.random() < 0.5 else [f, min(f + 1, 4)]
                joints = np.concatenate([np.arange(1 + 4 * g, 5 + 4 * g) for g in fingers])
            out[c, max(start, 0):max(stop, 0), h][:, joints] = True
    return out


def static_occluders(rng: np.random.Generator, rig: Rig, true_px: np.ndarray,
                     fraction: float) -> np.ndarray:  # fmt: skip
    """``(C, T, H, 21)`` joints behind a fixed occluder (lamp, drape) in a ``fraction`` of views:
    a random half-plane of the image that cuts through the hands' working area."""
    C = true_px.shape[0]
    out = np.zeros(true_px.shape[:-1], bool)
    for c in rng.choice(C, size=int(round(fraction * C)), replace=False):
        pts = true_px[c][np.isfinite(true_px[c]).all(-1)]
        if pts.size == 0:
            continue
        angle = rng.uniform(0, 2 * np.pi)
        n = np.array([np.cos(angle), np.sin(angle)])
        offset = np.quantile(pts @ n, rng.uniform(0.3, 0.7))
        out[c] = true_px[c] @ n > offset
    return out


def hand_size_px(rig: Rig, depth_m: np.ndarray) -> np.ndarray:
    """Apparent hand length (px) ``(C, T, H)`` from the wrist's depth ``depth_m[..., 0]``."""
    f = rig.focal_px[:, None, None]
    return f * _HAND_LENGTH_M / np.maximum(depth_m[..., 0], 0.05)


def _scores(rng: np.random.Generator, err_px: np.ndarray, hand_px: np.ndarray) -> np.ndarray:
    """Confidence that falls with the error relative to the hand's size, plus noise."""
    e_n = err_px / (0.08 * hand_px[..., None])
    return np.clip(0.97 * np.exp(-0.5 * e_n**2) + rng.normal(0, 0.06, e_n.shape), 0.02, 1.0)


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi, shape)
    return np.stack([np.cos(a), np.sin(a)], axis=-1)


def _noisy(rng: np.random.Generator, rig: Rig, vis: Visibility, hands: list[int],
           noise_px: float, fps: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Noisy detections and scores ``(C, T, len(hands), 21, [2])`` of the listed hands."""
    true = vis.true_px[:, :, hands]
    depth = vis.depth_m[:, :, hands]
    speed = np.zeros(true.shape[:-1])
    speed[:, 1:] = np.linalg.norm(np.diff(true, axis=1), axis=-1) * (30.0 / fps)
    speed = np.nan_to_num(speed)
    sigma = noise_px * (0.5 + 0.5 * depth / 1.6) * _TIP_NOISE
    sigma = sigma * (1 + 1.5 * vis.self_occluded[:, :, hands]) + 0.08 * speed
    err = ar1(rng, true.shape, NOISE_TIME_CORRELATION, axis=1) * sigma[..., None]
    hand_px = hand_size_px(rig, depth)
    return true + err, _scores(rng, np.linalg.norm(err, axis=-1), hand_px)


def _occluded_joints(rng: np.random.Generator, kp: np.ndarray, sc: np.ndarray,
                     occluded: np.ndarray) -> None:  # fmt: skip
    """Hidden joints: the detector drops them or hallucinates them nearby with low scores."""
    C, T, H = occluded.shape[:3]
    hallucinate = ar1(rng, (C, T, H), 0.95, axis=1) > 0.3
    bias = rng.uniform(10, 40, (C, 1, H, 1, 1)) * _unit(rng, (C, 1, H, 1))
    drift = 15.0 * ar1(rng, kp.shape, 0.8, axis=1)
    fake = occluded & hallucinate[..., None]
    kp[fake] = (kp + bias + drift)[fake]
    sc[fake] = rng.uniform(0.15, 0.55, int(fake.sum()))
    gone = occluded & ~hallucinate[..., None]
    kp[gone] = np.nan


def _distractors(rng: np.random.Generator, rig: Rig, vis: Visibility, kp: np.ndarray,
                 sc: np.ndarray, rate_per_frame: float, noise_px: float,
                 fps: float) -> None:  # fmt: skip
    """Replace the primary's hands by another person's for stretches of time in some views."""
    n_hands = vis.true_px.shape[2]
    if n_hands <= 2 or rate_per_frame <= 0:
        return
    C, T = kp.shape[:2]
    others = list(range(2, n_hands))
    okp, osc = _noisy(rng, rig, vis, others, noise_px, fps)
    seen = vis.in_image[:, :, others] & ~vis.hidden[:, :, others]
    okp[~seen] = np.nan
    when = events(rng, (C, 2), T, rate_per_frame, (10, 60))  # (C, 2, T)
    for c, h in zip(*np.nonzero(when.any(-1)), strict=True):
        o = int(rng.integers(0, len(others)))
        t = when[c, h]
        kp[c, t, h], sc[c, t, h] = okp[c, t, o], osc[c, t, o]


def _outliers(rng: np.random.Generator, kp: np.ndarray, sc: np.ndarray, joint_rate: float,
              hand_rate: float) -> None:  # fmt: skip
    """Gross joint outliers (30-300 px) and whole-hand outliers (80-500 px, 1-5 frames)."""
    C, T, H, J = sc.shape
    out = rng.random((C, T, H, J)) < joint_rate
    jump = rng.uniform(30, 300, (C, T, H, J, 1)) * _unit(rng, (C, T, H, J))
    kp[out] += jump[out]
    sc[out] = rng.uniform(0.2, 0.9, int(out.sum()))
    when = events(rng, (C, H), T, hand_rate / 3.0, (1, 5))  # (C, H, T)
    for c, h in zip(*np.nonzero(when.any(-1)), strict=True):
        t = when[c, h]
        kp[c, t, h] += rng.uniform(80, 500) * _unit(rng, ())
        sc[c, t, h] = np.clip(sc[c, t, h] * rng.uniform(0.5, 1.0), 0.02, 1.0)


def _swaps(rng: np.random.Generator, kp: np.ndarray, sc: np.ndarray, rate: float) -> None:
    """Left/right identity swapped in a view for 10-40 frames (scores stay high)."""
    C, T = kp.shape[:2]
    for c in range(C):
        t = 0
        while t < T:
            if rng.random() < rate:
                n = int(rng.integers(10, 41))
                kp[c, t:t + n] = kp[c, t:t + n, ::-1].copy()
                sc[c, t:t + n] = sc[c, t:t + n, ::-1].copy()
                t += n
            t += 1


def simulate_detections(rng: np.random.Generator, rig: Rig, vis: Visibility, preset,
                        fps: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The primary person's 2D detections with a detector's failure modes.

    Args:
        rng: the random generator.
        rig: the cameras.
        vis: what each camera sees of every hand (:class:`Visibility`).
        preset: a :class:`mvhand.bench.synth.LevelPreset`.
        fps: frame rate (motion blur scales with motion per frame).

    Returns:
        ``(C, T, 2, 21, 2)`` pixels (NaN missing) and ``(C, T, 2, 21)`` scores.
    """
    kp, sc = _noisy(rng, rig, vis, [0, 1], preset.noise_px, fps)
    occluded = (vis.tool | vis.hidden)[:, :, :2]
    _occluded_joints(rng, kp, sc, occluded)
    C, T = kp.shape[:2]
    miss = ~vis.in_image[:, :, :2] | (rng.random(sc.shape) < preset.dropout)
    miss |= (rng.random((C, T, 2)) < preset.dropout / 2)[..., None]
    miss |= vis.self_occluded[:, :, :2] & (rng.random(sc.shape) < 0.15)
    kp[miss & ~occluded] = np.nan
    _distractors(rng, rig, vis, kp, sc, preset.distractor_rate / fps, preset.noise_px, fps)
    _outliers(rng, kp, sc, preset.outlier_rate, preset.hand_outlier_rate)
    _swaps(rng, kp, sc, preset.swap_rate)
    size = np.array([c.size_px for c in rig.cameras], float)[:, None, None, None]
    outside = (kp < 0).any(-1) | (kp > size - 1).any(-1)
    kp[outside] = np.nan
    sc[np.isnan(kp).any(-1)] = 0.0
    return kp, sc
