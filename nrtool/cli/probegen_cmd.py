"""``nrtool train probegen``: the ProbeGen weight-space encoder beside inr2vec (issue 14).

Its embeddings come from ``nrtool encode --encoder probegen --model PG.pt`` and feed the same heads
(``train classifier``, ``classify``, ``retrieve``, ``plot tsne``) as inr2vec's.
"""

from __future__ import annotations

from pathlib import Path

import typer

from nrtool.cli.app import train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    RESTART_OPTION,
    check_device,
    kept_text,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.probegen.config import PRESETS, ProbeGenConfig


@train_app.command("probegen")
@override_options(ProbeGenConfig, ["epochs", "probes", "hidden", "embedding_dim", "stretch", "rotate", "jitter", "lr", "batch",
                                   "val_fraction", "val_every", "time_limit", "seed"])
def train_probegen(
    inrs: Path = typer.Argument(..., help="An inrs artifact with labels ('val' items validate, 'test' ones are left out)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (1024 / 2048 / 4096 probes; embeddings of 256 / 512 / 1024)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train a ProbeGen encoder: INRs read at learned query points, an MLP to an embedding, trained on the labels.

    An interrupted run resumes when the same command is run again (state in OUT.partial).

    Example: `nrtool train probegen inrs.h5 --out pg.pt`, then `nrtool encode inrs.h5 --encoder probegen --model pg.pt --out pg.h5`
    """
    config = PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.probegen.model import train_probegen_file

    report = train_probegen_file(inrs, out, config, device=device, progress=progress(), restart=restart)
    d = report.details
    print_training(report, json_out, f"{len(d['classes'])}-class ProbeGen on {config.probes} probes of {d['field']} INRs, "
                   f"{d['train_items']} train / {d['val_items']} validation items, {kept_text(report)} "
                   f"(training {report.seconds:.1f} s)")
