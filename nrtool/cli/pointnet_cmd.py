"""``nrtool train pointnet`` and ``nrtool classify-points``: the PointNet baseline (thesis Sec. 5.5.3).

The PointNet reads point clouds reconstructed from each INR, side by side with the embedding
classifier of ``nrtool.cli.heads_cmd``; both write the same ``predictions`` artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.baselines.config import PRESETS as POINTNET_PRESETS
from nrtool.baselines.config import PointNetConfig
from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    kept_text,
    note,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options


@train_app.command("pointnet")
@override_options(PointNetConfig, ["epochs", "points", "resolution", "voxel_resolution", "lr", "batch", "val_fraction",
                                   "val_every", "time_limit", "seed"])
def train_pointnet(
    inrs: Path = typer.Argument(..., help="An inrs artifact with labels ('val' items validate, 'test' ones are left out)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 64..1024 per-point MLP, 512/256 head, 2048 points)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train a PointNet on clouds reconstructed from the INRs; keeps the epoch with the best validation accuracy.

    Example: `nrtool train pointnet inrs.h5 --out pn.pt --preset paper --device cuda`
    """
    config = POINTNET_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.baselines.pointnet import train_pointnet_file

    report = train_pointnet_file(inrs, out, config, device=device, progress=progress(), restart=restart)
    d = report.details
    empty = d["empty_reconstructions"]
    print_training(report, json_out, f"{len(d['classes'])}-class PointNet on {config.points} points from {d['field']} INRs, "
                   f"{d['train_items']} train / {d['val_items']} validation items, {kept_text(report)} "
                   f"(reconstruction {d['reconstruct_seconds']:.1f} s, training {report.seconds:.1f} s)"
                   + (f"; {len(empty)} empty reconstruction(s) skipped" if empty else ""))


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
    from nrtool.baselines.pointnet import classify_points_file
    from nrtool.cli.heads_cmd import _print_report

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
