"""``--device auto|cpu|cuda`` resolution shared by every computing command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nrtool.errors import NrtoolError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def check_device_name(name: str) -> str:
    """Refuse an unknown ``--device`` before anything imports torch."""
    if name not in DEVICES and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise NrtoolError(f"unknown device {name!r}; choose auto, cpu or cuda (or cuda:N)")
    return name


def resolve_device(name: str) -> "torch.device":
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NrtoolError("--device cuda: no CUDA device is available on this machine")
    return torch.device(name)
