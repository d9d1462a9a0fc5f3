"""Latent editing of garment attributes (thesis Sec. 2.4.2).

A logistic regressor is fitted on labelled codes (attribute present / absent); the absolute
values of its weights are min-max normalised, the dimensions whose normalised weight exceeds
0.5 are kept (with the weights' signs) and the code is moved along that direction:
``z' = z + step * sigma * d / |d|``, where ``sigma`` is the standard deviation of the labelled
codes along ``d`` (so ``step`` is in units of the codes' own spread, whatever their scale). A
positive step adds "more" of the attribute.

Labels come from a CSV (``name,<attribute>`` columns) or from ``garments.json`` written by
``nrtool synth garments``. Non-binary values (e.g. ``sleeve_length`` in [0, 1]) are split at
their median: above it is the positive class.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.artifacts.garment_codes import GarmentCodes
from nrtool.errors import InputFileError, NrtoolError


@dataclass
class AttributeDirection:
    attribute: str
    direction: np.ndarray  # (D,) unit vector
    spread: float  # standard deviation of the labelled codes along the direction
    kept_dims: list[int]
    weights: np.ndarray  # (D,) regressor weights
    threshold: float | None  # median used to binarise, None for binary labels
    accuracy: float  # training accuracy of the regressor
    labelled: int


def read_labels(path: str | os.PathLike[str], attribute: str) -> dict[str, float]:
    """``{name: value}`` for ``attribute`` from a CSV (``name`` column) or a ``garments.json``."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    if p.suffix.lower() == ".json":
        try:
            entries = json.loads(p.read_text())["garments"]
            values = {e["name"]: e["attributes"].get(attribute) for e in entries}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputFileError(p, f"not a garments index ({exc})") from exc
    else:
        try:
            with open(p, newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputFileError(p, f"not a readable CSV ({exc})") from exc
        if not rows or "name" not in rows[0]:
            raise InputFileError(p, "expected a CSV with a header row holding a 'name' column")
        if attribute not in rows[0]:
            raise InputFileError(p, f"has no column {attribute!r} (columns: {', '.join(rows[0])})")
        values = {row["name"]: row[attribute] for row in rows}
    labels: dict[str, float] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        try:
            labels[name] = float(value)
        except (TypeError, ValueError):
            raise InputFileError(p, f"{name}: {attribute} = {value!r} is not a number or true/false") from None
    if not labels:
        raise InputFileError(p, f"no garment has a value for {attribute!r}")
    return labels


def fit_direction(codes: GarmentCodes, labels: dict[str, float], attribute: str, labels_path: str | os.PathLike[str] = "labels",
                  keep_above: float = 0.5, seed: int = 0) -> AttributeDirection:
    """The editing direction of ``attribute`` from the labelled codes."""
    from sklearn.linear_model import LogisticRegression

    rows = [i for i, name in enumerate(codes.names) if name in labels]
    if len(rows) < 4:
        raise InputFileError(labels_path, f"labels {len(rows)} of the codes' garments; need at least 4 to fit {attribute!r}")
    values = np.array([labels[codes.names[i]] for i in rows])
    distinct = np.unique(values)
    threshold = None
    if len(distinct) > 2:
        threshold = float(np.median(values))
        y = (values > threshold).astype(int)
    else:
        y = (values == distinct.max()).astype(int)
    if y.min() == y.max():
        raise InputFileError(labels_path, f"every labelled garment has the same {attribute!r}: nothing to learn a direction from")
    x = codes.codes[rows].astype(np.float64)
    regressor = LogisticRegression(max_iter=5_000, random_state=seed).fit(x, y)
    weights = regressor.coef_[0]
    magnitude = np.abs(weights)
    span = magnitude.max() - magnitude.min()
    normalised = (magnitude - magnitude.min()) / span if span > 0 else np.ones_like(magnitude)
    kept = np.flatnonzero(normalised > keep_above)
    if len(kept) == 0:
        kept = np.array([int(np.argmax(magnitude))])
    direction = np.zeros_like(weights)
    direction[kept] = weights[kept]
    direction /= np.linalg.norm(direction)
    spread = float(np.std(x @ direction)) or 1.0
    return AttributeDirection(attribute, direction.astype(np.float32), spread, kept.tolist(), weights, threshold,
                              float(regressor.score(x, y)), len(rows))


def edit_codes(codes: GarmentCodes, direction: AttributeDirection, step: float) -> GarmentCodes:
    """Every code moved by ``step`` standard deviations along the direction; names get ``_<attribute><+step>``."""
    from nrtool.artifacts.core import ItemInfo

    if not np.isfinite(step):
        raise NrtoolError(f"--step must be finite, got {step}")
    moved = codes.codes + step * direction.spread * direction.direction[None]
    items = [ItemInfo(f"{i.name}_{direction.attribute}{step:+g}", i.class_name, i.split, i.source, i.source_index, i.center, i.scale)
             for i in codes.items]
    return GarmentCodes(moved.astype(np.float32), items, codes.category, [{} for _ in items], codes.model_sha256,
                        codes.offsets)
