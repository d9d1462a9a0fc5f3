"""``nrtool train inr2vec`` and ``nrtool encode``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.common import OPTIONS, argv, print_json, progress
from nrtool.cli.main import app
from nrtool.cli.train_group import train_app


@train_app.command("inr2vec")
def train_inr2vec_cmd(
    inrs: Path = typer.Argument(..., help="inrs artifact to train on (items with split 'test' are left out)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (training curves go to the same name .png)."),
    val: Optional[Path] = typer.Option(None, "--val", help="inrs artifact for validation (default: 10% of the training INRs)."),
    preset: str = typer.Option("tiny", help="Encoder/decoder sizes: tiny | small | paper (1024-d embeddings)."),
    epochs: int = typer.Option(20, help="Training epochs."),
    batch: int = typer.Option(16, help="INRs per mini-batch."),
    lr: float = typer.Option(1e-4, help="AdamW learning rate (weight decay 1e-2)."),
    queries: int = typer.Option(4_000, help="Queries per INR per step (half near the INR's surface)."),
    seed: int = typer.Option(0, help="Seed of initialisation, batching and query sampling."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
) -> None:
    """Train the inr2vec encoder + implicit decoder on INRs' weights.

    Example: `nrtool train inr2vec inrs.h5 --out inr2vec.pt --epochs 50`
    """
    from nrtool.inr2vec.models import inr2vec_preset
    from nrtool.inr2vec.train import TrainSettings, train_inr2vec

    settings = TrainSettings(epochs=epochs, batch=batch, lr=lr, queries=queries, seed=seed)
    report = train_inr2vec(inrs, out, inr2vec_preset(preset), settings, val_path=val, device=device, progress=progress())
    if json_out:
        print_json(report.__dict__)
    elif not OPTIONS.quiet:
        print(f"{out}: best epoch {report.best_epoch}/{report.epochs}, validation Chamfer "
              f"{report.best_val_chamfer:.4f}; curves in {report.curves}")


@app.command("encode")
def encode(
    inrs: Path = typer.Argument(..., help="inrs artifact to embed."),
    model: Path = typer.Option(..., "--model", "-m", help="inr2vec checkpoint from `nrtool train inr2vec`."),
    out: Path = typer.Option(..., "--out", "-o", help="embeddings artifact to write."),
    batch: int = typer.Option(64, help="INRs encoded at once."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
) -> None:
    """Embed INRs with a trained inr2vec encoder into an `embeddings` artifact.

    Example: `nrtool encode inrs.h5 --model inr2vec.pt --out emb.h5`
    """
    from nrtool.errors import NrtoolError
    from nrtool.inr2vec.encode import encode_inrs

    if batch < 1:
        raise NrtoolError("--batch must be at least 1")
    embeddings = encode_inrs(inrs, model, out, device=device, batch=batch, progress=progress(), command=argv())
    if not OPTIONS.quiet:
        print(f"{out}: {len(embeddings.items)} embeddings of dimension {embeddings.vectors.shape[1]}")
