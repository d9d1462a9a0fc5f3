"""``nrtool netspace zoo``: train a collection of networks whose accuracies spread (thesis App. B.3).

Every network starts from its own random initialisation and trains for a number of epochs drawn
for it (uniformly between ``min_epochs`` and ``max_epochs``), so the zoo holds networks from
barely trained to converged, as NetSpace's single-architecture experiments need. ResNets train
with BN and are stored fused (App. B.5). Per architecture, ``val_nets`` and ``test_nets``
networks, drawn at random, are set aside for NetSpace's validation and test.

Resuming: each finished network is a part in ``OUT.parts/`` (:mod:`nrtool.artifacts.parts`);
the zoo artifact is written, atomically, once all are done.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.core import holds_output_lock
from nrtool.artifacts.parts import PartsFolder
from nrtool.artifacts.zoo import Zoo, ZooNet, write_zoo
from nrtool.errors import InputFileError
from nrtool.netspace.config import ZooSettings
from nrtool.netspace.data import ImageSource, ImageSplits, accuracy, load_images
from nrtool.progress import Progress, SilentProgress


def architecture_spec(name: str, classes: int, in_channels: int, width: int = 16) -> dict[str, Any]:
    """The :func:`nrtool.netspace.architectures.build` spec of a zoo architecture name."""
    if name.startswith("resnet"):
        return {"architecture": "resnet", "depth": int(name[len("resnet"):]), "classes": classes, "width": width,
                "in_channels": in_channels}
    return {"architecture": name, "classes": classes, "in_channels": in_channels}


def architecture_name(spec: dict[str, Any]) -> str:
    """The zoo name of a spec (the inverse of :func:`architecture_spec`): ``resnet8``, ``lenetlike``."""
    return spec["architecture"] + (str(spec["depth"]) if spec["architecture"] == "resnet" else "")


@dataclass(frozen=True)
class PlannedNet:
    name: str
    architecture: str
    split: str
    epochs: int
    seed: int


def plan_zoo(settings: ZooSettings) -> list[PlannedNet]:
    """Every network of the zoo: its name, split, drawn epochs and seed (deterministic in the seed)."""
    rng = np.random.default_rng(settings.seed)
    plan = []
    for a, architecture in enumerate(settings.architectures):
        epochs = rng.integers(settings.min_epochs, settings.max_epochs + 1, size=settings.count)
        order = rng.permutation(settings.count)
        split = np.full(settings.count, "train", dtype=object)
        split[order[: settings.val_nets]] = "val"
        split[order[settings.val_nets: settings.val_nets + settings.test_nets]] = "test"
        for k in range(settings.count):
            plan.append(PlannedNet(f"{architecture}-{k:03d}", architecture, str(split[k]), int(epochs[k]),
                                   settings.seed * 1_000_003 + a * 10_007 + k))
    return plan


def train_net(planned: PlannedNet, spec: dict[str, Any], images: ImageSplits, settings: ZooSettings,
              device: torch.device, advance: Any = None) -> ZooNet:
    """Train one network as planned; return it fused, with its accuracy on every image split."""
    from nrtool.netspace.architectures import build
    from nrtool.netspace.fusion import fuse_bn

    torch.manual_seed(planned.seed)
    generator = torch.Generator().manual_seed(planned.seed)
    model = build(spec).to(device)
    if settings.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        scheduler = None
    else:  # the thesis' SGD schedule (150/180/210 of 300 epochs), scaled to the drawn epochs
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9, weight_decay=5e-4)
        milestones = sorted({max(1, int(planned.epochs * f)) for f in (0.5, 0.6, 0.7)})
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, 0.1)
    x, y = images.images["train"], images.labels["train"]
    for _ in range(planned.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        for start in range(0, len(x), settings.batch):
            index = order[start: start + settings.batch]
            loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if advance is not None:
            advance(1)
    fused = fuse_bn(model).eval()
    scores = tuple(accuracy(fused, images.images[s], images.labels[s]) for s in ("train", "val", "test"))
    weights = torch.nn.utils.parameters_to_vector(fused.parameters()).detach().cpu().numpy().astype(np.float32)
    return ZooNet(planned.name, planned.split, planned.architecture, spec, weights, planned.epochs, planned.seed, scores)


def _part(net: ZooNet) -> dict[str, Any]:
    return {"name": np.array(net.name), "weights": net.weights, "accuracy": np.array(net.accuracy),
            "spec": np.array(json.dumps(net.spec, sort_keys=True))}


def _net_of_part(part: dict[str, np.ndarray], planned: dict[str, PlannedNet]) -> ZooNet | None:
    name = str(part["name"])
    if name not in planned:
        return None
    p = planned[name]
    return ZooNet(name, p.split, p.architecture, json.loads(str(part["spec"])), part["weights"].astype(np.float32),
                  p.epochs, p.seed, tuple(float(a) for a in part["accuracy"]))


@dataclass
class ZooReport:
    out: str
    nets: int
    resumed: int
    seconds: float
    accuracy: dict[str, dict[str, float]]  # architecture -> min / mean / max test accuracy
    parameters: dict[str, int]


@holds_output_lock("out")
def train_zoo(out: str | os.PathLike[str], settings: ZooSettings, source: ImageSource, device: str = "auto",
              progress: Progress | None = None, command: list[str] | None = None) -> ZooReport:
    """Train (or finish) the zoo ``settings`` describes on ``source``'s images; write ``out``."""
    from nrtool.artifacts.core import check_output_file
    from nrtool.device import resolve_device

    settings.validate()
    out = check_output_file(out, "--out")
    if source.source != "digits":  # a folder: recorded absolute, so NetSpace finds it from anywhere
        from pathlib import Path

        source = ImageSource(str(Path(source.source).resolve()), source.size, source.channels, source.seed)
    torch_device = resolve_device(device)
    progress = progress or SilentProgress()
    images = load_images(source)
    plan = plan_zoo(settings)
    specs = {a: architecture_spec(a, len(images.classes), source.channels, settings.width)
             for a in settings.architectures}
    fingerprint = {"settings": settings.to_dict(), "images": images.fingerprint}
    parts = PartsFolder(out)
    if parts.exists() and parts.settings() not in (None, fingerprint):
        raise InputFileError(parts.folder, "holds an unfinished zoo of other settings or images; delete it, or "
                             "rerun the command that started it")
    parts.start(fingerprint)
    planned = {p.name: p for p in plan}
    done = {net.name: net for net in (_net_of_part(part, planned) for part in parts.load_parts()) if net is not None}
    started = time.perf_counter()
    todo = [p for p in plan if p.name not in done]
    resumed = len(done)
    images = images.to(torch_device)
    with progress.task(f"training a zoo of {len(plan)} networks" + (f" ({resumed} resumed)" if resumed else ""),
                       sum(p.epochs for p in todo), "epochs") as advance:
        for p in todo:
            net = train_net(p, specs[p.architecture], images, settings, torch_device, advance)
            parts.save_part(p.name, _part(net))
            done[p.name] = net
    zoo = Zoo([done[p.name] for p in plan], source.to_dict(), images.fingerprint, images.classes, settings.to_dict())
    write_zoo(out, zoo, command=command)
    parts.remove()
    summary = {}
    for a in settings.architectures:
        acc = np.array([n.test_accuracy for n in zoo.nets if n.architecture == a])
        summary[a] = {"min": float(acc.min()), "mean": float(acc.mean()), "max": float(acc.max())}
    return ZooReport(str(out), len(plan), resumed, time.perf_counter() - started, summary,
                     {a: len(next(n.weights for n in zoo.nets if n.architecture == a)) for a in settings.architectures})
