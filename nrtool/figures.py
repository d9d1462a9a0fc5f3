"""Figure mechanics every layer may use: PNGs written atomically, and the one training-curve plot.

Only matplotlib (imported when a figure is drawn) and the atomic writer: no geometry, no torch.
Pictures of shapes and embeddings are in :mod:`nrtool.plots`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any


def save_figure(fig: Any, png: str | os.PathLike[str], dpi: int = 110) -> None:
    """Write a matplotlib figure as PNG atomically (a reader never sees half a file) and close it."""
    import io

    import matplotlib.pyplot as plt

    from nrtool.artifacts.core import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(png, buffer.getvalue())


#: Keys of an epoch record that are bookkeeping, not curves.
_NOT_CURVES = {"epoch", "steps", "lr", "stage"}


def training_curves(history: Sequence[dict[str, float]], png: str | os.PathLike[str], title: str = "",
                    best_epoch: int | None = None) -> None:
    """The one training-curve figure: training losses per epoch (left, log scale) and validation
    metrics (right, keys ``val_*``; epochs without validation are skipped), the kept epoch marked.

    ``history`` is :func:`nrtool.training.run_training`'s: one record per epoch.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(dict.fromkeys(k for record in history for k in record))
    losses = [k for k in keys if k not in _NOT_CURVES and not k.startswith("val_")]
    metrics = [k for k in keys if k.startswith("val_")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key in losses:
        points = [(h["epoch"], h[key]) for h in history if key in h]
        left.plot([e for e, _ in points], [v for _, v in points], label=key.replace("_", " "))
    left.set(xlabel="epoch", title="training loss")
    if losses and all(h[k] > 0 for h in history for k in losses if k in h):
        left.set_yscale("log")
    if losses:
        left.legend(fontsize=8)
    for key in metrics:
        points = [(h["epoch"], h[key]) for h in history if key in h]
        right.plot([e for e, _ in points], [v for _, v in points], "o-", ms=3, label=key[4:].replace("_", " "))
    if metrics:
        right.legend(fontsize=8)
        if best_epoch is not None:
            right.axvline(best_epoch, color="grey", linestyle=":", lw=1)
            right.set_title(f"validation (kept epoch {best_epoch})")
        else:
            right.set_title("validation")
    else:
        right.text(0.5, 0.5, "no validation items", ha="center", transform=right.transAxes)
    right.set_xlabel("epoch")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, png)
