"""``nrtool plot ...``: figures from artifacts."""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import plot_app
from nrtool.cli.common import OPTIONS, check_outputs


@plot_app.command("tsne")
def tsne(
    embeddings: Path = typer.Argument(..., help="embeddings artifact."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG to write."),
    perplexity: float = typer.Option(30.0, help="t-SNE perplexity (capped below the item count)."),
    seed: int = typer.Option(0, help="Random seed of the layout."),
) -> None:
    """t-SNE of embeddings coloured by class.

    Example: `nrtool plot tsne emb.h5 --out tsne.png`
    """
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.errors import InputFileError, NrtoolError
    from nrtool.plots import tsne_plot

    if perplexity <= 0:
        raise NrtoolError("--perplexity must be positive")
    check_outputs(files=[out])
    data = load_embeddings(embeddings)
    if len(data.items) < 3:
        raise InputFileError(embeddings, f"t-SNE needs at least 3 embeddings, found {len(data.items)}")
    tsne_plot(data.vectors, [item.class_name for item in data.items], out, perplexity, seed,
              title=f"t-SNE of {len(data.items)} {data.encoder} embeddings ({embeddings.name})")
    if not OPTIONS.quiet:
        print(f"{out}: t-SNE of {len(data.items)} embeddings")
