"""``nrtool train inr2vec``, ``encode``, ``decode`` and ``interpolate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.inr2vec.config import (
    INR2VEC_PRESETS,
    TRAIN_PRESETS,
    Inr2vecConfig,
    TrainSettings,
)


@train_app.command("inr2vec")
@override_options(TrainSettings, ["epochs", "batch", "lr", "queries", "val_every", "time_limit", "seed"])
@override_options(Inr2vecConfig, ["rows"], into="sizes")
def train_inr2vec_cmd(
    inrs: Path = typer.Argument(..., help="inrs artifact to train on (split 'train' or unset; 'val' items validate, 'test' ones are left out)."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (training curves go to the same name .png)."),
    val: Optional[Path] = typer.Option(None, "--val", help="inrs artifact for validation (default: the 'val' items, else 10% of the training INRs)."),
    preset: str = typer.Option("tiny", help="Sizes and training settings: tiny | small | paper (thesis: 1024-d embeddings, AdamW lr 1e-4)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
    sizes: dict = None,
) -> None:
    """Train the inr2vec encoder + implicit decoder on INRs' weights.

    An interrupted run resumes when the same command is run again (state in OUT.partial).

    Example: `nrtool train inr2vec inrs.h5 --out inr2vec.pt --epochs 50`
    """
    config, settings = INR2VEC_PRESETS(preset, **sizes), TRAIN_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.inr2vec.train import train_inr2vec

    report = train_inr2vec(inrs, out, config, settings, val_path=val, device=device, progress=progress(),
                           restart=restart)
    print_training(report, json_out, f"validation Chamfer {report.best.get('val_chamfer', float('nan')):.4f}")


@app.command("encode")
def encode(
    inrs: Path = typer.Argument(..., help="inrs artifact to embed."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="inr2vec checkpoint from `nrtool train inr2vec` (--encoder inr2vec)."),
    out: Path = typer.Option(..., "--out", "-o", help="embeddings artifact to write."),
    encoder: str = typer.Option("inr2vec", help="inr2vec (from `train inr2vec`, --model) | probegen (from `train "
                                "probegen`, --model) | raw (each INR's flattened weights: the baseline, for `train "
                                "classifier`, `classify` and `retrieve`)."),
    batch: int = typer.Option(64, help="INRs encoded at once."),
    refine: int = typer.Option(0, help="inr2vec only: then move each embedding this many Adam steps through the frozen "
                               "decoder towards its INR's own field (not in the thesis; 200 is a good start)."),
    refine_lr: float = typer.Option(1e-2, help="Learning rate of --refine."),
    seed: int = typer.Option(0, help="Seed of --refine's queries."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
) -> None:
    """Embed INRs with a trained inr2vec or ProbeGen encoder (or as their raw weights) into an `embeddings` artifact.

    Example: `nrtool encode inrs.h5 --model inr2vec.pt --out emb.h5`; `nrtool encode inrs.h5 --encoder probegen --model pg.pt --out pg.h5`; baseline: `nrtool encode inrs.h5 --encoder raw --out raw.h5`; refined through the decoder: `nrtool encode inrs.h5 --model inr2vec.pt --refine 200 --out emb.h5`
    """
    from nrtool.errors import NrtoolError

    if encoder not in ("inr2vec", "probegen", "raw"):
        raise NrtoolError(f"--encoder must be inr2vec, probegen or raw, not {encoder!r}")
    if (model is None) == (encoder != "raw"):
        raise NrtoolError(f"--encoder {encoder} needs --model" if model is None else "--encoder raw takes no --model")
    if batch < 1:
        raise NrtoolError("--batch must be at least 1")
    if refine and encoder != "inr2vec":
        raise NrtoolError(f"--refine needs --encoder inr2vec (a decoder to refine through), not {encoder}")
    if refine < 0 or refine_lr <= 0:
        raise NrtoolError(f"--refine must be >= 0 and --refine-lr > 0; got {refine} and {refine_lr}")
    check_outputs(files=[out])
    if encoder == "raw":
        from nrtool.inr2vec.encode import raw_weight_vectors

        embeddings = raw_weight_vectors(inrs, out, command=argv())
    elif encoder == "probegen":
        from nrtool.inr2vec.encode import probegen_embeddings

        embeddings = probegen_embeddings(inrs, model, out, device=device, batch=batch, progress=progress(),
                                         command=argv())
    else:
        from nrtool.inr2vec.encode import encode_inrs

        embeddings = encode_inrs(inrs, model, out, device=device, batch=batch, progress=progress(), command=argv(),
                                 refine=refine, refine_lr=refine_lr, seed=seed)
    if not OPTIONS.quiet:
        print(f"{out}: {len(embeddings.items)} embeddings of dimension {embeddings.vectors.shape[1]}")


def _settings(resolution: int, points: int, voxel_resolution: int, normalised: bool):
    from nrtool.errors import NrtoolError
    from nrtool.inr.reconstruction import ReconstructionSettings

    if resolution < 8 or voxel_resolution < 2 or points < 1:
        raise NrtoolError("--resolution must be >= 8, --voxel-resolution >= 2 and --points >= 1")
    return ReconstructionSettings(resolution=resolution, points=points, voxel_resolution=voxel_resolution,
                                  source_units=not normalised)


# Reconstruction options shared by decode and interpolate.
RESOLUTION_OPTION = typer.Option(128, help="Marching-cubes grid for sdf.")
POINTS_OPTION = typer.Option(30_000, help="Points per udf shape.")
VOXEL_OPTION = typer.Option(64, help="Voxel grid for occ.")


@app.command("decode")
def decode(
    embeddings: Path = typer.Argument(..., help="embeddings artifact from `nrtool encode`."),
    model: Path = typer.Option(..., "--model", "-m", help="inr2vec checkpoint whose decoder to use."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for one shape file per embedding."),
    name: Optional[list[str]] = typer.Option(None, "--name", help="Only these items (repeatable)."),
    resolution: int = RESOLUTION_OPTION,
    points: int = POINTS_OPTION,
    voxel_resolution: int = VOXEL_OPTION,
    normalised: bool = typer.Option(False, "--normalised", help="Write in the normalised frame instead of source units."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    force: bool = FORCE_OPTION,
) -> None:
    """Decode embeddings into shapes (udf -> points, sdf -> mesh, occ -> voxels).

    Example: `nrtool decode emb.h5 --model inr2vec.pt --out decoded/`
    """
    from nrtool.cli.common import note
    from nrtool.inr2vec.decode import decode_embeddings

    results = decode_embeddings(embeddings, model, out, _settings(resolution, points, voxel_resolution, normalised),
                                names=name, device=device, progress=progress(), force=force)
    for result in results:
        if result.path is None:
            note(f"{result.name}: the decoded field has no surface")
    if not OPTIONS.quiet:
        print(f"{out}: {sum(r.path is not None for r in results)} of {len(results)} embeddings decoded")


@app.command("interpolate")
def interpolate(
    embeddings: Path = typer.Argument(..., help="embeddings artifact from `nrtool encode`."),
    start: str = typer.Option(..., "--from", help="Name of the first item."),
    end: str = typer.Option(..., "--to", help="Name of the last item."),
    model: Path = typer.Option(..., "--model", "-m", help="inr2vec checkpoint whose decoder to use."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the shapes and strip.png."),
    steps: int = typer.Option(5, help="Shapes along the line, end points included."),
    resolution: int = RESOLUTION_OPTION,
    points: int = POINTS_OPTION,
    voxel_resolution: int = VOXEL_OPTION,
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    force: bool = FORCE_OPTION,
) -> None:
    """Decode shapes along the straight line between two embeddings, plus a PNG strip.

    Example: `nrtool interpolate emb.h5 --from chair_101 --to table_141 --steps 7 --model inr2vec.pt --out interp/`
    """
    from nrtool.inr2vec.decode import interpolate_embeddings

    results = interpolate_embeddings(embeddings, model, start, end, steps, out,
                                     _settings(resolution, points, voxel_resolution, True),
                                     device=device, progress=progress(), force=force)
    if not OPTIONS.quiet:
        print(f"{out}: {len(results)} interpolated shapes and strip.png")
