"""3D tracks with stable identities: link per-frame 3D points (people, hands) over time.

Each frame's observations are matched to the live tracks by the Hungarian method on the mean
3D distance of the joints both have, against a constant-velocity prediction; the gate grows
with the frames a track has been unseen (``base_gate + max_speed * gap / fps``). A track not
seen for ``max_gap`` frames ends; an observation that matches no track starts a new one, so
people who enter get new ids and people who leave end theirs. No search over permutations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class _Track:
    last_frame: int
    last: np.ndarray  # (K, 3)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))  # units per frame

    def predict(self, frame: int) -> np.ndarray:
        return self.last + self.velocity * (frame - self.last_frame)


def mean_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean distance of the joints valid in both: ``a (..., K, 3)``, ``b (..., K, 3)`` -> ``(...)``,
    inf where no joint is valid in both."""
    d = np.linalg.norm(a - b, axis=-1)
    ok = np.isfinite(d)
    n = ok.sum(-1)
    s = np.where(ok, d, 0.0).sum(-1)
    return np.where(n > 0, s / np.maximum(n, 1), np.inf)


def _update(track: _Track, frame: int, points: np.ndarray) -> None:
    gap = max(frame - track.last_frame, 1)
    step = np.nanmean(points - track.last, axis=0) if np.isfinite(points - track.last).any() \
        else np.zeros(3)  # fmt: skip
    step = np.nan_to_num(step) / gap
    track.velocity = 0.5 * track.velocity + 0.5 * step
    merged = np.where(np.isfinite(points), points, track.last + track.velocity * gap)
    track.last, track.last_frame = merged, frame


def link_tracks(frames: np.ndarray, points: np.ndarray, base_gate: float, max_step: float,
                max_gap: int) -> np.ndarray:  # fmt: skip
    """Track index of every observation.

    Args:
        frames: ``(Q,)`` frame of each observation (any order).
        points: ``(Q, K, 3)`` its 3D joints (NaN where missing), any units.
        base_gate: distance always allowed between a prediction and an observation.
        max_step: further distance allowed per frame of gap (the largest speed per frame).
        max_gap: frames a track may stay unseen before it ends.

    Returns:
        ``(Q,)`` track indices 0..n-1 in order of first appearance; -1 for observations with
        no finite joint.

    Example:
        >>> pts = np.array([[[0.0, 0, 0]], [[1.0, 0, 0]], [[0.01, 0, 0]], [[1.01, 0, 0]]])
        >>> link_tracks(np.array([0, 0, 1, 1]), pts, 0.1, 0.05, 5).tolist()
        [0, 1, 0, 1]
    """
    frames = np.asarray(frames, dtype=np.int64)
    track_of = np.full(len(frames), -1, dtype=np.int64)
    tracks: list[_Track] = []
    live: list[int] = []
    for f in np.unique(frames):
        obs = np.nonzero((frames == f) & np.isfinite(points).all(-1).any(-1))[0]
        live = [k for k in live if f - tracks[k].last_frame <= max_gap]
        if live and len(obs):
            pred = np.stack([tracks[k].predict(f) for k in live])
            cost = mean_distance(pred[:, None], points[obs][None])
            gate = np.array([base_gate + max_step * (f - tracks[k].last_frame) for k in live])
            big = 1e6
            rows, cols = linear_sum_assignment(np.where(cost <= gate[:, None], cost, big))
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= gate[r]:
                    track_of[obs[c]] = live[r]
                    _update(tracks[live[r]], int(f), points[obs[c]])
        for q in obs[track_of[obs] < 0]:
            tracks.append(_Track(int(f), np.array(points[q], dtype=float)))
            track_of[q] = len(tracks) - 1
            live.append(len(tracks) - 1)
    return track_of


def orient_tracks(track: np.ndarray, frames: np.ndarray, points: np.ndarray,
                  mirror: np.ndarray, margin: float = 0.6) -> np.ndarray:  # fmt: skip
    """Per observation, whether its left/right joints must be exchanged to continue its track.

    Along each track, an observation is flipped when its mirrored joints (``points[:, mirror]``)
    lie closer to the track's previous (already oriented) observation than its own joints by
    a factor ``margin``: a whole-body left/right flip between frames, which per-frame
    geometry cannot see.

    Returns:
        ``(Q,)`` bool.
    """
    flip = np.zeros(len(track), dtype=bool)
    for k in np.unique(track[track >= 0]):
        idx = np.nonzero(track == k)[0]
        idx = idx[np.argsort(frames[idx], kind="stable")]
        prev = points[idx[0]]
        for q in idx[1:]:
            same = float(mean_distance(points[q], prev))
            crossed = float(mean_distance(points[q][mirror], prev))
            if np.isfinite(crossed) and crossed < margin * same:
                flip[q] = True
            cur = points[q][mirror] if flip[q] else points[q]
            prev = np.where(np.isfinite(cur), cur, prev)
    return flip
