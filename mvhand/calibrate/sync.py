"""Time synchronization from people's motion: per-camera frame offsets from 2D keypoints.

Convention (the same as the board offsets of :mod:`mvhand.calibrate.extrinsics`): camera c's
frame ``f + offsets[c]`` shows the instant of the reference camera's frame ``f``. A camera
whose video started ``k`` frames late (its first ``k`` frames are missing) has offset ``-k``.

Method, with a known calibration:

1. Per camera pair (i, j) and lag L in ``[-max_offset, max_offset]``: the median symmetric
   epipolar distance (pixels) between camera i's keypoints at frame f and camera j's at frame
   ``f + L``, over every frame and keypoint seen by both. While people move, the true lag is
   the one at which the keypoints agree with the epipolar geometry; a parabola through the
   minimum and its neighbours gives the sub-frame lag.
2. Offsets consistent across cameras: weighted least squares on ``o_j - o_i = L_ij`` (weight:
   samples times the contrast of the pair's cost curve), reference offset 0, rounded.
3. Check with all cameras at once: a non-zero offset that lowers its own camera's median
   reprojection error (keypoints triangulated from every camera) by less than ``min_gain``
   (20%) against offset 0 is dropped. On the Pose2Sim videos a camera whose calibration fits
   badly (cam03) otherwise picks up a spurious offset from its flat cost curves (+3 from the
   body keypoints with a 12-17% gain, which the hands' reprojection contradicts); the price is
   that a true one-frame shift of slowly moving hands can be missed. (Moving single offsets
   to lower the overall reprojection error was tried and dropped: it made cam03 worse.) The
   reprojection error before (all offsets 0) and after is reported.

An epipolar distance cannot see motion along the epipolar lines, and a person standing still
gives no signal at all: the contrast of each pair's curve is reported, and a pair with too
little (``min_contrast``) does not vote. Numpy only; no I/O except :func:`read_frame_offsets`.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mvhand.core.camera import Camera, Rig
from mvhand.core.triangulate import dlt
from mvhand.errors import CalibrationError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairLag:
    """One camera pair's lag: ``frame f`` of ``i`` matches ``frame f + lag`` of ``j``."""

    i: int
    j: int
    lag: int
    subframe: float
    cost_px: float
    cost_zero_px: float
    contrast: float
    samples: int


@dataclass(frozen=True)
class SyncResult:
    """Estimated frame offsets.

    Attributes:
        cameras: camera names, in rig order.
        offsets: integer offsets (camera c's frame ``f + offsets[c]`` = reference frame f).
        subframe: the least-squares offsets before rounding (sub-frame estimates).
        reference: the camera whose offset is 0.
        pairs: per-pair lags and the contrast of their cost curves.
        reproj_before_px, reproj_after_px: per camera, median reprojection error of the
            keypoints triangulated from all cameras with zero offsets and with ``offsets``.
    """

    cameras: tuple[str, ...]
    offsets: tuple[int, ...]
    subframe: tuple[float, ...]
    reference: str
    pairs: tuple[PairLag, ...] = field(default=())
    reproj_before_px: tuple[float, ...] = field(default=())
    reproj_after_px: tuple[float, ...] = field(default=())

    def as_dict(self) -> dict[str, int]:
        """``{camera: offset}``, as written to ``[metadata] frame_offsets``."""
        return {c: int(o) for c, o in zip(self.cameras, self.offsets, strict=True)}


def shift_frames(values: np.ndarray, offsets: Sequence[int], fill: float = np.nan) -> np.ndarray:
    """``values`` (C, F, ...) with camera c's index f holding its frame ``f + offsets[c]``."""
    values = np.asarray(values, dtype=float)
    out = np.full_like(values, fill)
    F = values.shape[1]
    for c, o in enumerate(offsets):
        lo, hi = max(0, -o), min(F, F - o)
        if hi > lo:
            out[c, lo:hi] = values[c, lo + o:hi + o]
    return out


def _essential(ci: Camera, cj: Camera) -> np.ndarray:
    R = cj.R_cam_world @ ci.R_cam_world.T
    t = cj.t_cam_world - R @ ci.t_cam_world
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    return tx @ R


def _epipolar_px(E: np.ndarray, xi: np.ndarray, xj: np.ndarray, fi: float, fj: float
                 ) -> np.ndarray:  # fmt: skip
    """Symmetric point-to-epipolar-line distance (px) of normalized points (N, 2) each."""
    hi = np.concatenate([xi, np.ones_like(xi[:, :1])], axis=1)
    hj = np.concatenate([xj, np.ones_like(xj[:, :1])], axis=1)
    lj = hi @ E.T  # lines in j
    li = hj @ E  # lines in i
    num = np.abs(np.sum(hj * lj, axis=1))
    dj = num / np.maximum(np.hypot(lj[:, 0], lj[:, 1]), 1e-12) * fj
    di = num / np.maximum(np.hypot(li[:, 0], li[:, 1]), 1e-12) * fi
    return 0.5 * (di + dj)


def pair_cost_curve(ci: Camera, cj: Camera, xi: np.ndarray, xj: np.ndarray, max_lag: int,
                    min_samples: int = 30) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Median epipolar distance (px) per lag ``-max_lag..max_lag`` (NaN: too few samples).

    Args:
        xi, xj: (F, J, 2) undistorted normalized keypoints of the two cameras (NaN: unseen).

    Returns:
        ``(costs (2 max_lag + 1,), samples (2 max_lag + 1,))``.
    """
    E = _essential(ci, cj)
    fi, fj = float(np.mean(np.diag(ci.K)[:2])), float(np.mean(np.diag(cj.K)[:2]))
    F = xi.shape[0]
    costs = np.full(2 * max_lag + 1, np.nan)
    counts = np.zeros(2 * max_lag + 1, dtype=int)
    for k, lag in enumerate(range(-max_lag, max_lag + 1)):
        lo, hi = max(0, -lag), min(F, F - lag)
        if hi <= lo:
            continue
        a, b = xi[lo:hi].reshape(-1, 2), xj[lo + lag:hi + lag].reshape(-1, 2)
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        counts[k] = int(ok.sum())
        if counts[k] >= min_samples:
            costs[k] = float(np.median(_epipolar_px(E, a[ok], b[ok], fi, fj)))
    return costs, counts


def _parabola_min(costs: np.ndarray, k: int) -> float:
    """Sub-sample position of the minimum at index k (0 when the neighbours are missing)."""
    if 0 < k < len(costs) - 1 and np.all(np.isfinite(costs[k - 1:k + 2])):
        a, b, c = costs[k - 1:k + 2]
        den = a - 2 * b + c
        if den > 0:
            return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return 0.0


def _pair_lag(i: int, j: int, costs: np.ndarray, counts: np.ndarray, max_lag: int
              ) -> PairLag | None:  # fmt: skip
    if not np.isfinite(costs).any():
        return None
    k = int(np.nanargmin(costs))
    best = float(costs[k])
    contrast = float(np.nanmedian(costs) / max(best, 1e-9))
    return PairLag(i, j, k - max_lag, k - max_lag + _parabola_min(costs, k), best,
                   float(costs[max_lag]), contrast, int(counts[k]))  # fmt: skip


def _solve_offsets(pairs: Sequence[PairLag], n: int, reference: int) -> np.ndarray:
    """Weighted least squares on ``o_j - o_i = lag`` with ``o_reference = 0``."""
    rows, rhs, w = [], [], []
    for p in pairs:
        r = np.zeros(n)
        r[p.j], r[p.i] = 1.0, -1.0
        rows.append(r)
        rhs.append(p.subframe)
        w.append(np.sqrt(p.samples * (p.contrast - 1.0)))
    keep = [c for c in range(n) if c != reference]
    if not rows:
        return np.zeros(n)
    A = np.array(rows)[:, keep] * np.array(w)[:, None]
    b = np.array(rhs) * np.array(w)
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    out = np.zeros(n)
    out[keep] = sol
    return out


def _linked(pairs: Sequence[PairLag], n: int, reference: int) -> set[int]:
    seen, todo = {reference}, [reference]
    while todo:
        c = todo.pop()
        for p in pairs:
            for a, b in ((p.i, p.j), (p.j, p.i)):
                if a == c and b not in seen:
                    seen.add(b)
                    todo.append(b)
    return seen


def reprojection_per_camera(rig: Rig, points_px: np.ndarray, xy_norm: np.ndarray,
                            weights: np.ndarray, offsets: Sequence[int]) -> np.ndarray:  # fmt: skip
    """Per camera, the median reprojection error (px) of keypoints triangulated from all
    cameras with ``offsets`` applied (NaN where a camera has no reconstructed keypoint)."""
    px = shift_frames(points_px, offsets)
    xy = shift_frames(xy_norm, offsets)
    w = shift_frames(weights, offsets, fill=0.0)
    X = dlt(rig.extrinsics, xy, np.where(np.isfinite(xy).all(-1), w, 0.0))
    err = np.linalg.norm(rig.project(X) - px, axis=-1)
    out = np.full(len(rig), np.nan)
    for c in range(len(rig)):
        e = err[c][np.isfinite(err[c])]
        if e.size:
            out[c] = float(np.median(e))
    return out


def _significant(rig: Rig, px: np.ndarray, xy: np.ndarray, w: np.ndarray, offsets: np.ndarray,
                 gain: float) -> np.ndarray:  # fmt: skip
    """Offsets that lower their own camera's reprojection error by less than ``gain``
    (relative, against offset 0 with the other cameras as found) are set to 0."""
    offsets = offsets.copy()
    for c in np.flatnonzero(offsets):
        zero = offsets.copy()
        zero[c] = 0
        with_o = reprojection_per_camera(rig, px, xy, w, offsets)[c]
        without = reprojection_per_camera(rig, px, xy, w, zero)[c]
        if not with_o < without * (1 - gain):
            log.info("camera '%s': offset %+d lowers its reprojection error only from %.2f to "
                     "%.2f px; kept at 0", rig.names[c], offsets[c], without, with_o)
            offsets[c] = 0
    return offsets


def estimate_frame_offsets(
    rig: Rig, points_px: np.ndarray, scores: np.ndarray, max_offset: int = 30,
    min_score: float = 0.5, reference: int = 0, min_contrast: float = 1.3, min_samples: int = 30,
    min_gain: float = 0.2,
) -> SyncResult:  # fmt: skip
    """Per-camera frame offsets from the keypoints of people moving (see the module doc).

    Args:
        rig: the calibrated cameras (same order as the keypoints).
        points_px: (C, F, J, 2) keypoints in pixels, NaN where unseen.
        scores: (C, F, J) confidences; keypoints below ``min_score`` are not used.
        max_offset: the largest offset searched, frames.
        reference: index of the camera whose offset is 0.
        min_contrast: a pair votes only if the median of its cost curve is this many times
            its minimum.
        min_gain: a non-zero offset is kept only if it lowers its camera's median
            reprojection error by this fraction (against offset 0).

    Raises:
        InputError: shapes do not match, or no camera pair has a usable cost curve.
    """
    points_px = np.asarray(points_px, dtype=float)
    scores = np.asarray(scores, dtype=float)
    C = len(rig)
    if points_px.ndim != 4 or points_px.shape[0] != C or scores.shape != points_px.shape[:3]:
        raise InputError(f"keypoints must be (C={C}, F, J, 2) with scores (C, F, J); got "
                         f"{points_px.shape} and {scores.shape}")  # fmt: skip
    points_px = np.where((scores >= min_score)[..., None], points_px, np.nan)
    F = points_px.shape[1]
    max_offset = int(min(max_offset, max(F - 2, 0)))
    xy = rig.undistort(points_px)
    pairs = []
    for i in range(C):
        for j in range(i + 1, C):
            costs, counts = pair_cost_curve(rig.cameras[i], rig.cameras[j], xy[i], xy[j],
                                            max_offset, min_samples)  # fmt: skip
            p = _pair_lag(i, j, costs, counts, max_offset)
            if p is not None:
                pairs.append(p)
    voting = [p for p in pairs if p.contrast >= min_contrast]
    if not voting:
        raise InputError("no camera pair sees enough moving keypoints to find frame offsets "
                         f"(best contrast {max((p.contrast for p in pairs), default=0):.2f}, "
                         f"need {min_contrast})")  # fmt: skip
    linked = _linked(voting, C, reference)
    for c in sorted(set(range(C)) - linked):
        log.warning("camera '%s' is not linked to the reference by any pair with enough "
                    "motion; its offset stays 0", rig.names[c])  # fmt: skip
    sub = _solve_offsets([p for p in voting if p.i in linked and p.j in linked], C, reference)
    w = np.where(np.isfinite(points_px).all(-1), scores, 0.0)
    offsets = _significant(rig, points_px, xy, w, np.round(sub).astype(int), min_gain)
    before = reprojection_per_camera(rig, points_px, xy, w, [0] * C)
    after = reprojection_per_camera(rig, points_px, xy, w, offsets)
    return SyncResult(rig.names, tuple(int(o) for o in offsets), tuple(float(s) for s in sub),
                      rig.names[reference], tuple(pairs), tuple(before), tuple(after))  # fmt: skip


# ----------------------------------------------------------------------------- pipeline use


def read_frame_offsets(path: str | Path, names: Sequence[str]) -> dict[str, int]:
    """``[metadata] frame_offsets`` of an anipose TOML calibration (0 for unlisted cameras;
    all 0 for other formats or without the key)."""
    path = Path(path)
    if path.suffix.lower() != ".toml" or not path.is_file():
        return {n: 0 for n in names}
    try:
        meta = tomllib.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {n: 0 for n in names}
    off = meta.get("frame_offsets") if isinstance(meta, dict) else None
    if off is None:
        return {n: 0 for n in names}
    if not isinstance(off, dict):
        raise CalibrationError("[metadata] frame_offsets must be a table camera = frames", path)
    try:
        return {n: int(off.get(n, 0)) for n in names}
    except (TypeError, ValueError):
        raise CalibrationError("[metadata] frame_offsets values must be integers",
                               path) from None  # fmt: skip


def shifted_ranges(start: int, stop: int | None, step: int, lengths: Mapping[str, int],
                   offsets: Mapping[str, int]) -> tuple[range, dict[str, range]]:  # fmt: skip
    """The reference frame range and each camera's own range under frame offsets.

    Camera c reads frames ``f + offsets[c]`` for the reference frames f; the common range
    shrinks to the reference frames every camera has (no camera gets missing frames at the
    ends).

    Args:
        start, stop, step: the requested reference range (``stop`` None: as far as possible).
        lengths: frames per camera video.

    Raises:
        InputError: the offsets leave no common frame.
    """
    lo = max([start] + [-offsets.get(c, 0) for c in lengths])
    hi = min(n - offsets.get(c, 0) for c, n in lengths.items())
    hi = hi if stop is None else min(stop, hi)
    # keep the requested frame grid: the first frame is start + a multiple of step
    lo = start + -(-(lo - start) // step) * step
    ref = range(lo, hi, step)
    if len(ref) == 0:
        raise InputError(f"the frame offsets {dict(offsets)} leave no common frame in "
                         f"{start}:{stop} (video lengths {dict(lengths)})")  # fmt: skip
    per_cam = {c: range(lo + offsets.get(c, 0), hi + offsets.get(c, 0), step) for c in lengths}
    return ref, per_cam
