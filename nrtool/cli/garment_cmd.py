"""``nrtool train garment`` and ``nrtool garment encode|decode|sample|interpolate|edit`` (DrapeNet's garment network)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import garment_app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.garments.config import GarmentConfig, TrainSettings, garment_preset

MODEL_OPTION = typer.Option(..., "--model", "-m", help="Garment checkpoint from `nrtool train garment` (a top or a bottom model).")
RESOLUTION_OPTION = typer.Option(128, help="MeshUDF grid cells per axis over [-1,1]^3 (up to 512; the thesis uses 128-256).")
JSON_OPTION = typer.Option(False, "--json", help="Print a JSON summary.")
NO_CATEGORY_CHECK_OPTION = typer.Option(
    False, "--no-category-check",
    help="Use garments without metadata even when their shape says the other category (two leg openings: a "
         "bottom; two arm openings: a top).")


def _print_results(out: Path, results: list, what: str, json_out: bool) -> None:
    """The decoded garments as JSON, or a note naming any without a surface and one summary line."""
    if json_out:
        print_json([r.__dict__ for r in results])
        return
    empty = [r.name for r in results if r.path is None]
    if empty:
        from nrtool.cli.common import note

        note(f"no surface decoded for {', '.join(empty)}")
    if not OPTIONS.quiet:
        print(f"{out}: {len(results) - len(empty)} of {len(results)} {what} decoded (codes.h5 beside them)")


def _notes(lines: list[str]) -> None:
    from nrtool.cli.common import note

    for line in lines:
        note(line)


@train_app.command("garment")
@override_options(GarmentConfig, ["points", "queries", "batch", "lr"], into="network")
@override_options(TrainSettings, ["epochs", "val_items", "val_every", "val_resolution", "time_limit", "seed"],
                  flags={"val_items": "--val"})
def train_garment_cmd(
    inputs: list[Path] = typer.Argument(..., help="Garment meshes or folders (e.g. `nrtool synth garments` output)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (training curves go to the same name .png)."),
    category: Optional[str] = typer.Option(None, help="top | bottom (default: the only category in the inputs)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (thesis: 10k points, 20k queries, batch 4, lr 1e-4)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    no_category_check: bool = NO_CATEGORY_CHECK_OPTION,
    json_out: bool = JSON_OPTION,
    overrides: dict = None,
    network: dict = None,
) -> None:
    """Train the garment encoder (DGCNN) and UDF decoder on one category of garments.

    Garments listed in a garments.json are taken by their recorded category; others are
    refused when their shape says the other category (--no-category-check to keep them).
    An interrupted run resumes when the same command is run again (state in OUT.partial).

    Example: `nrtool train garment garments/ --category top --out top.pt --preset tiny --epochs 200`
    """
    config = garment_preset(preset, **network)
    settings = TrainSettings().with_overrides(**overrides)
    check_device(device)
    from nrtool.garments.train import train_garment

    report = train_garment(list(inputs), out, config, settings, category=category, device=device, progress=progress(),
                           restart=restart, category_check=not no_category_check)
    details = report.details
    print_training(report, json_out, f"{details['category']} model on {details['garments']} garments, "
                   f"validation Chamfer {report.best.get('val_chamfer', float('nan')):.4f}")


@garment_app.command("encode")
def encode_cmd(
    meshes: list[Path] = typer.Argument(..., help="Garment meshes (.obj/.ply) or folders of them."),
    model: Path = MODEL_OPTION,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="garment-codes artifact to write."),
    npy: Optional[Path] = typer.Option(None, "--npy", help="Write the code of a single garment as a (32,) .npy."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Also decode and write a PNG of inputs vs decoded garments."),
    resolution: int = RESOLUTION_OPTION,
    seed: int = typer.Option(0, help="Seed of the surface sampling."),
    align: bool = typer.Option(
        False, "--align",
        help="Translate garments that sit outside the model's training frame into it (top line and box middle "
             "matched to the training garments'); offsets stored with the codes, decoded meshes come back in "
             "the garment's own frame."),
    no_category_check: bool = NO_CATEGORY_CHECK_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Encode garment meshes into 32-d codes.

    A garment of the other category than the model's (by its garments.json, else by its shape)
    is refused; one outside the training garments' frame gets a note (--align moves it in).

    Example: `nrtool garment encode garments/tops/*.obj --model top.pt --out codes.h5 --sheet encode.png`
    """
    from nrtool.garments.codes import encode_garments

    check_outputs(files=[out, npy, sheet])
    encoded = encode_garments(meshes, model, out, npy, sheet, resolution, seed, device, progress(), argv(),
                              align=align, category_check=not no_category_check)
    codes = encoded.codes
    _notes(encoded.notes)
    if json_out:
        offsets = codes.offsets if codes.offsets is not None else [[0.0, 0.0, 0.0]] * len(codes.names)
        print_json({"names": codes.names, "category": codes.category, "codes": codes.codes, "align_offsets": offsets,
                    "notes": encoded.notes})
    elif not OPTIONS.quiet:
        where = " and ".join(str(p) for p in (out, npy, sheet) if p is not None)
        print(f"{where}: {len(codes.names)} {codes.category} codes of dimension {codes.codes.shape[1]}")


@garment_app.command("decode")
def decode_cmd(
    codes: Path = typer.Argument(..., help="garment-codes artifact (or a .npy of one code)."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for one mesh per code (must not exist or be empty)."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Only these garments (repeatable)."),
    resolution: int = RESOLUTION_OPTION,
    normalised: bool = typer.Option(False, "--normalised", help="Write in the normalised frame instead of the garments' own."),
    sheet: bool = typer.Option(False, "--sheet", help="Write sheet.png: inputs (when still on disk) vs decoded."),
    fmt: str = typer.Option("obj", "--format", help="obj | ply."),
    force: bool = FORCE_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Decode garment codes into open meshes (UDF -> MeshUDF).

    Example: `nrtool garment decode codes.h5 --model top.pt --out decoded/ --resolution 256 --sheet`
    """
    from nrtool.garments.codes import decode_codes

    results = decode_codes(codes, model, out, name, resolution, normalised, sheet, fmt, force, device, progress(), argv())
    _print_results(out, results, "garments", json_out)


@garment_app.command("sample")
def sample_cmd(
    model: Path = MODEL_OPTION,
    count: int = typer.Option(..., "-n", "--count", help="Number of garments."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the meshes, codes.h5 and sheet.png."),
    seed: int = typer.Option(0, help="Random seed."),
    spread: float = typer.Option(1.0, help="Scale of the Gaussian fitted to the training codes (0: the mean code)."),
    resolution: int = RESOLUTION_OPTION,
    force: bool = FORCE_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """New garments from codes drawn around the training codes' distribution.

    Example: `nrtool garment sample --model top.pt -n 8 --out samples/`
    """
    from nrtool.garments.codes import sample_garments

    results = sample_garments(model, count, out, seed, spread, resolution, True, force, device, progress(), argv())
    _print_results(out, results, "samples", json_out)


@garment_app.command("interpolate")
def interpolate_cmd(
    codes: Path = typer.Argument(..., help="garment-codes artifact."),
    start: str = typer.Option(..., "--from", help="Name of the first garment."),
    end: str = typer.Option(..., "--to", help="Name of the last garment."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the meshes, codes.h5 and sheet.png."),
    steps: int = typer.Option(5, help="Garments along the line, end points included."),
    resolution: int = RESOLUTION_OPTION,
    force: bool = FORCE_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Decode garments along the straight line between two codes.

    Example: `nrtool garment interpolate codes.h5 --from top_0000 --to top_0003 --model top.pt --out interp/`
    """
    from nrtool.garments.codes import interpolate_garments

    results = interpolate_garments(codes, model, start, end, steps, out, resolution, force, device, progress(), argv())
    _print_results(out, results, "interpolated garments", json_out)


@garment_app.command("edit")
def edit_cmd(
    codes: Path = typer.Argument(..., help="garment-codes artifact (the labelled codes and the ones to edit)."),
    attribute: str = typer.Option(..., "--attribute", "-a", help="Attribute to edit, e.g. sleeve_length, hem_length, leg_length."),
    labels: Path = typer.Option(..., "--labels", help="CSV with 'name' and ATTRIBUTE columns, or `nrtool synth garments`' garments.json."),
    step: float = typer.Option(..., "--step", help="How far to move each code along the attribute's direction, in standard deviations of the labelled codes along it (negative: less)."),
    model: Path = MODEL_OPTION,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the edited meshes, codes.h5 and sheet.png."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Edit only these garments (repeatable; default all)."),
    resolution: int = RESOLUTION_OPTION,
    sheet: bool = typer.Option(True, "--sheet/--no-sheet", help="sheet.png: each garment decoded before (top) and after (bottom)."),
    force: bool = FORCE_OPTION,
    device: str = DEVICE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Edit an attribute in latent space (logistic regression on labelled codes, Sec. 2.4.2).

    Example: `nrtool garment edit codes.h5 --attribute sleeve_length --labels garments/garments.json --step 2 --model top.pt --out longer/`
    """
    from nrtool.artifacts.core import provenance
    from nrtool.artifacts.garment_codes import load_codes_any
    from nrtool.garments.codes import _decode_normalised, _load, decode_to_folder
    from nrtool.garments.edit import edit_codes, fit_direction, read_labels
    from nrtool.garments.model import check_category, check_code_width

    loaded, checkpoint = _load(model, device)
    all_codes = load_codes_any(codes)
    check_code_width(all_codes.codes, checkpoint, codes)
    check_category(all_codes.category, checkpoint, codes, model)
    direction = fit_direction(all_codes, read_labels(labels, attribute), attribute, labels)
    chosen = all_codes
    if name:
        rows = [all_codes.index(n, codes) for n in name]
        chosen = all_codes.select(rows)
    edited = edit_codes(chosen, direction, step)
    before = [_decode_normalised(loaded, z, resolution) for z in chosen.codes] if sheet else None
    results = decode_to_folder(edited, loaded, checkpoint, out, resolution, False, sheet, "obj", force, progress(), argv(),
                               provenance([model, codes, labels]), before, ("before", f"{attribute} {step:+g}"))
    summary = {"attribute": attribute, "kept_dims": direction.kept_dims, "regressor_accuracy": direction.accuracy,
               "labelled": direction.labelled, "median_threshold": direction.threshold, "garments": [r.__dict__ for r in results]}
    if json_out:
        print_json(summary)
    else:
        if not OPTIONS.quiet:
            print(f"{attribute}: direction from {direction.labelled} labelled codes (regressor accuracy {direction.accuracy:.2f}, "
                  f"{len(direction.kept_dims)} of {len(direction.direction)} dimensions kept)")
        _print_results(out, results, "edited garments", json_out=False)
