"""``nrtool train garment``: the DGCNN encoder and the UDF decoder, trained end to end (App. A.1.3, A.1.5).

Per step, a batch of garments: the encoder sees ``points`` surface samples of each and gives a
code; the decoder predicts the clipped UDF at ``queries`` supervision points (see
:mod:`nrtool.garments.data`). Loss: ``L_dist`` (BCE between the logits and ``min(d, delta) /
delta``) plus ``lambda_g * L_grad`` (MSE between the gradient of the predicted UDF and the true
one, which is 0 beyond ``delta``; surface points carry no gradient label). Adam. Validation:
Chamfer distance between the held-out garments and their decoded MeshUDF meshes; the checkpoint
kept is the best one. Curves go to ``OUT.png``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.core import holds_output_lock
from nrtool.distributed import rank_slice
from nrtool.errors import NrtoolError
from nrtool.garments.config import GarmentConfig, TrainSettings
from nrtool.garments.data import (
    GarmentMesh,
    Supervision,
    load_garments,
    sample_surface_points,
)
from nrtool.garments.meshing import decode_mesh, mesh_chamfer
from nrtool.garments.model import GarmentNet, save_model
from nrtool.progress import Progress
from nrtool.training import TrainReport


def _category(garments: list[GarmentMesh], category: str | None, where: str) -> str:
    found = sorted({g.category for g in garments} - {"unknown"})
    if category is None:
        if len(found) != 1:
            shapes = ""
            if not found:
                from nrtool.garments.checks import shape_summary

                shapes = f" (by their shapes, {shape_summary(garments)})"
            raise NrtoolError(f"{where}: holds {' and '.join(found) or 'no labelled'} garments{shapes}; pass --category top|bottom")
        return found[0]
    if category not in ("top", "bottom"):
        raise NrtoolError(f"--category {category!r}: choose top or bottom")
    return category


def common_normalisation(garments: list[GarmentMesh]) -> dict[str, Any] | None:
    """The normalisation all garments share (synthetic sets have one), else None."""
    first = garments[0]
    if all(np.allclose(g.centre, first.centre) and math.isclose(g.scale, first.scale) for g in garments):
        return {"centre": first.centre.tolist(), "scale": first.scale}
    return None


def garments_identity(garments: list[GarmentMesh]) -> str:
    """SHA-256 of the garments as loaded (names, categories, meshes, frames): what a run trained on."""
    import hashlib

    digest = hashlib.sha256()
    for g in garments:
        digest.update(json.dumps([g.name, g.category, g.type, float(g.scale)]).encode())
        for array in (g.vertices, g.faces, g.centre):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def loss_terms(model: GarmentNet, points: torch.Tensor, queries: torch.Tensor, dist: torch.Tensor,
               grad: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``L_dist`` and ``L_grad`` for a batch: points (B, P, 3), queries (B, M, 3), labels (B, M), (B, M, 3), mask (B, M)."""
    delta = model.config.delta
    queries = queries.requires_grad_(True)
    logits = model.decoder(model.encoder(points), queries)
    target = dist.clamp(max=delta) / delta
    l_dist = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    udf = delta * torch.sigmoid(logits)
    (pred_grad,) = torch.autograd.grad(udf.sum(), queries, create_graph=True)
    true_grad = torch.where((dist < delta).unsqueeze(-1), grad, torch.zeros_like(grad))
    err = ((pred_grad - true_grad) ** 2).sum(-1)
    l_grad = (err * mask).sum() / mask.sum().clamp(min=1)
    return l_dist, l_grad


def encode_points(model: GarmentNet, clouds: list[np.ndarray], device: torch.device, batch: int = 8) -> np.ndarray:
    """(N, D) codes of surface point clouds (each (P, 3), normalised frame), eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(clouds), batch):
            pts = torch.as_tensor(np.stack(clouds[start : start + batch]), dtype=torch.float32, device=device)
            out.append(model.encoder(pts).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def validation_chamfer(model: GarmentNet, garments: list[GarmentMesh], device: torch.device, resolution: int,
                       points: int) -> float:
    rng = np.random.default_rng(12345)
    clouds = [sample_surface_points(g, points, rng) for g in garments]
    codes = encode_points(model, clouds, device)
    scores = []
    for garment, code in zip(garments, codes):
        vertices, faces = decode_mesh(model, code, resolution)
        scores.append(mesh_chamfer(vertices, faces, sample_surface_points(garment, 5_000, rng)))
    return float(np.mean(scores))


def recalibrate_batchnorm(model: GarmentNet, garments: list[GarmentMesh], supervision: Supervision,
                          rng: np.random.Generator, device: torch.device, batches: int = 4) -> None:
    """Re-estimate the BatchNorm statistics (:func:`nrtool.nn.recalibrate_batchnorm`) on a few
    training batches: the model is judged and saved in eval mode."""
    from nrtool.nn import recalibrate_batchnorm as recalibrate

    config = model.config
    batch = min(config.batch, len(garments))

    def passes() -> None:
        for _ in range(batches):
            rows = rng.choice(len(garments), batch, replace=False)
            points = torch.as_tensor(np.stack([sample_surface_points(garments[i], config.points, rng) for i in rows]), device=device)
            queries = torch.as_tensor(np.stack([supervision.sample(int(i), config.queries, rng)[0] for i in rows]), device=device)
            model.decoder(model.encoder(points), queries)

    recalibrate(model, passes)


def _split(garments: list[GarmentMesh], count: int | None, seed: int) -> tuple[list[int], list[int]]:
    if len(garments) < 3:
        raise NrtoolError(f"garment training needs at least 3 garments of the category, found {len(garments)}")
    n_val = count if count is not None else max(1, len(garments) // 10)
    if n_val > len(garments) - 2:
        raise NrtoolError(f"--val {n_val} leaves fewer than 2 of {len(garments)} garments to train on")
    order = np.random.default_rng(seed).permutation(len(garments))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class GarmentTrainer:
    """One epoch of the garment network (steps over shuffled training garments) and its
    validation (Chamfer of decoded meshes), for :func:`nrtool.training.run_training`."""

    def __init__(self, model: GarmentNet, train_set: list[GarmentMesh], val_set: list[GarmentMesh],
                 supervision: Supervision, settings: TrainSettings, device: torch.device) -> None:
        self.model, self.train_set, self.val_set = model, train_set, val_set
        self.supervision, self.settings, self.device = supervision, settings, device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=model.config.lr)
        self.scheduler = None
        self.generator = None
        self.rng = np.random.default_rng(settings.seed)
        self.batch = min(model.config.batch, len(train_set))
        self.steps_per_epoch = max(1, len(train_set) // self.batch)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        config, rng = self.model.config, self.rng
        order = rng.permutation(len(self.train_set))
        sums = {"loss": 0.0, "l_dist": 0.0, "l_grad": 0.0}
        steps = 0
        for step in range(self.steps_per_epoch):
            if steps and out_of_time():
                break  # checked per step: one paper-size epoch can take many minutes on a CPU
            rows = rank_slice(order[step * self.batch : (step + 1) * self.batch])  # torchrun: this rank's share
            clouds, labels = [], []
            for i in rows:
                clouds.append(sample_surface_points(self.train_set[i], config.points, rng))
                labels.append(self.supervision.sample(int(i), config.queries, rng))

            def as_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
                return torch.as_tensor(np.stack(arrays), device=self.device)

            l_dist, l_grad = loss_terms(self.model, as_tensor(clouds), as_tensor([x[0] for x in labels]),
                                        as_tensor([x[1] for x in labels]), as_tensor([x[2] for x in labels]),
                                        as_tensor([x[3] for x in labels]).float())
            loss = l_dist + config.lambda_grad * l_grad
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            sums["loss"] += float(loss.detach())
            sums["l_dist"] += float(l_dist.detach())
            sums["l_grad"] += float(l_grad.detach())
            steps += 1
            advance()
        return {"steps": steps, **{k: v / steps for k, v in sums.items()}}

    def validate(self, epoch: int) -> dict[str, float]:
        recalibrate_batchnorm(self.model, self.train_set, self.supervision, self.rng, self.device)
        return {"val_chamfer": validation_chamfer(self.model, self.val_set, self.device, self.settings.val_resolution,
                                                  self.model.config.points)}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return (record["val_chamfer"],) if "val_chamfer" in record else None


@holds_output_lock("out")
def train_garment(
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: GarmentConfig,
    settings: TrainSettings,
    category: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    restart: bool = False,
    category_check: bool = True,
) -> TrainReport:
    """Train a garment model on the garments of ``inputs`` (one category); write the best checkpoint.

    Garments with metadata (``garments.json``) are kept by their recorded category; those
    without are kept too, unless their shape says the other category (refused, unless
    ``category_check`` is off; see :mod:`nrtool.garments.checks`). The checkpoint records the
    training garments' frame, which ``nrtool garment encode`` checks garments against.

    An interrupted run leaves ``OUT.partial`` (:mod:`nrtool.training`); the same call continues
    from it, ``restart`` discards it. ``settings.time_limit`` counts this call's time.
    """
    from nrtool.figures import training_curves
    from nrtool.garments.checks import check_shape_categories, training_frame
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, settings, config)
    garments = load_garments(inputs)
    asked = category is not None
    category = _category(garments, category, ", ".join(map(str, inputs)))
    garments = [g for g in garments if g.category in (category, "unknown")]
    notes: list[str] = []
    if category_check:
        notes = check_shape_categories(garments, category, f"--category {category} was asked for" if asked
                                       else f"the labelled garments are {category}s")
    train_rows, val_rows = _split(garments, settings.val_items, settings.seed)
    train_set = [garments[i] for i in train_rows]
    val_set = [garments[i] for i in val_rows]
    run_settings = {k: v for k, v in settings.to_dict().items() if k != "time_limit"}  # a limit is per call
    fingerprint = {"config": config.to_dict(), "settings": run_settings, "category": category,
                   "garments": garments_identity(garments)}
    supervision = Supervision(train_set, config.eps, config.delta, torch_device)
    torch.manual_seed(settings.seed)
    model = GarmentNet(config).to(torch_device)
    trainer = GarmentTrainer(model, train_set, val_set, supervision, settings, torch_device)
    run = run_training(trainer, out, "garment", fingerprint, settings, progress, restart,
                       f"training {category} garments")
    model.load_state_dict(run.best_state)
    model.eval()
    train_codes = encode_points(model, [sample_surface_points(g, config.points, np.random.default_rng(7)) for g in train_set],
                                torch_device)
    extra = {
        "normalise": common_normalisation(garments),
        "frame": training_frame(garments).to_dict(),
        "train": {
            "names": [g.name for g in train_set],
            "types": [g.type for g in train_set],
            "codes": torch.from_numpy(train_codes),
            "attributes": json.dumps([g.attributes for g in train_set]),
        },
        "validation": [g.name for g in val_set],
        "history": json.dumps(run.history),
        "best_epoch": run.best_epoch,
        "best_val_chamfer": run.best.get("val_chamfer", math.inf),
    }
    save_model(out, model, category, extra)
    curves = out.with_suffix(".png")
    training_curves(run.history, curves, f"{out.name}: {category} garments, {config.preset}", run.best_epoch)
    run.finish()
    report = run.report(out, curves, category=category, garments=len(train_set), validation=[g.name for g in val_set])
    report.notes = notes
    return report
