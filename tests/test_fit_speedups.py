"""The fitter's speed-ups (issue 19, part 3): chunked index draws, ``--precision``, the memory
estimate behind ``--batch auto``. Their speed is measured in ``make bench`` (section ``speedups``),
not here; here: the same fit, a bf16 fit as good as a float32 one, and an estimate that covers what
autograd really keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_clean_failure, run_cli

from nrtool.inr import fit
from nrtool.inr.config import preset
from nrtool.inr.siren import siren_init


def test_chunked_index_draws_are_the_per_step_draws() -> None:
    """Drawing INDEX_CHUNK steps at once gives each INR the stream one draw per step gave."""
    config = preset("tiny").with_overrides(steps=fit.INDEX_CHUNK + 5, points=300)
    sizes = [1000, 70_001]
    chunked = list(fit._step_indices(sizes, [torch.Generator().manual_seed(s) for s in (3, 4)], config,
                                     torch.device("cpu")))
    generators = [torch.Generator().manual_seed(s) for s in (3, 4)]
    one_by_one = [torch.stack([torch.randint(n, (300,), generator=g) for n, g in zip(sizes, generators)])
                  for _ in range(config.steps)]
    assert len(chunked) == config.steps and all(torch.equal(a, b) for a, b in zip(chunked, one_by_one))


def _saved_bytes(config, batch: int) -> int:
    """Bytes of the distinct storages autograd keeps for one fitting step's backward."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    params = siren_init(config.spec, 0).repeat(batch, 1).requires_grad_()
    queries, labels = torch.rand(batch, 5_000, 3), torch.rand(batch, 5_000)
    index = torch.randint(5_000, (batch, config.points))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), fit.precision_mode(config.precision,
                                                                                          torch.device("cpu")):
        fit.step_loss_function("sdf", config)(params, queries, labels, index)
    return sum(storages.values())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_memory_estimate_covers_what_autograd_keeps(precision: str) -> None:
    """Per INR: the estimate's activations at least what autograd saves, and at most 3x (measured
    1.9x for float32, 2.9x for bf16, whose backward still runs in float32)."""
    config = preset("tiny").with_overrides(precision=precision)
    saved_per_inr = (_saved_bytes(config, 4) - _saved_bytes(config, 2)) / 2
    activations = fit.fit_memory_per_inr(config, 0) - 16 * config.spec.n_params
    assert saved_per_inr <= activations <= 3 * saved_per_inr, (saved_per_inr, activations)


def test_bf16_fits_shapes_as_well_as_float32(synth_shapes: Path, tmp_path: Path) -> None:
    """The same 6 shapes fitted in float32 and under bf16 autocast (tiny, 150 steps): the
    reconstructions' mean Chamfer within a quarter of each other (measured, 2-core VM: see the
    printout), and bf16 recorded in the artifact's settings."""
    from nrtool.artifacts.inrs import load_inrs

    chamfer = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.h5"
        run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "150", "--precision", precision,
                "--quiet")
        report = json.loads(run_cli("reconstruct", out, "--out", tmp_path / precision, "--resolution", "64",
                                    "--metrics", "--json", "--quiet").stdout)
        chamfer[precision] = float(np.mean([r["chamfer"] for r in report["results"]]))
    print("mean Chamfer, fp32 vs bf16:", chamfer)
    assert chamfer["bf16"] < 1.25 * chamfer["fp32"] and chamfer["fp32"] < 0.05
    assert load_inrs(tmp_path / "bf16.h5")[0].fit_config["precision"] == "bf16"
    assert "precision" not in load_inrs(tmp_path / "fp32.h5")[0].fit_config  # the default: old files still resume


def test_batch_auto_and_bad_batches(synth_shapes: Path, tmp_path: Path) -> None:
    """On the CPU ``--batch auto`` keeps the preset's batch (and says so); a batch that is not a
    number, or auto with Ray (whose workers' memory this process cannot see), is one line."""
    from nrtool.artifacts.inrs import load_inrs

    out = tmp_path / "auto.h5"
    report = json.loads(run_cli("fit-inr", synth_shapes, "--out", out, "--steps", "2", "--batch", "auto",
                                "--json", "--quiet").stdout)
    assert any("--batch auto on the CPU: batches of 6" in n for n in report["notes"]), report["notes"]
    assert load_inrs(out)[0].fit_config["batch"] == 6
    bad = tmp_path / "bad.h5"
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", bad, "--batch", "many", check=False),
                         "--batch 'many'", bad)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", bad, "--batch", "auto", "--backend", "ray",
                                 check=False), "--batch auto", bad)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", bad, "--precision", "fp8", check=False),
                         "precision", bad)
