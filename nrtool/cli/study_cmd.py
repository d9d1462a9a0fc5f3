"""``nrtool study init``: the shared-initialisation study (thesis Sec. 5.4, Fig. 5.6-5.7)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import study_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    check_device,
    check_outputs,
    print_json,
    progress,
)
from nrtool.cli.fit_cmd import FIELD_OPTION, PRESET_OPTION, SEED_OPTION
from nrtool.config import override_options
from nrtool.inr.config import PRESETS as FIT_PRESETS
from nrtool.inr.config import FitConfig, check_field_name


@study_app.command("init")
@override_options(FitConfig, ["hidden", "layers", "steps", "points", "lr", "batch", "omega0", "loss", "schedule"])
def study_init(
    inputs: list[str] = typer.Argument(..., help="Two or more shapes (files, folders or .txt lists, as fit-inr takes)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for study.json and study.png."),
    per_shape: int = typer.Option(3, help="INRs fitted per shape in each condition."),
    encoder: Optional[Path] = typer.Option(None, help="An inr2vec checkpoint: adds the embeddings' distance "
                                           "matrices (its architecture, field and shared init are used)."),
    line_points: int = typer.Option(11, help="Points on the line between two INRs of one shape."),
    field: str = FIELD_OPTION,
    preset: str = PRESET_OPTION,
    seed: int = SEED_OPTION,
    device: str = DEVICE_OPTION,
    force: bool = FORCE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the measures as JSON."),
    overrides: dict = None,
) -> None:
    """Fit K INRs per shape from one shared init and from independent inits, then compare: the
    loss along the line between two INRs of a shape, how far weight matching's permutations are
    from the identity, and (with --encoder) the inr2vec embeddings' distance matrices.

    Example: `nrtool study init shapes/ --out init-study --per-shape 3 --lr 1e-4 --schedule constant`
    """
    config = FIT_PRESETS(preset, **overrides, seed=seed)
    check_field_name(field)
    check_device(device)
    check_outputs(folders=[out])
    from nrtool.inr2vec.init_study import init_study_to_folder

    study = init_study_to_folder(inputs, out, config, field, per_shape, encoder, line_points, device, progress(), force)
    result = study.to_dict()
    if json_out:
        print_json({k: v for k, v in result.items() if k != "distances"})
    elif not OPTIONS.quiet:
        for condition in ("shared", "independent"):
            line = (f"{condition:>11} init: barrier {result['mean_barriers'][condition]:.4f}, "
                    f"{result['mean_off_identity'][condition]:.1%} of units permuted by weight matching")
            if condition in study.block_ratio:
                line += f", embedding distance within/between shapes {study.block_ratio[condition]:.2f}"
            print(line)
        print(f"{out}/study.png, {out}/study.json")
