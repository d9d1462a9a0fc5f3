"""Offline augmentation of training shapes: random per-axis scaling and vertex/point jitter.

inr2vec augments its training shapes before fitting INRs to them (thesis Sec. 5.5): every copy is a
new INR whose weights the encoder must map near the original's. Scaling is drawn *per axis*
because every shape is later normalised into [-1,1]^3 on its own, which would undo a uniform
scale; a per-axis scale changes proportions and survives. Jitter is Gaussian noise on mesh
vertices (or cloud points), in units of the shape's bounding-box diagonal, clipped at three
standard deviations so a single vertex never flies off.

Only items in a ``train`` split (or without a split) are augmented: test shapes stay untouched so
that accuracy is measured on real shapes only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.artifacts.core import atomic_folder, check_output_folder
from nrtool.config import Config
from nrtool.errors import InputFileError, NrtoolError
from nrtool.io import (
    Shape,
    ShapeSource,
    discover_inputs,
    load_shape,
    save_mesh,
    save_points_ply,
)
from nrtool.progress import Progress, SilentProgress


@dataclass(frozen=True)
class AugmentSettings(Config):
    copies: int = 2
    scale_low: float = 0.85
    scale_high: float = 1.15
    jitter: float = 0.002  # std, as a fraction of the bounding-box diagonal
    seed: int = 0

    WHAT = "augmentation"
    VALIDATE_ON_INIT = True

    def validate(self) -> None:
        if self.copies < 1:
            raise NrtoolError("--copies must be at least 1")
        if not 0 < self.scale_low <= self.scale_high:
            raise NrtoolError("--scale needs 0 < LOW <= HIGH")
        if not 0 <= self.jitter < 0.1:
            raise NrtoolError("--jitter must be in [0, 0.1) (a fraction of the bounding-box diagonal)")


def augment_points(points: np.ndarray, settings: AugmentSettings, rng: np.random.Generator) -> np.ndarray:
    """Scale ``points`` (N, 3) per axis about their bounding-box centre, then jitter them."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    scale = rng.uniform(settings.scale_low, settings.scale_high, size=3)
    out = (points - centre) * scale + centre
    if settings.jitter > 0:
        sigma = settings.jitter * float(np.linalg.norm(high - low))
        out = out + np.clip(rng.normal(0.0, sigma, size=out.shape), -3 * sigma, 3 * sigma)
    return out


def name_rng(seed: int, name: str, copy: int) -> np.random.Generator:
    """A random stream of item ``name``'s ``copy``: seeded by the name, so adding shapes to a data
    set does not change the other items' copies."""
    key = np.frombuffer(name.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    return np.random.default_rng([seed, copy, *key.tolist()])


def relative_folder(source: ShapeSource) -> Path:
    """Where a derived copy of a shape goes, so that discovery gives it the source's class and split."""
    if source.class_name is None:
        return Path(".")
    return Path(source.class_name) / (source.split or "")


def _write_copy(shape: Shape, vertices: np.ndarray, path: Path) -> None:
    if shape.kind == "mesh" and shape.faces is not None and len(shape.faces):
        save_mesh(path, vertices, shape.faces)
    else:
        save_points_ply(path, vertices)


def augment_dataset(
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    settings: AugmentSettings,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Write ``settings.copies`` augmented copies of every training shape under ``out``.

    The copies keep the ``CLASS/train/`` layout and are named ``NAME_augK.ply``, so
    ``nrtool fit-inr DATA/ OUT/`` fits originals and copies together with their labels. The
    folder appears complete or not at all (written beside it, then renamed).
    """
    settings.validate()
    progress = progress or SilentProgress()
    out = Path(out)
    check_output_folder(out, force=overwrite)
    sources = [s for s in discover_inputs(inputs) if s.split in (None, "train")]
    if not sources:
        raise NrtoolError("no training shapes to augment (only items under CLASS/train/ or without a split are)")
    written: list[Path] = []
    with atomic_folder(out, force=overwrite) as staging, \
            progress.task("augmenting shapes", len(sources), "shapes") as advance:
        for source in sources:
            shape = load_shape(source.path)
            if shape.kind == "voxels":
                raise InputFileError(source.path, "voxel grids cannot be augmented (meshes and point clouds only)")
            folder = staging / relative_folder(source)
            folder.mkdir(parents=True, exist_ok=True)
            stem = Path(source.path).stem
            for copy in range(1, settings.copies + 1):
                rng = name_rng(settings.seed, source.name, copy)
                target = folder / f"{stem}_aug{copy}.ply"
                _write_copy(shape, augment_points(shape.points(), settings, rng), target)
                written.append(out / target.relative_to(staging))
            advance()
    return written
