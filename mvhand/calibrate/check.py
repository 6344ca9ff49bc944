"""Checking a calibration against board videos: reprojection, square size, warnings, figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.calibrate.boards import Board
from mvhand.calibrate.workflow import Triangulated, triangulate_corners
from mvhand.core.camera import UNIT_SCALE_M, Rig


@dataclass(frozen=True, eq=False)
class CheckReport:
    """What ``mvhand calib check`` measured.

    Attributes:
        names: camera names.
        rms_px: ``(C,)`` RMS reprojection error of the triangulated board corners.
        median_px: ``(C,)`` median reprojection error.
        n_obs: ``(C,)`` corner observations used per camera.
        loo_rms_px: ``(C,)`` RMS error in each camera of the corners triangulated by other
            cameras (the best pair of them: a camera that disagrees with the rest stands out).
        square_m: median triangulated square side, metres (NaN: no pair triangulated).
        square_error: relative error of ``square_m`` against the board's square.
        square_spread: median absolute deviation of the sides over their median.
        warnings: what would silently break 3D.
        tri: the triangulated corners.
    """

    names: tuple[str, ...]
    rms_px: np.ndarray
    median_px: np.ndarray
    n_obs: np.ndarray
    loo_rms_px: np.ndarray
    square_m: float
    square_error: float
    square_spread: float
    warnings: tuple[str, ...]
    tri: Triangulated


def _behind(rig: Rig, points: np.ndarray, corners_px: np.ndarray) -> list[str]:
    """Cameras that see board corners which triangulate behind them (a flipped camera)."""
    out = []
    for c, cam in enumerate(rig.cameras):
        seen = np.isfinite(corners_px[c, ..., 0]) & np.isfinite(points[..., 0])
        if seen.sum() < 4:
            continue
        z = cam.world_to_cam(points[seen])[:, 2]
        if np.mean(z < 0) > 0.5:
            out.append(f"camera {cam.name}: the board it sees lies behind it (flipped camera or "
                       "wrong rotation convention)")  # fmt: skip
    return out


def _two_view(rig: Rig, a: int, b: int, norm: np.ndarray) -> np.ndarray:
    """Batched DLT of points ``(P,)`` from cameras a and b (undistorted ``norm`` (C, P, 2))."""
    P = rig.extrinsics
    rows = []
    for c in (a, b):
        x, y = norm[c, :, 0:1], norm[c, :, 1:2]
        rows += [x * P[c, 2] - P[c, 0], y * P[c, 2] - P[c, 1]]
    A = np.stack(rows, axis=1)  # (P, 4, 4)
    ok = np.isfinite(A).all(axis=(1, 2))
    X = np.full((A.shape[0], 3), np.nan)
    if ok.any():
        vt = np.linalg.svd(A[ok])[2]
        X[ok] = vt[:, -1, :3] / vt[:, -1, 3:4]
    return X


def _leave_one_out(rig: Rig, corners_px: np.ndarray) -> np.ndarray:
    """Per camera, the best RMS error over pairs of other cameras of their triangulated corners
    seen in it: a camera that disagrees with all pairs of the others stands out."""
    C = len(rig)
    out = np.full(C, np.nan)
    if C < 3:
        return out
    flat = corners_px.reshape(C, -1, 2)
    norm = rig.undistort(flat)
    for c, cam in enumerate(rig.cameras):
        others = [k for k in range(C) if k != c]
        for i, a in enumerate(others):
            for b in others[i + 1:]:
                err = np.linalg.norm(cam.project(_two_view(rig, a, b, norm)) - flat[c], axis=-1)
                if np.isfinite(err).sum() >= 4:
                    rms = float(np.sqrt(np.nanmean(err**2)))
                    out[c] = rms if not rms >= out[c] else out[c]
    return out


def check_rig(rig: Rig, board: Board, corners_px: np.ndarray) -> CheckReport:
    """Triangulate every corner seen by two or more cameras and measure the rig with it."""
    tri = triangulate_corners(rig, corners_px)
    err = tri.reproj_px
    ok = np.isfinite(err) & np.isfinite(tri.points[None, ..., 0])
    rms = np.array([np.sqrt(np.mean(e[m] ** 2)) if m.any() else np.nan
                    for e, m in zip(err, ok, strict=True)])  # fmt: skip
    med = np.array([np.median(e[m]) if m.any() else np.nan for e, m in zip(err, ok, strict=True)])
    pairs = board.neighbour_pairs()
    sides = np.linalg.norm(tri.points[:, pairs[:, 0]] - tri.points[:, pairs[:, 1]], axis=-1)
    sides = sides[np.isfinite(sides)] * UNIT_SCALE_M[rig.units]
    square = float(np.median(sides)) if len(sides) else float("nan")
    spread = float(np.median(np.abs(sides - square)) / square) if len(sides) else float("nan")
    rel = square / board.square_size_m - 1.0
    warnings = _behind(rig, tri.points, corners_px)
    loo = _leave_one_out(rig, corners_px)
    good = np.isfinite(loo)
    if good.sum() >= 3:
        ref = float(np.median(loo[good]))
        for n, v in zip(rig.names, loo, strict=True):
            if v > max(3 * ref, 2.0):
                warnings.append(f"camera {n}: the board triangulated by the other cameras lands "
                                f"{v:.1f} px from where it sees it, far above the others' median "
                                f"{ref:.1f} px (moved camera or bad intrinsics?)")
    for n, cnt in zip(rig.names, ok.sum(axis=(1, 2)), strict=True):
        if cnt == 0:
            warnings.append(f"camera {n}: no board corner seen together with another camera")
    if np.isfinite(square):
        ratio = square / board.square_size_m
        for factor, what in ((1000, "mm read as m"), (100, "cm read as m"), (0.001, "m read as mm"),
                             (0.01, "m read as cm")):  # fmt: skip
            if abs(np.log10(ratio / factor)) < 0.15:
                warnings.append(f"the triangulated squares are {ratio:g} times the board's: units "
                                f"off ({what})?")
                break
        else:
            if abs(rel) > 0.05:
                warnings.append(f"the triangulated squares are {100 * rel:+.1f}% off the board's "
                                "size: scale or intrinsics are wrong")
    return CheckReport(rig.names, rms, med, ok.sum(axis=(1, 2)), loo, square, rel, spread,
                       tuple(warnings), tri)  # fmt: skip


def save_figure(path: str | Path, rig: Rig, report: CheckReport) -> None:
    """Two panels: cameras and triangulated corners seen from above; per-camera errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    pts = report.tri.points.reshape(-1, 3)
    pts = pts[np.isfinite(pts[:, 0])]
    centres = np.array([c.center_world for c in rig.cameras])
    # project on the two world axes with the largest spread of the cameras and points
    allp = np.vstack([centres, pts]) if len(pts) else centres
    axes = np.argsort(-allp.std(axis=0))[:2]
    if len(pts):
        ax.scatter(pts[:, axes[0]], pts[:, axes[1]], s=2, c="0.6", label="board corners")
    for c, cam in enumerate(rig.cameras):
        d = cam.R_cam_world[2] * 0.15 * max(1e-9, np.ptp(allp[:, axes]).max())
        ax.arrow(centres[c, axes[0]], centres[c, axes[1]], d[axes[0]], d[axes[1]],
                 head_width=0.02 * np.ptp(allp[:, axes]).max(), color=f"C{c % 10}")  # fmt: skip
        ax.annotate(cam.name, centres[c, axes], fontsize=8)
    ax.set_xlabel(f"world {'xyz'[axes[0]]} ({rig.units})")
    ax.set_ylabel(f"world {'xyz'[axes[1]]} ({rig.units})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("cameras (arrows: viewing direction) and triangulated board")
    bx.bar(range(len(rig)), report.rms_px, color=[f"C{c % 10}" for c in range(len(rig))])
    bx.set_xticks(range(len(rig)), rig.names, rotation=45, ha="right", fontsize=8)
    bx.set_ylabel("board reprojection RMS (px)")
    bx.set_title(f"square {1000 * report.square_m:.2f} mm ({100 * report.square_error:+.2f}%)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
