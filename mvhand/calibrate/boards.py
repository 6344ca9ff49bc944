"""Calibration boards: checkerboards and ChArUco boards, defined in small TOML files.

mvhand's board file (see ``calibration/README.md``)::

    type = "charuco"              # or "checkerboard"
    squares = [4, 5]              # ChArUco: columns, rows of squares
    square_size_m = 0.054         # side of one square, metres
    marker_size_m = 0.0405        # ChArUco: side of one ArUco marker, metres
    dictionary = "DICT_4X4_1000"  # ChArUco: an OpenCV predefined ArUco dictionary
    inverted = true               # printed white-on-black: images are inverted before detection
    legacy_pattern = false        # ChArUco boards made with OpenCV < 4.6 and an even row count

    type = "checkerboard"
    inner_corners = [4, 7]        # corners where four squares meet, per row and per column
    square_size_m = 0.060

caliscope's ``charuco.toml`` (``columns``, ``rows``, ``dictionary``, ``aruco_scale``,
``square_size_override_cm``, ``inverted``) is read as it is.

Board points are ``(N, 3)`` metres in the board frame: x along the first row of corners, y
along the columns, z = 0 on the board; corner ``n`` is the n-th of OpenCV's ordering
(``findChessboardCorners`` row by row; ChArUco corner ids).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.errors import ConfigError

KINDS = ("checkerboard", "charuco")
_KEYS = {"type", "squares", "inner_corners", "square_size_m", "marker_size_m", "dictionary",
         "inverted", "legacy_pattern", "name", "description"}  # fmt: skip
_CALISCOPE_KEYS = {"columns", "rows", "dictionary", "aruco_scale", "square_size_override_cm",
                   "inverted", "board_height", "board_width", "units"}  # fmt: skip


@dataclass(frozen=True)
class Board:
    """A planar calibration target.

    Attributes:
        kind: "checkerboard" or "charuco".
        squares: (columns, rows) of squares; a checkerboard with (a, b) inner corners has
            (a + 1, b + 1) squares.
        square_size_m: side of one square, metres.
        marker_size_m: ChArUco marker side, metres (0 for checkerboards).
        dictionary: ChArUco ArUco dictionary name, e.g. "DICT_4X4_1000" ("" for checkerboards).
        inverted: the board is printed with inverted colours (white squares/markers on black).
        legacy_pattern: ChArUco boards from OpenCV < 4.6 with an even number of rows.
        name: a label (the file's stem).
    """

    kind: str
    squares: tuple[int, int]
    square_size_m: float
    marker_size_m: float = 0.0
    dictionary: str = ""
    inverted: bool = False
    legacy_pattern: bool = False
    name: str = "board"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"board type must be one of {KINDS}, got {self.kind!r}")
        cols, rows = (int(v) for v in self.squares)
        if cols < 2 or rows < 2 or cols * rows < 6:
            raise ConfigError(f"board {self.name}: needs at least 2 x 3 squares, got "
                              f"{cols} x {rows}")
        object.__setattr__(self, "squares", (cols, rows))
        if not self.square_size_m > 0:
            raise ConfigError(f"board {self.name}: square_size_m must be positive")
        if self.square_size_m > 2.0:
            raise ConfigError(f"board {self.name}: square_size_m = {self.square_size_m} m is "
                              "implausible; the size is in metres (60 mm = 0.060)")
        if self.kind == "charuco":
            if not 0 < self.marker_size_m < self.square_size_m:
                raise ConfigError(f"board {self.name}: marker_size_m must be between 0 and "
                                  "square_size_m")  # fmt: skip
            _dictionary_id(self.dictionary, self.name)

    @property
    def inner_corners(self) -> tuple[int, int]:
        """(per row, per column) corners where four squares meet."""
        return self.squares[0] - 1, self.squares[1] - 1

    @property
    def n_corners(self) -> int:
        """Number of corners N (the length of :meth:`points_m`)."""
        a, b = self.inner_corners
        return a * b

    def points_m(self) -> np.ndarray:
        """Board corners ``(N, 3)`` metres in the board frame (z = 0), in OpenCV's order."""
        a, b = self.inner_corners
        grid = np.mgrid[0:a, 0:b].T.reshape(-1, 2) * self.square_size_m
        if self.kind == "charuco":  # OpenCV's ChArUco corners start one square in
            grid = grid + self.square_size_m
        return np.column_stack([grid, np.zeros(len(grid))])

    def neighbour_pairs(self) -> np.ndarray:
        """``(P, 2)`` indices of corners one square apart (for checking square sizes)."""
        a, b = self.inner_corners
        idx = np.arange(a * b).reshape(b, a)
        horiz = np.column_stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()])
        vert = np.column_stack([idx[:-1, :].ravel(), idx[1:, :].ravel()])
        return np.vstack([horiz, vert])

    def describe(self) -> str:
        """One line for logs and reports."""
        a, b = self.inner_corners
        if self.kind == "checkerboard":
            return f"checkerboard {a}x{b} inner corners, {self.square_size_m * 1000:.1f} mm squares"
        inv = ", inverted" if self.inverted else ""
        return (f"ChArUco {self.squares[0]}x{self.squares[1]} squares of "
                f"{self.square_size_m * 1000:.1f} mm, markers {self.marker_size_m * 1000:.1f} "
                f"mm, {self.dictionary}{inv}")  # fmt: skip

    def cv_board(self) -> Any:
        """The OpenCV ``cv2.aruco.CharucoBoard`` (ChArUco boards only)."""
        import cv2

        d = cv2.aruco.getPredefinedDictionary(_dictionary_id(self.dictionary, self.name))
        board = cv2.aruco.CharucoBoard(self.squares, self.square_size_m, self.marker_size_m, d)
        board.setLegacyPattern(self.legacy_pattern)
        return board


def _dictionary_id(name: str, board: str) -> int:
    import cv2

    value = getattr(cv2.aruco, str(name), None)
    if not str(name).startswith("DICT_") or not isinstance(value, int):
        raise ConfigError(f"board {board}: dictionary {name!r} is not an OpenCV ArUco "
                          "dictionary (e.g. DICT_4X4_50, DICT_5X5_100, DICT_4X4_1000)")
    return value


def _pair(value: Any, key: str, source: str) -> tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(f"{source}: '{key}' must be two integers, e.g. [4, 7]")
    return int(value[0]), int(value[1])


def board_from_dict(data: dict[str, Any], source: str = "board", name: str = "board") -> Board:
    """A :class:`Board` from a parsed board file (mvhand's or caliscope's layout)."""
    if "columns" in data and "type" not in data:
        return _caliscope_board(data, source, name)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (known: "
                          f"{', '.join(sorted(_KEYS))})")  # fmt: skip
    kind = data.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{source}: 'type' must be one of {KINDS}, got {kind!r}")
    if "square_size_m" not in data:
        raise ConfigError(f"{source}: 'square_size_m' (side of one square, metres) is missing")
    if kind == "checkerboard":
        if "inner_corners" not in data:
            raise ConfigError(f"{source}: a checkerboard needs 'inner_corners' = [a, b]")
        a, b = _pair(data["inner_corners"], "inner_corners", source)
        squares = (a + 1, b + 1)
    else:
        if "squares" not in data or "dictionary" not in data or "marker_size_m" not in data:
            raise ConfigError(f"{source}: a ChArUco board needs 'squares', 'marker_size_m' "
                              "and 'dictionary'")  # fmt: skip
        squares = _pair(data["squares"], "squares", source)
    try:
        return Board(kind, squares, float(data["square_size_m"]),
                     float(data.get("marker_size_m", 0.0)), str(data.get("dictionary", "")),
                     bool(data.get("inverted", False)), bool(data.get("legacy_pattern", False)),
                     str(data.get("name", name)))  # fmt: skip
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _caliscope_board(data: dict[str, Any], source: str, name: str) -> Board:
    """caliscope's charuco.toml: square size from ``square_size_override_cm`` (else from the
    sheet size), markers ``aruco_scale`` of a square."""
    unknown = sorted(set(data) - _CALISCOPE_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in a caliscope board")
    cols, rows = int(data["columns"]), int(data["rows"])
    if "square_size_override_cm" in data:
        square = float(data["square_size_override_cm"]) / 100.0
    else:
        per_unit = {"inch": 0.0254, "cm": 0.01}.get(str(data.get("units", "inch")))
        if per_unit is None or "board_width" not in data:
            raise ConfigError(f"{source}: cannot tell the square size (no "
                              "square_size_override_cm, and no board_width in inch or cm)")
        square = min(float(data["board_width"]) / cols,
                     float(data.get("board_height", 1e9)) / rows) * per_unit  # fmt: skip
    try:
        return Board("charuco", (cols, rows), square, square * float(data.get("aruco_scale", 0.75)),
                     str(data.get("dictionary", "DICT_4X4_50")), bool(data.get("inverted", False)),
                     False, name)  # fmt: skip
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_board(path: str | Path) -> Board:
    """Read a board file; ConfigError naming the file and the key when it is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: board file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML board file ({exc})") from None
    return board_from_dict(data, str(path), path.stem)


def board_to_toml(board: Board) -> str:
    """mvhand's board file text for ``board``."""
    import tomli_w

    doc: dict[str, Any] = {"name": board.name, "type": board.kind}
    if board.kind == "checkerboard":
        doc["inner_corners"] = list(board.inner_corners)
    else:
        doc["squares"] = list(board.squares)
    doc["square_size_m"] = board.square_size_m
    if board.kind == "charuco":
        doc.update(marker_size_m=board.marker_size_m, dictionary=board.dictionary,
                   inverted=board.inverted, legacy_pattern=board.legacy_pattern)  # fmt: skip
    return tomli_w.dumps(doc)
