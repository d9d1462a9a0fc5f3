"""The ``embeddings`` artifact: one vector per item, e.g. inr2vec embeddings of INRs.

Layout (schema 1): ``embeddings`` (N, D) f32 plus the item table shared by all kinds
(``names``, ``labels`` with the ``classes`` attribute, ``split``, ``sources``, ``source_index``,
``center``, ``scale``). Attributes: ``encoder`` (what produced the vectors, e.g. ``inr2vec``),
``field`` (of the INRs they came from), ``dim``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

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

KIND = "embeddings"


@dataclass
class Embeddings:
    """Item-aligned vectors with their provenance."""

    vectors: np.ndarray  # (N, D) float32
    items: list[ItemInfo]
    encoder: str = "inr2vec"
    field: str = ""

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    @property
    def classes(self) -> list[str]:
        return sorted({i.class_name for i in self.items if i.class_name is not None})

    def labels(self) -> np.ndarray:
        """(N,) int64 class indices into :attr:`classes`, -1 where unknown."""
        classes = self.classes
        return np.array([classes.index(i.class_name) if i.class_name else -1 for i in self.items], dtype=np.int64)

    def splits(self) -> list[str | None]:
        return [item.split for item in self.items]


def write_embeddings(
    path: str | os.PathLike[str],
    embeddings: Embeddings,
    inputs: list[dict[str, str]] | None = None,
    command: list[str] | None = None,
) -> None:
    """Write an ``embeddings`` artifact atomically."""
    vectors = np.asarray(embeddings.vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(embeddings.items) or len(vectors) == 0:
        raise NrtoolError(f"{path}: embeddings must be a non-empty (N, D) array aligned with the items")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        handle.attrs["encoder"] = embeddings.encoder
        handle.attrs["field"] = embeddings.field
        handle.attrs["dim"] = int(vectors.shape[1])
        handle.create_dataset("embeddings", data=vectors, chunks=(min(len(vectors), 1024), vectors.shape[1]))
        write_item_table(handle, embeddings.items)


def load_embeddings(path: str | os.PathLike[str]) -> Embeddings:
    """Read an ``embeddings`` artifact (one-line error naming the file for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            items = read_item_table(handle)
            vectors = handle["embeddings"][()]
        except (KeyError, ValueError, IndexError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"damaged 'embeddings' artifact ({exc})") from exc
        if not np.all(np.isfinite(vectors)):
            raise InputFileError(path, "embeddings contain NaN or infinite values")
        return Embeddings(vectors, items, str(handle.attrs.get("encoder", "")), str(handle.attrs.get("field", "")))


def select(embeddings: Embeddings, splits: Sequence[str]) -> Embeddings:
    """The items whose split is one of ``splits`` (all items when ``splits`` is empty)."""
    if not splits:
        return embeddings
    keep = [i for i, item in enumerate(embeddings.items) if item.split in splits]
    return Embeddings(embeddings.vectors[keep], [embeddings.items[i] for i in keep], embeddings.encoder, embeddings.field)
