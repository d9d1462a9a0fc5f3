"""Writing images: the one writer for images nrtool produces (exported frames, synthetic captures).

``cv2.imwrite`` returns ``False`` instead of raising when it cannot encode or write a file, so a
full disk or an unknown extension went unnoticed and left a dataset with missing frames. Here
the image is encoded in memory (``cv2.imencode``, chosen by the file's extension) and written
atomically (:func:`~nrtool.artifacts.core.atomic_write_bytes`): any failure raises a one-line
:class:`~nrtool.errors.InputFileError` naming the file, and no partial file is left behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nrtool.errors import InputFileError


def encode_image(path: str | os.PathLike[str], image: np.ndarray, params: Sequence[int] = ()) -> bytes:
    """The bytes of ``image`` ((H, W) grey or (H, W, 3) BGR, uint8) in the format of ``path``'s
    extension (``.jpg``, ``.png``, ...), with OpenCV's ``params`` (e.g. ``[cv2.IMWRITE_JPEG_QUALITY, 95]``)."""
    import cv2

    suffix = Path(path).suffix.lower()
    if not suffix:
        raise InputFileError(path, "no file extension to choose the image format by (e.g. .png, .jpg)")
    try:
        ok, buffer = cv2.imencode(suffix, image, list(params))
    except (cv2.error, SystemError) as exc:  # e.g. no encoder for the extension, or an unsupported array
        raise InputFileError(path, f"cannot encode the image as {suffix} ({_opencv_reason(exc)})") from None
    if not ok:
        raise InputFileError(path, f"cannot encode the image as {suffix}")
    return buffer.tobytes()


def write_image(path: str | os.PathLike[str], image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Encode ``image`` (see :func:`encode_image`) and write it to ``path`` atomically; raises
    :class:`InputFileError` when it cannot be encoded or written (never returns silently)."""
    from nrtool.artifacts.core import atomic_write_bytes

    data = encode_image(path, image, params)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise InputFileError(path, f"cannot write it ({(exc.strerror or str(exc)).lower()})") from exc


def _opencv_reason(exc: Exception) -> str:
    """The human part of an OpenCV error: ``could not find encoder for the specified extension``
    out of ``OpenCV(5.0.0) /path/loadsave.cpp:1624: error: (-2:Unspecified error) ... in function ...``."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    match = re.search(r"error: \([^)]*\) (.*?)(?: in function .*)?$", lines[-1])
    return match[1] if match else lines[-1]


def read_image(path: str | os.PathLike[str], unchanged: bool = False) -> np.ndarray:
    """An image file as OpenCV reads it (BGR or single channel; ``unchanged`` keeps alpha and
    16-bit values); one line naming the file if it is missing, empty or not an image."""
    import cv2

    from nrtool.errors import InputFileError

    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    if p.stat().st_size == 0:
        raise InputFileError(p, "is empty")
    image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR)
    if image is None:
        raise InputFileError(p, "is not an image OpenCV can read")
    return image
