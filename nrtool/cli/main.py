"""The ``nrtool`` command: registration of every command module, and the error boundary.

The Typer app and its groups are declared in :mod:`nrtool.cli.app`; each ``*_cmd`` module adds
its commands to them, and this module imports them all (commands never import this module).
``run()`` is the console-script entry point and the error boundary: an :class:`NrtoolError`
becomes one line on stderr and exit status 2; any other exception is reported in one line too
(exit 1), with the traceback only under ``--debug``.
"""

from __future__ import annotations

import signal
import sys

from nrtool.cli import common
from nrtool.cli.app import app
from nrtool.cli.common import OPTIONS
from nrtool.errors import Interrupted, NrtoolError, user_os_error


def _register() -> None:
    # Each module adds its commands to `app`; importing them is cheap (heavy imports are inside).
    from nrtool.cli import (  # noqa: F401
        augment_cmd,
        body_cmd,
        drape_cmd,
        fit_cmd,
        fit_scan_cmd,
        garment_cmd,
        generate_cmd,
        heads_cmd,
        info_cmd,
        inr2vec_cmd,
        mapping_cmd,
        nerf_cmd,
        netspace_cmd,
        plot_cmd,
        pointnet_cmd,
        probegen_cmd,
        reconstruct_cmd,
        scan_cmd,
        segment_cmd,
        study_cmd,
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
    """Console-script entry point: Ctrl-C becomes :class:`Interrupted`, then :func:`invoke`.

    So does SIGTERM, which is how Slurm ends a job at its time limit and how torchrun stops
    its workers: the run keeps its resumable state on the way out, as it does on Ctrl-C.
    """
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    sys.exit(invoke(sys.argv[1:]))


__all__ = ["app", "invoke", "run", "common"]
