"""Data-parallel training (``nrtool.distributed``): two gloo ranks average to the one-process gradient
exactly; ``torchrun --nproc-per-node 2`` (CPU) trains inr2vec like one process does, writes from
rank 0 only, and resumes after an interruption to the uninterrupted job's result."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NRTOOL, run_cli

TORCHRUN = Path(sys.executable).parent / "torchrun"
#: 54 training INRs, global batch 8 (4 per rank): 7 steps an epoch.
TRAIN = ("--preset", "tiny", "--epochs", "12", "--batch", "8", "--val-every", "12",
         "--seed", "0", "--device", "cpu")
STEPS_PER_EPOCH = 7
#: Per-epoch training loss, two ranks vs one process (rank 0's share of each batch vs the whole
#: batch; BatchNorm statistics per share). Measured on the 2-core VM (2026-12-03): at most 2.4 %
#: apart over the 12 epochs (0.6351 vs 0.6202 at epoch 9; 0.5942 vs 0.6039 at 12).
LOSS_TOLERANCE = 0.05


def _rank(rank: int, port: int, out: str) -> None:
    """One of two gloo ranks: a batch of 8 through rank_slice and GradientAverage vs the whole batch."""
    import torch

    from nrtool.distributed import GradientAverage, join, rank_slice

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    world, _ = join(torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    whole = torch.autograd.grad(torch.nn.functional.mse_loss(model(x), y), list(model.parameters()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step only runs the hook
    averaging = GradientAverage(model, optimizer, world)
    rows = rank_slice(torch.arange(8))
    torch.nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
    optimizer.step()
    averaging.remove()
    gap = max(float((p.grad - g).abs().max()) for p, g in zip(model.parameters(), whole))
    Path(out, f"rank{rank}.json").write_text(json.dumps({"rows": rows.tolist(), "gap": gap}))
    import torch.distributed as dist

    dist.destroy_process_group()


def test_two_ranks_average_to_the_whole_batch_gradient(tmp_path: Path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.start_processes(_rank, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["rows"] == [0, 2, 4, 6] and ranks[1]["rows"] == [1, 3, 5, 7]
    assert all(r["gap"] < 1e-6 for r in ranks), ranks


def _torchrun(inrs: Path, out: Path, *extra: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", str(NRTOOL), "train", "inr2vec", str(inrs),
               "--out", str(out), *TRAIN, *extra]
    return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout)


@pytest.fixture(scope="module")
def two_process_run(trained_separable, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("ddp") / "inr2vec.pt"
    return _finish(_torchrun(trained_separable["inrs.h5"], out, "--json", "--quiet")), out


def test_two_processes_match_one(trained_separable, two_process_run, tmp_path: Path) -> None:
    single = json.loads(run_cli("train", "inr2vec", trained_separable["inrs.h5"], "--out", tmp_path / "one.pt",
                                *TRAIN, "--json", "--quiet").stdout)
    double, out = two_process_run
    assert [h["epoch"] for h in double["history"]] == [h["epoch"] for h in single["history"]]
    losses = [(a["train_loss"], b["train_loss"]) for a, b in zip(single["history"], double["history"])]
    print("train loss (one, two):", [(round(a, 4), round(b, 4)) for a, b in losses])
    print(f"val Chamfer: one process {single['best']['val_chamfer']:.4f}, two {double['best']['val_chamfer']:.4f}")
    assert all(abs(b - a) <= LOSS_TOLERANCE * a for a, b in losses), losses
    # Both decode validation surfaces; at 12 epochs on 49 INRs the Chamfer itself is decided by which
    # validation shapes decode at all (measured 0.937 one process, 0.426 two), so it is not compared.
    assert single["best"]["val_chamfer"] < 1.0 and double["best"]["val_chamfer"] < 1.0
    # Rank 0 alone wrote: one checkpoint, no leftovers from the other rank.
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["inr2vec.pt", "inr2vec.png"])


def test_an_interrupted_two_process_run_resumes_to_the_same_result(trained_separable, two_process_run,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "inr2vec.pt"
    proc = _torchrun(trained_separable["inrs.h5"], out, "--json")
    # Interrupt (Ctrl-C to torchrun, which signals its workers) once epoch 2 is under way.
    for line in proc.stderr:
        found = re.search(r"(\d+)/\d+ steps", line)
        if found and int(found.group(1)) > 2 * STEPS_PER_EPOCH:
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert (tmp_path / "inr2vec.pt.partial").exists() and not out.exists()
    resumed = _finish(_torchrun(trained_separable["inrs.h5"], out, "--json", "--quiet"))
    print("resumed from epoch", resumed["resumed_from_epoch"], resumed["best"]["val_chamfer"])
    assert resumed["resumed_from_epoch"] is not None and resumed["resumed_from_epoch"] > 2
    uninterrupted, _ = two_process_run
    assert resumed["best"]["val_chamfer"] == pytest.approx(uninterrupted["best"]["val_chamfer"], rel=1e-4)
    assert not (tmp_path / "inr2vec.pt.partial").exists()
