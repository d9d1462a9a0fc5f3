"""Where a capture's frames come from: a folder of images (natural sort order = time order) or
a video file (every N-th frame). Frames are listed first and decoded later, by the workers."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.errors import InputFileError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class Frame:
    """One frame of a capture: ``index`` in time order, a ``name``, and where its pixels live:
    the image file ``path``, or frame ``video_frame`` of the video ``path``."""

    index: int
    name: str
    path: str
    video_frame: int = -1


def natural_key(text: str) -> list[int | str]:
    """Sort key with digit runs compared as numbers: ``img_2`` before ``img_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def list_image_frames(folder: str | os.PathLike[str]) -> list[Frame]:
    """The images of ``folder`` (not recursive) in natural sort order."""
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise InputFileError(folder, f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return [Frame(i, p.stem, str(p.resolve())) for i, p in enumerate(files)]


def open_video(path: str | os.PathLike[str]):  # -> cv2.VideoCapture
    # FFmpeg prints its own complaints ("moov atom not found") on stderr; nrtool reports a bad
    # video in one line of its own. Read by OpenCV when it first loads FFmpeg (a user's value wins).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputFileError(path, "cannot open this video (not a video file, damaged, or no codec for it)")
    return capture


def video_frame_count(path: str | os.PathLike[str]) -> int:
    """Frame count from the container (an estimate for some formats; 0 when unknown)."""
    import cv2

    capture = open_video(path)
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        capture.release()


def iter_video(path: str | os.PathLike[str], every: int = 1) -> Iterator[tuple[Frame, np.ndarray]]:
    """Decode every ``every``-th frame of a video, in order (decoding is sequential by nature)."""
    capture = open_video(path)
    resolved = str(Path(path).resolve())
    try:
        position = kept = 0
        while True:
            if position % every:
                if not capture.grab():  # skipped frames are grabbed, not decoded: much cheaper
                    break
                position += 1
                continue
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(kept, f"frame_{position:06d}", resolved, position), image
            kept += 1
            position += 1
        if kept == 0:
            raise InputFileError(path, "the video has no decodable frames")
    finally:
        capture.release()


def read_video_frames(path: str | os.PathLike[str], wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(video_frame, image)`` for the wanted frame numbers, decoding the video once, in order."""
    capture = open_video(path)
    try:
        last = max(wanted) if wanted else -1
        position = 0
        while position <= last:
            if position in wanted:
                ok, image = capture.read()
                if not ok:
                    break
                yield position, image
            elif not capture.grab():
                break
            position += 1
    finally:
        capture.release()
