"""The ``predictions`` artifact: a classifier's output for each item of an embeddings artifact.

Layout (schema 1), first axis = item:

=================  ==========  ============================================================
dataset            shape       meaning
=================  ==========  ============================================================
``predicted``      (N,) i64    predicted class, index into the ``classes`` attribute
``probabilities``  (N, C) f32  softmax over the ``classes`` attribute (rows sum to 1)
``labels``         (N,) i64    true class as an index into ``classes``, -1 = unknown *or* a
                               class the model never saw (then ``label_names`` still has it)
``label_names``    (N,) str    true class name, "" = unknown
item table         ...         ``names``, ``split``, ``sources``, ``source_index``, ``center``,
                               ``scale`` as in every item-aligned artifact
=================  ==========  ============================================================

Attributes: ``classes`` (JSON list: the *model's* classes, the columns of ``probabilities``),
``model`` (path of the classifier checkpoint), ``embeddings`` (path of the input).

``classes`` are the model's rather than the items' own, because predictions index into them; the
true labels are re-indexed into the same list so ``labels == predicted`` is the correct test.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import h5py
import numpy as np

from nrtool.artifacts.core import (
    STR_DTYPE,
    ItemInfo,
    atomic_output,
    open_artifact,
    read_item_table,
    read_strings,
    write_item_table,
    write_root_attrs,
)
from nrtool.errors import InputFileError, NrtoolError

KIND = "predictions"


@dataclass
class Predictions:
    """Per-item class predictions with the classes they index into."""

    predicted: np.ndarray  # (N,) int64, index into classes
    probabilities: np.ndarray  # (N, C) float32
    items: list[ItemInfo]
    classes: list[str]  # the model's classes (C)
    model: str = ""
    embeddings: str = ""

    def labels(self) -> np.ndarray:
        """(N,) int64 true classes as indices into :attr:`classes`; -1 unknown or unseen class."""
        index = {name: i for i, name in enumerate(self.classes)}
        return np.array([index.get(item.class_name, -1) if item.class_name else -1 for item in self.items], dtype=np.int64)


def write_predictions(
    path: str | os.PathLike[str],
    predictions: Predictions,
    inputs: list[dict[str, str]] | None = None,
    command: list[str] | None = None,
) -> None:
    """Write a ``predictions`` artifact atomically."""
    predicted = np.asarray(predictions.predicted, dtype=np.int64)
    probabilities = np.asarray(predictions.probabilities, dtype=np.float32)
    n, c = len(predictions.items), len(predictions.classes)
    if n == 0 or predicted.shape != (n,) or probabilities.shape != (n, c):
        raise NrtoolError(
            f"{path}: predictions must be non-empty, (N,) and (N, C) aligned with the items and classes"
        )
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        write_item_table(handle, predictions.items)
        # The shared item table indexes labels into the items' own classes; re-point them (and the
        # attribute) at the model's classes, which is what `predicted` indexes into.
        del handle["labels"]
        handle["labels"] = predictions.labels()
        handle.attrs["classes"] = json.dumps(list(predictions.classes))
        handle["label_names"] = np.array([i.class_name or "" for i in predictions.items], dtype=object).astype(STR_DTYPE)
        handle["predicted"] = predicted
        handle.create_dataset("probabilities", data=probabilities, chunks=(min(n, 4096), c))
        handle.attrs["model"] = predictions.model
        handle.attrs["embeddings"] = predictions.embeddings


def load_predictions(path: str | os.PathLike[str]) -> Predictions:
    """Read a ``predictions`` artifact (one-line error naming the file for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            classes = json.loads(handle.attrs["classes"])
            label_names = read_strings(handle["label_names"])
            items = read_item_table(handle, label_names)
            return Predictions(
                predicted=handle["predicted"][()],
                probabilities=handle["probabilities"][()],
                items=items,
                classes=list(classes),
                model=str(handle.attrs.get("model", "")),
                embeddings=str(handle.attrs.get("embeddings", "")),
            )
        except (KeyError, ValueError, IndexError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"damaged 'predictions' artifact ({exc})") from exc


__all__ = ["KIND", "Predictions", "load_predictions", "write_predictions"]
