"""Where the independent items of a command run: in this process, or as tasks on a Ray cluster.

``fit-inr`` (its batches), ``sample`` (its shapes) and ``reconstruct`` (its INRs) are made of
items that need nothing from each other. Each command writes its work as a module-level function
``work(shared, item)`` that also keeps the item's result the way the local run does (a part file
in ``OUT.parts/``, a reconstruction file, both written atomically), and hands the items to
:func:`run_items`. So an item finished on any worker survives the run being killed, a rerun
resumes through the command's own resume logic, and the driver assembles the output as always.

With ``--backend ray`` each item is a Ray task: ``shared`` is put in the object store once,
every task asks for ``--cpus-per-task`` / ``--gpus-per-task`` (Ray then sets
``CUDA_VISIBLE_DEVICES`` and ``OMP_NUM_THREADS`` for it), and a task whose worker dies is
rerun up to ``max_retries`` times. An error raised *by the work itself* (a bad file) is not
retried: it is the same error on any node, and it stops the run with its own message. Ray is an
optional dependency (``pip install 'nrtool[ray]'``), imported only here and only on that path.

Every node must see the paths the command names (a shared filesystem), and have nrtool
installed in the same environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nrtool.config import Config, option
from nrtool.errors import NrtoolError

Item = TypeVar("Item")
Result = TypeVar("Result")

BACKENDS = ("local", "ray")
RAY_INSTALL = "pip install 'nrtool[ray]'"


@dataclass(frozen=True)
class BackendSettings(Config):
    """``--backend`` and what a Ray task asks of the cluster."""

    WHAT = "backend"

    backend: str = option("local", help="local (this process) | ray (one Ray task per batch).")
    address: str | None = option(None, help="Ray cluster to join: auto (the one `ray start` began on this "
                                            "machine) or HOST:PORT; default: a Ray instance started for this run.")
    cpus_per_task: float = option(1.0, help="CPUs each Ray task reserves.")
    gpus_per_task: float = option(0.0, help="GPUs each Ray task reserves (e.g. 0.25: four tasks share one GPU).")
    max_retries: int = option(3, help="Times a Ray task is rerun when its worker or node dies.")

    def checks(self) -> dict[str, bool]:
        return {"backend": self.backend in BACKENDS, "cpus_per_task": self.cpus_per_task > 0,
                "gpus_per_task": self.gpus_per_task >= 0, "max_retries": self.max_retries >= 0,
                "address": self.address is None or self.backend == "ray"}

    @property
    def is_local(self) -> bool:
        return self.backend == "local"


def run_items(work: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item],
              settings: BackendSettings = BackendSettings()) -> Iterator[tuple[int, Result]]:
    """``(index, work(shared, items[index]))`` for every item, as each finishes.

    Locally in order, one after the other; on Ray in the order the tasks end. Stopping the
    iteration early (an error, Ctrl-C) cancels the tasks not yet finished.
    """
    settings.validate()
    if settings.is_local:
        for index, item in enumerate(items):
            yield index, work(shared, item)
        return
    yield from _run_on_ray(work, shared, items, settings)


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise NrtoolError(f"--backend ray needs Ray, which is not installed here ({exc}); "
                          f"install it with: {RAY_INSTALL}") from exc
    return ray


def _connect(ray: Any, settings: BackendSettings) -> bool:
    """Join (or start) Ray; True when this call started it and so must shut it down."""
    if ray.is_initialized():
        return False
    # Ray reports usage statistics unless told not to; a toolkit's run should not phone home.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        # "local": a new instance even when one is running here (joining one is --address auto).
        ray.init(address=settings.address or "local", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = settings.address or "a local instance"
        raise NrtoolError(f"--backend ray: could not start or join Ray at {where} "
                          f"({str(exc).splitlines()[0][:200]})") from exc
    return True


def _run_on_ray(work: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item],
                settings: BackendSettings) -> Iterator[tuple[int, Result]]:
    ray = import_ray()
    started = _connect(ray, settings)
    pending: dict[Any, int] = {}
    try:
        _check_resources(ray, settings)
        shared_ref = ray.put(shared)
        # retry_exceptions=False: only lost workers and nodes are retried, never the work's own errors.
        task = ray.remote(num_cpus=settings.cpus_per_task, num_gpus=settings.gpus_per_task,
                          max_retries=settings.max_retries, retry_exceptions=False)(work)
        pending = {task.remote(shared_ref, item): index for index, item in enumerate(items)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                yield index, _result(ray, ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def _result(ray: Any, ref: Any) -> Any:
    """A finished task's value; the work's own error is raised as itself (one line for a user's error)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
        if cause is not None:
            raise cause from None
        raise
    except ray.exceptions.WorkerCrashedError as exc:
        raise NrtoolError(f"a Ray worker died more than --max-retries times on one item ({exc})") from exc


def _check_resources(ray: Any, settings: BackendSettings) -> None:
    """Refuse a task size no node can ever hold, instead of waiting for it forever."""
    # Nodes may still be joining just after ray.init; give the cluster a moment to report.
    deadline = time.monotonic() + 5.0
    while True:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    cpus = max((node["Resources"].get("CPU", 0.0) for node in nodes), default=0.0)
    gpus = max((node["Resources"].get("GPU", 0.0) for node in nodes), default=0.0)
    if settings.cpus_per_task > cpus:
        raise NrtoolError(f"--cpus-per-task {settings.cpus_per_task:g}: no Ray node has that many CPUs "
                          f"(the largest has {cpus:g})")
    if settings.gpus_per_task > gpus:
        raise NrtoolError(f"--gpus-per-task {settings.gpus_per_task:g}: no Ray node has that many GPUs "
                          f"(the largest has {gpus:g})")
