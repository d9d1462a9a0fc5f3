"""The ``segmentation`` artifact: a part label for every point of each item's cloud(s).

Layout (schema 1). Clouds of all items are concatenated; item ``i`` owns rows
``offsets[i]:offsets[i+1]``. Points are in the source's units.

===================  ==========  ===========================================================
dataset              shape       meaning
===================  ==========  ===========================================================
``offsets``          (N+1,) i64  row ranges of the items' original (labelled) clouds
``points``           (P, 3) f32  the original clouds' points
``predicted``        (P,) i64    predicted part id (an index into the ``parts`` attribute)
``truth``            (P,) i64    the cloud's own label
``shape_iou``        (N,) f32    each shape's mean part IoU on its original points
``recon_*``                      the same for clouds reconstructed from the items' INRs
                                 (``nrtool segment --inrs``), their truth the label of the
                                 nearest original point; absent without INRs
item table           ...         as in every item-aligned artifact
===================  ==========  ===========================================================

Attributes: ``parts`` (JSON: name per part id), ``class_parts`` (JSON: class -> ids),
``metrics`` (JSON: instance/class mIoU and per-class IoU of each cloud kind, baselines),
``model``, ``embeddings``, ``inrs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
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

KIND = "segmentation"
CLOUD_KINDS = ("original", "recon")  # dataset prefixes "" and "recon_"


@dataclass
class SegmentedClouds:
    """Per item: points (n, 3), predicted and true part ids (n,), the shape's IoU."""

    points: list[np.ndarray]
    predicted: list[np.ndarray]
    truth: list[np.ndarray]
    shape_iou: list[float]


@dataclass
class Segmentation:
    items: list[ItemInfo]
    parts: list[str]
    class_parts: dict[str, list[int]]
    clouds: dict[str, SegmentedClouds]  # "original" and, with INRs, "recon"
    metrics: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    embeddings: str = ""
    inrs: str = ""


def _prefix(kind: str) -> str:
    return "" if kind == "original" else f"{kind}_"


def write_segmentation(path: str | os.PathLike[str], segmentation: Segmentation,
                       inputs: list[dict[str, str]] | None = None, command: list[str] | None = None) -> None:
    """Write a ``segmentation`` artifact atomically."""
    n = len(segmentation.items)
    if n == 0 or any(len(c.points) != n for c in segmentation.clouds.values()) or "original" not in segmentation.clouds:
        raise NrtoolError(f"{path}: a segmentation needs original clouds aligned with a non-empty item list")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        write_item_table(handle, segmentation.items)
        for kind, clouds in segmentation.clouds.items():
            prefix = _prefix(kind)
            sizes = [len(p) for p in clouds.points]
            handle[f"{prefix}offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            handle.create_dataset(f"{prefix}points", data=np.concatenate(clouds.points).astype(np.float32).reshape(-1, 3))
            handle[f"{prefix}predicted"] = np.concatenate(clouds.predicted).astype(np.int64)
            handle[f"{prefix}truth"] = np.concatenate(clouds.truth).astype(np.int64)
            handle[f"{prefix}shape_iou"] = np.asarray(clouds.shape_iou, dtype=np.float32)
        handle.attrs["parts"] = json.dumps(segmentation.parts)
        handle.attrs["class_parts"] = json.dumps(segmentation.class_parts)
        handle.attrs["metrics"] = json.dumps(segmentation.metrics)
        handle.attrs["model"] = segmentation.model
        handle.attrs["embeddings"] = segmentation.embeddings
        handle.attrs["inrs"] = segmentation.inrs


def _split(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def load_segmentation(path: str | os.PathLike[str]) -> Segmentation:
    """Read a ``segmentation`` artifact (one-line error naming the file for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            items = read_item_table(handle)
            clouds = {}
            for kind in CLOUD_KINDS:
                prefix = _prefix(kind)
                if f"{prefix}offsets" not in handle:
                    continue
                offsets = handle[f"{prefix}offsets"][()]
                if len(offsets) != len(items) + 1:
                    raise ValueError(f"{prefix}offsets has {len(offsets)} entries for {len(items)} items")
                clouds[kind] = SegmentedClouds(_split(handle[f"{prefix}points"][()], offsets),
                                               _split(handle[f"{prefix}predicted"][()], offsets),
                                               _split(handle[f"{prefix}truth"][()], offsets),
                                               [float(v) for v in handle[f"{prefix}shape_iou"][()]])
            return Segmentation(items, list(json.loads(handle.attrs["parts"])), dict(json.loads(handle.attrs["class_parts"])),
                                clouds, dict(json.loads(handle.attrs["metrics"])), str(handle.attrs.get("model", "")),
                                str(handle.attrs.get("embeddings", "")), str(handle.attrs.get("inrs", "")))
        except (KeyError, ValueError, IndexError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"damaged 'segmentation' artifact ({exc})") from exc


__all__ = ["KIND", "Segmentation", "SegmentedClouds", "load_segmentation", "write_segmentation"]
