"""Per-camera intrinsics from board views: frame selection, OpenCV calibration, coverage.

Choices (measured; figures in the closing note of issue 14):

- The solver is OpenCV's (``cv2.calibrateCamera`` for the pinhole k1, k2, p1, p2, k3 model,
  ``cv2.fisheye.calibrate`` for the fisheye model): the reference implementation, and mvhand's
  :class:`~mvhand.core.camera.Camera` reproduces its projection exactly. aniposelib's
  intrinsics are the same OpenCV calls.
- k3 is estimated only with enough views (``k3_min_views``): with the 6-7 photos per Pose2Sim
  camera a free k3 trades against the focal length (cam03: 0.4% further from Qualisys), and
  Qualisys itself reports k3 = 0 for these lenses.
- Views whose own RMS is far above the others (a wrong corner order, motion blur) are
  dropped and the calibration redone, at most twice.
- Frame selection from videos: sharp views first (variance of the Laplacian, relative to the
  video's median), then farthest-point sampling over where the board's outline lies in the
  image (its four outer corners, normalized by the image size), skipping near-duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.calibrate.boards import Board
from mvhand.calibrate.detect import Detections
from mvhand.config import param
from mvhand.core.camera import Camera
from mvhand.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntrinsicsConfig:
    """How intrinsics are estimated."""

    model: str = param("pinhole", "lens model: OpenCV pinhole (k1, k2, p1, p2, k3) or fisheye "
                       "(k1..k4)", choices=("pinhole", "fisheye"))
    max_views: int = param(40, "use at most this many views per camera (frame selection)", ge=4)
    min_views: int = param(4, "fewer usable views than this is an error", ge=3)
    k3_min_views: int = param(
        15, "estimate k3 only with at least this many views (else k3 = 0)", ge=3)
    blur_ratio: float = param(
        0.35, "drop views whose sharpness is below this fraction of the median", ge=0.0, le=1.0)
    duplicate_distance: float = param(
        0.01, "views whose board outline lies within this fraction of the image size of an "
        "already chosen view are near-duplicates", ge=0.0, le=1.0)
    outlier_ratio: float = param(
        3.0, "drop views whose RMS exceeds this multiple of the median view RMS (and 1 px)", gt=1.0)


@dataclass(frozen=True, eq=False)
class IntrinsicsResult:
    """One camera's intrinsics and how well they fit.

    Attributes:
        camera: the camera (identity extrinsics).
        rms_px: RMS reprojection error over all used corners, pixels.
        view_rms_px: ``(V,)`` per used view.
        used: ``(V,)`` frame indices (``Detections.frames``) used.
        dropped: frame indices dropped as outliers.
        detections: the views used (for the coverage picture and the report).
        n_candidates: frames in which the board was found.
    """

    camera: Camera
    rms_px: float
    view_rms_px: np.ndarray
    used: np.ndarray
    dropped: np.ndarray
    detections: Detections
    n_candidates: int


def _outline(board: Board, corners_px: np.ndarray, size_px: tuple[int, int]) -> np.ndarray:
    """The board's outer corners mapped by the view's homography, normalized (8,)."""
    import cv2

    ok = np.isfinite(corners_px[:, 0])
    obj = board.points_m()[ok, :2]
    H, _ = cv2.findHomography(obj, corners_px[ok], 0)
    lo, hi = board.points_m()[:, :2].min(axis=0), board.points_m()[:, :2].max(axis=0)
    quad = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    if H is None:
        return np.full(8, np.nan)
    out = cv2.perspectiveTransform(quad[None], H)[0] / np.asarray(size_px, float)
    return out.ravel()


def select_views(det: Detections, board: Board, cfg: IntrinsicsConfig,
                 min_corners: int = 6) -> np.ndarray:  # fmt: skip
    """Indices into ``det`` of sharp, well-spread, distinct views (at most ``cfg.max_views``)."""
    cand = np.flatnonzero(det.n_seen >= min_corners)
    if len(cand) == 0:
        return cand
    sharp = det.sharpness[cand]
    if np.isfinite(sharp).any() and not det.names:  # photos: no blur filter (few, chosen)
        keep = ~(sharp < cfg.blur_ratio * np.nanmedian(sharp))
        cand, sharp = cand[keep], sharp[keep]
    desc = np.array([_outline(board, det.corners_px[i], det.size_px) for i in cand])
    ok = np.isfinite(desc).all(axis=1)
    cand, sharp, desc = cand[ok], sharp[ok], desc[ok]
    if len(cand) == 0:
        return cand
    chosen = [int(np.nanargmax(sharp)) if np.isfinite(sharp).any() else 0]
    dist = np.linalg.norm(desc - desc[chosen[0]], axis=1) / 2.0  # RMS over the 4 corners
    while len(chosen) < cfg.max_views:
        nxt = int(np.argmax(dist))
        if dist[nxt] < cfg.duplicate_distance:
            break
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(desc - desc[nxt], axis=1) / 2.0)
    return np.sort(cand[chosen])


def _view_points(board: Board, corners_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(corners_px[:, 0])
    return board.points_m()[ok].astype(np.float32), corners_px[ok].astype(np.float32)


def _calibrate_once(obj: list[np.ndarray], img: list[np.ndarray], size: tuple[int, int],
                    model: str, fix_k3: bool) -> tuple[np.ndarray, ...]:
    """OpenCV calibration; returns K, dist, per-view RMS."""
    import cv2

    if model == "fisheye":
        flags = (cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW)
        crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 200, 1e-9)
        o = [p[:, None, :].astype(np.float64) for p in obj]
        i = [p[:, None, :].astype(np.float64) for p in img]
        _, K, d, rvecs, tvecs = cv2.fisheye.calibrate(o, i, size, None, None, flags=flags,
                                                      criteria=crit)  # fmt: skip
        proj = [cv2.fisheye.projectPoints(p, r, t, K, d)[0].reshape(-1, 2)
                for p, r, t in zip(o, rvecs, tvecs, strict=True)]  # fmt: skip
    else:
        flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
        _, K, d, rvecs, tvecs = cv2.calibrateCamera(obj, img, size, None, None, flags=flags)
        proj = [cv2.projectPoints(p, r, t, K, d)[0].reshape(-1, 2)
                for p, r, t in zip(obj, rvecs, tvecs, strict=True)]  # fmt: skip
    view_rms = np.array([np.sqrt(np.mean(np.sum((p - q.reshape(-1, 2)) ** 2, axis=1)))
                         for p, q in zip(proj, img, strict=True)])  # fmt: skip
    return K, np.asarray(d, float).ravel(), view_rms


def calibrate_intrinsics(det: Detections, board: Board, name: str,
                         cfg: IntrinsicsConfig = IntrinsicsConfig(),
                         min_corners: int = 6) -> IntrinsicsResult:  # fmt: skip
    """Select views of ``det``, calibrate, drop outlier views, calibrate again.

    Raises:
        InputError: naming ``det.source`` when fewer than ``cfg.min_views`` views are usable.
    """
    import cv2

    n_cand = int(np.sum(det.n_seen >= min_corners))
    views = select_views(det, board, cfg, min_corners)
    dropped: list[int] = []
    for _ in range(3):
        if len(views) < cfg.min_views:
            raise InputError(f"too few views of the board for intrinsics: {len(views)} usable "
                             f"of {len(det.frames)} frames (board found in {n_cand}); need "
                             f"{cfg.min_views}", det.source)  # fmt: skip
        pts = [_view_points(board, det.corners_px[v]) for v in views]
        try:
            K, d, view_rms = _calibrate_once([p[0] for p in pts], [p[1] for p in pts],
                                             det.size_px, cfg.model,
                                             len(views) < cfg.k3_min_views)  # fmt: skip
        except cv2.error as exc:
            raise InputError(f"OpenCV could not calibrate from {len(views)} views "
                             f"({str(exc).strip().splitlines()[-1]})", det.source) from None
        bad = view_rms > max(cfg.outlier_ratio * np.median(view_rms), 1.0)
        if not bad.any() or len(views) - bad.sum() < cfg.min_views:
            break
        dropped += det.frames[views[bad]].tolist()
        views = views[~bad]
    n_pts = np.array([len(p[1]) for p in pts])
    rms = float(np.sqrt(np.sum(view_rms**2 * n_pts) / n_pts.sum()))
    cam = Camera(name, det.size_px, K, d, np.eye(3), np.zeros(3), cfg.model)
    return IntrinsicsResult(cam, rms, view_rms, det.frames[views], np.asarray(dropped, int),
                            det.with_frames(views), n_cand)  # fmt: skip


def coverage_image(result: IntrinsicsResult, all_det: Detections | None = None) -> np.ndarray:
    """A BGR picture of where the used corners lie in the image (grey: found, not used)."""
    import cv2

    w, h = result.detections.size_px
    scale = min(1.0, 900.0 / max(w, h))
    img = np.full((int(h * scale), int(w * scale), 3), 255, np.uint8)
    for k in range(1, 8):  # the 8 x 8 cells of coverage_fraction
        x, y = int(k * w * scale / 8), int(k * h * scale / 8)
        cv2.line(img, (x, 0), (x, img.shape[0]), (235, 235, 235), 1)
        cv2.line(img, (0, y), (img.shape[1], y), (235, 235, 235), 1)
    cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (0, 0, 0), 1)
    for det, colour in ((all_det, (190, 190, 190)), (result.detections, None)):
        if det is None:
            continue
        for k, view in enumerate(det.corners_px):
            c = colour or tuple(int(v) for v in cv2.applyColorMap(
                np.uint8([[int(255 * k / max(1, len(det.corners_px) - 1))]]),
                cv2.COLORMAP_JET)[0, 0])  # fmt: skip
            for x, y in view[np.isfinite(view[:, 0])]:
                cv2.circle(img, (int(x * scale), int(y * scale)), 3, c, -1)
    frac = coverage_fraction(result)
    text = (f"{result.camera.name}: {len(result.used)} views, RMS {result.rms_px:.2f} px, "
            f"image area covered {100 * frac:.0f}% (8x8 cells)")
    cv2.putText(img, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def coverage_fraction(result: IntrinsicsResult, cells: int = 8) -> float:
    """Fraction of a ``cells`` x ``cells`` grid over the image that holds a used corner."""
    w, h = result.detections.size_px
    xy = result.detections.corners_px.reshape(-1, 2)
    xy = xy[np.isfinite(xy[:, 0])]
    ix = np.clip((xy[:, 0] / w * cells).astype(int), 0, cells - 1)
    iy = np.clip((xy[:, 1] / h * cells).astype(int), 0, cells - 1)
    return float(len(set(zip(ix.tolist(), iy.tolist(), strict=True))) / cells**2)


def save_coverage(path: str | Path, result: IntrinsicsResult,
                  all_det: Detections | None = None) -> None:  # fmt: skip
    """Write the coverage picture as PNG."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), coverage_image(result, all_det)):
        raise InputError("could not write the coverage picture", path)
