"""Checkpoints of classification heads (the classifier on embeddings, PointNet): one layout.

``{format, version, config, classes, **fields, state_dict, history, **extra}``, written
atomically and read with ``weights_only=True`` (:mod:`nrtool.checkpoints`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save_head(
    path: str | os.PathLike[str],
    fmt: str,
    version: int,
    config: Any,
    classes: Sequence[str],
    fields: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    history: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a classification head's checkpoint atomically (plain types + tensors only: loads with
    weights_only=True): ``{format, version, config, classes, **fields, state_dict, history, **extra}``.

    ``fields`` are what the model needs besides its config and classes (the classifier's input
    ``dim``, PointNet's INR ``field``); ``extra`` records what it was trained on.
    """
    from nrtool.checkpoints import save_checkpoint

    save_checkpoint(path, fmt, version, {
        "config": config.to_dict(),
        "classes": list(classes),
        **fields,
        "state_dict": state_dict,
        "history": history,
        **(extra or {}),
    })


def load_head(
    path: str | os.PathLike[str],
    fmt: str,
    version: int,
    what: str,
    made_by: str,
    config_type: Any,
    fields: dict[str, Callable[[Any], Any]],
    build: Callable[..., nn.Module],
    device: torch.device | str,
) -> tuple[nn.Module, Any, list[str], dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_head`: ``(model, config, classes, fields, history)``.

    ``fields`` maps each further key the model needs to its type (``{"dim": int}``);
    ``build(config, classes, **fields)`` makes the untrained model, which gets the stored weights
    and is returned in eval mode on ``device``. ``what`` and ``made_by`` name the model and the
    command that writes it in the one-line errors, which name the file (also for contents that
    do not fit the model: a missing key, wrong tensor shapes).
    """
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, fmt, version, what, made_by)
    try:
        config = config_type.from_dict(data["config"])
        classes = [str(c) for c in data["classes"]]
        values = {key: convert(data[key]) for key, convert in fields.items()}
        model = build(config, classes, **values)
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, what, exc) from exc
    model.to(device).eval()
    history = data.get("history", [])
    return model, config, classes, values, list(history) if isinstance(history, list) else []


def curves_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where the training-curves PNG of a checkpoint goes: ``clf.pt`` -> ``clf.curves.png``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.curves.png")
