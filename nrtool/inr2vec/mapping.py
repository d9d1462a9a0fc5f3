"""Mapping one embedding space onto another (thesis Sec. 5.5.6): completion, udf -> sdf.

A transfer net -- 8 Linear layers of width 1024 with BatchNorm + ReLU between them, as in the
official code -- learns to turn the embedding of one INR into the embedding of another INR of
the same shape: the INR of a partial cloud into that of the complete shape (completion), the
INR of a point cloud's udf into that of its mesh's sdf. It trains on pairs of embeddings matched
by item name (MSE, AdamW 1e-4, weight decay 1e-4); the mapped embedding is then decoded by the
target space's inr2vec decoder.

Ours: inputs and targets are standardised per dimension with the training pairs' statistics (and
the output mapped back), so the loss weighs every dimension's variation across shapes rather than
the offset inr2vec's max-pooled features share; the MSE is in those standardised units.

Checkpoint (:mod:`nrtool.checkpoints`)::

    {"format": "nrtool-mapping", "version": 1, "config": {...}, "in_dim", "out_dim", "state_dict",
     "history", "source": {"encoder", "field", "inputs"}, "target": {"encoder", "field", "inputs",
     "decoder": {"path", "sha256"} | None}}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.heads.config import MappingConfig
from nrtool.heads.training import steps_per_epoch, supervised_epoch
from nrtool.progress import Progress, SilentProgress
from nrtool.training import TrainReport

CHECKPOINT_FORMAT = "nrtool-mapping"
CHECKPOINT_VERSION = 1
#: Points per shape in the evaluation's Chamfer / F-score (both sides).
EVAL_POINTS = 10_000


class TransferNet(nn.Module):
    """(B, D_in) embeddings -> (B, D_out): Linear, then [BatchNorm, ReLU, Linear] x (layers - 1),
    on standardised inputs and outputs (statistics kept as buffers)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024, layers: int = 8) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Linear(in_dim, hidden)]
        for index in range(layers - 1):
            width = out_dim if index == layers - 2 else hidden
            blocks += [nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, width)]
        self.net = nn.Sequential(*blocks)
        for name, dim in (("in_mean", in_dim), ("in_std", in_dim), ("out_mean", out_dim), ("out_std", out_dim)):
            self.register_buffer(name, torch.zeros(dim) if name.endswith("mean") else torch.ones(dim))

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        """The prediction in standardised target units (what the loss compares)."""
        return self.net((x - self.in_mean) / self.in_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardised(x) * self.out_std + self.out_mean


def _spread(x: torch.Tensor) -> torch.Tensor:
    return x.std(0).clamp_min(1e-6 * float(x.abs().max()) + 1e-12)


def pair_rows(source: Any, target: Any) -> list[tuple[int, int]]:
    """``(source row, target row)`` of the items both embeddings artifacts hold (matched by name)."""
    index = {name: row for row, name in enumerate(target.names)}
    return [(row, index[name]) for row, name in enumerate(source.names) if name in index]


class MappingTrainer:
    """Epochs of the transfer net, for :func:`nrtool.training.run_training` (kept: lowest validation MSE)."""

    def __init__(self, source: Any, target: Any, config: MappingConfig, device: torch.device) -> None:
        from nrtool.io.naming import source_group, train_val_split

        pairs = pair_rows(source, target)
        if not pairs:
            raise NrtoolError("the two embeddings artifacts share no item name: nothing to pair")
        items = [source.items[s] for s, _ in pairs]
        classes = sorted({str(i.class_name) for i in items})
        labels = np.array([classes.index(str(i.class_name)) for i in items])
        train, val = train_val_split(labels, [i.split for i in items], config.val_fraction, config.seed,
                                     groups=[source_group(i.name) for i in items])
        if len(train) < 2:
            raise NrtoolError(f"only {len(train)} training pair(s) (split 'train' or unset); need at least 2")
        torch.manual_seed(config.seed)
        x = torch.as_tensor(np.asarray(source.vectors, np.float32)[[s for s, _ in pairs]], device=device)
        y = torch.as_tensor(np.asarray(target.vectors, np.float32)[[t for _, t in pairs]], device=device)
        self.model = TransferNet(x.shape[1], y.shape[1], config.hidden, config.layers).to(device)
        for name, value in (("in_mean", x[train].mean(0)), ("in_std", _spread(x[train])),
                            ("out_mean", y[train].mean(0)), ("out_std", _spread(y[train]))):
            getattr(self.model, name).copy_(value)
        self.x_train, self.x_val = x[train], x[val]
        self.y_train = (y[train] - self.model.out_mean) / self.model.out_std
        self.y_val = (y[val] - self.model.out_mean) / self.model.out_std
        self.config, self.device = config, device
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = None
        self.steps_per_epoch = steps_per_epoch(len(train), config.batch)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None
        self.pairs, self.train_pairs, self.val_pairs = len(pairs), len(train), len(val)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        self.model.train()

        def loss_of(index: torch.Tensor) -> torch.Tensor:
            return nn.functional.mse_loss(self.model.standardised(self.x_train[index]), self.y_train[index])

        return supervised_epoch(len(self.y_train), self.config.batch, self.generator, self.device, loss_of,
                                self.optimizer, None, advance)

    def validate(self, epoch: int) -> dict[str, float]:
        if len(self.y_val) == 0:
            return {}
        self.model.eval()
        with torch.no_grad():
            return {"val_mse": float(nn.functional.mse_loss(self.model.standardised(self.x_val), self.y_val))}

    def score(self, record: dict[str, Any]) -> tuple[float, ...] | None:
        return (record["val_mse"],) if "val_mse" in record else None


def _space(path: str | os.PathLike[str], embeddings: Any) -> dict[str, Any]:
    from nrtool.artifacts.core import provenance
    from nrtool.inr2vec.generation import recorded_decoder

    return {"encoder": embeddings.encoder, "field": embeddings.field, "inputs": provenance([path]),
            "decoder": recorded_decoder(path)}


@holds_output_lock("out")
def train_mapping_file(source_path: str | os.PathLike[str], target_path: str | os.PathLike[str],
                       out: str | os.PathLike[str], config: MappingConfig, device: str = "auto",
                       progress: Progress | None = None, plot: bool = True, restart: bool = False) -> TrainReport:
    """Train a transfer net from ``source`` embeddings to the ``target`` embeddings of the same
    items (by name); writes the checkpoint (+ curves PNG). Resumes from ``OUT.partial``."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.checkpoints import save_checkpoint
    from nrtool.figures import training_curves
    from nrtool.heads.checkpoints import curves_path
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    source, target = load_embeddings(source_path), load_embeddings(target_path)
    trainer = MappingTrainer(source, target, config, torch_device)
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    run = run_training(trainer, out, "mapping", {"config": settings, "source": sha256_file(source_path),
                                                 "target": sha256_file(target_path)},
                       config, progress, restart, "training mapping")
    save_checkpoint(out, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {
        "config": config.to_dict(), "in_dim": int(source.vectors.shape[1]), "out_dim": int(target.vectors.shape[1]),
        "state_dict": run.best_state, "history": run.history,
        "source": _space(source_path, source), "target": _space(target_path, target)})
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: mapping {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, pairs=trainer.pairs, train_pairs=trainer.train_pairs,
                      val_pairs=trainer.val_pairs, config=config.to_dict(), device=str(torch_device))


def load_mapping(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[TransferNet, dict[str, Any]]:
    """The transfer net (eval mode) and its checkpoint's record (one-line error naming the file)."""
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "mapping", "nrtool train mapping")
    try:
        config = MappingConfig.from_dict(data["config"])
        model = TransferNet(int(data["in_dim"]), int(data["out_dim"]), config.hidden, config.layers)
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "mapping", exc) from exc
    return model.to(device).eval(), data


def _scores(points: np.ndarray | None, truth: np.ndarray) -> dict[str, float | None]:
    from nrtool.geometry.metrics import chamfer_distance, fscore
    from nrtool.inr.reconstruction import FSCORE_THRESHOLD

    if points is None or len(points) == 0:
        return {"chamfer": None, "fscore": None}
    return {"chamfer": chamfer_distance(points, truth), "fscore": fscore(points, truth, FSCORE_THRESHOLD)}


def _means(rows: Sequence[dict[str, Any]], key: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric in ("chamfer", "fscore"):
        values = [r[key][metric] for r in rows if r[key][metric] is not None]
        out[metric] = float(np.mean(values)) if values else None
    out["empty"] = sum(r[key]["chamfer"] is None for r in rows)
    return out


@holds_output_lock("out")
def map_file(source_path: str | os.PathLike[str], model_path: str | os.PathLike[str], out: str | os.PathLike[str],
             splits: Sequence[str] = (), truth_path: str | os.PathLike[str] | None = None,
             decoder_path: str | os.PathLike[str] | None = None, resolution: int = 64, device: str = "auto",
             png: str | os.PathLike[str] | None = None, progress: Progress | None = None,
             command: list[str] | None = None) -> dict[str, Any]:
    """Map (selected) source embeddings into the target space; writes an ``embeddings`` artifact.

    With ``truth_path`` (target-space embeddings of the same items, whose sources are the true
    shapes) the mapped embeddings are decoded by the target's inr2vec decoder and scored against
    the truth -- beside the input shape itself (what the mapping gains) and the decoded true
    target embedding (the decoder's own limit): Chamfer and F-score@0.01, normalised frame of the
    truth's INR.
    """
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.embeddings import (
        Embeddings,
        load_embeddings,
        select,
        write_embeddings,
    )
    from nrtool.device import resolve_device
    from nrtool.inr.reconstruction import (
        ReconstructionSettings,
        discretise,
        source_reference,
    )
    from nrtool.inr2vec.decode import decoded_field
    from nrtool.inr2vec.generation import resolve_decoder

    torch_device = resolve_device(device)
    model, record = load_mapping(model_path, torch_device)
    source = select(load_embeddings(source_path), list(splits))
    if not source.items:
        raise InputFileError(source_path, f"no items with split {' or '.join(splits)}")
    if source.vectors.shape[1] != int(record["in_dim"]):
        raise InputFileError(model_path, f"maps {record['in_dim']}-d embeddings, {source_path} holds "
                             f"{source.vectors.shape[1]}-d ones")
    truth = load_embeddings(truth_path) if truth_path is not None else None
    truth_rows = dict(pair_rows(source, truth)) if truth is not None else {}
    if truth is not None and not truth_rows:
        raise InputFileError(truth_path, f"shares no item name with {source_path}")
    if truth is not None and truth.vectors.shape[1] != int(record["out_dim"]):
        raise InputFileError(truth_path, f"holds {truth.vectors.shape[1]}-d embeddings; {model_path} maps into "
                             f"{record['out_dim']}-d ones")
    decoder = None
    if truth is not None:
        decoder, field_name = resolve_decoder(model_path, record["target"].get("decoder"), decoder_path, torch_device,
                                              int(record["out_dim"]))
    with torch.no_grad():
        mapped = model(torch.as_tensor(np.asarray(source.vectors, np.float32), device=torch_device)).cpu().numpy()
    items = [truth.items[truth_rows[row]] if row in truth_rows else item for row, item in enumerate(source.items)]
    target = record["target"]
    write_embeddings(out, Embeddings(mapped, items, str(target["encoder"]), str(target["field"])),
                     inputs=provenance([source_path, model_path]), command=command)
    result: dict[str, Any] = {"items": len(items), "out": str(out)}
    if decoder is None:
        return result
    settings = ReconstructionSettings(resolution=resolution, points=EVAL_POINTS, source_units=False)
    rows, pictures = [], []
    with (progress or SilentProgress()).task("decoding mapped embeddings", len(truth_rows), "shapes") as advance:
        for row, truth_row in truth_rows.items():
            true_item = truth.items[truth_row]
            reference = source_reference(field_name if field_name != "occ" else "sdf", true_item)[:EVAL_POINTS]
            # The input shape in the truth's frame: both sources share their units.
            given = source_reference("udf", dataclasses.replace(source.items[row], center=true_item.center,
                                                                scale=true_item.scale))[:EVAL_POINTS]
            decoded = {}
            for key, vector in (("mapped", mapped[row]), ("decoded_target", truth.vectors[truth_row])):
                fn = decoded_field(decoder, torch.as_tensor(np.asarray(vector, np.float32), device=torch_device), field_name)
                with torch.no_grad():
                    recon = discretise(field_name, fn, settings, torch_device)
                decoded[key] = recon.surface_points(EVAL_POINTS) if recon.size else None
            rows.append({"name": true_item.name, "class": true_item.class_name, "input": _scores(given, reference),
                         "mapped": _scores(decoded["mapped"], reference),
                         "decoded_target": _scores(decoded["decoded_target"], reference)})
            pictures.append((given, decoded["mapped"], reference, true_item.name))
            advance()
    result.update({"evaluated": len(rows), **{key: _means(rows, key) for key in ("input", "mapped", "decoded_target")},
                   "per_item": rows})
    if png is not None:
        from nrtool.plots import point_rows

        shown = pictures[:8]
        point_rows([(title, [p[k] for p in shown], [p[3] for p in shown])
                    for k, title in ((0, "input"), (1, "mapped"), (2, "truth"))], png,
                   "input (top), decoded mapped embedding, true shape")
        result["png"] = str(png)
    return result
