"""BVH of the fitted kinematic hand: its skeleton, and its joint rotations over time.

One file per hand (Blender's importer takes one root per file). The hierarchy is the kinematic
hand of :mod:`mvhand.fit.kinematic`: the root is the wrist (position and rotation channels, the
palm frame), whose children are the thumb CMC and the four finger MCPs at their palm offsets;
each finger is a chain of three joints along the bone's ``y`` axis ending in an ``End Site``
(the tip), offsets from the fitted bone lengths. Every joint's channels are ``Zrotation
Xrotation Yrotation`` (local rotation ``Rz @ Rx @ Ry``, degrees), so a finger's flexion is its
``Xrotation`` and the MCP abduction its ``Zrotation``. At zero rotations the fingers point
along the palm's ``y``.

The left hand is a mirrored right hand (the fit's convention): its offsets are mirrored through
x = 0 and its rotations conjugated by that reflection, so both hands' files are plain
right-handed BVH. Frames without a fit repeat the nearest fitted frame (BVH has no "missing").
:func:`read_bvh` and :func:`bvh_positions` parse a BVH file and evaluate its forward kinematics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M
from mvhand.errors import InputError
from mvhand.export.markers import UP_ROTATION
from mvhand.io.atomic import write_text_atomic

ROTATION_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition") + ROTATION_CHANNELS
FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
#: The three joints of each finger chain (the fourth point, the tip, is the End Site).
CHAIN_JOINTS = (("cmc", "mcp", "ip"), ("mcp", "pip", "dip"))
MIRROR = np.diag([-1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class BvhSkeleton:
    """A BVH hierarchy and its motion.

    Attributes:
        names: joint names (End Sites are ``<parent>_end``), parents first.
        parents: parent index per joint (-1 for the root).
        offsets: ``(N, 3)`` offset of each joint from its parent, in the parent's frame.
        end_site: True for End Sites (no channels).
        motion: ``(T, N, 6)`` per joint [x, y, z position, then Z, X, Y rotation deg]; only the
            root's position is used.
        frame_time_s: seconds per frame.
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    end_site: np.ndarray
    motion: np.ndarray
    frame_time_s: float


def _local_rotations(params: np.ndarray) -> list[np.ndarray]:
    """Per joint of the kinematic hand ``(T, 3, 3)`` local rotations, in skeleton order:
    wrist (the palm rotation), then per finger its three chain joints."""
    from mvhand.fit.kinematic import THUMB_REST_RAD
    from mvhand.fit.rotation import axis_rotation, rodrigues

    ang = params[:, 6:]
    out = [rodrigues(params[:, :3])]
    thumb = (axis_rotation(2, np.full(len(ang), -THUMB_REST_RAD)) @ axis_rotation(2, -ang[:, 1])
             @ axis_rotation(0, ang[:, 0]) @ axis_rotation(1, ang[:, 2]))  # fmt: skip
    out += [thumb, axis_rotation(0, ang[:, 3]), axis_rotation(0, ang[:, 4])]
    for f in range(4):
        a = ang[:, 5 + 4 * f: 9 + 4 * f]
        out += [axis_rotation(2, -a[:, 1]) @ axis_rotation(0, a[:, 0]),
                axis_rotation(0, a[:, 2]), axis_rotation(0, a[:, 3])]  # fmt: skip
    return out


def _skeleton_layout(prefix: str, palm_m: np.ndarray, lengths_m: np.ndarray):
    """Names, parents, offsets (m, right hand), end-site flags of the hand's hierarchy."""
    names, parents, offsets, ends = [f"{prefix}_wrist"], [-1], [np.zeros(3)], [False]
    for f, finger in enumerate(FINGER_NAMES):
        joints = CHAIN_JOINTS[0 if f == 0 else 1]
        parent = 0
        for k, joint in enumerate(joints):
            names.append(f"{prefix}_{finger}_{joint}")
            parents.append(parent)
            offsets.append(palm_m[f + 1] if k == 0 else np.array([0.0, lengths_m[f, k - 1], 0]))
            ends.append(False)
            parent = len(names) - 1
        names.append(f"{prefix}_{finger}_{joints[-1]}_end")
        parents.append(parent)
        offsets.append(np.array([0.0, lengths_m[f, 2], 0.0]))
        ends.append(True)
    return names, np.array(parents), np.array(offsets), np.array(ends)


def kinematic_bvh(prefix: str, params: np.ndarray, palm_m: np.ndarray, lengths_m: np.ndarray,
                  mirror: bool, rate_hz: float, units: str = "mm", up: str = "z"
                  ) -> BvhSkeleton:  # fmt: skip
    """The BVH skeleton and motion of one fitted kinematic hand.

    Args:
        prefix: joint name prefix (e.g. ``'L'`` or ``'P1_R'``).
        params: ``(T, 27)`` the fit's absolute parameters (rotation rad, translation m,
            21 angles rad), NaN rows where not fitted.
        palm_m, lengths_m: ``(6, 3)`` palm joints and ``(5, 3)`` segment lengths, metres.
        mirror: a left hand (fitted as a mirrored right hand).
        rate_hz: frames per second; units: of the BVH offsets and positions; up: see
            :data:`mvhand.export.markers.UP_ROTATION`.
    """
    from scipy.spatial.transform import Rotation

    params = _fill_unfitted(np.asarray(params, dtype=float))
    scale = 1.0 / UNIT_SCALE_M[units]
    W = MIRROR if mirror else np.eye(3)
    names, parents, offsets, ends = _skeleton_layout(prefix, palm_m, lengths_m)
    offsets = offsets @ W.T * scale
    local = [W @ R @ W for R in _local_rotations(params)]
    local[0] = UP_ROTATION[up] @ local[0]
    T, N = params.shape[0], len(names)
    motion = np.zeros((T, N, 6))
    motion[:, 0, :3] = params[:, 3:6] @ (UP_ROTATION[up] @ W).T * scale
    joints = np.flatnonzero(~ends)
    for j, R in zip(joints, local, strict=True):
        motion[:, j, 3:] = Rotation.from_matrix(R).as_euler("ZXY", degrees=True)
    return BvhSkeleton(names, parents, offsets, ends, motion, 1.0 / rate_hz)


def _fill_unfitted(params: np.ndarray) -> np.ndarray:
    ok = np.isfinite(params).all(axis=1)
    if not ok.any():
        raise InputError("the hand was not fitted in any frame; nothing to write to BVH")
    idx = np.flatnonzero(ok)
    nearest = idx[np.abs(np.arange(len(params))[:, None] - idx[None]).argmin(axis=1)]
    return params[nearest]


def bvh_text(skel: BvhSkeleton) -> str:
    """The BVH file's text."""
    lines = ["HIERARCHY"]
    children = {i: [c for c in range(len(skel.names)) if skel.parents[c] == i]
                for i in range(len(skel.names))}  # fmt: skip

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        off = " ".join(f"{v:.6f}" for v in skel.offsets[j])
        if skel.end_site[j]:
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}  OFFSET {off}", f"{pad}}}"])
            return
        kind = "ROOT" if skel.parents[j] < 0 else "JOINT"
        chans = ROOT_CHANNELS if kind == "ROOT" else ROTATION_CHANNELS
        lines.extend([f"{pad}{kind} {skel.names[j]}", f"{pad}{{", f"{pad}  OFFSET {off}",
                      f"{pad}  CHANNELS {len(chans)} {' '.join(chans)}"])  # fmt: skip
        for c in children[j]:
            emit(c, depth + 1)
        lines.append(f"{pad}}}")

    emit(0, 0)
    T = skel.motion.shape[0]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {skel.frame_time_s:.8f}"]
    cols = [skel.motion[:, 0, :6]] + [skel.motion[:, j, 3:]
                                      for j in range(1, len(skel.names)) if not skel.end_site[j]]
    table = np.concatenate(cols, axis=1)
    lines += [" ".join(f"{v:.6f}" for v in row) for row in table]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, skel: BvhSkeleton) -> Path:
    """Write ``skel`` as a BVH file (atomically)."""
    write_text_atomic(path, bvh_text(skel))
    return Path(path)


@dataclass(frozen=True, eq=False)
class BvhFile:
    """A parsed BVH file: joint ``names`` (End Sites ``<parent>_end``), ``parents``,
    ``offsets`` ``(N, 3)``, ``channels`` per joint, ``motion`` ``(T, n_channels)`` and
    ``frame_time_s``."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    motion: np.ndarray
    frame_time_s: float


def read_bvh(path: str | Path) -> BvhFile:
    """Parse any BVH file (channels in any order, several levels, End Sites)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        head, _, motion = text.partition("MOTION")
        names, parents, offsets, channels = _parse_hierarchy(head.split())
        m = re.search(r"Frames:\s*(\d+)\s*Frame Time:\s*([0-9.eE+-]+)", motion)
        rows = motion[m.end():].split()
        table = np.array(rows, dtype=float).reshape(int(m.group(1)), -1)
    except (OSError, AttributeError, ValueError, IndexError) as exc:
        raise InputError(f"not a readable BVH file ({exc})", path) from None
    if table.shape[1] != sum(len(c) for c in channels):
        raise InputError("BVH motion rows do not match the hierarchy's channels", path)
    return BvhFile(names, parents, np.array(offsets), channels, table, float(m.group(2)))


def _parse_hierarchy(tok: list[str]):
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 0
    while i < len(tok):
        t = tok[i]
        if t in ("ROOT", "JOINT") or (t == "End" and tok[i + 1] == "Site"):
            name = tok[i + 1] if t != "End" else f"{names[stack[-1]]}_end"
            parents.append(stack[-1] if stack else -1)
            names.append(name)
            offsets.append(None)
            channels.append(())
            i += 2
        elif t == "{":
            stack.append(len(names) - 1)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            offsets[-1] = [float(v) for v in tok[i + 1:i + 4]]
            i += 4
        elif t == "CHANNELS":
            n = int(tok[i + 1])
            channels[-1] = tuple(tok[i + 2:i + 2 + n])
            i += 2 + n
        else:
            i += 1
    return names, parents, offsets, channels


def _channel_matrix(name: str, deg: np.ndarray) -> np.ndarray:
    from mvhand.fit.rotation import axis_rotation

    return axis_rotation("XYZ".index(name[0]), np.radians(deg))


def bvh_positions(bvh: BvhFile) -> np.ndarray:
    """World positions ``(T, N, 3)`` of every joint and End Site (forward kinematics: each
    joint's transform is its parent's, then its offset and position channels, then its
    rotation channels in the listed order)."""
    T, N = bvh.motion.shape[0], len(bvh.names)
    R = np.zeros((T, N, 3, 3))
    P = np.zeros((T, N, 3))
    col = 0
    for j in range(N):
        trans = np.broadcast_to(bvh.offsets[j], (T, 3)).copy()
        rot = np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
        for ch in bvh.channels[j]:
            v = bvh.motion[:, col]
            col += 1
            if ch.endswith("position"):
                trans[:, "XYZ".index(ch[0])] += v
            else:
                rot = rot @ _channel_matrix(ch, v)
        p = bvh.parents[j]
        if p < 0:
            R[:, j], P[:, j] = rot, trans
        else:
            R[:, j] = R[:, p] @ rot
            P[:, j] = P[:, p] + np.einsum("tij,tj->ti", R[:, p], trans)
    return P
