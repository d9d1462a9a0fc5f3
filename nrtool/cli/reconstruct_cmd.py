"""``nrtool reconstruct``: INRs -> point clouds / meshes / voxel grids, with optional metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app
from nrtool.cli.common import (
    OPTIONS,
    backend_options,
    backend_settings,
    check_device,
    check_outputs,
    console,
    note,
    print_json,
    progress,
)


@app.command("reconstruct")
@backend_options
def reconstruct(
    inrs: Path = typer.Argument(..., help="An inrs artifact from fit-inr."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for one file per INR (.ply points, .obj mesh, .binvox voxels)."),
    resolution: int = typer.Option(128, help="Marching-cubes grid for sdf INRs."),
    points: int = typer.Option(30_000, help="Points per udf INR (gradient projection)."),
    voxel_resolution: int = typer.Option(64, help="Voxel grid for occ INRs."),
    threshold: float = typer.Option(0.4, help="Occupancy threshold for occ INRs."),
    normalised: bool = typer.Option(False, "--normalised", help="Write in the normalised [-1,1]^3 frame instead of source units."),
    mesh_format: str = typer.Option("obj", help="Mesh file format: obj | ply | off | stl."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Only these items (repeatable)."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="Only items of this split (repeatable), e.g. --split test."),
    metrics: bool = typer.Option(False, "--metrics", help="Compare with the source shapes: Chamfer, F-score@0.01, IoU."),
    preview: Optional[Path] = typer.Option(None, help="Also write a PNG sheet of sources vs reconstructions."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    overwrite: bool = typer.Option(False, help="Redo everything in --out (by default a rerun with the same settings reuses finished files)."),
    json_out: bool = typer.Option(False, "--json", help="Print per-item results and means as JSON."),
    backend_options: dict = None,
) -> None:
    """Turn fitted INRs back into shapes (udf -> points, sdf -> mesh, occ -> voxels).

    Example: `nrtool reconstruct inrs.h5 --out recon/ --metrics --json`
    """
    from nrtool.inr.reconstruction import (
        ReconstructionSettings,
        reconstruct_inrs,
        summarise,
    )

    settings = ReconstructionSettings(
        resolution=resolution, points=points, voxel_resolution=voxel_resolution, threshold=threshold,
        source_units=not normalised, metrics=metrics, mesh_format=mesh_format,
    )
    backend = backend_settings(backend_options)
    check_device(device)
    check_outputs(files=[preview], folders=[out])
    header, results = reconstruct_inrs(
        inrs, out, settings, device=device, names=name, progress=progress(), overwrite=overwrite, splits=split,
        backend=backend,
    )
    summary = summarise(results)
    for result in results:
        if result.problem:
            note(f"{result.name}: {result.problem}")
    if preview is not None:
        from nrtool.plots import reconstruction_sheet

        reconstruction_sheet(inrs, results, preview)
        note(f"preview written to {preview}")
    if json_out:
        print_json({"field": header.field, **summary, "results": [r.to_dict() for r in results]})
        return
    if OPTIONS.quiet:
        return
    if metrics:
        _print_table(header.field, results, summary)
    print(f"{out}: {len(results) - len(summary['failed'])} reconstructions of {len(results)} {header.field} INRs")


def _print_table(field: str, results, summary) -> None:
    from rich.table import Table

    table = Table(title=f"reconstruction quality ({field}, normalised units)")
    table.add_column("item")
    table.add_column("class")
    keys = ["iou"] if field == "occ" else ["chamfer", "fscore"]
    for key in keys:
        table.add_column("F-score@0.01" if key == "fscore" else key.capitalize() if key != "iou" else "IoU", justify="right")
    for r in results:
        table.add_row(r.name, r.class_name or "", *[f"{getattr(r, k):.4f}" if getattr(r, k) is not None else "-" for k in keys])
    table.add_section()
    table.add_row("mean", "", *[f"{summary[k + '_mean']:.4f}" if k + "_mean" in summary else "-" for k in keys], style="bold")
    console().print(table)
