"""``nrtool train mapping`` and ``nrtool map``: a transfer net between two embedding spaces
(thesis Sec. 5.5.6: completion, udf -> sdf)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    kept_text,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.heads.config import MAPPING_PRESETS, MappingConfig


@train_app.command("mapping")
@override_options(MappingConfig, ["epochs", "lr", "batch", "hidden", "layers", "val_fraction", "val_every", "time_limit", "seed"])
def train_mapping(
    source: Path = typer.Argument(..., help="Embeddings of the inputs (e.g. INRs of partial clouds, or of udfs)."),
    target: Path = typer.Argument(..., help="Embeddings of the same items (same names) in the target space (complete shapes, sdfs)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (official code: 8 x Linear(1024), AdamW 1e-4, wd 1e-4)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train a transfer net from one embedding space to another on items paired by name.

    Example: `nrtool train mapping partial-emb.h5 complete-emb.h5 --out completion.pt`
    """
    config = MAPPING_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.inr2vec.mapping import train_mapping_file

    report = train_mapping_file(source, target, out, config, device=device, progress=progress(), restart=restart)
    d = report.details
    kept = kept_text(report, "val_mse", "validation MSE")
    print_training(report, json_out, f"{d['train_pairs']} train / {d['val_pairs']} validation pairs, {kept}")


@app.command("map")
def map_embeddings(
    source: Path = typer.Argument(..., help="Embeddings to map (the source space of --model)."),
    model: Path = typer.Option(..., "--model", "-m", help="A checkpoint from `nrtool train mapping`."),
    out: Path = typer.Option(..., "--out", "-o", help="The mapped embeddings artifact to write."),
    truth: Optional[Path] = typer.Option(None, help="Target-space embeddings of the same items: decode the mapped ones and score "
                                         "them against the true shapes, beside the input and the decoded truth."),
    decoder: Optional[Path] = typer.Option(None, help="The target space's inr2vec model (default: the one --model recorded)."),
    split: Optional[list[str]] = typer.Option(None, help="Only items of this split (repeatable), e.g. --split test."),
    resolution: int = typer.Option(64, help="Marching-cubes grid of decoded sdf shapes."),
    png: Optional[Path] = typer.Option(None, help="Input, mapped and true shapes side by side (with --truth; default OUT.png)."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Map embeddings into another space; with --truth, Chamfer and F-score of the decoded results.

    Example: `nrtool map partial-emb.h5 --model completion.pt --truth complete-emb.h5 --split test --out completed.h5`
    """
    from nrtool.inr2vec.mapping import map_file

    png = png if png is not None else (out.with_suffix(".png") if truth is not None else None)
    check_outputs(files=[out, png])
    check_device(device)
    result = map_file(source, model, out, splits=split or [], truth_path=truth, decoder_path=decoder,
                      resolution=resolution, device=device, png=png, progress=progress(), command=argv())
    if json_out:
        print_json(result)
        return
    if OPTIONS.quiet:
        return
    line = f"{out}: {result['items']} mapped embeddings"
    if "mapped" in result:
        def text(key: str) -> str:
            m = result[key]
            return (f"Chamfer {m['chamfer']:.4f}, F-score {m['fscore']:.3f}" if m["chamfer"] is not None else "no shape") + \
                (f" ({m['empty']} empty)" if m["empty"] else "")

        line += (f"; against the true shapes of {result['evaluated']}: mapped {text('mapped')} | input {text('input')} | "
                 f"decoded truth {text('decoded_target')}; picture in {result.get('png')}")
    print(line)
