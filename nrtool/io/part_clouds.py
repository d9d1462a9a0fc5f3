"""Point clouds with a part label per point: reading them, and importing ShapeNet-Part.

nrtool's labelled cloud is an ``.npz`` with ``points`` (N, 3) float, ``labels`` (N,) integer
part ids (global over the data set, as in ShapeNet-Part's 50 parts) and optionally
``part_names`` (K,) str indexed by id. ``fit-inr`` reads the same file as a point cloud (its
``points``), so one folder serves both the INRs and the part labels; ``nrtool synth shapes
--parts`` writes such folders and ``nrtool import shapenet-part`` converts ShapeNet-Part's
``shapenetcore_partanno_segmentation_benchmark_v0_normal`` release into one.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.artifacts.core import atomic_write_bytes, holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress


@dataclass
class LabelledCloud:
    points: np.ndarray  # (N, 3) float64, the file's units
    labels: np.ndarray  # (N,) int64, >= 0
    part_names: list[str] | None = None


def load_labelled_cloud(path: str | os.PathLike[str]) -> LabelledCloud:
    """Read a labelled ``.npz`` cloud; one-line errors naming the file for anything else."""
    from nrtool.io.shapes import describe_error

    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file (the part labels are read from the items' source clouds)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if not {"points", "labels"} <= keys:
                raise InputFileError(path, f"holds {sorted(keys)}; a labelled cloud needs 'points' and 'labels'")
            points, labels = archive["points"], archive["labels"]
            names = [str(n) for n in archive["part_names"]] if "part_names" in keys else None
    except InputFileError:
        raise
    except Exception as exc:  # not a zip, truncated, pickled objects, ...
        raise InputFileError(path, f"cannot read as a labelled .npz cloud: {describe_error(exc)}") from exc
    if points.ndim != 2 or points.shape[1] != 3 or points.dtype.kind not in "fiu" or len(points) == 0:
        raise InputFileError(path, f"'points' must be a non-empty (N, 3) number array, got {points.shape} {points.dtype}")
    if not np.all(np.isfinite(points)):
        raise InputFileError(path, "'points' contain NaN or infinite values")
    if labels.shape != (len(points),) or labels.dtype.kind not in "iu":
        raise InputFileError(path, f"'labels' must be ({len(points)},) integers, one per point, got {labels.shape} {labels.dtype}")
    if labels.min() < 0:
        raise InputFileError(path, f"'labels' must be non-negative part ids, found {int(labels.min())}")
    if names is not None and len(names) <= int(labels.max()):
        raise InputFileError(path, f"'part_names' names {len(names)} parts but a label is {int(labels.max())}")
    return LabelledCloud(points.astype(np.float64), labels.astype(np.int64), names)


def save_labelled_cloud(path: Path, points: np.ndarray, labels: np.ndarray, names: Sequence[str] | None) -> None:
    """``.npz`` with ``points``, ``labels`` and, if given, ``part_names`` (plain arrays: loads
    without pickle), atomically (:mod:`nrtool.io.part_clouds` reads it)."""
    arrays = {"points": np.asarray(points, np.float32), "labels": np.asarray(labels, np.int64)}
    if names is not None:
        arrays["part_names"] = np.array(list(names), dtype=str)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


# --------------------------------------------------------------------------------------------
# ShapeNet-Part (Yi et al. 2016), the release PointNet++, DGCNN and inr2vec train on
# --------------------------------------------------------------------------------------------

_CATEGORY_FILE = "synsetoffset2category.txt"
_SPLIT_FILES = {split: f"train_test_split/shuffled_{split}_file_list.json" for split in ("train", "val", "test")}


def _read_categories(root: Path) -> dict[str, str]:
    """``synsetoffset2category.txt``: synset id -> category name (``02691156`` -> ``Airplane``)."""
    path = root / _CATEGORY_FILE
    if not path.is_file():
        raise InputFileError(root, f"not a ShapeNet-Part folder (no {_CATEGORY_FILE}; expected the "
                                   "shapenetcore_partanno_segmentation_benchmark_v0_normal release)")
    categories = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise InputFileError(path, f"line {number}: expected 'Category synset', got {line.strip()!r}")
        categories[fields[1]] = fields[0]
    return categories


def _read_split(root: Path, split: str) -> list[tuple[str, str]]:
    """``(synset, shape id)`` of a split list (entries ``shape_data/SYNSET/ID``)."""
    path = root / _SPLIT_FILES[split]
    if not path.is_file():
        raise InputFileError(root, f"missing {_SPLIT_FILES[split]}")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not JSON ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise InputFileError(path, "expected a JSON list of 'shape_data/SYNSET/ID' strings")
    pairs = []
    for entry in entries:
        parts = entry.strip("/").split("/")
        if len(parts) < 2:
            raise InputFileError(path, f"entry {entry!r} is not 'shape_data/SYNSET/ID'")
        pairs.append((parts[-2], parts[-1]))
    return pairs


def _read_shapenet_part_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One shape: rows ``x y z nx ny nz label`` -> (N, 3) points, (N,) labels."""
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read ShapeNet-Part rows 'x y z nx ny nz label' ({exc})") from exc
    if rows.shape[0] == 0 or rows.shape[1] != 7:
        raise InputFileError(path, f"expected rows of 7 numbers 'x y z nx ny nz label', got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise InputFileError(path, "NaN or infinite values")
    labels = rows[:, 6]
    if np.any(labels < 0) or np.any(labels != np.round(labels)):
        raise InputFileError(path, "labels (7th column) must be non-negative integers")
    return rows[:, :3], labels.astype(np.int64)


#: Shapes per finished part of an import (what an interrupted import keeps).
IMPORT_CHUNK = 500


@holds_output_lock("out")
def import_shapenet_part(root: str | os.PathLike[str], out: str | os.PathLike[str], points: int | None = 2048,
                         categories: Sequence[str] = (), seed: int = 0, force: bool = False,
                         progress: Progress | None = None) -> list[Path]:
    """Convert ShapeNet-Part into labelled clouds ``out/CATEGORY/{train,val,test}/ID.npz``.

    ``points``: each cloud is subsampled to this many points (seeded per shape; clouds with
    fewer keep all of theirs), as the field trains on 2048; ``None`` keeps every point.
    ``categories``: only these (names as in ``synsetoffset2category.txt``, any case).
    Labels stay ShapeNet-Part's global part ids. The folder appears complete or not at all; an
    interrupted import keeps what it read in ``OUT.parts/`` (:mod:`nrtool.artifacts.parts`)
    and continues from there when rerun with the same arguments.
    """
    from nrtool.artifacts.core import atomic_folder, check_output_folder
    from nrtool.artifacts.parts import PartsFolder

    root, out = Path(root), Path(out)
    check_output_folder(out, force)
    names = _read_categories(root)
    wanted = {c.lower() for c in categories}
    unknown = wanted - {name.lower() for name in names.values()}
    if unknown:
        raise NrtoolError(f"unknown ShapeNet-Part categor{'ies' if len(unknown) > 1 else 'y'} {sorted(unknown)}; "
                          f"{root} has {', '.join(sorted(names.values()))}")
    if points is not None and points < 16:
        raise NrtoolError(f"--points must be at least 16, got {points}")
    jobs = [(split, synset, shape) for split in _SPLIT_FILES for synset, shape in _read_split(root, split)
            if synset in names and (not wanted or names[synset].lower() in wanted)]
    if not jobs:
        raise InputFileError(root, "the split lists name no shape of the chosen categories")
    parts = PartsFolder(out)
    fingerprint = {"root": str(root.resolve()), "points": points, "categories": sorted(wanted), "seed": seed,
                   "shapes": len(jobs)}
    if parts.exists() and parts.settings() not in (None, fingerprint):
        raise InputFileError(parts.folder, "holds an unfinished import of other arguments; delete it, or rerun the "
                             "command that started it")
    parts.start(fingerprint)
    done = {int(part["chunk"]) for part in parts.load_parts()}
    progress = progress or SilentProgress()
    with progress.task("importing ShapeNet-Part", len(jobs), "shapes") as advance:
        for chunk, first in enumerate(range(0, len(jobs), IMPORT_CHUNK)):
            batch = jobs[first : first + IMPORT_CHUNK]
            if chunk in done:
                advance(len(batch))
                continue
            clouds, labels = [], []
            for index, (split, synset, shape) in enumerate(batch, start=first):
                cloud, label = _read_shapenet_part_txt(root / synset / f"{shape}.txt")
                if points is not None and len(cloud) > points:
                    keep = np.random.default_rng([seed, index]).choice(len(cloud), points, replace=False)
                    cloud, label = cloud[keep], label[keep]
                clouds.append(cloud.astype(np.float32))
                labels.append(label)
                advance()
            parts.save_part(f"{chunk:05d}", {"chunk": chunk, "points": np.concatenate(clouds),
                                             "labels": np.concatenate(labels),
                                             "offsets": np.cumsum([0] + [len(c) for c in clouds])})
    written = []
    with atomic_folder(out, force=force) as staging:
        for part in parts.load_parts():
            offsets, first = part["offsets"], int(part["chunk"]) * IMPORT_CHUNK
            for k, (split, synset, shape) in enumerate(jobs[first : first + len(offsets) - 1]):
                rows = slice(int(offsets[k]), int(offsets[k + 1]))
                relative = Path(names[synset]) / split / f"{shape}.npz"
                save_labelled_cloud(staging / relative, part["points"][rows], part["labels"][rows], None)
                written.append(out / relative)
    parts.remove()
    return written
