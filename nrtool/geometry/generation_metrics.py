"""How close a set of generated shapes is to a reference set: MMD, COV and 1-NNA under Chamfer.

The measures of the point-cloud generation literature (Achlioptas et al. 2018; 1-NNA from Yang
et al. 2019, PointFlow), with :func:`nrtool.geometry.metrics.chamfer_distance` as the distance
(mean of the two mean Euclidean nearest-neighbour distances, not the squared sum some papers use):

- **MMD-CD**: the mean over reference shapes of the distance to the closest generated one (fidelity);
- **COV-CD**: the share of reference shapes that are the closest reference of some generated one
  (diversity, 1 = every reference shape is matched);
- **1-NNA**: the leave-one-out accuracy of a 1-nearest-neighbour classifier telling generated from
  reference shapes in their union; 0.5 is ideal (indistinguishable), 1.0 means fully separable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.geometry.metrics import chamfer_distance


def chamfer_matrix(a: Sequence[np.ndarray], b: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """(len(a), len(b)) Chamfer distances; ``b=None``: a's own symmetric matrix (zero diagonal)."""
    if b is None:
        out = np.zeros((len(a), len(a)))
        for i in range(len(a)):
            for j in range(i + 1, len(a)):
                out[i, j] = out[j, i] = chamfer_distance(a[i], a[j])
        return out
    return np.array([[chamfer_distance(x, y) for y in b] for x in a]).reshape(len(a), len(b))


def mmd_cd(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """MMD-CD alone: the mean over reference shapes of the Chamfer distance to the closest generated one."""
    return float(chamfer_matrix(generated, reference).min(axis=0).mean())


def generation_metrics(generated: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict[str, Any]:
    """MMD-CD, COV-CD and 1-NNA of ``generated`` against ``reference`` clouds (each ``(P, 3)``)."""
    if len(generated) < 1 or len(reference) < 1:
        raise NrtoolError("generation metrics need at least one generated and one reference shape")
    cross = chamfer_matrix(generated, reference)  # (G, R)
    mmd = float(cross.min(axis=0).mean())
    coverage = float(len(set(cross.argmin(axis=1).tolist())) / len(reference))
    result: dict[str, Any] = {"mmd_cd": mmd, "cov_cd": coverage, "generated": len(generated), "reference": len(reference)}
    if len(generated) >= 2 and len(reference) >= 2:
        within_g, within_r = chamfer_matrix(generated), chamfer_matrix(reference)
        union = np.block([[within_g, cross], [cross.T, within_r]])
        np.fill_diagonal(union, np.inf)
        is_generated = np.r_[np.ones(len(generated), bool), np.zeros(len(reference), bool)]
        result["1nna"] = float(np.mean(is_generated[union.argmin(axis=1)] == is_generated))
    else:
        result["1nna"] = None
    return result
