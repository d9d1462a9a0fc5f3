"""The garment network: DGCNN encoder, CBN UDF decoder, `nrtool train garment`, `nrtool garment ...`.

One tiny top model, shared by the session (conftest.garment_models), is trained on procedural
garments (coarse `nrtool synth garments`) for a fixed number of steps (seeded: the same model
on any machine, ~45 s on a quiet CPU); held-out garments come from another seed. The
bounds below were measured on that model (see the test docstrings) and carry slack for the
randomness of a short training run on busy cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_clean_failure, run_cli, run_nrtool

RES = 48  # decode grid (cells) used by most tests
HELD_RES = 64  # for the reconstruction test (at 48 cells a learned UDF's flat minimum is about a voxel wide)


@pytest.fixture(scope="module")
def data(garment_models: dict[str, Path]) -> dict[str, Path]:
    """The session's procedural garments and tiny top/bottom models (conftest.garment_models; read-only)."""
    return garment_models


def _surface(vertices: np.ndarray, faces: np.ndarray, n: int = 5_000) -> np.ndarray:
    from nrtool.geometry.metrics import sample_surface

    return sample_surface(vertices, faces, n, 0)


# --- modules ---------------------------------------------------------------------------------


def test_encoder_is_invariant_to_point_order_and_gives_32_d_codes() -> None:
    from nrtool.garments.encoder import DgcnnEncoder

    torch.manual_seed(0)
    encoder = DgcnnEncoder().eval()  # the thesis sizes: 64, 64, 128, 256, k = 16
    points = torch.rand(2, 300, 3) * 2 - 1
    with torch.no_grad():
        codes = encoder(points)
        shuffled = encoder(points[:, torch.randperm(300)])
    assert codes.shape == (2, 32)
    assert torch.allclose(codes, shuffled, atol=1e-5)
    assert not torch.allclose(codes[0], codes[1])


def test_decoder_sizes_and_udf_range() -> None:
    from nrtool.garments.decoder import UdfDecoder

    decoder = UdfDecoder().eval()  # 63 positional values -> 512, 5 residual blocks, CBN
    assert decoder.input.in_features == 63 and decoder.input.out_features == 512 and len(decoder.blocks) == 5
    with torch.no_grad():
        udf = decoder.udf(torch.randn(2, 32), torch.rand(2, 100, 3))
    assert udf.shape == (2, 100) and float(udf.min()) >= 0 and float(udf.max()) <= 0.1


# --- training and the commands -------------------------------------------------------------


def test_training_writes_checkpoint_with_category_and_curves(data) -> None:
    from nrtool.garments.model import load_model

    model, checkpoint = load_model(data["top"])
    assert checkpoint["category"] == "top" and checkpoint["config"]["code_dim"] == 32
    assert len(checkpoint["train"]["names"]) == 14 and len(checkpoint["validation"]) == 2
    assert np.isfinite(checkpoint["best_val_chamfer"])
    assert data["top"].with_suffix(".png").stat().st_size > 10_000
    assert load_model(data["bottom"])[1]["category"] == "bottom"


def test_encode_decode_held_out_garments(data, tmp_path: Path) -> None:
    """Held-out tops (another seed): mean Chamfer (normalised frame, the cube spans 2) below 0.05
    (measured 0.0115-0.0142 after 45 steps of tiny training; 0.0094-0.0147 with the code at
    commit 3dd0305); every mesh is open and single-layered (the double-layer probe of
    test_meshudf, which finds 99 % of plain marching cubes' surface doubled, finds at most 10 %
    here: folds and armpits; measured 2.0-5.5 %, then 0.9-8.5 %: top_0001 at 8.5 %)."""
    from nrtool.artifacts.garment_codes import load_garment_codes
    from nrtool.garments.data import load_garment_mesh
    from nrtool.geometry.metrics import chamfer_distance
    from nrtool.io import load_shape

    codes_path = tmp_path / "codes.h5"
    tops = sorted((data["held"] / "tops").glob("*.obj"))
    # The installed entry point, end to end.
    run_nrtool("garment", "encode", *tops, "--model", data["top"], "--out", codes_path, "--device", "cpu", "--quiet")
    codes = load_garment_codes(codes_path)
    assert codes.codes.shape == (4, 32) and codes.category == "top"
    assert codes.attributes[0]["sleeve_length"] >= 0
    out = tmp_path / "decoded"
    run_cli("garment", "decode", codes_path, "--model", data["top"], "--out", out, "--resolution", str(HELD_RES),
               "--sheet", "--device", "cpu", "--quiet")
    assert (out / "sheet.png").is_file() and (out / "codes.h5").is_file()
    scores = []
    for path in tops:
        source = load_garment_mesh(path)
        decoded = load_shape(out / f"{path.stem}.obj")  # written in the body frame, like the input
        v = (decoded.vertices - source.centre) / source.scale
        scores.append(chamfer_distance(_surface(v, decoded.faces), _surface(source.vertices, source.faces)))
        from nrtool.geometry.meshudf import boundary_edge_count, double_layer_fraction

        assert boundary_edge_count(decoded.faces) > 0, f"{path.stem}: decoded mesh is closed"
        doubled = double_layer_fraction(v, decoded.faces, 2.0 / HELD_RES)
        assert doubled < 0.1, f"{path.stem}: {doubled:.0%} of the surface has a second layer"
        print(f"{path.stem}: Chamfer {scores[-1]:.4f}, doubled {doubled:.3f}")
    assert np.mean(scores) < 0.05, scores


def test_decoding_is_deterministic_and_differentiable(data) -> None:
    from nrtool.garments.meshing import decode_mesh, vertices_with_grad
    from nrtool.garments.model import load_model, training_codes

    model, checkpoint = load_model(data["top"])
    code = training_codes(checkpoint)[0]
    v1, f1 = decode_mesh(model, code, RES)
    v2, f2 = decode_mesh(model, code, RES)
    assert np.array_equal(v1, v2) and np.array_equal(f1, f2)
    # MeshUDF's backward through the learned UDF: the directional derivative of the vertices'
    # normal offsets, sum_v n_v . dv_v/dz . e, against central finite differences of where the
    # level set u(v + (eps + s) n; z) = u(v + eps n; z0) moves (one Newton step per vertex).
    # (Geometry against re-meshing is checked on analytic fields in test_meshudf.py.)
    from nrtool.geometry.meshudf import vertex_normals

    z = torch.tensor(code, requires_grad=True)
    v = vertices_with_grad(model, z, v1, f1, epsilon=0.02)
    n = torch.as_tensor(vertex_normals(v1, f1), dtype=torch.float32)
    e = torch.randn(32, generator=torch.Generator().manual_seed(0))
    e /= e.norm()
    # The finite differences run in float64 on a copy of the model: in float32 the rounding of u
    # (~1e-8) over 2h, divided by |along| down to 0.1 and summed over thousands of vertices, is
    # ~2e-3 -- the size of the mismatch CI once saw (-0.0408 vs -0.0385).
    import copy

    model64 = copy.deepcopy(model).double()
    code64 = torch.as_tensor(code, dtype=torch.float64)
    e64 = e.double()
    p = (torch.as_tensor(v1, dtype=torch.float64) + 0.02 * n.double()).requires_grad_(True)
    u0 = model64.decoder.udf(code64[None], p[None])[0]
    (du_dx,) = torch.autograd.grad(u0.sum(), p)
    along = (du_dx * n.double()).sum(1)
    # Only vertices where the UDF clearly changes along the normal: the shift is -du/dz / along,
    # so a vertex with along ~ 0 dominates (and flips the sign of) any sum over all of them, in
    # the finite differences and the implicit path alike (seen in CI: -0.188 vs -0.174 over all
    # vertices, 0.3282 vs 0.3270 over those with |along| > 0.1).
    ok = along.abs() > 0.1
    assert int(ok.sum()) > 0.5 * len(v1)
    (grad,) = torch.autograd.grad((v * n).sum(1)[ok].sum(), z)
    assert torch.isfinite(grad).all() and float(grad.norm()) > 0
    # A small step: the decoder's ReLUs make u piecewise smooth in z, and a step that crosses
    # kinks biases the central difference (h = 1e-3: -0.04093, 1e-4: -0.04131, 1e-5: -0.040808 =
    # the float64 implicit derivative, on the CI fixture's model).
    h = 1e-5
    with torch.no_grad():
        shifts = [-(model64.decoder.udf((code64 + sign * h * e64)[None], p[None])[0] - u0) / along
                  for sign in (1, -1)]
    fd = float(((shifts[0] - shifts[1]) / (2 * h))[ok].sum())
    print(f"implicit gradient . e = {float(grad @ e):.5f}, finite differences {fd:.5f}")
    assert abs(float(grad @ e) - fd) < 0.02 * abs(fd) + 1e-3, (float(grad @ e), fd)


def test_sleeve_length_edit_moves_the_sleeves(data, tmp_path: Path) -> None:
    """Codes of the training tops + their sleeve_length labels -> a direction; +3 sigma gives
    longer sleeves (wider extent along x, 99th percentile of |x|, metres) than -3 sigma for the
    t-shirts and shirts: on average by more than 1.5 cm, and for none clearly (> 5 mm) shorter.
    Measured on the test model: 31-39 cm (-3 sigma turns the sleeves into short stubs, +3 sigma
    into long sleeves; see the run's sheet.png)."""
    from nrtool.io import load_shape

    codes_path = tmp_path / "train_codes.h5"
    run_cli("garment", "encode", *sorted((data["train"] / "tops").glob("*.obj")), "--model", data["top"],
               "--out", codes_path, "--device", "cpu", "--quiet")
    index = json.loads((data["train"] / "garments.json").read_text())
    names = [g["name"] for g in index["garments"] if g["type"] in ("tshirt", "shirt")][:3]
    extents = {}
    for sign in (1, -1):
        out = tmp_path / f"edit{sign}"
        result = run_cli("garment", "edit", codes_path, "--attribute", "sleeve_length", "--labels",
                            data["train"] / "garments.json", "--step", str(sign * 3.0), "--model", data["top"],
                            "--out", out, *sum((["--name", n] for n in names), []), "--resolution", str(RES),
                            "--device", "cpu", "--json", "--quiet", *(["--no-sheet"] if sign < 0 else []))
        summary = json.loads(result.stdout)
        assert summary["attribute"] == "sleeve_length" and summary["kept_dims"]
        extents[sign] = [np.percentile(np.abs(load_shape(next(out.glob(f"{n}_*.obj"))).vertices[:, 0]), 99) for n in names]
    assert (tmp_path / "edit1" / "sheet.png").is_file() and not (out / "sheet.png").exists()
    longer = np.array(extents[1]) - np.array(extents[-1])
    print(f"sleeve extent +3 sigma minus -3 sigma (m): {np.round(longer, 4).tolist()}")
    assert longer.mean() > 0.015 and longer.min() > -0.005, extents


def test_sample_and_interpolate(data, tmp_path: Path) -> None:
    from nrtool.artifacts.garment_codes import load_garment_codes

    out = tmp_path / "samples"
    run_cli("garment", "sample", "--model", data["top"], "-n", "2", "--out", out, "--resolution", "32",
               "--device", "cpu", "--quiet")
    assert sorted(p.name for p in out.glob("*.obj")) == ["sample_0000.obj", "sample_0001.obj"]
    assert (out / "sheet.png").is_file() and load_garment_codes(out / "codes.h5").codes.shape == (2, 32)
    codes_path = tmp_path / "codes.h5"
    run_cli("garment", "encode", *sorted((data["held"] / "tops").glob("*.obj"))[:2], "--model", data["top"],
               "--out", codes_path, "--device", "cpu", "--quiet")
    out = tmp_path / "interp"
    run_cli("garment", "interpolate", codes_path, "--from", "top_0000", "--to", "top_0001", "--steps", "3",
               "--model", data["top"], "--out", out, "--resolution", "32", "--device", "cpu", "--quiet")
    line = load_garment_codes(out / "codes.h5").codes
    assert np.allclose(line[1], (line[0] + line[2]) / 2, atol=1e-6)


def test_npy_code(data, tmp_path: Path) -> None:
    z, sheet = tmp_path / "z.npy", tmp_path / "encode.png"
    run_cli("garment", "encode", data["held"] / "tops" / "top_0000.obj", "--model", data["top"], "--npy", z,
               "--sheet", sheet, "--resolution", "32", "--device", "cpu", "--quiet")
    assert np.load(z).shape == (32,)
    assert sheet.stat().st_size > 5_000  # input vs decoded
    out = tmp_path / "one"
    run_cli("garment", "decode", z, "--model", data["top"], "--out", out, "--resolution", "32", "--device", "cpu", "--quiet")
    assert (out / "z.obj").is_file()


# --- bad input -------------------------------------------------------------------------------


def test_mesh_without_faces(data, tmp_path: Path) -> None:
    bad = tmp_path / "nofaces.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    out = tmp_path / "codes.h5"
    result = run_cli("garment", "encode", bad, "--model", data["top"], "--out", out, check=False)
    assert_clean_failure(result, str(bad), out)


def test_code_of_wrong_width(data, tmp_path: Path) -> None:
    bad = tmp_path / "z16.npy"
    np.save(bad, np.zeros(16, dtype=np.float32))
    out = tmp_path / "dec"
    result = run_cli("garment", "decode", bad, "--model", data["top"], "--out", out, check=False)
    assert_clean_failure(result, "width 16", out)


def test_top_model_on_bottom_codes(data, tmp_path: Path) -> None:
    codes = tmp_path / "bottom_codes.h5"
    run_cli("garment", "encode", data["held"] / "bottoms" / "bottom_0000.obj", "--model", data["bottom"], "--out",
               codes, "--device", "cpu", "--quiet")
    out = tmp_path / "dec"
    result = run_cli("garment", "decode", codes, "--model", data["top"], "--out", out, check=False)
    assert_clean_failure(result, "bottom codes", out)
    assert "top model" in result.stderr
    # and a bottom garment given to the top model's encoder
    result = run_cli("garment", "encode", data["held"] / "bottoms" / "bottom_0000.obj", "--model", data["top"],
                        "--out", tmp_path / "x.h5", check=False)
    assert_clean_failure(result, "bottom_0000.obj", tmp_path / "x.h5")


def test_not_a_checkpoint_and_not_codes(data, tmp_path: Path) -> None:
    fake = tmp_path / "model.pt"
    fake.write_text("hello")
    result = run_cli("garment", "sample", "--model", fake, "-n", "1", "--out", tmp_path / "s", check=False)
    assert_clean_failure(result, str(fake), tmp_path / "s")
    result = run_cli("garment", "decode", data["top"], "--model", data["top"], "--out", tmp_path / "d", check=False)
    assert_clean_failure(result, str(data["top"]), tmp_path / "d")
