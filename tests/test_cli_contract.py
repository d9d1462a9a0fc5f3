"""Command-line promises shared by every command: bad options are refused before torch is
imported, and a training stopped by --time-limit says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

BAD_OPTIONS = [
    (["fit-inr", "x", "--out", "y.h5", "--preset", "bogus"], "unknown preset 'bogus'"),
    (["fit-inr", "x", "--out", "y.h5", "--steps", "0"], "steps=0"),
    (["fit-inr", "x", "--out", "y.h5", "--loss", "mse"], "loss='mse'"),
    (["fit-inr", "x", "--out", "y.h5", "--schedule", "step"], "schedule='step'"),
    (["fit-inr", "x", "--out", "y.h5", "--device", "tpu"], "unknown device 'tpu'"),
    (["sample", "x", "--out", "y.h5", "--field", "nope"], "--field 'nope'"),
    (["train", "inr2vec", "x.h5", "--out", "y.pt", "--epochs", "0"], "epochs=0"),
    (["train", "classifier", "x.h5", "--out", "y.pt", "--preset", "huge"], "unknown preset 'huge'"),
    (["train", "pointnet", "x.h5", "--out", "y.pt", "--batch", "1"], "batch=1"),
    (["train", "garment", "x", "--out", "y.pt", "--lr", "-1"], "lr=-1.0"),
    (["reconstruct", "x.h5", "--out", "r", "--resolution", "2"], "resolution=2"),
    (["train", "skinning", "--body-model", "b.npz", "--out", "s.pt", "--epochs", "0"], "epochs=0"),
    (["train", "drape", "-g", "t.pt", "-b", "b.npz", "-p", "procedural", "--out", "d.pt", "--batch", "0"], "batch=0"),
    (["train", "drape", "-g", "t.pt", "-b", "b.npz", "-p", "procedural", "--out", "d.pt", "--preset", "big"],
     "unknown preset 'big'"),
    (["drape", "--top", "z.npy", "--pose", "m.npz", "--model", "d.pt", "--out", "o", "--device", "tpu"],
     "unknown device 'tpu'"),
    (["train", "drape", "-b", "b.npz", "-p", "procedural", "--out", "d.pt"], "pass --garment-model"),
    (["train", "drape", "--top-model", "t.pt", "-b", "b.npz", "-p", "procedural", "--out", "d.pt"],
     "--top-model needs --bottom-model"),
    (["train", "drape", "-g", "g.pt", "--top-model", "t.pt", "--bottom-model", "m.pt", "-b", "b.npz", "-p",
      "procedural", "--out", "d.pt"], "give one form, not both"),
    (["train", "drape", "-g", "g.pt", "--bottom-codes", "c.h5", "-b", "b.npz", "-p", "procedural", "--out", "d.pt"],
     "--bottom-codes goes with"),
    (["train", "drape", "--top-model", "t.pt", "--bottom-model", "m.pt", "--skinning", "s.pt", "-b", "b.npz", "-p",
      "procedural", "--out", "d.pt"], "--skinning is not used"),
    (["train", "drape", "--top-model", "t.pt", "--bottom-model", "m.pt", "-b", "b.npz", "-p", "procedural",
      "--out", "d.pt", "--layer-weight", "-1"], "layer_weight=-1.0"),
]


def test_bad_options_are_refused_before_torch_is_imported(tmp_path: Path) -> None:
    """In a fresh interpreter (as the console script): one line, exit 2, torch never imported.

    One interpreter runs every case in turn (torch is checked after each, so the first case that
    imported it is the one named), which spares a start-up per case."""
    script = (
        "import contextlib, io, json, sys\n"
        "from nrtool.cli.main import invoke\n"
        "results = []\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        code = invoke(args)\n"
        "    results.append({'code': code, 'torch': 'torch' in sys.modules, 'stderr': err.getvalue()})\n"
        "print(json.dumps(results))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, json.dumps([args for args, _ in BAD_OPTIONS])], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(BAD_OPTIONS)
    for (args, message), result in zip(BAD_OPTIONS, results):
        lines = result["stderr"].strip().splitlines()
        assert (result["code"], result["torch"]) == (2, False), (args, result)
        assert len(lines) == 1 and message in lines[0], (args, result)


@pytest.fixture()
def small_embeddings(tmp_path: Path) -> Path:
    from nrtool.artifacts.core import ItemInfo
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings

    rng = np.random.default_rng(0)
    vectors, items = [], []
    for c in range(2):
        for i in range(12):
            vectors.append(rng.normal(loc=3.0 * c, size=8))
            items.append(ItemInfo(f"c{c}_{i:02d}", f"class{c}", "train", "", len(items), np.zeros(3), 1.0))
    path = tmp_path / "emb.h5"
    write_embeddings(path, Embeddings(np.array(vectors, dtype=np.float32), items))
    return path


def test_time_limit_stops_training_and_says_so(small_embeddings: Path, tmp_path: Path) -> None:
    out = tmp_path / "clf.pt"
    args = ["train", "classifier", small_embeddings, "--out", out, "--epochs", "100000", "--time-limit", "0.001"]
    report = json.loads(run_cli(*args, "--json", "--quiet").stdout)
    assert report["stopped_by_time_limit"] is True
    assert report["epochs"] < report["epochs_asked"] == 100000
    assert report["history"][-1]["epoch"] == report["epochs"] and "val_accuracy" in report["history"][-1]
    assert out.exists() and not out.with_name(out.name + ".partial").exists()
    text = run_cli(*args, "--restart").stdout
    assert "stopped by --time-limit after epoch" in text and "of 100000" in text
    # Without a limit nothing is said about one.
    report = json.loads(run_cli("train", "classifier", small_embeddings, "--out", out, "--epochs", "2", "--json",
                                "--quiet").stdout)
    assert report["stopped_by_time_limit"] is False and report["epochs"] == 2


def test_cpu_gradients_are_bit_reproducible_on_several_threads() -> None:
    """`--device cpu` switches torch to its deterministic algorithms: without them the backward of
    ``x[index]`` (index_put_ with accumulate) adds in a run-dependent order on 2 threads (20 of 20
    repeats differed here), and fits that re-mesh amplified it into different results."""
    import torch

    from nrtool.device import resolve_device

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        torch.set_num_threads(2)
        assert resolve_device("cpu").type == "cpu" and torch.are_deterministic_algorithms_enabled()
        generator = torch.Generator().manual_seed(0)
        index = torch.randint(0, 2000, (200_000,), generator=generator)
        weights = torch.randn(200_000, 3, generator=generator)

        def gradient() -> torch.Tensor:
            x = torch.zeros(2000, 3, requires_grad=True)
            (x[index] * weights).sum().backward()
            return x.grad

        first = gradient()
        assert all(torch.equal(gradient(), first) for _ in range(10))
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
