"""A shape classifier on embeddings (inr2vec thesis, App. C.5 / Sec. 5.5.2).

The network is an MLP ``D -> 512 -> 256 -> C`` with BatchNorm + ReLU after each hidden layer,
trained with AdamW (weight decay 1e-2) under a one-cycle schedule, cross-entropy, batches of 256;
the model kept is the one with the best validation accuracy.

Checkpoint (``torch.save``, loaded with ``torch.load(weights_only=True)``; plain types only)::

    {"format": "nrtool-classifier", "version": 1, "config": {...}, "classes": [str, ...],
     "dim": D, "state_dict": {name: tensor}, "history": {...}, "embeddings": {...}}

Presets. ``paper`` is the thesis setting (hidden 512/256, max lr 1e-4, 150 epochs). With max lr
1e-4 a small dataset needs hundreds of epochs to move, so the CPU presets use a larger max lr:
``tiny`` (128/64, 1e-2, 60 epochs) and ``small`` (256/128, 3e-3, 100 epochs). Measured on 3
separated 32-d Gaussian classes (60 train items), see ``tests/test_heads.py`` and the report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.geometry.augment import source_group
from nrtool.progress import Progress, SilentProgress

if TYPE_CHECKING:
    from nrtool.artifacts.embeddings import Embeddings

CHECKPOINT_FORMAT = "nrtool-classifier"
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines a trained classifier."""

    preset: str
    hidden: tuple[int, ...] = (512, 256)
    epochs: int = 150
    lr: float = 1e-4  # the one-cycle schedule's *maximum* learning rate
    batch: int = 256
    weight_decay: float = 1e-2
    val_fraction: float = 0.1
    seed: int = 0

    def with_overrides(self, **overrides: Any) -> ClassifierConfig:
        """A copy with the given values replaced (``None`` means keep the preset's)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise NrtoolError(f"unknown classifier settings: {', '.join(sorted(unknown))}")
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        config = dataclasses.replace(self, **values)
        config.validate()
        return config

    def validate(self) -> None:
        checks = {
            "hidden": len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
            "epochs": self.epochs >= 1,
            "lr": self.lr > 0,
            "batch": self.batch >= 2,  # BatchNorm cannot train on single-item batches
            "weight_decay": self.weight_decay >= 0,
            "val_fraction": 0 <= self.val_fraction < 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            detail = ", ".join(f"{name}={getattr(self, name)}" for name in bad)
            raise NrtoolError(f"impossible classifier settings: {detail}")

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples), so the checkpoint loads with weights_only=True."""
        data = dataclasses.asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["hidden"] = tuple(int(h) for h in values.get("hidden", (512, 256)))
        return cls(**values)


PRESETS: dict[str, ClassifierConfig] = {
    "paper": ClassifierConfig("paper", hidden=(512, 256), epochs=150, lr=1e-4),
    "small": ClassifierConfig("small", hidden=(256, 128), epochs=100, lr=3e-3),
    "tiny": ClassifierConfig("tiny", hidden=(128, 64), epochs=60, lr=1e-2),
}


def preset(name: str) -> ClassifierConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise NrtoolError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


# ---------------------------------------------------------------- model


class EmbeddingClassifier(nn.Module):
    """MLP on (B, D) embeddings -> (B, C) logits: [Linear -> BN -> ReLU] per hidden size -> Linear.

    The thesis network is ``hidden=(512, 256)``.
    """

    def __init__(self, dim: int, num_classes: int, hidden: Sequence[int] = (512, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) logits."""
        return self.net(x)


# ---------------------------------------------------------------- data split


def train_val_split(
    labels: np.ndarray, splits: Sequence[str | None], val_fraction: float, seed: int,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation items.

    Items marked ``val`` are the validation set when there are any. Otherwise validation is
    carved from the train items (split ``train`` or unknown), stratified and seeded: about
    ``max(1, round(val_fraction * n))`` items of each class that has at least 2 groups, so every
    class keeps training items. ``test`` and unlabelled items are never used.

    ``groups`` keeps items of one group on the same side -- augmented copies of a shape go where
    the shape goes (see :func:`nrtool.geometry.augment.source_group`); otherwise validation
    would score copies of shapes the model trained on. By default every item is its own group.
    """
    labels = np.asarray(labels)
    usable = labels >= 0
    is_val = np.array([s == "val" for s in splits]) & usable
    is_train = np.array([s in (None, "", "train") for s in splits]) & usable
    if is_val.any() or val_fraction == 0:
        return np.flatnonzero(is_train), np.flatnonzero(is_val)
    group_of = np.asarray(groups if groups is not None else [str(i) for i in range(len(labels))], dtype=object)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for cls in np.unique(labels[is_train]):
        members = np.flatnonzero(is_train & (labels == cls))
        names = list(dict.fromkeys(group_of[members].tolist()))
        names = [names[i] for i in rng.permutation(len(names))]
        target = max(1, round(val_fraction * len(members))) if len(names) >= 2 else 0
        chosen: set[str] = set()
        taken = 0
        for name in names[:-1]:  # the last group always trains
            if taken >= target:
                break
            chosen.add(name)
            taken += int(np.sum(group_of[members] == name))
        for index in members:
            (val if group_of[index] in chosen else train).append(int(index))
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


# ---------------------------------------------------------------- training


def _batches(n: int, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of index batches; a trailing 1-item batch is dropped (BatchNorm)."""

    order = torch.randperm(n, generator=generator)
    chunks = list(order.split(batch))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks


def steps_per_epoch(n: int, batch: int) -> int:
    full, rest = divmod(n, batch)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)



class BestEpoch:
    """Per-epoch bookkeeping shared by the classifiers: history, validation, best state.

    The kept epoch is the one with the best validation accuracy; small validation sets saturate
    (e.g. 1.0 from an early epoch on), so among equally accurate epochs the lowest validation
    loss wins. Without validation items the last epoch is kept.
    """

    def __init__(self, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        self.x_val, self.y_val = x_val, y_val
        self.has_val = len(y_val) > 0
        self.accuracy, self.loss, self.epoch = -1.0, float("inf"), -1
        self.state: dict[str, torch.Tensor] | None = None
        self.history: dict[str, Any] = {"train_loss": [], "val_loss": [], "val_accuracy": [], "lr": []}

    def end_epoch(self, model: nn.Module, epoch: int, train_loss: float, lr: float) -> None:
        self.history["train_loss"].append(train_loss)
        self.history["lr"].append(lr)
        accuracy, val_loss = 0.0, 0.0
        if self.has_val:
            model.eval()
            with torch.no_grad():
                logits = model(self.x_val)
                val_loss = float(torch.nn.functional.cross_entropy(logits, self.y_val))
                accuracy = float((logits.argmax(1) == self.y_val).float().mean())
            self.history["val_loss"].append(val_loss)
            self.history["val_accuracy"].append(accuracy)
        if not self.has_val or (accuracy, -val_loss) > (self.accuracy, -self.loss):
            self.accuracy, self.loss, self.epoch = accuracy, val_loss, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def result(self, train_items: int, started: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        assert self.state is not None
        self.history.update(
            best_epoch=self.epoch,
            best_val_accuracy=self.accuracy if self.has_val else None,
            train_items=train_items,
            val_items=len(self.y_val),
            seconds=time.perf_counter() - started,
        )
        return self.state, self.history


def train_classifier(
    embeddings: Embeddings,
    config: ClassifierConfig,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train an :class:`EmbeddingClassifier` on the train items of ``embeddings``.

    Returns ``(state_dict, history)``: the weights of the epoch with the best validation accuracy
    (the last epoch when there is no validation set) on the CPU, and per-epoch lists
    ``train_loss``, ``val_loss``, ``val_accuracy``, ``lr`` plus ``best_epoch`` (0-based),
    ``best_val_accuracy``, ``train_items``, ``val_items``, ``seconds``.
    """
    import torch.nn.functional as F

    progress = progress or SilentProgress()
    device = torch.device(device)
    classes = embeddings.classes
    labels = embeddings.labels()
    train_idx, val_idx = train_val_split(labels, embeddings.splits(), config.val_fraction, config.seed,
                                         groups=[source_group(item.name) for item in embeddings.items])
    if len(classes) < 2:
        raise NrtoolError(f"a classifier needs at least 2 classes among the labelled items, found {len(classes)}")
    if len(train_idx) < 2:
        raise NrtoolError(f"only {len(train_idx)} labelled training item(s) (split 'train' or unset); need at least 2")

    torch.manual_seed(config.seed)
    x = torch.as_tensor(np.asarray(embeddings.vectors, dtype=np.float32), device=device)
    y = torch.as_tensor(labels, device=device)
    x_train, y_train = x[train_idx], y[train_idx]
    x_val, y_val = x[val_idx], y[val_idx]
    model = EmbeddingClassifier(x.shape[1], len(classes), config.hidden).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = steps_per_epoch(len(train_idx), config.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=per_epoch
    )
    generator = torch.Generator().manual_seed(config.seed)

    tracker = BestEpoch(x_val, y_val)
    started = time.perf_counter()
    with progress.task("training classifier", total=config.epochs, unit="epochs") as advance:
        for epoch in range(config.epochs):
            model.train()
            total, seen = 0.0, 0
            for index in _batches(len(train_idx), config.batch, generator):
                index = index.to(device)
                loss = F.cross_entropy(model(x_train[index]), y_train[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.item() * len(index)
                seen += len(index)
            tracker.end_epoch(model, epoch, total / max(seen, 1), float(optimizer.param_groups[0]["lr"]))
            advance()
    return tracker.result(len(train_idx), started)


# ---------------------------------------------------------------- checkpoints


def save_head(
    path: str | os.PathLike[str],
    fmt: str,
    version: int,
    config: Any,
    classes: Sequence[str],
    fields: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    history: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a classification head's checkpoint atomically (plain types + tensors only: loads with
    weights_only=True): ``{format, version, config, classes, **fields, state_dict, history, **extra}``.

    ``fields`` are what the model needs besides its config and classes (the classifier's input
    ``dim``, PointNet's INR ``field``); ``extra`` records what it was trained on.
    """
    from nrtool.checkpoints import save_checkpoint

    save_checkpoint(path, fmt, version, {
        "config": config.to_dict(),
        "classes": list(classes),
        **fields,
        "state_dict": state_dict,
        "history": history,
        **(extra or {}),
    })


def load_head(
    path: str | os.PathLike[str],
    fmt: str,
    version: int,
    what: str,
    made_by: str,
    config_type: Any,
    fields: dict[str, Callable[[Any], Any]],
    build: Callable[..., nn.Module],
    device: torch.device | str,
) -> tuple[nn.Module, Any, list[str], dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_head`: ``(model, config, classes, fields, history)``.

    ``fields`` maps each further key the model needs to its type (``{"dim": int}``);
    ``build(config, classes, **fields)`` makes the untrained model, which gets the stored weights
    and is returned in eval mode on ``device``. ``what`` and ``made_by`` name the model and the
    command that writes it in the one-line errors, which name the file (also for contents that
    do not fit the model: a missing key, wrong tensor shapes).
    """
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, fmt, version, what, made_by)
    try:
        config = config_type.from_dict(data["config"])
        classes = [str(c) for c in data["classes"]]
        values = {key: convert(data[key]) for key, convert in fields.items()}
        model = build(config, classes, **values)
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, what, exc) from exc
    model.to(device).eval()
    return model, config, classes, values, dict(data.get("history", {}))


@dataclass
class Classifier:
    """A loaded checkpoint: the model (in eval mode) and what it was trained on."""

    model: nn.Module
    config: ClassifierConfig
    classes: list[str]
    dim: int
    history: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def save_classifier(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    config: ClassifierConfig,
    classes: Sequence[str],
    dim: int,
    history: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (plain types + tensors only: loads with weights_only=True)."""
    save_head(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, config, classes, {"dim": int(dim)}, state_dict, history, extra)


def load_classifier(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Classifier:
    """Load a checkpoint written by :func:`save_classifier` (one-line error naming the file)."""

    def build(config: ClassifierConfig, classes: list[str], dim: int) -> nn.Module:
        return EmbeddingClassifier(dim, len(classes), config.hidden)

    model, config, classes, fields, history = load_head(
        path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "classifier", "nrtool train classifier", ClassifierConfig,
        {"dim": int}, build, device,
    )
    return Classifier(model, config, classes, fields["dim"], history, str(path))


def predict_probabilities(
    classifier: Classifier, vectors: np.ndarray, device: torch.device | str = "cpu", batch: int = 4096
) -> np.ndarray:
    """(N, D) embeddings -> (N, C) float32 class probabilities (eval mode: BN uses running stats)."""
    return softmax_in_batches(classifier.model, vectors, device, batch)


def softmax_in_batches(model: nn.Module, inputs: np.ndarray, device: torch.device | str, batch: int) -> np.ndarray:
    """(N, ...) inputs -> (N, C) float32 class probabilities of ``model``, ``batch`` rows at a time."""
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch):
            chunk = torch.as_tensor(np.asarray(inputs[start : start + batch], dtype=np.float32), device=device)
            out.append(torch.softmax(model(chunk), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


# ---------------------------------------------------------------- evaluation


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


# ---------------------------------------------------------------- figures


def training_curves_png(history: dict[str, Any], png: str | os.PathLike[str]) -> None:
    """Loss (train, val) and validation accuracy per epoch, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.plots import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    left.plot(epochs, history["train_loss"], label="train")
    if history.get("val_loss"):
        left.plot(epochs, history["val_loss"], label="validation")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy")
    left.set_yscale("log")
    left.legend()
    if history.get("val_accuracy"):
        right.plot(epochs, history["val_accuracy"], color="tab:green")
        right.axvline(history["best_epoch"] + 1, color="grey", linestyle=":", label="kept")
        right.legend()
    else:
        right.text(0.5, 0.5, "no validation items", ha="center", transform=right.transAxes)
    right.set_xlabel("epoch")
    right.set_ylabel("validation accuracy")
    right.set_ylim(0, 1.02)
    fig.tight_layout()
    save_figure(fig, png)


def confusion_png(report: dict[str, Any], png: str | os.PathLike[str], title: str = "") -> None:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.plots import save_figure

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


# ---------------------------------------------------------------- file-level stages


def curves_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where the training-curves PNG of a checkpoint goes: ``clf.pt`` -> ``clf.curves.png``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.curves.png")


def confusion_path(predictions: str | os.PathLike[str]) -> Path:
    """Default confusion-matrix PNG of a predictions file: ``pred.h5`` -> ``pred.confusion.png``."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}.confusion.png")


@holds_output_lock("out")
def train_classifier_file(
    embeddings_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: ClassifierConfig,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Train on an ``embeddings`` artifact and write the checkpoint (+ curves PNG); a summary dict."""
    from nrtool.artifacts.core import check_output_file

    check_output_file(out, "--out")
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.device import resolve_device

    embeddings = load_embeddings(embeddings_path)
    if len(embeddings.classes) < 2:
        raise InputFileError(embeddings_path, f"needs labels of at least 2 classes to train a classifier, has {len(embeddings.classes)}")
    torch_device = resolve_device(device)
    state, history = train_classifier(embeddings, config, torch_device, progress)
    extra = {
        "embeddings": {
            "inputs": provenance([embeddings_path]),
            "encoder": embeddings.encoder,
            "field": embeddings.field,
        }
    }
    save_classifier(out, state, config, embeddings.classes, embeddings.vectors.shape[1], history, extra)
    png = curves_path(out)
    if plot:
        training_curves_png(history, png)
    return {
        "out": str(out),
        "curves": str(png) if plot else None,
        "classes": embeddings.classes,
        "dim": int(embeddings.vectors.shape[1]),
        "config": config.to_dict(),
        "device": str(torch_device),
        "train_items": history["train_items"],
        "val_items": history["val_items"],
        "best_epoch": history["best_epoch"] + 1,
        "best_val_accuracy": history["best_val_accuracy"],
        "final_train_loss": history["train_loss"][-1],
        "seconds": history["seconds"],
    }


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


def classify_file(
    embeddings_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    splits: Sequence[str] = (),
    device: str = "auto",
    plot: str | os.PathLike[str] | None | bool = True,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Predict every (selected) item and write a ``predictions`` artifact; evaluation if labelled.

    ``plot``: True for the default PNG beside ``out``, a path, or False/None for none. The PNG is
    written only when some items have labels the model knows.
    """
    from nrtool.artifacts.embeddings import load_embeddings, select
    from nrtool.device import resolve_device

    torch_device = resolve_device(device)
    classifier = load_classifier(model_path, torch_device)
    embeddings = load_embeddings(embeddings_path)
    dim = embeddings.vectors.shape[1]
    if dim != classifier.dim:
        raise InputFileError(
            model_path, f"classifier was trained on {classifier.dim}-d embeddings, but {embeddings_path} holds {dim}-d ones"
        )
    chosen = select(embeddings, list(splits))
    if not chosen.items:
        raise InputFileError(embeddings_path, f"no items with split {' or '.join(splits)}")
    probabilities = predict_probabilities(classifier, chosen.vectors, torch_device)
    return write_and_report(probabilities, chosen.items, classifier.classes, model_path, embeddings_path, out, plot,
                            command)
