"""``encode``: INRs -> embeddings, batched: with a trained inr2vec or ProbeGen encoder, or as their
raw weights (the weight-space baseline). inr2vec embeddings can then be refined through the frozen
decoder towards each INR's own field (:func:`refine_embeddings`, ``encode --refine``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from nrtool.artifacts.core import provenance
from nrtool.artifacts.embeddings import Embeddings, write_embeddings
from nrtool.artifacts.inrs import InrHeader, InrItem, load_inrs
from nrtool.progress import Progress, SilentProgress

if TYPE_CHECKING:
    from nrtool.inr.fields import FieldName
    from nrtool.inr.siren import SirenSpec
    from nrtool.inr2vec.models import Inr2vec
    from nrtool.nn.descent import Descent

#: Evaluations of the held-out field loss during a refinement (the kept embedding is the best one).
REFINE_EVALUATIONS = 10


def _in_batches(items: list[InrItem], batch: int, progress: Progress,
                embed: Callable[[np.ndarray], np.ndarray], label: str = "encoding INRs") -> np.ndarray:
    """``embed`` (B, P) parameters -> (B, D) vectors over all items, ``batch`` at a time, with progress."""
    vectors = []
    with progress.task(label, len(items), "INRs") as advance:
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            vectors.append(embed(np.stack([item.params for item in chunk])))
            advance(len(chunk))
    return np.concatenate(vectors)


def _encode_file(inrs_path: str | os.PathLike[str], model_path: str | os.PathLike[str], out: str | os.PathLike[str],
                 encoder: str, embed_for: Callable[[InrHeader], Callable[[np.ndarray], np.ndarray]], batch: int,
                 progress: Progress | None, command: list[str] | None, label: str = "encoding INRs") -> Embeddings:
    """Read the INRs, embed them in batches and write the ``embeddings`` artifact. ``embed_for``
    checks the INRs' header against the (already loaded) model and returns the batch embedder."""
    header, items = load_inrs(inrs_path)
    embed = embed_for(header)
    vectors = _in_batches(items, batch, progress or SilentProgress(), embed, label)
    embeddings = Embeddings(vectors, list(items), encoder=encoder, field=header.field)
    write_embeddings(out, embeddings, inputs=provenance([inrs_path, model_path]), command=command)
    return embeddings


def encode_inrs(
    inrs_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    device: str = "auto",
    batch: int = 64,
    progress: Progress | None = None,
    command: list[str] | None = None,
    refine: int = 0,
    refine_lr: float = 1e-2,
    seed: int = 0,
) -> Embeddings:
    """Embed every INR of an ``inrs`` artifact and write an ``embeddings`` artifact.

    ``refine`` > 0 then moves each embedding for that many steps through the frozen decoder
    towards its INR's own field (:func:`refine_embeddings`).
    """
    from nrtool.device import resolve_device
    from nrtool.inr2vec.train import check_compatible, load_model
    from nrtool.nn.descent import check_descent

    if refine:
        check_descent(refine, refine_lr)
    torch_device = resolve_device(device)
    model, checkpoint = load_model(model_path, torch_device)
    for parameter in model.parameters():  # encoding and refining move no weight
        parameter.requires_grad_(False)
    queries = int(checkpoint["settings"]["queries"])

    def embed_for(header: InrHeader) -> Callable[[np.ndarray], np.ndarray]:
        check_compatible(checkpoint, header, model_path, inrs_path)

        def embed(params: np.ndarray) -> np.ndarray:
            flat = torch.from_numpy(params).to(torch_device)
            if refine:
                return refine_embeddings(model, flat, header.spec, header.field, refine, refine_lr,  # type: ignore[arg-type]
                                         queries, seed).embeddings.cpu().numpy()
            with torch.no_grad():
                return model.encode(flat).cpu().numpy()

        return embed

    label = f"encoding INRs and refining {refine} steps" if refine else "encoding INRs"
    return _encode_file(inrs_path, model_path, out, "inr2vec", embed_for, batch, progress, command, label)


def crosses_level(field: FieldName, logits: torch.Tensor) -> torch.Tensor:
    """Per row of logits (B, M): does the field take values on both sides of its surface's level
    (sdf 0, occupancy 0.5)? Always true for udf, whose surface is a minimum, not a crossing."""
    from nrtool.inr.fields import logits_to_field

    if field == "udf":
        return torch.ones(len(logits), dtype=torch.bool, device=logits.device)
    values = logits_to_field(field, logits)
    level = 0.5 if field == "occ" else 0.0
    return (values.amin(1) < level) & (values.amax(1) > level)


def refine_embeddings(model: Inr2vec, params: torch.Tensor, spec: SirenSpec, field: FieldName, steps: int, lr: float,
                      queries: int, seed: int = 0) -> Descent:
    """inr2vec embeddings of ``params`` (B, P), refined: the decoder frozen, each embedding descends
    the field loss of ``train inr2vec`` between its decoded field and its INR's own.

    Not in the thesis. The row encoder maps INRs of one init to a few directions (README,
    issue 18's diagnosis: decoded tori 0.156 from the encoder, 0.028 from free codes), so the
    encoder's output is the start of a DeepSDF-style test-time optimisation, as NetSpace's LSO of
    INRs does. Queries are drawn as in training (half near the INR's surface); the kept embedding
    per INR is the one of lowest loss at ``queries`` held-out queries drawn the same way, checked
    :data:`REFINE_EVALUATIONS` times, among those whose field still crosses its surface's level
    there (:func:`crosses_level`; the start is kept otherwise). Each INR moves as if alone
    (per-INR losses are summed).
    """
    from nrtool.inr.fields import field_loss
    from nrtool.inr2vec.train import sample_queries
    from nrtool.nn.descent import descend

    generator = torch.Generator().manual_seed(seed)
    check_queries, check_labels = sample_queries(params, spec, field, queries, torch.Generator().manual_seed(seed + 1))

    def loss_of(embeddings: torch.Tensor) -> torch.Tensor:
        points, labels = sample_queries(params, spec, field, queries, generator)
        return field_loss(field, model.decoder(embeddings, points), labels).sum()

    def evaluate(embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = model.decoder(embeddings, check_queries)
        loss = field_loss(field, logits, check_labels)
        # A thin part (a torus' tube) can lower the loss by fading to a field that no longer
        # crosses its level set: measured on a held-out torus, a 48^3 decode then had no surface.
        # Such a step is never kept.
        return {"score": torch.where(crosses_level(field, logits), -loss, -torch.inf), "field_loss": loss}

    with torch.no_grad():
        start = model.encode(params)
    return descend(start, loss_of, evaluate, steps, lr, max(1, steps // REFINE_EVALUATIONS), lambda _: None)


def raw_weight_vectors(
    inrs_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    command: list[str] | None = None,
) -> Embeddings:
    """Write every INR's flattened parameters (all layers, the ``inrs`` layout) as its vector.

    The baseline any weight-space encoder must beat: with one shared initialisation, parameter
    ``j`` plays the same role in every INR, so a classifier or a nearest-neighbour search can read
    the raw vectors directly (encoder ``raw`` in the artifact).
    """
    header, items = load_inrs(inrs_path)
    vectors = np.stack([item.params for item in items]).astype(np.float32)
    embeddings = Embeddings(vectors, list(items), encoder="raw", field=header.field)
    write_embeddings(out, embeddings, inputs=provenance([inrs_path]), command=command)
    return embeddings


def probegen_embeddings(
    inrs_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    device: str = "auto",
    batch: int = 64,
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> Embeddings:
    """Embed every INR with a ProbeGen encoder (:mod:`nrtool.probegen.model`; encoder ``probegen``).

    The encoder reads the INRs' fields, so it needs INRs of the field it was trained on, of any
    architecture or initialisation.
    """
    from nrtool.device import resolve_device
    from nrtool.errors import InputFileError
    from nrtool.probegen.model import load_probegen, probegen_vectors

    torch_device = resolve_device(device)
    encoder = load_probegen(model_path, torch_device)

    def embed_for(header: InrHeader) -> Callable[[np.ndarray], np.ndarray]:
        if header.field != encoder.field:
            raise InputFileError(inrs_path, f"holds {header.field} INRs, but {model_path} reads {encoder.field} ones")
        return lambda params: probegen_vectors(encoder, params, header.spec, torch_device)

    return _encode_file(inrs_path, model_path, out, "probegen", embed_for, batch, progress, command)
