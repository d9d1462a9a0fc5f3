"""The ChArUco board: its OpenCV object, and the world frame a turntable scan is expressed in.

World frame (the object turns with the board, so the board *is* the world): origin at the board
centre, x along the board's columns, z up out of the printed face, y completing a right-handed
frame. OpenCV's board frame has its origin at the top-left corner of the printed image, x to the
right, y down the image and z into the board; the two differ by a translation and a half turn
about x (see :meth:`ChArUcoBoard.world_from_board`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nrtool.errors import NrtoolError

#: ArUco dictionaries OpenCV predefines (``cv2.aruco.DICT_*``), by their OpenCV name.
DICTIONARIES: tuple[str, ...] = (
    "DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000",
    "DICT_5X5_50", "DICT_5X5_100", "DICT_5X5_250", "DICT_5X5_1000",
    "DICT_6X6_50", "DICT_6X6_100", "DICT_6X6_250", "DICT_6X6_1000",
    "DICT_7X7_50", "DICT_7X7_100", "DICT_7X7_250", "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL", "DICT_APRILTAG_16h5", "DICT_APRILTAG_25h9", "DICT_APRILTAG_36h10",
    "DICT_APRILTAG_36h11", "DICT_ARUCO_MIP_36h12",
)


@dataclass(frozen=True)
class ChArUcoBoard:
    """A printed ChArUco board: ``cols`` x ``rows`` squares of side ``square``, markers of side
    ``marker`` (same unit, e.g. metres), from the ArUco dictionary ``dictionary``.

    ``legacy``: the board was printed with OpenCV < 4.6, whose pattern differs for an even row
    count (``CharucoBoard.setLegacyPattern``).
    ``inverted``: the board is printed white on black (white markers in black squares), as some
    calibration tools print it; :meth:`render` then draws it so, and detection looks for it so.
    """

    cols: int
    rows: int
    square: float
    marker: float
    dictionary: str = "DICT_6X6_250"
    legacy: bool = False
    inverted: bool = False

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise NrtoolError(f"a ChArUco board needs at least 2x2 squares, got {self.cols}x{self.rows}")
        if not 0 < self.marker < self.square:
            raise NrtoolError(f"--marker ({self.marker}) must be positive and smaller than --square ({self.square})")
        if self.dictionary not in DICTIONARIES:
            raise NrtoolError(f"unknown ArUco dictionary {self.dictionary!r}; one of: {', '.join(DICTIONARIES)}")

    @classmethod
    def parse(cls, size: str, square: float, marker: float, dictionary: str = "DICT_6X6_250",
              legacy: bool = False, inverted: bool = False) -> "ChArUcoBoard":
        """From the command-line spelling ``COLSxROWS`` (e.g. ``5x7``)."""
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
        if not match:
            raise NrtoolError(f"--board must be COLSxROWS (squares), e.g. 5x7; got {size!r}")
        name = dictionary.upper()
        if not name.startswith("DICT_"):
            name = "DICT_" + name
        name = next((d for d in DICTIONARIES if d.upper() == name), name)
        return cls(int(match[1]), int(match[2]), float(square), float(marker), name, legacy, inverted)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChArUcoBoard":
        return cls(int(data["cols"]), int(data["rows"]), float(data["square"]), float(data["marker"]),
                   str(data["dictionary"]), bool(data.get("legacy", False)), bool(data.get("inverted", False)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        legacy = ", legacy pattern" if self.legacy else ""
        inverted = ", inverted print" if self.inverted else ""
        return (f"{self.cols}x{self.rows} squares of {self.square:g}, markers {self.marker:g}, "
                f"{self.dictionary}{legacy}{inverted}")

    # ---------------------------------------------------------------- geometry

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) of the squared area, in the board's unit."""
        return self.cols * self.square, self.rows * self.square

    @property
    def corner_count(self) -> int:
        """Inner chessboard corners (the ChArUco corners a detection can find)."""
        return (self.cols - 1) * (self.rows - 1)

    @property
    def marker_count(self) -> int:
        return (self.cols * self.rows) // 2

    def world_from_board(self) -> np.ndarray:
        """(4, 4) rigid transform from OpenCV's board frame to the world frame (module docstring)."""
        width, height = self.size
        transform = np.diag([1.0, -1.0, -1.0, 1.0])  # half turn about x: y down -> y up, z in -> z out
        transform[:3, 3] = [-width / 2, height / 2, 0.0]
        return transform

    def corners_world(self) -> np.ndarray:
        """(C, 3) world coordinates of the ChArUco corners, indexed by corner id."""
        board = self.cv_board()
        corners = np.asarray(board.getChessboardCorners(), dtype=np.float64).reshape(-1, 3)
        return to_world(self.world_from_board(), corners)

    # ---------------------------------------------------------------- OpenCV objects

    def cv_dictionary(self) -> Any:
        import cv2

        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def cv_board(self) -> Any:
        """The ``cv2.aruco.CharucoBoard`` (OpenCV >= 4.7 API)."""
        import cv2

        board = cv2.aruco.CharucoBoard((self.cols, self.rows), self.square, self.marker, self.cv_dictionary())
        if self.legacy:
            board.setLegacyPattern(True)
        if self.marker_count > len(self.cv_dictionary().bytesList):
            raise NrtoolError(f"{self.dictionary} has {len(self.cv_dictionary().bytesList)} markers; a "
                              f"{self.cols}x{self.rows} board needs {self.marker_count}")
        return board

    def render(self, pixels_per_square: int, margin_squares: float = 0.0) -> np.ndarray:
        """The printable board as a (H, W) uint8 image (``CharucoBoard.generateImage``; white on
        black, margin included, when the board is ``inverted``).

        Pixel ``(u, v)`` shows the board point ``((u - m) / s, (v - m) / s)`` in OpenCV's board
        frame, with ``s`` pixels per unit and ``m`` the margin in pixels.
        """
        margin = int(round(margin_squares * pixels_per_square))
        size = (self.cols * pixels_per_square + 2 * margin, self.rows * pixels_per_square + 2 * margin)
        image = self.cv_board().generateImage(size, marginSize=margin, borderBits=1)
        return 255 - image if self.inverted else image


def to_world(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points."""
    return points @ transform[:3, :3].T + transform[:3, 3]
