"""Garment category and frame checks (issue 11, item 14): shapes that say the other category are
refused, garments outside the model's training frame are reported, and `--align` moves them in.

The checks need only a trained top model's checkpoint: the session's (conftest.garment_models,
16 procedural tops and 4 bottoms). The decoding test checks that a garment moved into the frame
decodes nearer to itself than one left outside (measured on that model, every other training top
shifted by 0.2 m: Chamfer 0.063-0.087 m without --align, 0.020-0.035 m with; ratio 0.25-0.56).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

SHIFT = 0.2  # metres, the real T-shirt above the training frame


def _copy_without_metadata(source: Path, target: Path, shift: float = 0.0) -> Path:
    """``source`` written to ``target`` (no garments.json beside it), moved up by ``shift`` metres."""
    from nrtool.io import load_shape, save_mesh

    shape = load_shape(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_mesh(target, shape.vertices + np.array([0.0, shift, 0.0]), shape.faces)
    return target


@pytest.fixture(scope="module")
def data(garment_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    garments, top = garment_models["train"], garment_models["top"]  # shared: read-only
    plain = tmp_path_factory.mktemp("garment_checks") / "plain"  # the same meshes as a user's files: no garments.json
    bottom = _copy_without_metadata(garments / "bottoms" / "bottom_0000.obj", plain / "trousers.obj")  # type: trousers
    in_frame = _copy_without_metadata(garments / "tops" / "top_0001.obj", plain / "shirt.obj")
    shifted = _copy_without_metadata(garments / "tops" / "top_0001.obj", plain / "shirt_up.obj", SHIFT)
    return {"garments": garments, "top": top, "bottom": bottom, "in_frame": in_frame, "shifted": shifted}


# --- the shape rule ------------------------------------------------------------------------------


def _tube(radii: list[float], heights: list[float], segments: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """An open surface of revolution around the y axis (rings of ``radii`` at ``heights``): (V, 3), (F, 3)."""
    angle = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    vertices = np.concatenate([np.stack([r * np.cos(angle), np.full(segments, y), r * np.sin(angle)], 1)
                               for r, y in zip(radii, heights)])
    faces = []
    for ring in range(len(radii) - 1):
        for k in range(segments):
            a, b = ring * segments + k, ring * segments + (k + 1) % segments
            faces += [(a, b, a + segments), (b, b + segments, a + segments)]
    return vertices, np.array(faces)


def test_shape_rule_on_procedural_garments_and_others(data) -> None:
    """Every procedural top shows arm openings, the trousers leg openings (in any position and
    size); a skirt (one tube, two centred openings) and a closed mesh are unclear, never refused."""
    from nrtool.garments.checks import shape_category
    from nrtool.garments.data import load_garments

    for garment in load_garments([data["garments"]]):
        verdict = shape_category(garment.vertices, garment.faces)
        assert verdict.category == garment.category, (garment.name, garment.type, verdict)
        moved = shape_category(garment.vertices * 3.0 + np.array([1.0, -2.0, 0.5]), garment.faces)
        assert moved == verdict
    skirt = _tube([0.16, 0.2, 0.26], [-0.1, -0.3, -0.5])
    assert shape_category(*skirt).category == "unclear"
    import trimesh

    sphere = trimesh.creation.icosphere(2)
    assert shape_category(np.asarray(sphere.vertices), np.asarray(sphere.faces)).category == "unclear"


def test_checkpoint_records_the_training_frame(data) -> None:
    from nrtool.garments.checks import checkpoint_frame
    from nrtool.garments.model import load_model

    _, checkpoint = load_model(data["top"])
    frame = checkpoint_frame(checkpoint)
    assert frame is not None and frame.count == len(list((data["garments"] / "tops").glob("*.obj"))) == 16
    # tops' top line (collar/shoulders) in the upper half of the cube, nearly the same for all
    assert 0.3 < frame.anchor_mean[1] < 0.9 and frame.anchor_std[1] < 0.02


# --- category ------------------------------------------------------------------------------------


def test_top_model_refuses_a_bottom_without_metadata(data, tmp_path: Path) -> None:
    out = tmp_path / "codes.h5"
    result = run_cli("garment", "encode", data["bottom"], "--model", data["top"], "--out", out, "--device", "cpu",
                     check=False)
    assert_clean_failure(result, str(data["bottom"]), out)
    assert result.returncode == 2
    assert "looks like a bottom" in result.stderr and "top model" in result.stderr
    assert "--no-category-check" in result.stderr
    run_cli("garment", "encode", data["bottom"], "--model", data["top"], "--out", out, "--device", "cpu",
            "--no-category-check", "--quiet")
    assert out.is_file()


def test_train_top_refuses_a_folder_with_a_bottom_without_metadata(data, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    for name in ("top_0000", "top_0002", "top_0003"):
        _copy_without_metadata(data["garments"] / "tops" / f"{name}.obj", mixed / f"{name}.obj")
    shutil.copy(data["bottom"], mixed / "z_trousers.obj")
    out = tmp_path / "mixed.pt"
    result = run_cli("train", "garment", mixed, "--category", "top", "--out", out, "--device", "cpu", check=False)
    assert_clean_failure(result, "z_trousers.obj", out, out.with_suffix(".png"))
    line = result.stderr.strip()
    assert "looks like a bottom" in line and "1 of 4" in line and "--no-category-check" in line, line
    assert not Path(str(out) + ".partial").exists()


# --- frame ---------------------------------------------------------------------------------------


def _chamfer_of_decoded(codes: Path, model: Path, source: Path, out: Path) -> float:
    """Chamfer (metres) between ``source`` and its decoded mesh (written in the garment's own frame)."""
    from nrtool.geometry.metrics import chamfer_distance, sample_surface
    from nrtool.io import load_shape

    run_cli("garment", "decode", codes, "--model", model, "--out", out, "--resolution", "32", "--device", "cpu", "--quiet")
    decoded, truth = load_shape(next(out.glob("*.obj"))), load_shape(source)
    return float(chamfer_distance(sample_surface(decoded.vertices, decoded.faces, 4000, 0),
                                  sample_surface(truth.vertices, truth.faces, 4000, 0)))


def test_a_shifted_top_is_reported_and_align_undoes_the_shift(data, tmp_path: Path) -> None:
    """0.2 m above the frame: one note naming the file, the distance and --align; --align stores an
    offset of -0.2 m in y (+-3 cm: the top line of this top differs a little from the training mean),
    and decodes it (in its own frame) nearer to the input than without (measured 0.077 vs 0.019 m)."""
    from nrtool.artifacts.garment_codes import load_garment_codes

    quiet_codes = tmp_path / "in_frame.h5"
    result = run_cli("garment", "encode", data["in_frame"], "--model", data["top"], "--out", quiet_codes, "--device", "cpu")
    assert "frame" not in result.stderr, result.stderr
    assert load_garment_codes(quiet_codes).offsets is None

    plain = tmp_path / "plain.h5"
    result = run_cli("garment", "encode", data["shifted"], "--model", data["top"], "--out", plain, "--device", "cpu")
    notes = [line for line in result.stderr.splitlines() if "frame" in line]
    assert len(notes) == 1, result.stderr
    assert str(data["shifted"]) in notes[0] and "above the training garments' frame" in notes[0] and "--align" in notes[0]
    distance = float(notes[0].split(" sits ")[1].split(" m ")[0])
    assert abs(distance - SHIFT) < 0.03, notes[0]

    aligned = tmp_path / "aligned.h5"
    result = run_cli("garment", "encode", data["shifted"], "--model", data["top"], "--out", aligned, "--device", "cpu",
                     "--align")
    assert "moved" in result.stderr and str(data["shifted"]) in result.stderr
    codes = load_garment_codes(aligned)
    assert codes.offsets is not None
    np.testing.assert_allclose(codes.offsets[0], [0.0, -SHIFT, 0.0], atol=0.03)
    off = _chamfer_of_decoded(plain, data["top"], data["shifted"], tmp_path / "dec_plain")
    moved = _chamfer_of_decoded(aligned, data["top"], data["shifted"], tmp_path / "dec_aligned")
    print(f"Chamfer to the shifted input: without --align {off:.4f} m, with {moved:.4f} m")
    assert moved < 0.6 * off, (moved, off)
    assert load_garment_codes(tmp_path / "dec_aligned" / "codes.h5").offsets is not None  # carried along


def test_checkpoint_without_a_frame_still_loads(data, tmp_path: Path) -> None:
    """A checkpoint from before the frame record: encoding works with a note, --align says why not."""
    import torch

    checkpoint = torch.load(data["top"], weights_only=True)
    del checkpoint["frame"]
    old = tmp_path / "old.pt"
    torch.save(checkpoint, old)
    out = tmp_path / "codes.h5"
    result = run_cli("garment", "encode", data["shifted"], "--model", old, "--out", out, "--device", "cpu")
    assert out.is_file() and "not checked" in result.stderr
    refused = tmp_path / "refused.h5"
    result = run_cli("garment", "encode", data["shifted"], "--model", old, "--out", refused, "--device", "cpu", "--align",
                     check=False)
    assert_clean_failure(result, "--align", refused)
