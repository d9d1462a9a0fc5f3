"""The one training loop, and the state it leaves to resume from (``OUT.partial``).

Every trainer (inr2vec, classifier, PointNet, garment network, and the ones to come) describes
one epoch and one validation (:class:`Trainer`); :func:`run_training` owns the rest:

- epochs, the validation cadence (``val_every``; always after the last epoch), a time limit
  (checked between steps; the run then validates once more and says it stopped);
- the kept epoch: the lowest :meth:`Trainer.score` among validated epochs (the last epoch when
  the trainer has nothing to validate on), its weights kept on the CPU;
- resuming: after each epoch the model, optimiser, scheduler, history, best epoch so far and
  random states are kept, and written to ``OUT.partial`` at most every :data:`SAVE_EVERY_S`
  seconds, always after the last epoch and on the way out of an interruption. Rerunning the
  same command continues with the next epoch and gives the same result as a run never
  interrupted. The state records a fingerprint of what determines the run (settings, inputs):
  a state of another run is refused, never silently reused. It is deleted once the final
  checkpoint is written (:meth:`TrainingRun.finish`);
- progress (steps, rate, ETA) and the record of each epoch, which :func:`nrtool.figures.training_curves`
  draws.

The state is a checkpoint like the others (:mod:`nrtool.checkpoints`): plain data and tensors,
written atomically, read with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nrtool.config import Config, option
from nrtool.errors import InputFileError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from nrtool.progress import Advance, Progress

STATE_VERSION = 2  # 2: scheduler state, scores as lists
#: Seconds between writes of the state (each epoch's state is kept in memory in between).
SAVE_EVERY_S = 30.0


@dataclass(frozen=True)
class LoopSettings(Config):
    """What the loop itself needs: how long to train, how often to validate, when to stop."""

    WHAT = "training"

    epochs: int = option(100, help="Epochs (passes over the training items).")
    val_every: int = option(1, help="Epochs between validations (the last epoch is always validated).")
    time_limit: float | None = option(None, help="Stop after this many seconds of this run (validating once more).")

    def checks(self) -> dict[str, bool]:
        return {"epochs": self.epochs >= 1, "val_every": self.val_every >= 1,
                "time_limit": self.time_limit is None or self.time_limit > 0}


class Trainer(Protocol):
    """One model's training, as the loop sees it."""

    model: "torch.nn.Module"
    optimizer: "torch.optim.Optimizer"
    scheduler: Any  # an LR scheduler with state_dict/load_state_dict, or None
    generator: "torch.Generator | None"  # CPU random streams the epochs draw from (saved, restored)
    rng: "np.random.Generator | None"
    steps_per_epoch: int

    def train_epoch(self, epoch: int, advance: "Advance", out_of_time: Callable[[], bool]) -> dict[str, float]:
        """Train one epoch (1-based), calling ``advance()`` per step; may stop early when
        ``out_of_time()``. Returns the epoch's training metrics (e.g. ``train_loss``, ``steps``)."""
        ...

    def validate(self, epoch: int) -> dict[str, float]:
        """Validation metrics of the current weights (e.g. ``val_chamfer``); ``{}`` when there is
        nothing to validate on."""
        ...

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        """Lower is better; ``None`` for an epoch without validation metrics."""
        ...


@dataclass
class TrainingRun:
    """What :func:`run_training` did: the kept epoch, every epoch's record, how it ended."""

    history: list[dict[str, float]]
    best_epoch: int
    best_state: dict[str, Any]
    epochs: int  # the last epoch trained
    epochs_asked: int
    seconds: float  # this call's time
    resumed_from_epoch: int | None  # the first epoch of this call when it continued an interrupted run
    stopped_by_time_limit: bool
    state: "TrainingState" = field(repr=False)

    @property
    def best(self) -> dict[str, float]:
        """The kept epoch's record (its training and validation metrics)."""
        return next((h for h in self.history if h["epoch"] == self.best_epoch), {})

    def finish(self) -> None:
        """Call once the final checkpoint is written: the resumable state is no longer needed."""
        self.state.finish()

    def report(self, out: str | os.PathLike[str], curves: str | os.PathLike[str] | None, **details: Any) -> "TrainReport":
        return TrainReport(str(out), str(curves) if curves is not None else None, self.epochs, self.epochs_asked,
                           self.best_epoch, self.best, self.history, self.seconds, self.resumed_from_epoch,
                           self.stopped_by_time_limit, details)


@dataclass
class TrainReport:
    """The result of a training command, the same for every trainer (``details``: its own)."""

    out: str
    curves: str | None
    epochs: int
    epochs_asked: int
    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, float]]
    seconds: float
    resumed_from_epoch: int | None
    stopped_by_time_limit: bool
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def ending(self) -> str:
        """``best epoch 7/10`` plus how the run ended, for a result line."""
        text = f"best epoch {self.best_epoch}/{self.epochs}"
        if self.stopped_by_time_limit:
            text += f" (stopped by --time-limit after epoch {self.epochs} of {self.epochs_asked})"
        return text


def start_training(out: str | os.PathLike[str], device: str, progress: "Progress | None",
                   *settings: Any) -> tuple[Path, "torch.device", "Progress"]:
    """The checks every training command starts with: ``settings`` (each has ``validate()``), the
    output (its folder must exist and be writable), the device. Returns ``out`` as a path, the
    torch device and the progress."""
    from nrtool.artifacts.core import check_output_file
    from nrtool.device import resolve_device
    from nrtool.distributed import join
    from nrtool.progress import SilentProgress

    for item in settings:
        item.validate()
    out = check_output_file(out, "--out")
    world, torch_device = join(resolve_device(device))  # under torchrun: this rank's device
    return out, torch_device, (progress or SilentProgress()) if world.is_main else SilentProgress()


def _state_copy(model: "torch.nn.Module") -> dict[str, Any]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def run_training(trainer: Trainer, out: str | os.PathLike[str] | None, kind: str, fingerprint: dict[str, Any],
                 loop: LoopSettings, progress: "Progress | None" = None, restart: bool = False,
                 description: str = "") -> TrainingRun:
    """Train ``trainer`` for ``loop.epochs`` epochs (resuming ``OUT.partial`` when it matches).

    ``kind`` names the model in messages and the state's format ("inr2vec", "garment", ...);
    ``fingerprint`` is JSON-able data that determines the run (settings and input identities,
    not the device or the time limit); with ``out=None`` nothing is kept on disk (no resume).
    Returns the run; write the checkpoint from
    ``run.best_state``, then call ``run.finish()``.
    """
    from nrtool import distributed
    from nrtool.progress import SilentProgress

    progress = progress or SilentProgress()
    loop.validate()
    world = distributed.current()
    state = TrainingState(out, kind, fingerprint)
    saved = state.load(restart) if world.is_main or not restart else None
    history: list[dict[str, float]] = []
    best_score: tuple[float, ...] | None = None
    best_epoch, best_state = 0, None
    first = 1
    if saved is not None:
        state.restore(saved, trainer.model, trainer.optimizer, trainer.generator, trainer.rng, trainer.scheduler)
        history, first = list(saved["history"]), int(saved["epoch"]) + 1
        score = saved["best"]["score"]
        best_score = None if score is None else tuple(score) if isinstance(score, list) else (float(score),)
        best_epoch, best_state = int(saved["best"]["epoch"]), saved["best"]["state_dict"]
    started = time.perf_counter()

    def out_of_time() -> bool:
        return loop.time_limit is not None and time.perf_counter() - started > loop.time_limit

    averaging = None
    if world.active:  # torchrun: same start, averaged gradients, one decision to stop (nrtool.distributed)
        device = next(trainer.model.parameters()).device
        distributed.start_from_rank_zero(trainer.model)
        averaging = distributed.GradientAverage(trainer.model, trainer.optimizer, world)
    in_epoch = distributed.in_epoch_clock(world, out_of_time)
    stopped = False
    epoch = first - 1
    resumed = f" (resumed from epoch {first})" if saved is not None else ""
    total = max(0, loop.epochs - first + 1) * trainer.steps_per_epoch
    with progress.task(f"{description or 'training ' + kind}{resumed}", total, "steps") as advance, \
            state.kept_on_interrupt():
        for epoch in range(first, loop.epochs + 1):
            trainer.model.train()
            record: dict[str, float] = {"epoch": epoch, **trainer.train_epoch(epoch, advance, in_epoch)}
            stopped = out_of_time() and epoch < loop.epochs
            if world.active:
                stopped = distributed.agree(stopped, device)
            if (epoch % loop.val_every == 0 or epoch == loop.epochs or stopped) and world.is_main:
                record.update(trainer.validate(epoch))
            history.append(record)
            score = trainer.score(record)
            # The best scored epoch; until one is scored (or when nothing can be), the latest.
            if (score is not None and (best_score is None or score < best_score)) or (score is None and best_score is None):
                best_score, best_epoch, best_state = score, epoch, _state_copy(trainer.model)
            state.epoch_done(epoch, trainer.model, trainer.optimizer, history, best_score, best_epoch, best_state,
                             trainer.generator, trainer.rng, final=epoch == loop.epochs or stopped,
                             scheduler=trainer.scheduler)
            if stopped:
                break
    if averaging is not None:
        averaging.remove()
    if best_state is None:  # nothing left to train: a finished run's state
        best_state = _state_copy(trainer.model)
        best_epoch = epoch
    return TrainingRun(history, best_epoch, best_state, epoch, loop.epochs, time.perf_counter() - started,
                       first if saved is not None else None, stopped, state)


def partial_path(out: str | os.PathLike[str]) -> Path:
    """Where the state of an unfinished run writing ``out`` lives: ``OUT.partial``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def _cpu_copy(value: Any) -> Any:
    """A deep copy with every tensor detached and on the CPU (the loop goes on changing the originals)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(v) for v in value)
    return value


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``epochs 10 -> 5, inputs`` for a message (values only when short)."""
    a, b = _flatten(old), _flatten(new)
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            name = key.rsplit(".", 1)[-1]
            short = all(isinstance(v, (int, float, str, type(None))) and len(str(v)) <= 16 for v in (a.get(key), b.get(key)))
            parts.append(f"{name} {a.get(key)} -> {b.get(key)}" if short else name)
    return ", ".join(parts[:4]) + (", ..." if len(parts) > 4 else "")


class TrainingState:
    """The ``OUT.partial`` file of one training run.

    ``kind`` names the model ("inr2vec", "garment"); ``fingerprint`` is plain JSON-able data that
    determines the run (settings, identity of the inputs; not the device or a time limit).
    """

    def __init__(self, out: str | os.PathLike[str] | None, kind: str, fingerprint: dict[str, Any],
                 every_s: float | None = None) -> None:
        # No output (a library call training in memory): nothing is kept on disk.
        self.path = partial_path(out) if out is not None else None
        self.kind = kind
        self.fmt = f"nrtool-{kind}-training-state"
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        self.every_s = SAVE_EVERY_S if every_s is None else every_s
        self._pending: dict[str, Any] | None = None
        self._written_at = time.monotonic()

    def _advice(self) -> str:
        return f"delete it or pass --restart to start `nrtool train {self.kind}` over"

    def load(self, restart: bool = False) -> dict[str, Any] | None:
        """The saved state of an interrupted run of this same training, None when there is none.

        With ``restart`` an existing state is deleted instead. A state of another run (other
        settings or inputs) or a damaged file is refused with one line naming it.
        """
        from nrtool.checkpoints import load_checkpoint

        if self.path is None or not self.path.exists():
            return None
        if restart:
            self.path.unlink()
            return None
        try:
            data = load_checkpoint(self.path, self.fmt, STATE_VERSION, f"{self.kind} training state",
                                   f"nrtool train {self.kind}")
        except InputFileError as exc:
            raise InputFileError(self.path, f"{exc.problem}; {self._advice()}") from exc
        try:
            saved = json.loads(data["fingerprint"])
            int(data["epoch"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputFileError(self.path, f"damaged training state ({exc}); {self._advice()}") from exc
        if saved != self.fingerprint:
            raise InputFileError(self.path, "holds an interrupted run with other settings or inputs "
                                 f"({_differences(saved, self.fingerprint)}); {self._advice()}")
        return data

    def restore(self, data: dict[str, Any], model: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                generator: "torch.Generator | None" = None, rng: "np.random.Generator | None" = None,
                scheduler: Any = None) -> None:
        """Put a loaded state's weights, optimiser and scheduler state and random states back in place."""
        import torch

        try:
            model.load_state_dict(data["model"])
            optimizer.load_state_dict(data["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(data["scheduler"])
            torch.set_rng_state(data["random"]["torch"])
            if generator is not None:
                generator.set_state(data["random"]["generator"])
            if rng is not None:
                rng.bit_generator.state = data["random"]["numpy"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputFileError(self.path, f"damaged training state ({str(exc).splitlines()[0][:160]}); "
                                 f"{self._advice()}") from exc

    def epoch_done(self, epoch: int, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                   history: list[dict[str, float]], best_score: Sequence[float] | None, best_epoch: int,
                   best_state: dict[str, "torch.Tensor"] | None, generator: "torch.Generator | None" = None,
                   rng: "np.random.Generator | None" = None, final: bool = False, scheduler: Any = None) -> None:
        """Keep the state after ``epoch``; write it when ``final`` or :attr:`every_s` have passed.

        The loop's randomness comes from the CPU (``generator``, ``rng``, torch's default
        generator), so the CPU random states are all a resumed run needs to draw the same numbers.
        """
        import torch

        from nrtool.distributed import is_follower

        if is_follower():  # under torchrun rank 0 keeps the state (every rank's would be the same)
            return
        self._pending = {
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "epoch": epoch,
            "model": _cpu_copy(model.state_dict()),
            "optimizer": _cpu_copy(optimizer.state_dict()),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "history": _cpu_copy(history),
            "best": {"score": None if best_score is None else [float(v) for v in best_score], "epoch": int(best_epoch),
                     "state_dict": _cpu_copy(best_state)},
            "random": {
                "torch": torch.get_rng_state(),
                "generator": generator.get_state() if generator is not None else None,
                "numpy": rng.bit_generator.state if rng is not None else None,
            },
        }
        if final or time.monotonic() - self._written_at >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write the kept state, if any not yet written (atomically: temp file, then rename)."""
        from nrtool.checkpoints import save_checkpoint

        if self._pending is not None and self.path is not None:
            save_checkpoint(self.path, self.fmt, STATE_VERSION, self._pending)
            self._pending = None
            self._written_at = time.monotonic()

    @contextlib.contextmanager
    def kept_on_interrupt(self) -> Iterator[None]:
        """Around the epoch loop: on Ctrl-C (or an error) write the last finished epoch's state."""
        try:
            yield
        except BaseException:
            self.flush()
            raise

    def finish(self) -> None:
        """The run is complete (final checkpoint written): no state to resume from."""
        from nrtool.distributed import is_follower

        self._pending = None
        if self.path is not None and not is_follower():  # rank 0 alone owns the state file
            self.path.unlink(missing_ok=True)
