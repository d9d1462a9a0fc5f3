"""``nrtool train segmenter``, ``nrtool segment`` and ``nrtool import shapenet-part``: part segmentation
from embeddings (inr2vec thesis Sec. 5.5.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from nrtool.cli.app import app, import_app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    console,
    kept_text,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.heads.config import SEGMENTER_PRESETS, SegmenterConfig


@train_app.command("segmenter")
@override_options(SegmenterConfig, ["epochs", "lr", "batch", "hidden", "queries", "val_fraction", "val_every",
                                    "time_limit", "seed"])
def train_segmenter(
    embeddings: Path = typer.Argument(..., help="Embeddings of INRs fitted to labelled clouds (.npz with points + labels: "
                                      "`synth shapes --parts`, `import shapenet-part`); 'val' items validate."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: width 512, 2048 points, batches of 256, "
                               "max lr 1e-4, 250 epochs)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train a part-segmentation decoder on embeddings + class + query; keeps the best validation class mIoU.

    Example: `nrtool train segmenter emb.h5 --out seg.pt --preset paper --device cuda`
    """
    config = SEGMENTER_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.heads.segmentation import train_segmenter_file

    report = train_segmenter_file(embeddings, out, config, device=device, progress=progress(), restart=restart)
    d = report.details
    kept = kept_text(report, "val_class_miou", "validation class mIoU")
    print_training(report, json_out, f"{d['parts']} parts of {len(d['classes'])} classes on {d['dim']}-d embeddings, "
                   f"{d['train_items']} train / {d['val_items']} validation shapes, {kept}")


@app.command("segment")
def segment(
    embeddings: Path = typer.Argument(..., help="Embeddings whose items' sources are labelled clouds."),
    model: Path = typer.Option(..., "--model", "-m", help="A checkpoint from `nrtool train segmenter`."),
    out: Path = typer.Option(..., "--out", "-o", help="The segmentation artifact to write."),
    inrs: Optional[Path] = typer.Option(None, help="The udf INRs behind the embeddings: also segment clouds reconstructed "
                                        "from them, scored against the nearest original point's label (thesis Tab. 5.3)."),
    recon_points: int = typer.Option(2048, help="Points of each cloud reconstructed from an INR (--inrs)."),
    split: Optional[list[str]] = typer.Option(None, help="Only items of this split (repeatable), e.g. --split test."),
    png: Optional[Path] = typer.Option(None, help="Truth and predicted parts of one shape per class (default: OUT.png)."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Predict a part for every point; instance and class mIoU, per class, and two baselines.

    Example: `nrtool segment emb.h5 --model seg.pt --inrs inrs.h5 --split test --out seg.h5`
    """
    from nrtool.heads.segmentation import segment_file

    png = png if png is not None else out.with_suffix(".png")
    check_outputs(files=[out, png])
    check_device(device)
    report = segment_file(embeddings, model, out, splits=split or [], inrs_path=inrs, recon_points=recon_points,
                          device=device, png=png, progress=progress(), command=argv())
    if json_out:
        print_json(report)
    elif not OPTIONS.quiet:
        _print_report(report)
        print(f"{out}: {report['items']} shapes segmented; picture in {report['png']}")


def _print_report(report: dict[str, Any]) -> None:
    """Per-class IoU of each cloud kind beside the baselines, as one rich table."""
    from rich.table import Table

    columns = [("original points", report["original"])]
    if "recon" in report:
        columns.append(("INR-reconstructed clouds", report["recon"]))
    columns += [("baseline: majority part", report["baselines"]["majority_part"]),
                ("baseline: mean embedding", report["baselines"]["mean_embedding"])]
    table = Table(title=f"part IoU over {report['items']} shapes")
    table.add_column("")
    for title, _ in columns:
        table.add_column(title, justify="right")
    table.add_row("[bold]instance mIoU[/]", *[f"[bold]{m['instance_miou']:.3f}[/]" for _, m in columns])
    table.add_row("[bold]class mIoU[/]", *[f"[bold]{m['class_miou']:.3f}[/]" for _, m in columns])
    for name in report["original"]["per_class"]:
        table.add_row(name, *[f"{m['per_class'][name]:.3f}" for _, m in columns])
    console().print(table)


@import_app.command("shapenet-part")
def import_shapenet_part(
    root: Path = typer.Argument(..., help="shapenetcore_partanno_segmentation_benchmark_v0_normal (synsetoffset2category.txt, "
                                "train_test_split/, SYNSET/ID.txt)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write CATEGORY/{train,val,test}/ID.npz into."),
    points: int = typer.Option(2048, help="Points kept per cloud (seeded subsample; 0 keeps all)."),
    category: Optional[list[str]] = typer.Option(None, help="Only this category (repeatable), e.g. --category Airplane."),
    seed: int = typer.Option(0, help="Seed of the subsampling."),
    force: bool = FORCE_OPTION,
) -> None:
    """ShapeNet-Part as labelled .npz clouds that `fit-inr`, `train segmenter` and `segment` read.

    Example: `nrtool import shapenet-part ~/data/shapenetcore_partanno_segmentation_benchmark_v0_normal --out shapenet-part/`
    """
    from nrtool.io.part_clouds import import_shapenet_part as run_import

    written = run_import(root, out, points=points or None, categories=category or [], seed=seed, force=force,
                         progress=progress())
    if not OPTIONS.quiet:
        print(f"{out}: {len(written)} labelled clouds")
