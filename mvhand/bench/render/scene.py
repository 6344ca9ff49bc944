"""The rendered operating-room scene per level: motion, hands, gloves, instruments, lights.

World frame as in :mod:`mvhand.bench.synth`: metres, z up, the table top at z = 0.9 m centred
on the origin, the surgeon (person 0) at -x facing +x.

Object ids (per triangle, and in the rendered id buffer): ``hand h`` is ``HAND_ID + h`` (h along
the truth's hand axis: 0 left, 1 right of person 0, then persons 1, 2 ...), its forearm
``FOREARM_ID + h``, instruments ``INSTRUMENT_ID + k``, the static room (table, drapes, floor,
walls, patient) ``SCENE_ID``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from mvhand.bench.render.geometry import Material, Mesh, box, make_mesh, plane, tube
from mvhand.bench.render.skin import HandModel, load_hand
from mvhand.bench.synth import TABLE_TOP_Z_M, load_mocap, person_motion

SCENE_ID, HAND_ID, FOREARM_ID, INSTRUMENT_ID = 0, 1, 100, 200

SKIN = {"light": (0.86, 0.68, 0.57), "medium": (0.72, 0.53, 0.40), "dark": (0.45, 0.31, 0.22)}
GLOVES = {"skin": None, "cream_latex": (0.92, 0.86, 0.70), "blue_nitrile": (0.33, 0.52, 0.86),
          "green_nitrile": (0.42, 0.68, 0.52)}  # fmt: skip
GOWN = ((0.30, 0.47, 0.62), (0.30, 0.52, 0.48))
DRAPE = ((0.20, 0.42, 0.60), (0.20, 0.44, 0.38))
METAL = Material((0.72, 0.74, 0.78), specular=1.6, shininess=90.0)


@dataclass(frozen=True)
class LevelScene:
    """What one level puts in the scene.

    Attributes:
        speed: hand motion ("static", "slow", "fast"), as in :mod:`mvhand.bench.synth`.
        persons: people whose hands are in the scene (person 0 is the surgeon).
        gloves: glove colours drawn from (a key of ``GLOVES``; "skin" = bare hands).
        held: instrument in the surgeon's hands: "none", "small" (needle holder, forceps) or
            "large" (retractor).
        sweeps: per second, how often a large instrument passes over the hands (occlusion).
        mocap: drive the fingers from the real capture (``../shared/data/handmocap``).
        glare: strength of the surgical light's specular highlights and bloom.
        enter_leave: the other people's hands enter and leave the scene.
    """

    speed: str
    persons: int = 1
    gloves: tuple[str, ...] = ("skin",)
    held: str = "none"
    sweeps: float = 0.0
    mocap: bool = False
    glare: float = 1.0
    enter_leave: bool = False


LEVEL_SCENES: dict[str, LevelScene] = {
    "L0": LevelScene("static"),
    "L1": LevelScene("slow", gloves=("cream_latex", "blue_nitrile", "green_nitrile"),
                     held="small", mocap=True, glare=1.3),
    "L2": LevelScene("fast", gloves=("blue_nitrile", "green_nitrile", "cream_latex"),
                     held="large", sweeps=0.25, glare=1.6),
    "L3": LevelScene("static", persons=2, gloves=("cream_latex", "blue_nitrile"),
                     held="small", enter_leave=True),
    "L4": LevelScene("slow", persons=2, gloves=("blue_nitrile", "green_nitrile"), held="small",
                     sweeps=0.15, enter_leave=True, glare=1.3),
    "L5": LevelScene("fast", persons=3, gloves=("cream_latex", "blue_nitrile", "green_nitrile"),
                     held="large", sweeps=0.25, enter_leave=True, glare=1.6),
}


@dataclass(frozen=True)
class Light:
    """A spot light (surgical lamp): position, unit direction, cone cosines, intensity."""

    position: np.ndarray
    direction: np.ndarray
    cos_inner: float
    cos_outer: float
    intensity: float


def surgical_lights(rng: np.random.Generator, glare: float) -> list[Light]:
    """Two lamp heads above the table aimed at the operative field."""
    lights = []
    for k, base in enumerate(([-0.25, -0.35, 2.05], [0.20, 0.40, 2.0])):
        pos = np.array(base) + rng.normal(0, 0.05, 3)
        target = np.array([-0.05, 0.0, TABLE_TOP_Z_M]) + rng.normal(0, 0.05, 3)
        d = target - pos
        d /= np.linalg.norm(d)
        power = (1.1 if k == 0 else 0.6) * glare * (pos[2] - TABLE_TOP_Z_M) ** 2
        lights.append(Light(pos, d, np.cos(np.radians(18)), np.cos(np.radians(32)), power))
    return lights


def shade(pos: np.ndarray, normal: np.ndarray, albedo: np.ndarray, specular: np.ndarray,
          shininess: np.ndarray, eye: np.ndarray, lights: list[Light],
          ambient: float = 0.32) -> np.ndarray:  # fmt: skip
    """Linear RGB ``(N, 3)`` of surface points (two-sided Blinn-Phong under spot lights)."""
    f32 = np.float32

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(np.sqrt(np.einsum("nc,nc->n", v, v)), 1e-9)[:, None]

    pos = pos.astype(f32)
    view = unit(eye.astype(f32) - pos)
    n = unit(normal.astype(f32))
    n *= np.where(np.einsum("nc,nc->n", n, view) < 0, f32(-1), f32(1))[:, None]  # face us
    albedo = albedo.astype(f32)
    out = f32(ambient) * albedo
    warm = np.array([1.0, 0.97, 0.90], f32)
    for lt in lights:
        L = lt.position.astype(f32) - pos
        d2 = np.einsum("nc,nc->n", L, L)
        L /= np.sqrt(d2)[:, None]
        cone = np.clip(((-L @ lt.direction.astype(f32)) - f32(lt.cos_outer))
                       / f32(lt.cos_inner - lt.cos_outer), 0, 1)  # fmt: skip
        power = f32(lt.intensity) * cone**2 / d2
        ndl = np.clip(np.einsum("nc,nc->n", n, L), 0, None)
        half = unit(L + view)
        spec = specular * np.clip(np.einsum("nc,nc->n", n, half), 0, None) ** shininess
        spec *= ndl > 0
        out += ((power * ndl)[:, None] * albedo + (power * spec)[:, None]) * warm
    return out


# --------------------------------------------------------------------------------- the room
def static_scene(rng: np.random.Generator) -> Mesh:
    """Floor, walls, the draped table with the patient under it, a Mayo stand, and metal
    instruments lying on the drape."""
    z = TABLE_TOP_Z_M
    drape = Material(DRAPE[int(rng.integers(2))], 0.02, 10.0)
    floor = Material((0.50, 0.53, 0.52), 0.1, 30.0)
    wall = Material((0.62, 0.70, 0.68), 0.02, 10.0)
    ex, ey, ez = np.eye(3)
    parts = [plane([0, 0, 0], ex, ey, 9.0, 9.0, 18, 18, floor, SCENE_ID),
             plane([0, 0, 3.0], ey, ex, 9.0, 9.0, 18, 18, wall, SCENE_ID)]
    for sign in (-1, 1):
        parts.append(plane([4.5 * sign, 0, 1.5], ey * -sign, ez, 9.0, 3.0, 18, 6, wall, SCENE_ID))
        parts.append(plane([0, 4.5 * sign, 1.5], ex * sign, ez, 9.0, 3.0, 18, 6, wall, SCENE_ID))
    parts.append(plane([0, 0, z], ex, ey, 1.3, 2.2, 26, 44, drape, SCENE_ID))
    for sign in (-1, 1):  # drape hanging down the sides
        parts.append(plane([0.65 * sign, 0, z - 0.25], ey * sign, ez, 2.2, 0.5, 44, 10, drape,
                           SCENE_ID))  # fmt: skip
        parts.append(plane([0, 1.1 * sign, z - 0.25], ex * -sign, ez, 1.3, 0.5, 26, 10, drape,
                           SCENE_ID))  # fmt: skip
    body = Material(DRAPE[int(rng.integers(2))], 0.02, 10.0)
    parts.append(tube([0.32, -0.9, z], [0.32, 0.9, z], 0.11, 0.11, body, SCENE_ID, 20, 24))
    field = Material((0.80, 0.55, 0.50), 0.25, 30.0)  # the exposed operative field
    parts.append(plane([0.14, 0.0, z + 0.002], ex, ey, 0.12, 0.20, 4, 4, field, SCENE_ID))
    stand = Material((0.55, 0.57, 0.60), 0.8, 60.0)
    parts.append(box([-0.25, 0.78, z + 0.05], np.eye(3), [0.22, 0.16, 0.01], stand, SCENE_ID, 4))
    for k in range(5):  # instruments lying on the stand and the drape
        yaw = rng.uniform(-0.6, 0.6)
        R = _yaw(yaw)
        c = ([-0.35 + 0.06 * k, 0.78, z + 0.065] if k < 3 else
             [rng.uniform(-0.25, 0.05), rng.choice([-0.42, 0.42]) + rng.normal(0, 0.03), z + 0.004])
        parts.append(box(c, R, [0.004, 0.07 + 0.02 * k, 0.003], METAL, INSTRUMENT_ID + 50 + k))
    return Mesh.concat(parts)


def _yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------- the motion
@dataclass(frozen=True, eq=False)
class Motion:
    """Everything that moves, over T frames, for H hands.

    Attributes:
        joints: ``(T, H, 21, 3)`` the truth joints (the posed mesh skeletons), metres.
        vertices, normals: per hand ``(T, V, 3)`` skinned mesh.
        forearm: ``(T, H, 3)`` unit direction from each wrist towards its elbow.
        models: per hand its :class:`HandModel`.
        glove: per hand its glove material; sleeve: per hand the sleeve material.
        bare: per hand True when the hand is ungloved (the forearm shows skin).
        sweeps: ``(T,)`` phase in [0, 1] of an instrument passing over the hands, NaN when none.
        gloves: per hand the glove's name.
    """

    joints: np.ndarray
    vertices: list[np.ndarray]
    normals: list[np.ndarray]
    forearm: np.ndarray
    models: tuple[HandModel, ...]
    glove: tuple[Material, ...]
    sleeve: tuple[Material, ...]
    bare: tuple[bool, ...]
    sweeps: np.ndarray
    gloves: tuple[str, ...]


def _presence(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """``(n,)`` in [0, 1]: 0 while a helper's hands are in the scene, 1 while away; they
    leave and come back once or twice, moving over about 0.7 s."""
    away = np.zeros(n)
    for _ in range(int(rng.integers(1, 3))):
        start = int(rng.integers(0, max(n - 1, 1)))
        away[start:start + int(rng.uniform(1.5, 4.0) * fps)] = 1.0
    return np.clip(gaussian_filter1d(away, 0.25 * fps), 0.0, 1.0)


def _sweep_phase(rng: np.random.Generator, n: int, fps: float, rate: float) -> np.ndarray:
    phase = np.full(n, np.nan)
    if rate <= 0:
        return phase
    t = 0.5 * fps
    while t < n:
        t += rng.exponential(fps / rate)
        dur = int(rng.uniform(0.8, 1.5) * fps)
        a = int(t)
        if a >= n:
            break
        phase[a:a + dur] = np.linspace(0.0, 1.0, dur)[: n - a]
        t += dur
    return phase


def _materials(rng: np.random.Generator, level: LevelScene, n_hands: int):
    glove, sleeve, bare, names = [], [], [], []
    for p in range(n_hands // 2):
        name = level.gloves[int(rng.integers(len(level.gloves)))] if p else level.gloves[0]
        col = GLOVES[name]
        skin = list(SKIN.values())[int(rng.integers(len(SKIN)))]
        mat = (Material(skin, 0.08, 15.0) if col is None else Material(col, 0.35, 45.0))
        gown = Material(GOWN[int(rng.integers(2))], 0.03, 10.0)
        for _ in range(2):
            glove.append(mat)
            sleeve.append(gown)
            bare.append(col is None)
            names.append(name)
    return tuple(glove), tuple(sleeve), tuple(bare), tuple(names)


def make_motion(level: LevelScene, n: int, fps: float, rng: np.random.Generator,
                mocap_path=None) -> Motion:  # fmt: skip
    """Hands posed from :func:`mvhand.bench.synth.person_motion`, skinned, lifted off the
    table, helpers entering and leaving."""
    mocap = load_mocap(mocap_path) if level.mocap else None
    targets = np.concatenate([person_motion(n, fps, level.speed, p, rng, mocap if p == 0 else None)
                              for p in range(level.persons)], axis=1)  # fmt: skip
    H = targets.shape[1]
    models = tuple(load_hand("left" if h % 2 == 0 else "right") for h in range(H))
    poses = np.stack([[models[h].pose_from_joints(targets[t, h]) for h in range(H)]
                      for t in range(n)])  # (T, H, J, 4, 4)  # fmt: skip
    for h in range(2, H):  # helpers step back from the table while away
        away = _presence(rng, n, fps) if level.enter_leave else np.zeros(n)
        back = poses[:, h, :, :3, 3].mean(axis=(0, 1)) * np.array([1.0, 1.0, 0.0])
        back /= max(np.linalg.norm(back), 1e-9)
        poses[:, h, :, :3, 3] += (away[:, None] * 0.9)[:, :, None] * (back + [0, 0, -0.3])
    verts, norms = [], []
    for h in range(H):
        vn = [models[h].skin(poses[t, h]) for t in range(n)]
        v = np.stack([a for a, _ in vn])
        need = np.maximum(TABLE_TOP_Z_M + 0.006 - v[..., 2].min(1), 0.0)
        lift = np.maximum(gaussian_filter1d(maximum_filter1d(need, 9), 2.0), need)
        v[..., 2] += lift[:, None]
        poses[:, h, :, 2, 3] += lift[:, None]
        verts.append(v)
        norms.append(np.stack([b for _, b in vn]))
    joints = np.stack([np.stack([models[h].joints21(poses[t, h]) for h in range(H)])
                       for t in range(n)])  # fmt: skip
    fore = np.stack([np.stack([models[h].forearm_axis(poses[t, h]) for h in range(H)])
                     for t in range(n)])  # fmt: skip
    fore = _elbow_down(fore)
    glove, sleeve, bare, names = _materials(rng, level, H)
    return Motion(joints, verts, norms, fore, models, glove, sleeve, bare,
                  _sweep_phase(rng, n, fps, level.sweeps), names)  # fmt: skip


def _elbow_down(axis: np.ndarray) -> np.ndarray:
    """Forearm directions ``(..., 3)`` kept within 8 degrees of horizontal: a surgeon working
    over a table holds the forearms about level with the hands (not up in the air, not
    through the table)."""
    flat = axis * [1.0, 1.0, 0.0]
    flat /= np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-9)
    elev = np.clip(np.arcsin(np.clip(axis[..., 2], -1, 1)), np.radians(-8), np.radians(8))
    return flat * np.cos(elev)[..., None] + np.array([0.0, 0.0, 1.0]) * np.sin(elev)[..., None]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _held(level: LevelScene, j: np.ndarray, h: int) -> list[Mesh]:
    """Instruments held by hand ``h`` (joints ``j`` (21, 3)) of the level."""
    out = []
    person_base = INSTRUMENT_ID + 10 * (h // 2)
    if h % 2 == 1 and level.held in ("small", "large"):  # needle holder in the right hand
        c = (j[4] + j[8]) / 2
        a = _unit(j[8] - j[5] + 0.3 * (j[8] - j[0]))
        out.append(tube(c - 0.03 * a, c + 0.12 * a, 0.0035, 0.002, METAL, person_base, 8, 3))
    if h % 2 == 0 and level.held == "large":  # retractor in the left hand
        a = _unit(j[9] - j[0])
        side = _unit(j[5] - j[17])
        nrm = _unit(np.cross(a, side))
        blade_dir = _unit(a - 0.8 * nrm)
        c = (j[0] + j[9]) / 2 + 0.11 * blade_dir + 0.015 * nrm
        R = np.column_stack([blade_dir, side, _unit(np.cross(blade_dir, side))])
        out.append(box(c, R, [0.12, 0.016, 0.002], METAL, person_base + 1, 3))
    return out


def frame_mesh(motion: Motion, level: LevelScene, t: int) -> Mesh:
    """The moving geometry of frame ``t``: hands, forearms, held and passing instruments."""
    parts = []
    for h, model in enumerate(motion.models):
        v, n = motion.vertices[h][t], motion.normals[h][t]
        parts.append(make_mesh(v, n, model.mesh.faces, motion.glove[h], HAND_ID + h))
        w, a = motion.joints[t, h, 0], motion.forearm[t, h]
        if motion.bare[h]:
            parts.append(tube(w + 0.012 * a, w + 0.2 * a, 0.026, 0.034, motion.glove[h],
                              FOREARM_ID + h))  # fmt: skip
            parts.append(tube(w + 0.19 * a, w + 0.42 * a, 0.042, 0.05, motion.sleeve[h],
                              FOREARM_ID + h))  # fmt: skip
        else:  # glove cuff over the gown's sleeve
            parts.append(tube(w + 0.012 * a, w + 0.07 * a, 0.028, 0.036, motion.glove[h],
                              FOREARM_ID + h))  # fmt: skip
            parts.append(tube(w + 0.06 * a, w + 0.42 * a, 0.038, 0.05, motion.sleeve[h],
                              FOREARM_ID + h))  # fmt: skip
        parts.append(tube(w + 0.42 * a, w + 0.47 * a, 0.05, 0.025, motion.sleeve[h],
                          FOREARM_ID + h, rings=2))  # the elbow, rounded off
        parts += _held(level, motion.joints[t, h], h)
    phase = motion.sweeps[t]
    if np.isfinite(phase):  # an assistant's instrument passing over the hands
        c = motion.joints[t, :2, 0].mean(0) + [0.0, 0.0, 0.09]
        y = -0.45 + 0.9 * phase
        p0 = c + [0.25, y - 0.05, 0.05]
        p1 = c + [-0.12, y + 0.02, -0.02]
        parts.append(tube(p0, p1, 0.007, 0.005, METAL, INSTRUMENT_ID + 2, 10, 4))
    return Mesh.concat(parts)
