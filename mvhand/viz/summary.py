"""A one-page summary figure of a run (matplotlib, PNG).

Panels: completeness over time (share of the 21 joints detected per camera and hand, and
reconstructed in 3D per hand), reprojection error per joint (median and interquartile range,
per hand, in finger colours), and bone lengths over time (per hand, one line per bone, in
finger colours; steady lines mean a consistent skeleton).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M
from mvhand.core.data import Hands3D, Keypoints2D
from mvhand.core.skeleton import BONES, JOINT_FINGER, JOINT_NAMES, N_JOINTS, bone_lengths
from mvhand.viz.geometry import FINGER_RGB, WRIST_RGB


def completeness_rows(hands3d: Hands3D, keypoints2d: Keypoints2D | None
                      ) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """Share of joints present per row and frame: ``(R, T)`` in [0, 1], and the row names.

    Rows: per camera and hand (2D detections), then per hand (3D reconstruction).
    """
    rows, names = [], []
    if keypoints2d is not None:
        det = np.isfinite(keypoints2d.keypoints_px).all(-1).mean(-1)  # (C, T, H)
        for c, cam in enumerate(keypoints2d.cameras):
            for h, hand in enumerate(keypoints2d.hands):
                rows.append(det[c, :, h])
                names.append(f"{cam} {hand}")
    valid = hands3d.valid.mean(-1)  # (T, H)
    for h, hand in enumerate(hands3d.hands):
        rows.append(valid[:, h])
        names.append(f"3D {hand}")
    return np.array(rows), names


def _finger_color(joint: int) -> np.ndarray:
    return WRIST_RGB * 0.6 if JOINT_FINGER[joint] < 0 else FINGER_RGB[JOINT_FINGER[joint]]


def summary_figure(hands3d: Hands3D, keypoints2d: Keypoints2D | None, path: str | Path,
                   title: str | None = None, fps: float | None = None,
                   per_camera: dict | None = None) -> Path:  # fmt: skip
    """Write the summary PNG to ``path`` and return it.

    Args:
        hands3d: the 3D results ``(T, H, 21, 3)``.
        keypoints2d: the 2D keypoints (adds per-camera completeness rows), or None.
        path: the PNG file.
        title: the figure title (default: "mvhand run summary").
        fps: frame rate for a time axis in seconds (None: frames).
        per_camera: the report's per-camera consistency figures (median reprojection error,
            share of rejected views); adds a row of bars, one per camera.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    T, H = hands3d.keypoints3d.shape[:2]
    rows = 4 if per_camera else 3
    fig = plt.figure(figsize=(11.7, 8.3 if rows == 3 else 10.5), dpi=110)  # A4 landscape
    gs = fig.add_gridspec(rows, H, height_ratios=[1.1, 1.0, 1.2, 0.9][:rows], hspace=0.6,
                          wspace=0.25)  # fmt: skip
    fig.suptitle(title or "mvhand run summary", fontsize=13)
    x = np.arange(T) / fps if fps else np.arange(T)
    xlabel = "time (s)" if fps else "frame"
    _completeness(fig.add_subplot(gs[0, :]), hands3d, keypoints2d, x, xlabel)
    for h in range(H):
        _errors(fig.add_subplot(gs[1, h]), hands3d, h)
        _bones(fig.add_subplot(gs[2, h]), hands3d, h, x, xlabel)
    if per_camera:
        _cameras(fig.add_subplot(gs[3, :]), per_camera)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _cameras(ax, per_camera: dict) -> None:
    """Per camera: median reprojection error (bars) and share of rejected views (line)."""
    names = list(per_camera)
    err = [per_camera[c]["median_reprojection_error_px"] or 0.0 for c in names]
    rej = [100 * (per_camera[c]["rejected_share"] or 0.0) for c in names]
    xs = np.arange(len(names))
    ax.bar(xs, err, color="#4c72b0", width=0.6)
    ax.set_xticks(xs, names, fontsize=8)
    ax.set_ylabel("median reproj. (px)")
    ax.set_title("per camera: reprojection error of its inlier views (bars), views rejected "
                 "as outliers (dots, right axis)", fontsize=9)  # fmt: skip
    twin = ax.twinx()
    twin.plot(xs, rej, "o", color="#c44e52")
    twin.set_ylim(0, max(100.0, max(rej, default=0) * 1.1))
    twin.set_ylabel("rejected (%)")


def _completeness(ax, hands3d, keypoints2d, x, xlabel) -> None:
    data, names = completeness_rows(hands3d, keypoints2d)
    extent = (x[0], x[-1] if len(x) > 1 else x[0] + 1, len(names) - 0.5, -0.5)
    im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                   extent=extent)  # fmt: skip
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title("completeness: share of the 21 joints found (2D per camera, 3D per hand)",
                 fontsize=10)  # fmt: skip
    ax.figure.colorbar(im, ax=ax, fraction=0.02, pad=0.01)


def _errors(ax, hands3d: Hands3D, h: int) -> None:
    err = hands3d.reprojection_error_px[:, h].astype(float)
    err = np.where(hands3d.valid[:, h], err, np.nan)
    has = np.isfinite(err).any(0)
    q = np.full((3, N_JOINTS), np.nan)
    if has.any():
        q[:, has] = np.nanpercentile(err[:, has], [25, 50, 75], axis=0)
    colors = [_finger_color(j) for j in range(N_JOINTS)]
    ax.bar(range(N_JOINTS), q[1], color=colors, edgecolor="k", linewidth=0.4)
    ax.errorbar(range(N_JOINTS), q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="none", ecolor="k",
                capsize=2, linewidth=0.8)  # fmt: skip
    ax.set_xticks(range(N_JOINTS), [n.replace("_", " ") for n in JOINT_NAMES], rotation=90,
                  fontsize=6)  # fmt: skip
    ax.set_ylabel("reprojection error (px)")
    med = np.nanmedian(err) if np.isfinite(err).any() else float("nan")
    ax.set_title(f"{hands3d.hands[h]} hand: error per joint (median {med:.1f} px, IQR bars)",
                 fontsize=9)  # fmt: skip


def _bones(ax, hands3d: Hands3D, h: int, x, xlabel) -> None:
    to_mm = UNIT_SCALE_M[hands3d.units] * 1000.0
    lengths = bone_lengths(hands3d.keypoints3d[:, h]) * to_mm  # (T, 20)
    for b, (_, child) in enumerate(BONES):
        ax.plot(x, lengths[:, b], color=_finger_color(child), linewidth=0.9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("bone length (mm)")
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.nanstd(lengths, 0) / np.nanmean(lengths, 0) if np.isfinite(lengths).any() else None
    spread = f", median variation {100 * np.nanmedian(cv):.1f} %" if cv is not None and \
        np.isfinite(cv).any() else ""  # fmt: skip
    ax.set_title(f"{hands3d.hands[h]} hand: bone lengths over time{spread}", fontsize=9)
    ax.grid(alpha=0.3)
