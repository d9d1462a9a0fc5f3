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


#: Longest silence of :class:`LineProgress` while work goes on (seconds): logs of long runs show
#: a line at least this often, even while one item (a batch of INRs, an epoch) takes longer.
HEARTBEAT_S = 15.0


class LineProgress:
    """For logs (stderr not a terminal): a line per ~10 % of the work, with rate and ETA, and
    at least one every :data:`HEARTBEAT_S` seconds (a background timer speaks when the loop is
    inside one long item)."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.heartbeat_s = heartbeat_s

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str = "items") -> Iterator[Advance]:
        import threading
        import time

        started = time.perf_counter()
        state = {"done": 0, "reported": 0, "last": started}
        step = max(1, total // 10)
        lock = threading.Lock()
        stop = threading.Event()

        def line(now: float, suffix: str = "") -> None:
            done = state["done"]
            elapsed = now - started
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f"ETA {(total - done) / rate:.0f} s" if rate > 0 else "ETA unknown"
            sys.stderr.write(f"{description}: {done}/{total} {unit} ({rate:.2f}/s, {elapsed:.0f} s elapsed, {eta}){suffix}\n")
            sys.stderr.flush()
            state["reported"], state["last"] = done, now

        def advance(n: int = 1) -> None:
            with lock:
                state["done"] += n
                done, now = state["done"], time.perf_counter()
                # Every ~10 % of the work but not more often than every 2 s, at least every
                # heartbeat, and always the last item.
                if ((done - state["reported"] >= step and now - state["last"] >= 2.0)
                        or now - state["last"] >= self.heartbeat_s or done == total):
                    line(now)

        def heartbeat() -> None:
            while not stop.wait(min(1.0, self.heartbeat_s)):
                with lock:
                    now = time.perf_counter()
                    if now - state["last"] >= self.heartbeat_s and state["done"] < total:
                        line(now, " - still working")

        timer = threading.Thread(target=heartbeat, name="nrtool-progress-heartbeat", daemon=True)
        timer.start()
        try:
            yield advance
        finally:
            stop.set()
            timer.join()


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
