"""Data-parallel training under ``torchrun``: one process per device, every step's gradients averaged.

``torchrun --nproc-per-node N $(which nrtool) train inr2vec ...`` starts N copies of the command
with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment.
This module is all the training code needs to know about it:

- :func:`join` (from :func:`nrtool.training.start_training`) joins the process group (NCCL on
  CUDA, gloo on the CPU) and gives each process its own GPU (``cuda:LOCAL_RANK``);
- :func:`nrtool.training.run_training` then makes every process start from rank 0's weights,
  averages the gradients before each optimiser step (:class:`GradientAverage`), lets rank 0
  alone validate, and agrees on when to stop;
- trainers draw each step's batch from generators seeded alike on every rank, so all ranks hold
  the same global batch; :func:`rank_slice` keeps this rank's share of it. The mean of the
  shares' gradients is the global batch's gradient (equal shares; BatchNorm statistics are
  per share), so N processes follow the one-process run, each doing 1/N of the work -- the job
  ``DistributedSampler`` does for a ``DataLoader``, here for the batches each trainer draws;
- only rank 0 writes: outputs, checkpoints and the resumable ``OUT.partial``
  (:mod:`nrtool.artifacts.core` discards the other ranks' atomic writes and skips their output
  locks). A killed run resumes from rank 0's state on every rank.

Trainers that do not call :func:`rank_slice` still train correctly under torchrun (every rank
computes the whole batch, the averaged gradient is the same), just without a speed-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

Rows = TypeVar("Rows")


@dataclass(frozen=True)
class World:
    """This process's place among the ``size`` processes of a torchrun job."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> World:
    """What torchrun's environment says (a plain run: rank 0 of 1)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return World()
    return World(rank, size, local) if size > 1 else World()


def is_follower() -> bool:
    """True in the processes of a torchrun job other than rank 0: they write nothing."""
    return launched().rank > 0


def join(device: "torch.device") -> tuple[World, "torch.device"]:
    """Join the torchrun job's process group (once); returns the world and this rank's device."""
    import torch
    import torch.distributed as dist

    world = launched()
    if not world.active:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        except (RuntimeError, ValueError) as exc:  # e.g. WORLD_SIZE set by something other than torchrun
            from nrtool.errors import NrtoolError

            raise NrtoolError(f"WORLD_SIZE={world.size} in the environment, but joining the torchrun job failed "
                              f"({str(exc).splitlines()[0][:160]}); start the command with torchrun, or unset "
                              "WORLD_SIZE") from exc
    return world, device


def current() -> World:
    """The world of the joined process group (rank 0 of 1 when there is none)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return launched()


def rank_slice(rows: Rows) -> Rows:
    """This rank's share of a global batch ``rows`` (a tensor, array or list of indices).

    Interleaved (``rows[rank::size]``), and padded by wrapping around so that every rank gets
    the same count: every rank takes the same number of steps of the same size. Outside a
    torchrun job, ``rows`` itself.
    """
    world = current()
    if not world.active or len(rows) == 0:  # type: ignore[arg-type]
        return rows
    count = -(-len(rows) // world.size)  # type: ignore[arg-type]
    positions = [(world.rank + world.size * i) % len(rows) for i in range(count)]  # type: ignore[arg-type]
    if isinstance(rows, list):
        return [rows[p] for p in positions]  # type: ignore[return-value]
    return rows[positions]  # type: ignore[index]


class GradientAverage:
    """Averages the gradients of ``model`` over the ranks before every ``optimizer.step()``.

    An optimiser step pre-hook, so every trainer's own ``loss.backward(); optimizer.step()``
    stays as it is. One flat all-reduce per step (a parameter without a gradient counts as zero
    on that rank, so every rank reduces the same buffer).
    """

    def __init__(self, model: "torch.nn.Module", optimizer: "torch.optim.Optimizer", world: World) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.size = world.size
        self._handle = optimizer.register_step_pre_hook(self._average)

    def _average(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        # Views into this step's fresh buffer: no copy per parameter.
        for param, piece in zip(self.params, flat.split([p.numel() for p in self.params])):
            param.grad = piece.view_as(param)

    def remove(self) -> None:
        self._handle.remove()


def start_from_rank_zero(model: "torch.nn.Module") -> None:
    """Every rank takes rank 0's weights and buffers (identical seeds make them equal already;
    this makes it certain, e.g. after a resume)."""
    import torch.distributed as dist

    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)


def agree(flag: bool, device: "torch.device") -> bool:
    """Rank 0's ``flag`` on every rank (when to stop must be one decision, or the others hang);
    ``device``: where the job's tensors live (NCCL reduces CUDA tensors only)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def never() -> bool:
    return False


def in_epoch_clock(world: World, out_of_time: Callable[[], bool]) -> Callable[[], bool]:
    """The time-limit check trainers make between steps: under torchrun only between epochs,
    where the ranks agree (a rank stopping alone mid-epoch would leave the others waiting)."""
    return never if world.active else out_of_time
