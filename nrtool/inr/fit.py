"""Batched INR fitting: B SIRENs trained at once as one stacked parameter tensor.

Each INR's loss is the mean over its own points and the batch loss is their *sum*, so every
INR receives exactly the gradient it would get alone; Adam is element-wise, so its updates are
per-INR too. Fitting B INRs together is therefore the same computation as fitting them one by one,
with one batched matmul per layer instead of B small ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nrtool.inr.config import FitConfig
from nrtool.inr.fields import FieldName, distance_to_label, field_loss
from nrtool.inr.siren import batched_forward

#: Queries per INR used to report the final loss (all of them when there are fewer).
FINAL_LOSS_QUERIES = 20_000
#: Steps whose query indices are drawn at once: on the CPU, from each INR's own generator (so every
#: device fits the same points, and the draws equal one per step), then moved in one copy instead of
#: one small blocking copy per step.
INDEX_CHUNK = 32


@dataclass(frozen=True)
class FitTarget:
    """One INR's training data in the normalised frame: queries (Q,3), field values (Q,)."""

    queries: np.ndarray
    values: np.ndarray
    seed: int


@dataclass(frozen=True)
class FitResult:
    params: np.ndarray  # (B, P) float32
    final_loss: np.ndarray  # (B,) float32


def _stack_padded(targets: Sequence[FitTarget], field: FieldName, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (B, Qmax, 3) and labels (B, Qmax); rows shorter than Qmax are zero-padded and
    never sampled, since each INR draws indices below its own Q."""
    q_max = max(len(t.queries) for t in targets)
    queries = torch.zeros(len(targets), q_max, 3)
    labels = torch.zeros(len(targets), q_max)
    for row, target in enumerate(targets):
        n = len(target.queries)
        queries[row, :n] = torch.from_numpy(np.asarray(target.queries, dtype=np.float32))
        labels[row, :n] = distance_to_label(field, torch.from_numpy(np.asarray(target.values, dtype=np.float32)))
    return queries.to(device), labels.to(device)


def _gather(queries: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of queries (B,Q,3)/labels (B,Q) at per-INR indices (B,M)."""
    points = torch.gather(queries, 1, index.unsqueeze(-1).expand(-1, -1, 3))
    return points, torch.gather(labels, 1, index)


def _scheduler(optimizer: torch.optim.Optimizer, config: FitConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``cosine``: lr x (1 + cos(pi t / T)) / 2, so the last steps refine with small updates."""
    if config.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)


def _step_indices(sizes: Sequence[int], generators: Sequence[torch.Generator], config: FitConfig,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """Each step's (B, points) query indices, drawn :data:`INDEX_CHUNK` steps at a time."""
    for first in range(0, config.steps, INDEX_CHUNK):
        count = min(INDEX_CHUNK, config.steps - first)
        chunk = torch.stack([torch.randint(size, (count, config.points), generator=gen)
                             for size, gen in zip(sizes, generators)], dim=1)
        if device.type == "cuda":  # pinned: the copy overlaps the steps already queued
            chunk = chunk.pin_memory().to(device, non_blocking=True)
        yield from chunk


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """The matmul precision of :attr:`FitConfig.precision` for the fit's forward passes.

    ``tf32``: CUDA matmuls in TensorFloat-32 (10-bit mantissa inputs, float32 sums; no effect on
    the CPU). ``bf16``: autocast, so the layer matmuls run in bfloat16; the parameters, the loss
    and Adam stay float32 (see :func:`fit_batch`)."""
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32" and device.type == "cuda":
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before
    else:
        yield


def _loss_kwargs(field: FieldName, config: FitConfig) -> dict[str, object]:
    """:func:`field_loss`'s settings for this field and config (the step's loss and the final one)."""
    return {"focal_alpha": config.focal_alpha, "focal_gamma": config.focal_gamma, "loss": config.distance_loss(field)}


def step_loss_function(field: FieldName, config: FitConfig) -> Callable[..., torch.Tensor]:
    """``loss(params, queries, labels, index)``: the summed per-INR loss of one step, compiled with
    ``torch.compile`` when :attr:`FitConfig.compile` asks (one graph for the gather, the SIREN and
    the loss; recompiled once for a smaller last batch)."""
    spec = config.spec
    kwargs = _loss_kwargs(field, config)

    def loss(params: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        points, point_labels = _gather(queries, labels, index)
        logits = batched_forward(params, points, spec).float()  # the loss in float32 under bf16 autocast
        return field_loss(field, logits, point_labels, **kwargs).sum()

    return torch.compile(loss, dynamic=False) if config.compile else loss


def fit_memory_per_inr(config: FitConfig, queries: int) -> int:
    """Bytes one INR of a batch needs while it fits (what ``--batch auto`` divides free memory by).

    Per hidden layer, autograd keeps the matmul output (sin's input) and the sine (the next
    matmul's input), and the backward holds about one more of each: 4 activations of points x
    hidden (2 bytes each under bf16 for the kept ones, 4 otherwise). Plus the parameters, their
    gradient and Adam's two moments (16 bytes each), and the queries and labels (16 bytes each).
    ``tests/test_fit_speedups.py`` checks the activation part against what autograd saves."""
    spec = config.spec
    kept = 2 if config.precision == "bf16" else 4
    activations = (spec.layers + 1) * config.points * spec.hidden * (2 * kept + 2 * 4)
    return activations + 16 * spec.n_params + 16 * queries


#: Share of the free GPU memory ``--batch auto`` plans for (the rest: the allocator's slack, the
#: reconstruction of the final loss, other processes).
AUTO_BATCH_SHARE = 0.6


def auto_batch_size(config: FitConfig, device: torch.device, items: int) -> tuple[int, str]:
    """``--batch auto``: on CUDA, as many INRs as :data:`AUTO_BATCH_SHARE` of the free memory holds
    (:func:`fit_memory_per_inr`); on the CPU, where a larger batch buys no speed, the preset's."""
    items = max(1, items)
    if device.type != "cuda":
        return min(config.batch, items), f"--batch auto on the CPU: batches of {min(config.batch, items)} (the preset's)"
    free, _ = torch.cuda.mem_get_info(device)
    per_inr = fit_memory_per_inr(config, config.queries.total)
    batch = max(1, min(items, int(AUTO_BATCH_SHARE * free) // per_inr))
    return batch, (f"--batch auto: batches of {batch} ({per_inr / 2**20:.0f} MiB per INR, "
                   f"{free / 2**30:.1f} GiB free on {device})")


def fit_batch(
    targets: Sequence[FitTarget],
    field: FieldName,
    config: FitConfig,
    init: torch.Tensor,
    device: torch.device | str = "cpu",
    on_step: Callable[[int], None] | None = None,
) -> FitResult:
    """Fit one SIREN per target, all starting from the shared ``init`` (P,) -- or each from its
    own row of ``init`` (B, P) (the shared-initialisation study's independent inits).

    Sampling is driven by each target's own seed, so an INR does not depend on which other INRs
    share its batch.
    """
    device = torch.device(device)
    spec = config.spec
    queries, labels = _stack_padded(targets, field, device)
    sizes = [len(t.queries) for t in targets]
    generators = [torch.Generator().manual_seed(t.seed) for t in targets]
    init = init.to(device=device, dtype=torch.float32)
    if init.ndim == 2 and init.shape[0] != len(targets):
        raise ValueError(f"{init.shape[0]} initialisations for {len(targets)} INRs")
    params = (init.clone() if init.ndim == 2 else init.unsqueeze(0).repeat(len(targets), 1)).requires_grad_()
    optimizer = torch.optim.Adam([params], lr=config.lr)
    scheduler = _scheduler(optimizer, config)
    step_loss = step_loss_function(field, config)

    for step, index in enumerate(_step_indices(sizes, generators, config, device)):
        with precision_mode(config.precision, device):
            loss = step_loss(params, queries, labels, index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if on_step is not None:
            on_step(step + 1)

    with torch.no_grad():
        n_eval = min(FINAL_LOSS_QUERIES, min(sizes))
        # Evenly spaced queries cover every sampling band (near-surface and uniform) alike.
        index = torch.stack([torch.linspace(0, size - 1, n_eval).long() for size in sizes]).to(device)
        points, point_labels = _gather(queries, labels, index)
        final = field_loss(field, batched_forward(params, points, spec), point_labels, **_loss_kwargs(field, config))
    return FitResult(params=params.detach().cpu().numpy(), final_loss=final.cpu().numpy())
