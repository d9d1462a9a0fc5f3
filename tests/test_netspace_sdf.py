"""NetSpace of SDF INRs (Sec. 4.4.3, Eq. 4.2) (issue 17): its own module, so that pytest-xdist can run it beside the
single-architecture chain of test_netspace.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import assert_clean_failure, requires_psb, run_cli

#: The SDF experiment's NetSpace in the test (the README's run: 10 x 100 steps).
SDF_TRAIN_ARGS = ("--epochs", "3", "--steps", "50", "--seed", "0")
SDF_SURFACES = 16  # 20 of 20 on the 2-core VM (0 of 20 before the decoder predicted the difference from the mean)


@requires_psb
def test_a_space_of_sdf_inrs_trains_and_decodes_into_an_inrs_artifact(psb_subset: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    """The SDF experiment's pipeline (Sec. 4.4.3, Eq. 4.2) on 60 real PSB meshes' tiny SDF INRs (36
    train, 4 val, 20 test): a zoo of an `inrs` artifact, NetSpace trained on the fields' MSE (the
    training error falls), decoded INRs written as an `inrs` artifact that `nrtool reconstruct`
    reads with the source items. That the decoded INRs do not reconstruct their shapes yet is
    measured and reported in the README (issue 17 stays open for it)."""
    from nrtool.artifacts.inrs import load_inrs

    zoo = tmp_path / "zoo.h5"
    summary = json.loads(run_cli("netspace", "zoo", "--from-inrs", psb_subset["inrs.h5"], "--val-nets", "4", "--out",
                                 zoo, "--json").stdout)
    assert (summary["train"], summary["val"], summary["test"]) == (36, 4, 20)
    report = json.loads(run_cli("netspace", "train", zoo, "--out", tmp_path / "ns.pt", *SDF_TRAIN_ARGS,
                                "--json").stdout)
    first, last = report["history"][0], report["history"][-1]
    print("train mse", first["train_mse"], "->", last["train_mse"], "val mse", report["best"]["val_mse"])
    assert last["train_mse"] < first["train_mse"]
    run_cli("netspace", "encode", zoo, "--model", tmp_path / "ns.pt", "--split", "test", "--out", tmp_path / "t.h5")
    run_cli("netspace", "decode", tmp_path / "t.h5", "--model", tmp_path / "ns.pt", "--out", tmp_path / "decoded")
    header, decoded = load_inrs(tmp_path / "decoded" / "inrs.h5")
    source_header, sources = load_inrs(psb_subset["inrs.h5"])
    by_name = {item.name: item for item in sources}
    assert header.spec == source_header.spec and len(decoded) == 20
    for item in decoded:  # each decoded INR carries its source's mesh and normalisation
        assert item.source == by_name[item.name].source and np.allclose(item.center, by_name[item.name].center)
        assert np.isfinite(item.params).all() and not np.array_equal(item.params, by_name[item.name].params)
    result = json.loads(run_cli("reconstruct", tmp_path / "decoded" / "inrs.h5", "--out", tmp_path / "recon",
                                "--metrics", "--json").stdout)
    chamfer = [r["chamfer"] for r in result["results"] if r["chamfer"] is not None]
    print(f"{len(chamfer)} of 20 decoded test INRs have a surface; Chamfer mean {np.mean(chamfer):.4f}")
    assert result["items"] == 20 and len(chamfer) >= SDF_SURFACES
    assert_clean_failure(run_cli("netspace", "interpolate", zoo, "--model", tmp_path / "ns.pt", "--out",
                                 tmp_path / "line.png", check=False), "NetSpace of INRs", tmp_path / "line.png")
