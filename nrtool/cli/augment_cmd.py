"""``nrtool augment`` (offline augmentation of training shapes: random per-axis scaling + jitter) and
``nrtool crop`` (partial clouds for completion)."""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import app
from nrtool.cli.common import FORCE_OPTION, OPTIONS, progress


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


@app.command("crop")
def crop(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders (CLASS/SPLIT/FILE) or .txt lists."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the partial clouds (CLASS/SPLIT/NAME.ply, names kept)."),
    points: int = typer.Option(2048, help="Points drawn on each shape before the cut."),
    keep: tuple[float, float] = typer.Option((0.4, 0.7), help="Range LOW HIGH of the share of points each cut keeps."),
    seed: int = typer.Option(0, help="Random seed (same seed, same cuts)."),
    force: bool = FORCE_OPTION,
) -> None:
    """Cut every shape by a random plane into a partial point cloud: the inputs of shape completion.

    The partial clouds keep their shapes' names, so their INRs pair with the complete shapes'
    INRs in `nrtool train mapping`.

    Example: `nrtool crop shapes/ --out partial/ --keep 0.4 0.7`
    """
    from nrtool.geometry.partial import CropSettings, crop_dataset

    settings = CropSettings(points=points, keep_low=keep[0], keep_high=keep[1], seed=seed)
    written = crop_dataset(inputs, out, settings, force=force, progress=progress())
    if not OPTIONS.quiet:
        print(f"{out}: {len(written)} partial clouds")
