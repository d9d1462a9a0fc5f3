"""What a training loop needs to continue after an interruption: ``OUT.partial`` beside the checkpoint.

A training command keeps, after each epoch, a copy of its model, optimiser, history, best
epoch so far and random states; the copy is written to ``OUT.partial`` at most every
:data:`SAVE_EVERY_S` seconds, always after the last epoch, and on the way out of an
interruption (Ctrl-C, an error), so an interrupted run loses at most the epoch it was in.
Rerunning the same command loads it and continues with the next epoch; the file is deleted once
the final checkpoint is written. The file records a fingerprint of what determines the run
(settings, inputs): a state from another run is refused, never silently reused.

It is a checkpoint like the others (:mod:`nrtool.checkpoints`): plain data and tensors, written
atomically, read with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nrtool.errors import InputFileError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from nrtool.progress import Progress

STATE_VERSION = 1
#: Seconds between writes of the state (each epoch's state is kept in memory in between).
SAVE_EVERY_S = 30.0


def start_training(out: str | os.PathLike[str], device: str, progress: "Progress | None",
                   *settings: Any) -> tuple[Path, "torch.device", "Progress"]:
    """The checks every training command starts with: ``settings`` (each has ``validate()``), the
    output (its folder must exist and be writable), the device. Returns ``out`` as a path, the
    torch device and the progress."""
    from nrtool.artifacts.core import check_output_file
    from nrtool.device import resolve_device
    from nrtool.progress import SilentProgress

    for item in settings:
        item.validate()
    out = check_output_file(out, "--out")
    return out, resolve_device(device), progress or SilentProgress()


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

    def __init__(self, out: str | os.PathLike[str], kind: str, fingerprint: dict[str, Any],
                 every_s: float | None = None) -> None:
        self.path = partial_path(out)
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

        if not self.path.exists():
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
                generator: "torch.Generator | None" = None, rng: "np.random.Generator | None" = None) -> None:
        """Put a loaded state's weights, optimiser state and random states back in place."""
        import torch

        try:
            model.load_state_dict(data["model"])
            optimizer.load_state_dict(data["optimizer"])
            torch.set_rng_state(data["random"]["torch"])
            if generator is not None:
                generator.set_state(data["random"]["generator"])
            if rng is not None:
                rng.bit_generator.state = data["random"]["numpy"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputFileError(self.path, f"damaged training state ({str(exc).splitlines()[0][:160]}); "
                                 f"{self._advice()}") from exc

    def epoch_done(self, epoch: int, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                   history: list[dict[str, float]], best_score: float, best_epoch: int,
                   best_state: dict[str, "torch.Tensor"] | None, generator: "torch.Generator | None" = None,
                   rng: "np.random.Generator | None" = None, final: bool = False) -> None:
        """Keep the state after ``epoch``; write it when ``final`` or :attr:`every_s` have passed.

        The loop's randomness comes from the CPU (``generator``, ``rng``, torch's default
        generator), so the CPU random states are all a resumed run needs to draw the same numbers.
        """
        import torch

        self._pending = {
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "epoch": epoch,
            "model": _cpu_copy(model.state_dict()),
            "optimizer": _cpu_copy(optimizer.state_dict()),
            "history": _cpu_copy(history),
            "best": {"score": float(best_score), "epoch": int(best_epoch), "state_dict": _cpu_copy(best_state)},
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

        if self._pending is not None:
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
        self._pending = None
        self.path.unlink(missing_ok=True)
