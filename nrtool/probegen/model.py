"""The ProbeGen encoder: an INR is read at learned query points, and an MLP maps what it reads to
an embedding (after Kahana et al., "Deep Linear Probe Generators for Weight Space Learning").

Why beside inr2vec (issue 14, README): from one shared initialisation, the class information
of PSB INRs is in *which* weight holds *which* value (a linear probe of the raw weights reaches
0.79), but inr2vec's encoder is a function of the *set* of weight rows and its decoder objective
collapses the embedding at this scale (0.31). Probing sidesteps both: the INR's field at a fixed
set of points does not depend on how its neurons are ordered or initialised, and the encoder is
trained on what users ask of it, the class labels (as the weight-space literature trains its
encoders), so the embedding serves classification and L2 retrieval alike.

The model, for K probes and an INR with flat parameters theta:

    probes  = G(codes)            codes (K, code_dim) learned; G a stack of Linear layers without
                                  activations (a deep *linear* generator: one linear map, but
                                  over-parameterised, which regularises where the probes go)
    values  = INR_theta(probes)   (K,) the INR's raw outputs (logits), batched over INRs
    emb     = MLP(values)         BN -> Linear(K, hidden) -> BN -> ReLU -> Dropout -> Linear(hidden, D)
    logits  = Linear(Dropout(ReLU(emb)))   the training head (C classes)

Training reads every INR at probes stretched per axis by a random factor in [1 - s, 1 + s] plus
Gaussian jitter -- a fresh anisotropically scaled copy of its shape each step, the augmentation
inr2vec gets from fitting scaled copies, here for free. Only the field's type and the INR's
architecture matter, not its initialisation: a ProbeGen encoder reads INRs of any architecture
that represent the same field.

Checkpoint (:mod:`nrtool.heads.checkpoints`)::

    {"format": "nrtool-probegen", "version": 1, "config": {...}, "classes": [str, ...],
     "field": "sdf", "state_dict": {...}, "history": [...], "inrs": {...}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.heads.training import (
    ClassificationValidation,
    steps_per_epoch,
    supervised_epoch,
)
from nrtool.inr.siren import SirenSpec, batched_forward
from nrtool.io.naming import source_group, train_val_split
from nrtool.nn import linear_bn_relu
from nrtool.probegen.config import ProbeGenConfig
from nrtool.progress import Progress
from nrtool.training import TrainReport

CHECKPOINT_FORMAT = "nrtool-probegen"
CHECKPOINT_VERSION = 1


def random_rotations(count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 3, 3) rotation matrices, uniform on SO(3) (normalised Gaussian quaternions)."""
    w, x, y, z = torch.nn.functional.normalize(torch.randn(count, 4, generator=generator), dim=1).unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).reshape(count, 3, 3)


class ProbeGenEncoder(nn.Module):
    """Flat INR parameters (B, P) of architecture ``spec`` -> embeddings (B, D) (:meth:`embed`),
    and the training head's logits (B, C) (``forward``). The architecture is an argument, not part
    of the model: the probes are points in space, so one encoder reads INRs of any SIREN size."""

    def __init__(self, config: ProbeGenConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.codes = nn.Parameter(torch.randn(config.probes, config.code_dim))
        widths = (config.code_dim, *config.generator, 3)
        self.generator = nn.Sequential(*(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])))
        self.features = nn.Sequential(nn.BatchNorm1d(config.probes), *linear_bn_relu(config.probes, (config.hidden,)),
                                      nn.Dropout(config.dropout), nn.Linear(config.hidden, config.embedding_dim))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.embedding_dim, num_classes))

    def probes(self) -> torch.Tensor:
        """(K, 3) query points, normalised frame."""
        return self.generator(self.codes)

    def embed(self, params: torch.Tensor, spec: SirenSpec, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, P) -> (B, D). With ``generator`` (training), the probes are stretched and jittered."""
        points = self.probes().unsqueeze(0).expand(params.shape[0], -1, -1)
        if generator is not None:
            batch = params.shape[0]
            stretch = 1 + self.config.stretch * (2 * torch.rand(batch, 1, 3, generator=generator) - 1)
            noise = self.config.jitter * torch.randn(points.shape, generator=generator)
            points = points * stretch.to(points.device) + noise.to(points.device)
            if self.config.rotate:
                points = points @ random_rotations(batch, generator).to(points.device)
        return self.features(batched_forward(params, points, spec))

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(embeddings)

    def forward(self, params: torch.Tensor, spec: SirenSpec) -> torch.Tensor:
        return self.classify(self.embed(params, spec))


class ProbeGenTrainer(ClassificationValidation):
    """One epoch of ProbeGen on INR parameters, for :func:`nrtool.training.run_training`."""

    def __init__(self, params: np.ndarray, spec: SirenSpec, labels: np.ndarray, splits: list[str | None],
                 groups: list[str], num_classes: int, config: ProbeGenConfig, device: torch.device) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.train_idx, val_idx = train_val_split(labels, splits, config.val_fraction, config.seed, groups)
        if len(self.train_idx) < 2:
            raise NrtoolError(f"only {len(self.train_idx)} labelled training INR(s) (split 'train' or unset); need at least 2")
        torch.manual_seed(config.seed)
        self.config, self.device, self.spec = config, device, spec
        x = torch.as_tensor(np.asarray(params, dtype=np.float32), device=device)
        y = torch.as_tensor(labels, device=device)
        self.x_train, self.y_train = x[self.train_idx], y[self.train_idx]
        self.x_val, self.y_val = x[val_idx], y[val_idx]
        self.model = ProbeGenEncoder(config, num_classes).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = steps_per_epoch(len(self.train_idx), config.batch)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=self.steps_per_epoch, pct_start=0.1)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.spec)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        self.model.train()

        def loss_of(index: torch.Tensor) -> torch.Tensor:
            logits = self.model.classify(self.model.embed(self.x_train[index], self.spec, self.generator))
            return torch.nn.functional.cross_entropy(logits, self.y_train[index],
                                                     label_smoothing=self.config.label_smoothing)

        return supervised_epoch(len(self.y_train), self.config.batch, self.generator, self.device, loss_of,
                                self.optimizer, self.scheduler, advance)


@dataclass
class ProbeGen:
    """A loaded checkpoint: the encoder (in eval mode) and what it was trained on."""

    model: ProbeGenEncoder
    config: ProbeGenConfig
    classes: list[str]
    field: str
    history: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""


def load_probegen(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> ProbeGen:
    """Load a checkpoint written by :func:`train_probegen_file` (one-line error naming the file)."""
    from nrtool.heads.checkpoints import load_head

    def build(config: ProbeGenConfig, classes: list[str], field: str) -> nn.Module:
        return ProbeGenEncoder(config, len(classes))

    model, config, classes, fields, history = load_head(
        path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "ProbeGen encoder", "nrtool train probegen", ProbeGenConfig,
        {"field": str}, build, device)
    return ProbeGen(model, config, classes, fields["field"], history, str(path))  # type: ignore[arg-type]


def probegen_vectors(encoder: ProbeGen, params: np.ndarray, spec: SirenSpec, device: torch.device) -> np.ndarray:
    """(B, P) INR parameters of architecture ``spec`` -> (B, D) float32 embeddings (eval mode);
    the caller batches (:func:`nrtool.inr2vec.encode.probegen_embeddings`)."""
    with torch.no_grad():
        chunk = torch.as_tensor(np.asarray(params, dtype=np.float32), device=device)
        return encoder.model.embed(chunk, spec).cpu().numpy()


@holds_output_lock("out")
def train_probegen_file(
    inrs_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: ProbeGenConfig,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
    restart: bool = False,
) -> TrainReport:
    """Train on the labelled non-test INRs of ``inrs_path``; write the checkpoint (+ curves PNG).

    Validation: the ``val`` items, else a stratified share (``val_fraction``) of the train items,
    an INR and its augmented copies on one side. An interrupted run resumes from ``OUT.partial``.
    """
    from nrtool.artifacts.core import provenance, sha256_file
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.figures import training_curves
    from nrtool.heads.checkpoints import curves_path, save_head
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    header, all_items = load_inrs(inrs_path)
    items = [item for item in all_items if item.split != "test"]
    classes = sorted({item.class_name for item in items if item.class_name})
    if len(classes) < 2:
        raise InputFileError(inrs_path, f"needs labelled non-test INRs of at least 2 classes to train ProbeGen, has {len(classes)}")
    labels = np.array([classes.index(item.class_name) if item.class_name else -1 for item in items], dtype=np.int64)
    params = np.stack([item.params for item in items])
    trainer = ProbeGenTrainer(params, header.spec, labels, [item.split for item in items],
                              [source_group(item.name) for item in items], len(classes), config, torch_device)
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    run = run_training(trainer, out, "probegen", {"config": settings, "inrs": sha256_file(inrs_path)}, config,
                       progress, restart, "training ProbeGen")
    extra = {"inrs": {"inputs": provenance([inrs_path]), "architecture": header.spec.to_dict()}}
    save_head(out, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, config, classes, {"field": header.field}, run.best_state,
              run.history, extra)
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: ProbeGen {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, classes=classes, field=header.field, config=config.to_dict(),
                      device=str(torch_device), train_items=len(trainer.train_idx), val_items=len(trainer.y_val))
