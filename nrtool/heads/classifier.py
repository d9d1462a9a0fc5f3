"""A shape classifier on embeddings (inr2vec thesis, App. C.5 / Sec. 5.5.2).

The network is an MLP ``D -> 512 -> 256 -> C`` with BatchNorm + ReLU after each hidden layer,
trained with AdamW (weight decay 1e-2) under a one-cycle schedule, cross-entropy, batches of 256;
the model kept is the one with the best validation accuracy (:mod:`nrtool.heads.training`).

Checkpoint (:mod:`nrtool.heads.checkpoints`)::

    {"format": "nrtool-classifier", "version": 2, "config": {...}, "classes": [str, ...],
     "dim": D, "state_dict": {name: tensor}, "history": [{epoch, ...}], "embeddings": {...}}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.heads.checkpoints import curves_path, load_head, save_head
from nrtool.heads.config import ClassifierConfig
from nrtool.heads.report import softmax_in_batches, write_and_report
from nrtool.heads.training import (
    ClassificationValidation,
    steps_per_epoch,
    supervised_epoch,
)
from nrtool.io.naming import source_group, train_val_split
from nrtool.nn import linear_bn_relu
from nrtool.progress import Progress
from nrtool.training import TrainReport

if TYPE_CHECKING:
    from nrtool.artifacts.embeddings import Embeddings

CHECKPOINT_FORMAT = "nrtool-classifier"
CHECKPOINT_VERSION = 2  # 2: history as one record per epoch


class EmbeddingClassifier(nn.Module):
    """MLP on (B, D) embeddings -> (B, C) logits: [Linear -> BN -> ReLU] per hidden size -> Linear.

    The thesis network is ``hidden=(512, 256)``.
    """

    def __init__(self, dim: int, num_classes: int, hidden: Sequence[int] = (512, 256)) -> None:
        super().__init__()
        width = hidden[-1] if hidden else dim
        self.net = nn.Sequential(*linear_bn_relu(dim, hidden), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, C) logits."""
        return self.net(x)


class ClassifierTrainer(ClassificationValidation):
    """One epoch of the classifier on embeddings, for :func:`nrtool.training.run_training`."""

    def __init__(self, embeddings: "Embeddings", config: ClassifierConfig, device: torch.device) -> None:
        labels = embeddings.labels()
        train_idx, val_idx = train_val_split(labels, embeddings.splits(), config.val_fraction, config.seed,
                                             groups=[source_group(item.name) for item in embeddings.items])
        if len(embeddings.classes) < 2:
            raise NrtoolError(f"a classifier needs at least 2 classes among the labelled items, found {len(embeddings.classes)}")
        if len(train_idx) < 2:
            raise NrtoolError(f"only {len(train_idx)} labelled training item(s) (split 'train' or unset); need at least 2")
        torch.manual_seed(config.seed)
        x = torch.as_tensor(np.asarray(embeddings.vectors, dtype=np.float32), device=device)
        y = torch.as_tensor(labels, device=device)
        self.x_train, self.y_train = x[train_idx], y[train_idx]
        self.x_val, self.y_val = x[val_idx], y[val_idx]
        self.config, self.device = config, device
        self.model = EmbeddingClassifier(x.shape[1], len(embeddings.classes), config.hidden).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = steps_per_epoch(len(train_idx), config.batch)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        def loss_of(index: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(self.model(self.x_train[index]), self.y_train[index])

        return supervised_epoch(len(self.y_train), self.config.batch, self.generator, self.device, loss_of,
                                self.optimizer, self.scheduler, advance)


@dataclass
class Classifier:
    """A loaded checkpoint: the model (in eval mode) and what it was trained on."""

    model: nn.Module
    config: ClassifierConfig
    classes: list[str]
    dim: int
    history: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""


def save_classifier(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    config: ClassifierConfig,
    classes: Sequence[str],
    dim: int,
    history: list[dict[str, Any]],
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


@holds_output_lock("out")
def train_classifier_file(
    embeddings_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: ClassifierConfig,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
    restart: bool = False,
) -> TrainReport:
    """Train on an ``embeddings`` artifact and write the checkpoint (+ curves PNG).

    An interrupted run resumes from ``OUT.partial`` (:mod:`nrtool.training`).
    """
    from nrtool.artifacts.core import provenance, sha256_file
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.figures import training_curves
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    embeddings = load_embeddings(embeddings_path)
    if len(embeddings.classes) < 2:
        raise InputFileError(embeddings_path, f"needs labels of at least 2 classes to train a classifier, has {len(embeddings.classes)}")
    trainer = ClassifierTrainer(embeddings, config, torch_device)
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    run = run_training(trainer, out, "classifier", {"config": settings, "embeddings": sha256_file(embeddings_path)},
                       config, progress, restart, "training classifier")
    extra = {"embeddings": {"inputs": provenance([embeddings_path]), "encoder": embeddings.encoder,
                            "field": embeddings.field}}
    dim = int(embeddings.vectors.shape[1])
    save_classifier(out, run.best_state, config, embeddings.classes, dim, run.history, extra)
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: classifier {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, classes=embeddings.classes, dim=dim, config=config.to_dict(),
                      device=str(torch_device), train_items=len(trainer.y_train), val_items=len(trainer.y_val))


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
