"""``nrtool augment``: offline augmentation of training shapes (random per-axis scaling + jitter)."""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import app
from nrtool.cli.common import OPTIONS, progress


@app.command("augment")
def augment(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders (CLASS/train/FILE) or .txt lists."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the copies (CLASS/train/NAME_augK.ply)."),
    copies: int = typer.Option(2, help="Augmented copies per training shape."),
    scale: tuple[float, float] = typer.Option((0.85, 1.15), help="Per-axis scale range LOW HIGH."),
    jitter: float = typer.Option(0.002, help="Jitter std as a fraction of the bounding-box diagonal."),
    seed: int = typer.Option(0, help="Random seed (same seed, same copies)."),
    overwrite: bool = typer.Option(False, help="Replace --out if it is a non-empty folder nrtool wrote (never a folder it did not write)."),
) -> None:
    """Write augmented copies of the training shapes; test shapes are left alone.

    Fit them together with the originals: `nrtool fit-inr psb/ psb-aug/ --out inrs.h5`.

    Example: `nrtool augment ../shared/data/psb --out psb-aug --copies 2`
    """
    from nrtool.geometry.augment import AugmentSettings, augment_dataset

    settings = AugmentSettings(copies=copies, scale_low=scale[0], scale_high=scale[1], jitter=jitter, seed=seed)
    written = augment_dataset(inputs, out, settings, overwrite=overwrite, progress=progress())
    if not OPTIONS.quiet:
        print(f"{out}: {len(written)} augmented shapes ({copies} per training shape)")
