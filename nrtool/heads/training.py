"""What the classifiers share in training: shuffled batches and the choice of the kept epoch.

Both the classifier on embeddings and PointNet validate by accuracy on held-out items; small
validation sets saturate (e.g. 1.0 from an early epoch on), so among equally accurate epochs
the lowest validation loss wins. Without validation items the last epoch is kept
(:func:`nrtool.training.run_training`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def shuffled_batches(n: int, batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of index batches; a trailing 1-item batch is dropped (BatchNorm)."""

    order = torch.randperm(n, generator=generator)
    chunks = list(order.split(batch))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks


def steps_per_epoch(n: int, batch: int) -> int:
    full, rest = divmod(n, batch)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def supervised_epoch(n: int, batch: int, generator: torch.Generator, device: torch.device,
                     loss_of: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
                     scheduler: Any, advance: Any) -> dict[str, float]:
    """One shuffled pass over ``n`` training items: ``loss_of(index batch)`` -> step (and a
    per-step ``scheduler``, if given). Returns the item-weighted mean loss and the lr after the
    pass (a per-epoch schedule is the caller's to step afterwards)."""
    total, seen = 0.0, 0
    for index in shuffled_batches(n, batch, generator):
        index = index.to(device)
        loss = loss_of(index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(index)
        seen += len(index)
        advance()
    return {"train_loss": total / max(seen, 1), "lr": float(optimizer.param_groups[0]["lr"])}


class ClassificationValidation:
    """``validate`` and ``score`` for :class:`nrtool.training.Trainer`: cross-entropy and
    accuracy on fixed validation inputs ``x_val`` with labels ``y_val``. The logits are
    ``self.model(x_val)``; a trainer whose model needs more than its input overrides
    :meth:`logits`."""

    model: nn.Module
    x_val: torch.Tensor
    y_val: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) class scores of validation inputs (eval mode, no gradients)."""
        return self.model(x)

    def validate(self, epoch: int) -> dict[str, float]:
        if len(self.y_val) == 0:
            return {}
        self.model.eval()
        with torch.no_grad():
            logits = self.logits(self.x_val)
            loss = float(torch.nn.functional.cross_entropy(logits, self.y_val))
            accuracy = float((logits.argmax(1) == self.y_val).float().mean())
        return {"val_loss": loss, "val_accuracy": accuracy}

    def score(self, record: dict[str, Any]) -> tuple[float, ...] | None:
        if "val_accuracy" not in record:
            return None
        return (-record["val_accuracy"], record["val_loss"])
