"""Using a trained NetSpace: embed networks, decode embeddings into networks, walk and optimise the space.

- :func:`encode_networks`: zoo networks or a user's checkpoints -> an ``embeddings`` artifact
  (``encoder`` = ``netspace``, the architecture as the class of each item).
- :func:`decode_embeddings`: embeddings -> one network checkpoint each (plain PyTorch:
  ``torch.load`` then :func:`nrtool.netspace.architectures.build` + ``fuse_bn``), with its accuracy.
- :func:`interpolate`: test accuracy along the line between two networks' embeddings, and beside
  it along the straight line between their weights (thesis Sec. 4.4.2, Fig. 4.4).
- :func:`optimize_embedding`: latent-space optimisation (Sec. 4.4.7): encoder and decoder frozen,
  the embedding alone descends ``alpha * KD(teacher, T) + (1 - alpha) * CE`` on training images
  (CE alone without a teacher), plus the ClassId's CE towards the start network's architecture in
  a multi-architecture space (the thesis' ``L_class``); the PRep is read as that architecture. The
  embedding kept is the one whose decoded network scores best on the validation images, as the
  thesis stops when accuracy no longer improves. Its loop, :func:`nrtool.nn.descent.descend`, is also the one of
  :func:`nrtool.netspace.sdf.optimize_inr_embeddings` (LSO in a space of INRs) and of
  ``nrtool encode --refine`` (:func:`nrtool.inr2vec.encode.refine_embeddings`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.zoo import Zoo, ZooNet
from nrtool.errors import InputFileError, NrtoolError
from nrtool.netspace.data import ImageSplits, accuracy, load_images
from nrtool.netspace.prep import forward_with
from nrtool.netspace.train import LoadedNetSpace, distillation_loss, preps_of
from nrtool.nn.descent import check_descent, descend


def netspace_images(model: LoadedNetSpace, device: torch.device | str = "cpu") -> ImageSplits:
    """The images the model was trained with (refused if they changed since, or if it has none)."""
    from nrtool.netspace.data import ImageSource

    if model.task != "classification":
        raise InputFileError(model.path, "is a NetSpace of INRs: its networks have no images or accuracy "
                             "(decode them, then `nrtool reconstruct DIR/inrs.h5 --metrics`)")
    source = ImageSource.from_dict(model.images)
    images = load_images(source)
    if images.fingerprint != model.images_sha256:
        raise InputFileError(model.path, f"its images ({source.source}) changed since it was trained")
    return images.to(device)


def _architecture_index(model: LoadedNetSpace, net: ZooNet, where: str) -> int:
    for i, a in enumerate(model.architectures):
        if a["name"] == net.architecture and int(a["parameters"]) == len(net.weights):
            return i
    known = ", ".join(a["name"] for a in model.architectures)
    raise InputFileError(where, f"network {net.name!r} is a {net.architecture} ({len(net.weights):,} weights); "
                         f"this NetSpace knows {known}")


def embed(model: LoadedNetSpace, nets: Sequence[ZooNet], where: str, device: torch.device | str = "cpu",
          batch: int = 32) -> np.ndarray:
    """(N, E) embeddings of ``nets`` (each must be of an architecture the model decodes into)."""
    for net in nets:
        _architecture_index(model, net, where)
        if len(net.weights) > model.prep_shape[1] * model.prep_shape[2]:
            raise InputFileError(where, f"network {net.name!r} does not fit this NetSpace's PRep {model.prep_shape}")
    out = []
    with torch.no_grad():
        for start in range(0, len(nets), batch):
            preps = preps_of(list(nets[start: start + batch]), model.prep_shape).to(device)
            out.append(model.encode(preps).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def nets_from_checkpoints(paths: Sequence[str | os.PathLike[str]]) -> list[ZooNet]:
    """A user's network checkpoints (``save_net`` format, fused or not) as zoo entries (accuracy unknown)."""
    from nrtool.netspace.architectures import load_net
    from nrtool.netspace.fusion import fuse_bn
    from nrtool.netspace.zoo import architecture_name

    nets = []
    for path in paths:
        model, checkpoint = load_net(path)
        fused = model if checkpoint.get("fused") else fuse_bn(model)
        spec = checkpoint["spec"]
        name = architecture_name(spec)
        weights = torch.nn.utils.parameters_to_vector(fused.parameters()).detach().numpy().astype(np.float32)
        nets.append(ZooNet(Path(path).stem, "", name, spec, weights, -1, -1, (np.nan, np.nan, np.nan)))
    return nets


@dataclass
class DecodedNet:
    name: str
    path: str
    architecture: str
    test_accuracy: float | None  # None for an INR (no images)
    target_accuracy: float | None


def decode_embeddings(model: LoadedNetSpace, vectors: np.ndarray, names: Sequence[str], out: str | os.PathLike[str],
                      targets: Sequence[float | None], command: list[str] | None = None,
                      device: torch.device | str = "cpu", force: bool = False) -> list[DecodedNet]:
    """One checkpoint per embedding in the folder ``out`` (written atomically as a whole)."""
    from nrtool.artifacts.core import atomic_folder, safe_child
    from nrtool.netspace.architectures import save_net

    if vectors.ndim != 2 or vectors.shape[1] != model.config.embedding:
        raise NrtoolError(f"embeddings of size {vectors.shape[-1]} cannot be decoded by a NetSpace of "
                          f"embedding {model.config.embedding}")
    images = netspace_images(model, device) if model.task == "classification" else None
    results, weights = [], []
    with atomic_folder(out, force) as tmp:
        for vector, name, target in zip(vectors, names, targets):
            net, architecture = model.decoded_net(torch.as_tensor(vector, device=device))
            net = net.to(device)
            score = accuracy(net, images.images["test"], images.labels["test"]) if images is not None else None
            path = safe_child(tmp, name, ".pt")
            info = model.architectures[architecture]
            save_net(path, net, info["spec"], {"fused": True, "accuracy": {"test": score}, "command": command or [],
                                                 "decoded_by": str(Path(model.path).resolve())})
            results.append(DecodedNet(name, str(Path(out) / path.name), info["name"], score, target))
            weights.append(torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu().numpy())
        if model.task == "sdf":  # decoded INRs as an `inrs` artifact: `nrtool reconstruct` takes it as is
            from nrtool.netspace.sdf import write_decoded_inrs

            write_decoded_inrs(tmp / "inrs.h5", model.images["path"], names, weights, command)
    return results


@dataclass
class Interpolation:
    a: str
    b: str
    gammas: list[float]
    embedding_accuracy: list[float]
    weight_accuracy: list[float]  # empty when the two networks' architectures differ
    targets: tuple[float, float]
    architectures: list[str] = field(default_factory=list)  # the decoded architecture at each point
    steadiness: dict[str, float] = field(default_factory=dict)


def steadiness(values: Sequence[float]) -> dict[str, float]:
    """How steadily a curve goes from its first to its last value: its largest fall between two
    neighbouring points and its largest dip below the straight line between its ends."""
    v = np.asarray(values, dtype=np.float64)
    line = np.linspace(v[0], v[-1], len(v))
    return {"largest_fall": float(max(0.0, -(np.diff(v) if v[-1] >= v[0] else -np.diff(v)).min())),
            "largest_dip": float(max(0.0, (line - v).max()))}


def interpolate(model: LoadedNetSpace, a: ZooNet, b: ZooNet, steps: int, where: str,
                device: torch.device | str = "cpu") -> Interpolation:
    """Test accuracy of the decoded ``(1 - g) e_a + g e_b`` and, for two networks of one
    architecture, of the weights ``(1 - g) w_a + g w_b``."""
    from nrtool.netspace.architectures import net_from_weights

    if steps < 2:
        raise NrtoolError(f"--steps must be at least 2, got {steps}")
    images = netspace_images(model, device)
    x, y = images.images["test"], images.labels["test"]
    e = torch.as_tensor(embed(model, [a, b], where, device), device=device)
    gammas = np.linspace(0.0, 1.0, steps)
    along_embedding, along_weights, decoded_as = [], [], []
    for g in gammas:
        net, architecture = model.decoded_net((1 - g) * e[0] + g * e[1])
        along_embedding.append(accuracy(net.to(device), x, y))
        decoded_as.append(model.architectures[architecture]["name"])
        if a.architecture == b.architecture:
            weights = (1 - g) * a.weights + g * b.weights
            along_weights.append(accuracy(net_from_weights(a.spec, weights.astype(np.float32)).to(device), x, y))
    measures = {"embedding_" + k: v for k, v in steadiness(along_embedding).items()}
    if along_weights:
        measures |= {"weights_" + k: v for k, v in steadiness(along_weights).items()}
    return Interpolation(a.name, b.name, [float(g) for g in gammas], along_embedding, along_weights,
                         (a.test_accuracy, b.test_accuracy), decoded_as, measures)


def interpolation_plot(result: Interpolation, png: str | os.PathLike[str], title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(result.gammas, np.array(result.embedding_accuracy) * 100, "-", c="C0", label="NetSpace embedding line")
    names = list(dict.fromkeys(result.architectures))
    for k, name in enumerate(names):  # one marker per decoded architecture (several: a multi-architecture space)
        at = [i for i, a in enumerate(result.architectures) if a == name]
        ax.plot(np.array(result.gammas)[at], np.array(result.embedding_accuracy)[at] * 100, "osD^v"[k % 5], c="C0",
                label=f"decoded as {name}" if len(names) > 1 else None)
    if result.weight_accuracy:
        ax.plot(result.gammas, np.array(result.weight_accuracy) * 100, "s--", c="C1", label="straight line between the weights")
    ax.scatter([0, 1], np.array(result.targets) * 100, marker="*", s=140, c="k", zorder=3, label="targets")
    ax.set(xlabel=f"γ  ({result.a} → {result.b})", ylabel="test accuracy (%)", title=title or "interpolation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, png)


@dataclass
class Optimisation:
    name: str
    target_accuracy: float
    initial_accuracy: float  # the decoded embedding before optimising (test images)
    optimized_accuracy: float  # the kept step's decoded network (test images)
    best_step: int
    steps: int
    embedding: np.ndarray
    history: list[dict[str, float]]


def freeze(model: LoadedNetSpace) -> None:
    """Latent-space optimisation moves the embedding alone."""
    for p in model.model.parameters():
        p.requires_grad_(False)


def optimize_embedding(model: LoadedNetSpace, net: ZooNet, steps: int, lr: float, where: str,
                       teacher: torch.nn.Module | None = None, alpha: float = 0.9, image_batch: int = 128,
                       val_every: int = 10, seed: int = 0, device: torch.device | str = "cpu",
                       progress: Any = None) -> Optimisation:
    """Latent-space optimisation of ``net``'s embedding (module docstring)."""
    from nrtool.progress import SilentProgress

    check_descent(steps, lr)
    if not 0 <= alpha <= 1:
        raise NrtoolError(f"need 0 <= alpha <= 1; got {alpha}")
    progress = progress or SilentProgress()
    images = netspace_images(model, device)
    architecture = _architecture_index(model, net, where)
    template = model.templates[architecture]
    freeze(model)
    start = torch.as_tensor(embed(model, [net], where, device), device=device)
    wanted = torch.tensor([architecture], device=device)
    generator = torch.Generator().manual_seed(seed)
    x, y = images.images["train"], images.labels["train"]
    T = model.config.temperature

    def loss_of(embedding: torch.Tensor) -> torch.Tensor:
        index = torch.randint(0, len(x), (image_batch,), generator=generator).to(device)
        logits = forward_with(template, model.decode(embedding)[0], x[index])
        loss = torch.nn.functional.cross_entropy(logits, y[index])
        if teacher is not None:
            with torch.no_grad():
                taught = teacher(x[index])
            loss = alpha * distillation_loss(logits, taught, T) + (1 - alpha) * loss
        if model.model.class_id is not None:  # keep the embedding where its architecture is (L_class)
            loss = loss + torch.nn.functional.cross_entropy(model.model.class_id(embedding), wanted)
        return loss

    def evaluate(embedding: torch.Tensor) -> dict[str, torch.Tensor]:
        prep = model.decode(embedding)[0]
        val, test = (accuracy(lambda batch: forward_with(template, prep, batch), images.images[s], images.labels[s])
                     for s in ("val", "test"))
        return {"score": torch.tensor([val]), "val_accuracy": torch.tensor([val]), "test_accuracy": torch.tensor([test])}

    with progress.task(f"optimising the embedding of {net.name}", steps, "steps") as advance:
        result = descend(start, loss_of, evaluate, steps, lr, val_every, advance)
    return Optimisation(net.name, net.test_accuracy, result.initial["test_accuracy"][0],
                        result.best["test_accuracy"][0], result.best_step[0], steps,
                        result.embeddings[0].cpu().numpy(), result.history)


def pick(zoo: Zoo, names: Sequence[str], split: str | None) -> list[ZooNet]:
    """The networks named (all of ``split`` when none are named; all when neither)."""
    if names:
        return [zoo.nets[zoo.index(n)] for n in names]
    nets = zoo.of_split(split) if split else zoo.nets
    if not nets:
        raise InputFileError(zoo.path, f"has no networks of split {split!r}")
    return nets
