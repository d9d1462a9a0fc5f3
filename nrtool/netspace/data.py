"""The images a NetSpace zoo is trained and judged on: scikit-learn's digits, or a user's folder.

CIFAR-10 and Tiny-ImageNet cannot be downloaded here, so the built-in task is scikit-learn's
bundled digits (1,797 greyscale 8x8 images of 10 classes, inside the wheel): bilinearly resized
to the architectures' input (32x32), repeated over 3 channels and scaled to [-1, 1]. A user's
own images come in the ImageFolder layout (``ROOT/<class>/*.png|jpg``), resized the same way.

The images are split once, stratified by class with a fixed seed (60 / 20 / 20 %), so every
zoo network, the NetSpace training and the evaluation see the same train / val / test images;
the split is part of the :class:`ImageSource` a zoo records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import InputFileError, NrtoolError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train, val, test


@dataclass(frozen=True)
class ImageSource:
    """Where a zoo's images come from: ``digits`` or an ImageFolder path; their size and split seed."""

    source: str = "digits"
    size: int = 32
    channels: int = 3
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "size": self.size, "channels": self.channels, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageSource":
        return cls(str(data.get("source", "digits")), int(data.get("size", 32)), int(data.get("channels", 3)),
                   int(data.get("seed", 0)))


@dataclass
class ImageSplits:
    """Images (N, C, S, S) in [-1, 1] and labels (N,) of each split, and the class names."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    classes: list[str]
    fingerprint: str  # SHA-256 of every image and label (what a zoo and a NetSpace must share)

    def to(self, device: torch.device | str) -> "ImageSplits":
        return ImageSplits({k: v.to(device) for k, v in self.images.items()},
                           {k: v.to(device) for k, v in self.labels.items()}, self.classes, self.fingerprint)


def _resized(images: np.ndarray, size: int, channels: int) -> torch.Tensor:
    """(N, H, W) or (N, H, W, 3) images in [0, 1] -> (N, channels, size, size) in [-1, 1]."""
    x = torch.as_tensor(images, dtype=torch.float32)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    if x.shape[1] != channels:  # greyscale <-> colour: the mean over colours, repeated as asked
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).contiguous()


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images / 16.0, data.target.astype(np.int64), [str(c) for c in range(10)]


def _image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from nrtool.io.images import read_image

    if not root.is_dir():
        raise InputFileError(root, "is not a folder of class folders (ImageFolder layout: ROOT/<class>/*.png)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            image = np.asarray(read_image(path), dtype=np.float32) / 255.0  # 8-bit BGR
            images.append(image if image.ndim == 2 else image[..., 2::-1])
            labels.append(index)
    if len(classes) < 2 or len(images) < 10:
        raise InputFileError(root, f"needs at least 2 class folders and 10 images, found {len(classes)} classes "
                             f"and {len(images)} images")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise InputFileError(root, f"holds images of {len(shapes)} different sizes/channel counts; resize them to one")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def stratified_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of train / val / test, :data:`SPLIT_FRACTIONS` of every class each."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        a = int(round(SPLIT_FRACTIONS[0] * len(index)))
        b = a + int(round(SPLIT_FRACTIONS[1] * len(index)))
        parts["train"].append(index[:a])
        parts["val"].append(index[a:b])
        parts["test"].append(index[b:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def load_images(source: ImageSource) -> ImageSplits:
    """The images of ``source``, resized and split (one line naming the folder when it is unusable)."""
    if source.size < 8 or source.channels not in (1, 3):
        raise NrtoolError(f"image size must be >= 8 and channels 1 or 3, got {source.size} and {source.channels}")
    raw, labels, classes = _digits() if source.source == "digits" else _image_folder(Path(source.source))
    x = _resized(raw, source.size, source.channels)
    split = stratified_split(labels, source.seed)
    y = torch.as_tensor(labels)
    digest = hashlib.sha256(x.numpy().tobytes() + labels.tobytes())
    for name in ("train", "val", "test"):
        digest.update(split[name].tobytes())
    return ImageSplits({k: x[v] for k, v in split.items()}, {k: y[v] for k, v in split.items()}, classes,
                       digest.hexdigest())


@torch.no_grad()
def accuracy(logits_of, images: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> float:
    """Top-1 accuracy of ``logits_of(images)`` (a network, or a decoded PRep's functional forward)."""
    correct = 0
    for start in range(0, len(images), batch):
        correct += int((logits_of(images[start: start + batch]).argmax(1) == labels[start: start + batch]).sum())
    return correct / max(1, len(images))
