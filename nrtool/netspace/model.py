"""NetSpace's encoder and decoder (thesis Sec. 4.3, Fig. 4.1), as the authors' code builds them.

- :class:`PRepEncoder`: two "horizontal" convs (1 -> h -> 2h, kernel (1, 3), stride (1, 2)),
  max over the width; two "vertical" convs (2h -> 4h -> E, kernel (3, 1)), max over the height;
  LeakyReLU after each, no BN. Any PRep height and width give the same ``E`` values.
- :class:`PRepDecoder`: the embedding as a (1, s, s) map (``E = s^2``); convs that grow the
  channels, each followed by a plain reshape that trades channels for space, until (1, H, W);
  then a learned per-element scale (init N(0, 1) * 1e-3) and bias (init U(0, 1) * 1e-2). The
  thesis found that scale needed for deep targets, whose neighbouring PRep values belong to
  distant layers. The reshapes are those of the official code made general in H and W:
  (K1, s/2, s/2) -> (C, H, s^2/2) -> conv stride 2 -> (W/8, H/2, s^2/4) -> (s^2/8, H/2, W/4)
  -> conv stride 2 -> (C3, H/4, W/8) -> conv -> (32, H/4, W/8) -> (1, H, W), K1 = 2 C H.
- :class:`ClassIdHead` (multi-architecture, Eq. 4.4): conv 1 -> 10 (3x3, stride 2) on the
  (1, s, s) embedding, LeakyReLU, one linear layer to the ``A`` architecture scores.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import leaky_relu

from nrtool.errors import NrtoolError


def embedding_side(embedding: int) -> int:
    """``s`` with ``s * s == embedding`` (a multiple of 4), or a clear error."""
    side = math.isqrt(embedding)
    if side * side != embedding or side % 4:
        raise NrtoolError(f"the embedding size must be the square of a multiple of 4 (256, 1024, 4096), got {embedding}")
    return side


class PRepEncoder(nn.Module):
    """(B, 1, H, W) PReps -> (B, E) embeddings, for any H and W."""

    def __init__(self, embedding: int) -> None:
        super().__init__()
        h = max(1, embedding // 32)
        self.horizontal1 = nn.Conv2d(1, h, (1, 3), stride=(1, 2), padding=(0, 1))
        self.horizontal2 = nn.Conv2d(h, 2 * h, (1, 3), stride=(1, 2), padding=(0, 1))
        self.vertical1 = nn.Conv2d(2 * h, 4 * h, (3, 1), padding=(1, 0))
        self.vertical2 = nn.Conv2d(4 * h, embedding, (3, 1), padding=(1, 0))

    def forward(self, prep: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(self.horizontal2(leaky_relu(self.horizontal1(prep))))
        x = x.amax(dim=3, keepdim=True)
        x = leaky_relu(self.vertical2(leaky_relu(self.vertical1(x))))
        return x.amax(dim=(2, 3))


class PRepDecoder(nn.Module):
    """(B, E) embeddings -> (B, 1, H, W) PReps (H a multiple of 4, W of 8)."""

    def __init__(self, embedding: int, height: int, width: int, channels: int = 128, channels3: int = 256) -> None:
        super().__init__()
        if height % 4 or width % 8:
            raise NrtoolError(f"a PRep is (H, W) with H a multiple of 4 and W of 8, got ({height}, {width})")
        self.side = embedding_side(embedding)
        self.height, self.width, self.channels = height, width, channels
        quarter = (self.side // 2) ** 2  # values per channel after the first stride-2 conv
        self.quarter = quarter
        self.conv1 = nn.Conv2d(1, 2 * channels * height, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, width // 8, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(quarter // 2, channels3, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(channels3, 32, 3, padding=1)
        self.scale = nn.Parameter(torch.randn(height, width) * 1e-3)
        self.bias = nn.Parameter(torch.rand(height, width) * 1e-2)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        b, h, w = embedding.shape[0], self.height, self.width
        x = leaky_relu(self.conv1(embedding.view(b, 1, self.side, self.side)))
        x = leaky_relu(self.conv2(x.reshape(b, self.channels, h, 2 * self.quarter)))
        x = leaky_relu(self.conv3(x.reshape(b, self.quarter // 2, h // 2, w // 4)))
        x = self.conv4(x).reshape(b, 1, h, w)
        return x * self.scale + self.bias


class ClassIdHead(nn.Module):
    """(B, E) embeddings -> (B, A) architecture scores (logits)."""

    def __init__(self, embedding: int, architectures: int) -> None:
        super().__init__()
        self.side = embedding_side(embedding)
        self.conv = nn.Conv2d(1, 10, 3, stride=2, padding=1)
        self.fc = nn.Linear(10 * (self.side // 2) ** 2, architectures)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        x = leaky_relu(self.conv(embedding.view(-1, 1, self.side, self.side)))
        return self.fc(x.flatten(1))


class NetSpace(nn.Module):
    """Encoder, decoder and (with several architectures) the ClassId head."""

    def __init__(self, embedding: int, prep_height: int, prep_width: int, architectures: int = 1,
                 channels: int = 128, channels3: int = 256) -> None:
        super().__init__()
        self.encoder = PRepEncoder(embedding)
        self.decoder = PRepDecoder(embedding, prep_height, prep_width, channels, channels3)
        self.class_id = ClassIdHead(embedding, architectures) if architectures > 1 else None

    def forward(self, prep: torch.Tensor) -> torch.Tensor:
        """PReps in, predicted PReps out."""
        return self.decoder(self.encoder(prep))
