"""Networks of a NetSpace zoo, and their checkpoint.

LeNetLike (two 5x5 convs of stride 2 without padding, 3 -> 6 -> 16 channels, then 400 -> 120 -> 84
-> classes) and VanillaCNN (five 3x3 convs, :data:`VANILLA_CONVS`, then one linear layer), both
with LeakyReLU and no BN, as the official NetSpace code builds them for 32x32 images: 62,006 and
68,818 parameters at 10 classes (Tab. B.1). The CIFAR ResNets of He et al. (depth 6n + 2: three stages of n basic blocks, 16/32/64 channels
at ``width`` 16): a block is conv-BN-ReLU-conv-BN plus a shortcut, a 1x1 conv + BN where the shape
changes (the official NetSpace code's option B), then ReLU; global average pooling and one
linear layer. Fused (:mod:`nrtool.netspace.fusion`) at width 16 and 10 classes, ResNet-8/32/56
have 77,706 / 465,674 / 853,642 parameters, the thesis' Tab. B.1.

Every architecture lists its conv/BN pairs (:meth:`conv_bn_pairs`), which is what BN fusion
needs, and its specification (``spec``), which is what a checkpoint records to rebuild it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

CHECKPOINT_FORMAT = "nrtool-netspace-net"
CHECKPOINT_VERSION = 1
ARCHITECTURES = ("lenetlike", "vanillacnn", "resnet", "siren")
#: The official code's VanillaCNN for 32x32 inputs: (channels, stride) of its 3x3 convs (padding 1).
VANILLA_CONVS = ((8, 2), (8, 1), (32, 2), (64, 1), (64, 2))


class LeNetLike(nn.Module):
    """LeNet-5 without pooling: the convs stride by 2 instead (32x32 in -> 5x5x16)."""

    def __init__(self, classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.spec = {"architecture": "lenetlike", "classes": classes, "in_channels": in_channels}
        self.conv1 = nn.Conv2d(in_channels, 6, 5, stride=2)
        self.conv2 = nn.Conv2d(6, 16, 5, stride=2)
        self.fc1, self.fc2, self.fc3 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84), nn.Linear(84, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = nn.functional.leaky_relu
        x = act(self.conv2(act(self.conv1(x))))
        return self.fc3(act(self.fc2(act(self.fc1(x.flatten(1))))))

    def conv_bn_pairs(self) -> Iterator[tuple[nn.Module, str, str]]:
        return iter(())


class VanillaCNN(nn.Module):
    """Plain 3x3 convs (:data:`VANILLA_CONVS`) and one linear layer on the flattened 4x4x64 map."""

    def __init__(self, classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.spec = {"architecture": "vanillacnn", "classes": classes, "in_channels": in_channels}
        convs, channels, size = [], in_channels, 32
        for out_channels, stride in VANILLA_CONVS:
            convs.append(nn.Conv2d(channels, out_channels, 3, stride=stride, padding=1))
            channels, size = out_channels, size // stride
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(channels * size * size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x))
        return self.fc(x.flatten(1))

    def conv_bn_pairs(self) -> Iterator[tuple[nn.Module, str, str]]:
        return iter(())


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))

    def conv_bn_pairs(self) -> Iterator[tuple[nn.Module, str, str]]:
        yield self, "conv1", "bn1"
        yield self, "conv2", "bn2"
        if len(self.shortcut):
            yield self.shortcut, "0", "1"


class CifarResNet(nn.Module):
    """ResNet-(6n + 2) for ``in_channels`` x H x W images and ``classes`` outputs."""

    def __init__(self, depth: int = 8, classes: int = 10, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (8, 14, 20, 32, 56, ...), got {depth}")
        self.spec = {"architecture": "resnet", "depth": depth, "classes": classes, "width": width,
                     "in_channels": in_channels}
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers: list[nn.Module] = []
        channels = width
        for stage, out_channels in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                layers.append(BasicBlock(channels, out_channels, 2 if stage > 0 and block == 0 else 1))
                channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(out.mean(dim=(2, 3)))

    def conv_bn_pairs(self) -> Iterator[tuple[nn.Module, str, str]]:
        yield self, "conv1", "bn1"
        for block in self.layers:
            yield from block.conv_bn_pairs()


def build(spec: dict[str, Any]) -> nn.Module:
    """The network a ``spec`` describes (``architecture`` and its sizes)."""
    kind = spec.get("architecture")
    if kind == "lenetlike":
        return LeNetLike(int(spec.get("classes", 10)), int(spec.get("in_channels", 3)))
    if kind == "vanillacnn":
        return VanillaCNN(int(spec.get("classes", 10)), int(spec.get("in_channels", 3)))
    if kind == "resnet":
        return CifarResNet(int(spec["depth"]), int(spec.get("classes", 10)), int(spec.get("width", 16)),
                           int(spec.get("in_channels", 3)))
    if kind == "siren":  # an INR of an `inrs` artifact (NetSpace's SDF experiment, Sec. 4.4.3)
        from nrtool.artifacts.architecture import SirenSpec
        from nrtool.inr.siren import Siren

        return Siren(SirenSpec.from_dict(spec))
    raise ValueError(f"unknown architecture {kind!r} (known: {', '.join(ARCHITECTURES)})")


def net_from_weights(spec: dict[str, Any], weights: Any) -> nn.Module:
    """The fused network of ``spec`` holding the flat ``weights`` (``named_parameters`` order), in
    eval mode: how a zoo's stored networks and decoded PReps become plain modules."""
    from nrtool.errors import NrtoolError
    from nrtool.netspace.fusion import fuse_bn

    model = fuse_bn(build(spec))
    flat = torch.as_tensor(weights, dtype=torch.float32).reshape(-1)
    count = parameter_count(model)
    if flat.numel() != count:
        raise NrtoolError(f"{spec.get('architecture')}: {flat.numel()} weights given, the network has {count}")
    torch.nn.utils.vector_to_parameters(flat, model.parameters())
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_net(path: str | os.PathLike[str], model: nn.Module, spec: dict[str, Any], extra: dict[str, Any]) -> None:
    """A checkpoint plain PyTorch can read: ``spec`` (to rebuild with :func:`build`), ``fused``,
    ``state_dict`` and ``extra`` (accuracy, provenance)."""
    from nrtool.checkpoints import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {"spec": spec, "state_dict": state, **extra})


def load_net(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """A zoo network (fused or not) in eval mode, and its checkpoint; one line naming the file if not."""
    from nrtool.checkpoints import damaged, load_checkpoint

    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "NetSpace network", "nrtool netspace zoo")
    try:
        model = build(checkpoint["spec"])
        if checkpoint.get("fused"):
            from nrtool.netspace.fusion import fuse_bn

            model = fuse_bn(model)  # the fused layout; the checkpoint's values are loaded next
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "NetSpace network", exc) from exc
    return model.to(device).eval(), checkpoint
