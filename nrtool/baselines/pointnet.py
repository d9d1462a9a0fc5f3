"""PointNet on point clouds reconstructed from INRs: the side-by-side baseline (thesis Sec. 5.5.3).

Instead of classifying an INR's weights through an embedding, this baseline reconstructs each
INR's own shape (udf -> projected points, sdf -> marching-cubes mesh, then surface samples,
occ -> centres of the occupied voxels) in the normalised frame, and classifies the resulting
``(P, 3)`` cloud with a PointNet without T-Nets:

    shared per-point MLP 3 -> 64 -> 64 -> 64 -> 128 -> 1024 (1x1 conv + BN + ReLU each),
    max-pool over points, then 1024 -> 512 -> 256 -> C (BN + ReLU, dropout 0.3 before the last).

Training draws a fresh random subset of ``points`` of each shape's cached pool every epoch and
adds small Gaussian jitter (augmentation); the model kept is the one with the best validation
accuracy on a seeded, stratified split carved from the train items (as for the embedding
classifier, :func:`nrtool.heads.classifier.train_val_split`).

Checkpoint (``torch.save``, loaded with ``torch.load(weights_only=True)``; plain types only)::

    {"format": "nrtool-pointnet", "version": 1, "config": {...}, "classes": [str, ...],
     "field": "sdf", "state_dict": {name: tensor}, "history": {...}, "inrs": {...}}

Presets. ``paper`` is the thesis/PointNet setting (widths above, Adam lr 1e-3, batch 32,
200 epochs, marching cubes at 128^3, voxels at 64^3). ``tiny`` (32/32/64/128/256, head 128/64,
40 epochs, 512 points, 32^3 grids) keeps tests fast on a CPU; ``small`` sits between.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.baselines.config import PRESETS, PointNetConfig
from nrtool.errors import InputFileError, NrtoolError
from nrtool.geometry.ground_truth import item_seed
from nrtool.heads.training import (
    ClassificationValidation,
    steps_per_epoch,
    supervised_epoch,
)
from nrtool.inr.reconstruction import field_function
from nrtool.io.naming import source_group, train_val_split
from nrtool.nn import linear_bn_relu, recalibrate_batchnorm
from nrtool.progress import Progress, SilentProgress
from nrtool.training import TrainingRun, TrainReport

if TYPE_CHECKING:
    from nrtool.artifacts.inrs import InrItem

CHECKPOINT_FORMAT = "nrtool-pointnet"
CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------- model


class PointNet(nn.Module):
    """(B, P, 3) clouds -> (B, C) logits; PointNet without T-Nets.

    Per point: [Conv1d(k=1) -> BN -> ReLU] for each of ``widths``; max over points; then
    [Linear -> BN -> ReLU] for each of ``head``, dropout, Linear to C.
    """

    def __init__(
        self, num_classes: int, widths: Sequence[int] = (64, 64, 64, 128, 1024),
        head: Sequence[int] = (512, 256), dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for w in widths:
            layers += [nn.Conv1d(width, w, 1), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            width = w
        self.features = nn.Sequential(*layers)
        head_layers = linear_bn_relu(width, head)
        width = head[-1] if head else width
        self.classifier = nn.Sequential(*head_layers, nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, 3) -> (B, C) logits."""
        per_point = self.features(points.transpose(1, 2))  # (B, F, P)
        return self.classifier(per_point.amax(dim=2))


# ---------------------------------------------------------------- clouds from INRs


def cloud_from_field(
    field_name: str, field_fn: Any, n_points: int, resolution: int, device: Any, seed: int = 0
) -> np.ndarray | None:
    """(n_points, 3) float32 points of one INR's reconstruction (normalised frame); None if empty.

    udf: points projected onto the zero set; sdf: uniform samples of the mesh marching cubes
    extracts on a ``resolution^3`` grid; occ: centres of the occupied voxels of a
    ``resolution^3`` grid. Too few distinct points are drawn with replacement.
    """
    from nrtool.inr.reconstruction import (
        Reconstruction,
        ReconstructionSettings,
        discretise,
    )

    rng = np.random.default_rng(seed)
    settings = ReconstructionSettings(resolution=resolution, points=n_points, voxel_resolution=resolution)
    recon: Reconstruction = discretise(field_name, field_fn, settings, device, seed=seed)
    if recon.size == 0:
        return None
    if recon.voxels is not None:
        pool = recon.voxel_centres()
    else:
        pool = recon.points if recon.points is not None else recon.surface_points(n_points, seed=seed)
    pool = np.asarray(pool, dtype=np.float32)
    index = rng.choice(len(pool), n_points, replace=len(pool) < n_points)
    return pool[index]


def points_from_inrs(
    inrs_path: str | os.PathLike[str],
    n_points: int,
    resolution: int | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    splits: Sequence[str] = (),
) -> tuple[np.ndarray, list[InrItem]]:
    """Reconstruct every (selected) INR once: ``(points (N_items, n_points, 3) float32, items)``.

    ``resolution``: grid of marching cubes (sdf) or voxels (occ); None -> :func:`grid_resolution`
    of the ``paper`` preset. ``splits`` keeps only items of those splits (all when empty). A shape
    with an empty reconstruction gets all-zero points (see :func:`empty_items`).
    """
    from nrtool.artifacts.inrs import load_inrs

    progress = progress or SilentProgress()
    device = torch.device(device)
    header, items = load_inrs(inrs_path)
    resolution = resolution or grid_resolution(PRESETS["paper"], header.field)
    if splits:
        items = [item for item in items if item.split in splits]
    points = np.zeros((len(items), n_points, 3), dtype=np.float32)
    with progress.task(f"points from {header.field} INRs", len(items), "shapes") as advance:
        for i, item in enumerate(items):
            cloud = cloud_from_field(header.field, field_function(header, item.params, device), n_points, resolution, device,
                                     seed=item_seed(0, item.name))
            if cloud is not None:
                points[i] = cloud
            advance()
    return points, items


def grid_resolution(config: PointNetConfig, field_name: str) -> int:
    """The reconstruction grid a config uses for a field (voxels for occ, marching cubes else)."""
    return config.voxel_resolution if field_name == "occ" else config.resolution


def empty_items(points: np.ndarray) -> np.ndarray:
    """(N,) bool: shapes whose reconstruction was empty (all-zero clouds)."""
    return ~np.asarray(points).reshape(len(points), -1).any(axis=1)


# ---------------------------------------------------------------- training


#: Most training shapes used to re-estimate BatchNorm statistics after each epoch.
BN_SHAPES = 1024


class PointNetTrainer(ClassificationValidation):
    """One epoch of PointNet on cached clouds, for :func:`nrtool.training.run_training`.

    Each epoch every shape contributes ``min(config.points, Q)`` of its Q points, drawn afresh,
    plus Gaussian jitter of std ``config.jitter``; after the epoch the BatchNorm statistics are
    re-estimated on the training shapes (:func:`nrtool.nn.recalibrate_batchnorm`): with few
    steps per epoch, eval-mode predictions otherwise collapse to one class.
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray, config: PointNetConfig, device: torch.device,
                 splits: Sequence[str | None], groups: Sequence[str] | None, num_classes: int) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.train_idx, val_idx = train_val_split(labels, splits, config.val_fraction, config.seed, groups)
        if len(labels) and labels.max() >= num_classes:
            raise NrtoolError(f"label {int(labels.max())} is out of range for {num_classes} classes")
        if len(np.unique(labels[labels >= 0])) < 2:
            raise NrtoolError("a PointNet needs at least 2 classes among the labelled items")
        if len(self.train_idx) < 2:
            raise NrtoolError(f"only {len(self.train_idx)} labelled training item(s) (split 'train' or unset); need at least 2")
        torch.manual_seed(config.seed)
        self.config, self.device = config, device
        self.cloud = torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)
        self.y = torch.as_tensor(labels, device=device)
        self.per_shape = min(config.points, self.cloud.shape[1])
        self.x_val = self.cloud[val_idx, : self.per_shape]  # fixed validation clouds (the pool is already random)
        self.y_val = self.y[val_idx]
        self.model = PointNet(num_classes, config.widths, config.head, config.dropout).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.epochs)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None
        self.steps_per_epoch = steps_per_epoch(len(self.train_idx), config.batch)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        train_idx = torch.as_tensor(self.train_idx, device=self.device)

        def loss_of(index: torch.Tensor) -> torch.Tensor:
            shapes = train_idx[index]
            # A random subset of each shape's pool, plus jitter: augmentation.
            pick = torch.rand(len(shapes), self.cloud.shape[1], generator=self.generator).argsort(1)[:, : self.per_shape]
            batch = self.cloud[shapes[:, None], pick.to(self.device)]
            if self.config.jitter:
                batch = batch + self.config.jitter * torch.randn(batch.shape, generator=self.generator).to(self.device)
            return torch.nn.functional.cross_entropy(self.model(batch), self.y[shapes])

        record = supervised_epoch(len(self.train_idx), self.config.batch, self.generator, self.device, loss_of,
                                  self.optimizer, None, advance)
        self.scheduler.step()
        clouds = self.cloud[train_idx[:BN_SHAPES], : self.per_shape]

        def passes() -> None:
            for chunk in clouds.split(max(self.config.batch, 2)):
                if len(chunk) > 1:
                    self.model(chunk)

        recalibrate_batchnorm(self.model, passes)
        return record


def train_pointnet(
    points: np.ndarray,
    labels: np.ndarray,
    config: PointNetConfig,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    splits: Sequence[str | None] | None = None,
    groups: Sequence[str] | None = None,
    num_classes: int | None = None,
    out: str | os.PathLike[str] | None = None,
    fingerprint: dict[str, Any] | None = None,
    restart: bool = False,
) -> TrainingRun:
    """Train a :class:`PointNet` on ``points`` (N, Q, 3) with class indices ``labels`` (N,).

    ``splits`` (default: all 'train') decides which items train and validate, and ``groups``
    which stay together (:func:`nrtool.io.naming.train_val_split`). ``num_classes`` is the
    length of the class list the labels index (the artifact's ``classes``); by default the
    largest label + 1, which is too few when the last classes have no usable item -- and the
    checkpoint, saved with the full class list, would not load. With ``out`` the run resumes
    from ``OUT.partial`` (``fingerprint`` identifies it).
    """
    from nrtool.training import run_training

    labels = np.asarray(labels, dtype=np.int64)
    splits = list(splits) if splits is not None else ["train"] * len(labels)
    num_classes = num_classes if num_classes is not None else (int(labels.max()) + 1 if len(labels) else 0)
    trainer = PointNetTrainer(points, labels, config, torch.device(device), splits, groups, num_classes)
    return run_training(trainer, out, "pointnet", fingerprint or {}, config, progress, restart, "training PointNet")


# ---------------------------------------------------------------- checkpoints


@dataclass
class PointNetClassifier:
    """A loaded checkpoint: the model (in eval mode) and what it was trained on."""

    model: nn.Module
    config: PointNetConfig
    classes: list[str]
    field: str
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    path: str = ""


def save_pointnet(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    config: PointNetConfig,
    classes: Sequence[str],
    field_name: str,
    history: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (plain types + tensors only: loads with weights_only=True)."""
    from nrtool.heads.checkpoints import save_head

    save_head(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, config, classes, {"field": str(field_name)}, state_dict,
              history, extra)


def load_pointnet(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> PointNetClassifier:
    """Load a checkpoint written by :func:`save_pointnet` (one-line error naming the file)."""
    from nrtool.heads.checkpoints import load_head

    def build(config: PointNetConfig, classes: list[str], field: str) -> nn.Module:
        return PointNet(len(classes), config.widths, config.head, config.dropout)

    model, config, classes, fields, history = load_head(
        path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "PointNet", "nrtool train pointnet", PointNetConfig,
        {"field": str}, build, device,
    )
    return PointNetClassifier(model, config, classes, fields["field"], history, str(path))


def classify_points(
    classifier: PointNetClassifier, points: np.ndarray, device: torch.device | str = "cpu", batch: int = 64
) -> np.ndarray:
    """(N, P, 3) clouds -> (N, C) float32 class probabilities (eval mode: BN uses running stats)."""
    from nrtool.heads.report import softmax_in_batches

    return softmax_in_batches(classifier.model, points, device, batch)


# ---------------------------------------------------------------- file-level stages


@holds_output_lock("out")
def train_pointnet_file(
    inrs_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: PointNetConfig,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
    restart: bool = False,
) -> TrainReport:
    """Reconstruct the non-test INRs, train, write the checkpoint (+ curves PNG).

    An interrupted run resumes from ``OUT.partial`` (the reconstruction is redone: it is
    deterministic, seeded by item name).
    """
    from nrtool.artifacts.core import provenance, sha256_file
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.figures import training_curves
    from nrtool.heads.checkpoints import curves_path
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    header, all_items = load_inrs(inrs_path)  # fails early, naming the file, on a wrong kind
    trainable = sorted({i.split or "" for i in all_items} - {"test"})
    classes = sorted({i.class_name for i in all_items if i.class_name and i.split != "test"})
    if len(classes) < 2:
        raise InputFileError(inrs_path, f"needs labelled non-test INRs of at least 2 classes to train a PointNet, has {len(classes)}")
    started = time.perf_counter()
    points, items = points_from_inrs(
        inrs_path, config.points * config.pool, grid_resolution(config, header.field), torch_device, progress, splits=trainable
    )
    reconstruct_seconds = time.perf_counter() - started
    labels = np.array([classes.index(i.class_name) if i.class_name else -1 for i in items], dtype=np.int64)
    empty = empty_items(points)
    labels[empty] = -1  # nothing to learn from a shape that reconstructs to nothing
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    trainer = PointNetTrainer(points, labels, config, torch_device, [i.split for i in items],
                              [source_group(i.name) for i in items], len(classes))
    run = run_training(trainer, out, "pointnet", {"config": settings, "inrs": sha256_file(inrs_path)}, config,
                       progress, restart, "training PointNet")
    extra = {"inrs": {"inputs": provenance([inrs_path]), "architecture": header.spec.to_dict()}}
    save_pointnet(out, run.best_state, config, classes, header.field, run.history, extra)
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: PointNet {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, classes=classes, field=header.field, config=config.to_dict(),
                      device=str(torch_device), train_items=len(trainer.train_idx), val_items=len(trainer.y_val),
                      empty_reconstructions=[items[i].name for i in np.flatnonzero(empty)],
                      reconstruct_seconds=reconstruct_seconds)


def classify_points_file(
    inrs_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    splits: Sequence[str] = (),
    device: str = "auto",
    plot: str | os.PathLike[str] | None | bool = True,
    command: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Reconstruct and classify every (selected) INR into a ``predictions`` artifact.

    The report is :func:`~nrtool.heads.classifier.classification_report`'s plus ``seconds_per_inr``:
    wall time to reconstruct one INR's points and classify them (thesis Tab. C.5).
    """
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.device import resolve_device
    from nrtool.heads.report import write_and_report

    torch_device = resolve_device(device)
    classifier = load_pointnet(model_path, torch_device)
    header, items_all = load_inrs(inrs_path)
    if header.field != classifier.field:
        raise InputFileError(
            model_path, f"PointNet was trained on {classifier.field} INRs, but {inrs_path} holds {header.field} ones"
        )
    progress = progress or SilentProgress()
    chosen = [item for item in items_all if not splits or item.split in splits]
    if not chosen:
        raise InputFileError(inrs_path, f"no items with split {' or '.join(splits)}")
    config = classifier.config
    probabilities = np.zeros((len(chosen), len(classifier.classes)), dtype=np.float32)
    empty: list[str] = []
    started = time.perf_counter()
    with progress.task(f"classifying {header.field} INRs", len(chosen), "shapes") as advance:
        for i, item in enumerate(chosen):
            # Per item, reconstruction + classification: what one INR costs (Tab. C.5).
            cloud = cloud_from_field(header.field, field_function(header, item.params, torch_device), config.points,
                                     grid_resolution(config, header.field), torch_device, seed=item_seed(0, item.name))
            if cloud is None:  # no surface: classified as an all-zero cloud, and reported
                empty.append(item.name)
                cloud = np.zeros((config.points, 3), np.float32)
            probabilities[i] = classify_points(classifier, cloud[None], torch_device)[0]
            advance()
    if torch_device.type == "cuda":
        torch.cuda.synchronize(torch_device)
    seconds = time.perf_counter() - started
    return {
        **write_and_report(probabilities, chosen, classifier.classes, model_path, inrs_path, out, plot, command),
        "points": config.points,
        "device": str(torch_device),
        "seconds": seconds,
        "seconds_per_inr": seconds / len(chosen),
        "empty_reconstructions": empty,
    }
