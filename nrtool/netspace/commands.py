"""What the ``netspace encode|decode|interpolate|optimize`` commands do with files (the numerics are in
:mod:`nrtool.netspace.explore`): read the inputs, check them against the model, write the outputs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.zoo import Zoo, ZooNet
from nrtool.errors import InputFileError
from nrtool.netspace.explore import (
    DecodedNet,
    Interpolation,
    Optimisation,
    decode_embeddings,
    embed,
    interpolate,
    interpolation_plot,
    nets_from_checkpoints,
    optimize_embedding,
    pick,
)
from nrtool.netspace.sdf import (
    FieldOptimisation,
    ShapeInterpolation,
    optimize_inr_embeddings,
    write_decoded_inrs,
)


def _embedding_items(nets: Sequence[ZooNet], source: str) -> list[Any]:
    from nrtool.artifacts.core import ItemInfo

    return [ItemInfo(n.name, n.architecture, n.split or None, source, i, np.zeros(3), 1.0) for i, n in enumerate(nets)]


def _load(model_path: str | os.PathLike[str], device: str) -> tuple[Any, Any]:
    from nrtool.device import resolve_device
    from nrtool.netspace.train import load_netspace

    torch_device = resolve_device(device)
    return load_netspace(model_path, torch_device), torch_device


def encode_files(inputs: Sequence[str | os.PathLike[str]], model_path: str | os.PathLike[str],
                 out: str | os.PathLike[str], split: str | None, names: Sequence[str], device: str = "auto",
                 command: list[str] | None = None) -> dict[str, Any]:
    """Embeddings of zoo networks (``.h5``) and network checkpoints (anything else) into ``out``."""
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings
    from nrtool.artifacts.zoo import load_zoo

    model, torch_device = _load(model_path, device)
    vectors, items = [], []
    for path in inputs:
        if Path(path).suffix.lower() in (".h5", ".hdf5"):
            zoo = load_zoo(path)
            # --name picks from every zoo given (a zoo holding none of them adds nothing)
            nets = [n for n in zoo.nets if n.name in names] if names else pick(zoo, [], split)
        else:
            nets = nets_from_checkpoints([path])
        if not nets:
            continue
        vectors.append(embed(model, nets, str(path), torch_device))
        items += _embedding_items(nets, str(Path(path).resolve()))
    missing = sorted(set(names) - {i.name for i in items})
    if missing:
        raise InputFileError(inputs[0], f"holds no network named {missing[0]!r}")
    write_embeddings(out, Embeddings(np.concatenate(vectors), items, "netspace", ""),
                     provenance([model_path, *inputs]), command)
    return {"out": str(out), "count": len(items), "dim": model.config.embedding, "names": [i.name for i in items]}


def _zoo_accuracies(embeddings: Any) -> list[float | None]:
    """Each item's target test accuracy, when its source is a zoo that still holds it."""
    from nrtool.artifacts.zoo import load_zoo

    zoos: dict[str, Zoo | None] = {}
    out: list[float | None] = []
    for item in embeddings.items:
        if item.source not in zoos:
            try:
                zoos[item.source] = load_zoo(item.source) if item.source.endswith((".h5", ".hdf5")) else None
            except InputFileError:
                zoos[item.source] = None
        zoo = zoos[item.source]
        names = {n.name: n for n in zoo.nets} if zoo is not None else {}
        accuracy = names[item.name].test_accuracy if item.name in names else float("nan")
        out.append(None if np.isnan(accuracy) else accuracy)  # INRs have none
    return out


def decode_file(path: str | os.PathLike[str], model_path: str | os.PathLike[str], out: str | os.PathLike[str],
                names: Sequence[str], force: bool = False, device: str = "auto",
                command: list[str] | None = None) -> list[DecodedNet]:
    """Decode an ``embeddings`` artifact (or an ``.npy`` of one or more vectors) into checkpoints in ``out``."""
    from nrtool.artifacts.core import check_output_folder
    from nrtool.artifacts.embeddings import load_embeddings

    check_output_folder(out, force)
    model, torch_device = _load(model_path, device)
    if Path(path).suffix.lower() == ".npy":
        from nrtool.artifacts.core import read_vectors_npy

        vectors, items = read_vectors_npy(path)
        labels = [item.name for item in items]
        targets: list[float | None] = [None] * len(vectors)
    else:
        embeddings = load_embeddings(path)
        vectors, labels, targets = embeddings.vectors, embeddings.names, _zoo_accuracies(embeddings)
    if names:
        missing = [n for n in names if n not in labels]
        if missing:
            raise InputFileError(path, f"holds no item named {missing[0]!r}")
        rows = [labels.index(n) for n in names]
        vectors, labels, targets = vectors[rows], list(names), [targets[r] for r in rows]
    if not np.isfinite(vectors).all():
        raise InputFileError(path, "holds NaN or infinite embedding values")
    return decode_embeddings(model, np.asarray(vectors, dtype=np.float32), labels, out, targets, command, torch_device,
                             force)


def interpolate_file(zoo_path: str | os.PathLike[str], model_path: str | os.PathLike[str],
                     out: str | os.PathLike[str], a: str | None, b: str | None, steps: int,
                     device: str = "auto", progress: Any = None) -> Interpolation | ShapeInterpolation:
    """The embedding and weight lines between networks ``a`` and ``b``, a PNG at ``out``.

    Classifiers: test accuracy along both lines (default ends: the test networks of lowest and
    highest accuracy). INRs: the shapes along both lines and their Chamfer to A's and B's shapes
    (default ends: the first two test INRs)."""
    from nrtool.artifacts.zoo import load_zoo
    from nrtool.netspace.sdf import interpolate_shapes, shape_interpolation_plot

    model, torch_device = _load(model_path, device)
    zoo = load_zoo(zoo_path)
    if model.task == "sdf":
        test = pick(zoo, [], "test")
        if len(test) < 2 and not (a and b):
            raise InputFileError(zoo_path, "has fewer than two test INRs: name the ends with --a and --b")
        first = zoo.nets[zoo.index(a)] if a else test[0]
        second = zoo.nets[zoo.index(b)] if b else next(n for n in test if n.name != first.name)
        shapes = interpolate_shapes(model, first, second, steps, str(zoo_path), torch_device, progress)
        shape_interpolation_plot(shapes, out)
        return shapes
    test = sorted(pick(zoo, [], "test"), key=lambda n: n.test_accuracy)
    first = zoo.nets[zoo.index(a)] if a else test[0]
    second = zoo.nets[zoo.index(b)] if b else test[-1]
    result = interpolate(model, first, second, steps, str(zoo_path), torch_device)
    interpolation_plot(result, out, f"{Path(zoo_path).name}: {first.name} → {second.name}")
    return result


def optimized_embeddings_path(out: str | os.PathLike[str], inrs: bool) -> Path:
    """Where ``netspace optimize`` writes the kept embeddings: beside the checkpoint (``OUT.h5``), or
    beside the ``inrs`` artifact of a space of INRs (``OUT-embeddings.h5``)."""
    out = Path(out)
    return out.with_name(out.stem + "-embeddings.h5") if inrs else out.with_suffix(".h5")


def optimize_file(zoo_path: str | os.PathLike[str], model_path: str | os.PathLike[str], names: Sequence[str],
                  out: str | os.PathLike[str], steps: int, lr: float, teacher_path: str | os.PathLike[str] | None,
                  alpha: float, seed: int, device: str = "auto", progress: Any = None,
                  command: list[str] | None = None) -> Optimisation | FieldOptimisation:
    """Latent-space optimisation. Classifiers: one zoo network (default: the test network of median
    accuracy); its checkpoint at ``out``, its embedding at :func:`optimized_embeddings_path`.
    INRs: the networks named (default: every test INR) into an ``inrs`` artifact at ``out`` (the
    source items kept, so ``nrtool reconstruct --metrics`` scores them), their embeddings beside it."""
    import torch

    from nrtool.artifacts.core import ItemInfo, provenance
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings
    from nrtool.artifacts.zoo import load_zoo
    from nrtool.errors import NrtoolError
    from nrtool.netspace.architectures import load_net, save_net

    model, torch_device = _load(model_path, device)
    zoo = load_zoo(zoo_path)
    if model.task == "sdf":
        if teacher_path is not None:
            raise NrtoolError("--teacher is for spaces of classifiers; an INR is optimised towards its own field")
        nets = pick(zoo, names, "test")
        result = optimize_inr_embeddings(model, nets, steps, lr, str(zoo_path), seed=seed, device=torch_device,
                                         progress=progress)
        weights = [torch.nn.utils.parameters_to_vector(model.decoded_net(torch.as_tensor(e, device=torch_device))[0]
                                                       .parameters()).detach().cpu().numpy() for e in result.embeddings]
        write_decoded_inrs(out, model.images["path"], result.names, weights, command)
        write_embeddings(optimized_embeddings_path(out, True),
                         Embeddings(result.embeddings, _embedding_items(nets, str(Path(zoo_path).resolve())),
                                    "netspace", ""), provenance([model_path, zoo_path]), command)
        return result
    if len(names) > 1:
        raise NrtoolError(f"one --net at a time in a space of classifiers (got {len(names)})")
    if names:
        net = zoo.nets[zoo.index(names[0])]
    else:
        test = sorted(pick(zoo, [], "test"), key=lambda n: n.test_accuracy)
        net = test[len(test) // 2]
    teacher = load_net(teacher_path, torch_device)[0] if teacher_path is not None else None
    result = optimize_embedding(model, net, steps, lr, str(zoo_path), teacher, alpha if teacher is not None else 0.0,
                                seed=seed, device=torch_device, progress=progress)
    decoded, architecture = model.decoded_net(torch.as_tensor(result.embedding, device=torch_device))
    info = model.architectures[architecture]
    inputs = [model_path, zoo_path] + ([teacher_path] if teacher_path is not None else [])
    save_net(out, decoded, info["spec"], {"fused": True, "accuracy": {"test": result.optimized_accuracy},
                                          "optimized_from": net.name, "command": command or [],
                                          "decoded_by": str(Path(model_path).resolve())})
    item = ItemInfo(f"{net.name}-optimized", info["name"], None, str(Path(zoo_path).resolve()), 0, np.zeros(3), 1.0)
    write_embeddings(optimized_embeddings_path(out, False), Embeddings(result.embedding[None], [item], "netspace", ""),
                     provenance(inputs), command)
    return result
