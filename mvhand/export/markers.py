"""The marker set every export writes: one marker per hand joint, named for its person and side.

Names are ``<side>_<joint>`` (``L_wrist``, ``R_index_tip``), prefixed with a person id when one
is given (``P1_L_wrist``), so that files of several people (the multi-person issue) keep
unique, readable names. Positions are converted to the export's units and, optionally, from a
z-up world (the calibration's, as Qualisys and Pose2Sim studios use) to the y-up world that
OpenSim and Blender's BVH import expect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M
from mvhand.core.data import Hands3D
from mvhand.core.skeleton import JOINT_NAMES

#: Side letter of each hand name.
SIDES = {"left": "L", "right": "R"}

#: World rotation of each ``up`` choice: 'z' keeps the frame; 'y' maps z-up to y-up
#: ((x, y, z) -> (x, z, -y), a proper rotation).
UP_ROTATION: dict[str, np.ndarray] = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}


def hand_prefix(hand: str, person: str = "") -> str:
    """``'left'`` -> ``'L'``; with a person id ``'P1_L'``; unknown names are kept."""
    side = SIDES.get(hand, hand)
    return f"{person}_{side}" if person else side


def marker_names(hands: tuple[str, ...], person: str = "") -> list[str]:
    """All marker names, hand-major (hand 0's 21 joints first)."""
    return [f"{hand_prefix(h, person)}_{j}" for h in hands for j in JOINT_NAMES]


@dataclass(frozen=True, eq=False)
class MarkerSet:
    """Markers over time, ready to write.

    Attributes:
        names: ``M`` marker names.
        points: ``(T, M, 3)`` in ``units``, NaN where missing.
        error_px: ``(T, M)`` mean reprojection error in pixels (NaN where missing).
        n_views: ``(T, M)`` cameras supporting each marker.
        score: ``(T, M)`` mean 2D score.
        units: "m", "cm" or "mm".
        rate_hz: frames per second of the exported frames.
        first_frame: video frame index of the first exported frame.
        step: video frames between exported frames.
    """

    names: list[str]
    points: np.ndarray
    error_px: np.ndarray
    n_views: np.ndarray
    score: np.ndarray
    units: str
    rate_hz: float
    first_frame: int = 0
    step: int = 1

    @property
    def n_frames(self) -> int:
        return self.points.shape[0]

    @staticmethod
    def concatenate(sets: list[MarkerSet]) -> MarkerSet:
        """The markers of several sets of the same frames side by side (e.g. every person)."""
        a = sets[0]
        cat = [np.concatenate([getattr(m, k) for m in sets], axis=1)
               for k in ("points", "error_px", "n_views", "score")]  # fmt: skip
        return MarkerSet([n for m in sets for n in m.names], *cat, a.units, a.rate_hz,
                         a.first_frame, a.step)  # fmt: skip

    @property
    def times_s(self) -> np.ndarray:
        """``(T,)`` seconds since the video's first frame."""
        return (self.first_frame + self.step * np.arange(self.n_frames)) / (
            self.rate_hz * self.step)


def convert_points(points: np.ndarray, from_units: str, to_units: str, up: str) -> np.ndarray:
    """Points ``(..., 3)`` from ``from_units`` to ``to_units``, rotated for ``up``."""
    scale = UNIT_SCALE_M[from_units] / UNIT_SCALE_M[to_units]
    return np.asarray(points, dtype=float) @ UP_ROTATION[up].T * scale


def marker_set(hands: Hands3D, rate_hz: float, units: str = "mm", up: str = "z",
               person: str = "", first_frame: int = 0, step: int = 1) -> MarkerSet:  # fmt: skip
    """The markers of ``hands`` (``(T, H, 21, 3)``) in ``units`` with ``up`` as the up axis."""
    T, H, J, _ = hands.keypoints3d.shape
    pts = convert_points(hands.keypoints3d, hands.units, units, up).reshape(T, H * J, 3)
    return MarkerSet(marker_names(hands.hands, person), pts,
                     hands.reprojection_error_px.reshape(T, H * J),
                     hands.n_views.reshape(T, H * J), hands.score.reshape(T, H * J), units,
                     float(rate_hz), int(first_frame), int(step))  # fmt: skip
