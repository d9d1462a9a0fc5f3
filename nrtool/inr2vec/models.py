"""The inr2vec encoder (weights -> embedding) and implicit decoder (embedding + query -> field).

Encoder input (App. C.3): for each hidden-to-hidden layer of an INR, the matrix ``[W^T; b]`` of
shape (H+1, H) -- one row per input unit plus the bias row, each row holding that unit's outgoing
weights. The L matrices are stacked into (L(H+1), H); the first (3->H) and last (H->1) layers are
left out. A stack of row-wise Linear + BatchNorm + ReLU layers maps every row to a feature vector,
and max-pooling over rows gives the embedding -- so the encoder does not depend on row order.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nrtool.errors import NrtoolError
from nrtool.inr.siren import SirenSpec, unflatten


@dataclass(frozen=True)
class Inr2vecConfig:
    """Sizes of the encoder and decoder (the last encoder width is the embedding size)."""

    preset: str
    encoder_widths: tuple[int, ...]
    decoder_hidden: int
    pe_frequencies: int = 10  # 3 + 3*2*10 = 63 positional-encoding values (App. C.3)

    @property
    def embedding_dim(self) -> int:
        return self.encoder_widths[-1]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["encoder_widths"] = list(self.encoder_widths)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Inr2vecConfig":
        return cls(
            preset=str(data["preset"]),
            encoder_widths=tuple(int(w) for w in data["encoder_widths"]),
            decoder_hidden=int(data["decoder_hidden"]),
            pe_frequencies=int(data["pe_frequencies"]),
        )


INR2VEC_PRESETS: dict[str, Inr2vecConfig] = {
    "paper": Inr2vecConfig("paper", (512, 512, 1024, 1024), 512),
    "small": Inr2vecConfig("small", (256, 256, 512, 512), 256),
    "tiny": Inr2vecConfig("tiny", (128, 128, 256, 256), 128),
}


def inr2vec_preset(name: str) -> Inr2vecConfig:
    try:
        return INR2VEC_PRESETS[name]
    except KeyError:
        raise NrtoolError(f"unknown preset {name!r}; choose one of {', '.join(INR2VEC_PRESETS)}") from None


def weight_matrix(params: torch.Tensor, spec: SirenSpec) -> torch.Tensor:
    """Encoder input for a batch of INRs: flat params (B, P) -> (B, L(H+1), H)."""
    if spec.layers < 1:
        raise NrtoolError("inr2vec needs INRs with at least one hidden-to-hidden layer")
    hidden = unflatten(params, spec)[1:-1]  # drop 3->H and H->1
    blocks = [torch.cat([weight.transpose(1, 2), bias.unsqueeze(1)], dim=1) for weight, bias in hidden]
    return torch.cat(blocks, dim=1)


class Inr2vecEncoder(nn.Module):
    """(B, R, H) rows -> (B, D) embedding, invariant to the order of the R rows."""

    def __init__(self, in_width: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_width
        for width in widths:
            layers += [nn.Linear(previous, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            previous = width
        self.rows = nn.Sequential(*layers)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        batch, count, width = rows.shape
        # BatchNorm statistics over every row of every INR: the layers are row-wise.
        features = self.rows(rows.reshape(batch * count, width)).reshape(batch, count, -1)
        return features.max(dim=1).values


def positional_encoding(points: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(..., 3) -> (..., 3 + 6 * frequencies): the point, then sin/cos at 2^k * pi."""
    scales = (2.0 ** torch.arange(frequencies, device=points.device, dtype=points.dtype)) * math.pi
    angles = points.unsqueeze(-1) * scales  # (..., 3, F)
    return torch.cat([points, torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2)], dim=-1)


class ImplicitDecoder(nn.Module):
    """(embedding (B, D), queries (B, M, 3)) -> logits (B, M).

    Four hidden layers with ReLU; the input (encoded query + embedding) is concatenated again
    into the third layer, a skip that keeps the query's detail available deep in the network.

    The two layers that read the input are stored as one Linear over ``[encoding, embedding]``
    (plus the hidden state for the skip), as in the paper, but applied in two parts: the
    embedding's share of the product is the same for all M queries of an INR, so it is computed
    once per INR and broadcast, instead of once per query on an (B, M, D) copy. Same function,
    about half the FLOPs per query at the ``tiny`` sizes.
    """

    def __init__(self, embedding_dim: int, hidden: int, pe_frequencies: int) -> None:
        super().__init__()
        self.pe_frequencies = pe_frequencies
        self.encoding_dim = 3 + 6 * pe_frequencies
        in_width = self.encoding_dim + embedding_dim
        self.layer1 = nn.Linear(in_width, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.layer3 = nn.Linear(hidden + in_width, hidden)  # the skip: [hidden, encoding, embedding]
        self.layer4 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    @staticmethod
    def _split_linear(layer: nn.Linear, per_query: torch.Tensor, per_inr: torch.Tensor) -> torch.Tensor:
        """``layer(cat([per_query, per_inr expanded over queries]))`` without building the copy."""
        split = per_query.shape[-1]
        query_part = per_query @ layer.weight[:, :split].T
        inr_part = per_inr @ layer.weight[:, split:].T + layer.bias  # (B, hidden), once per INR
        return query_part + inr_part.unsqueeze(1)

    def forward(self, embedding: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        encoded = positional_encoding(queries, self.pe_frequencies)
        hidden = torch.relu(self._split_linear(self.layer1, encoded, embedding))
        hidden = torch.relu(self.layer2(hidden))
        hidden = torch.relu(self._split_linear(self.layer3, torch.cat([hidden, encoded], dim=-1), embedding))
        hidden = torch.relu(self.layer4(hidden))
        return self.out(hidden).squeeze(-1)


class Inr2vec(nn.Module):
    """Encoder + decoder for INRs of one architecture."""

    def __init__(self, config: Inr2vecConfig, inr_spec: SirenSpec) -> None:
        super().__init__()
        self.config = config
        self.inr_spec = inr_spec
        self.encoder = Inr2vecEncoder(inr_spec.hidden, config.encoder_widths)
        self.decoder = ImplicitDecoder(config.embedding_dim, config.decoder_hidden, config.pe_frequencies)

    def encode(self, params: torch.Tensor) -> torch.Tensor:
        """Flat INR parameters (B, P) -> embeddings (B, D)."""
        return self.encoder(weight_matrix(params, self.inr_spec))
