"""The Typer app and its command groups; each ``*_cmd`` module adds its commands to them.

A leaf of the CLI package: command modules import from here, and :mod:`nrtool.cli.main`
imports the command modules, so nothing imports in a circle.
"""

from __future__ import annotations

import typer

from nrtool import __version__
from nrtool.cli.common import OPTIONS

HELP = """\
Neural representations of 3D signals: fit INRs to meshes, point clouds and voxel grids, and
reconstruct them. Every stage reads and writes HDF5 artifacts (see `nrtool info FILE`).

Examples:

  nrtool synth shapes --out shapes/ --classes 4 --per-class 5

  nrtool fit-inr shapes/ --out inrs.h5 --preset tiny

  nrtool reconstruct inrs.h5 --out recon/ --metrics

  nrtool sample shapes/ --out samples.h5   (then: nrtool fit-inr samples.h5 --out inrs.h5 --device cuda)

  nrtool merge part1.h5 part2.h5 --out all.h5

  nrtool info inrs.h5
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"nrtool {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors (allowed anywhere on the line)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notes (allowed anywhere on the line)."),
) -> None:
    from nrtool.distributed import is_follower

    OPTIONS.debug = OPTIONS.debug or debug
    # Under torchrun only rank 0 reports: the other ranks' lines would repeat it N-1 times.
    OPTIONS.quiet = OPTIONS.quiet or quiet or is_follower()


def _group(name: str, help: str) -> typer.Typer:  # noqa: A002 - Typer's word
    group = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


train_app = _group("train", "Train models: inr2vec encoders, classifiers on embeddings, PointNet, garment networks.")
synth_app = _group("synth", "Procedural datasets in real file formats (for tests and demos).")
plot_app = _group("plot", "Figures from artifacts (PNG).")
export_app = _group("export", "Artifacts in other tools' formats.")
import_app = _group("import", "Other tools' datasets in nrtool's formats.")
body_app = _group("body", "SMPL body model: pose it with AMASS motion and look at the result.")
nerf_app = _group("nerf", "NeRF of posed frames (scans, NeRF datasets): train, eval (PSNR/SSIM), render, benchmark.")
garment_app = _group(
    "garment", "Garment codes: encode garment meshes, decode codes into open meshes (MeshUDF), sample, interpolate, edit.")
study_app = _group("study", "Studies of INRs themselves: the shared initialisation (thesis Sec. 5.4).")
netspace_app = _group(
    "netspace", "NetSpace: train zoos of networks, embed them, decode embeddings into networks, interpolate, optimise.")
