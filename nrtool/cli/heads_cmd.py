"""``nrtool train classifier``, ``nrtool classify`` and ``nrtool retrieve``: heads on embeddings.

``nrtool train classifier`` joins the shared ``nrtool train`` group (``nrtool.cli.train_group``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
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
from nrtool.heads.config import PRESETS as CLASSIFIER_PRESETS
from nrtool.heads.config import ClassifierConfig


@train_app.command("classifier")
@override_options(ClassifierConfig, ["epochs", "lr", "batch", "hidden", "val_fraction", "val_every", "time_limit", "seed"])
def train_classifier(
    embeddings: Path = typer.Argument(..., help="An embeddings artifact with labels ('val' items validate, 'test' ones are left out)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 512/256 hidden, max lr 1e-4, 150 epochs)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train an MLP classifier on embeddings; keeps the epoch with the best validation accuracy.

    Example: `nrtool train classifier emb.h5 --out clf.pt --preset paper --device cuda`
    """
    config = CLASSIFIER_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.heads.classifier import train_classifier_file

    report = train_classifier_file(embeddings, out, config, device=device, progress=progress(), restart=restart)
    d = report.details
    print_training(report, json_out, f"{len(d['classes'])}-class classifier on {d['dim']}-d embeddings, "
                   f"{d['train_items']} train / {d['val_items']} validation items, {kept_text(report)}")


@app.command("classify")
def classify(
    embeddings: Path = typer.Argument(..., help="An embeddings artifact to classify."),
    model: Path = typer.Option(..., "--model", "-m", help="A checkpoint from `nrtool train classifier`."),
    out: Path = typer.Option(..., "--out", "-o", help="The predictions artifact to write."),
    split: Optional[list[str]] = typer.Option(None, help="Only items of this split (repeatable), e.g. --split test."),
    plot: Optional[Path] = typer.Option(None, help="Confusion-matrix PNG (default: OUT.confusion.png beside --out)."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print accuracy, per_class and confusion as JSON."),
) -> None:
    """Predict classes into a `predictions` artifact; with labels, print accuracy and the confusion matrix.

    Example: `nrtool classify emb.h5 --model clf.pt --out pred.h5 --split test`
    """
    from nrtool.heads.classifier import classify_file

    check_outputs(files=[out, plot])
    report = classify_file(embeddings, model, out, splits=split or [], device=device,
                           plot=plot if plot is not None else True, command=argv())
    if json_out:
        print_json(report)
        return
    if OPTIONS.quiet:
        return
    if report["accuracy"] is None:
        print(f"{out}: predictions for {report['items']} items (no labels the model knows: nothing to score)")
        return
    _print_report(report)
    print(f"{out}: predictions for {report['items']} items, accuracy {report['accuracy']:.4f}"
          + (f"; confusion matrix in {report['plot']}" if report["plot"] else ""))


def _print_report(report: dict[str, Any]) -> None:
    """Per-class accuracy and the confusion matrix as rich tables."""
    from rich.table import Table

    classes = report["classes"]
    confusion = report["confusion"]
    per_class = Table(title=f"accuracy {report['accuracy']:.4f} over {report['evaluated']} items")
    per_class.add_column("class")
    per_class.add_column("items", justify="right")
    per_class.add_column("accuracy", justify="right")
    for i, name in enumerate(classes):
        if name in report["per_class"]:
            per_class.add_row(name, str(sum(confusion[i])), f"{report['per_class'][name]:.3f}")
    matrix = Table(title="confusion (rows: true, columns: predicted)")
    matrix.add_column("")
    for name in classes:
        matrix.add_column(name, justify="right")
    for i, name in enumerate(classes):
        matrix.add_row(name, *[(f"[bold]{n}[/]" if i == j else str(n)) if n else "·" for j, n in enumerate(confusion[i])])
    out = console()
    out.print(per_class)
    out.print(matrix)


def _parse_ks(values: list[str], extra: list[str]) -> list[int]:
    """``--k 1 5 10``, ``--k 1 --k 5`` and ``--k 1,5,10`` all mean k in {1, 5, 10}."""
    from nrtool.errors import NrtoolError

    ks: list[int] = []
    for value in [*values, *extra]:
        for part in str(value).replace(",", " ").split():
            try:
                ks.append(int(part))
            except ValueError:
                raise NrtoolError(f"unexpected argument {part!r} (only k values may follow --k)") from None
    if any(k < 1 for k in ks):
        raise NrtoolError(f"--k must be at least 1, got {min(ks)}")
    return sorted(set(ks))


@app.command("retrieve", context_settings={"allow_extra_args": True})
def retrieve(
    ctx: typer.Context,
    embeddings: Path = typer.Argument(..., help="Query embeddings (labelled)."),
    gallery: Optional[Path] = typer.Option(None, help="Gallery embeddings (default: the queries themselves, leave-one-out)."),
    k: list[str] = typer.Option(["1", "5", "10"], "--k", help="Neighbours retrieved: --k 1 5 10 (or --k 1,5,10)."),
    split: Optional[list[str]] = typer.Option(None, help="Only query items of this split (repeatable)."),
    gallery_split: Optional[list[str]] = typer.Option(None, help="Only gallery items of this split (repeatable)."),
    png: Optional[Path] = typer.Option(None, help="Also draw queries and their neighbours (from the source shapes) as a PNG grid."),
    png_rows: int = typer.Option(6, help="Queries drawn in the --png grid (one per class first)."),
    json_out: bool = typer.Option(False, "--json", help="Print {map@k: ...} as JSON."),
) -> None:
    """Shape retrieval by L2 nearest neighbours: mAP@k = mean share of the k neighbours in the query's class.

    Example: `nrtool retrieve emb.h5 --split test --k 1 5 10`
    """
    from nrtool.heads.retrieval import retrieve_files

    ks = _parse_ks(k, list(ctx.args))
    check_outputs(files=[png])
    result = retrieve_files(embeddings, gallery, ks, splits=split or [], gallery_splits=gallery_split or [],
                            png=png, png_rows=png_rows)
    if json_out:
        print_json(result)
    elif not OPTIONS.quiet:
        scores = ", ".join(f"mAP@{key} {result[f'map@{key}']:.4f}" for key in ks)
        against = "each other (leave-one-out)" if result["same_set"] else f"{result['gallery']} gallery items"
        print(f"{embeddings}: {result['queries']} queries against {against}: {scores}")
