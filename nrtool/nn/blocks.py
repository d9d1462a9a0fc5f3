"""Small building blocks over batched tensors (shapes in each docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn


def positional_encoding(points: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(..., 3) -> (..., 3 + 6 * frequencies): the point, then sin/cos at 2^k * pi.

    The NeRF-style encoding inr2vec's implicit decoder and DrapeNet's UDF decoder both read
    (10 frequencies: 63 values).
    """
    scales = (2.0 ** torch.arange(frequencies, device=points.device, dtype=points.dtype)) * math.pi
    angles = points.unsqueeze(-1) * scales  # (..., 3, F)
    return torch.cat([points, torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2)], dim=-1)


def linear_bn_relu(in_width: int, widths: Sequence[int]) -> list[nn.Module]:
    """``[Linear, BatchNorm1d, ReLU]`` per width, as a flat list (wrap it in ``nn.Sequential``).

    A flat list keeps the parameter names of the models built with it (``0.weight``,
    ``1.running_mean``, ...), so their checkpoints stay loadable.
    """
    layers: list[nn.Module] = []
    previous = in_width
    for width in widths:
        layers += [nn.Linear(previous, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        previous = width
    return layers


def split_linear(layer: nn.Linear, per_query: torch.Tensor, per_item: torch.Tensor) -> torch.Tensor:
    """``layer(cat([per_query, per_item expanded over the queries], -1))`` without building the copy.

    ``per_query`` (B, M, Q), ``per_item`` (B, I) with ``Q + I = layer.in_features`` -> (B, M, out).
    A decoder conditioned on a code (an INR's embedding) sees the same code at each of its M
    queries: its share of the product is computed once per item and broadcast instead of once
    per query on a (B, M, I) copy.
    """
    split = per_query.shape[-1]
    query_part = per_query @ layer.weight[:, :split].T
    item_part = per_item @ layer.weight[:, split:].T + layer.bias  # (B, out), once per item
    return query_part + item_part.unsqueeze(1)


def recalibrate_batchnorm(model: nn.Module, forward_passes: Callable[[], None]) -> None:
    """Replace every BatchNorm's running statistics by exact averages under the current weights.

    ``forward_passes`` runs the model on a few training batches (no gradients needed). With few
    optimisation steps per epoch the exponential running averages (momentum 0.1) trail the
    weights far behind, and eval-mode predictions -- what is validated and saved -- differ from
    what training sees; re-estimating them with a cumulative average ("precise BN") fixes that.
    The model is left in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the passes below
    model.train()
    with torch.no_grad():
        forward_passes()
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
