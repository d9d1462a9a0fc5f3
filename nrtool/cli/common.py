"""What every command shares: global options, output helpers, the error boundary."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from nrtool.backends import BackendSettings
from nrtool.config import override_options
from nrtool.progress import LineProgress, Progress, RichProgress, SilentProgress

#: For commands that write an output folder atomically: what ``--force`` may replace.
FORCE_OPTION = typer.Option(False, "--force", help="Replace --out if it is a non-empty folder nrtool wrote "
                            "(a folder nrtool did not write is never replaced).")


@dataclass
class GlobalOptions:
    debug: bool = False
    quiet: bool = False

    def reset(self) -> None:
        """Back to the defaults (each in-process run starts from a clean slate)."""
        self.debug = False
        self.quiet = False


OPTIONS = GlobalOptions()


def progress() -> Progress:
    """A progress bar on stderr (progress lines when it is not a terminal), unless ``--quiet``."""
    if OPTIONS.quiet:
        return SilentProgress()
    return RichProgress() if sys.stderr.isatty() else LineProgress()


def print_json(data: Any) -> None:
    """Machine-readable results on stdout (nothing else goes to stdout with ``--json``); under
    torchrun from rank 0 only, so that the job's stdout is one JSON document."""
    from nrtool.distributed import is_follower

    if is_follower():
        return
    sys.stdout.write(json.dumps(data, indent=2, default=_jsonable) + "\n")


def kept_text(report: Any, metric: str = "val_accuracy", label: str = "validation accuracy") -> str:
    """How a head's kept epoch was chosen (by its validation ``metric``), for its result line."""
    value = report.best.get(metric)
    if value is None:
        return "no validation items, kept the last epoch"
    return f"best {label} {value:.3f} at epoch {report.best_epoch}"


def check_outputs(files: Iterable[Path | None] = (), folders: Iterable[Path | None] = ()) -> None:
    """Before any work: every output file's folder and every output folder must be writable.

    A read-only or missing place is found now, in one line naming the path, instead of after
    a long run (``None`` entries are options that were not given).
    """
    from nrtool.artifacts.core import check_output_dir, check_output_file

    for path in files:
        if path is not None:
            check_output_file(path)
    for path in folders:
        if path is not None:
            check_output_dir(path)


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def console():
    from rich.console import Console

    return Console()


def note(message: str) -> None:
    """A human note on stderr (silenced by ``--quiet``)."""
    if not OPTIONS.quiet:
        sys.stderr.write(f"nrtool: {message}\n")


def argv() -> list[str]:
    return ["nrtool", *sys.argv[1:]]


#: For the training commands that resume an interrupted run from ``OUT.partial``.
RESTART_OPTION = typer.Option(False, "--restart", help="Discard the state of an interrupted run (OUT.partial) and start over.")


def image_size(text: str) -> tuple[int, int]:
    """(width, height) of a ``--size WIDTHxHEIGHT`` option."""
    from nrtool.errors import NrtoolError

    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise NrtoolError(f"--size must be WIDTHxHEIGHT, e.g. 1440x1080; got {text!r}")
    return int(parts[0]), int(parts[1])


def note_resumed(first_epoch: int | None) -> None:
    """Tell the user that this run continued an interrupted one."""
    if first_epoch is not None:
        note(f"resumed from epoch {first_epoch} of an interrupted run")


#: ``--device`` of every computing command.
DEVICE_OPTION = typer.Option("auto", help="auto | cpu | cuda (or cuda:N).")


#: ``--backend local|ray`` and the Ray task's resources, for the commands made of independent items.
backend_options = override_options(BackendSettings, ["backend", "address", "cpus_per_task", "gpus_per_task",
                                                     "max_retries"], into="backend_options")


def backend_settings(options: dict[str, Any]) -> BackendSettings:
    """The validated settings of the options :data:`backend_options` added."""
    return BackendSettings().with_overrides(**options)


def check_device(name: str) -> None:
    """An unknown ``--device`` is refused before torch is imported (a second, not four)."""
    from nrtool.device import check_device_name

    check_device_name(name)


def print_training(report: Any, json_out: bool, metric: str = "") -> None:
    """What every training command prints: its notes, then the report as JSON or one result line
    (output, kept epoch and how the run ended, ``metric``, curves)."""
    note_resumed(report.resumed_from_epoch)
    for line in report.notes:
        note(line)
    if json_out:
        print_json(report.to_dict())
    elif not OPTIONS.quiet:
        parts = [f"{report.out}: {report.ending()}", metric]
        if report.curves:
            parts.append(f"curves in {report.curves}")
        print("; ".join(p for p in parts if p))
