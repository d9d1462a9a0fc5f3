"""Part-segmentation scores as the field reports them (ShapeNet-Part protocol, thesis Tab. 5.3).

- A shape's IoU is the mean over its class's parts of ``|pred = p and true = p| / |pred = p or
  true = p|``; a part absent from both prediction and truth counts 1.
- **Instance mIoU**: the mean of the shape IoUs; **class mIoU**: the mean over classes of the
  mean shape IoU within each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def shape_iou(predicted: np.ndarray, truth: np.ndarray, parts: Sequence[int]) -> float:
    """Mean IoU over ``parts`` of one shape's per-point labels."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    ious = []
    for part in parts:
        hit_p, hit_t = predicted == part, truth == part
        union = np.count_nonzero(hit_p | hit_t)
        ious.append(1.0 if union == 0 else np.count_nonzero(hit_p & hit_t) / union)
    return float(np.mean(ious)) if ious else 1.0


def miou_report(shape_ious: Sequence[float], classes: Sequence[str]) -> dict[str, Any]:
    """``{instance_miou, class_miou, per_class: {class: mean shape IoU}, shapes}`` from one IoU per
    shape and the shape's class."""
    shape_ious = np.asarray(shape_ious, dtype=np.float64)
    names = np.asarray(list(classes), dtype=object)
    per_class = {str(c): float(shape_ious[names == c].mean()) for c in sorted(set(classes))}
    return {
        "instance_miou": float(shape_ious.mean()) if len(shape_ious) else None,
        "class_miou": float(np.mean(list(per_class.values()))) if per_class else None,
        "per_class": per_class,
        "shapes": int(len(shape_ious)),
    }
