"""Latent-space optimisation's one loop: embeddings descend a loss through a frozen model.

Used by NetSpace's LSO of classifiers and of INRs (:mod:`nrtool.netspace.explore`,
:mod:`nrtool.netspace.sdf`) and by inr2vec's ``encode --refine`` (:mod:`nrtool.inr2vec.encode`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from nrtool.errors import NrtoolError


@dataclass
class Descent:
    """Embeddings moved by :func:`descend`: per row the best one seen, when, and its evaluation."""

    embeddings: torch.Tensor  # (B, E), each row's best
    best_step: list[int]
    initial: dict[str, list[float]]  # the evaluation of the start embeddings, per row
    best: dict[str, list[float]]  # the evaluation of the kept ones, per row
    history: list[dict[str, float]]  # per evaluation: the step, the loss and each measure's mean over the rows


def descend(start: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor],
            evaluate: Callable[[torch.Tensor], dict[str, torch.Tensor]], steps: int, lr: float, val_every: int,
            advance: Callable[[int], Any]) -> Descent:
    """Latent-space optimisation's loop: Adam on the embeddings alone (the model stays frozen).

    ``loss_of(embeddings)`` is a scalar summing independent per-row losses, so each row moves as if
    alone (Adam is elementwise). ``evaluate(embeddings)`` gives per-row measures, its ``score``
    (higher is better) choosing the row's kept embedding, as the thesis stops once the task's
    performance no longer improves. Evaluated every ``val_every`` steps and at the end."""
    embeddings = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([embeddings], lr=lr)

    def measured() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: v.detach().float().cpu() for k, v in evaluate(embeddings).items()}

    def means(values: dict[str, torch.Tensor]) -> dict[str, float]:
        return {k: float(v.mean()) for k, v in values.items() if k != "score"}

    first = measured()
    kept, best, best_step = embeddings.detach().clone(), dict(first), torch.zeros(len(start), dtype=torch.long)
    history = [{"step": 0, **means(first)}]
    for step in range(1, steps + 1):
        loss = loss_of(embeddings)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        advance(1)
        if step % val_every == 0 or step == steps:
            now = measured()
            better = now["score"] > best["score"]
            kept[better.to(kept.device)] = embeddings.detach()[better.to(kept.device)]
            best = {k: torch.where(better, now[k], best[k]) for k in best}
            best_step[better] = step
            history.append({"step": step, "loss": loss.item(), **means(now)})
    return Descent(kept, best_step.tolist(), {k: v.tolist() for k, v in first.items()},
                   {k: v.tolist() for k, v in best.items()}, history)


def check_descent(steps: int, lr: float) -> None:
    if steps < 1 or lr <= 0:
        raise NrtoolError(f"need steps >= 1 and lr > 0; got {steps} and {lr}")
