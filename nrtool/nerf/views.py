"""Posed frames for the NeRF: from a ``scan`` artifact or from a NeRF dataset's JSON.

Accepted sources (:func:`load_views`):

* a ``scan`` artifact (``nrtool scan``) with a split name (``train``, ``train_all``,
  ``train_all_250``, ``test_3`` ...; ``all`` = every kept frame). Images come from the frame
  files the scan recorded, from ``--images DIR`` (the same file names in another folder), from
  the images embedded with ``--embed-images`` or from the video;
* a nerfstudio ``transforms.json`` (``--split`` picks ``train/val/test_filenames``; ``all`` =
  every frame) or a NeRF-synthetic split file such as ScanNeRF's ``train_all_250.json``
  (``camera_angle_x``, frames with ``file_path`` and an OpenGL ``transform_matrix``); a folder
  stands for ``FOLDER/SPLIT.json`` (``train`` -> ``train_all.json`` as ScanNeRF names them), or
  ``FOLDER/transforms.json``.

Frames with alpha (RGBA PNGs, or a ``mask_path`` per frame) are composited over white, the
NeRF-synthetic convention, and their alpha is kept. Every frame is downscaled (area
interpolation) so its longer side is at most ``max_side``; ``K`` is scaled with it. Poses are
OpenCV camera-to-world (x right, y down, z forward), the scan's convention.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

MACRO_SPLITS = ("train", "val", "test")


@dataclass
class Views:
    """Posed frames of one size."""

    names: list[str]
    images: np.ndarray  # (N, H, W, 3) float32 RGB in [0, 1]
    alpha: np.ndarray | None  # (N, H, W) float32 in [0, 1], or None
    K: np.ndarray  # (3, 3) at this resolution (pixel centres at integer coordinates, OpenCV)
    distortion: np.ndarray  # (5,) k1 k2 p1 p2 k3
    camera_to_world: np.ndarray  # (N, 4, 4) OpenCV camera convention
    source: str
    split: str
    full_size: tuple[int, int]  # (width, height) of the original frames

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the loaded images."""
        return int(self.images.shape[2]), int(self.images.shape[1])


def scaled_camera(K: np.ndarray, full: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """``K`` of a ``full``-sized image for the same image resized to ``size`` (both (w, h)).

    Pixel centres sit at integer coordinates, so the principal point moves as
    ``c' = (c + 0.5) s - 0.5``."""
    K = np.array(K, np.float64)
    for axis in (0, 1):
        s = size[axis] / full[axis]
        K[axis, axis] *= s
        K[axis, 2] = (K[axis, 2] + 0.5) * s - 0.5
    return K


def camera_for(intrinsics: Any, full: tuple[int, int]) -> Any:
    """The intrinsics for frames of ``full`` = (w, h) pixels (rescaled when calibrated at
    another size of the same sensor)."""
    if intrinsics.has_size and (intrinsics.width, intrinsics.height) != full:
        return intrinsics.scaled_to(*full)
    return intrinsics


def _views(stack: "_FrameStack", intrinsics: Any, names: list[str], camera_to_world: np.ndarray, source: str,
           split: str) -> Views:
    """The collected frames as :class:`Views`, the camera scaled to their loaded size."""
    rgb, alpha = stack.arrays()
    assert stack.full is not None
    intr = camera_for(intrinsics, stack.full)
    size = (rgb.shape[2], rgb.shape[1])
    return Views(names, rgb, alpha, scaled_camera(intr.K, stack.full, size), intr.distortion5(),
                 np.asarray(camera_to_world, np.float64), source, split, stack.full)


def target_size(full: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(w, h) with the longer side at most ``max_side`` (0 = unchanged), aspect kept."""
    w, h = full
    if max_side <= 0 or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, int(round(w * s))), max(1, int(round(h * s)))


def _decode(path: Path | str, data: bytes | None = None) -> np.ndarray:
    """An image file as RGB(A) uint8 (H, W, 3|4)."""
    import cv2

    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputFileError(path, f"cannot read the image ({(exc.strerror or str(exc)).lower()})") from exc
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise InputFileError(path, "not a readable image")
    if image.dtype == np.uint16:
        image = (image / 257).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """A mask image as uint8 (H, W) (object > 0), one-line error naming it when missing."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
    if mask is None:
        raise InputFileError(path, "mask is missing or not a readable image")
    return mask


class _FrameStack:
    """Collects decoded frames, resized to one size, with alpha where any frame has it."""

    def __init__(self, max_side: int) -> None:
        self.max_side = max_side
        self.rgb: list[np.ndarray] = []
        self.alpha: list[np.ndarray | None] = []
        self.full: tuple[int, int] | None = None

    def add(self, image: np.ndarray, where: str | Path, mask: np.ndarray | None = None) -> None:
        import cv2

        h, w = image.shape[:2]
        if self.full is None:
            self.full = (w, h)
        elif self.full != (w, h):
            raise InputFileError(where, f"is {w}x{h}, the other frames {self.full[0]}x{self.full[1]}: all frames must "
                                        "share one size")
        alpha = None
        if image.shape[2] == 4:
            alpha = image[:, :, 3]
        if mask is not None:
            if mask.shape != (h, w):
                raise InputFileError(where, f"its mask is {mask.shape[1]}x{mask.shape[0]}, the image {w}x{h}")
            alpha = mask if alpha is None else np.minimum(alpha, mask)
        size = target_size((w, h), self.max_side)
        rgb = image[:, :, :3]
        if size != (w, h):
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            if alpha is not None:
                alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        self.rgb.append(rgb)
        self.alpha.append(alpha)

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        rgb = np.stack(self.rgb).astype(np.float32) / 255.0
        if all(a is None for a in self.alpha):
            return rgb, None
        alpha = np.stack([np.full(rgb.shape[1:3], 255, np.uint8) if a is None else a for a in self.alpha])
        alpha = alpha.astype(np.float32) / 255.0
        rgb = rgb * alpha[..., None] + (1.0 - alpha[..., None])  # over white (NeRF-synthetic)
        return rgb, alpha


def _scan_indices(data: Any, split: str, path: Path) -> np.ndarray:
    """Frame indices of ``split`` in a scan (``train_all`` = ``train``; ``all`` = every kept frame)."""
    if split == "all":
        return np.flatnonzero(data.kept)
    name = split[: -len("_all")] if split.endswith("_all") and split[: -len("_all")] in MACRO_SPLITS else split
    if name not in data.splits:
        known = ", ".join(["all", *sorted(data.splits)]) or "all (the scan has no splits)"
        raise InputFileError(path, f"has no split {split!r}; it has: {known}")
    indices = np.asarray(data.splits[name], np.int64)
    if len(indices) == 0:
        raise InputFileError(path, f"split {split!r} is empty")
    return indices


def scan_frames(data: Any, path: Path, indices: Any, images: Path | None = None
                ) -> Iterator[tuple[int, np.ndarray, Path | str]]:
    """``(index, RGB(A) uint8 image, where it came from)`` for each frame index of a scan, in
    order: from ``images`` (the frames' file names in that folder), the embedded images, the
    recorded frame files, or the video (decoded once)."""
    if images is not None and not images.is_dir():
        raise InputFileError(images, "images folder not found")
    if data.source_kind == "video" and images is None and not data.has_images:
        from nrtool.scan.frames import read_video_frames

        wanted = {int(data.video_frame[i]): int(i) for i in indices}
        found = 0
        for number, image in read_video_frames(data.source, set(wanted)):
            found += 1
            yield wanted[number], np.ascontiguousarray(image[:, :, ::-1]), data.source
        if found != len(wanted):
            raise InputFileError(data.source, f"the video yielded {found} of the {len(wanted)} frames asked for")
        return
    for i in indices:
        i = int(i)
        if images is not None:
            where: Path | str = images / Path(data.frame_paths[i]).name
            yield i, _decode(where), where
        elif data.has_images:
            where = f"{path}[{data.names[i]}]"
            yield i, _decode(where, data.encoded_image(i)), where
        else:
            where = Path(data.frame_paths[i])
            if not where.is_file():
                raise InputFileError(where, "frame image is gone (moved since `nrtool scan`? pass --images DIR)")
            yield i, _decode(where), where


def views_from_scan(path: str | os.PathLike[str], split: str = "all", max_side: int = 0,
                    images: str | os.PathLike[str] | None = None, masks: str | os.PathLike[str] | None = None,
                    progress: Any = None, limit: int | None = None) -> Views:
    """The frames of ``split`` of a scan artifact (see the module docstring); only the first
    ``limit`` of them when given."""
    from nrtool.progress import SilentProgress
    from nrtool.scan.artifact import load_scan

    path = Path(path)
    data = load_scan(path)
    indices = _scan_indices(data, split, path)[:limit]
    posed = np.isfinite(data.camera_to_world[indices]).all(axis=(1, 2))
    if not posed.all():
        raise InputFileError(path, f"split {split!r} has {int((~posed).sum())} frames without a pose")
    stack = _FrameStack(max_side)
    folder = Path(images) if images is not None else None
    mask_folder = Path(masks) if masks is not None else None
    progress = progress or SilentProgress()

    def mask_of(i: int) -> np.ndarray | None:
        return None if mask_folder is None else read_mask(mask_folder / f"{data.names[i]}.png")

    with progress.task("reading frames", len(indices), unit="frames") as advance:
        for i, image, where in scan_frames(data, path, indices, folder):
            stack.add(image, where, mask_of(i))
            advance(1)
    return _views(stack, data.intrinsics, [data.names[int(i)] for i in indices], data.camera_to_world[indices],
                  str(path), split)


def _json_file(path: Path, split: str) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputFileError(path, "no such file or folder")
    names = [f"{split}_all.json" if split in MACRO_SPLITS else f"{split}.json", "transforms.json"]
    for name in names:
        if (path / name).is_file():
            return path / name
    raise InputFileError(path, f"holds neither {names[0]} nor transforms.json")


def views_from_json(path: str | os.PathLike[str], split: str = "all", max_side: int = 0,
                    progress: Any = None, limit: int | None = None) -> Views:
    """Frames of a nerfstudio ``transforms.json`` or a NeRF-synthetic split file (the first
    ``limit`` when given)."""
    from nrtool.progress import SilentProgress
    from nrtool.scan.intrinsics import read_intrinsics
    from nrtool.scan.poses import CV_TO_GL

    file = _json_file(Path(path), split)
    try:
        meta = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(file, f"not a readable JSON file ({exc})") from exc
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise InputFileError(file, "has no \"frames\" list")
    chosen = frames
    key = f"{split[:-4] if split.endswith('_all') else split}_filenames"
    wanted_file = f"{split}_all.json" if split in MACRO_SPLITS else f"{split}.json"
    if split != "all" and key not in meta and file.name not in (wanted_file, f"{split}.json"):
        # A split file of one split (ScanNeRF's train_all.json ...) asked for another: its sibling.
        sibling = file.parent / wanted_file
        if not sibling.is_file():
            raise InputFileError(file, f"holds another split than {split!r} and there is no {wanted_file} beside it")
        return views_from_json(sibling, split, max_side, progress, limit)
    if split != "all" and key in meta:
        wanted = {str(p).lstrip("./") for p in meta[key]}
        chosen = [f for f in frames if str(f.get("file_path", "")).lstrip("./") in wanted]
        if not chosen:
            raise InputFileError(file, f"{key} names none of its frames")
    chosen = chosen[:limit]
    intr = read_intrinsics(file)
    stack = _FrameStack(max_side)
    poses, names = [], []
    progress = progress or SilentProgress()
    with progress.task("reading frames", len(chosen), unit="frames") as advance:
        for k, frame in enumerate(chosen):
            try:
                image_path = file.parent / str(frame["file_path"])
                pose = np.asarray(frame["transform_matrix"], np.float64)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputFileError(file, f"frame {k} lacks file_path or a 4x4 transform_matrix ({exc})") from None
            if pose.shape != (4, 4) or not np.isfinite(pose).all():
                raise InputFileError(file, f"frame {k}: transform_matrix is not a finite 4x4 matrix")
            if not image_path.suffix and not image_path.is_file():
                image_path = image_path.with_name(image_path.name + ".png")  # NeRF-synthetic omits it
            mask = read_mask(file.parent / str(frame["mask_path"])) if "mask_path" in frame else None
            stack.add(_decode(image_path), image_path, mask)
            poses.append(pose @ CV_TO_GL)  # OpenGL camera axes -> OpenCV's
            names.append(Path(str(frame["file_path"])).stem)
            advance(1)
    return _views(stack, intr, names, np.stack(poses), str(file), split)


def load_views(source: str | os.PathLike[str], split: str = "all", max_side: int = 0,
               images: str | os.PathLike[str] | None = None, masks: str | os.PathLike[str] | None = None,
               progress: Any = None, limit: int | None = None) -> Views:
    """Frames from a scan artifact (``.h5``) or a NeRF JSON / dataset folder (the first ``limit``
    of the split when given)."""
    source = Path(source)
    if not source.exists():
        raise InputFileError(source, "no such file or folder")
    if source.is_file() and source.suffix.lower() in (".h5", ".hdf5"):
        return views_from_scan(source, split, max_side, images, masks, progress, limit)
    if images is not None or masks is not None:
        raise NrtoolError("--images/--masks apply to a scan artifact; a NeRF dataset names its own files")
    return views_from_json(source, split, max_side, progress, limit)


def available_splits(source: str | os.PathLike[str]) -> list[str]:
    """The split names a source offers, in ScanNeRF's naming (``train_all``, ``train_all_250``,
    ``test_all``, ``train_3`` ...)."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() in (".h5", ".hdf5"):
        from nrtool.scan.artifact import load_scan

        data = load_scan(source)
        return [f"{name}_all" if name in MACRO_SPLITS else name for name in data.splits]
    if source.is_dir():
        return sorted(p.stem for p in source.glob("*.json") if p.stem != "transforms")
    raise InputFileError(source, "not a scan artifact (.h5) or a NeRF dataset folder")
