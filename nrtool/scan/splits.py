"""Benchmark splits of a scan (thesis Sec. 3.3.4).

* Train / Val / Test macro-splits (default 1000 / 500 / 500 views), disjoint, each chosen by
  farthest point sampling (FPS) of camera positions (the three take turns picking, in
  proportion to their sizes), so each covers the hemisphere evenly.
* Training subsets ``train_all_K`` (default K = 500 / 250 / 100) by FPS inside Train: the first
  K views of an FPS ordering are themselves an FPS sample, so the subsets are nested.
* Eight octant sub-splits of each macro-split: the x, y and z ranges of the kept cameras are cut
  in two; sub-split ``o`` holds every view of the macro-split inside octant ``o`` (bit 0: x above
  the middle, bit 1: y, bit 2: z) plus a seeded random 10 % of its other views — a NeRF trained
  on one region, with a few views from elsewhere.

Set names follow ScanNeRF's split files: ``train``/``val``/``test`` (``*_all.json``),
``train_all_500``..., ``train_0``...``test_7``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nrtool.config import Config
from nrtool.errors import NrtoolError

MACRO = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSizes(Config):
    """Views per split; the thesis's values are the defaults."""

    WHAT = "split"
    VALIDATE_ON_INIT = True

    train: int = 1000
    val: int = 500
    test: int = 500
    train_subsets: tuple[int, ...] = (500, 250, 100)
    octant_extra: float = 0.1  # fraction of the out-of-octant views added to an octant sub-split

    def validate(self) -> None:
        if min(self.train, self.val, self.test) < 1 or any(s < 1 for s in self.train_subsets):
            raise NrtoolError("split sizes must be at least 1")
        if any(s > self.train for s in self.train_subsets):
            raise NrtoolError(f"training subsets {list(self.train_subsets)} cannot exceed the train size {self.train}")
        if not 0 <= self.octant_extra <= 1:
            raise NrtoolError("the octant extra fraction must be in [0, 1]")

    @property
    def total(self) -> int:
        return self.train + self.val + self.test

    def fitted_to(self, available: int) -> tuple["SplitSizes", str]:
        """Sizes scaled down in proportion when fewer than :attr:`total` views are available,
        with the warning to show ("" when they fit)."""
        if available >= self.total:
            return self, ""
        if available < 3:
            raise NrtoolError(f"only {available} frames kept: at least 3 are needed for train/val/test splits "
                              "(use --no-splits for a calibration-only run)")
        factor = available / self.total
        scaled = [max(1, int(np.floor(size * factor))) for size in (self.train, self.val, self.test)]
        subsets = tuple(min(scaled[0], max(1, int(np.floor(s * factor)))) for s in self.train_subsets)
        fitted = replace(self, train=scaled[0], val=scaled[1], test=scaled[2], train_subsets=subsets)
        warning = (f"only {available} frames kept, fewer than the {self.total} the splits ask for: sizes scaled by "
                   f"{factor:.3f} to train {fitted.train}, val {fitted.val}, test {fitted.test}, "
                   f"train subsets {list(fitted.train_subsets)}")
        return fitted, warning


def farthest_point_order(points: np.ndarray, count: int, first: int = 0) -> np.ndarray:
    """Indices of ``count`` points of (N, D) ``points`` by farthest point sampling from ``first``:
    each next point is the one farthest from all chosen so far. O(N * count)."""
    count = min(count, len(points))
    chosen = np.empty(count, dtype=np.int64)
    if count == 0:
        return chosen
    nearest = np.full(len(points), np.inf)
    current = first
    for k in range(count):
        chosen[k] = current
        nearest = np.minimum(nearest, np.sum((points - points[current]) ** 2, axis=1))
        nearest[current] = -1.0  # never pick a chosen point again (ties with duplicates included)
        current = int(np.argmax(nearest))
    return chosen


def octant_of(positions: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N,) octant index 0..7 of (N, 3) positions: bit 0 x > centre, bit 1 y > centre, bit 2 z > centre."""
    above = np.asarray(positions) > np.asarray(centre)
    return above[:, 0] * 1 + above[:, 1] * 2 + above[:, 2] * 4


@dataclass
class Splits:
    """Named index sets into the capture's frames (sorted), and the octants' centre point."""

    sets: dict[str, np.ndarray]
    octant_centre: np.ndarray  # (3,)
    sizes: SplitSizes

    def per_frame(self, frames: int) -> list[str]:
        """Macro-split name of each frame ("" for frames in none)."""
        labels = [""] * frames
        for name in MACRO:
            for index in self.sets[name]:
                labels[int(index)] = name
        return labels


def make_splits(positions: np.ndarray, frame_index: np.ndarray, sizes: SplitSizes, seed: int = 0) -> Splits:
    """Splits of the kept frames.

    ``positions`` (K, 3) are the kept frames' camera centres, ``frame_index`` (K,) their indices
    in the capture; ``sizes`` must fit (see :meth:`SplitSizes.fitted_to`).
    """
    positions = np.asarray(positions, np.float64)
    frame_index = np.asarray(frame_index, np.int64)
    if sizes.total > len(positions):
        raise NrtoolError(f"splits need {sizes.total} kept frames, only {len(positions)} are available")
    rng = np.random.default_rng(seed)
    # The three splits take turns (each next pick goes to the split furthest behind its share of
    # the views), and each picks the free view farthest from its own views: farthest point
    # sampling per split, competing for views. Each covers the hemisphere evenly from its first
    # picks on, also when the splits need nearly every kept view, as scaled-down small captures
    # do (picking Train, then Val, then Test would leave Test only the leftovers).
    targets = np.array([sizes.train, sizes.val, sizes.test], dtype=np.float64)
    nearest = np.full((3, len(positions)), np.inf)  # per split: squared distance to its nearest view
    free = np.ones(len(positions), dtype=bool)
    dealt: list[list[int]] = [[], [], []]
    for rank in range(sizes.total):
        deficit = targets / sizes.total * (rank + 1) - np.array([len(d) for d in dealt])
        deficit[[len(d) >= t for d, t in zip(dealt, targets)]] = -np.inf
        split = int(np.argmax(deficit))
        if dealt[split]:
            view = int(np.argmax(np.where(free, nearest[split], -1.0)))
        else:  # a split's first view: a seeded random free one
            view = int(rng.choice(np.flatnonzero(free)))
        dealt[split].append(view)
        free[view] = False
        nearest[split] = np.minimum(nearest[split], np.sum((positions - positions[view]) ** 2, axis=1))
    local: dict[str, np.ndarray] = {name: np.array(d, np.int64) for name, d in zip(MACRO, dealt)}
    # Subsets: an FPS ordering of Train; the first k views form each subset.
    train = local["train"]
    order = train[farthest_point_order(positions[train], max(sizes.train_subsets), first=int(rng.integers(len(train))))]
    for size in sizes.train_subsets:
        local[f"train_all_{size}"] = order[:size]  # ScanNeRF's name; "train_4" is an octant
    # Octants of the range of all kept cameras, so train_o, val_o and test_o cover one region.
    low, high = positions.min(axis=0), positions.max(axis=0)
    centre = (low + high) / 2
    octants = octant_of(positions, centre)
    for name in MACRO:
        members = local[name]
        for octant in range(8):
            inside = members[octants[members] == octant]
            outside = members[octants[members] != octant]
            extra = rng.choice(outside, size=int(round(sizes.octant_extra * len(outside))), replace=False)
            local[f"{name}_{octant}"] = np.concatenate([inside, extra])
    sets = {name: np.sort(frame_index[indices]) for name, indices in local.items()}
    return Splits(sets, centre, sizes)
