"""The 21-joint hand skeleton as data, and index maps to other keypoint layouts.

mvhand's joint order is the OpenPose / COCO-WholeBody / MediaPipe order: wrist, then for the
thumb, index, middle, ring and little finger four joints each from the palm outwards.
Thumb joints are CMC, MCP, IP, tip; the other fingers MCP, PIP, DIP, tip.
"""

from __future__ import annotations

import numpy as np

N_JOINTS = 21

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")

JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "little_mcp", "little_pip", "little_dip", "little_tip",
)  # fmt: skip

#: Parent of each joint in the kinematic tree; the wrist is the root (-1).
PARENTS: np.ndarray = np.array(
    [-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19], dtype=np.int64
)

#: Bones as (parent, child) joint index pairs, one per non-root joint, shape (20, 2).
BONES: np.ndarray = np.stack([PARENTS[1:], np.arange(1, N_JOINTS)], axis=1)

#: Finger of each joint (-1 for the wrist), index into ``FINGERS``.
JOINT_FINGER: np.ndarray = np.array([-1] + [f for f in range(5) for _ in range(4)], dtype=np.int64)

#: Joint indices of each finger from the palm outwards, shape (5, 4).
FINGER_JOINTS: np.ndarray = np.arange(1, N_JOINTS).reshape(5, 4)

#: Indices of the left and right hand in the 133 COCO-WholeBody keypoints (same joint order).
COCO_WHOLEBODY_LEFT: np.ndarray = np.arange(91, 112)
COCO_WHOLEBODY_RIGHT: np.ndarray = np.arange(112, 133)

#: MediaPipe's 21 hand landmarks use mvhand's order: ``mvhand[j] = mediapipe[MEDIAPIPE[j]]``.
MEDIAPIPE: np.ndarray = np.arange(N_JOINTS)

#: MANO's 16 skeleton joints followed by 5 fingertip vertices (thumb, index, middle, ring,
#: little) give 21 points; ``mvhand[j] = mano21[MANO[j]]``. MANO's skeleton order is wrist,
#: index 1-3, middle 1-3, little 1-3, ring 1-3, thumb 1-3.
MANO: np.ndarray = np.array(
    [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20], dtype=np.int64
)

#: InterHand2.6M orders each hand fingertip-first, thumb first, wrist last:
#: ``mvhand[j] = interhand_hand[INTERHAND[j]]`` for the 21 joints of one hand.
INTERHAND: np.ndarray = np.array(
    [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16], dtype=np.int64
)


def bone_name(bone: int) -> str:
    """Name of bone ``bone`` (an index into ``BONES``) as ``"parent-child"``."""
    parent, child = BONES[bone]
    return f"{JOINT_NAMES[parent]}-{JOINT_NAMES[child]}"


def bone_lengths(points: np.ndarray) -> np.ndarray:
    """Length of every bone.

    Args:
        points: joints ``(..., 21, 3)``.

    Returns:
        ``(..., 20)`` bone lengths in the points' units; NaN where either end is NaN.

    Example:
        >>> pts = np.zeros((21, 3)); pts[1] = [0.0, 0.03, 0.0]
        >>> float(bone_lengths(pts)[0])
        0.03
    """
    points = np.asarray(points, dtype=float)
    return np.linalg.norm(points[..., BONES[:, 1], :] - points[..., BONES[:, 0], :], axis=-1)
