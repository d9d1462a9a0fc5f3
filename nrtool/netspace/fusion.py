"""Batch-norm fusion (thesis App. B.5, Eq. B.1-B.7): each conv + BN pair becomes one biased conv.

In eval mode ``BN(conv(x)) = W_BN (W_conv * x + b_conv) + b_BN`` with ``W_BN = diag(γ / √(σ² + ε))``
and ``b_BN = β − γ μ / √(σ² + ε)``: a conv with weight ``W_BN W_conv`` and bias ``W_BN b_conv + b_BN``.
NetSpace builds PReps of fused networks: fewer parameters, none of them running statistics.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A biased conv equal to ``bn(conv(x))`` with ``bn`` in eval mode (its running statistics)."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device)


def fuse_bn(model: nn.Module) -> nn.Module:
    """A fused copy of ``model`` (which lists its pairs in ``conv_bn_pairs()``), in eval mode; the
    outputs equal the original's in eval mode up to float rounding."""
    model = copy.deepcopy(model).eval()
    pairs = getattr(model, "conv_bn_pairs", None)  # a network without any (an INR's MLP) stays as it is
    for parent, conv_name, bn_name in list(pairs() if pairs is not None else ()):
        # getattr/setattr reach a Sequential's children by their names ("0", "1") too.
        setattr(parent, conv_name, fuse_conv_bn(getattr(parent, conv_name), getattr(parent, bn_name)))
        setattr(parent, bn_name, nn.Identity())
    return model


def fuse_checkpoint(path: str, out: str, command: list[str] | None = None, check_inputs: int = 8,
                    size: int = 32) -> dict:
    """``nrtool fuse-bn``: load, fuse, compare outputs on ``check_inputs`` random images, write ``out``."""
    from pathlib import Path

    from nrtool.artifacts.core import check_output_file, sha256_file
    from nrtool.errors import InputFileError, NrtoolError
    from nrtool.netspace.architectures import load_net, parameter_count, save_net

    check_output_file(out, "--out")
    model, checkpoint = load_net(path)
    if checkpoint.get("fused"):
        raise InputFileError(path, "is fused already")
    fused = fuse_bn(model)
    spec = checkpoint["spec"]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((check_inputs, int(spec.get("in_channels", 3)), size, size), generator=generator)
    with torch.no_grad():
        difference = float((model(x) - fused(x)).abs().max())
    if not difference < 1e-3:
        raise NrtoolError(f"{path}: the fused network's outputs differ by {difference:.3g} (not written)")
    extra = {k: v for k, v in checkpoint.items() if k not in ("format", "version", "spec", "state_dict")}
    save_net(out, fused, spec, {**extra, "fused": True, "fused_from": {"path": str(Path(path).resolve()),
                                                                        "sha256": sha256_file(path)},
                                "command": command or []})
    return {"out": str(out), "parameters": parameter_count(fused), "parameters_before": parameter_count(model),
            "max_difference": difference}
