"""NetSpace of INRs (thesis Sec. 4.4.3, App. B.4): a zoo made of an ``inrs`` artifact's SIRENs.

Each fitted INR (here: the SDF of one shape) is a network of the zoo: architecture ``siren``, its
flat parameters as weights (the ``inrs`` layout is PyTorch's ``named_parameters`` order), the
artifact's train / test split, and ``val_nets`` training INRs set aside for validation. NetSpace
then learns their space with ``L_pred = MSE(y_p, y_t)`` (Eq. 4.2): the predicted and the target
SIREN's fields (an sdf in normalised units: the INRs' sigmoid outputs mapped back, clipped at
0.1) at the same points of [-1, 1]^3, half of them where the target's surface is
(:func:`field_points`). Decoded INRs go back into an ``inrs``
artifact with the source items (names, sources, normalisation), so ``nrtool reconstruct --metrics``
measures each decoded shape against its own source. :func:`interpolate_shapes` walks the line
between two INRs' embeddings and, beside it, the straight line between their weights (Fig. 4.5).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.architecture import SirenSpec
from nrtool.artifacts.zoo import Zoo, ZooNet
from nrtool.errors import InputFileError
from nrtool.nn.descent import Descent, check_descent, descend

NAN_ACCURACY = (float("nan"),) * 3


def is_inr_zoo(zoo_images: dict[str, Any]) -> bool:
    return zoo_images.get("source") == "inrs"


def zoo_from_inrs(inrs_path: str | os.PathLike[str], val_nets: int, seed: int = 0) -> Zoo:
    """The INRs of an ``inrs`` artifact as a zoo (its test split kept; ``val_nets`` training INRs to val)."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.artifacts.inrs import load_inrs

    header, items = load_inrs(inrs_path)
    train = [i for i, item in enumerate(items) if item.split != "test"]
    if len(train) <= val_nets:
        raise InputFileError(inrs_path, f"has {len(train)} training INRs; need more than --val-nets {val_nets}")
    val = set(np.random.default_rng(seed).permutation(train)[:val_nets].tolist())
    spec = {"architecture": "siren", **header.spec.to_dict()}
    nets = [ZooNet(item.name, "test" if item.split == "test" else "val" if i in val else "train", "siren", spec,
                   np.asarray(item.params, dtype=np.float32), -1, -1, NAN_ACCURACY) for i, item in enumerate(items)]
    classes = sorted({item.class_name for item in items if item.class_name})
    path = str(Path(inrs_path).resolve())
    return Zoo(nets, {"source": "inrs", "path": path, "field": header.field}, sha256_file(inrs_path), classes,
               {"from_inrs": path, "val_nets": val_nets, "seed": seed})


def random_points(count: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """(count, 3) points uniform in [-1, 1]^3 (the normalised frame every INR was fitted in)."""
    return (torch.rand((count, 3), generator=generator) * 2 - 1).to(device)


def inr_fields(preps: torch.Tensor, points: torch.Tensor, spec: SirenSpec, field: str) -> torch.Tensor:
    """B INRs' fields (sdf/udf in normalised units, occupancy probability) at their own points.

    ``preps`` (B, ...) holds each INR's parameters first (a PRep, or flat ``inrs`` rows); ``points``
    (B, M, 3). One batched SIREN evaluation (:func:`nrtool.inr.siren.batched_forward`), the fitter's."""
    from nrtool.inr.fields import logits_to_field
    from nrtool.inr.siren import batched_forward

    flat = preps.reshape(len(preps), -1)[:, : spec.n_params]
    return logits_to_field(field, batched_forward(flat, points, spec))


def surface_gap(values: torch.Tensor, field: str) -> torch.Tensor:
    """How far field values are from the surface's level: occupancy's is 0.5, a distance's 0."""
    return (values - 0.5 if field == "occ" else values).abs()


def field_points(spec: SirenSpec, preps: torch.Tensor, candidates: torch.Tensor, field: str) -> torch.Tensor:
    """Where two INRs' fields are compared, per target INR of ``preps`` (B, ...): of ``4 N`` uniform
    candidates (4N, 3), the ``N / 2`` where the target's field is nearest its surface, and ``N / 2``
    of the rest at random; (B, N, 3). Uniform points alone are almost all far from the surface,
    where an SDF INR's field is flat at its clip value: the shape would hardly count in the loss."""
    n = len(candidates) // 4
    batch = len(preps)
    with torch.no_grad():
        values = inr_fields(preps, candidates.expand(batch, -1, -1), spec, field)
    near = surface_gap(values, field).topk(n // 2, dim=1, largest=False).indices
    rest = torch.ones_like(values, dtype=torch.bool)
    rest.scatter_(1, near, False)
    # The candidates are uniform: any of the rest is random; take each row's first N - N/2 of them.
    rest &= rest.cumsum(1) <= n - n // 2
    others = rest.nonzero()[:, 1].view(batch, n - n // 2)
    return candidates[torch.cat([near, others], dim=1)]


#: Near-surface points banked per training INR (:func:`near_surface_bank`), in multiples of a step's share.
BANK_STEPS = 8
#: Candidates evaluated at once while banking (bounds the memory of the (B, M, hidden) activations).
BANK_CHUNK = 1 << 17


def near_surface_bank(spec: SirenSpec, preps: torch.Tensor, field: str, size: int, generator: torch.Generator,
                      advance: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` points per INR near its surface, and its field there: ``(B, size, 3)``, ``(B, size)``.

    The same rule as :func:`field_points` (the nearest eighth of uniform candidates), applied once
    to ``8 size`` candidates per INR instead of at every step: the target INRs do not change while
    NetSpace trains, and re-evaluating 4 N candidates per target and step was half of an SDF step's
    work (measured 0.111 -> 0.050 s per tiny step on 2 CPU cores). ``advance(1)`` after each INR."""
    points, values = [], []
    with torch.no_grad():
        for row in preps:
            candidates = random_points(8 * size, generator, preps.device)
            level = torch.cat([inr_fields(row[None], chunk[None], spec, field)[0]
                               for chunk in candidates.split(BANK_CHUNK)])
            near = surface_gap(level, field).topk(size, largest=False).indices
            points.append(candidates[near])
            values.append(level[near])
            if advance is not None:
                advance(1)
    return torch.stack(points), torch.stack(values)


def write_decoded_inrs(path: str | os.PathLike[str], source: str | os.PathLike[str], names: Sequence[str],
                       weights: Sequence[np.ndarray], command: list[str] | None = None) -> None:
    """An ``inrs`` artifact of decoded INRs, each with its source item's name, mesh and normalisation."""
    from dataclasses import replace

    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.inrs import load_inrs, write_inrs

    header, items = load_inrs(source)
    by_name = {item.name: item for item in items}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputFileError(source, f"holds no INR named {missing[0]!r} (decoded items keep their source's names)")
    decoded = [replace(by_name[n], params=np.asarray(w, dtype=np.float32), final_loss=float("nan"))
               for n, w in zip(names, weights)]
    write_inrs(path, header, decoded, provenance([source]), command)


def write_inr_zoo(inrs_path: str | os.PathLike[str], out: str | os.PathLike[str], val_nets: int, seed: int = 0,
                  command: list[str] | None = None) -> Zoo:
    """``netspace zoo --from-inrs``: the zoo of an ``inrs`` artifact, written to ``out``."""
    from nrtool.artifacts.core import check_output_file, output_lock, provenance
    from nrtool.artifacts.zoo import write_zoo

    out = check_output_file(out, "--out")
    with output_lock(out):
        zoo = zoo_from_inrs(inrs_path, val_nets, seed)
        write_zoo(out, zoo, provenance([inrs_path]), command)
    zoo.path = str(out)
    return zoo


#: Marching-cubes grid of the shapes along an interpolation line (coarser than `reconstruct`'s 128:
#: 2 x steps shapes per run).
LINE_RESOLUTION = 64


@dataclass
class ShapeInterpolation:
    """Shapes along the embedding line and the weight line between two INRs (thesis Fig. 4.5).

    ``embedding`` and ``weights`` hold, per point of the line, the Chamfer distance (normalised
    frame) of the decoded shape to A's and to B's source shape and its face count; the distances
    are None where the INR has no surface. ``targets``: the two input INRs' own distances to their
    sources, what the ends of a perfect line would score."""

    a: str
    b: str
    gammas: list[float]
    embedding: list[dict[str, Any]]
    weights: list[dict[str, Any]]
    targets: dict[str, float]
    clouds: dict[str, list[np.ndarray | None]] = field(default_factory=dict, repr=False)  # for the figure

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "clouds"}


def _shape_of(flat: np.ndarray, header: Any, references: Sequence[np.ndarray], device: torch.device | str
              ) -> tuple[dict[str, Any], np.ndarray | None]:
    """One INR's shape, scored against A's and B's ``references`` (its Chamfer as ``chamfer_a|b``)."""
    from nrtool.geometry.metrics import chamfer_distance
    from nrtool.inr.reconstruction import (
        METRIC_POINTS,
        ReconstructionSettings,
        discretise,
        field_function,
    )

    recon = discretise(header.field, field_function(header, flat, device),
                       ReconstructionSettings(resolution=LINE_RESOLUTION), device)
    row: dict[str, Any] = {"faces": int(recon.size)}
    ours = recon.surface_points(METRIC_POINTS, seed=2) if recon.size else None  # as `reconstruct --metrics` samples
    for key, reference in zip("ab", references):
        row[f"chamfer_{key}"] = float(chamfer_distance(ours, reference)) if ours is not None else None
    return row, recon.comparison_points(2_000)


def interpolate_shapes(model: Any, a: ZooNet, b: ZooNet, steps: int, where: str,
                       device: torch.device | str = "cpu", progress: Any = None) -> ShapeInterpolation:
    """The decoded ``(1 - g) e_a + g e_b`` and the weights ``(1 - g) w_a + g w_b`` as shapes,
    each measured against A's and B's sources (the thesis shows the same two lines as pictures)."""
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.errors import NrtoolError
    from nrtool.inr.reconstruction import source_reference
    from nrtool.netspace.explore import embed
    from nrtool.progress import SilentProgress

    if steps < 2:
        raise NrtoolError(f"--steps must be at least 2, got {steps}")
    header, items = load_inrs(model.images["path"])
    by_name = {item.name: item for item in items}
    if a.name not in by_name or b.name not in by_name:
        raise InputFileError(model.images["path"], f"holds no INR named {a.name!r} or {b.name!r}")
    references = [source_reference(header.field, by_name[n.name]) for n in (a, b)]  # each source read once
    e = torch.as_tensor(embed(model, [a, b], where, device), device=device)
    gammas = [float(g) for g in np.linspace(0.0, 1.0, steps)]
    result = ShapeInterpolation(a.name, b.name, gammas, [], [], {}, {"embedding": [], "weights": []})
    progress = progress or SilentProgress()
    with progress.task("shapes along both lines", 2 * steps, "shapes") as advance:
        for g in gammas:
            net, _ = model.decoded_net((1 - g) * e[0] + g * e[1])
            decoded = torch.nn.utils.parameters_to_vector(net.parameters()).detach().cpu().numpy()
            for line, flat in (("embedding", decoded), ("weights", (1 - g) * a.weights + g * b.weights)):
                row, cloud = _shape_of(flat, header, references, device)
                getattr(result, line).append(row)
                result.clouds[line].append(cloud)
                advance()
    # The weight line's ends are the two input INRs themselves.
    result.targets = {"chamfer_a": result.weights[0]["chamfer_a"], "chamfer_b": result.weights[-1]["chamfer_b"]}
    return result


def shape_interpolation_plot(result: ShapeInterpolation, png: str | os.PathLike[str], title: str = "") -> None:
    """Two rows of shapes: the embedding line over the weight line, each labelled with its Chamfer to A and B."""
    from nrtool.plots import point_rows

    def labels(rows: list[dict[str, Any]]) -> list[str]:
        return [f"γ {g:.2f}\n" + ("no surface" if r["chamfer_a"] is None else
                                   f"A {r['chamfer_a']:.3f} B {r['chamfer_b']:.3f}")
                for g, r in zip(result.gammas, rows)]

    point_rows([("NetSpace embedding line", result.clouds["embedding"], labels(result.embedding)),
                ("straight line between the weights", result.clouds["weights"], labels(result.weights))],
               png, title or f"{result.a} → {result.b} (Chamfer to A's and B's shapes)")


@dataclass
class FieldOptimisation:
    """Latent-space optimisation of INRs' embeddings: per INR, the field MSE to the INR itself
    (Eq. 4.2, at held-out points) of its decoded embedding and of the kept optimised one."""

    names: list[str]
    initial_mse: list[float]
    optimized_mse: list[float]
    best_step: list[int]
    steps: int
    embeddings: np.ndarray = field(repr=False)
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "embeddings"}


#: INRs optimised together: larger groups are slower per INR on a CPU, as their (INRs, points,
#: hidden) activations leave the caches. 95 PSB INRs x 200 steps, 2 cores: 322 s all at once, 155 s
#: in groups of 16 (`make bench`, netspace: the same side by side on 48 INRs).
LSO_GROUP = 16


def optimize_inr_embeddings(model: Any, nets: Sequence[ZooNet], steps: int, lr: float, where: str,
                            val_every: int = 10, seed: int = 0, device: torch.device | str = "cpu",
                            progress: Any = None) -> FieldOptimisation:
    """LSO in a space of INRs (Sec. 4.4.7's loop; the task is Eq. 4.2's): from each INR's embedding,
    the embedding alone descends the MSE between the decoded INR's field and the INR's own.

    An INR's task is to be its shape, so the loss is the training loss of NetSpace itself, per INR:
    half the points near the INR's surface (a bank of ``4 N``, :func:`near_surface_bank`), half
    uniform, ``N`` = the model's ``points``. The kept embedding is the one of lowest MSE at ``N``
    other points drawn the same way (held out from the steps). The INRs move in groups of
    :data:`LSO_GROUP`, each as if alone. Decoding an unseen INR is where a small NetSpace fails
    (Chamfer 33x its INR's on the suite's PSB subset); this recovers much of it (README)."""
    from nrtool.netspace.explore import freeze
    from nrtool.progress import SilentProgress

    check_descent(steps, lr)
    freeze(model)
    progress = progress or SilentProgress()
    groups = [list(nets[i: i + LSO_GROUP]) for i in range(0, len(nets), LSO_GROUP)]
    results = []
    with progress.task(f"optimising the embeddings of {len(nets)} INRs", steps * len(groups), "steps") as advance:
        for k, group in enumerate(groups):
            # each group its own seeds (points and held-out points), fixed by --seed
            results.append(_optimize_group(model, group, steps, lr, where, val_every, seed + 10 * k, device, advance))
    # Per evaluation, the mean over all INRs (a group's loss is the sum of its INRs')
    history = [{key: float(np.average([r.history[i][key] / (len(g) if key == "loss" else 1)
                                      for r, g in zip(results, groups)], weights=[len(g) for g in groups]))
                for key in results[0].history[i]} for i in range(len(results[0].history))]
    return FieldOptimisation([net.name for net in nets], [v for r in results for v in r.initial["field_mse"]],
                             [v for r in results for v in r.best["field_mse"]],
                             [v for r in results for v in r.best_step], steps,
                             np.concatenate([r.embeddings.cpu().numpy() for r in results]), history)


def _optimize_group(model: Any, nets: list[ZooNet], steps: int, lr: float, where: str, val_every: int, seed: int,
                    device: torch.device | str, advance: Any) -> Descent:
    """:func:`optimize_inr_embeddings` for one group of INRs: a :class:`nrtool.nn.descent.Descent`."""
    from nrtool.netspace.explore import embed
    from nrtool.netspace.train import preps_of

    spec, kind, n = model.templates[0].spec, model.images["field"], model.config.points
    targets = preps_of(nets, model.prep_shape).to(device)
    rows = torch.arange(len(nets), device=device)[:, None]
    bank, _ = near_surface_bank(spec, targets, kind, 4 * n, torch.Generator().manual_seed(seed + 1))
    held_out, _ = near_surface_bank(spec, targets, kind, n // 2, torch.Generator().manual_seed(seed + 2))
    uniform = random_points(len(nets) * (n - n // 2), torch.Generator().manual_seed(seed + 3), device)
    check_points = torch.cat([held_out, uniform.view(len(nets), -1, 3)], dim=1)
    with torch.no_grad():
        check_values = inr_fields(targets, check_points, spec, kind)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(embeddings: torch.Tensor) -> torch.Tensor:
        near = bank[rows, torch.randint(0, bank.shape[1], (len(nets), n // 2), generator=generator).to(device)]
        points = torch.cat([near, random_points(len(nets) * (n - n // 2), generator, device).view(len(nets), -1, 3)], 1)
        with torch.no_grad():
            wanted = inr_fields(targets, points, spec, kind)
        return ((inr_fields(model.decode(embeddings), points, spec, kind) - wanted) ** 2).mean(1).sum()

    def evaluate(embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        mse = ((inr_fields(model.decode(embeddings), check_points, spec, kind) - check_values) ** 2).mean(1)
        return {"score": -mse, "field_mse": mse}

    start = torch.as_tensor(embed(model, nets, where, device), device=device)
    return descend(start, loss_of, evaluate, steps, lr, val_every, advance)
