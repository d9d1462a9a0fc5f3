"""``nrtool train pointnet`` and ``nrtool classify-points``: the PointNet baseline (thesis Sec. 5.5.3).

The PointNet reads point clouds reconstructed from each INR, side by side with the embedding
classifier of ``nrtool.cli.heads_cmd``; both write the same ``predictions`` artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.common import OPTIONS, argv, check_outputs, kept_epoch, note, print_json, progress
from nrtool.cli.main import app
from nrtool.cli.train_group import train_app  # the shared `nrtool train ...` group

DEVICE_OPTION = typer.Option("auto", help="auto | cpu | cuda.")


@train_app.command("pointnet")
def train_pointnet(
    inrs: Path = typer.Argument(..., help="An inrs artifact with labels (split 'test' is not trained on)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 64..1024 per-point MLP, 512/256 head, 2048 points)."),
    epochs: Optional[int] = typer.Option(None, help="Override: training epochs."),
    points: Optional[int] = typer.Option(None, help="Override: points per shape fed to the network."),
    resolution: Optional[int] = typer.Option(None, help="Override: marching-cubes grid (sdf INRs)."),
    voxel_resolution: Optional[int] = typer.Option(None, help="Override: voxel grid (occ INRs)."),
    lr: Optional[float] = typer.Option(None, help="Override: AdamW learning rate (cosine-annealed)."),
    batch: Optional[int] = typer.Option(None, help="Override: shapes per batch."),
    val_fraction: Optional[float] = typer.Option(None, help="Override: share of each class's train items kept for validation (when no 'val' split exists)."),
    seed: int = typer.Option(0, help="Seed of the initialisation, validation split, subsampling and jitter."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
) -> None:
    """Train a PointNet on clouds reconstructed from the INRs; keeps the epoch with the best validation accuracy.

    Example: `nrtool train pointnet inrs.h5 --out pn.pt --preset paper --device cuda`
    """
    from nrtool.heads.pointnet import preset as get_preset
    from nrtool.heads.pointnet import train_pointnet_file

    config = get_preset(preset).with_overrides(
        epochs=epochs, points=points, resolution=resolution, voxel_resolution=voxel_resolution, lr=lr,
        batch=batch, val_fraction=val_fraction, seed=seed,
    )
    summary = train_pointnet_file(inrs, out, config, device=device, progress=progress())
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        kept = kept_epoch(summary)
        empty = summary["empty_reconstructions"]
        print(
            f"{out}: {len(summary['classes'])}-class PointNet on {config.points} points from {summary['field']} INRs, "
            f"{summary['train_items']} train / {summary['val_items']} validation items, {kept} "
            f"(reconstruction {summary['reconstruct_seconds']:.1f} s, training {summary['seconds']:.1f} s); "
            f"curves in {summary['curves']}"
            + (f"; {len(empty)} empty reconstruction(s) skipped" if empty else "")
        )


@app.command("classify-points")
def classify_points(
    inrs: Path = typer.Argument(..., help="An inrs artifact whose INRs are reconstructed and classified."),
    model: Path = typer.Option(..., "--model", "-m", help="A checkpoint from `nrtool train pointnet`."),
    out: Path = typer.Option(..., "--out", "-o", help="The predictions artifact to write."),
    split: Optional[list[str]] = typer.Option(None, help="Only items of this split (repeatable), e.g. --split test."),
    plot: Optional[Path] = typer.Option(None, help="Confusion-matrix PNG (default: OUT.confusion.png beside --out)."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print accuracy, per_class, confusion and seconds_per_inr as JSON."),
) -> None:
    """Reconstruct each INR's points and classify them with a PointNet into a `predictions` artifact.

    Example: `nrtool classify-points inrs.h5 --model pn.pt --out pred.h5 --split test`
    """
    from nrtool.cli.heads_cmd import _print_report
    from nrtool.heads.pointnet import classify_points_file

    check_outputs(files=[out, plot])
    report = classify_points_file(inrs, model, out, splits=split or [], device=device,
                                  plot=plot if plot is not None else True, command=argv(), progress=progress())
    if report["empty_reconstructions"]:
        empty = report["empty_reconstructions"]
        note(f"{len(empty)} of {report['items']} INRs reconstructed to nothing (no surface) and were classified as "
             f"all-zero point clouds, e.g. {empty[0]}")
    if json_out:
        print_json(report)
        return
    if OPTIONS.quiet:
        return
    timing = f"{1000 * report['seconds_per_inr']:.0f} ms per INR (reconstruction + PointNet)"
    if report["accuracy"] is None:
        print(f"{out}: predictions for {report['items']} items, {timing} (no labels the model knows: nothing to score)")
        return
    _print_report(report)
    print(f"{out}: predictions for {report['items']} items, accuracy {report['accuracy']:.4f}, {timing}"
          + (f"; confusion matrix in {report['plot']}" if report["plot"] else ""))
