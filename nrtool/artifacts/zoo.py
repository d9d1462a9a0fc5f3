"""The ``zoo`` artifact: trained networks (NetSpace's data), with what each achieved.

Layout (schema 1), first axis = network:

==================  ============  ==========================================================
dataset             shape         meaning
==================  ============  ==========================================================
``names``           (N,) str      e.g. ``lenetlike-007``
``split``           (N,) str      train / val / test (of the networks, for NetSpace)
``architecture``    (N,) str      the architecture's name (``lenetlike``, ``resnet8``, ...)
``spec``            (N,) str      JSON of :func:`nrtool.netspace.architectures.build`'s spec
``weights``         (N,) vlen f32 the fused network's parameters, flat, ``named_parameters`` order
``epochs``          (N,) i64      epochs it was trained for (drawn per network)
``seed``            (N,) i64      its initialisation seed
``accuracy``        (N, 3) f32    top-1 accuracy on the train / val / test images
==================  ============  ==========================================================

Attributes: ``images`` (JSON of the :class:`nrtool.netspace.data.ImageSource`), ``images_sha256``
(fingerprint of the images and their split), ``classes`` (JSON), ``settings`` (JSON of the zoo's
training settings), plus provenance. The weights are stored fused (no BN), which is the form a
PRep is made of; :func:`nrtool.netspace.architectures.net_from_weights` rebuilds any of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import (
    STR_DTYPE,
    atomic_output,
    open_artifact,
    read_strings,
    write_root_attrs,
)
from nrtool.errors import InputFileError, NrtoolError

KIND = "zoo"
ACCURACY_SPLITS = ("train", "val", "test")


@dataclass
class ZooNet:
    """One trained network of a zoo."""

    name: str
    split: str
    architecture: str
    spec: dict[str, Any]
    weights: np.ndarray  # (P,) float32, fused, named_parameters order
    epochs: int
    seed: int
    accuracy: tuple[float, float, float]  # train / val / test images

    @property
    def test_accuracy(self) -> float:
        return float(self.accuracy[2])


@dataclass
class Zoo:
    """A loaded ``zoo`` artifact."""

    nets: list[ZooNet]
    images: dict[str, Any]
    images_sha256: str
    classes: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def of_split(self, split: str) -> list[ZooNet]:
        return [n for n in self.nets if n.split == split]

    def architectures(self) -> list[str]:
        """The architectures in the zoo, fewest parameters first (NetSpace's ClassId order)."""
        sizes = {n.architecture: len(n.weights) for n in self.nets}
        return sorted(sizes, key=lambda a: (sizes[a], a))

    def index(self, name: str) -> int:
        names = [n.name for n in self.nets]
        if name not in names:
            shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
            raise InputFileError(self.path or "zoo", f"no network named {name!r} (it holds {shown})")
        return names.index(name)


def write_zoo(path: str | os.PathLike[str], zoo: Zoo, inputs: list[dict[str, str]] | None = None,
              command: list[str] | None = None) -> None:
    """Write a ``zoo`` artifact atomically."""
    if not zoo.nets:
        raise NrtoolError(f"{path}: a zoo needs at least one network")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        handle.attrs["images"] = json.dumps(zoo.images)
        handle.attrs["images_sha256"] = zoo.images_sha256
        handle.attrs["classes"] = json.dumps(zoo.classes)
        handle.attrs["settings"] = json.dumps(zoo.settings)
        for key in ("name", "split", "architecture"):
            handle["names" if key == "name" else key] = np.array([getattr(n, key) for n in zoo.nets], dtype=object).astype(STR_DTYPE)
        handle["spec"] = np.array([json.dumps(n.spec, sort_keys=True) for n in zoo.nets], dtype=object).astype(STR_DTYPE)
        weights = handle.create_dataset("weights", (len(zoo.nets),), dtype=h5py.vlen_dtype(np.float32))
        for i, net in enumerate(zoo.nets):
            weights[i] = np.asarray(net.weights, dtype=np.float32)
        handle["epochs"] = np.array([n.epochs for n in zoo.nets], dtype=np.int64)
        handle["seed"] = np.array([n.seed for n in zoo.nets], dtype=np.int64)
        handle["accuracy"] = np.array([n.accuracy for n in zoo.nets], dtype=np.float32)


def load_zoo(path: str | os.PathLike[str]) -> Zoo:
    """Read a ``zoo`` artifact (one line naming the file when it is not one, or damaged)."""
    with open_artifact(path, KIND) as handle:
        try:
            names = read_strings(handle["names"])
            splits, archs = read_strings(handle["split"]), read_strings(handle["architecture"])
            specs = [json.loads(s) for s in read_strings(handle["spec"])]
            weights = [np.asarray(w, dtype=np.float32) for w in handle["weights"][()]]
            epochs, seeds = handle["epochs"][()], handle["seed"][()]
            accuracy = np.asarray(handle["accuracy"][()], dtype=np.float64)
            attrs = {k: json.loads(handle.attrs[k]) for k in ("images", "classes", "settings")}
            images_sha256 = str(handle.attrs["images_sha256"])
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise InputFileError(path, f"damaged zoo artifact ({exc})") from exc
    lengths = {len(names), len(splits), len(archs), len(specs), len(weights), len(epochs), len(seeds), len(accuracy)}
    if len(lengths) != 1 or not names:
        raise InputFileError(path, "damaged zoo artifact (its per-network datasets differ in length, or it is empty)")
    if any(not np.isfinite(w).all() for w in weights):
        raise InputFileError(path, "holds a network with NaN or infinite weights")
    nets = [ZooNet(names[i], splits[i], archs[i], specs[i], weights[i], int(epochs[i]), int(seeds[i]),
                   tuple(float(a) for a in accuracy[i])) for i in range(len(names))]
    return Zoo(nets, attrs["images"], images_sha256, attrs["classes"], attrs["settings"], str(path))
