"""What every command shares: global options, output helpers, the error boundary."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from nrtool.progress import LineProgress, Progress, RichProgress, SilentProgress


@dataclass
class GlobalOptions:
    debug: bool = False
    quiet: bool = False


OPTIONS = GlobalOptions()


def progress() -> Progress:
    """A progress bar on stderr (progress lines when it is not a terminal), unless ``--quiet``."""
    if OPTIONS.quiet:
        return SilentProgress()
    return RichProgress() if sys.stderr.isatty() else LineProgress()


def print_json(data: Any) -> None:
    """Machine-readable results on stdout (nothing else goes to stdout with ``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_jsonable) + "\n")


def kept_epoch(summary: dict[str, Any]) -> str:
    """Which epoch a classification head kept, from its training summary (for the result line)."""
    best = summary["best_val_accuracy"]
    if best is None:
        return "no validation items, kept the last epoch"
    return f"best validation accuracy {best:.3f} at epoch {summary['best_epoch']}"


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
