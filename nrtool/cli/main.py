"""The ``nrtool`` command: a Typer app whose commands live one module per group.

``run()`` is the console-script entry point and the error boundary: an :class:`NrtoolError`
becomes one line on stderr and exit status 2; any other exception is reported in one line too
(exit 1), with the traceback only under ``--debug``.
"""

from __future__ import annotations

import signal
import sys

import typer

from nrtool import __version__
from nrtool.cli import common
from nrtool.cli.common import OPTIONS
from nrtool.errors import Interrupted, NrtoolError, user_os_error

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
    OPTIONS.debug = OPTIONS.debug or debug
    OPTIONS.quiet = OPTIONS.quiet or quiet


def _register() -> None:
    # Each module adds its commands to `app`; importing them is cheap (heavy imports are inside).
    from nrtool.cli import (  # noqa: F401
        augment_cmd,
        body_cmd,
        fit_cmd,
        garment_cmd,
        heads_cmd,
        info_cmd,
        inr2vec_cmd,
        plot_cmd,
        pointnet_cmd,
        reconstruct_cmd,
        scan_cmd,
        synth_cmd,
    )


_register()


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted()


#: Options that work before or after the command name (``nrtool fit-inr ... --quiet``).
GLOBAL_FLAGS = {"--quiet": "quiet", "-q": "quiet", "--debug": "debug"}


def _lift_global_flags(args: list[str]) -> list[str]:
    """Take global flags from anywhere on the line (up to ``--``) and set them."""
    kept: list[str] = []
    for position, arg in enumerate(args):
        if arg == "--":
            kept += args[position:]
            break
        if arg in GLOBAL_FLAGS:
            setattr(OPTIONS, GLOBAL_FLAGS[arg], True)
        else:
            kept.append(arg)
    return kept


def invoke(args: list[str]) -> int:
    """Run nrtool on ``args`` inside the one-line error boundary; returns the exit status.

    The console script and the in-process tests go through here, so both see the same messages
    and exit codes: 0 success, 1 a bug ("internal error"), 2 a user error, 130 an interrupt.
    """
    OPTIONS.reset()
    try:
        app(args=_lift_global_flags(list(args)), prog_name="nrtool")
    except SystemExit as exc:  # click ends every run, successful or not, with SystemExit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Interrupted:
        sys.stderr.write("nrtool: interrupted (rerun the same command to resume)\n")
        return 130
    except NrtoolError as exc:
        if OPTIONS.debug:
            raise
        sys.stderr.write(f"nrtool: error: {exc}\n")
        return 2
    except OSError as exc:
        # An OS error on a path the user gave (read-only folder, disk full, permission denied) is
        # theirs to fix, not a bug: one line naming the path.
        if OPTIONS.debug:
            raise
        message = user_os_error(exc)
        sys.stderr.write(f"nrtool: error: {message}\n" if message else
                         f"nrtool: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)\n")
        return 2 if message else 1
    except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug, said in one line
        if OPTIONS.debug:
            raise
        sys.stderr.write(f"nrtool: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)\n")
        return 1
    return 0


def run() -> None:
    """Console-script entry point: Ctrl-C becomes :class:`Interrupted`, then :func:`invoke`."""
    signal.signal(signal.SIGINT, _raise_interrupted)
    sys.exit(invoke(sys.argv[1:]))


__all__ = ["app", "invoke", "run", "common"]
