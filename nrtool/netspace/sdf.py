"""NetSpace of INRs (thesis Sec. 4.4.3, App. B.4): a zoo made of an ``inrs`` artifact's SIRENs.

Each fitted INR (here: the SDF of one shape) is a network of the zoo: architecture ``siren``, its
flat parameters as weights (the ``inrs`` layout is PyTorch's ``named_parameters`` order), the
artifact's train / test split, and ``val_nets`` training INRs set aside for validation. NetSpace
then learns their space with ``L_pred = MSE(y_p, y_t)`` (Eq. 4.2): the predicted and the target
SIREN's fields (an sdf in normalised units: the INRs' sigmoid outputs mapped back, clipped at
0.1) at the same points of [-1, 1]^3, half of them where the target's surface is
(:func:`field_points`). Decoded INRs go back into an ``inrs``
artifact with the source items (names, sources, normalisation), so ``nrtool reconstruct --metrics``
measures each decoded shape against its own source.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.zoo import Zoo, ZooNet
from nrtool.errors import InputFileError

NAN_ACCURACY = (float("nan"),) * 3


def is_inr_zoo(zoo_images: dict[str, Any]) -> bool:
    return zoo_images.get("source") == "inrs"


def zoo_from_inrs(inrs_path: str | os.PathLike[str], val_nets: int, seed: int = 0) -> Zoo:
    """The INRs of an ``inrs`` artifact as a zoo (its test split kept; ``val_nets`` training INRs to val)."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.artifacts.inrs import load_inrs

    header, items = load_inrs(inrs_path)
    train = [i for i, item in enumerate(items) if item.split != "test"]
    if len(train) <= val_nets:
        raise InputFileError(inrs_path, f"has {len(train)} training INRs; need more than --val-nets {val_nets}")
    val = set(np.random.default_rng(seed).permutation(train)[:val_nets].tolist())
    spec = {"architecture": "siren", **header.spec.to_dict()}
    nets = [ZooNet(item.name, "test" if item.split == "test" else "val" if i in val else "train", "siren", spec,
                   np.asarray(item.params, dtype=np.float32), -1, -1, NAN_ACCURACY) for i, item in enumerate(items)]
    classes = sorted({item.class_name for item in items if item.class_name})
    path = str(Path(inrs_path).resolve())
    return Zoo(nets, {"source": "inrs", "path": path, "field": header.field}, sha256_file(inrs_path), classes,
               {"from_inrs": path, "val_nets": val_nets, "seed": seed})


def random_points(count: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """(count, 3) points uniform in [-1, 1]^3 (the normalised frame every INR was fitted in)."""
    return (torch.rand((count, 3), generator=generator) * 2 - 1).to(device)


def field_points(template: torch.nn.Module, prep: torch.Tensor, candidates: torch.Tensor, field: str) -> torch.Tensor:
    """Where two INRs' fields are compared: of ``4 N`` uniform candidates, the ``N / 2`` where the
    target's field is nearest its surface, and ``N / 2`` of the rest at random. Uniform points alone
    are almost all far from the surface, where an SDF INR's field is flat at its clip value: the
    shape would hardly count in the loss."""
    from nrtool.inr.fields import logits_to_field
    from nrtool.netspace.prep import forward_with

    n = len(candidates) // 4
    with torch.no_grad():
        values = logits_to_field(field, forward_with(template, prep, candidates))
    level = values - 0.5 if field == "occ" else values  # occupancy's surface is at 0.5, a distance's at 0
    near = level.abs().argsort()[: n // 2]
    rest = torch.ones(len(candidates), dtype=torch.bool, device=candidates.device)
    rest[near] = False
    others = rest.nonzero().flatten()[: n - n // 2]  # the candidates are uniform: any of the rest is random
    return candidates[torch.cat([near, others])]


def write_decoded_inrs(path: str | os.PathLike[str], source: str | os.PathLike[str], names: Sequence[str],
                       weights: Sequence[np.ndarray], command: list[str] | None = None) -> None:
    """An ``inrs`` artifact of decoded INRs, each with its source item's name, mesh and normalisation."""
    from dataclasses import replace

    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.inrs import load_inrs, write_inrs

    header, items = load_inrs(source)
    by_name = {item.name: item for item in items}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputFileError(source, f"holds no INR named {missing[0]!r} (decoded items keep their source's names)")
    decoded = [replace(by_name[n], params=np.asarray(w, dtype=np.float32), final_loss=float("nan"))
               for n, w in zip(names, weights)]
    write_inrs(path, header, decoded, provenance([source]), command)


def write_inr_zoo(inrs_path: str | os.PathLike[str], out: str | os.PathLike[str], val_nets: int, seed: int = 0,
                  command: list[str] | None = None) -> Zoo:
    """``netspace zoo --from-inrs``: the zoo of an ``inrs`` artifact, written to ``out``."""
    from nrtool.artifacts.core import check_output_file, output_lock, provenance
    from nrtool.artifacts.zoo import write_zoo

    out = check_output_file(out, "--out")
    with output_lock(out):
        zoo = zoo_from_inrs(inrs_path, val_nets, seed)
        write_zoo(out, zoo, provenance([inrs_path]), command)
    zoo.path = str(out)
    return zoo
