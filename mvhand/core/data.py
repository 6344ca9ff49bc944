"""The data types that flow between stages: 2D keypoints of all cameras, 3D hands.

Layout (see ``mvhand.core``): C cameras, T frames, H = 2 hands (0 left, 1 right), J = 21.
Missing is NaN (and score 0). Arrays are validated on construction, so a stage that gets one
can rely on its shapes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mvhand.core import HANDS
from mvhand.core.skeleton import N_JOINTS


@dataclass(frozen=True, eq=False)
class Keypoints2D:
    """2D hand keypoints of every camera.

    Attributes:
        keypoints_px: ``(C, T, H, J, 2)`` pixels, NaN where missing.
        scores: ``(C, T, H, J)`` confidences in [0, 1]; 0 where missing.
        cameras: ``(C,)`` camera names, matching the calibration.
        hands: hand names along axis H, normally ``("left", "right")``.
        fps: frame rate, if known.
    """

    keypoints_px: np.ndarray
    scores: np.ndarray
    cameras: tuple[str, ...]
    hands: tuple[str, ...] = HANDS
    fps: float | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints_px, dtype=float)
        sc = np.asarray(self.scores, dtype=float)
        if kp.ndim != 5 or kp.shape[-1] != 2 or kp.shape[-2] != N_JOINTS:
            raise ValueError(f"keypoints must have shape (C, T, H, {N_JOINTS}, 2), got {kp.shape}")
        if sc.shape != kp.shape[:-1]:
            raise ValueError(f"scores must have shape {kp.shape[:-1]}, got {sc.shape}")
        cams = tuple(str(c) for c in self.cameras)
        if len(cams) != kp.shape[0]:
            raise ValueError(f"{len(cams)} camera names for {kp.shape[0]} cameras in keypoints")
        if len(set(cams)) != len(cams):
            raise ValueError(f"camera names must be unique, got {cams}")
        if len(self.hands) != kp.shape[2]:
            raise ValueError(f"{len(self.hands)} hand names for {kp.shape[2]} hands in keypoints")
        kp = np.where(np.isfinite(kp), kp, np.nan)
        missing = np.isnan(kp).any(axis=-1)
        kp[missing] = np.nan
        sc = np.where(missing | ~np.isfinite(sc), 0.0, np.clip(sc, 0.0, 1.0))
        object.__setattr__(self, "keypoints_px", kp)
        object.__setattr__(self, "scores", sc)
        object.__setattr__(self, "cameras", cams)
        object.__setattr__(self, "hands", tuple(self.hands))

    @property
    def n_cameras(self) -> int:
        return self.keypoints_px.shape[0]

    @property
    def n_frames(self) -> int:
        return self.keypoints_px.shape[1]

    def subset_cameras(self, names: tuple[str, ...] | list[str]) -> Keypoints2D:
        """The cameras ``names`` in that order (KeyError-free: unknown names raise ValueError)."""
        idx = [self.cameras.index(n) for n in names]
        return Keypoints2D(self.keypoints_px[idx], self.scores[idx], tuple(names), self.hands,
                           self.fps)  # fmt: skip

    def frames(self, start: int, stop: int) -> Keypoints2D:
        """Frames ``start:stop``."""
        return Keypoints2D(self.keypoints_px[:, start:stop], self.scores[:, start:stop],
                           self.cameras, self.hands, self.fps)  # fmt: skip

    def take_hands(self, idx: list[int], names: tuple[str, ...] = HANDS) -> Keypoints2D:
        """The hands ``idx`` (along axis H), renamed ``names``."""
        return Keypoints2D(self.keypoints_px[:, :, idx], self.scores[:, :, idx], self.cameras,
                           names, self.fps)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Views2D:
    """The 2D evidence behind 3D hands: what the 3D stage actually fitted.

    The triangulation repairs left/right swaps per view and keeps only inlier views per joint;
    everything downstream of it (the optimizer, hand-model fits, overlays, checks) must use
    these repaired 2D keypoints and inliers, never the raw detections.

    Attributes:
        keypoints: the repaired 2D keypoints ``(C, T, H, J, 2)`` with their scores.
        inliers: ``(C, T, H, J)`` bool, the views used for each joint.
        swapped: ``(C, T)`` bool, views whose left and right hands were exchanged.
    """

    keypoints: Keypoints2D
    inliers: np.ndarray
    swapped: np.ndarray

    def __post_init__(self) -> None:
        shape = self.keypoints.scores.shape
        inl = np.asarray(self.inliers, dtype=bool)
        sw = np.asarray(self.swapped, dtype=bool)
        if inl.shape != shape:
            raise ValueError(f"inliers must have shape {shape}, got {inl.shape}")
        if sw.shape != shape[:2]:
            raise ValueError(f"swapped must have shape {shape[:2]}, got {sw.shape}")
        object.__setattr__(self, "inliers", inl)
        object.__setattr__(self, "swapped", sw)

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.keypoints.cameras

    def inlier_keypoints(self) -> Keypoints2D:
        """The repaired 2D with every non-inlier view of a joint removed (NaN, score 0)."""
        kp = np.where(self.inliers[..., None], self.keypoints.keypoints_px, np.nan)
        sc = np.where(self.inliers, self.keypoints.scores, 0.0)
        k = self.keypoints
        return Keypoints2D(kp, sc, k.cameras, k.hands, k.fps)


@dataclass(frozen=True, eq=False)
class Hands3D:
    """3D hand joints over a sequence, with per-joint quality: the one 3D result type.

    The triangulation, the optimizer and the files (``hands3d.npz``) all produce this type.

    Attributes:
        keypoints3d: ``(T, H, J, 3)`` in ``units``, NaN where not reconstructed.
        reprojection_error_px: ``(T, H, J)`` mean reprojection error over the views used.
        n_views: ``(T, H, J)`` number of views that support the joint.
        score: ``(T, H, J)`` mean 2D score of those views.
        units: "m", "cm" or "mm".
        hands: hand names along axis H.
        views: the repaired 2D and inlier views the 3D was computed from (None when the 3D
            was loaded from a file that does not carry them).
        bone_lengths: ``(H, 20)`` per-hand bone lengths in ``units`` (order of
            ``mvhand.core.skeleton.BONES``), None when not estimated.
        info: diagnostics of the stage that made it (JSON-serialisable).
    """

    keypoints3d: np.ndarray
    reprojection_error_px: np.ndarray
    n_views: np.ndarray
    score: np.ndarray
    units: str = "m"
    hands: tuple[str, ...] = HANDS
    views: Views2D | None = None
    bone_lengths: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints3d, dtype=float)
        if kp.ndim != 4 or kp.shape[-1] != 3 or kp.shape[-2] != N_JOINTS:
            raise ValueError(f"keypoints3d must have shape (T, H, {N_JOINTS}, 3), got {kp.shape}")
        for name in ("reprojection_error_px", "n_views", "score"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != kp.shape[:-1]:
                raise ValueError(f"{name} must have shape {kp.shape[:-1]}, got {arr.shape}")
        if self.views is not None and self.views.inliers.shape[1:] != kp.shape[:-1]:
            raise ValueError(f"views {self.views.inliers.shape} do not match 3D {kp.shape}")
        if self.bone_lengths is not None:
            bl = np.asarray(self.bone_lengths, dtype=float)
            if bl.shape != (kp.shape[1], N_JOINTS - 1):
                raise ValueError(f"bone_lengths must have shape ({kp.shape[1]}, "
                                 f"{N_JOINTS - 1}), got {bl.shape}")  # fmt: skip
            object.__setattr__(self, "bone_lengths", bl)
        object.__setattr__(self, "keypoints3d", kp)
        object.__setattr__(self, "reprojection_error_px",
                           np.asarray(self.reprojection_error_px, dtype=float))
        object.__setattr__(self, "score", np.asarray(self.score, dtype=float))
        object.__setattr__(self, "n_views", np.asarray(self.n_views, dtype=np.int64))
        object.__setattr__(self, "hands", tuple(self.hands))

    @property
    def valid(self) -> np.ndarray:
        """``(T, H, J)`` True where the joint was reconstructed."""
        return np.isfinite(self.keypoints3d).all(axis=-1)

    @property
    def n_frames(self) -> int:
        return self.keypoints3d.shape[0]

    def replace(self, **changes) -> Hands3D:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @staticmethod
    def concatenate(parts: list[Hands3D], names: tuple[str, ...]) -> Hands3D:
        """The hands of several results of the same frames and cameras side by side (axis H),
        named ``names``; ``info`` of a single part is kept, else left empty."""
        cat = [np.concatenate([getattr(p, k) for p in parts], axis=1)
               for k in ("keypoints3d", "reprojection_error_px", "n_views", "score")]  # fmt: skip
        views = None
        if all(p.views is not None for p in parts):
            k0 = parts[0].views.keypoints
            kp = Keypoints2D(np.concatenate([p.views.keypoints.keypoints_px for p in parts], 2),
                             np.concatenate([p.views.keypoints.scores for p in parts], 2),
                             k0.cameras, names, k0.fps)  # fmt: skip
            views = Views2D(kp, np.concatenate([p.views.inliers for p in parts], 2),
                            np.logical_or.reduce([p.views.swapped for p in parts]))
        bl = None
        if all(p.bone_lengths is not None for p in parts):
            bl = np.concatenate([p.bone_lengths for p in parts])
        return Hands3D(*cat, parts[0].units, names, views, bl,
                       parts[0].info if len(parts) == 1 else {})  # fmt: skip

    def take_hands(self, idx: list[int], names: tuple[str, ...] = HANDS) -> Hands3D:
        """The hands ``idx`` (along axis H), renamed ``names``, with their views and bone
        lengths; ``info`` is kept whole (its per-hand entries name their hands).

        Example:
            >>> h = Hands3D(np.zeros((2, 4, 21, 3)), np.zeros((2, 4, 21)), np.ones((2, 4, 21)),
            ...             np.ones((2, 4, 21)), hands=("a", "b", "c", "d"))
            >>> h.take_hands([2, 3]).hands, h.take_hands([2, 3]).keypoints3d.shape
            (('left', 'right'), (2, 2, 21, 3))
        """
        v = self.views
        if v is not None:
            v = Views2D(v.keypoints.take_hands(idx, names), v.inliers[:, :, idx], v.swapped)
        bl = None if self.bone_lengths is None else self.bone_lengths[idx]
        return Hands3D(self.keypoints3d[:, idx], self.reprojection_error_px[:, idx],
                       self.n_views[:, idx], self.score[:, idx], self.units, names, v, bl,
                       self.info)  # fmt: skip
