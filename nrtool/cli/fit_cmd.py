"""``nrtool fit-inr``, ``nrtool sample`` and ``nrtool merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app
from nrtool.cli.common import (
    DEVICE_OPTION,
    OPTIONS,
    argv,
    backend_options,
    backend_settings,
    check_device,
    note,
    print_json,
    progress,
)
from nrtool.config import override_options
from nrtool.errors import NrtoolError
from nrtool.inr.config import PRESETS as FIT_PRESETS
from nrtool.inr.config import FitConfig, Shard, check_field_name

# Options shared by fit-inr and sample (one definition, so both stay in step).
FIELD_OPTION = typer.Option("auto", help="auto | sdf (watertight meshes) | udf (point clouds, open meshes) | occ (voxels).")
PRESET_OPTION = typer.Option("tiny", help="tiny | small | paper (the thesis configuration).")
SEED_OPTION = typer.Option(0, help="Seed of the shared initialisation and of query sampling.")
SHARD_OPTION = typer.Option(None, help="K/N: only the K-th (1-based) of N interleaved parts of the inputs.")


@app.command("fit-inr")
@backend_options
@override_options(FitConfig, ["hidden", "layers", "steps", "points", "lr", "omega0", "focal_alpha",
                              "focal_gamma", "loss", "schedule", "precision", "compile"])
def fit_inr(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders (CLASS/[train|test]/FILE gives labels), .txt lists, or one samples artifact from `nrtool sample`."),
    out: Path = typer.Option(..., "--out", "-o", help="The inrs artifact to write (or resume)."),
    field: str = FIELD_OPTION,
    preset: str = PRESET_OPTION,
    seed: int = SEED_OPTION,
    device: str = DEVICE_OPTION,
    shard: Optional[str] = SHARD_OPTION,
    batch: Optional[str] = typer.Option(None, help="INRs fitted at once (speed only, results do not change): a "
                                        "number, or auto (CUDA: as many as 60 % of the free memory holds)."),
    overwrite: bool = typer.Option(False, help="Replace an existing --out fitted with other settings."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    overrides: dict = None,
    backend_options: dict = None,
) -> None:
    """Fit one SIREN per shape (batched, from a shared initialisation) into an `inrs` artifact.

    Example: `nrtool fit-inr ../shared/data/psb --out psb.h5 --preset small --shard 1/4`;
    on a Ray cluster: `nrtool fit-inr shapes/ --out inrs.h5 --backend ray --address auto --gpus-per-task 0.25`
    """
    config = FIT_PRESETS(preset, **overrides, seed=seed, batch=parse_batch(batch))
    backend = backend_settings(backend_options)
    parsed_shard = Shard.parse(shard)
    check_field_name(field)
    check_device(device)
    from nrtool.inr.pipeline import fit_inrs  # imports torch when it fits

    report = fit_inrs(
        inputs, out, config, field_name=field, device=device, shard=parsed_shard,
        overwrite=overwrite, progress=progress(), command=argv(), backend=backend, auto_batch=batch == "auto",
    )
    for line in report.notes:
        note(line)
    if json_out:
        print_json(report.to_dict())
    elif not OPTIONS.quiet:
        print(
            f"{report.out}: {report.total} {report.field} INRs ({report.fitted} fitted, {report.skipped} already there) "
            f"in {report.seconds:.1f} s, mean final loss {report.final_loss_mean:.4f}"
        )


def parse_batch(text: str | None) -> int | None:
    """``--batch``: a number (``None``: the preset's), or ``auto`` (decided once the device is known)."""
    if text is None or text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise NrtoolError(f"--batch {text!r}: expected a number of INRs or auto") from None


@app.command("merge")
def merge(
    inputs: list[str] = typer.Argument(..., help="inrs artifacts (e.g. the shards of one run)."),
    out: Path = typer.Option(..., "--out", "-o", help="The merged inrs artifact."),
) -> None:
    """Merge `inrs` artifacts that share architecture, field and shared initialisation.

    Example: `nrtool merge part1.h5 part2.h5 --out all.h5`
    """
    from nrtool.inr.pipeline import merge_inrs

    count = merge_inrs(inputs, out, command=argv())
    if not OPTIONS.quiet:
        print(f"{out}: {count} INRs from {len(inputs)} files")


@app.command("sample")
@backend_options
def sample(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders or .txt lists (as for fit-inr)."),
    out: Path = typer.Option(..., "--out", "-o", help="The samples artifact to write."),
    field: str = FIELD_OPTION,
    preset: str = PRESET_OPTION,
    seed: int = SEED_OPTION,
    shard: Optional[str] = SHARD_OPTION,
    backend_options: dict = None,
) -> None:
    """Precompute ground truth (queries + field values) into a `samples` artifact.

    Fit it elsewhere, e.g. on a GPU node that has only torch and h5py:
    `nrtool fit-inr samples.h5 --out inrs.h5 --preset paper --device cuda`.

    Example: `nrtool sample ../shared/data/psb --out psb-samples.h5 --preset paper`
    """
    config = FIT_PRESETS(preset, seed=seed)
    parsed_shard = Shard.parse(shard)
    backend = backend_settings(backend_options)
    check_field_name(field)
    from nrtool.inr.pipeline import sample_shapes

    count = sample_shapes(inputs, out, config, field_name=field, shard=parsed_shard, progress=progress(), command=argv(),
                          backend=backend)
    if not OPTIONS.quiet:
        print(f"{out}: ground truth of {count} shapes ({config.queries.total} queries each, preset {preset})")
