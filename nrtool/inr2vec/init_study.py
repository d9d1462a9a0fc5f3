"""The shared-initialisation study (thesis Sec. 5.4, Fig. 5.6-5.7): why inr2vec fits every INR from one init.

K INRs per shape are fitted twice: from the one shared initialisation, and each from its own
(the same ground truth and query sampling in both, so the init is the only difference). Then:

- **the loss along the straight line** between two INRs of one shape (Fig. 5.7): from a shared
  init the line stays low; from independent inits it crosses a barrier;
- **weight matching** (Ainsworth et al., "Git Re-Basin", the "matching weights" method): for each
  hidden layer, the permutation of B's units that best aligns B's weights with A's, found by
  coordinate descent over the layers with one linear assignment
  (:func:`scipy.optimize.linear_sum_assignment`) per layer; how far each is from the identity;
- with an inr2vec encoder, **the L2 distances between the embeddings** of all INRs (Fig. 5.6):
  blocks by shape from a shared init, none from independent ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nrtool.artifacts.architecture import SirenSpec
from nrtool.inr.config import FitConfig
from nrtool.inr.fields import FieldName, distance_to_label, field_loss
from nrtool.inr.siren import batched_forward, siren_init, unflatten

CONDITIONS = ("shared", "independent")


@dataclass
class StudyInrs:
    """The study's INRs: ``params[condition]`` is ``(S * K, P)``, shape-major (shape s, copy k at row s K + k)."""

    names: list[str]
    per_shape: int
    spec: SirenSpec
    field: FieldName
    config: FitConfig
    params: dict[str, np.ndarray]
    queries: list[np.ndarray]  # per shape, the ground-truth queries of its first copy (for the line loss)
    labels: list[np.ndarray]


def fit_study_inrs(shapes: Sequence[Any], names: Sequence[str], config: FitConfig, field_name: FieldName,
                   per_shape: int, device: torch.device | str = "cpu", progress: Any = None) -> StudyInrs:
    """Fit ``per_shape`` INRs per shape from the shared init (``config.seed``) and from
    independent inits (seeds ``config.seed + 1 + row``). Copy k of a shape draws its ground-truth
    queries and its sampling with seed ``item_seed(config.seed + k, name)`` in both conditions."""
    from nrtool.geometry.ground_truth import compute_ground_truth, item_seed
    from nrtool.inr.fit import FitTarget, fit_batch
    from nrtool.progress import SilentProgress

    progress = progress or SilentProgress()
    spec = config.spec
    targets, queries, labels = [], [], []
    for shape, name in zip(shapes, names):
        for k in range(per_shape):
            seed = item_seed(config.seed + k, name)
            truth = compute_ground_truth(shape, field_name, config.queries, seed)
            targets.append(FitTarget(truth.queries, truth.values, seed))
            if k == 0:
                queries.append(np.asarray(truth.queries, dtype=np.float32))
                labels.append(distance_to_label(field_name, torch.as_tensor(truth.values, dtype=torch.float32)).numpy())
    inits = {"shared": siren_init(spec, config.seed),
             "independent": torch.stack([siren_init(spec, config.seed + 1 + row) for row in range(len(targets))])}
    params = {}
    with progress.task("fitting INRs from a shared and from independent inits", 2 * len(targets), "INRs") as advance:
        for condition in CONDITIONS:
            rows = []
            for first in range(0, len(targets), config.batch):
                init = inits[condition]
                init = init if init.ndim == 1 else init[first: first + config.batch]
                rows.append(fit_batch(targets[first: first + config.batch], field_name, config, init, device).params)
                advance(len(rows[-1]))
            params[condition] = np.concatenate(rows)
    return StudyInrs(list(names), per_shape, spec, field_name, config, params, queries, labels)


def line_losses(inrs: StudyInrs, shape: int, a: np.ndarray, b: np.ndarray, points: int = 11,
                eval_queries: int = 20_000) -> np.ndarray:
    """The fitting loss of ``(1 - t) a + t b`` (two INRs of ``shape``, flat ``(P,)``) on the
    shape's own queries, at ``points`` values of ``t`` in [0, 1] (Fig. 5.7)."""
    alphas = torch.linspace(0.0, 1.0, points)[:, None]
    line = (1 - alphas) * torch.as_tensor(a) + alphas * torch.as_tensor(b)
    q = torch.as_tensor(inrs.queries[shape])
    index = torch.linspace(0, len(q) - 1, min(eval_queries, len(q))).long()
    pts, lab = q[index], torch.as_tensor(inrs.labels[shape])[index]
    with torch.no_grad():
        logits = batched_forward(line, pts[None].expand(points, -1, -1), inrs.spec)
        loss = field_loss(inrs.field, logits, lab[None].expand(points, -1), loss=inrs.config.distance_loss(inrs.field))
    return loss.numpy()


def barrier(losses: np.ndarray) -> float:
    """How far the line rises above the straight line between its ends (its largest excess)."""
    ends = np.linspace(losses[0], losses[-1], len(losses))
    return float(max(0.0, (losses - ends).max()))


def match_weights(a: np.ndarray, b: np.ndarray, spec: SirenSpec, max_iterations: int = 100,
                  seed: int = 0) -> list[np.ndarray]:
    """Git Re-Basin's weight matching of SIREN ``b`` onto SIREN ``a`` (flat ``(P,)`` vectors).

    One permutation per hidden layer (``perm[l][i]`` = the unit of b that plays a's unit i).
    Coordinate descent: in a random order of layers, each permutation maximises
    ``<W_a^l, P W_b^l P_prev^T> + <b_a^l, P b_b^l> + <W_a^{l+1}, P_next W_b^{l+1} P^T>`` given the
    others, by one linear assignment, until no permutation changes."""
    from scipy.optimize import linear_sum_assignment

    layers_a = [(w[0].numpy().astype(np.float64), v[0].numpy().astype(np.float64))
                for w, v in unflatten(torch.as_tensor(a)[None], spec)]
    layers_b = [(w[0].numpy().astype(np.float64), v[0].numpy().astype(np.float64))
                for w, v in unflatten(torch.as_tensor(b)[None], spec)]
    hidden = len(layers_a) - 1  # every layer but the output one ends in permutable units
    perms = [np.arange(layers_a[i][0].shape[0]) for i in range(hidden)]
    rng = np.random.default_rng(seed)
    for _ in range(max_iterations):
        changed = False
        for layer in rng.permutation(hidden):
            wa, ba = layers_a[layer]
            wb, bb = layers_b[layer]
            inputs = perms[layer - 1] if layer > 0 else np.arange(wb.shape[1])
            similarity = wa @ wb[:, inputs].T + np.outer(ba, bb)  # (units of a, units of b)
            wa_next = layers_a[layer + 1][0]
            wb_next = layers_b[layer + 1][0]
            outputs = perms[layer + 1] if layer + 1 < hidden else np.arange(wb_next.shape[0])
            similarity += wa_next.T @ wb_next[outputs]
            _, best = linear_sum_assignment(similarity, maximize=True)
            if not np.array_equal(best, perms[layer]):
                perms[layer], changed = best, True
        if not changed:
            break
    return perms


def off_identity(perms: Sequence[np.ndarray]) -> float:
    """The fraction of hidden units (all layers) that a matching moves."""
    moved = sum(int((p != np.arange(len(p))).sum()) for p in perms)
    return moved / max(1, sum(len(p) for p in perms))


def permuted(b: np.ndarray, perms: Sequence[np.ndarray], spec: SirenSpec) -> np.ndarray:
    """SIREN ``b`` with its hidden units permuted by ``perms`` (the same function, other weights)."""
    layers = [(w[0].numpy().copy(), v[0].numpy().copy()) for w, v in unflatten(torch.as_tensor(b)[None], spec)]
    out = []
    for i, (w, v) in enumerate(layers):
        rows = perms[i] if i < len(perms) else np.arange(w.shape[0])
        cols = perms[i - 1] if i > 0 else np.arange(w.shape[1])
        out += [w[rows][:, cols].reshape(-1), v[rows]]
    return np.concatenate(out).astype(np.float32)


def distance_matrix(embeddings: np.ndarray) -> np.ndarray:
    """``(N, N)`` L2 distances between rows."""
    diff = embeddings[:, None, :] - embeddings[None, :, :]
    return np.sqrt((diff.astype(np.float64) ** 2).sum(-1))


def block_ratio(distances: np.ndarray, per_shape: int) -> float:
    """Mean distance between INRs of one shape over the mean between INRs of different shapes
    (well below 1: blocks by shape; about 1: none)."""
    n = len(distances)
    shape = np.arange(n) // per_shape
    same = (shape[:, None] == shape[None, :]) & ~np.eye(n, dtype=bool)
    other = shape[:, None] != shape[None, :]
    return float(distances[same].mean() / distances[other].mean())


@dataclass
class InitStudy:
    """What ``nrtool study init`` measured (``to_dict`` is its JSON)."""

    names: list[str]
    per_shape: int
    line: dict[str, list[list[float]]]  # condition -> per shape, the losses along the line
    barriers: dict[str, list[float]]
    off_identity: dict[str, list[float]]  # condition -> per shape, the matching's moved fraction
    matched_barriers: dict[str, list[float]]  # the line's barrier after permuting copy 1 onto copy 0
    block_ratio: dict[str, float] = field(default_factory=dict)  # with an encoder
    distances: dict[str, list[list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        summary = {f"mean_{key}": {c: float(np.mean(v)) for c, v in getattr(self, key).items()}
                   for key in ("barriers", "off_identity", "matched_barriers")}
        return {**self.__dict__, **summary}


def run_study(inrs: StudyInrs, encoder: Any = None, points: int = 11) -> InitStudy:
    """The measures of the module docstring on fitted :class:`StudyInrs`."""
    line: dict[str, list[list[float]]] = {c: [] for c in CONDITIONS}
    barriers: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    moved: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    matched: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    k = inrs.per_shape
    for condition in CONDITIONS:
        for s in range(len(inrs.names)):
            a, b = inrs.params[condition][s * k], inrs.params[condition][s * k + 1]
            losses = line_losses(inrs, s, a, b, points)
            line[condition].append([float(v) for v in losses])
            barriers[condition].append(barrier(losses))
            perms = match_weights(a, b, inrs.spec)
            moved[condition].append(off_identity(perms))
            matched[condition].append(barrier(line_losses(inrs, s, a, permuted(b, perms, inrs.spec), points)))
    study = InitStudy(inrs.names, k, line, barriers, moved, matched)
    if encoder is not None:
        with torch.no_grad():
            for condition in CONDITIONS:
                device = next(encoder.parameters()).device
                embedded = encoder.encode(torch.as_tensor(inrs.params[condition], device=device)).cpu().numpy()
                d = distance_matrix(embedded)
                study.distances[condition] = d.tolist()
                study.block_ratio[condition] = block_ratio(d, k)
    return study


def study_figure(study: InitStudy, png: Any) -> None:
    """Fig. 5.7 (loss along the line, both conditions) and, with an encoder, Fig. 5.6 (the distance matrices)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    panels = 1 + len(study.distances)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8))
    axes = np.atleast_1d(axes)
    for condition, colour in zip(CONDITIONS, ("C0", "C3")):
        for s, losses in enumerate(study.line[condition]):
            axes[0].plot(np.linspace(0, 1, len(losses)), losses, c=colour, alpha=0.7,
                         label=f"{condition} init" if s == 0 else None)
    axes[0].set(xlabel="α  (copy 0 → copy 1 of one shape)", ylabel="fitting loss", yscale="log",
                title="loss along the line between two INRs")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    for ax, condition in zip(axes[1:], study.distances):
        image = ax.imshow(np.asarray(study.distances[condition]), cmap="viridis")
        ax.set(title=f"{condition} init: embedding L2 (within/between {study.block_ratio[condition]:.2f})",
               xlabel=f"INR ({study.per_shape} per shape)", ylabel="INR")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, png)


def init_study_to_folder(inputs: Sequence[str], out: Any, config: FitConfig, field_name: str = "auto",
                         per_shape: int = 3, encoder_path: Any = None, line_points: int = 11, device: str = "auto",
                         progress: Any = None, force: bool = False) -> InitStudy:
    """``nrtool study init``: fit, measure, and write ``OUT/study.json`` and ``OUT/study.png`` at once."""
    import json

    from nrtool.artifacts.core import atomic_folder
    from nrtool.artifacts.inrs import init_digest
    from nrtool.device import resolve_device
    from nrtool.errors import InputFileError, NrtoolError
    from nrtool.geometry.ground_truth import auto_field, check_field
    from nrtool.io import discover_inputs, load_shape

    if per_shape < 2:
        raise NrtoolError(f"--per-shape must be at least 2 (a line needs two INRs of one shape), got {per_shape}")
    if line_points < 3:
        raise NrtoolError(f"--line-points must be at least 3, got {line_points}")
    torch_device = resolve_device(device)
    encoder = None
    if encoder_path is not None:
        from nrtool.inr2vec.train import load_model

        encoder, checkpoint = load_model(encoder_path, torch_device)
        wanted = checkpoint["inr"]
        arch = wanted["architecture"]
        config = config.with_overrides(hidden=int(arch["hidden"]), layers=int(arch["layers"]),
                                       omega0=float(arch["omega0"]))
        if field_name not in ("auto", wanted["field"]):
            raise InputFileError(encoder_path, f"embeds {wanted['field']} INRs, not --field {field_name}")
        field_name = wanted["field"]
        if init_digest(siren_init(config.spec, config.seed).numpy()) != wanted["init_sha256"]:
            raise InputFileError(encoder_path, f"was trained on INRs of another shared init than --seed {config.seed} "
                                 "gives: pass the --seed `nrtool fit-inr` used")
    config.validate()
    sources = discover_inputs(inputs)
    if len(sources) < 2:
        raise NrtoolError(f"the study needs at least 2 shapes, got {len(sources)}")
    shapes = [load_shape(s.path) for s in sources]
    if field_name == "auto":
        fields = {auto_field(shape) for shape in shapes}
        if len(fields) > 1:
            raise NrtoolError(f"the shapes call for different fields ({', '.join(sorted(fields))}): pass --field")
        field_name = fields.pop()
    for shape in shapes:
        check_field(shape, field_name)  # type: ignore[arg-type]
    with atomic_folder(out, force) as tmp:
        inrs = fit_study_inrs(shapes, [s.name for s in sources], config, field_name, per_shape,  # type: ignore[arg-type]
                              torch_device, progress)
        study = run_study(inrs, encoder, line_points)
        (tmp / "study.json").write_text(json.dumps({**study.to_dict(), "field": field_name, "fit": config.to_dict(),
                                                    "encoder": str(encoder_path) if encoder_path else None},
                                                   indent=1, default=str))
        study_figure(study, tmp / "study.png")
    return study
