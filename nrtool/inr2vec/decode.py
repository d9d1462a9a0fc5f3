"""``decode`` and ``interpolate``: embeddings -> discrete shapes through the implicit decoder.

The decoder's output is turned into shapes with the very code ``reconstruct`` uses for INRs
(udf -> points, sdf -> mesh, occ -> voxels), so decoded and fitted shapes are comparable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.core import ItemInfo, atomic_folder, check_output_folder
from nrtool.artifacts.embeddings import Embeddings, load_embeddings
from nrtool.errors import InputFileError
from nrtool.inr.fields import logits_to_field
from nrtool.inr.reconstruction import (
    ReconstructionSettings,
    discretise,
    write_reconstruction,
)
from nrtool.progress import Progress, SilentProgress


@dataclass
class DecodedShape:
    name: str
    path: str | None
    size: int
    points: np.ndarray | None  # a few thousand points on the shape, for pictures


def decoded_field(model: Any, embedding: torch.Tensor, field: str) -> Any:
    """``f(points (M,3)) -> field values (M,)`` of the decoder for one embedding (D,)."""
    row = embedding.reshape(1, -1)

    def evaluate(points: torch.Tensor) -> torch.Tensor:
        return logits_to_field(field, model.decoder(row, points.unsqueeze(0))[0])  # type: ignore[arg-type]

    return evaluate


def _load(model_path: str | os.PathLike[str], embeddings_path: str | os.PathLike[str], device: str) -> tuple[Any, Embeddings, str, torch.device]:
    from nrtool.device import resolve_device
    from nrtool.inr2vec.train import load_model

    torch_device = resolve_device(device)
    model, checkpoint = load_model(model_path, torch_device)
    embeddings = load_embeddings(embeddings_path)
    if embeddings.encoder != "inr2vec":
        raise InputFileError(embeddings_path, f"holds {embeddings.encoder!r} vectors, not inr2vec embeddings: "
                             f"{model_path} cannot decode them")
    dim = model.config.embedding_dim
    if embeddings.vectors.shape[1] != dim:
        raise InputFileError(embeddings_path, f"holds {embeddings.vectors.shape[1]}-d embeddings, {model_path} decodes {dim}-d ones")
    field = checkpoint["inr"]["field"]
    if embeddings.field and embeddings.field != field:
        raise InputFileError(embeddings_path, f"embeddings of {embeddings.field!r} INRs, {model_path} decodes {field!r}")
    return model, embeddings, field, torch_device


def decode_rows(model: Any, vectors: np.ndarray, infos: Sequence[ItemInfo], field: str, folder: Path, final: Path,
                 settings: ReconstructionSettings, device: torch.device, progress: Progress, label: str) -> list[DecodedShape]:
    """Decode each vector into ``folder`` (the staging folder of ``final``); paths name ``final``."""
    results = []
    with progress.task(label, len(infos), "shapes") as advance:
        for vector, info in zip(vectors, infos):
            fn = decoded_field(model, torch.from_numpy(np.asarray(vector, dtype=np.float32)).to(device), field)
            with torch.no_grad():
                recon = discretise(field, fn, settings, device)
            written = write_reconstruction(recon, info, folder, settings) if recon.size else None  # type: ignore[arg-type]
            path = str(final / written.name) if written is not None else None
            results.append(DecodedShape(info.name, path, recon.size, recon.comparison_points()))
            advance()
    return results


def decode_embeddings(
    embeddings_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: ReconstructionSettings = ReconstructionSettings(),
    names: Sequence[str] | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    force: bool = False,
) -> list[DecodedShape]:
    """Decode embeddings into shapes (in source units when the items carry their transform).

    ``out_dir`` is written atomically: it must be new or empty, or (with ``force``) a folder
    nrtool wrote, which is then replaced.
    """
    model, embeddings, field, torch_device = _load(model_path, embeddings_path, device)
    rows = list(range(len(embeddings.items)))
    if names:
        index = {name: i for i, name in enumerate(embeddings.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise InputFileError(embeddings_path, f"has no item named {missing[0]!r}")
        rows = [index[n] for n in names]
    check_output_folder(out_dir, force)
    with atomic_folder(out_dir, force) as staging:
        return decode_rows(model, embeddings.vectors[rows], [embeddings.items[i] for i in rows], field, staging,
                            Path(out_dir), settings, torch_device, progress or SilentProgress(), f"decoding {field}")


def interpolate_embeddings(
    embeddings_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    start: str,
    end: str,
    steps: int,
    out_dir: str | os.PathLike[str],
    settings: ReconstructionSettings = ReconstructionSettings(source_units=False),
    device: str = "auto",
    progress: Progress | None = None,
    force: bool = False,
) -> list[DecodedShape]:
    """Shapes decoded at ``steps`` evenly spaced points from one embedding to another
    (normalised frame), plus ``strip.png`` showing them side by side (``out_dir`` as for
    :func:`decode_embeddings`)."""
    if steps < 2:
        raise InputFileError(embeddings_path, "--steps must be at least 2 (the two end points)")
    model, embeddings, field, torch_device = _load(model_path, embeddings_path, device)
    index = {name: i for i, name in enumerate(embeddings.names)}
    for name in (start, end):
        if name not in index:
            raise InputFileError(embeddings_path, f"has no item named {name!r}")
    a, b = embeddings.vectors[index[start]], embeddings.vectors[index[end]]
    weights = np.linspace(0.0, 1.0, steps)
    vectors = np.stack([(1 - w) * a + w * b for w in weights])
    infos = [ItemInfo(f"interp_{k:02d}", None, None, "", k, np.zeros(3), 1.0) for k in range(steps)]
    settings = dataclasses.replace(settings, source_units=False)
    from nrtool.plots import point_strip

    check_output_folder(out_dir, force)
    with atomic_folder(out_dir, force) as staging:
        results = decode_rows(model, vectors, infos, field, staging, Path(out_dir), settings, torch_device,
                               progress or SilentProgress(), f"interpolating {start} -> {end}")
        point_strip([r.points for r in results], [f"{w:.2f}" for w in weights], staging / "strip.png",
                    title=f"{start} -> {end}")
    return results
