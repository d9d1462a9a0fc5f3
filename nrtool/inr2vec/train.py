"""Training inr2vec: the decoder regresses each input INR's own field from its embedding.

Labels come from evaluating the input INRs, so training needs no source shapes (App. C.4). Half of
each INR's queries are uniform in [-1,1]^3; the other half are the candidates closest to the
INR's surface (smallest |field|) among uniform ones, so the decoder learns the surface, not just
empty space. The loss is the INR field's own (BCE, or focal for occupancy) against the INR's
soft labels. The checkpoint kept is the one with the lowest validation reconstruction Chamfer
distance between decoded shapes and the INRs' own reconstructions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.core import holds_output_lock, sha256_file
from nrtool.artifacts.inrs import InrHeader, InrItem, load_inrs
from nrtool.distributed import rank_slice
from nrtool.errors import InputFileError, NrtoolError
from nrtool.inr.fields import FieldName, field_loss, logits_to_field
from nrtool.inr.siren import SirenSpec, batched_forward
from nrtool.inr2vec.config import Inr2vecConfig, TrainSettings
from nrtool.inr2vec.models import Inr2vec
from nrtool.io.naming import trains_on
from nrtool.progress import Progress
from nrtool.training import TrainReport

CHECKPOINT_FORMAT = "nrtool-inr2vec"
CHECKPOINT_VERSION = 2  # 2: decoder layers named layer1..layer4
#: Chamfer distance charged for an empty reconstruction (normalised units: the cube spans 2).
EMPTY_PENALTY = 1.0
#: Query rounds a udf validation reconstruction may take (:func:`shape_points`).
VALIDATION_UDF_ROUNDS = 3


def inr_identity(header: InrHeader) -> dict[str, Any]:
    """What an inr2vec model must share with the INRs it encodes."""
    return {"architecture": header.spec.to_dict(), "field": header.field, "init_sha256": header.init_sha256}


def sample_queries(params: torch.Tensor, spec: SirenSpec, field: FieldName, count: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (B, count, 3) and the INRs' soft labels there (B, count)."""
    batch = params.shape[0]
    near = count // 2
    candidates = torch.rand(batch, 4 * near, 3, generator=generator).to(params.device) * 2 - 1
    uniform = torch.rand(batch, count - near, 3, generator=generator).to(params.device) * 2 - 1
    with torch.no_grad():
        values = logits_to_field(field, batched_forward(params, candidates, spec))
        closeness = (values - 0.5).abs() if field == "occ" else values.abs()
        index = closeness.topk(near, dim=1, largest=False).indices
        close = torch.gather(candidates, 1, index.unsqueeze(-1).expand(-1, -1, 3))
        queries = torch.cat([close, uniform], dim=1)
        labels = torch.sigmoid(batched_forward(params, queries, spec))
    return queries, labels


def shape_points(field: str, fn: Any, resolution: int, device: torch.device) -> np.ndarray | None:
    """Points on a field's reconstruction at ``resolution`` (normalised frame), None when it has
    no surface: how validation compares decoded shapes with the INRs' own."""
    from nrtool.inr.reconstruction import ReconstructionSettings, discretise

    if field == "udf":
        from nrtool.geometry.reconstruct import udf_to_points

        # A few rounds of 200k queries find the surface of any field that has one; the default 50
        # spent ~40 s per decoded field without a surface (early in training), 14 min of a 20-epoch
        # `tiny` run on 45 part clouds (2-core CPU). Too few points found counts as no surface.
        points = udf_to_points(fn, 4_000, max_rounds=VALIDATION_UDF_ROUNDS, device=device,
                               generator=torch.Generator().manual_seed(0))
        return points if len(points) >= 100 else None
    settings = ReconstructionSettings(resolution=resolution, points=4_000, voxel_resolution=resolution)
    return discretise(field, fn, settings, device).comparison_points(4_000)


def reference_points(header: InrHeader, params: torch.Tensor, resolution: int) -> list[np.ndarray | None]:
    """Points on each INR's own reconstruction: what decoded shapes are compared with.

    Computed once before training (the INRs do not change), not once per epoch.
    """
    from nrtool.inr.siren import single_field

    references = []
    for row in range(params.shape[0]):
        inr = single_field(params[row], header.spec)

        def own(points: torch.Tensor, _inr: Any = inr) -> torch.Tensor:
            return logits_to_field(header.field, _inr(points))  # type: ignore[arg-type]

        with torch.no_grad():
            references.append(shape_points(header.field, own, resolution, params.device))
    return references


def validation_chamfer(model: Inr2vec, header: InrHeader, params: torch.Tensor, resolution: int,
                       references: Sequence[np.ndarray | None] | None = None) -> float:
    """Mean Chamfer between decoded shapes and the INRs' own reconstructions.

    A decoded field with no surface counts as :data:`EMPTY_PENALTY` (about the cube's size), so
    one empty item weighs heavily without making the whole mean infinite. ``references`` are
    the INRs' own points from :func:`reference_points` (computed here when not given).
    """
    from nrtool.geometry.metrics import chamfer_distances, pad_clouds

    if references is None:
        references = reference_points(header, params, resolution)
    model.eval()
    decoded_clouds = []
    with torch.no_grad():
        embeddings = model.encode(params)
        for row in range(len(references)):
            emb = embeddings[row : row + 1]

            def decoded(points: torch.Tensor, _emb: torch.Tensor = emb) -> torch.Tensor:
                return logits_to_field(header.field, model.decoder(_emb, points.unsqueeze(0))[0])  # type: ignore[arg-type]

            decoded_clouds.append(shape_points(header.field, decoded, resolution, params.device))
    ours, our_lengths = pad_clouds(decoded_clouds)
    theirs, their_lengths = pad_clouds(list(references))
    distances = chamfer_distances(ours.to(params.device), theirs.to(params.device), our_lengths, their_lengths,
                                  empty=EMPTY_PENALTY)
    return float(distances.mean())


def split_validation(items: Sequence[InrItem], count: int, seed: int) -> tuple[list[int], list[int]]:
    """Rows that train and rows that validate (at most ``count`` of them), by the one split rule.

    Items marked ``val`` are held out for validation and never trained on; ``test`` items are
    never used. Without ``val`` items, about 10 % of the train items (at most ``count``) are
    carved out, seeded.
    """
    train_rows = _train_rows(items)
    if len(train_rows) < 3:
        raise NrtoolError(f"inr2vec training needs at least 3 training INRs, found {len(train_rows)}")
    rng = np.random.default_rng(seed)
    marked = [i for i, item in enumerate(items) if item.split == "val"]
    if marked:
        return train_rows, sorted(rng.permutation(marked)[:count].tolist())
    order = rng.permutation(train_rows)
    n_val = max(1, min(count, len(train_rows) // 10 or 1))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _train_rows(items: Sequence[InrItem]) -> list[int]:
    """Rows inr2vec may train on: split ``train`` or unknown (never ``val`` or ``test``)."""
    return [i for i, item in enumerate(items) if trains_on(item.split)]


class Inr2vecTrainer:
    """One epoch of inr2vec (a pass over the training INRs) and its validation, for the loop."""

    def __init__(self, model: Inr2vec, header: InrHeader, train_params: torch.Tensor, val_params: torch.Tensor,
                 settings: TrainSettings) -> None:
        self.model, self.header, self.settings = model, header, settings
        self.train_params, self.val_params = train_params, val_params
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.scheduler = None
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.rng = None
        self.steps_per_epoch = math.ceil(train_params.shape[0] / settings.batch)
        self.references = reference_points(header, val_params, settings.val_resolution)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        field: FieldName = self.header.field  # type: ignore[assignment]
        n = self.train_params.shape[0]
        order = torch.randperm(n, generator=self.generator)
        losses = []
        for start in range(0, n, self.settings.batch):
            rows = rank_slice(order[start : start + self.settings.batch])  # torchrun: this rank's share
            if len(rows) < 2:  # BatchNorm needs more than one INR
                advance()
                continue
            params = self.train_params[rows.to(self.train_params.device)]
            queries, labels = sample_queries(params, self.header.spec, field, self.settings.queries, self.generator)
            logits = self.model.decoder(self.model.encode(params), queries)
            loss = field_loss(field, logits, labels).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            advance()
        return {"train_loss": float(np.mean(losses))}

    def validate(self, epoch: int) -> dict[str, float]:
        return {"val_chamfer": validation_chamfer(self.model, self.header, self.val_params,
                                                  self.settings.val_resolution, self.references)}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return (record["val_chamfer"],) if "val_chamfer" in record else None


@holds_output_lock("out")
def train_inr2vec(
    inrs_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: Inr2vecConfig,
    settings: TrainSettings,
    val_path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    restart: bool = False,
) -> TrainReport:
    """Train encoder + decoder on the INRs of ``inrs_path``; write the best checkpoint to ``out``.

    Trained on the ``train`` (or unsplit) items; validated on ``val_path``'s INRs, else on the
    ``val`` items, else on a seeded tenth of the train items (:func:`split_validation`).
    An interrupted run leaves ``OUT.partial`` (:mod:`nrtool.training`); the same call continues
    from it, ``restart`` discards it.
    """
    from nrtool.checkpoints import save_checkpoint
    from nrtool.figures import training_curves
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config, settings)
    header, items = load_inrs(inrs_path)
    if val_path is not None:
        val_header, val_items = load_inrs(val_path)
        if inr_identity(val_header) != inr_identity(header):
            raise InputFileError(val_path, f"INRs differ from {inrs_path} (architecture, field or shared init)")
        train_rows = _train_rows(items)
        if len(train_rows) < 2:
            raise InputFileError(inrs_path, f"has {len(train_rows)} training INR(s) (split 'train' or unset); need at least 2")
        train_params = torch.from_numpy(np.stack([items[i].params for i in train_rows]))
        val_params = torch.from_numpy(np.stack([v.params for v in val_items[: settings.val_items]]))
    else:
        train_rows, val_rows = split_validation(items, settings.val_items, settings.seed)
        train_params = torch.from_numpy(np.stack([items[i].params for i in train_rows]))
        val_params = torch.from_numpy(np.stack([items[i].params for i in val_rows]))
    inrs_sha256 = sha256_file(inrs_path)
    run_settings = {k: v for k, v in settings.to_dict().items() if k != "time_limit"}  # a limit is per call
    fingerprint = {"config": config.to_dict(), "settings": run_settings, "inrs_sha256": inrs_sha256,
                   "val_sha256": sha256_file(val_path) if val_path is not None else None}
    torch.manual_seed(settings.seed)
    model = Inr2vec(config, header.spec).to(torch_device)
    trainer = Inr2vecTrainer(model, header, train_params.to(torch_device), val_params.to(torch_device), settings)
    run = run_training(trainer, out, "inr2vec", fingerprint, settings, progress, restart, "training inr2vec")
    payload = {
        "config": config.to_dict(),
        "inr": inr_identity(header),
        "settings": settings.to_dict(),
        "trained_on": {"path": str(Path(inrs_path).resolve()), "sha256": inrs_sha256},
        "state_dict": run.best_state,
        "history": run.history,
        "best_epoch": run.best_epoch,
    }
    save_checkpoint(out, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, payload)
    curves = out.with_suffix(".png")
    training_curves(run.history, curves, f"{out.name}: inr2vec {config.preset}", run.best_epoch)
    run.finish()
    return run.report(out, curves, train_items=len(train_rows), val_items=int(val_params.shape[0]))


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[Inr2vec, dict[str, Any]]:
    """An inr2vec checkpoint (loaded with ``weights_only=True``) and its metadata."""
    from nrtool.checkpoints import damaged, load_checkpoint

    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "inr2vec", "nrtool train inr2vec")
    try:
        config = Inr2vecConfig.from_dict(checkpoint["config"])
        model = Inr2vec(config, SirenSpec.from_dict(checkpoint["inr"]["architecture"]))
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "inr2vec", exc) from exc
    return model.to(device).eval(), checkpoint

def check_compatible(checkpoint: dict[str, Any], header: InrHeader, model_path: str | os.PathLike[str],
                     inrs_path: str | os.PathLike[str]) -> None:
    """Refuse INRs of another architecture, field or shared init than the model was trained on."""
    wanted, found = checkpoint["inr"], inr_identity(header)
    if wanted != found:
        differs = [key for key in ("architecture", "field", "init_sha256") if wanted.get(key) != found.get(key)]
        raise InputFileError(inrs_path, f"INRs differ from those {model_path} was trained on ({', '.join(differs)}): "
                             f"model wants {json.dumps(wanted['architecture'])}, field {wanted['field']}")
