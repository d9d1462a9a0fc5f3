"""Item names and the split rules every trainer follows.

- An augmented copy is named ``NAME_augK`` (``nrtool augment``); :func:`source_group` maps it
  back to ``NAME``, so a shape and its copies stay on one side of a validation split.
- The ``val`` rule: items whose split is ``val`` are held out for validation and never trained
  on; ``test`` items are never used by a trainer; items with split ``train`` or none train.
  Without ``val`` items, validation is carved from the train items (seeded).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Splits a trainer may train on (``None``/``""``: the layout gave no split).
TRAIN_SPLITS: tuple[str | None, ...] = (None, "", "train")

AUGMENTED_SUFFIX = re.compile(r"_aug\d+$")


def source_group(name: str) -> str:
    """The shape an item comes from: ``cup_021_aug2`` -> ``cup_021``; other names unchanged.

    Validation splits keep a shape and its augmented copies on one side.
    """
    return AUGMENTED_SUFFIX.sub("", name)


def trains_on(split: str | None) -> bool:
    """Whether an item of ``split`` may be trained on (never ``val`` or ``test``)."""
    return split in TRAIN_SPLITS


def train_val_split(
    labels: np.ndarray, splits: Sequence[str | None], val_fraction: float, seed: int,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation items.

    Items marked ``val`` are the validation set when there are any. Otherwise validation is
    carved from the train items (split ``train`` or unknown), stratified and seeded: about
    ``max(1, round(val_fraction * n))`` items of each class that has at least 2 groups, so every
    class keeps training items. ``test`` and unlabelled items are never used.

    ``groups`` keeps items of one group on the same side -- augmented copies of a shape go where
    the shape goes (see :func:`source_group`); otherwise validation
    would score copies of shapes the model trained on. By default every item is its own group.
    """
    labels = np.asarray(labels)
    usable = labels >= 0
    is_val = np.array([s == "val" for s in splits]) & usable
    is_train = np.array([trains_on(s) for s in splits]) & usable
    if is_val.any() or val_fraction == 0:
        return np.flatnonzero(is_train), np.flatnonzero(is_val)
    group_of = np.asarray(groups if groups is not None else [str(i) for i in range(len(labels))], dtype=object)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for cls in np.unique(labels[is_train]):
        members = np.flatnonzero(is_train & (labels == cls))
        names = list(dict.fromkeys(group_of[members].tolist()))
        names = [names[i] for i in rng.permutation(len(names))]
        target = max(1, round(val_fraction * len(members))) if len(names) >= 2 else 0
        chosen: set[str] = set()
        taken = 0
        for name in names[:-1]:  # the last group always trains
            if taken >= target:
                break
            chosen.add(name)
            taken += int(np.sum(group_of[members] == name))
        for index in members:
            (val if group_of[index] in chosen else train).append(int(index))
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))
