"""Predictions of any classifier: probabilities in batches, the ``predictions`` artifact, the
evaluation (accuracy, per-class accuracy, confusion matrix) and its picture."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def softmax_in_batches(model: nn.Module, inputs: np.ndarray, device: torch.device | str, batch: int) -> np.ndarray:
    """(N, ...) inputs -> (N, C) float32 class probabilities of ``model``, ``batch`` rows at a time."""
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            chunk = torch.as_tensor(np.asarray(inputs[start : start + batch], dtype=np.float32), device=device)
            out.append(torch.softmax(model(chunk), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def classification_report(labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy and confusion matrix over items whose label is known (>= 0).

    ``confusion[i][j]`` counts items of true class ``i`` predicted as ``j``; ``per_class`` has a
    value only for classes with at least one labelled item.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    known = labels >= 0
    c = len(classes)
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels[known], predicted[known]), 1)
    rows = confusion.sum(1)
    return {
        "evaluated": int(known.sum()),
        "accuracy": float(np.trace(confusion) / known.sum()) if known.any() else None,
        "per_class": {str(name): float(confusion[i, i] / rows[i]) for i, name in enumerate(classes) if rows[i]},
        "confusion": confusion.tolist(),
        "classes": list(classes),
    }


def confusion_png(report: dict[str, Any], png: str | os.PathLike[str], title: str = "") -> None:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    confusion = np.asarray(report["confusion"])
    classes = report["classes"]
    size = max(3.5, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = confusion.max() or 1
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > top / 2 else "black")
    accuracy = report.get("accuracy")
    ax.set_title(f"{title} accuracy {accuracy:.3f}" if accuracy is not None else title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png)


def confusion_path(predictions: str | os.PathLike[str]) -> Path:
    """Default confusion-matrix PNG of a predictions file: ``pred.h5`` -> ``pred.confusion.png``."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}.confusion.png")


def write_and_report(
    probabilities: np.ndarray,
    items: Sequence[Any],
    classes: Sequence[str],
    model_path: str | os.PathLike[str],
    source_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    plot: str | os.PathLike[str] | None | bool = True,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Write the ``predictions`` artifact for (N, C) ``probabilities`` of ``items`` and evaluate it.

    Shared by every classifier (embeddings, PointNet). ``plot``: True for the default confusion
    PNG beside ``out``, a path, or False/None for none; written only when some items have labels
    the model knows. Returns ``{out, items, <report>, unseen_classes, plot}``.
    """
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.predictions import Predictions, write_predictions

    predictions = Predictions(
        predicted=probabilities.argmax(1).astype(np.int64),
        probabilities=probabilities,
        items=list(items),
        classes=list(classes),
        model=str(Path(model_path).resolve()),
        embeddings=str(Path(source_path).resolve()),
    )
    write_predictions(out, predictions, inputs=provenance([source_path, model_path]), command=command)
    report = classification_report(predictions.labels(), predictions.predicted, classes)
    unseen = sorted({i.class_name for i in items if i.class_name and i.class_name not in classes})
    png: Path | None = None
    if report["evaluated"] and plot not in (None, False):
        png = confusion_path(out) if plot is True else Path(plot)
        confusion_png(report, png, title=Path(out).name)
    return {"out": str(out), "items": len(items), **report, "unseen_classes": unseen,
            "plot": str(png) if png else None}
