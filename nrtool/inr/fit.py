"""Batched INR fitting: B SIRENs trained at once as one stacked parameter tensor.

Each INR's loss is the mean over its own points and the batch loss is their *sum*, so every
INR receives exactly the gradient it would get alone; Adam is element-wise, so its updates are
per-INR too. Fitting B INRs together is therefore the same computation as fitting them one by one,
with one batched matmul per layer instead of B small ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nrtool.inr.config import FitConfig
from nrtool.inr.fields import FieldName, distance_to_label, field_loss
from nrtool.inr.siren import batched_forward

#: Queries per INR used to report the final loss (all of them when there are fewer).
FINAL_LOSS_QUERIES = 20_000


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
    loss_kwargs = {"focal_alpha": config.focal_alpha, "focal_gamma": config.focal_gamma, "loss": config.distance_loss(field)}

    for step in range(config.steps):
        index = torch.stack(
            [torch.randint(size, (config.points,), generator=gen) for size, gen in zip(sizes, generators)]
        ).to(device)
        points, point_labels = _gather(queries, labels, index)
        logits = batched_forward(params, points, spec)
        loss = field_loss(field, logits, point_labels, **loss_kwargs).sum()
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
        final = field_loss(field, batched_forward(params, points, spec), point_labels, **loss_kwargs)
    return FitResult(params=params.detach().cpu().numpy(), final_loss=final.cpu().numpy())
