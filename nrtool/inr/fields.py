"""The three fields an INR can represent, with their training targets, losses and decoding.

An INR outputs a logit. Following inr2vec (App. C.1) distances are squashed into [0,1] labels and
learnt with binary cross-entropy, which weights the region near the surface most:

* ``udf`` (point clouds, open meshes): label ``1 - min(d, 0.1) / 0.1``; ``udf = 0.1 (1 - p)``.
* ``sdf`` (watertight meshes, negative inside): label ``(clip(s, -0.1, 0.1) + 0.1) / 0.2``;
  ``sdf = 0.2 p - 0.1``.
* ``occ`` (voxel grids): label 1 inside, 0 outside, learnt with a focal loss; ``p`` is the
  occupancy probability.

where ``p = sigmoid(logit)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nrtool.geometry.ground_truth import FieldName
from nrtool.inr.config import DISTANCE_LOSSES

#: Distance at which udf/sdf labels saturate (normalised units).
CLIP = 0.1


def distance_to_label(field: FieldName, values: torch.Tensor) -> torch.Tensor:
    """Ground-truth distances/occupancies -> training labels in [0, 1]."""
    if field == "udf":
        return 1.0 - values.clamp(max=CLIP) / CLIP
    if field == "sdf":
        return (values.clamp(-CLIP, CLIP) + CLIP) / (2 * CLIP)
    if field == "occ":
        return values.float()
    raise ValueError(f"unknown field {field!r}")


def logits_to_field(field: FieldName, logits: torch.Tensor) -> torch.Tensor:
    """INR outputs -> the field's own values (udf, sdf, or occupancy probability)."""
    prob = torch.sigmoid(logits)
    if field == "udf":
        return CLIP * (1.0 - prob)
    if field == "sdf":
        return 2 * CLIP * prob - CLIP
    if field == "occ":
        return prob
    raise ValueError(f"unknown field {field!r}")


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Element-wise binary focal loss (Lin et al.): down-weights easy, mostly-empty voxels."""
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    prob = torch.sigmoid(logits)
    p_true = prob * labels + (1 - prob) * (1 - labels)
    weight = alpha * labels + (1 - alpha) * (1 - labels)
    return weight * (1 - p_true) ** gamma * bce


# Losses of the distance fields (DISTANCE_LOSSES): ``bce`` on the squashed labels (inr2vec, App.
# C.1), or ``l1``: the absolute error of the decoded, clipped distance, in units of the clip band
# ``2 CLIP`` (sdf) / ``CLIP`` (udf) -- the same decoding, so everything downstream reads both alike.


def field_loss(
    field: FieldName,
    logits: torch.Tensor,
    labels: torch.Tensor,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    loss: str = "bce",
) -> torch.Tensor:
    """Per-INR mean loss: logits, labels (B, M) -> (B,). ``loss`` (udf/sdf): one of
    :data:`DISTANCE_LOSSES`; occupancy always uses the focal loss."""
    if field == "occ":
        return focal_loss(logits, labels, focal_alpha, focal_gamma).mean(dim=-1)
    if loss == "l1":
        # |p - label| is the decoded distance's error over the label's span: the decoding is
        # linear in p = sigmoid(logit) for both fields.
        return (torch.sigmoid(logits) - labels).abs().mean(dim=-1)
    if loss != "bce":
        raise ValueError(f"unknown loss {loss!r} (one of {', '.join(DISTANCE_LOSSES)})")
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=-1)
