"""Several people: per-camera 2D detections before association, and the associated result.

Layout (written down once; the README's "Several people" section repeats it):

Before association, :class:`Detections2D` is a flat table of N *person detections*, one row
per person a detector found in one camera and frame, with no identity across cameras:

- ``camera (N,)`` index into ``cameras``; ``frame (N,)`` frame index in ``[0, n_frames)``.
- ``body_px (N, B, 2)`` pixels and ``body_scores (N, B)``: body joints in COCO-17 order
  (:data:`BODY_JOINTS`, B = 17), NaN / 0 where the row has no body (a palm detection).
- ``hands_px (N, 2, 21, 2)`` and ``hands_scores (N, 2, 21)``: the row's hands; the slot is the
  detector's *side guess* (0 left, 1 right), which the association may overrule in 3D. A palm
  detection or an imported lone hand fills one slot.
- ``source (N,)``: :data:`SOURCES` index, "body" (person detector + body model, hands from
  the body), "palm" (palm detector, no body) or "import" (another tool's file).

After association, :class:`PeopleResult` holds P person slots over T frames:

- ``hands3d (T, P, 2, 21, 3)`` in the rig's units (0 left, 1 right; NaN where missing), with
  ``hands_n_views`` and ``hands_reprojection_error_px`` of shape ``(T, P, 2, 21)``.
- ``body3d (T, P, B, 3)``, NaN where not triangulated (hand-only people have no body), with
  ``body_n_views (T, P)``.
- ``person_ids (P,)``: a stable id per slot (ids are never reused within a result).
- ``det_person (N,)`` slot of each detection row's body (-1: not associated);
  ``det_hand_person (N, 2)`` and ``det_side (N, 2)``: the slot and 3D side (0/1) each of
  the row's hand slots was assigned to, -1 where not used (split off). A row's hand may go to
  another person than its body: the detector attached someone else's hand.

Missing is NaN (and score 0) everywhere, as in :mod:`mvhand.core.data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M
from mvhand.core.skeleton import N_JOINTS

#: COCO-17 body joints, the body layout of :class:`Detections2D`.
BODY_JOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
N_BODY = len(BODY_JOINTS)
#: Shoulder, elbow and wrist of the left (row 0) and right (row 1) arm.
ARM_CHAIN: np.ndarray = np.array([[5, 7, 9], [6, 8, 10]], dtype=np.int64)
#: Body index of each joint when the body is mirrored (left and right exchanged).
BODY_MIRROR: np.ndarray = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
#: Where a row's detections came from.
SOURCES: tuple[str, ...] = ("body", "palm", "import")


def _arr(value, shape_tail: tuple[int, ...], n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape != (n, *shape_tail):
        raise ValueError(f"{name} must have shape {(n, *shape_tail)}, got {arr.shape}")
    return arr


def _clean(px: np.ndarray, sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    px = np.where(np.isfinite(px), px, np.nan)
    miss = np.isnan(px).any(-1) | ~np.isfinite(sc) | (sc <= 0)
    px[miss] = np.nan
    return px, np.where(miss, 0.0, np.clip(sc, 0.0, 1.0))


@dataclass(frozen=True, eq=False)
class Detections2D:
    """Person detections of all cameras before association (layout: module docstring)."""

    camera: np.ndarray
    frame: np.ndarray
    body_px: np.ndarray
    body_scores: np.ndarray
    hands_px: np.ndarray
    hands_scores: np.ndarray
    source: np.ndarray
    cameras: tuple[str, ...]
    n_frames: int
    fps: float | None = None

    #: The per-row arrays, in the constructor's order (files store them as ``det_<name>``).
    ARRAYS = ("camera", "frame", "body_px", "body_scores", "hands_px", "hands_scores", "source")

    def __post_init__(self) -> None:
        cam = np.asarray(self.camera, dtype=np.int64).reshape(-1)
        n = len(cam)
        frame = np.asarray(self.frame, dtype=np.int64).reshape(-1)
        if frame.shape != (n,):
            raise ValueError(f"frame must have shape ({n},), got {frame.shape}")
        cams = tuple(str(c) for c in self.cameras)
        if len(set(cams)) != len(cams):
            raise ValueError(f"camera names must be unique, got {cams}")
        if n and (cam.min() < 0 or cam.max() >= len(cams)):
            raise ValueError(f"camera indices must lie in [0, {len(cams)})")
        if n and (frame.min() < 0 or frame.max() >= self.n_frames):
            raise ValueError(f"frame indices must lie in [0, {self.n_frames})")
        body, bsc = _clean(_arr(self.body_px, (N_BODY, 2), n, "body_px"),
                           _arr(self.body_scores, (N_BODY,), n, "body_scores"))  # fmt: skip
        hands, hsc = _clean(_arr(self.hands_px, (2, N_JOINTS, 2), n, "hands_px"),
                            _arr(self.hands_scores, (2, N_JOINTS), n, "hands_scores"))  # fmt: skip
        src = np.asarray(self.source, dtype=np.int64).reshape(-1)
        if src.shape != (n,) or (n and (src.min() < 0 or src.max() >= len(SOURCES))):
            raise ValueError(f"source must be ({n},) indices into {SOURCES}")
        for name, value in (("camera", cam), ("frame", frame), ("body_px", body),
                            ("body_scores", bsc), ("hands_px", hands), ("hands_scores", hsc),
                            ("source", src), ("cameras", cams)):  # fmt: skip
            object.__setattr__(self, name, value)
        object.__setattr__(self, "n_frames", int(self.n_frames))

    def __len__(self) -> int:
        return len(self.camera)

    @property
    def n_cameras(self) -> int:
        return len(self.cameras)

    @property
    def has_body(self) -> np.ndarray:
        """``(N,)`` True where the row has at least one body joint."""
        return (self.body_scores > 0).any(-1)

    def take(self, rows: np.ndarray) -> Detections2D:
        """The rows ``rows`` (indices or a boolean mask), same cameras and frames."""
        r = np.asarray(rows)
        return Detections2D(*(getattr(self, k)[r] for k in self.ARRAYS), self.cameras,
                            self.n_frames, self.fps)  # fmt: skip

    def reorder_cameras(self, names: tuple[str, ...] | list[str]) -> Detections2D:
        """The same rows with cameras renumbered to the order ``names`` (a permutation)."""
        names = tuple(names)
        if sorted(names) != sorted(self.cameras):
            raise ValueError(f"{names} is not a permutation of {self.cameras}")
        new = np.array([names.index(c) for c in self.cameras], dtype=np.int64)
        return Detections2D(new[self.camera], self.frame, self.body_px, self.body_scores,
                            self.hands_px, self.hands_scores, self.source, names,
                            self.n_frames, self.fps)  # fmt: skip

    @staticmethod
    def concatenate(parts: list[Detections2D]) -> Detections2D:
        """Rows of several tables with the same cameras and frame count, in order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        a = parts[0]
        if any(p.cameras != a.cameras or p.n_frames != a.n_frames for p in parts):
            raise ValueError("tables to concatenate need the same cameras and n_frames")
        cat = [np.concatenate([getattr(p, k) for p in parts]) for k in Detections2D.ARRAYS]
        return Detections2D(*cat, a.cameras, a.n_frames, a.fps)


def empty_detections(cameras: tuple[str, ...], n_frames: int,
                     fps: float | None = None) -> Detections2D:  # fmt: skip
    """A table with no rows."""
    z = np.zeros(0, dtype=np.int64)
    return Detections2D(z, z, np.zeros((0, N_BODY, 2)), np.zeros((0, N_BODY)),
                        np.zeros((0, 2, N_JOINTS, 2)), np.zeros((0, 2, N_JOINTS)), z,
                        tuple(cameras), n_frames, fps)  # fmt: skip


@dataclass(frozen=True, eq=False)
class PeopleResult:
    """Associated and reconstructed people (layout: module docstring).

    Attributes:
        hands3d: ``(T, P, 2, 21, 3)``; hands_n_views, hands_reprojection_error_px:
            ``(T, P, 2, 21)``.
        body3d: ``(T, P, B, 3)``; body_n_views: ``(T, P)`` views of each body per frame.
        person_ids: ``(P,)`` int.
        det_person: ``(N,)`` slot of each detection row's body, -1 if not associated.
        det_hand_person: ``(N, 2)`` slot each of the row's hand slots went to, -1 if none.
        det_side: ``(N, 2)`` 3D side of each of the row's hand slots, -1 if not used.
        units: the rig's units.
        report: people found, frames per person and hand, switches, ambiguities, warnings.
    """

    hands3d: np.ndarray
    hands_n_views: np.ndarray
    hands_reprojection_error_px: np.ndarray
    body3d: np.ndarray
    body_n_views: np.ndarray
    person_ids: np.ndarray
    det_person: np.ndarray
    det_hand_person: np.ndarray
    det_side: np.ndarray
    units: str = "m"
    report: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        h = np.asarray(self.hands3d, dtype=float)
        if h.ndim != 5 or h.shape[2:] != (2, N_JOINTS, 3):
            raise ValueError(f"hands3d must have shape (T, P, 2, {N_JOINTS}, 3), got {h.shape}")
        T, P = h.shape[:2]
        b = np.asarray(self.body3d, dtype=float)
        if b.shape != (T, P, N_BODY, 3):
            raise ValueError(f"body3d must have shape {(T, P, N_BODY, 3)}, got {b.shape}")
        ids = np.asarray(self.person_ids, dtype=np.int64)
        if ids.shape != (P,) or len(set(ids.tolist())) != P:
            raise ValueError(f"person_ids must be {P} distinct ids, got {ids}")
        for name, shape in (("hands_n_views", h.shape[:-1]),
                            ("hands_reprojection_error_px", h.shape[:-1]),
                            ("body_n_views", b.shape[:2])):  # fmt: skip
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name} must have shape {shape}, got "
                                 f"{np.shape(getattr(self, name))}")  # fmt: skip
        object.__setattr__(self, "hands3d", h)
        object.__setattr__(self, "body3d", b)
        object.__setattr__(self, "person_ids", ids)
        object.__setattr__(self, "det_person", np.asarray(self.det_person, dtype=np.int64))
        object.__setattr__(self, "det_side", np.asarray(self.det_side, dtype=np.int64))
        object.__setattr__(self, "det_hand_person",
                           np.asarray(self.det_hand_person, dtype=np.int64))

    @property
    def n_people(self) -> int:
        return self.hands3d.shape[1]

    @property
    def n_frames(self) -> int:
        return self.hands3d.shape[0]


def lone_hand_pairs(res: PeopleResult, min_shared: float = 0.5,
                    max_distance_m: float = 0.8) -> list[tuple[int, int]]:  # fmt: skip
    """Hand-only people that are one person's two hands: ``[(left slot, right slot), ...]``.

    The association makes a hand-only person per hand when no camera sees a body (close-range
    views of hands only). A left-only and a right-only person are paired when the 2D rows that
    fed them are mostly the same rows (one camera-local detection held both hands: a palm
    track's left and right) -- at least ``min_shared`` of the rows of the one seen less -- and
    their wrists stay within ``max_distance_m`` (median over the frames with both).
    """
    to_m = UNIT_SCALE_M[res.units]
    lone = ~(res.body_n_views > 0).any(0)  # (P,)
    has = np.isfinite(res.hands3d[:, :, :, 0]).all(-1).any(0)  # (P, 2) any frame per side
    left = np.flatnonzero(lone & has[:, 0] & ~has[:, 1])
    right = np.flatnonzero(lone & has[:, 1] & ~has[:, 0])
    hp = res.det_hand_person
    cand = []
    for a in left:
        for b in right:
            shared = int(((hp == a).any(1) & (hp == b).any(1)).sum())
            fewer = min(int((hp == a).any(1).sum()), int((hp == b).any(1).sum()))
            wa, wb = res.hands3d[:, a, 0, 0], res.hands3d[:, b, 1, 0]
            both = np.isfinite(wa).all(-1) & np.isfinite(wb).all(-1)
            if not fewer or shared < min_shared * fewer or not both.any():
                continue
            if np.median(np.linalg.norm(wa[both] - wb[both], axis=-1)) * to_m <= max_distance_m:
                cand.append((shared, int(a), int(b)))
    pairs, used = [], set()
    for _, a, b in sorted(cand, reverse=True):
        if a not in used and b not in used:
            pairs.append((a, b))
            used |= {a, b}
    return pairs


def merge_people(res: PeopleResult, pairs: list[tuple[int, int]]) -> PeopleResult:
    """``res`` with each pair's second slot's right hand moved into the first slot, and the
    second slot removed (its detections now point at the first)."""
    if not pairs:
        return res
    h, nv, err = (res.hands3d.copy(), res.hands_n_views.copy(),
                  res.hands_reprojection_error_px.copy())  # fmt: skip
    hp, dp = res.det_hand_person.copy(), res.det_person.copy()
    for a, b in pairs:
        h[:, a, 1], nv[:, a, 1], err[:, a, 1] = h[:, b, 1], nv[:, b, 1], err[:, b, 1]
        hp[hp == b], dp[dp == b] = a, a
    gone = {b for _, b in pairs}
    keep = [p for p in range(res.n_people) if p not in gone]
    new_slot = np.full(res.n_people + 1, -1)  # index -1 maps "not associated" to itself
    new_slot[keep] = np.arange(len(keep))
    report = dict(res.report)
    if "people" in report:
        report["people"] = [report["people"][p] for p in keep]
    return PeopleResult(h[:, keep], nv[:, keep], err[:, keep], res.body3d[:, keep],
                        res.body_n_views[:, keep], res.person_ids[keep], new_slot[dp],
                        new_slot[hp], res.det_side, res.units, report)  # fmt: skip
