"""PRep (thesis Sec. 4.3.1): a network's parameters as one (1, H, W) tensor, and back.

Every parameter in the network's order (``named_parameters``: weight, then bias, layer by
layer) is flattened into one vector and cut into rows of width ``W`` (a multiple of 8; rows run
across layer boundaries); the last row is zero-padded and zero rows are added until ``H`` is a
multiple of 4. Decoding reads the first ``P`` values back into the parameters' shapes, and
:func:`forward_with` runs the network with them through ``torch.func.functional_call``, so that
gradients reach whatever produced the PRep (NetSpace's decoder).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nrtool.errors import NrtoolError


def prep_shape(count: int, width: int) -> tuple[int, int, int]:
    """``(1, H, W)`` of a PRep holding ``count`` values at row width ``width``."""
    if width < 8 or width % 8:
        raise NrtoolError(f"PRep width must be a positive multiple of 8, got {width}")
    rows = math.ceil(count / width)
    return 1, 4 * math.ceil(rows / 4), width


def to_prep(model: nn.Module, width: int) -> torch.Tensor:
    """The PRep of ``model``'s parameters (detached, float32)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    shape = prep_shape(flat.numel(), width)
    out = torch.zeros(shape[1] * shape[2], dtype=torch.float32, device=flat.device)
    out[: flat.numel()] = flat
    return out.view(shape)


def from_prep(prep: torch.Tensor, model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` of ``model``'s parameters read from ``prep`` (differentiable w.r.t. it)."""
    flat = prep.reshape(-1)
    needed = sum(p.numel() for p in model.parameters())
    if flat.numel() < needed:
        raise NrtoolError(f"a PRep of {flat.numel()} values cannot hold this network's {needed} parameters")
    out, start = {}, 0
    for name, p in model.named_parameters():
        out[name] = flat[start: start + p.numel()].view_as(p)
        start += p.numel()
    return out


def forward_with(model: nn.Module, prep: torch.Tensor, inputs: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``model(inputs)`` with the parameters of ``prep`` (buffers, e.g. BN statistics, are the model's own)."""
    from torch.func import functional_call

    return functional_call(model, from_prep(prep, model), (inputs,), kwargs)
