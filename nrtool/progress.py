"""Progress reporting that library code can accept without knowing about the terminal.

Long loops take a :class:`Progress`; the CLI passes a rich bar (items/s, ETA) on stderr, Python
callers get the silent default.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol


class Progress(Protocol):
    def task(self, description: str, total: int, unit: str = "items") -> contextlib.AbstractContextManager["Advance"]: ...


class Advance(Protocol):
    def __call__(self, n: int = 1) -> None: ...


class SilentProgress:
    """Reports nothing."""

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str = "items") -> Iterator[Advance]:
        yield lambda n=1: None


class LineProgress:
    """For logs (stderr not a terminal): one line per ~10 % of the work, with rate and ETA."""

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str = "items") -> Iterator[Advance]:
        import time

        started = time.perf_counter()
        state = {"done": 0, "reported": 0, "last": started}
        step = max(1, total // 10)

        def advance(n: int = 1) -> None:
            state["done"] += n
            done = state["done"]
            now = time.perf_counter()
            # Every ~10 % of the work, but not more often than every 2 s; always the last item.
            if (done - state["reported"] >= step and now - state["last"] >= 2.0) or done == total:
                state["reported"], state["last"] = done, now
                elapsed = time.perf_counter() - started
                rate = done / elapsed if elapsed > 0 else 0.0
                eta = (total - done) / rate if rate > 0 else 0.0
                sys.stderr.write(
                    f"{description}: {done}/{total} {unit} ({rate:.2f}/s, {elapsed:.0f} s elapsed, ETA {eta:.0f} s)\n"
                )

        yield advance


class RichProgress:
    """A rich progress bar per task on stderr: done/total, rate, elapsed and ETA."""

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str = "items") -> Iterator[Advance]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichBar,
        )

        console = Console(file=sys.stderr)
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with RichBar(*columns, console=console, transient=False) as bar:
            task_id = bar.add_task(description, total=total, rate="")

            def advance(n: int = 1) -> None:
                bar.advance(task_id, n)
                speed = bar.tasks[task_id].speed
                if speed:
                    bar.update(task_id, rate=f"{speed:.2f} {unit}/s")

            yield advance
