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

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import NrtoolError
from nrtool.garments.config import GarmentConfig
from nrtool.garments.data import GarmentMesh, Supervision, load_garments, sample_surface_points
from nrtool.garments.meshing import decode_mesh, mesh_chamfer
from nrtool.garments.model import GarmentNet, save_model
from nrtool.progress import Progress


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 100
    val_items: int | None = None  # held-out garments (default: 10 %, at least 1)
    val_every: int = 10  # epochs between validations
    val_resolution: int = 48
    time_limit: float | None = None  # seconds; stop (and validate) when exceeded
    seed: int = 0

    def validate(self) -> None:
        if self.epochs < 1 or self.val_every < 1 or self.val_resolution < 8 or (self.val_items is not None and self.val_items < 1):
            raise NrtoolError("impossible training settings: need epochs >= 1, val-every >= 1, val-resolution >= 8, val >= 1")


@dataclass
class TrainReport:
    out: str
    category: str
    garments: int
    validation: list[str]
    epochs: int
    best_epoch: int
    best_val_chamfer: float
    seconds: float
    history: list[dict[str, float]]
    curves: str
    resumed_from_epoch: int | None = None  # the first epoch of this run when it continued an interrupted one
    epochs_asked: int = 0  # --epochs; more than ``epochs`` when the time limit stopped the run
    stopped_by_time_limit: bool = False
    notes: list[str] = field(default_factory=list)  # for the user (e.g. garments whose shape told nothing)


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
    """Recompute every BatchNorm's running statistics with the current weights.

    The running averages (momentum 0.1) lag behind the weights early in training, and the model
    is judged (and saved) in eval mode: a few training-mode forward passes with a cumulative
    average make eval mode match what training sees.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    config = model.config
    batch = min(config.batch, len(garments))
    with torch.no_grad():
        for _ in range(batches):
            rows = rng.choice(len(garments), batch, replace=False)
            points = torch.as_tensor(np.stack([sample_surface_points(garments[i], config.points, rng) for i in rows]), device=device)
            queries = torch.as_tensor(np.stack([supervision.sample(int(i), config.queries, rng)[0] for i in rows]), device=device)
            model.decoder(model.encoder(points), queries)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.eval()


def _split(garments: list[GarmentMesh], count: int | None, seed: int) -> tuple[list[int], list[int]]:
    if len(garments) < 3:
        raise NrtoolError(f"garment training needs at least 3 garments of the category, found {len(garments)}")
    n_val = count if count is not None else max(1, len(garments) // 10)
    if n_val > len(garments) - 2:
        raise NrtoolError(f"--val {n_val} leaves fewer than 2 of {len(garments)} garments to train on")
    order = np.random.default_rng(seed).permutation(len(garments))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


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

    An interrupted run leaves ``OUT.partial`` (:mod:`nrtool.training_state`); the same call
    continues from it, ``restart`` discards it. ``settings.time_limit`` counts this call's time.
    """
    from nrtool.garments.checks import check_shape_categories, training_frame
    from nrtool.training_state import TrainingState, start_training

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
    run = {k: v for k, v in asdict(settings).items() if k != "time_limit"}  # a limit is per call
    state = TrainingState(out, "garment", {"config": config.to_dict(), "settings": run, "category": category,
                                           "garments": garments_identity(garments)})
    saved = state.load(restart)
    supervision = Supervision(train_set, config.eps, config.delta, torch_device)

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = GarmentNet(config).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[dict[str, float]] = []
    best = (math.inf, 0)
    best_state: dict[str, torch.Tensor] | None = None
    epochs_done = 0
    if saved is not None:
        state.restore(saved, model, optimizer, rng=rng)
        history, epochs_done = saved["history"], saved["epoch"]
        best, best_state = (saved["best"]["score"], saved["best"]["epoch"]), saved["best"]["state_dict"]
    batch = min(config.batch, len(train_set))
    steps_per_epoch = max(1, len(train_set) // batch)
    first_epoch = epochs_done + 1
    resumed = f" (resumed from epoch {first_epoch})" if saved is not None else ""
    started = time.perf_counter()
    out_of_time = False
    with progress.task(f"training {category} garments{resumed}", (settings.epochs - epochs_done) * steps_per_epoch,
                       "steps") as advance, state.kept_on_interrupt():
        for epoch in range(first_epoch, settings.epochs + 1):
            model.train()
            order = rng.permutation(len(train_set))
            sums = {"loss": 0.0, "l_dist": 0.0, "l_grad": 0.0}
            steps_done = 0
            for step in range(steps_per_epoch):
                if settings.time_limit is not None and time.perf_counter() - started > settings.time_limit and steps_done:
                    break  # checked per step: one paper-size epoch can take many minutes on a CPU
                rows = order[step * batch : (step + 1) * batch]
                clouds, labels = [], []
                for i in rows:
                    clouds.append(sample_surface_points(train_set[i], config.points, rng))
                    labels.append(supervision.sample(int(i), config.queries, rng))
                as_tensor = lambda arrays: torch.as_tensor(np.stack(arrays), device=torch_device)  # noqa: E731
                l_dist, l_grad = loss_terms(model, as_tensor(clouds), as_tensor([x[0] for x in labels]),
                                            as_tensor([x[1] for x in labels]), as_tensor([x[2] for x in labels]),
                                            as_tensor([x[3] for x in labels]).float())
                loss = l_dist + config.lambda_grad * l_grad
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sums["loss"] += float(loss.detach())
                sums["l_dist"] += float(l_dist.detach())
                sums["l_grad"] += float(l_grad.detach())
                steps_done += 1
                advance()
            epochs_done = epoch
            record: dict[str, float] = {"epoch": epoch, "steps": steps_done, **{k: v / steps_done for k, v in sums.items()}}
            out_of_time = settings.time_limit is not None and time.perf_counter() - started > settings.time_limit
            if epoch % settings.val_every == 0 or epoch == settings.epochs or out_of_time:
                recalibrate_batchnorm(model, train_set, supervision, rng, torch_device)
                val = validation_chamfer(model, val_set, torch_device, settings.val_resolution, config.points)
                record["val_chamfer"] = val
                if val < best[0]:
                    best = (val, epoch)
                    best_state = copy.deepcopy(model.state_dict())
            history.append(record)
            state.epoch_done(epoch, model, optimizer, history, best[0], best[1], best_state, rng=rng,
                             final=epoch == settings.epochs or out_of_time)
            if out_of_time:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
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
        "history": json.dumps(history),
        "best_epoch": best[1],
        "best_val_chamfer": best[0],
    }
    save_model(out, model, category, extra)
    curves = out.with_suffix(".png")
    training_curves(history, curves, f"{out.name}: {category} garments, {config.preset}")
    state.finish()
    return TrainReport(str(out), category, len(train_set), [g.name for g in val_set], epochs_done, best[1], best[0],
                       time.perf_counter() - started, history, str(curves), first_epoch if saved is not None else None,
                       settings.epochs, out_of_time and epochs_done < settings.epochs, notes)


def training_curves(history: list[dict[str, float]], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.plots import save_figure

    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key in ("loss", "l_dist", "l_grad"):
        left.plot(epochs, [h[key] for h in history], label=key)
    left.set(xlabel="epoch", title="training loss", yscale="log")
    left.legend(fontsize=8)
    val = [(h["epoch"], h["val_chamfer"]) for h in history if "val_chamfer" in h]
    right.plot([e for e, _ in val], [v for _, v in val], "o-")
    right.set(xlabel="epoch", title="validation Chamfer (normalised frame)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png)
