"""Part segmentation from embeddings (inr2vec thesis Sec. 5.5.4, App. C.5, Fig. C.3).

A decoder reads ``[embedding (D), one-hot class (C), positional encoding of a query (63)]`` and
predicts K part logits for the query: an input layer (width 512) + ReLU, two hidden layers, the
input's projection added, two more hidden layers, K outputs. Training: cross-entropy over all
K parts at points of the shapes' original labelled clouds, AdamW (weight decay 1e-2), one-cycle
schedule, the kept epoch the one with the best validation class mIoU. At test time the argmax
runs over the shape's class's parts only (the ShapeNet-Part protocol).

The labels come from the items' source clouds (:mod:`nrtool.io.part_clouds`): an embeddings
artifact records for each item its source file and the normalisation its INR was fitted in, so
the labelled points are read back and mapped into the frame the embedding describes.

Checkpoint (:mod:`nrtool.heads.checkpoints`)::

    {"format": "nrtool-segmenter", "version": 1, "config": {...}, "classes": [str, ...], "dim": D,
     "parts": [name per part id], "class_parts": {class: [part ids]}, "majority": {class: id},
     "mean_embedding": (D,) tensor, "state_dict": ..., "history": [...], "embeddings": {...}}
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
from nrtool.heads.config import SegmenterConfig
from nrtool.heads.part_iou import miou_report, shape_iou
from nrtool.heads.training import steps_per_epoch, supervised_epoch
from nrtool.nn import positional_encoding, split_linear
from nrtool.progress import Progress, SilentProgress
from nrtool.training import TrainReport

if TYPE_CHECKING:
    from nrtool.artifacts.core import ItemInfo
    from nrtool.artifacts.embeddings import Embeddings

CHECKPOINT_FORMAT = "nrtool-segmenter"
CHECKPOINT_VERSION = 1
#: Queries per forward pass when predicting whole clouds.
PREDICT_CHUNK = 16_384


class PartSegmenter(nn.Module):
    """``(embedding (B, D), class index (B,), queries (B, M, 3)) -> part logits (B, M, K)``.

    The input layer and the skip projection both read ``[encoding, embedding, one-hot]``; the
    shape's share (embedding and class) is the same at all M queries, so it is applied once per
    shape (:func:`nrtool.nn.split_linear`).
    """

    def __init__(self, dim: int, num_classes: int, num_parts: int, hidden: int = 512, pe_frequencies: int = 10) -> None:
        super().__init__()
        self.num_classes, self.pe_frequencies = num_classes, pe_frequencies
        in_width = 3 + 6 * pe_frequencies + dim + num_classes
        self.layer_in = nn.Linear(in_width, hidden)
        self.before_skip = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.skip = nn.Linear(in_width, hidden)
        self.after_skip = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, num_parts)

    def forward(self, embedding: torch.Tensor, class_index: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        encoded = positional_encoding(queries, self.pe_frequencies)
        shape = torch.cat([embedding, nn.functional.one_hot(class_index, self.num_classes).to(embedding.dtype)], dim=1)
        hidden = self.before_skip(torch.relu(split_linear(self.layer_in, encoded, shape)))
        hidden = self.after_skip(hidden + split_linear(self.skip, encoded, shape))
        return self.out(hidden)


# --------------------------------------------------------------------------------------------
# The labelled shapes behind an embeddings artifact
# --------------------------------------------------------------------------------------------


def normalised_cloud(item: "ItemInfo") -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """An item's labelled source cloud in its INR's frame: ``(points (N, 3) f32, labels (N,), part names)``."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.io.part_clouds import load_labelled_cloud

    cloud = load_labelled_cloud(item.source)
    if item.source_sha256 and sha256_file(item.source) != item.source_sha256:
        raise InputFileError(item.source, f"changed since item {item.name!r} was made from it (its labels may no "
                                          "longer match the INR)")
    points = (cloud.points - np.asarray(item.center)) / float(item.scale)
    return points.astype(np.float32), cloud.labels, cloud.part_names


@dataclass
class PartVocabulary:
    """The classes and parts a segmenter knows, from its training clouds."""

    classes: list[str]
    parts: list[str]  # name per part id
    class_parts: dict[str, list[int]]  # the ids a class's shapes carry
    majority: dict[str, int]  # each class's most frequent part (the trivial baseline)

    @classmethod
    def from_clouds(cls, class_names: Sequence[str], labels: Sequence[np.ndarray],
                    names: list[str] | None) -> "PartVocabulary":
        classes = sorted(set(class_names))
        counts: dict[str, np.ndarray] = {}
        size = max(int(lab.max()) for lab in labels) + 1
        if names is not None:
            size = max(size, len(names))
        for name, lab in zip(class_names, labels):
            counts[name] = counts.get(name, np.zeros(size, np.int64)) + np.bincount(lab, minlength=size)
        class_parts = {c: [int(i) for i in np.flatnonzero(counts[c])] for c in classes}
        if names is None:  # name a part by its class when only one class carries it
            owners = {i: [c for c in classes if i in class_parts[c]] for i in range(size)}
            names = [f"{owners[i][0]}/{i}" if len(owners[i]) == 1 else f"part {i}" for i in range(size)]
        majority = {c: int(np.argmax(counts[c])) for c in classes}
        return cls(classes, list(names)[:size], class_parts, majority)

    def mask(self, device: torch.device) -> torch.Tensor:
        """(C, K) bool: which parts each class may be predicted as."""
        mask = torch.zeros(len(self.classes), len(self.parts), dtype=torch.bool, device=device)
        for i, name in enumerate(self.classes):
            mask[i, self.class_parts[name]] = True
        return mask


def _padded(clouds: Sequence[np.ndarray], labels: Sequence[np.ndarray], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Clouds of different sizes as ``(N, max, 3)`` points, ``(N, max)`` labels and ``(N,)`` counts."""
    size = max(len(c) for c in clouds)
    points = np.zeros((len(clouds), size, 3), np.float32)
    padded = np.zeros((len(clouds), size), np.int64)
    for i, (cloud, lab) in enumerate(zip(clouds, labels)):
        points[i, : len(cloud)], padded[i, : len(lab)] = cloud, lab
    counts = torch.as_tensor([len(c) for c in clouds], device=device)
    return torch.as_tensor(points, device=device), torch.as_tensor(padded, device=device), counts


def restricted_argmax(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Argmax over the last axis among ``allowed`` (broadcastable bool) parts only."""
    return logits.masked_fill(~allowed, float("-inf")).argmax(-1)


def predict_parts(model: PartSegmenter, vocabulary: PartVocabulary, embedding: torch.Tensor, class_name: str,
                  points: np.ndarray, device: torch.device) -> np.ndarray:
    """Part ids (N,) of one shape's points (its INR's frame), among its class's parts."""
    class_index = torch.tensor([vocabulary.classes.index(class_name)], device=device)
    allowed = vocabulary.mask(device)[class_index[0]]
    out = []
    with torch.no_grad():
        for start in range(0, len(points), PREDICT_CHUNK):
            queries = torch.as_tensor(points[start : start + PREDICT_CHUNK], device=device).unsqueeze(0)
            logits = model(embedding.reshape(1, -1).to(device), class_index, queries)[0]
            out.append(restricted_argmax(logits, allowed).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class SegmenterTrainer:
    """Epochs of the segmentation decoder, for :func:`nrtool.training.run_training`."""

    def __init__(self, embeddings: "Embeddings", config: SegmenterConfig, device: torch.device,
                 progress: Progress | None = None) -> None:
        from nrtool.io.naming import source_group, train_val_split

        labels = embeddings.labels()
        train_idx, val_idx = train_val_split(labels, embeddings.splits(), config.val_fraction, config.seed,
                                             groups=[source_group(item.name) for item in embeddings.items])
        if len(train_idx) < 2:
            raise NrtoolError(f"only {len(train_idx)} labelled training item(s) (split 'train' or unset); need at least 2")
        chosen = [int(i) for i in (*train_idx, *val_idx)]
        clouds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        names: list[str] | None = None
        with (progress or SilentProgress()).task("reading labelled clouds", len(chosen), "shapes") as advance:
            for i in chosen:
                points, part_labels, part_names = normalised_cloud(embeddings.items[i])
                clouds[i] = (points, part_labels)
                names = names or part_names
                advance()
        class_of = [str(item.class_name) for item in embeddings.items]
        self.vocabulary = PartVocabulary.from_clouds([class_of[i] for i in train_idx],
                                                     [clouds[int(i)][1] for i in train_idx], names)
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        vectors = torch.as_tensor(np.asarray(embeddings.vectors, np.float32), device=device)
        class_index = torch.as_tensor([self.vocabulary.classes.index(class_of[i]) if class_of[i] in self.vocabulary.classes
                                       else -1 for i in range(len(class_of))], device=device)
        self.train_vectors, self.train_classes = vectors[train_idx], class_index[train_idx]
        self.train_points, self.train_labels, self.train_counts = _padded(
            [clouds[int(i)][0] for i in train_idx], [clouds[int(i)][1] for i in train_idx], device)
        known_val = [int(i) for i in val_idx if class_index[int(i)] >= 0]  # a class without training shapes cannot be scored
        self.val = [(vectors[i], class_of[i], *clouds[i]) for i in known_val]
        self.mean_embedding = self.train_vectors.mean(0).cpu()
        self.model = PartSegmenter(vectors.shape[1], len(self.vocabulary.classes), len(self.vocabulary.parts),
                                   config.hidden, config.pe_frequencies).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = steps_per_epoch(len(train_idx), config.batch)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        self.model.train()

        def loss_of(index: torch.Tensor) -> torch.Tensor:
            draw = torch.rand(len(index), self.config.queries, generator=self.generator).to(self.device)
            rows = (draw * self.train_counts[index, None]).long()  # uniform over each shape's own points
            queries = torch.gather(self.train_points[index], 1, rows[..., None].expand(-1, -1, 3))
            targets = torch.gather(self.train_labels[index], 1, rows)
            logits = self.model(self.train_vectors[index], self.train_classes[index], queries)
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

        return supervised_epoch(len(self.train_vectors), self.config.batch, self.generator, self.device, loss_of,
                                self.optimizer, self.scheduler, advance)

    def validate(self, epoch: int) -> dict[str, float]:
        if not self.val:
            return {}
        self.model.eval()
        ious = [shape_iou(predict_parts(self.model, self.vocabulary, vector, name, points, self.device), truth,
                          self.vocabulary.class_parts[name]) for vector, name, points, truth in self.val]
        report = miou_report(ious, [name for _, name, _, _ in self.val])
        return {"val_class_miou": report["class_miou"], "val_instance_miou": report["instance_miou"]}

    def score(self, record: dict[str, Any]) -> tuple[float, ...] | None:
        if "val_class_miou" not in record:
            return None
        return (-record["val_class_miou"], -record["val_instance_miou"])


@dataclass
class Segmenter:
    """A loaded checkpoint: the decoder (eval mode) and what it knows."""

    model: PartSegmenter
    config: SegmenterConfig
    vocabulary: PartVocabulary
    dim: int
    mean_embedding: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)


def load_segmenter(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Segmenter:
    """Load a checkpoint of ``nrtool train segmenter`` (one-line error naming the file)."""
    from nrtool.heads.checkpoints import load_head

    def build(config: SegmenterConfig, classes: list[str], dim: int, parts: list[str], **_: Any) -> nn.Module:
        return PartSegmenter(dim, len(classes), len(parts), config.hidden, config.pe_frequencies)

    model, config, classes, fields, history = load_head(
        path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "segmenter", "nrtool train segmenter", SegmenterConfig,
        {"dim": int, "parts": lambda v: [str(p) for p in v],
         "class_parts": lambda v: {str(c): [int(i) for i in ids] for c, ids in v.items()},
         "majority": lambda v: {str(c): int(i) for c, i in v.items()},
         "mean_embedding": lambda v: torch.as_tensor(v, dtype=torch.float32)},
        build, device,
    )
    vocabulary = PartVocabulary(classes, fields["parts"], fields["class_parts"], fields["majority"])
    return Segmenter(model, config, vocabulary, fields["dim"], fields["mean_embedding"], history)  # type: ignore[arg-type]


@holds_output_lock("out")
def train_segmenter_file(
    embeddings_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: SegmenterConfig,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
    restart: bool = False,
) -> TrainReport:
    """Train on an ``embeddings`` artifact whose items' sources are labelled clouds; writes the
    checkpoint (+ curves PNG). An interrupted run resumes from ``OUT.partial``."""
    from nrtool.artifacts.core import provenance, sha256_file
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.figures import training_curves
    from nrtool.heads.checkpoints import curves_path, save_head
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    embeddings = load_embeddings(embeddings_path)
    if not embeddings.classes:
        raise InputFileError(embeddings_path, "has no class labels; part segmentation is conditioned on the class")
    trainer = SegmenterTrainer(embeddings, config, torch_device, progress)
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    run = run_training(trainer, out, "segmenter", {"config": settings, "embeddings": sha256_file(embeddings_path)},
                       config, progress, restart, "training segmenter")
    vocabulary = trainer.vocabulary
    dim = int(embeddings.vectors.shape[1])
    fields = {"dim": dim, "parts": vocabulary.parts, "class_parts": vocabulary.class_parts,
              "majority": vocabulary.majority, "mean_embedding": trainer.mean_embedding}
    extra = {"embeddings": {"inputs": provenance([embeddings_path]), "encoder": embeddings.encoder, "field": embeddings.field}}
    save_head(out, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, config, vocabulary.classes, fields, run.best_state,
              run.history, extra)
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: segmenter {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, classes=vocabulary.classes, parts=len(vocabulary.parts), dim=dim,
                      config=config.to_dict(), device=str(torch_device), train_items=len(trainer.train_vectors),
                      val_items=len(trainer.val))


# --------------------------------------------------------------------------------------------
# Applying it: `nrtool segment`
# --------------------------------------------------------------------------------------------

#: Points of a cloud reconstructed from an INR for segmentation (the size of the clouds it trains on).
RECON_POINTS = 2048


def _nearest_labels(points: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The label of each point's nearest reference point (how reconstructed clouds get their truth)."""
    from scipy.spatial import cKDTree

    return labels[cKDTree(reference).query(points, k=1)[1]]


def _reconstructions(inrs_path: str | os.PathLike[str], items: Sequence["ItemInfo"], points: int,
                     device: torch.device, progress: Progress) -> list[np.ndarray]:
    """A ``points``-point cloud from each item's udf INR (matched by name), in the INR's frame."""
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.geometry.ground_truth import item_seed
    from nrtool.inr.reconstruction import (
        ReconstructionSettings,
        discretise,
        field_function,
    )

    header, inr_items = load_inrs(inrs_path)
    if header.field != "udf":
        raise InputFileError(inrs_path, f"holds {header.field} INRs; segmentation reconstructs point clouds from udf INRs")
    by_name = {item.name: item for item in inr_items}
    missing = [item.name for item in items if item.name not in by_name]
    if missing:
        raise InputFileError(inrs_path, f"has no INR for {len(missing)} of the items, e.g. {missing[0]!r}")
    for item in items:
        inr = by_name[item.name]
        if inr.source != item.source or not np.allclose(inr.center, item.center) or not np.isclose(inr.scale, item.scale):
            raise InputFileError(inrs_path, f"INR {item.name!r} was fitted to {inr.source}, not to the item's {item.source}")
    settings = ReconstructionSettings(points=points)
    clouds = []
    with progress.task("reconstructing clouds", len(items), "shapes") as advance:
        for item in items:
            field_fn = field_function(header, by_name[item.name].params, device)
            recon = discretise("udf", field_fn, settings, device, seed=item_seed(0, item.name))
            clouds.append(np.asarray(recon.points, np.float32) if recon.points is not None else np.zeros((0, 3), np.float32))
            advance()
    return clouds


@holds_output_lock("out")
def segment_file(
    embeddings_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    splits: Sequence[str] = (),
    inrs_path: str | os.PathLike[str] | None = None,
    recon_points: int = RECON_POINTS,
    device: str = "auto",
    png: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """Segment every (selected) item's original cloud and, with ``inrs_path``, a cloud reconstructed
    from its INR; writes a ``segmentation`` artifact (+ ``png``) and returns the metrics.

    Also scored on the original points: two baselines that show what the embedding adds -- every
    point labelled its class's most frequent part, and the decoder given the mean training
    embedding instead of the shape's own (class and position alone).
    """
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.embeddings import load_embeddings, select
    from nrtool.artifacts.segmentation import (
        Segmentation,
        SegmentedClouds,
        write_segmentation,
    )
    from nrtool.device import resolve_device

    if recon_points < 1:
        raise NrtoolError(f"--recon-points must be at least 1, got {recon_points}")
    progress = progress or SilentProgress()
    torch_device = resolve_device(device)
    segmenter = load_segmenter(model_path, torch_device)
    vocabulary = segmenter.vocabulary
    embeddings = load_embeddings(embeddings_path)
    if embeddings.vectors.shape[1] != segmenter.dim:
        raise InputFileError(model_path, f"segmenter was trained on {segmenter.dim}-d embeddings, but "
                                         f"{embeddings_path} holds {embeddings.vectors.shape[1]}-d ones")
    chosen = select(embeddings, list(splits))
    if not chosen.items:
        raise InputFileError(embeddings_path, f"no items with split {' or '.join(splits)}")
    unknown = [item for item in chosen.items if item.class_name not in vocabulary.classes]
    if unknown:
        raise InputFileError(embeddings_path, f"item {unknown[0].name!r} has class {unknown[0].class_name!r}, which the "
                                              f"segmenter does not know ({', '.join(vocabulary.classes)})")
    recon = (_reconstructions(inrs_path, chosen.items, recon_points, torch_device, progress)
             if inrs_path is not None else None)
    vectors = torch.as_tensor(np.asarray(chosen.vectors, np.float32))
    kinds = ["original"] + (["recon"] if recon is not None else [])
    clouds = {kind: SegmentedClouds([], [], [], []) for kind in kinds}
    baselines: dict[str, list[float]] = {"majority_part": [], "mean_embedding": []}
    with progress.task("segmenting", len(chosen.items), "shapes") as advance:
        for row, item in enumerate(chosen.items):
            points, truth, _ = normalised_cloud(item)
            name, parts = str(item.class_name), vocabulary.class_parts[str(item.class_name)]
            queries = {"original": (points, truth)}
            if recon is not None:
                queries["recon"] = (recon[row], _nearest_labels(recon[row], points, truth))
            for kind, (where, labels) in queries.items():
                predicted = predict_parts(segmenter.model, vocabulary, vectors[row], name, where, torch_device)
                target = clouds[kind]
                target.points.append(where * float(item.scale) + np.asarray(item.center, np.float32))
                target.predicted.append(predicted)
                target.truth.append(labels)
                # An INR without surface yields no points: nothing segmented, IoU 0.
                target.shape_iou.append(shape_iou(predicted, labels, parts) if len(where) else 0.0)
            baselines["majority_part"].append(shape_iou(np.full(len(truth), vocabulary.majority[name]), truth, parts))
            baselines["mean_embedding"].append(shape_iou(
                predict_parts(segmenter.model, vocabulary, segmenter.mean_embedding, name, points, torch_device), truth, parts))
            advance()
    class_names = [str(item.class_name) for item in chosen.items]
    metrics: dict[str, Any] = {kind: miou_report(clouds[kind].shape_iou, class_names) for kind in kinds}
    metrics["baselines"] = {key: miou_report(values, class_names) for key, values in baselines.items()}
    inputs = [embeddings_path, model_path, *([inrs_path] if inrs_path is not None else [])]
    write_segmentation(out, Segmentation(chosen.items, vocabulary.parts, vocabulary.class_parts, clouds, metrics,
                                         str(model_path), str(embeddings_path), str(inrs_path or "")),
                       inputs=provenance(inputs), command=command)
    if png is not None:
        segmentation_picture(chosen.items, clouds[kinds[-1]], png, f"{kinds[-1]} clouds: truth (top) and predicted parts")
    return {"items": len(chosen.items), "parts": vocabulary.parts, "png": str(png) if png is not None else None,
            **metrics}


def segmentation_picture(items: Sequence["ItemInfo"], clouds: Any, png: str | os.PathLike[str], title: str,
                         per_class: int = 1, limit: int = 8) -> None:
    """True (top row) and predicted (bottom row) parts of the first ``per_class`` shapes of each class."""
    from nrtool.plots import point_rows

    shown: list[int] = []
    for index, item in enumerate(items):
        if sum(items[i].class_name == item.class_name for i in shown) < per_class and len(shown) < limit:
            shown.append(index)
    labels = [f"{items[i].name}\nIoU {clouds.shape_iou[i]:.3f}" for i in shown]
    point_rows([("truth", [clouds.points[i] for i in shown], labels),
                ("predicted", [clouds.points[i] for i in shown], labels)], png, title,
               parts=[[clouds.truth[i] for i in shown], [clouds.predicted[i] for i in shown]])
