"""ChArUco detection over a capture's frames, in parallel over the available cores.

OpenCV releases the GIL inside its calls, so a thread pool scales across cores without pickling
images between processes. Each worker thread keeps its own ``CharucoDetector`` (OpenCV detectors
carry scratch state), and OpenCV's internal threading is switched off meanwhile so that N workers
use N cores, not N x N threads fighting for them.

Inverted boards (white markers in black squares): the detector is given the inverted image
(``255 - grey``), in which such a board looks exactly like an ordinary print. OpenCV's own
``DetectorParameters.detectInvertedMarker`` works with ``CharucoDetector.detectBoard`` too
(OpenCV 5.0), but measured on synthetic inverted captures it found fewer corners (697 against
788 over 31 frames at 640x480; at 320x240 its worst pose was 2.0 deg off against 0.65 deg):
the first marker pass finds the same markers either way (604 against 612), but the marker
refinement that ``tryRefineMarkers`` adds recovers none of the inverted markers it missed.
A board not marked ``inverted`` is looked for both ways: a frame without ChArUco corners in
the image as it is gets a second pass on its inverse. That costs one more detection on such
frames only (an inverted capture scanned without ``--inverted`` took ~1.6x as long).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from nrtool.progress import Progress, SilentProgress
from nrtool.scan.board import ChArUcoBoard
from nrtool.scan.frames import Frame


@dataclass
class Detection:
    """What one frame showed of the board.

    ``error`` is set (and nothing else is meaningful) when the image could not be read.
    ``corner_ids`` (M,) index the board's ChArUco corners, ``corners`` (M, 2) are their pixel
    positions (sub-pixel refined by OpenCV), ``markers`` the ArUco markers decoded.
    """

    frame: Frame
    width: int = 0
    height: int = 0
    markers: int = 0
    corner_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    corners: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    error: str = ""
    encoded: bytes | None = None  # the image file's bytes, kept for --embed-images
    inverted: bool = False  # found in the inverted image: the board is printed white on black


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Detectors(threading.local):
    """One ``cv2.aruco.CharucoDetector`` per worker thread."""

    def __init__(self, board: ChArUcoBoard) -> None:
        import cv2

        charuco = cv2.aruco.CharucoParameters()
        charuco.tryRefineMarkers = True  # recover markers the first pass missed, using the board layout
        self.detector = cv2.aruco.CharucoDetector(board.cv_board(), charuco)
        self.inverted = board.inverted


def detect_image(image: np.ndarray, detector, inverted: bool = False) -> tuple[int, np.ndarray, np.ndarray]:
    """(markers, corner_ids (M,), corners (M, 2)) of a BGR or grey image; ``inverted``: look for
    a board printed white on black (by detecting in the inverted image, see the module docstring)."""
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if inverted:
        grey = cv2.bitwise_not(grey)  # 255 - grey: the print's white markers become black
    corners, ids, _marker_corners, marker_ids = detector.detectBoard(grey)
    markers = 0 if marker_ids is None else len(marker_ids)
    if ids is None or corners is None or len(ids) == 0:
        return markers, np.zeros(0, np.int32), np.zeros((0, 2), np.float32)
    return markers, np.asarray(ids, np.int32).reshape(-1), np.asarray(corners, np.float32).reshape(-1, 2)


def detect_either_print(image: np.ndarray, detector, inverted: bool = False
                        ) -> tuple[int, np.ndarray, np.ndarray, bool]:
    """:func:`detect_image` plus whether the result came from the inverted image.

    ``inverted=True`` (the board is known to be printed white on black): the inverted image only.
    Otherwise the image as it is, then, when that gave no ChArUco corner, its inverse; the
    inverse's result is taken when it has corners, or markers where the first pass had none.
    """
    import cv2

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if inverted:
        return (*detect_image(grey, detector, inverted=True), True)
    markers, ids, corners = detect_image(grey, detector)
    if len(ids):
        return markers, ids, corners, False
    markers_inv, ids_inv, corners_inv = detect_image(grey, detector, inverted=True)
    if len(ids_inv) or (markers == 0 and markers_inv > 0):
        return markers_inv, ids_inv, corners_inv, True
    return markers, ids, corners, False


def _decode_file(path: str) -> tuple[np.ndarray | None, bytes, str]:
    import cv2

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, b"", f"cannot read file ({exc.strerror or exc})"
    if not data:
        return None, b"", "empty file"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None, data, "not a decodable image (corrupt or unsupported format)"
    return image, data, ""


def _work(frame: Frame, image: np.ndarray | None, detectors: _Detectors, embed: bool) -> Detection:
    import cv2

    encoded: bytes | None = None
    if image is None:
        image, data, error = _decode_file(frame.path)
        if image is None:
            return Detection(frame, error=error)
        encoded = data if embed else None
    elif embed:  # a video frame: keep it as a high-quality JPEG
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        encoded = buffer.tobytes() if ok else None
    try:
        markers, ids, corners, inverted = detect_either_print(image, detectors.detector, detectors.inverted)
    except cv2.error as exc:  # e.g. an image OpenCV decodes but cannot process: skip it, say why
        return Detection(frame, error=f"OpenCV could not process it ({str(exc).strip().splitlines()[-1]})")
    height, width = image.shape[:2]
    return Detection(frame, width, height, markers, ids, corners, encoded=encoded, inverted=inverted)


def detect_frames(
    frames: Iterable[Frame] | Iterable[tuple[Frame, np.ndarray]],
    board: ChArUcoBoard,
    total: int,
    workers: int | None = None,
    progress: Progress | None = None,
    embed: bool = False,
) -> list[Detection]:
    """Detect the board in every frame; returns the detections in frame order.

    ``frames`` yields :class:`Frame` (image files, decoded by the workers) or ``(Frame, image)``
    pairs (video frames decoded here, in order). ``total`` sizes the progress bar (an estimate
    is fine). ``workers``: threads (default: every available core). A board with ``inverted``
    set is looked for white on black only; otherwise both ways (:func:`detect_either_print`).
    """
    import cv2

    workers = max(1, workers or available_cores())
    progress = progress or SilentProgress()
    detectors = _Detectors(board)  # builds the board here, so a bad spec fails before threads start
    results: list[Detection] = []
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with progress.task("detecting ChArUco", total, unit="frames") as advance, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charuco") as pool:
            pending: set[Future[Detection]] = set()

            def drain(block_until: int) -> None:
                nonlocal pending
                while len(pending) > block_until:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        results.append(future.result())
                        advance(1)

            for item in _as_pairs(frames):
                frame, image = item
                pending.add(pool.submit(_work, frame, image, detectors, embed))
                drain(4 * workers)  # bounded: decoded video frames must not pile up in memory
            drain(0)
    finally:
        cv2.setNumThreads(previous_threads)
    results.sort(key=lambda d: d.frame.index)
    return results


def _as_pairs(frames: Iterable[Frame] | Iterable[tuple[Frame, np.ndarray]]) -> Iterator[tuple[Frame, np.ndarray | None]]:
    for item in frames:
        if isinstance(item, Frame):
            yield item, None
        else:
            yield item[0], item[1]
