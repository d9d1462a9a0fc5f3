"""The ``garment-codes`` artifact: one latent code per garment, from a garment model's encoder.

Layout (schema 1): ``codes`` (N, D) f32 plus the item table shared by all kinds (``names``,
``labels`` with the garment types as ``classes``, ``split``, ``sources``, ``source_index``,
``center``, ``scale``: ``x_source = x_normalised * scale + center``) and ``attributes`` (N,)
JSON strings (e.g. ``sleeve_length`` from ``nrtool synth garments``; ``{}`` when unknown).
Optional ``align_offsets`` (N, 3) f64: the translation ``garment encode --align`` added to each
source garment to bring it into the model's training frame (source units; absent: none). The
``center`` already includes it, so ``x_normalised * scale + center`` is the garment's own frame.
Root attributes: ``category`` (``top`` | ``bottom``: the model's), ``model_sha256``, ``dim``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import (
    STR_DTYPE,
    ItemInfo,
    atomic_output,
    open_artifact,
    read_item_table,
    read_strings,
    read_vectors_npy,
    write_item_table,
    write_root_attrs,
)
from nrtool.errors import InputFileError, NrtoolError

KIND = "garment-codes"


@dataclass
class GarmentCodes:
    """Item-aligned garment codes with their provenance."""

    codes: np.ndarray  # (N, D) float32
    items: list[ItemInfo]
    category: str
    attributes: list[dict[str, Any]] = field(default_factory=list)
    model_sha256: str = ""
    offsets: np.ndarray | None = None  # (N, 3) translation added by --align (source units), None: none

    def select(self, rows: list[int]) -> "GarmentCodes":
        """The codes of ``rows`` (in that order), with everything aligned with them."""
        return GarmentCodes(self.codes[rows], [self.items[r] for r in rows], self.category,
                            [self.attributes[r] for r in rows] if self.attributes else [], self.model_sha256,
                            None if self.offsets is None else np.asarray(self.offsets)[rows])

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    def index(self, name: str, path: str | os.PathLike[str] = "codes") -> int:
        try:
            return self.names.index(name)
        except ValueError:
            shown = ", ".join(self.names[:8]) + (" ..." if len(self.names) > 8 else "")
            raise InputFileError(path, f"no garment named {name!r} (it holds {shown})") from None


def write_garment_codes(path: str | os.PathLike[str], codes: GarmentCodes, inputs: list[dict[str, str]] | None = None,
                        command: list[str] | None = None) -> None:
    """Write a ``garment-codes`` artifact atomically."""
    vectors = np.asarray(codes.codes, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(codes.items) or len(vectors) == 0:
        raise NrtoolError(f"{path}: codes must be a non-empty (N, D) array aligned with the items")
    attributes = codes.attributes or [{} for _ in codes.items]
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        handle.attrs["category"] = codes.category
        handle.attrs["model_sha256"] = codes.model_sha256
        handle.attrs["dim"] = int(vectors.shape[1])
        handle.create_dataset("codes", data=vectors, chunks=(min(len(vectors), 1024), vectors.shape[1]))
        handle["attributes"] = np.array([json.dumps(a) for a in attributes], dtype=object).astype(STR_DTYPE)
        if codes.offsets is not None:
            offsets = np.asarray(codes.offsets, dtype=np.float64)
            if offsets.shape != (len(vectors), 3):
                raise NrtoolError(f"{path}: align offsets must be (N, 3), aligned with the codes")
            handle["align_offsets"] = offsets
        write_item_table(handle, codes.items)


def load_garment_codes(path: str | os.PathLike[str]) -> GarmentCodes:
    """Read a ``garment-codes`` artifact (one-line error naming the file for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            items = read_item_table(handle)
            vectors = handle["codes"][()].astype(np.float32)
            attributes = [json.loads(a) for a in read_strings(handle["attributes"])]
            category = str(handle.attrs["category"])
            sha = str(handle.attrs.get("model_sha256", ""))
            offsets = handle["align_offsets"][()].astype(np.float64) if "align_offsets" in handle else None
        except (KeyError, ValueError, IndexError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"damaged 'garment-codes' artifact ({exc})") from exc
    if vectors.ndim != 2 or len(vectors) != len(items) or (offsets is not None and offsets.shape != (len(items), 3)):
        raise InputFileError(path, "damaged 'garment-codes' artifact (codes not aligned with names)")
    if not np.all(np.isfinite(vectors)):
        raise InputFileError(path, "codes contain NaN or infinite values")
    return GarmentCodes(vectors, items, category, attributes, sha, offsets)


def load_codes_any(path: str | os.PathLike[str]) -> GarmentCodes:
    """A ``garment-codes`` artifact, or a ``.npy`` of one code (D,) or several (N, D) (category unknown)."""
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() != ".npy":
        return load_garment_codes(p)
    array, items = read_vectors_npy(p)
    return GarmentCodes(array.astype(np.float32), items, "unknown", [{} for _ in items])
