"""Finding a calibration board in images and videos.

Choices (measured on ``../shared/data``, see the closing note of issue 14 and the tests):

- Checkerboards: ``cv2.findChessboardCornersSB`` (OpenCV's sector-based detector, more
  accurate than ``findChessboardCorners`` + ``cornerSubPix``); on photos, when its fast search
  fails, the exhaustive one (Pose2Sim photos: the classic detector finds 24 of 28, SB's fast
  search 14, with the exhaustive fallback 25). Every detection must pass a homography test: a
  planar grid seen through a lens deviates from one homography by a small fraction of a square;
  a grid put together from wrong corners does not.
- ChArUco: ``cv2.aruco.CharucoDetector`` (OpenCV 4.11's board detector, markers then
  interpolated corners); inverted boards are detected on the inverted image.
- When nothing is found, :func:`diagnose` tries the usual mistakes (inverted printing, another
  dictionary, squares counted instead of inner corners) and says which one fits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mvhand.calibrate.boards import Board
from mvhand.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: a detection's RMS deviation from one homography, as a fraction of the median square side
MAX_HOMOGRAPHY_RMS = 0.15


@dataclass(frozen=True, eq=False)
class Detections:
    """Board corners found in one camera's images or video frames.

    Attributes:
        source: the video file or image folder.
        size_px: image (width, height).
        frames: ``(F,)`` frame indices (videos) or image numbers (folders) looked at.
        corners_px: ``(F, N, 2)`` pixels, NaN where a corner was not found.
        sharpness: ``(F,)`` variance of the Laplacian inside the board's box (NaN: no board).
        names: per frame, the image file name (folders) or "" (videos).
    """

    source: Path
    size_px: tuple[int, int]
    frames: np.ndarray
    corners_px: np.ndarray
    sharpness: np.ndarray
    names: tuple[str, ...] = ()

    @property
    def n_seen(self) -> np.ndarray:
        """``(F,)`` corners found per frame."""
        return np.isfinite(self.corners_px[..., 0]).sum(axis=1)

    def with_frames(self, keep: np.ndarray) -> Detections:
        """The detections of the frames selected by a boolean or index array ``keep``."""
        names = tuple(np.asarray(self.names, dtype=object)[keep]) if self.names else ()
        return Detections(self.source, self.size_px, self.frames[keep], self.corners_px[keep],
                          self.sharpness[keep], names)  # fmt: skip


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grayscale of an RGB or gray image."""
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _homography_ok(board: Board, ids: np.ndarray, xy: np.ndarray) -> bool:
    """True when the corners are a plausible view of the planar board (see module doc)."""
    import cv2

    obj = board.points_m()[ids, :2]
    if len(ids) < 4 or np.linalg.matrix_rank(obj - obj.mean(axis=0), tol=1e-9) < 2:
        return False
    H, _ = cv2.findHomography(obj, xy, 0)
    if H is None:
        return False
    proj = cv2.perspectiveTransform(obj[None].astype(np.float64), H)[0]
    rms = float(np.sqrt(np.mean(np.sum((proj - xy) ** 2, axis=1))))
    pairs = board.neighbour_pairs()
    have = np.zeros(board.n_corners, bool)
    have[ids] = True
    pos = np.full((board.n_corners, 2), np.nan)
    pos[ids] = xy
    pairs = pairs[have[pairs[:, 0]] & have[pairs[:, 1]]]
    if len(pairs) == 0:
        return False
    side = float(np.median(np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)))
    return rms <= MAX_HOMOGRAPHY_RMS * side


def _find_checkerboard(gray: np.ndarray, board: Board,
                       thorough: bool) -> tuple[np.ndarray, np.ndarray] | None:  # fmt: skip
    import cv2

    ok, corners = cv2.findChessboardCornersSB(gray, board.inner_corners,
                                              flags=cv2.CALIB_CB_NORMALIZE_IMAGE)  # fmt: skip
    # photos: the exhaustive search, ~1.7 s each on 1088x1920, without and with normalization
    # (each finds a Pose2Sim photo the other misses)
    extra = cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY
    for flags in ((extra, extra | cv2.CALIB_CB_NORMALIZE_IMAGE) if thorough else ()):
        if ok:
            break
        ok, corners = cv2.findChessboardCornersSB(gray, board.inner_corners, flags=flags)
    if not ok or corners is None:
        return None
    return np.arange(board.n_corners), corners.reshape(-1, 2).astype(float)


def _find_charuco(gray: np.ndarray, board: Board, detector) -> tuple[np.ndarray, np.ndarray] | None:
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or len(ids) == 0:
        return None
    return ids.ravel().astype(int), corners.reshape(-1, 2).astype(float)


class BoardFinder:
    """Finds one board in images (keeps the OpenCV detector between calls).

    Args:
        board: the board definition.
        min_corners: fewer corners than this count as "not found".
        thorough: checkerboards: when the fast search fails, search exhaustively (photos).
    """

    def __init__(self, board: Board, min_corners: int = 6, thorough: bool = False) -> None:
        self.board = board
        self.thorough = thorough
        self.min_corners = max(4, min(min_corners, board.n_corners))
        self._detector = None
        if board.kind == "charuco":
            import cv2

            self._detector = cv2.aruco.CharucoDetector(board.cv_board())

    def find(self, image: np.ndarray) -> np.ndarray | None:
        """Corners ``(N, 2)`` pixels (NaN where not seen), or None when the board is not found."""
        gray = to_gray(image)
        if self.board.inverted:
            gray = 255 - gray
        if self.board.kind == "checkerboard":
            found = _find_checkerboard(gray, self.board, self.thorough)
        else:
            found = _find_charuco(gray, self.board, self._detector)
        if found is None or len(found[0]) < self.min_corners:
            return None
        ids, xy = found
        if not _homography_ok(self.board, ids, xy):
            log.debug("rejected a detection that is not a planar grid")
            return None
        out = np.full((self.board.n_corners, 2), np.nan)
        out[ids] = xy
        return out


def sharpness(gray: np.ndarray, corners_px: np.ndarray) -> float:
    """Variance of the Laplacian inside the box of the found corners (blur measure)."""
    import cv2

    ok = np.isfinite(corners_px[:, 0])
    lo = np.floor(corners_px[ok].min(axis=0)).astype(int)
    hi = np.ceil(corners_px[ok].max(axis=0)).astype(int) + 1
    lo = np.maximum(lo, 0)
    patch = gray[lo[1]:hi[1], lo[0]:hi[0]]
    if patch.size < 16:
        return float("nan")
    return float(cv2.Laplacian(patch, cv2.CV_64F).var())


def _detect_stream(frames: Iterable[tuple[int, np.ndarray | None]], finder: BoardFinder,
                   source: Path, names: Sequence[str] = ()) -> Detections:  # fmt: skip
    idx, corners, sharp, size = [], [], [], None
    for i, image in frames:
        idx.append(i)
        blank = np.full((finder.board.n_corners, 2), np.nan)
        if image is None:
            corners.append(blank)
            sharp.append(np.nan)
            continue
        size = (image.shape[1], image.shape[0])
        found = finder.find(image)
        corners.append(blank if found is None else found)
        sharp.append(np.nan if found is None else sharpness(to_gray(image), found))
    if size is None:
        raise InputError("no frame could be read", source)
    return Detections(source, size, np.asarray(idx, int), np.asarray(corners), np.asarray(sharp),
                      tuple(names))  # fmt: skip


def detect_in_video(path: str | Path, board: Board, step: int = 1, start: int = 0,
                    stop: int | None = None, min_corners: int = 6) -> Detections:  # fmt: skip
    """Look for the board in frames ``start:stop:step`` of a video."""
    from mvhand.io.video import iter_frames

    path = Path(path)
    finder = BoardFinder(board, min_corners)
    return _detect_stream(iter_frames(path, start, stop, step), finder, path)


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, in natural order."""
    from mvhand.io.calib_convert import natural_key

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("image folder not found", folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder", folder)
    return sorted(files, key=lambda p: natural_key(p.name))


def _read_images(files: Sequence[Path]) -> Iterable[tuple[int, np.ndarray | None]]:
    import cv2

    size = None
    for i, f in enumerate(files):
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputError("cannot read this image", f)
        if size is not None and img.shape != size:
            raise InputError(f"image size {img.shape[1]}x{img.shape[0]} differs from the "
                             f"folder's first image ({size[1]}x{size[0]})", f)  # fmt: skip
        size = img.shape
        yield i, img


def detect_in_images(folder: str | Path, board: Board, min_corners: int = 6) -> Detections:
    """Look for the board in every image of a folder."""
    files = list_images(folder)
    finder = BoardFinder(board, min_corners, thorough=True)
    return _detect_stream(_read_images(files), finder, Path(folder), [f.name for f in files])


def detect_any(source: str | Path, board: Board, step: int = 1, min_corners: int = 6,
               stop: int | None = None) -> Detections:  # fmt: skip
    """A video file or a folder of images."""
    source = Path(source)
    if source.is_dir():
        return detect_in_images(source, board, min_corners)
    return detect_in_video(source, board, step, 0, stop, min_corners)


def sample_images(source: Path, n: int = 8) -> list[np.ndarray]:
    """A few evenly spread grayscale frames of a video or image folder (for diagnoses)."""
    import cv2

    from mvhand.io.video import iter_frames, probe_video

    if source.is_dir():
        files = list_images(source)
        pick = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).astype(int))
        return [cv2.imread(str(files[i]), cv2.IMREAD_GRAYSCALE) for i in pick]
    total = probe_video(source).n_frames
    step = max(1, total // n)
    return [to_gray(img) for _, img in iter_frames(source, 0, None, step) if img is not None][:n]


def _other_dictionaries(gray: list[np.ndarray], board: Board) -> str | None:
    import cv2

    names = ["DICT_4X4_50", "DICT_5X5_50", "DICT_6X6_50", "DICT_7X7_50", "DICT_ARUCO_ORIGINAL",
             "DICT_APRILTAG_36h11"]  # fmt: skip
    params = cv2.aruco.DetectorParameters()
    for inv in (board.inverted, not board.inverted):
        for name in names:
            det = cv2.aruco.ArucoDetector(
                cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)), params)
            n = sum(len(det.detectMarkers(255 - g if inv else g)[0]) for g in gray)
            if n >= 4 and not name.startswith(board.dictionary[:8]):
                printed = "inverted" if inv else "normal"
                return f"markers of {name} ({printed} printing) are visible, not {board.dictionary}"
    return None


def diagnose(images: list[np.ndarray], board: Board) -> str:
    """A hint at why ``board`` is not found in ``images`` (grayscale): '' when none fits."""
    from dataclasses import replace

    finder = BoardFinder(replace(board, inverted=not board.inverted), 4)
    if any(finder.find(g) is not None for g in images):
        flip = "false" if board.inverted else "true"
        return f"the board is found with inverted = {flip}: fix the board file"
    if board.kind == "checkerboard":
        a, b = board.inner_corners
        for guess in ((a + 1, b + 1), (a - 1, b - 1), (b, a)):
            if min(guess) < 2:
                continue
            alt = replace(board, squares=(guess[0] + 1, guess[1] + 1))
            finder = BoardFinder(alt, 4)
            if any(finder.find(g) is not None for g in images):
                return (f"a {guess[0]}x{guess[1]} checkerboard is visible, not {a}x{b}: "
                        "inner_corners counts the corners where four squares meet")
        return ""
    hint = _other_dictionaries(images, board)
    if hint:
        return hint + ": fix 'dictionary' (and 'inverted') in the board file"
    return _wrong_layout(images, board)


def _wrong_layout(images: list[np.ndarray], board: Board) -> str:
    """The board's own markers are visible but no corners come out: a wrong square count."""
    import cv2

    det = cv2.aruco.ArucoDetector(board.cv_board().getDictionary(), cv2.aruco.DetectorParameters())
    ids: list[int] = []
    for g in images:
        found = det.detectMarkers(255 - g if board.inverted else g)[1]
        ids += [] if found is None else found.ravel().tolist()
    if len(ids) < 4:
        return ""
    n_markers = len(board.cv_board().getIds())
    if max(ids) >= n_markers:
        return (f"markers with ids up to {max(ids)} are visible but the board defined has "
                f"{n_markers} (ids 0-{n_markers - 1}): 'squares' is too small")
    return (f"{len(set(ids))} of the board's markers are visible but its corners are not "
            "found: check 'squares' (columns, rows) and 'legacy_pattern'")


def require_board(det: Detections, board: Board, min_views: int = 1) -> None:
    """InputError naming the source when the board was seen in fewer than ``min_views``
    frames, with a diagnosis of the likely mistake."""
    seen = int(np.sum(det.n_seen > 0))
    if seen >= min_views:
        return
    what = f"{len(det.frames)} frames" if not det.names else f"{len(det.frames)} images"
    hint = diagnose(sample_images(det.source), board) if seen == 0 else ""
    msg = (f"the board ({board.describe()}) was found in {seen} of {what} tried; "
           f"at least {min_views} needed")
    raise InputError(msg + (f"; {hint}" if hint else ""), det.source)
