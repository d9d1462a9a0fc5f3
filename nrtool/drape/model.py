"""The draping network's learnt displacement ``Δx_ref = B(θ, β) · M(x, z) · out_scale`` (Eq. 2.6).

One :class:`DisplacementField` per garment category (``top``, ``bottom``), and one more of the
same form for the intersection solver (Eq. 2.9), whose ``M`` reads both garments' codes. The
factorisation is what makes a sequence cheap: ``M(x, z)`` depends only on the garment, so it is
computed once per garment; per frame only ``B(θ, β)`` (one small MLP on 82 numbers) and the
product run (see :mod:`nrtool.drape.sequence`).

A draping checkpoint is self-contained: it embeds the skinning field it was trained with (the
body's W and Δx) and the garment network whose codes it drapes, so ``nrtool drape`` needs only
the codes, a motion and this file (and the body model, which is licensed and never copied).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.drape.config import KINDS, NUM_BETAS, POSE_DIM, DrapeConfig
from nrtool.nn.blocks import positional_encoding

CHECKPOINT_FORMAT = "nrtool-drape"
CHECKPOINT_VERSION = 1


def leaky_mlp(in_width: int, hidden: int, layers: int, out_width: int) -> nn.Sequential:
    """``layers`` Linear layers, ``hidden`` wide except the last, LeakyReLU between them.

    The last layer starts at zero, so an untrained field displaces nothing: training starts
    from the plain skinning of the garment (W and Δx) and learns only what physics asks for.
    """
    modules: list[nn.Module] = []
    width = in_width
    for _ in range(layers - 1):
        modules += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    last = nn.Linear(width, out_width)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    modules.append(last)
    return nn.Sequential(*modules)


class DisplacementField(nn.Module):
    """``Δx_ref(x, z, θ, β)`` of one category: ``(N, 3)`` canonical points -> ``(B, N, 3)`` metres.

    ``code_dim``: width of ``z`` (32 for one garment; 64 for the intersection solver, which
    reads ``[z_bottom, z_top]``).
    """

    def __init__(self, config: DrapeConfig, code_dim: int) -> None:
        super().__init__()
        self.config = config
        self.code_dim = code_dim
        encoded = 3 + 6 * config.pe_frequencies
        self.body_net = leaky_mlp(POSE_DIM + NUM_BETAS, config.hidden, config.layers, config.basis)
        self.garment_net = leaky_mlp(encoded + code_dim, config.hidden, config.layers, config.basis * 3)
        # B's last layer must not start at zero too: with both factors zero no gradient reaches
        # either. M's zero start already makes the initial displacement zero.
        nn.init.normal_(self.body_net[-1].weight, std=0.1)
        nn.init.normal_(self.body_net[-1].bias, std=0.1)

    def garment_matrix(self, points: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """``M(x, z)``: ``(N, 3)`` points, ``(C,)`` code -> ``(N, basis, 3)`` (once per garment)."""
        encoded = positional_encoding(points * self.config.pe_scale, self.config.pe_frequencies)
        features = torch.cat([encoded, code[None].expand(len(points), -1)], dim=-1)
        return self.garment_net(features).view(len(points), self.config.basis, 3)

    def body_embedding(self, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """``B(θ, β)``: ``(B, 72)`` poses, ``(B, 10)`` betas -> ``(B, basis)`` (once per frame)."""
        return self.body_net(torch.cat([poses, betas], dim=-1))

    def combine(self, matrix: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """``(N, basis, 3)`` and ``(B, basis)`` -> ``(B, N, 3)`` displacements in metres."""
        return torch.einsum("bk,nkc->bnc", embedding, matrix) * self.config.out_scale

    def forward(self, points: torch.Tensor, code: torch.Tensor, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        return self.combine(self.garment_matrix(points, code), self.body_embedding(poses, betas))


def pad_betas(betas: Any, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(B, k)``, ``(k,)`` or None -> ``(B, 10)`` float32: what the networks read (zeros beyond k)."""
    out = torch.zeros((batch, NUM_BETAS), dtype=torch.float32, device=device)
    if betas is None:
        return out
    b = torch.as_tensor(betas, dtype=torch.float32, device=device)
    if b.ndim == 1:
        b = b[None].expand(batch, -1)
    k = min(b.shape[1], NUM_BETAS)
    out[:, :k] = b[:, :k]
    return out


def posed_bodies(body: Any, poses: torch.Tensor, betas: torch.Tensor, trans: torch.Tensor | None = None) -> Any:
    """``body.forward`` for the networks' padded ``betas (B, 10)``: the body reads its own first
    ``num_betas`` of them (none for a body without a shape space)."""
    return body.forward(poses, betas[:, : body.num_betas] if body.num_betas else None, trans)


def poses_digest(poses: np.ndarray) -> str:
    """sha256 of a pose array's float32 values: what a training run's fingerprint records of its poses."""
    return hashlib.sha256(np.ascontiguousarray(poses, dtype=np.float32).tobytes()).hexdigest()


@dataclass
class DrapingModel:
    """A loaded draping checkpoint: the field, its kind and everything it was trained with."""

    kind: str  # "top" | "bottom" | "intersection"
    field: DisplacementField
    checkpoint: dict[str, Any]
    path: str

    @property
    def body(self) -> dict[str, Any]:
        """What the skinning checkpoint records of the body it was fitted to (``identity``, ``sha256``,
        ``vertices``, ``name``, ...), plus ``path``: where that body file was when this model was trained."""
        return self.checkpoint["body"]


def save_draping(path: str | os.PathLike[str], kind: str, field: DisplacementField, extra: dict[str, Any]) -> None:
    """Write a draping checkpoint (``extra``: skinning, garment, body, training, history ...)."""
    from nrtool.checkpoints import save_checkpoint

    state = {k: v.detach().cpu() for k, v in field.state_dict().items()}
    save_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                    {"kind": kind, "config": field.config.to_dict(), "code_dim": field.code_dim, "state_dict": state,
                     **extra})


def load_draping(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> DrapingModel:
    """A draping checkpoint (``weights_only=True``) in eval mode; one line naming the file if not."""
    from nrtool.checkpoints import damaged, load_checkpoint

    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "draping", "nrtool train drape")
    try:
        kind = checkpoint["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        field = DisplacementField(DrapeConfig.from_dict(checkpoint["config"]), int(checkpoint["code_dim"]))
        field.load_state_dict(checkpoint["state_dict"])
        for key in ("skinning", "body"):
            if key not in checkpoint:
                raise KeyError(key)
        if kind != "intersection" and "garment" not in checkpoint:
            raise KeyError("garment")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "draping", exc) from exc
    return DrapingModel(kind, field.to(device).eval(), checkpoint, str(path))
