"""Conditional-BatchNorm UDF decoder (App. A.1.2): (code (B, 32), queries (B, M, 3)) -> UDF (B, M).

The query's positional encoding (63 values) goes through Linear 512 and 5 residual blocks of two
linear layers each; every linear layer but the output one is followed by a Conditional
BatchNorm (BatchNorm without affine parameters, then ``gamma(z) * x + beta(z)``, both predicted
linearly from the code) and a ReLU. One output, the logit ``s``; the UDF is
``delta * sigmoid(s)``, the sigmoid form of the BCE target ``min(d, delta) / delta``, so
distances saturate at ``delta`` (0.1 in the normalised frame).
"""

from __future__ import annotations

import torch
from torch import nn

from nrtool.nn import positional_encoding


class ConditionalBatchNorm(nn.Module):
    """BatchNorm over all queries of the batch, with affine parameters predicted from the code."""

    def __init__(self, channels: int, code_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(channels, affine=False)
        self.gamma = nn.Linear(code_dim, channels)
        self.beta = nn.Linear(code_dim, channels)
        # Start at the identity on average (gamma ~ 1, beta ~ 0) but already code dependent:
        # zero-initialised code weights make the decoder ignore the code for a long while.
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.bias)

    def forward(self, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        batch, count, channels = features.shape
        normed = self.norm(features.reshape(-1, channels)).reshape(batch, count, channels)
        return self.gamma(code).unsqueeze(1) * normed + self.beta(code).unsqueeze(1)


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int, code_dim: int) -> None:
        super().__init__()
        self.first, self.first_norm = nn.Linear(hidden, hidden), ConditionalBatchNorm(hidden, code_dim)
        self.second, self.second_norm = nn.Linear(hidden, hidden), ConditionalBatchNorm(hidden, code_dim)

    def forward(self, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.first_norm(self.first(features), code))
        h = self.second_norm(self.second(h), code)
        return torch.relu(features + h)


class UdfDecoder(nn.Module):
    """Logits of the clipped UDF; :meth:`udf` gives distances."""

    def __init__(self, code_dim: int = 32, hidden: int = 512, blocks: int = 5, pe_frequencies: int = 10,
                 delta: float = 0.1) -> None:
        super().__init__()
        self.pe_frequencies = pe_frequencies
        self.delta = delta
        self.input = nn.Linear(3 + 6 * pe_frequencies, hidden)
        self.input_norm = ConditionalBatchNorm(hidden, code_dim)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, code_dim) for _ in range(blocks))
        self.output = nn.Linear(hidden, 1)

    def forward(self, code: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, M, 3) -> logits (B, M)."""
        h = torch.relu(self.input_norm(self.input(positional_encoding(queries, self.pe_frequencies)), code))
        for block in self.blocks:
            h = block(h, code)
        return self.output(h).squeeze(-1)

    def udf(self, code: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """(B, D), (B, M, 3) -> unsigned distances (B, M) in [0, delta]."""
        return self.delta * torch.sigmoid(self(code, queries))
