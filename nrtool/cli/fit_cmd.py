"""``nrtool fit-inr``, ``nrtool sample`` and ``nrtool merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.common import OPTIONS, argv, note, print_json, progress
from nrtool.cli.main import app

# Options shared by fit-inr and sample (one definition, so both stay in step).
FIELD_OPTION = typer.Option("auto", help="auto | sdf (watertight meshes) | udf (point clouds, open meshes) | occ (voxels).")
PRESET_OPTION = typer.Option("tiny", help="tiny | small | paper (the thesis configuration).")
SEED_OPTION = typer.Option(0, help="Seed of the shared initialisation and of query sampling.")
SHARD_OPTION = typer.Option(None, help="K/N: only the K-th (1-based) of N interleaved parts of the inputs.")


@app.command("fit-inr")
def fit_inr(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders (CLASS/[train|test]/FILE gives labels), .txt lists, or one samples artifact from `nrtool sample`."),
    out: Path = typer.Option(..., "--out", "-o", help="The inrs artifact to write (or resume)."),
    field: str = FIELD_OPTION,
    preset: str = PRESET_OPTION,
    hidden: Optional[int] = typer.Option(None, help="Override: hidden units per layer."),
    layers: Optional[int] = typer.Option(None, help="Override: hidden-to-hidden layers."),
    steps: Optional[int] = typer.Option(None, help="Override: optimisation steps per INR."),
    points: Optional[int] = typer.Option(None, help="Override: query points per step."),
    lr: Optional[float] = typer.Option(None, help="Override: Adam learning rate."),
    batch: Optional[int] = typer.Option(None, help="INRs fitted at once (speed only, results do not change)."),
    omega0: Optional[float] = typer.Option(None, help="Override: SIREN frequency omega_0."),
    focal_alpha: Optional[float] = typer.Option(None, help="Override: focal-loss alpha (occ)."),
    focal_gamma: Optional[float] = typer.Option(None, help="Override: focal-loss gamma (occ)."),
    seed: int = SEED_OPTION,
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    shard: Optional[str] = SHARD_OPTION,
    overwrite: bool = typer.Option(False, help="Replace an existing --out fitted with other settings."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Fit one SIREN per shape (batched, from a shared initialisation) into an `inrs` artifact.

    Example: `nrtool fit-inr ../shared/data/psb --out psb.h5 --preset small --shard 1/4`
    """
    from nrtool.inr.config import preset as get_preset
    from nrtool.inr.pipeline import Shard, fit_inrs

    config = get_preset(preset).with_overrides(
        hidden=hidden, layers=layers, steps=steps, points=points, lr=lr, batch=batch, omega0=omega0,
        focal_alpha=focal_alpha, focal_gamma=focal_gamma, seed=seed,
    )
    report = fit_inrs(
        inputs, out, config, field_name=field, device=device, shard=Shard.parse(shard),
        overwrite=overwrite, progress=progress(), command=argv(),
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
def sample(
    inputs: list[str] = typer.Argument(..., help="Shape files, folders or .txt lists (as for fit-inr)."),
    out: Path = typer.Option(..., "--out", "-o", help="The samples artifact to write."),
    field: str = FIELD_OPTION,
    preset: str = PRESET_OPTION,
    seed: int = SEED_OPTION,
    shard: Optional[str] = SHARD_OPTION,
) -> None:
    """Precompute ground truth (queries + field values) into a `samples` artifact.

    Fit it elsewhere, e.g. on a GPU node that has only torch and h5py:
    `nrtool fit-inr samples.h5 --out inrs.h5 --preset paper --device cuda`.

    Example: `nrtool sample ../shared/data/psb --out psb-samples.h5 --preset paper`
    """
    from nrtool.inr.config import preset as get_preset
    from nrtool.inr.pipeline import Shard, sample_shapes

    config = get_preset(preset).with_overrides(seed=seed)
    count = sample_shapes(inputs, out, config, field_name=field, shard=Shard.parse(shard), progress=progress(), command=argv())
    if not OPTIONS.quiet:
        print(f"{out}: ground truth of {count} shapes ({config.queries.total} queries each, preset {preset})")
