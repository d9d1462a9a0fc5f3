"""Partial point clouds for shape completion: each shape cut by a random plane (thesis Sec. 5.5.6).

A partial scan sees one side of an object. Here the cut keeps the points on one side of a plane
with a uniformly random normal, placed so that a drawn share of the points (40-70 % by default)
survives, as the completion benchmarks cut clouds by random planes or views. The points come
from the surface (area-uniform samples of a mesh, or the cloud's own points subsampled).

Every partial cloud keeps its source's name, class and split (``OUT/CLASS/SPLIT/NAME.ply``), so
the INRs fitted to it pair with the complete shapes' INRs by item name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.artifacts.core import atomic_folder, check_output_folder
from nrtool.config import Config
from nrtool.errors import InputFileError
from nrtool.geometry.augment import name_rng, relative_folder
from nrtool.io import discover_inputs, load_shape, save_points_ply
from nrtool.progress import Progress, SilentProgress


@dataclass(frozen=True)
class CropSettings(Config):
    WHAT = "crop"

    points: int = 2048
    keep_low: float = 0.4
    keep_high: float = 0.7
    seed: int = 0

    def checks(self) -> dict[str, bool]:
        return {"points": self.points >= 16, "keep_low": 0 < self.keep_low <= self.keep_high,
                "keep_high": self.keep_high <= 1}


def plane_crop(points: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """The ``round(keep * N)`` points (at least 1) on the low side of a plane with a random normal."""
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    heights = points @ normal
    count = max(1, int(round(keep * len(points))))
    return points[np.argsort(heights, kind="stable")[:count]]


def surface_points(path: str | os.PathLike[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points on a mesh's surface (by area) or of a cloud (subsampled if larger)."""
    from nrtool.geometry.metrics import sample_surface

    shape = load_shape(path)
    if shape.kind == "voxels":
        raise InputFileError(path, "voxel grids cannot be cropped into partial clouds (meshes and point clouds only)")
    if shape.kind == "mesh" and shape.faces is not None and len(shape.faces):
        return sample_surface(shape.vertices, shape.faces, count, int(rng.integers(2**31)))
    cloud = shape.points()
    return cloud if len(cloud) <= count else cloud[rng.choice(len(cloud), count, replace=False)]


def crop_dataset(inputs: list[str | os.PathLike[str]], out: str | os.PathLike[str], settings: CropSettings,
                 force: bool = False, progress: Progress | None = None) -> list[Path]:
    """Write one partial cloud per input shape (every split) under ``out``, atomically as a folder."""
    settings.validate()
    out = Path(out)
    check_output_folder(out, force)
    sources = discover_inputs(inputs)
    written: list[Path] = []
    progress = progress or SilentProgress()
    with atomic_folder(out, force=force) as staging, \
            progress.task("cutting partial clouds", len(sources), "shapes") as advance:
        for source in sources:
            rng = name_rng(settings.seed, source.name, 0)
            cloud = surface_points(source.path, settings.points, rng)
            partial = plane_crop(cloud, float(rng.uniform(settings.keep_low, settings.keep_high)), rng)
            target = staging / relative_folder(source) / f"{Path(source.path).stem}.ply"
            target.parent.mkdir(parents=True, exist_ok=True)
            save_points_ply(target, partial)
            written.append(out / target.relative_to(staging))
            advance()
    return written

