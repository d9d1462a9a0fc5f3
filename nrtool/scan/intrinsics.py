"""Camera intrinsics: read them from a file, write them, or calibrate them from ChArUco detections.

:func:`read_intrinsics` reads what calibration tools commonly write, recognised by content
(not by file name): OpenCV YAML/XML/JSON (also ROS ``camera_info`` YAML), COLMAP's
``cameras.txt``, a nerfstudio / instant-ngp ``transforms.json``, and a bare 3x3 camera matrix
as text or ``.npy``. A bare matrix carries no image size: it is taken to be for the capture's
frames (:meth:`Intrinsics.with_size`). Anything else is refused in one line that lists these.

Distortion follows OpenCV's order ``k1, k2, p1, p2[, k3[, k4, k5, k6]]``. Principal points are
read as written: COLMAP and nerfstudio count pixel centres at +0.5 where OpenCV counts them at
integers, but nrtool's own ``transforms.json`` export writes OpenCV's values, and reading them
back must give the same camera; the half pixel moves a pose by under 0.05 deg at fx ~ 600 px.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

#: What ``--intrinsics`` reads, as the one-line refusal of anything else lists it.
ACCEPTED_FORMATS = (
    "OpenCV YAML/XML/JSON (camera_matrix, distortion_coefficients, image_width, image_height; also ROS camera_info)",
    "COLMAP cameras.txt (SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV)",
    "nerfstudio/instant-ngp transforms.json (fl_x, fl_y, cx, cy, w, h, k1.. or camera_angle_x)",
    "a 3x3 camera matrix as text (whitespace or comma separated) or .npy",
)

#: Larger files are refused unread (a nerfstudio transforms.json of 10k frames is ~5 MiB).
MAX_FILE_BYTES = 64 * 2**20

#: COLMAP camera models OpenCV's pinhole + distortion can express, with their parameters in
#: the order ``cameras.txt`` lists them (COLMAP's ``src/colmap/sensor/models.h``).
COLMAP_MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}

#: The per-camera keys of a nerfstudio / instant-ngp transforms.json.
TRANSFORMS_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "k3", "k4", "p1", "p2",
                   "camera_angle_x", "camera_angle_y", "camera_model", "is_fisheye")


@dataclass
class Intrinsics:
    """Pinhole camera with OpenCV distortion, for images of ``width`` x ``height`` pixels
    (both 0 when the file gave no size: a bare matrix, sized by :meth:`with_size`)."""

    K: np.ndarray  # (3, 3)
    distortion: np.ndarray  # (D,), D in {4, 5, 8, ...}; zeros = none
    width: int
    height: int
    source: str = ""  # "file:PATH" or "calibrated"
    rms: float | None = None  # reprojection RMS (px) of the calibration that produced them

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def has_size(self) -> bool:
        """False for a bare camera matrix, which does not say which image size it is for."""
        return self.width > 0 and self.height > 0

    def distortion5(self) -> np.ndarray:
        """``k1, k2, p1, p2, k3`` (zero-padded), the coefficients NeRF tools understand."""
        out = np.zeros(5)
        out[: min(5, len(self.distortion))] = self.distortion[:5]
        return out

    def with_size(self, width: int, height: int) -> "Intrinsics":
        """The same K and distortion, declared to be for ``width`` x ``height`` images."""
        return Intrinsics(self.K.copy(), self.distortion.copy(), int(width), int(height), self.source, self.rms)

    def scaled_to(self, width: int, height: int) -> "Intrinsics":
        """The same camera for images resized to ``width`` x ``height`` (e.g. a calibration made
        at another resolution of the same sensor; the aspect ratio must match)."""
        if not self.has_size:
            raise NrtoolError("intrinsics without an image size cannot be rescaled (use with_size)")
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0] *= sx
        K[1] *= sy
        return Intrinsics(K, self.distortion.copy(), width, height, self.source, self.rms)


# ---------------------------------------------------------------- reading


def read_intrinsics(path: str | os.PathLike[str]) -> Intrinsics:
    """Intrinsics from any format of :data:`ACCEPTED_FORMATS`, recognised by the file's content.

    Raises :class:`InputFileError` (one line naming the file) for a missing, unreadable,
    malformed or unrecognised file and for an impossible camera.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file" if not path.exists() else "is not a file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # e.g. the video passed by mistake: do not read gigabytes
            raise _refuse(path, f"{size / 2**20:.0f} MiB, too large for a camera intrinsics file")
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"cannot read it ({(exc.strerror or str(exc)).lower()})") from exc
    intrinsics = _parse(path, data)
    return _checked(path, intrinsics)


def _refuse(path: Path, what: str) -> InputFileError:
    hint = ""
    if path.suffix.lower() == ".bin" and "camera" in path.name.lower():
        hint = " (convert COLMAP's cameras.bin with `colmap model_converter --output_type TXT`)"
    return InputFileError(path, f"{what}{hint}; nrtool reads: {'; '.join(ACCEPTED_FORMATS)}")


def _parse(path: Path, data: bytes) -> Intrinsics:
    """Dispatch on the content: .npy magic, JSON, OpenCV YAML/XML, COLMAP lines, bare numbers."""
    if data.startswith(b"\x93NUMPY"):
        return _read_npy(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse(path, "binary data, not a camera intrinsics file") from None
    if "\x00" in text or not text.strip():
        raise _refuse(path, "empty" if not text.strip() else "binary data, not a camera intrinsics file")
    head = text.lstrip()
    if head.startswith("{"):
        return _read_json(path, text)
    if head.startswith(("%YAML", "<?xml", "<opencv_storage")) or path.suffix.lower() in (".yml", ".yaml", ".xml"):
        return _read_opencv(path)
    if _looks_like_colmap(text):
        return _read_colmap(path, text)
    matrix = _numbers(text)
    if matrix is not None:
        if len(matrix) != 9:
            raise InputFileError(path, f"{len(matrix)} numbers; a bare camera matrix is 9 (3x3, row by row)")
        return Intrinsics(np.asarray(matrix, np.float64).reshape(3, 3), np.zeros(5), 0, 0, f"file:{path}")
    raise _refuse(path, "not a camera intrinsics file nrtool recognises")


def _checked(path: Path, intrinsics: Intrinsics) -> Intrinsics:
    """Refuse an impossible camera; no distortion given means none (five zeros)."""
    K = intrinsics.K
    if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        raise InputFileError(path, "camera matrix must be [[fx,0,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0")
    if not np.all(np.isfinite(intrinsics.distortion)):
        raise InputFileError(path, "distortion coefficients must be finite numbers")
    if len(intrinsics.distortion) not in (0, 4, 5, 8, 12, 14):
        raise InputFileError(path, f"{len(intrinsics.distortion)} distortion coefficients "
                                   "(OpenCV takes 4, 5, 8, 12 or 14)")
    if (intrinsics.width, intrinsics.height) != (0, 0) and (intrinsics.width <= 0 or intrinsics.height <= 0):
        raise InputFileError(path, "image size must be positive")
    if len(intrinsics.distortion) == 0:
        intrinsics.distortion = np.zeros(5)
    return intrinsics


def _matrix(value: Any, shape: tuple[int, ...], path: Path, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
        return array.reshape(shape) if shape else array.reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputFileError(path, f"{name} is not a {'x'.join(map(str, shape)) or 'list of'} numbers") from exc


def _number(value: Any, path: Path, name: str) -> float:
    if isinstance(value, bool):  # JSON true/false would pass float()
        raise InputFileError(path, f"{name} is not a number ({value!r})")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InputFileError(path, f"{name} is not a number ({value!r})") from exc


def _size(value: Any, path: Path, name: str) -> int:
    number = _number(value, path, name)
    if not number.is_integer() or number <= 0:
        raise InputFileError(path, f"{name} must be a positive whole number of pixels, got {value!r}")
    return int(number)


def _read_json(path: Path, text: str) -> Intrinsics:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object with the camera matrix")
    return _from_mapping(data, path)


def _from_mapping(data: dict[str, Any], path: Path) -> Intrinsics:
    """JSON layouts: ``{camera_matrix|K, distortion_coefficients|distortion|dist, image_width|width|w,
    image_height|height|h}`` (also OpenCV's JSON, with ``{"data": [...]}`` matrices), or a
    nerfstudio / instant-ngp transforms.json (:func:`_from_transforms`)."""

    def pick(*keys: str) -> Any:
        return next((data[k] for k in keys if k in data), None)

    frames = data.get("frames")
    per_frame = isinstance(frames, list) and any(isinstance(f, dict) and "fl_x" in f for f in frames)
    if "fl_x" in data or "camera_angle_x" in data or per_frame:
        return _from_transforms(data, path)
    K_value = pick("camera_matrix", "cameraMatrix", "K")
    if K_value is None:
        raise InputFileError(path, "no camera matrix (expected 'camera_matrix' or 'K', or a transforms.json's "
                                   "fl_x/fl_y/cx/cy or camera_angle_x)")
    if isinstance(K_value, dict) and "data" in K_value:  # an OpenCV matrix written as JSON
        K_value = K_value["data"]
    K = _matrix(K_value, (3, 3), path, "camera_matrix")
    dist_value = pick("distortion_coefficients", "distortion", "dist", "dist_coeffs", "distCoeffs", "D")
    if isinstance(dist_value, dict) and "data" in dist_value:
        dist_value = dist_value["data"]
    dist = _matrix(dist_value if dist_value is not None else [], (), path, "distortion")
    width, height = pick("image_width", "width", "w"), pick("image_height", "height", "h")
    if width is None or height is None:
        raise InputFileError(path, "image size missing (expected image_width/image_height, width/height or w/h)")
    return Intrinsics(K, dist, _size(width, path, "image width"), _size(height, path, "image height"), f"file:{path}")


def _from_transforms(data: dict[str, Any], path: Path) -> Intrinsics:
    """A nerfstudio / instant-ngp ``transforms.json``: the camera at the top level, or the same
    camera repeated in every frame (nerfstudio's per-frame intrinsics); focal length as
    ``fl_x``/``fl_y`` or as NeRF-synthetic's field of view ``camera_angle_x``/``_y`` (radians)."""
    camera = {k: data[k] for k in TRANSFORMS_KEYS if k in data}
    frames = [f for f in data.get("frames", []) if isinstance(f, dict)] if isinstance(data.get("frames"), list) else []
    cameras = {json.dumps({k: f[k] for k in TRANSFORMS_KEYS if k in f}, sort_keys=True) for f in frames
               if any(k in f for k in ("fl_x", "camera_angle_x"))}
    if len(cameras) > 1:
        raise InputFileError(path, f"its frames have {len(cameras)} different cameras (per-frame intrinsics); "
                                   "nrtool scan takes one camera")
    if cameras:
        camera.update(json.loads(next(iter(cameras))))
    model = str(camera.get("camera_model", "OPENCV")).upper()
    if model not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "PERSPECTIVE") or camera.get("is_fisheye"):
        raise InputFileError(path, f"camera model {model if model != 'OPENCV' else 'fisheye'} is not a pinhole camera "
                                   "with OpenCV distortion; nrtool reads OPENCV/PINHOLE transforms.json cameras")
    if _number(camera.get("k4", 0.0), path, "k4"):
        # nerfstudio's k4 is an r^8 radial term, which OpenCV's distortion has no place for.
        raise InputFileError(path, "k4 (nerfstudio's r^8 radial term) is not 0: OpenCV's distortion cannot express it")
    if "w" in camera and "h" in camera:
        width, height = _size(camera["w"], path, "w"), _size(camera["h"], path, "h")
    else:
        width, height = _first_frame_size(frames, path)
    if "fl_x" in camera:
        fx = _number(camera["fl_x"], path, "fl_x")
    else:
        fx = 0.5 * width / math.tan(0.5 * _number(camera["camera_angle_x"], path, "camera_angle_x"))
    if "fl_y" in camera:
        fy = _number(camera["fl_y"], path, "fl_y")
    elif "camera_angle_y" in camera:
        fy = 0.5 * height / math.tan(0.5 * _number(camera["camera_angle_y"], path, "camera_angle_y"))
    else:
        fy = fx  # square pixels
    cx = _number(camera.get("cx", width / 2), path, "cx")
    cy = _number(camera.get("cy", height / 2), path, "cy")
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    dist = np.array([_number(camera.get(k, 0.0), path, k) for k in ("k1", "k2", "p1", "p2", "k3")])
    return Intrinsics(K, dist, width, height, f"file:{path}")


def _first_frame_size(frames: list[dict[str, Any]], path: Path) -> tuple[int, int]:
    """(width, height) of a transforms.json's first frame image, for files without ``w``/``h``
    (NeRF-synthetic's give only ``camera_angle_x``, and its file paths may omit ``.png``)."""
    import cv2

    file_path = frames[0].get("file_path") if frames else None
    if not isinstance(file_path, str):
        raise InputFileError(path, "no image size: add \"w\" and \"h\" (pixels)")
    image_path = (path.parent / file_path)
    if not image_path.suffix and not image_path.is_file():
        image_path = image_path.with_name(image_path.name + ".png")
    try:
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    except (cv2.error, SystemError):
        image = None
    if image is None:
        raise InputFileError(path, f"no image size (\"w\", \"h\") and its first frame {image_path} cannot be read "
                                   "to take it from: add \"w\" and \"h\" (pixels)")
    return int(image.shape[1]), int(image.shape[0])


def _read_npy(path: Path, data: bytes) -> Intrinsics:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)  # never unpickle a user's file
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(path, f"not a readable .npy array ({exc})") from exc
    if not isinstance(array, np.ndarray) or array.size != 9 or not np.issubdtype(array.dtype, np.number):
        shape = getattr(array, "shape", "?")
        raise InputFileError(path, f"holds an array of shape {shape}, not a 3x3 camera matrix")
    return Intrinsics(array.astype(np.float64).reshape(3, 3), np.zeros(5), 0, 0, f"file:{path}")


def _numbers(text: str) -> list[float] | None:
    """The numbers of a plain matrix file (``np.savetxt``, CSV, ``[[..], ..]``), ``#`` comments
    allowed; None when anything else is in it."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    tokens = re.sub(r"[\[\],;]", " ", " ".join(lines)).split()
    try:
        values = [float(token) for token in tokens]
    except ValueError:
        return None
    return values or None


_COLMAP_LINE = re.compile(r"^\s*\d+\s+[A-Z][A-Z0-9_]*\s+\d+\s+\d+(\s+\S+)*\s*$")


def _looks_like_colmap(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all(_COLMAP_LINE.match(line) for line in lines)


def _read_colmap(path: Path, text: str) -> Intrinsics:
    """COLMAP's text ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`` per camera.

    Several lines that describe the same camera are one camera; different ones are refused.
    """
    cameras: dict[tuple[Any, ...], list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        camera_id, model, width, height, *params = line.split()
        if model not in COLMAP_MODELS:
            raise InputFileError(path, f"line {number}: COLMAP camera model {model} cannot be expressed as a pinhole "
                                       f"camera with OpenCV distortion (nrtool reads {', '.join(COLMAP_MODELS)})")
        names = COLMAP_MODELS[model]
        if len(params) != len(names):
            raise InputFileError(path, f"line {number}: a {model} camera has {len(names)} parameters "
                                       f"({' '.join(names)}), this line {len(params)}")
        values = tuple(_number(v, path, f"line {number}: {name}") for v, name in zip(params, names))
        cameras.setdefault((model, int(width), int(height), values), []).append(camera_id)
    if len(cameras) > 1:
        ids = ", ".join(ids[0] for ids in cameras.values())
        raise InputFileError(path, f"{len(cameras)} different cameras (ids {ids}); nrtool scan takes one camera: "
                                   "keep the line of the camera that filmed the capture")
    (model, width, height, values), = cameras
    p = dict(zip(COLMAP_MODELS[model], values))
    fx, fy = p.get("fx", p.get("f")), p.get("fy", p.get("f"))
    K = np.array([[fx, 0.0, p["cx"]], [0.0, fy, p["cy"]], [0.0, 0.0, 1.0]])
    names = ("k1", "k2", "p1", "p2", "k3") + (("k4", "k5", "k6") if model == "FULL_OPENCV" else ())
    dist = np.array([p.get(name, 0.0) for name in names])
    if width <= 0 or height <= 0:
        raise InputFileError(path, "image size must be positive")
    return Intrinsics(K, dist, width, height, f"file:{path}")


def _read_opencv(path: Path) -> Intrinsics:
    """OpenCV ``FileStorage`` YAML/XML (also ROS ``camera_info`` YAML, whose matrices are
    ``{rows, cols, data}`` maps). OpenCV reports a file it cannot parse as ``cv2.error`` or as a
    ``SystemError`` from its Python binding: both mean "not this format" here."""
    import cv2

    not_opencv = "not an OpenCV YAML/XML file"
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):
        raise _refuse(path, not_opencv) from None
    try:
        if not storage.isOpened():
            raise _refuse(path, not_opencv)
        K = _node_matrix(storage, ("camera_matrix", "cameraMatrix", "K"), path)
        dist = _node_matrix(storage, ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D"), path)
        width = _node_real(storage, ("image_width", "width"))
        height = _node_real(storage, ("image_height", "height"))
    except (cv2.error, SystemError):
        raise _refuse(path, "an OpenCV YAML/XML file whose entries cannot be read") from None
    finally:
        storage.release()
    if K is None:
        raise InputFileError(path, "no 'camera_matrix' entry")
    if not width or not height:
        raise InputFileError(path, "no 'image_width'/'image_height' entries")
    dist = np.zeros(5) if dist is None else np.asarray(dist, np.float64).reshape(-1)
    if K.size != 9:
        raise InputFileError(path, f"camera_matrix has {K.size} numbers, not 3x3")
    return Intrinsics(np.asarray(K, np.float64).reshape(3, 3), dist, _size(width, path, "image_width"),
                      _size(height, path, "image_height"), f"file:{path}")


def _node_matrix(storage: Any, names: tuple[str, ...], path: Path) -> np.ndarray | None:
    for name in names:
        node = storage.getNode(name)
        if node.empty() or node.isNone():
            continue
        if node.isMap() and node.getNode("dt").empty():  # ROS: {rows, cols, data: [...]}
            data = node.getNode("data")
            if not data.isSeq():
                raise InputFileError(path, f"'{name}' has no 'data' list")
            return np.array([data.at(i).real() for i in range(data.size())], np.float64)
        if node.isSeq():  # a plain YAML list of numbers
            return np.array([node.at(i).real() for i in range(node.size())], np.float64)
        matrix = node.mat()
        if matrix is not None:
            return np.asarray(matrix, np.float64)
    return None


def _node_real(storage: Any, names: tuple[str, ...]) -> float:
    for name in names:
        node = storage.getNode(name)
        if not node.empty() and not node.isNone():
            return node.real()
    return 0.0


def write_intrinsics(path: str | os.PathLike[str], intrinsics: Intrinsics, note: str = "") -> None:
    """Write OpenCV YAML (what :func:`read_intrinsics` and OpenCV's samples read)."""
    import cv2

    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", int(intrinsics.width))
    storage.write("image_height", int(intrinsics.height))
    storage.write("camera_matrix", np.asarray(intrinsics.K, np.float64))
    storage.write("distortion_coefficients", np.asarray(intrinsics.distortion, np.float64).reshape(1, -1))
    if intrinsics.rms is not None:
        storage.write("avg_reprojection_error", float(intrinsics.rms))
    if note:
        storage.write("info", note)
    storage.release()


def calibrate(object_points: Sequence[np.ndarray], image_points: Sequence[np.ndarray], width: int,
              height: int) -> Intrinsics:
    """Zhang calibration (``cv2.calibrateCamera``) of K and 5 distortion coefficients from
    per-frame board/image correspondences ((M_i, 3) board coordinates, (M_i, 2) pixels).

    Planar targets need views from several directions: 3+ frames, at different tilts.
    """
    import cv2

    if len(object_points) < 3:
        raise NrtoolError(f"--calibrate needs at least 3 frames with a well-detected board, found {len(object_points)}")
    objects = [np.asarray(o, np.float32).reshape(-1, 1, 3) for o in object_points]
    images = [np.asarray(i, np.float32).reshape(-1, 1, 2) for i in image_points]
    try:
        rms, K, dist, _, _ = cv2.calibrateCamera(objects, images, (width, height), None, None)
    except cv2.error as exc:
        raise NrtoolError(f"camera calibration failed ({str(exc).strip().splitlines()[-1]})") from exc
    if not np.isfinite(rms) or K[0, 0] <= 0:
        raise NrtoolError("camera calibration diverged: too few or too similar views of the board")
    return Intrinsics(np.asarray(K, np.float64), np.asarray(dist, np.float64).reshape(-1), width, height,
                      "calibrated", float(rms))
