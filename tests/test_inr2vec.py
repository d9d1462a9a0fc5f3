"""inr2vec encoder/decoder, `nrtool train inr2vec` and `nrtool encode`."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import assert_clean_failure, run_nrtool


@pytest.fixture(scope="module")
def tiny_inrs(synth_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inr2vec") / "inrs.h5"
    run_nrtool("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "60", "--quiet")
    return out


def test_weight_matrix_stacks_hidden_layers_as_rows() -> None:
    from nrtool.inr.siren import SirenSpec, siren_init, unflatten
    from nrtool.inr2vec.models import weight_matrix

    spec = SirenSpec(hidden=8, layers=3)
    params = torch.stack([siren_init(spec, 0), siren_init(spec, 1)])
    rows = weight_matrix(params, spec)
    assert rows.shape == (2, 3 * 9, 8)
    weight, bias = unflatten(params, spec)[1]  # the first hidden-to-hidden layer
    torch.testing.assert_close(rows[1, :8], weight[1].T)
    torch.testing.assert_close(rows[1, 8], bias[1])


def test_encoder_ignores_row_order() -> None:
    from nrtool.inr2vec.models import Inr2vecEncoder

    torch.manual_seed(0)
    encoder = Inr2vecEncoder(16, (32, 64)).eval()
    rows = torch.randn(3, 40, 16)
    shuffled = rows[:, torch.randperm(40)]
    torch.testing.assert_close(encoder(rows), encoder(shuffled))
    assert not torch.allclose(encoder(rows)[0], encoder(rows)[1])


def test_train_then_encode_through_the_cli(tiny_inrs: Path, tmp_path: Path) -> None:
    model = tmp_path / "inr2vec.pt"
    report = json.loads(run_nrtool("train", "inr2vec", tiny_inrs, "--out", model, "--epochs", "3", "--batch", "4",
                                   "--queries", "1000", "--lr", "1e-3", "--json", "--quiet").stdout)
    assert len(report["history"]) == 3 and 1 <= report["best_epoch"] <= 3
    assert 0 < report["best_val_chamfer"] <= 1.0
    assert (tmp_path / "inr2vec.png").stat().st_size > 0
    checkpoint = torch.load(model, weights_only=True)  # plain tensors and types only
    assert checkpoint["inr"]["field"] == "sdf"
    emb = tmp_path / "emb.h5"
    run_nrtool("encode", tiny_inrs, "--model", model, "--out", emb, "--quiet")
    with h5py.File(emb, "r") as handle, h5py.File(tiny_inrs, "r") as source:
        assert handle.attrs["nrtool_kind"] == "embeddings"
        assert handle["embeddings"].shape == (6, 256)
        assert np.all(np.isfinite(handle["embeddings"][()]))
        assert list(handle["names"][()]) == list(source["names"][()])
        assert list(handle["labels"][()]) == list(source["labels"][()])
        inputs = json.loads(handle.attrs["inputs"])
        assert [Path(i["path"]).name for i in inputs] == ["inrs.h5", "inr2vec.pt"]


def test_encode_refuses_other_inrs_and_bad_models(tiny_inrs: Path, synth_shapes: Path, tmp_path: Path) -> None:
    model = tmp_path / "inr2vec.pt"
    run_nrtool("train", "inr2vec", tiny_inrs, "--out", model, "--epochs", "1", "--batch", "4", "--queries", "500", "--quiet")
    wide = tmp_path / "wide.h5"
    run_nrtool("fit-inr", synth_shapes, "--out", wide, "--hidden", "32", "--steps", "5", "--quiet")
    out = tmp_path / "emb.h5"
    cases = [
        (("encode", wide, "--model", model, "--out", out), str(wide)),
        (("encode", tiny_inrs, "--model", tmp_path / "missing.pt", "--out", out), "missing.pt"),
        (("encode", model, "--model", model, "--out", out), str(model)),  # a checkpoint is no inrs artifact
    ]
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    cases.append((("encode", tiny_inrs, "--model", empty, "--out", out), str(empty)))
    for args, mentions in cases:
        assert_clean_failure(run_nrtool(*args, check=False), mentions, out)


def test_decode_and_interpolate_write_shapes(tiny_inrs: Path, tmp_path: Path) -> None:
    model = tmp_path / "inr2vec.pt"
    run_nrtool("train", "inr2vec", tiny_inrs, "--out", model, "--epochs", "2", "--batch", "4", "--queries", "1000",
               "--lr", "1e-3", "--quiet")
    emb = tmp_path / "emb.h5"
    run_nrtool("encode", tiny_inrs, "--model", model, "--out", emb, "--quiet")
    with h5py.File(emb, "r") as handle:
        names = [n.decode() for n in handle["names"][()]]
    # A two-epoch decoder has not learnt the shapes yet, but its field must be usable: a surface
    # somewhere in the cube, written as a mesh file per item.
    run_nrtool("decode", emb, "--model", model, "--out", tmp_path / "decoded", "--name", names[0], "--name", names[1],
               "--resolution", "32", "--quiet")
    written = sorted(p.stem for p in (tmp_path / "decoded").glob("*.obj"))
    assert set(written) <= {names[0], names[1]}
    run_nrtool("interpolate", emb, "--from", names[0], "--to", names[-1], "--steps", "3", "--model", model,
               "--out", tmp_path / "interp", "--resolution", "32", "--quiet")
    assert (tmp_path / "interp" / "strip.png").stat().st_size > 0
    missing = run_nrtool("interpolate", emb, "--from", "nope", "--to", names[0], "--model", model,
                         "--out", tmp_path / "i2", check=False)
    assert_clean_failure(missing, "nope", tmp_path / "i2" / "strip.png")
    other = run_nrtool("decode", tiny_inrs, "--model", model, "--out", tmp_path / "d2", check=False)
    assert_clean_failure(other, str(tiny_inrs))
