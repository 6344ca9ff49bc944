"""Synthetic operating-room benchmark sequences with exact ground truth.

World frame: metres, z up, the table top at z = 0.9 m centred on the origin. Person 0 (the
surgeon) stands at -x facing +x; further people (levels L3 and L5) stand at the other sides.

What is simulated, per level (see :data:`LEVEL_PRESETS`):

- A rig of far-field (wall, about 3.2 m) and near-field (about 1.6 m) 4K portrait cameras.
- Hand motion: procedural (static with tremor, slow, fast; smooth random wrist paths, wrist
  rotation, grip), or articulation and wrist rotation retargeted from the real hand capture in
  ``../shared/data/handmocap`` (level L1, when present) onto a hand with constant bone lengths.
- 2D detections with a real detector's failure modes: per-joint noise that grows with distance,
  self-occlusion and motion blur and is correlated in time; dropouts; hands occluded by
  instruments (some joints or the whole hand) or by staff (whole views) for stretches of time,
  where the detector either misses or hallucinates; left/right swaps; gross outliers of joints
  and of whole hands; in multi-person levels, another person's hand detected as the surgeon's;
  scores that fall with the error (but not for swaps and wrong-person detections).
- Keyframe 2D labels: the exact projection of the ground truth, with COCO visibility.

Multi-person representation: the 3D ground truth and the 2D labels hold every person's hands
(``hand_names``); the detections hold the primary person's two hands only, as the single-person
3D core expects; the other people appear in them as distractors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from scipy.spatial.transform import Rotation

from mvhand.bench.dataset import (
    HAND_BOX_SCALE,
    LEVELS,
    Annotations2D,
    GroundTruth3D,
    Problems,
    SequenceInfo,
    hand_names,
    read_manifest,
    write_manifest,
    write_sequence,
)
from mvhand.bench.detsim import (
    Visibility,
    events,
    self_occlusion,
    simulate_detections,
    static_occluders,
    tool_occlusion,
)
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.skeleton import FINGER_JOINTS, N_JOINTS
from mvhand.core.synthetic import hand_pose, look_at

log = logging.getLogger(__name__)

TABLE_TOP_Z_M = 0.9
#: Where the real hand capture lives, relative to the project root.
MOCAP_RELATIVE = Path("..") / "shared" / "data" / "handmocap" / "right_3d_reference_0123.npy"


@dataclass(frozen=True)
class LevelPreset:
    """How hard one complexity level is.

    Attributes:
        speed: hand motion, "static", "slow" or "fast".
        persons: people at the table (person 0 is the primary).
        mocap: drive the articulation from the real hand capture when it is present.
        noise_px: base per-axis 2D noise (px, 4K) of a joint 1.6 m from the camera; it is
            correlated over time (AR(1), coefficient 0.8), as a detector on similar frames is.
        tool_rate: instrument occlusion events per view and hand per second.
        tool_whole: fraction of instrument events that hide the whole hand (else a finger).
        staff_rate: staff occlusion events (a whole view) per view per second.
        swap_rate: left/right swap starts per view per frame.
        outlier_rate: gross joint outliers per joint.
        hand_outlier_rate: whole-hand outliers (the detector on the wrong object) per hand.
        dropout: probability that a visible joint is missing.
        distractor_rate: events per view and hand per second in which another person's hand
            is detected as the primary's.
        narrow_views: fraction of cameras with a cropped field of view (partial observability).
    """

    speed: str
    persons: int = 1
    mocap: bool = False
    noise_px: float = 5.0
    tool_rate: float = 0.03
    tool_whole: float = 0.2
    staff_rate: float = 0.0
    swap_rate: float = 0.002
    outlier_rate: float = 0.01
    hand_outlier_rate: float = 0.002
    dropout: float = 0.02
    distractor_rate: float = 0.0
    narrow_views: float = 0.0


LEVEL_PRESETS: dict[str, LevelPreset] = {
    "L0": LevelPreset("static", swap_rate=0.001),
    "L1": LevelPreset("slow", mocap=True, tool_rate=0.10, tool_whole=0.2, staff_rate=0.01,
                      swap_rate=0.002, outlier_rate=0.015, hand_outlier_rate=0.003,
                      dropout=0.03),  # fmt: skip
    "L2": LevelPreset("fast", tool_rate=0.15, tool_whole=0.6, staff_rate=0.02, swap_rate=0.003,
                      outlier_rate=0.02, hand_outlier_rate=0.005, dropout=0.04),  # fmt: skip
    "L3": LevelPreset("static", persons=2, tool_rate=0.05, tool_whole=0.3, staff_rate=0.05,
                      swap_rate=0.004, distractor_rate=0.05),  # fmt: skip
    "L4": LevelPreset("slow", tool_rate=0.15, tool_whole=0.5, staff_rate=0.06, swap_rate=0.004,
                      outlier_rate=0.015, dropout=0.04, narrow_views=0.3),  # fmt: skip
    "L5": LevelPreset("fast", persons=3, tool_rate=0.15, tool_whole=0.5, staff_rate=0.05,
                      swap_rate=0.006, outlier_rate=0.02, hand_outlier_rate=0.005,
                      distractor_rate=0.08, dropout=0.04),  # fmt: skip
}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes:
        level: complexity level, L0-L5.
        n_cameras: cameras in the rig (a third far-field, the rest near-field).
        n_frames: frames per sequence.
        fps: frame rate.
        seed: seeds everything; the same config gives the same files.
        n_keyframes: labeled frames per sequence (evenly spaced).
        size_px: image (width, height); 4K portrait by default.
        mocap_path: the real hand capture (None: procedural motion only).
    """

    level: str = "L1"
    n_cameras: int = 12
    n_frames: int = 300
    fps: float = 30.0
    seed: int = 0
    n_keyframes: int = 10
    size_px: tuple[int, int] = (2160, 3840)
    mocap_path: Path | None = None


@dataclass(frozen=True, eq=False)
class SynthSequence:
    """A generated sequence: what :func:`mvhand.bench.dataset.write_sequence` writes."""

    info: SequenceInfo
    rig: Rig
    gt3d: GroundTruth3D
    annotations: Annotations2D
    detections: Keypoints2D


# ------------------------------------------------------------------------------------- rig
def make_bench_rig(n_cameras: int = 12, seed: int = 0, size_px: tuple[int, int] = (2160, 3840),
                   n_far: int | None = None) -> Rig:  # fmt: skip
    """An OR rig: ``n_far`` far-field wall cameras (default a third) and near-field cameras.

    Far cameras: 2.9-3.4 m from the table centre, 2.5-2.8 m high, focal about 3000 px.
    Near cameras: 1.3-1.8 m, 1.8-2.2 m high, focal about 1900 px. All aim near the hands
    (jittered), with mild radial distortion; cameras named ``cam_1 .. cam_N``.
    """
    rng = np.random.default_rng(seed)
    n_far = max(1, n_cameras // 3) if n_far is None else n_far
    cams = []
    for i in range(n_cameras):
        far = i < n_far
        k = i if far else i - n_far
        n_group = n_far if far else n_cameras - n_far
        azim = 2 * np.pi * (k + (0.5 if far else 0.0)) / max(n_group, 1) + rng.uniform(-0.2, 0.2)
        radius = rng.uniform(2.9, 3.4) if far else rng.uniform(1.3, 1.8)
        height = rng.uniform(2.5, 2.8) if far else rng.uniform(1.8, 2.2)
        center = [radius * np.cos(azim), radius * np.sin(azim), height]
        target = np.array([0.0, 0.0, TABLE_TOP_Z_M + 0.12]) + rng.normal(0, [0.06, 0.06, 0.03])
        focal = (3000.0 if far else 1900.0) * rng.uniform(0.95, 1.05)
        dist = [rng.uniform(-0.06, 0.0), rng.uniform(0.0, 0.02), 0.0, 0.0, 0.0]
        cams.append(look_at(f"cam_{i + 1}", center, target, size_px, focal, dist))
    return Rig(tuple(cams), "m")


# ---------------------------------------------------------------------------------- motion
_MOTION = {  # wrist amplitude (m), cutoff (Hz), rotation amplitude (rad), grip cutoff (Hz)
    "static": (0.003, 0.1, 0.02, 0.05),
    "slow": (0.04, 0.3, 0.2, 0.2),
    "fast": (0.10, 0.9, 0.45, 0.6),
}
#: Per person: shoulder-line centre (x, y) on the table and facing direction (rad, world yaw).
_PERSONS = (((-0.12, 0.0), 0.0), ((0.22, 0.04), np.pi), ((0.02, 0.30), -np.pi / 2))


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, fps: float,
                  cutoff_hz: float) -> np.ndarray:  # fmt: skip
    """``(n, dims)`` smooth random signal with unit standard deviation, band-limited."""
    sigma = max(fps / (2 * np.pi * cutoff_hz), 0.5)
    pad = int(4 * sigma) + 1
    white = rng.normal(size=(n + 2 * pad, dims))
    smooth = gaussian_filter1d(white, sigma, axis=0)[pad:pad + n]
    return smooth / max(smooth.std(), 1e-9)


def _base_rotation(yaw: float, side: float) -> Rotation:
    """Hand frame to world: fingers forward (yaw), palm down, turned slightly inwards."""
    inward = -side * 0.35
    fwd = np.array([np.cos(yaw + inward), np.sin(yaw + inward), -0.25])
    fwd /= np.linalg.norm(fwd)
    palm = np.array([0.0, 0.0, -1.0])
    palm -= fwd * (palm @ fwd)
    palm /= np.linalg.norm(palm)
    return Rotation.from_matrix(np.column_stack([np.cross(fwd, palm), fwd, palm]))


def procedural_flexion(rng: np.random.Generator, n: int, fps: float,
                       cutoff_hz: float) -> np.ndarray:  # fmt: skip
    """``(n, 5, 3)`` finger flexion (rad): a shared grip plus per-finger variation."""
    grip = 0.5 + 0.35 * np.tanh(_smooth_noise(rng, n, 1, fps, cutoff_hz))
    own = 0.15 * _smooth_noise(rng, n, 5, fps, cutoff_hz * 1.5)
    level = np.clip(grip + own, 0.0, 1.0)  # (n, 5)
    flex = level[..., None] * np.array([1.2, 1.3, 0.8])
    flex[:, 0] = level[:, :1] * np.array([0.2, 0.5, 0.6])
    return flex


def mocap_articulation(points_mm: np.ndarray) -> tuple[np.ndarray, Rotation]:
    """Finger flexion ``(T, 5, 3)`` rad and wrist rotations (hand frame to world) of a right
    hand captured as ``(T, 21, 3)`` joints, to retarget onto a hand of fixed bone lengths."""
    p = np.asarray(points_mm, dtype=float)
    w = p[:, 0]
    y = p[:, 9] - w
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    x = p[:, 5] - p[:, 17]
    x -= y * (x * y).sum(-1, keepdims=True)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, y)  # palm side: where the fingers curl to
    rot = Rotation.from_matrix(np.stack([x, y, z], axis=-1))
    flex = np.zeros((len(p), 5, 3))
    for f, joints in enumerate(FINGER_JOINTS):
        seg = np.diff(p[:, [0, *joints]], axis=1)  # (T, 4, 3): palm bone + 3 segments
        seg /= np.linalg.norm(seg, axis=-1, keepdims=True)
        cos = np.clip((seg[:, :-1] * seg[:, 1:]).sum(-1), -1, 1)
        ang = np.arccos(cos)
        if f > 0:  # MCP flexion: towards the palm side, signed
            ang[:, 0] = np.arctan2((seg[:, 1] * z).sum(-1), (seg[:, 1] * y).sum(-1))
        else:
            ang[:, 0] = ang[:, 0] - 0.3
        flex[:, f] = np.clip(ang, 0.0, 1.7)
    return gaussian_filter1d(flex, 1.5, axis=0), rot


def _mocap_track(mocap: np.ndarray, n: int, rng: np.random.Generator, mirror: bool):
    """Resample the capture to ``n`` frames (ping-pong from a random start) and retarget."""
    T = len(mocap)
    idx = (int(rng.integers(0, T)) + np.arange(n)) % (2 * T - 2)
    idx = np.where(idx >= T, 2 * T - 2 - idx, idx)
    flex, rot = mocap_articulation(mocap[idx])
    rel = rot[0].inv() * rot  # rotation relative to the first frame, in the world
    mat = rel.as_matrix()
    if mirror:  # the left hand moves as the mirror image of the right
        M = np.diag([-1.0, 1.0, 1.0])
        mat = M @ mat @ M
    return flex, Rotation.from_matrix(mat)


def person_motion(n: int, fps: float, speed: str, person: int, rng: np.random.Generator,
                  mocap: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Both hands of one person over the table: ``(n, 2, 21, 3)`` metres (0 left, 1 right).

    Args:
        n: frames; fps: frame rate; speed: "static", "slow" or "fast".
        person: which place at the table (0, 1 or 2).
        rng: the random generator.
        mocap: optional real right-hand capture ``(T, 21, 3)`` (any units) driving the
            articulation and wrist rotation of both hands (the left mirrored).
    """
    return _hands_at(n, fps, speed, _PERSONS[person % len(_PERSONS)], rng, mocap)


def _hands_at(n: int, fps: float, speed: str, place: tuple, rng: np.random.Generator,
              mocap: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """:func:`person_motion` for a place ``((x, y), yaw)`` at the table."""
    amp, cutoff, rot_amp, grip_cut = _MOTION[speed]
    (cx, cy), yaw = place
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    out = np.zeros((n, 2, N_JOINTS, 3))
    for h, side in enumerate((-1.0, 1.0)):
        scale = rng.uniform(0.92, 1.08)
        anchor = np.array([cx, cy, TABLE_TOP_Z_M + 0.14]) + fwd * 0.05 + right * side * 0.14
        wrist = anchor + amp * _smooth_noise(rng, n, 3, fps, cutoff) * [1.0, 1.0, 0.5]
        wrist[:, 2] = np.maximum(wrist[:, 2], TABLE_TOP_Z_M + 0.07)
        wobble = Rotation.from_rotvec(rot_amp * _smooth_noise(rng, n, 3, fps, cutoff))
        if mocap is not None:
            flex, rel = _mocap_track(mocap, n, rng, mirror=h == 0)
            wobble = Rotation.from_rotvec(0.3 * wobble.as_rotvec()) * rel
        else:
            flex = procedural_flexion(rng, n, fps, grip_cut)
        rot = wobble * _base_rotation(yaw, side)
        for t in range(n):
            out[t, h] = rot[t].apply(hand_pose(flex[t], scale, left=h == 0)) + wrist[t]
        out[:, h, :, 2] += _table_lift(out[:, h, :, 2].min(-1))[:, None]
    return out


def _table_lift(min_z: np.ndarray) -> np.ndarray:
    """Smooth upward shift ``(T,)`` keeping every joint 1 cm above the table top."""
    need = np.maximum(TABLE_TOP_Z_M + 0.01 - min_z, 0.0)
    smooth = gaussian_filter1d(maximum_filter1d(need, 9), 2.0)
    return np.maximum(smooth, need)


def load_mocap(path: Path | None) -> np.ndarray | None:
    """The real capture ``(T, 21, 3)`` if ``path`` exists and is usable, else None."""
    if path is None or not Path(path).is_file():
        return None
    data = np.load(path, allow_pickle=False)
    if data.ndim != 3 or data.shape[1:] != (N_JOINTS, 3) or not np.isfinite(data).all():
        log.warning("%s: not a (T, 21, 3) finite capture; using procedural motion", path)
        return None
    return data


def default_mocap_path() -> Path | None:
    """``../shared/data/handmocap/right_3d_reference_0123.npy`` next to the project, if there."""
    root = Path(__file__).resolve().parents[2]
    for base in (root, Path.cwd()):
        candidate = (base / MOCAP_RELATIVE).resolve()
        if candidate.is_file():
            return candidate
    return None


# -------------------------------------------------------------------------------- sequences
def _visibility(rng: np.random.Generator, rig: Rig, hands: np.ndarray, preset: LevelPreset,
                fps: float) -> Visibility:  # fmt: skip
    """Projections and every kind of occlusion of all hands ``(T, H, 21, 3)``."""
    T, H = hands.shape[:2]
    C = len(rig)
    true_px = rig.project(hands)
    depth = np.stack([c.world_to_cam(hands)[..., 2] for c in rig.cameras])
    size = np.array([c.size_px for c in rig.cameras], float)[:, None, None, None]
    in_image = (depth > 0.05) & (true_px >= 0).all(-1) & (true_px <= size - 1).all(-1)
    selfocc = np.concatenate([self_occlusion(rig, hands[:, p:p + 2]) for p in range(0, H, 2)],
                             axis=2)  # fmt: skip
    tool = tool_occlusion(rng, C, T, H, preset.tool_rate / fps, preset.tool_whole)
    staff = events(rng, (C,), T, preset.staff_rate / fps, (20, 90))  # (C, T)
    hidden = np.broadcast_to(staff[:, :, None, None], (C, T, H, N_JOINTS)).copy()
    hidden |= static_occluders(rng, rig, true_px, preset.narrow_views)
    return Visibility(true_px, depth, in_image, selfocc, tool, hidden)


def _labels(vis: Visibility, frames: np.ndarray, rig: Rig,
            hands: tuple[str, ...]) -> Annotations2D:  # fmt: skip
    """Exact keyframe labels: a hand is labeled in a view if >= 5 of its joints are visible."""
    v = vis.visibility[:, frames]  # (C, K, H, 21)
    annotated = (v == 2).sum(-1) >= 5
    v = np.where(annotated[..., None], v, 0).astype(np.int8)
    kp = np.where((v > 0)[..., None], vis.true_px[:, frames], np.nan)
    lo = np.where((v > 0)[..., None], kp, np.inf).min(-2)
    hi = np.where((v > 0)[..., None], kp, -np.inf).max(-2)
    span = np.where(annotated[..., None], hi - lo, 0.0)
    area = span[..., 0] * span[..., 1] * HAND_BOX_SCALE**2
    labeled = np.ones(v.shape[:2], bool)
    return Annotations2D(kp, v, annotated, area, labeled, frames.astype(np.int64), rig.names,
                         hands)  # fmt: skip


def synthesize(cfg: SynthConfig) -> SynthSequence:
    """Generate one sequence (deterministic in ``cfg``).

    Raises:
        ValueError: an unknown level or too few frames for the keyframes.
    """
    if cfg.level not in LEVEL_PRESETS:
        raise ValueError(f"level must be one of {list(LEVEL_PRESETS)}, got {cfg.level!r}")
    if cfg.n_frames < cfg.n_keyframes or cfg.n_cameras < 2:
        raise ValueError("need at least 2 cameras and as many frames as keyframes")
    preset = LEVEL_PRESETS[cfg.level]
    level_seed = int(cfg.level[1:])
    rng = np.random.default_rng([cfg.seed, level_seed])
    rig = make_bench_rig(cfg.n_cameras, seed=cfg.seed, size_px=cfg.size_px)
    mocap = load_mocap(cfg.mocap_path) if preset.mocap else None
    hands = np.concatenate([person_motion(cfg.n_frames, cfg.fps, preset.speed, p, rng,
                                          mocap if p == 0 else None)
                            for p in range(preset.persons)], axis=1)  # fmt: skip
    names = hand_names(preset.persons)
    vis = _visibility(rng, rig, hands, preset, cfg.fps)
    kp, sc = simulate_detections(rng, rig, vis, preset, cfg.fps)
    detections = Keypoints2D(kp, sc, rig.names, fps=cfg.fps)
    step = cfg.n_frames / cfg.n_keyframes
    frames = np.floor(step / 2 + step * np.arange(cfg.n_keyframes)).astype(np.int64)
    labels = _labels(vis, frames, rig, names)
    motion = "handmocap (retargeted)" if mocap is not None else f"procedural {preset.speed}"
    info = SequenceInfo(
        name=f"{cfg.level}_synth_s{cfg.seed}", level=cfg.level, fps=cfg.fps,
        n_frames=cfg.n_frames, n_persons=preset.persons, source="synthetic",
        description=f"synthetic OR sequence, level {cfg.level} ({LEVELS[cfg.level]})",
        metadata={"generator": "mvhand bench synth", "seed": cfg.seed, "motion": motion,
                  "n_cameras": cfg.n_cameras, "preset": _preset_dict(preset)},
    )  # fmt: skip
    gt = GroundTruth3D(hands, np.arange(cfg.n_frames), "m", names)
    return SynthSequence(info, rig, gt, labels, detections)


def _preset_dict(preset: LevelPreset) -> dict:
    return {k: getattr(preset, k) for k in preset.__dataclass_fields__}


def write_benchmark(out: str | Path, levels: tuple[str, ...], cfg: SynthConfig) -> list[Path]:
    """Generate one sequence per level into ``out`` (``<level>_synth_s<seed>/``), and the
    dataset manifest ``dataset.toml`` (merged with the sequences already listed there)."""
    out = Path(out)
    paths, infos = [], []
    for level in levels:
        seq = synthesize(replace(cfg, level=level))
        log.info("writing %s", seq.info.name)
        paths.append(write_sequence(out / seq.info.name, seq.info, seq.rig, seq.annotations,
                                    seq.gt3d, seq.detections))  # fmt: skip
        infos.append(seq.info)
    listed = read_manifest(out, Problems()) or []
    kept = [SequenceInfo(str(e["name"]), str(e.get("level", "L0")), cfg.fps, cfg.n_frames)
            for e in listed if str(e["name"]) not in {i.name for i in infos}]  # fmt: skip
    recipe = (f"mvhand bench synth --level {','.join(levels)} --cameras {cfg.n_cameras} "
              f"--frames {cfg.n_frames} --fps {cfg.fps:g} --seed {cfg.seed} "
              f"--keyframes {cfg.n_keyframes}"
              + (" --mocap none" if cfg.mocap_path is None else ""))  # fmt: skip
    write_manifest(out, "mvhand synthetic OR benchmark",
                   "Synthetic operating-room sequences with exact 3D and 2D ground truth.",
                   sorted(kept + infos, key=lambda i: i.name), recipe)  # fmt: skip
    return paths


# ------------------------------------------------------------------- several people (L3-L5)
@dataclass(frozen=True)
class PeoplePreset:
    """A multi-person level for :func:`synthesize_people` (the association benchmark).

    Attributes:
        speed: hand motion of the people at the table.
        at_table: people standing at the table for the whole sequence.
        walkers: distractors who enter, walk through the room and leave (two of them on
            opposite courses cross each other's path).
        noise_px: base 2D noise of a hand joint 1.6 m from a 4K camera.
        miss_rate: probability that a person is not detected in a view and frame.
        mirror_rate: rows whose body model exchanged left and right (hands too).
        swap_rate: rows whose hand side guesses are exchanged.
        wrong_hand_rate: hand slots holding another (nearby) person's hand.
        hand_outlier_rate: hand slots shifted 50-300 px (the detector on the wrong object).
    """

    speed: str
    at_table: int
    walkers: int
    noise_px: float = 5.0
    miss_rate: float = 0.03
    mirror_rate: float = 0.02
    swap_rate: float = 0.02
    wrong_hand_rate: float = 0.01
    hand_outlier_rate: float = 0.005


PEOPLE_PRESETS: dict[str, PeoplePreset] = {
    "L3": PeoplePreset("static", at_table=3, walkers=1),
    "L4": PeoplePreset("slow", at_table=4, walkers=2, miss_rate=0.05, mirror_rate=0.03,
                       swap_rate=0.03, wrong_hand_rate=0.02),  # fmt: skip
    "L5": PeoplePreset("fast", at_table=5, walkers=2, noise_px=6.0, miss_rate=0.06,
                       mirror_rate=0.04, swap_rate=0.04, wrong_hand_rate=0.03,
                       hand_outlier_rate=0.01),  # fmt: skip
}
#: Places at the table: (x, y) of the shoulder line's centre and facing yaw (rad).
_TABLE_PLACES = (((-0.12, 0.0), 0.0), ((0.22, 0.04), np.pi), ((0.02, 0.30), -np.pi / 2),
                 ((0.04, -0.30), np.pi / 2), ((-0.15, 0.28), -np.pi / 3),
                 ((0.25, -0.25), 3 * np.pi / 4))  # fmt: skip


@dataclass(frozen=True, eq=False)
class PeopleSequence:
    """A generated multi-person sequence with the truth of every detection.

    Attributes:
        rig: the cameras.
        detections: every person's detections per camera (no identity across views).
        hands3d: ``(T, G, 2, 21, 3)`` m, every person's true hands (NaN while absent).
        body3d: ``(T, G, 17, 3)`` m, true COCO-17 body joints.
        present: ``(T, G)`` bool.
        true_person: ``(N,)`` the person of each detection row.
        true_hand: ``(N, 2, 2)`` the (person, side) each hand slot really shows, -1 if empty.
        level: the level name.
    """

    rig: Rig
    detections: object
    hands3d: np.ndarray
    body3d: np.ndarray
    present: np.ndarray
    true_person: np.ndarray
    true_hand: np.ndarray
    level: str


def body_from_hands(hands: np.ndarray, place: tuple, standing: bool = True) -> np.ndarray:
    """COCO-17 body joints ``(T, 17, 3)`` of a person at ``place`` whose wrists are the hands'
    ``(T, 2, 21, 3)`` wrists: shoulders 0.3 m behind the place, 1.45 m high, elbows between."""
    (cx, cy), yaw = place
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    T = len(hands)
    cx, cy = np.broadcast_to(cx, (T,)), np.broadcast_to(cy, (T,))
    mid = np.stack([cx, cy, np.full(T, 1.45)], -1) - fwd * 0.30
    b = np.full((T, 17, 3), np.nan)
    head = mid + up * 0.22 + fwd * 0.09
    b[:, 0] = head
    for s, sign in ((0, -1.0), (1, 1.0)):  # left is -right
        b[:, 1 + s] = head + up * 0.03 + sign * right * 0.035 - fwd * 0.02
        b[:, 3 + s] = head + sign * right * 0.075 - fwd * 0.09
        sh = mid + sign * right * 0.19
        wr = hands[:, s, 0]
        b[:, 5 + s], b[:, 9 + s] = sh, wr
        b[:, 7 + s] = (sh + wr) / 2 - up * 0.12 + sign * right * 0.06
        hip = mid - up * 0.5 + sign * right * 0.1
        b[:, 11 + s], b[:, 13 + s], b[:, 15 + s] = hip, hip - up * 0.45, hip - up * 0.85
    return b


def _walker(n: int, fps: float, rng: np.random.Generator, start: np.ndarray, end: np.ndarray,
            t0: int, speed_mps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A person walking from ``start`` to ``end`` (x, y) from frame ``t0``: hands, body,
    presence."""
    d = end - start
    length = float(np.linalg.norm(d))
    yaw = float(np.arctan2(d[1], d[0]))
    t = np.arange(n)
    s = (t - t0) * speed_mps / fps
    present = (s >= 0) & (s <= length)
    pos = start + np.clip(s, 0, length)[:, None] * d / length
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    hands = np.zeros((n, 2, N_JOINTS, 3))
    phase = 2 * np.pi * 0.9 * t / fps
    down = np.array([0.0, 0.0, -1.0])
    rot = Rotation.from_matrix(np.column_stack([fwd, down, np.cross(fwd, down)]))
    for h, sign in ((0, -1.0), (1, 1.0)):
        swing = 0.18 * np.sin(phase + h * np.pi)
        wrist = (np.c_[pos, np.full(n, 0.85)] + sign * right * 0.22 + swing[:, None] * fwd)
        pose = hand_pose(np.full((5, 3), 0.4), rng.uniform(0.92, 1.08), left=h == 0)
        hands[:, h] = rot.apply(pose)[None] + wrist[:, None]
    place = ((pos[:, 0] + fwd[0] * 0.30, pos[:, 1] + fwd[1] * 0.30), yaw)
    body = body_from_hands(hands, place)
    hands[~present], body[~present] = np.nan, np.nan
    return hands, body, present


def _people_truth(cfg: SynthConfig, preset: PeoplePreset, rng: np.random.Generator):
    n, fps = cfg.n_frames, cfg.fps
    hands, bodies, present = [], [], []
    for p in range(preset.at_table):
        place = _TABLE_PLACES[p % len(_TABLE_PLACES)]
        h = _hands_at(n, fps, preset.speed, place, rng)
        hands.append(h)
        bodies.append(body_from_hands(h, place))
        present.append(np.ones(n, bool))
    for w in range(preset.walkers):
        y = 0.75 + 0.55 * w
        start, end = np.array([-2.2, y]), np.array([2.2, y - 0.05])
        if w % 2:
            start, end = end, start
        t0 = int(n * (0.1 + 0.25 * w))
        h, b, pres = _walker(n, fps, rng, start, end, t0, rng.uniform(1.4, 1.8))
        hands.append(h)
        bodies.append(b)
        present.append(pres)
    return np.stack(hands, 1), np.stack(bodies, 1), np.stack(present, 1)


def _visible(rig: Rig, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections ``(C, ..., 2)``, depth and in-image mask of points ``(..., 3)``."""
    px = rig.project(pts)
    depth = np.stack([c.world_to_cam(pts)[..., 2] for c in rig.cameras])
    size = np.array([c.size_px for c in rig.cameras], float)
    size = size.reshape((len(rig),) + (1,) * (pts.ndim - 1) + (2,))
    ok = (depth > 0.1) & (px >= 0).all(-1) & (px <= size - 1).all(-1)
    return px, depth, ok


def _people_noise(rng: np.random.Generator, rig: Rig, px: np.ndarray, depth: np.ndarray,
                  sigma_m: float | None, noise_px: float) -> np.ndarray:  # fmt: skip
    """Gaussian 2D noise: ``sigma_m`` metres at the point's depth, or the hand detector's
    ``noise_px`` growing with depth."""
    f = rig.focal_px.reshape((-1,) + (1,) * (depth.ndim - 1))
    if sigma_m is not None:
        sigma = f * sigma_m / np.maximum(depth, 0.1)
    else:
        sigma = noise_px * (0.5 + 0.5 * np.maximum(depth, 0.1) / 1.6)
    return px + rng.normal(size=px.shape) * np.nan_to_num(sigma)[..., None]


def _people_rows(rng, rig: Rig, hands: np.ndarray, body: np.ndarray, present: np.ndarray,
                 preset: PeoplePreset) -> dict[str, np.ndarray]:  # fmt: skip
    """Every row of detections with its truth (unshuffled)."""
    bpx, bdepth, bok = _visible(rig, body)  # (C, T, G, 17, ...)
    hpx, hdepth, hok = _visible(rig, hands)  # (C, T, G, 2, 21, ...)
    bpx = _people_noise(rng, rig, bpx, bdepth, 0.015, 0.0)
    hpx = _people_noise(rng, rig, hpx, hdepth, None, preset.noise_px)
    C, T, G = bok.shape[:3]
    pres = np.broadcast_to(present[None], (C, T, G))
    body_row = pres & (bok.sum(-1) >= 6) & (rng.random((C, T, G)) >= preset.miss_rate)
    hand_seen = pres[..., None] & (hok.sum(-1) >= 12) & (rng.random((C, T, G, 2)) >= 0.05)
    palm = hand_seen & ~body_row[..., None]
    c, t, g = np.nonzero(body_row)
    pc, pt, pg, ph = np.nonzero(palm)
    n_body, n_palm = len(c), len(pc)
    N = n_body + n_palm
    rows = {"camera": np.r_[c, pc], "frame": np.r_[t, pt], "person": np.r_[g, pg],
            "source": np.r_[np.zeros(n_body, int), np.ones(n_palm, int)]}  # fmt: skip
    b = np.full((N, 17, 2), np.nan)
    b[:n_body] = np.where(bok[c, t, g][..., None], bpx[c, t, g], np.nan)
    hd = np.full((N, 2, N_JOINTS, 2), np.nan)
    truth = np.full((N, 2, 2), -1, dtype=np.int64)
    shown = hand_seen[c, t, g]  # (n_body, 2)
    hd[:n_body] = np.where((shown[..., None] & hok[c, t, g])[..., None], hpx[c, t, g], np.nan)
    truth[:n_body, :, 0] = np.where(shown, g[:, None], -1)
    truth[:n_body, :, 1] = np.where(shown, np.arange(2)[None], -1)
    idx = n_body + np.arange(n_palm)
    hd[idx, ph] = np.where(hok[pc, pt, pg, ph][..., None], hpx[pc, pt, pg, ph], np.nan)
    truth[idx, ph] = np.stack([pg, ph], 1)
    rows.update(body=b, hands=hd, truth=truth)
    _people_errors(rng, rows, hpx, hok, hands, preset)
    return rows


def _people_errors(rng, rows: dict, hpx: np.ndarray, hok: np.ndarray, hands: np.ndarray,
                   preset: PeoplePreset) -> None:  # fmt: skip
    """The detector's mistakes, in place: mirrored bodies, swapped hand guesses, another
    person's hand in a slot, hand outliers."""
    from mvhand.core.people import BODY_MIRROR

    N = len(rows["camera"])
    b, hd, truth = rows["body"], rows["hands"], rows["truth"]
    is_body = rows["source"] == 0
    mirror = is_body & (rng.random(N) < preset.mirror_rate)
    b[mirror] = b[mirror][:, BODY_MIRROR]
    swap = mirror ^ (rng.random(N) < preset.swap_rate)
    hd[swap], truth[swap] = hd[swap][:, ::-1], truth[swap][:, ::-1]
    wrong = np.nonzero(is_body[:, None] & (rng.random((N, 2)) < preset.wrong_hand_rate))
    for n, k in zip(*wrong, strict=True):
        c, t, g = rows["camera"][n], rows["frame"][n], rows["person"][n]
        d = np.linalg.norm(hands[t, :, :, 0] - hands[t, g, k, 0], axis=-1)  # (G, 2)
        d[g] = np.inf
        d[~np.isfinite(d)] = np.inf
        og, oh = np.unravel_index(np.argmin(d), d.shape)
        if np.isfinite(d[og, oh]) and hok[c, t, og, oh].sum() >= 12:
            hd[n, k] = np.where(hok[c, t, og, oh][:, None], hpx[c, t, og, oh], np.nan)
            truth[n, k] = (og, oh)
    out = rng.random((N, 2)) < preset.hand_outlier_rate
    shift = rng.uniform(50, 300, out.sum())[:, None] * _unit_px(rng, out.sum())
    hd[out] += shift[:, None]


def _unit_px(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.cos(a), np.sin(a)], -1)


def synthesize_people(cfg: SynthConfig) -> PeopleSequence:
    """A multi-person sequence of level L3, L4 or L5 (:data:`PEOPLE_PRESETS`): everyone's
    detections in every camera, with no identity across cameras, and the truth of each.

    Deterministic in ``cfg``; independent of :func:`synthesize` (which it leaves unchanged).
    """
    from mvhand.core.people import Detections2D

    if cfg.level not in PEOPLE_PRESETS:
        raise ValueError(f"multi-person levels are {list(PEOPLE_PRESETS)}, got {cfg.level!r}")
    preset = PEOPLE_PRESETS[cfg.level]
    rng = np.random.default_rng([cfg.seed, int(cfg.level[1:]), 1000])
    rig = make_bench_rig(cfg.n_cameras, seed=cfg.seed, size_px=cfg.size_px)
    hands, body, present = _people_truth(cfg, preset, rng)
    rows = _people_rows(rng, rig, hands, body, present, preset)
    N = len(rows["camera"])
    order = rng.permutation(N)  # row order carries no information
    r = {k: v[order] for k, v in rows.items()}
    finite_h = np.isfinite(r["hands"]).all(-1)
    finite_b = np.isfinite(r["body"]).all(-1)
    hs = np.where(finite_h, rng.uniform(0.6, 1.0, finite_h.shape), 0.0)
    bs = np.where(finite_b, rng.uniform(0.5, 1.0, finite_b.shape), 0.0)
    det = Detections2D(r["camera"], r["frame"], r["body"], bs, r["hands"], hs, r["source"],
                       rig.names, cfg.n_frames, cfg.fps)  # fmt: skip
    truth = np.where(finite_h.sum(-1)[..., None] > 0, r["truth"], -1)
    return PeopleSequence(rig, det, hands, body, present, r["person"], truth, cfg.level)


def score_people(seq: PeopleSequence, hands3d: np.ndarray, det_hand_person: np.ndarray,
                 det_side: np.ndarray, near_m: float = 0.05) -> dict:  # fmt: skip
    """How well a multi-person result matches the truth of :func:`synthesize_people`.

    Args:
        seq: the sequence.
        hands3d: ``(T, P, 2, 21, 3)`` m, the result's hands.
        det_hand_person: ``(N, 2)`` result slot of each row's hand slots (-1 none).
        det_side: ``(N, 2)`` result side of each row's hand slots (-1 none).
        near_m: a result hand within this of a true wrist "is" that hand (identity switches).

    Returns:
        ``match`` (result slot per true person, -1 none), ``mpjpe_mm`` per true person and
        side (after matching; NaN when never reconstructed), ``completeness`` (share of
        frames with a true hand present that have the matched result hand), ``id_switches``
        (changes of the result hand nearest to each true hand), ``idf1`` (share of true 2D
        hand detections assigned to the matched person and the right side).
    """
    from scipy.optimize import linear_sum_assignment as lsa

    gt = seq.hands3d  # (T, G, 2, 21, 3)
    T, G = gt.shape[:2]
    P = hands3d.shape[1]
    cost = np.full((G, P), 1e3)
    for g in range(G):
        for p in range(P):
            d = np.linalg.norm(hands3d[:, p, :, 0] - gt[:, g, :, 0], axis=-1)
            present = np.isfinite(gt[:, g, :, 0]).all(-1)
            if np.isfinite(d).sum() >= 3:
                cost[g, p] = np.nanmean(d) + (1 - np.isfinite(d).sum() / present.sum())
    match = np.full(G, -1, dtype=np.int64)
    if P:
        r, c = lsa(cost)
        ok = cost[r, c] < 0.5
        match[r[ok]] = c[ok]
    mpjpe = np.full((G, 2), np.nan)
    complete = np.zeros((G, 2))
    for g in np.flatnonzero(match >= 0):
        e = np.linalg.norm(hands3d[:, match[g]] - gt[:, g], axis=-1) * 1000  # (T, 2, 21)
        mpjpe[g] = np.nanmean(e, axis=(0, 2)) if np.isfinite(e).any() else np.nan
        present = np.isfinite(gt[:, g, :, 0]).all(-1)
        got = np.isfinite(hands3d[:, match[g], :, 0]).all(-1)
        complete[g] = (present & got).sum(0) / np.maximum(present.sum(0), 1)
    switches = _id_switches(gt, hands3d, near_m)
    has = seq.true_hand[..., 0] >= 0
    res_person = np.where(det_side >= 0, det_hand_person, -1)
    want = np.where(has, match[np.maximum(seq.true_hand[..., 0], 0)], -2)
    right = has & (res_person == want) & (det_side == seq.true_hand[..., 1]) & (want >= 0)
    return {"match": match, "mpjpe_mm": mpjpe, "completeness": complete,
            "id_switches": switches, "idf1": float(right.sum() / max(has.sum(), 1))}


def _id_switches(gt: np.ndarray, hands3d: np.ndarray, near_m: float) -> int:
    """Times the result hand nearest (< near_m) to a true hand changes, over all true hands."""
    T, G = gt.shape[:2]
    P = hands3d.shape[1]
    if P == 0:
        return 0
    res = hands3d[:, :, :, 0].reshape(T, 2 * P, 3)
    n = 0
    for g in range(G):
        for s in range(2):
            d = np.linalg.norm(res - gt[:, g, s, 0][:, None], axis=-1)  # (T, 2P)
            d = np.where(np.isfinite(d), d, np.inf)
            who = np.where(d.min(1) < near_m, d.argmin(1), -1)
            seen = who[who >= 0]
            n += int((np.diff(seen) != 0).sum())
    return n
