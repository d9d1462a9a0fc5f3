"""``encode``: INRs -> embeddings, batched: with a trained inr2vec or ProbeGen encoder, or as their
raw weights (the weight-space baseline)."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from nrtool.artifacts.core import provenance
from nrtool.artifacts.embeddings import Embeddings, write_embeddings
from nrtool.artifacts.inrs import InrHeader, InrItem, load_inrs
from nrtool.progress import Progress, SilentProgress


def _in_batches(items: list[InrItem], batch: int, progress: Progress,
                embed: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``embed`` (B, P) parameters -> (B, D) vectors over all items, ``batch`` at a time, with progress."""
    vectors = []
    with progress.task("encoding INRs", len(items), "INRs") as advance:
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            vectors.append(embed(np.stack([item.params for item in chunk])))
            advance(len(chunk))
    return np.concatenate(vectors)


def _encode_file(inrs_path: str | os.PathLike[str], model_path: str | os.PathLike[str], out: str | os.PathLike[str],
                 encoder: str, embed_for: Callable[[InrHeader], Callable[[np.ndarray], np.ndarray]], batch: int,
                 progress: Progress | None, command: list[str] | None) -> Embeddings:
    """Read the INRs, embed them in batches and write the ``embeddings`` artifact. ``embed_for``
    checks the INRs' header against the (already loaded) model and returns the batch embedder."""
    header, items = load_inrs(inrs_path)
    embed = embed_for(header)
    vectors = _in_batches(items, batch, progress or SilentProgress(), embed)
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
) -> Embeddings:
    """Embed every INR of an ``inrs`` artifact and write an ``embeddings`` artifact."""
    from nrtool.device import resolve_device
    from nrtool.inr2vec.train import check_compatible, load_model

    torch_device = resolve_device(device)
    model, checkpoint = load_model(model_path, torch_device)

    def embed_for(header: InrHeader) -> Callable[[np.ndarray], np.ndarray]:
        check_compatible(checkpoint, header, model_path, inrs_path)

        def embed(params: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model.encode(torch.from_numpy(params).to(torch_device)).cpu().numpy()

        return embed

    return _encode_file(inrs_path, model_path, out, "inr2vec", embed_for, batch, progress, command)


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
