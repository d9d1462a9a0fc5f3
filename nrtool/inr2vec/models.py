"""The inr2vec encoder (weights -> embedding) and implicit decoder (embedding + query -> field).

Encoder input (App. C.3): for each hidden-to-hidden layer of an INR, the matrix ``[W^T; b]`` of
shape (H+1, H) -- one row per input unit plus the bias row, each row holding that unit's outgoing
weights. The L matrices are stacked into (L(H+1), H); the first (3->H) and last (H->1) layers are
left out. A stack of row-wise Linear + BatchNorm + ReLU layers maps every row to a feature vector,
and max-pooling over rows gives the embedding -- so the encoder does not depend on row order.
"""

from __future__ import annotations

import torch
from torch import nn

from nrtool.errors import NrtoolError
from nrtool.inr.siren import SirenSpec, unflatten
from nrtool.inr2vec.config import Inr2vecConfig
from nrtool.nn import linear_bn_relu, positional_encoding, split_linear


def weight_matrix(params: torch.Tensor, spec: SirenSpec, rows: str = "hidden") -> torch.Tensor:
    """Encoder input for a batch of INRs: flat params (B, P) -> (B, R, H).

    ``hidden``: R = L(H+1), the hidden-to-hidden layers only. ``all`` (App. C.8) puts the input
    layer's ``[W_in^T; b_in]`` (in_dim + 1 rows) first and the output layer's ``W_out`` plus its
    bias repeated H times (2 rows) last: R = L(H+1) + in_dim + 3.
    """
    if spec.layers < 1:
        raise NrtoolError("inr2vec needs INRs with at least one hidden-to-hidden layer")
    layers = unflatten(params, spec)
    blocks = [torch.cat([weight.transpose(1, 2), bias.unsqueeze(1)], dim=1) for weight, bias in layers[1:-1]]
    if rows == "all":
        (w_in, b_in), (w_out, b_out) = layers[0], layers[-1]
        first = torch.cat([w_in.transpose(1, 2), b_in.unsqueeze(1)], dim=1)  # (B, in_dim + 1, H)
        last = torch.cat([w_out, b_out.unsqueeze(-1).expand(-1, -1, spec.hidden)], dim=1)  # (B, 2, H)
        blocks = [first, *blocks, last]
    return torch.cat(blocks, dim=1)


class Inr2vecEncoder(nn.Module):
    """(B, R, H) rows -> (B, D) embedding, invariant to the order of the R rows."""

    def __init__(self, in_width: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.rows = nn.Sequential(*linear_bn_relu(in_width, widths))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        batch, count, width = rows.shape
        # BatchNorm statistics over every row of every INR: the layers are row-wise.
        features = self.rows(rows.reshape(batch * count, width)).reshape(batch, count, -1)
        return features.max(dim=1).values


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

    def forward(self, embedding: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        encoded = positional_encoding(queries, self.pe_frequencies)
        hidden = torch.relu(split_linear(self.layer1, encoded, embedding))
        hidden = torch.relu(self.layer2(hidden))
        hidden = torch.relu(split_linear(self.layer3, torch.cat([hidden, encoded], dim=-1), embedding))
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
        return self.encoder(weight_matrix(params, self.inr_spec, self.config.rows))
