"""The ``samples`` artifact: precomputed ground truth (queries and field values) per shape.

Computing ground truth needs the geometry stack (trimesh, Open3D, a KD-tree); fitting needs only
torch. ``nrtool sample`` writes this artifact on a CPU node, and ``nrtool fit-inr SAMPLES.h5``
fits from it on a bare GPU node with just torch and h5py (DESIGN.md, "Shape of the tool").

Layout (schema 1): item ``i`` owns rows ``offsets[i]:offsets[i+1]`` of ``queries`` (T,3) f32
(normalised frame) and ``values`` (T,) f32 (distance or occupancy). Per-item datasets as in
``inrs``: ``names``, ``labels``, ``split``, ``sources``, ``source_index``, ``center``, ``scale``.
Attributes: ``field``, ``queries`` (JSON QuerySpec), ``seed``, ``classes``, ``input_set``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import (
    ItemInfo,
    atomic_output,
    open_artifact,
    read_item_table,
    write_item_table,
    write_root_attrs,
)
from nrtool.errors import InputFileError, NrtoolError

KIND = "samples"


@dataclass
class SampleEntry(ItemInfo):
    """One shape's ground truth in the normalised frame."""

    queries: np.ndarray  # (Q, 3) float32
    values: np.ndarray  # (Q,) float32


@dataclass
class SamplesHeader:
    field: str
    queries: dict[str, Any]
    seed: int
    input_set: str


def is_samples_file(path: str | os.PathLike[str]) -> bool:
    """True for an existing HDF5 file whose ``nrtool_kind`` is ``samples``."""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as handle:
            return str(handle.attrs.get("nrtool_kind", "")) == KIND
    except OSError:
        return False


def write_samples(
    path: str | os.PathLike[str],
    header: SamplesHeader,
    entries: Sequence[SampleEntry],
    command: list[str] | None = None,
) -> None:
    """Write a complete ``samples`` artifact atomically."""
    if not entries:
        raise NrtoolError(f"{path}: nothing to write (no shapes)")
    offsets = np.concatenate([[0], np.cumsum([len(e.values) for e in entries])]).astype(np.int64)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, command=command)
        handle.attrs["field"] = header.field
        handle.attrs["queries"] = json.dumps(header.queries)
        handle.attrs["seed"] = header.seed
        handle.attrs["input_set"] = header.input_set
        total = int(offsets[-1])
        chunk = int(min(total, 1 << 16))
        queries = handle.create_dataset("queries", (total, 3), np.float32, chunks=(chunk, 3), compression="lzf")
        values = handle.create_dataset("values", (total,), np.float32, chunks=(chunk,), compression="lzf")
        for entry, start, stop in zip(entries, offsets[:-1], offsets[1:]):
            queries[start:stop] = entry.queries
            values[start:stop] = entry.values
        handle["offsets"] = offsets
        write_item_table(handle, entries)

class SamplesReader:
    """Reads a ``samples`` artifact; per-item ground truth is loaded on demand."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        with open_artifact(path, KIND) as handle:
            try:
                self.header = SamplesHeader(
                    field=str(handle.attrs["field"]),
                    queries=json.loads(handle.attrs["queries"]),
                    seed=int(handle.attrs["seed"]),
                    input_set=str(handle.attrs.get("input_set", "")),
                )
                items = read_item_table(handle)
                self.names = [item.name for item in items]
                self.class_names = [item.class_name for item in items]
                self.splits = [item.split for item in items]
                self.sources = [item.source for item in items]
                self.source_sha256 = [item.source_sha256 for item in items]
                self.source_index = [item.source_index for item in items]
                self.center = np.stack([item.center for item in items])
                self.scale = np.array([item.scale for item in items])
                self.offsets = handle["offsets"][()]
            except (KeyError, ValueError, json.JSONDecodeError) as exc:
                raise InputFileError(path, f"damaged 'samples' artifact ({exc})") from exc

    def __len__(self) -> int:
        return len(self.names)

    def truth(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Queries (Q,3) and values (Q,) of item ``index``."""
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        with h5py.File(self.path, "r") as handle:
            queries = handle["queries"][start:stop]
            values = handle["values"][start:stop]
        if not (np.all(np.isfinite(queries)) and np.all(np.isfinite(values))):
            raise InputFileError(self.path, f"item {self.names[index]!r} has non-finite samples")
        return queries, values
