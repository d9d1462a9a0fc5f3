"""The ``inrs`` artifact: a set of fitted INRs with everything needed to use or extend them.

Layout (schema 1), first axis = item for every per-item dataset:

======================  ==========  ===================================================
dataset                 shape       meaning
======================  ==========  ===================================================
``params``              (N, P) f32  flat SIREN parameters, order in ``param_order``
``names``               (N,) str    item names (unique)
``labels``              (N,) i64    index into the ``classes`` attribute, -1 = unknown
``split``               (N,) str    train / val / test, "" = unknown
``sources``             (N,) str    absolute path of each source shape
``source_sha256``       (N,) str    SHA-256 of the source file when fitted ("" = unknown)
``source_index``        (N,) i64    position in the run's full (unsharded) input list
``center``, ``scale``   (N,3), (N,) ``x_source = x_normalised * scale + center``
``final_loss``          (N,) f32    mean field loss after fitting
``shared_init``         (P,) f32    the initialisation every INR started from
======================  ==========  ===================================================

Attributes: ``architecture`` (JSON), ``field``, ``preset``, ``fit_config`` (JSON of the settings
that must match to extend the file), ``classes`` (JSON list), ``shared_init_sha256``,
``input_set`` (hash of the full input list, so shards of one run can be merged in order),
``param_order``.

Resuming: while a run is in progress, each finished batch is saved atomically as one ``.npz`` in
``OUT.parts/``; the artifact itself is assembled into a temporary file and renamed onto ``OUT``
only at the end. A killed run leaves nothing under ``OUT`` (or the previous complete ``OUT``),
and the next run with the same settings picks up the finished batches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.architecture import SirenSpec
from nrtool.artifacts.core import (
    ItemInfo,
    atomic_output,
    open_artifact,
    read_item_table,
    write_item_table,
    write_root_attrs,
)
from nrtool.artifacts.parts import PartsFolder
from nrtool.errors import InputFileError, NrtoolError

KIND = "inrs"
PARAM_ORDER = (
    "layers in forward order (3->H, L x H->H, H->1); per layer W (out,in) row-major then b (out)"
)


@dataclass
class InrItem(ItemInfo):
    """One fitted INR and where it came from."""

    final_loss: float
    params: np.ndarray  # (P,)


@dataclass
class InrHeader:
    """File-level settings of an ``inrs`` artifact."""

    spec: SirenSpec
    field: str
    preset: str
    fit_config: dict[str, Any]
    shared_init: np.ndarray  # (P,) float32
    input_set: str = ""

    @property
    def init_sha256(self) -> str:
        return init_digest(self.shared_init)

    def identity(self) -> dict[str, Any]:
        """What must match for two sets of INRs to live in one file."""
        return {"architecture": self.spec.to_dict(), "field": self.field, "init": self.init_sha256}


def init_digest(shared_init: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(shared_init, dtype=np.float32).tobytes()).hexdigest()


def input_set_digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- reading


def read_header(handle: h5py.File) -> InrHeader:
    attrs = handle.attrs
    return InrHeader(
        spec=SirenSpec.from_dict(json.loads(attrs["architecture"])),
        field=str(attrs["field"]),
        preset=str(attrs["preset"]),
        fit_config=json.loads(attrs["fit_config"]),
        shared_init=handle["shared_init"][()],
        input_set=str(attrs.get("input_set", "")),
    )


def read_items(handle: h5py.File) -> list[InrItem]:
    params = handle["params"][()]
    final_loss = handle["final_loss"][()]
    return [
        InrItem(
            **vars(info),
            final_loss=float(final_loss[i]),
            params=params[i],
        )
        for i, info in enumerate(read_item_table(handle))
    ]

def load_inrs(path: str | os.PathLike[str]) -> tuple[InrHeader, list[InrItem]]:
    """Header and items of an ``inrs`` artifact (one-line error for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            return read_header(handle), read_items(handle)
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"damaged 'inrs' artifact ({exc})") from exc


# ---------------------------------------------------------------- writing


def write_inrs(
    path: str | os.PathLike[str],
    header: InrHeader,
    items: Sequence[InrItem],
    inputs: list[dict[str, str]] | None = None,
    command: list[str] | None = None,
) -> None:
    """Write a complete ``inrs`` artifact atomically (temp file in the same folder, then rename)."""
    if not items:
        raise NrtoolError(f"{path}: nothing to write (no INRs)")
    names = [item.name for item in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise NrtoolError(f"{path}: duplicate item names: {', '.join(duplicates[:5])}")
    n_params = header.spec.n_params
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        handle.attrs["architecture"] = json.dumps(header.spec.to_dict())
        handle.attrs["field"] = header.field
        handle.attrs["preset"] = header.preset
        handle.attrs["fit_config"] = json.dumps(header.fit_config)
        handle.attrs["shared_init_sha256"] = header.init_sha256
        handle.attrs["input_set"] = header.input_set
        handle.attrs["param_order"] = PARAM_ORDER
        params = handle.create_dataset(
            "params", shape=(len(items), n_params), maxshape=(None, n_params), dtype=np.float32,
            chunks=(1, n_params),
        )
        for row, item in enumerate(items):
            params[row] = item.params
        write_item_table(handle, items)
        handle["final_loss"] = np.array([i.final_loss for i in items], dtype=np.float32)
        handle["shared_init"] = np.asarray(header.shared_init, dtype=np.float32)


# ---------------------------------------------------------------- resumable progress


class PartsStore(PartsFolder):
    """Finished batches of an in-progress ``fit-inr`` run (:class:`PartsFolder`), one per batch."""

    prefix = "batch"

    @staticmethod
    def _key(items: Sequence[InrItem]) -> str:
        return f"{min(item.source_index for item in items):08d}"

    def has_batch(self, items: Sequence[InrItem]) -> bool:
        """Whether the batch of ``items`` is kept (seen from this machine: a Ray worker wrote it)."""
        return self.part_file(self._key(items)).exists()

    def save_batch(self, items: Sequence[InrItem]) -> None:
        self.save_part(self._key(items), {
            "names": np.array([i.name for i in items]),
            "class_names": np.array([i.class_name or "" for i in items]),
            "splits": np.array([i.split or "" for i in items]),
            "sources": np.array([i.source for i in items]),
            "source_sha256": np.array([i.source_sha256 for i in items]),
            "source_index": np.array([i.source_index for i in items], dtype=np.int64),
            "center": np.stack([i.center for i in items]),
            "scale": np.array([i.scale for i in items]),
            "final_loss": np.array([i.final_loss for i in items], dtype=np.float32),
            "params": np.stack([i.params for i in items]).astype(np.float32),
        })

    def load(self) -> list[InrItem]:
        """Every item of every complete batch file (damaged ones are ignored and refitted)."""
        items: list[InrItem] = []
        for data in self.load_parts():
            try:
                hashes = data["source_sha256"] if "source_sha256" in data else [""] * len(data["names"])
                items.extend(
                    InrItem(
                        name=str(name),
                        class_name=str(data["class_names"][i]) or None,
                        split=str(data["splits"][i]) or None,
                        source=str(data["sources"][i]),
                        source_index=int(data["source_index"][i]),
                        center=data["center"][i],
                        scale=float(data["scale"][i]),
                        final_loss=float(data["final_loss"][i]),
                        params=data["params"][i],
                        source_sha256=str(hashes[i]),
                    )
                    for i, name in enumerate(data["names"])
                )
            except (ValueError, KeyError, IndexError):
                continue
        return items

    def has_batches(self) -> bool:
        return self.has_parts()
