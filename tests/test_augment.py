"""`nrtool augment`: per-axis scaling + jitter of training shapes, layout and labels kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import assert_clean_failure, run_cli

from nrtool.io import discover_inputs, load_shape


def test_copies_keep_class_and_split_and_change_proportions(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "aug"
    run_cli("augment", synth_shapes, "--out", out, "--copies", "2", "--scale", "0.8", "1.25", "--seed", "3")
    originals = discover_inputs([synth_shapes])
    train = [s for s in originals if s.split == "train"]
    copies = discover_inputs([out])
    assert len(copies) == 2 * len(train)
    assert {(c.class_name, c.split) for c in copies} == {(s.class_name, "train") for s in train}
    for source in train:
        original = load_shape(source.path)
        extent = np.ptp(original.points(), axis=0)
        stem = Path(source.path).stem
        for k in (1, 2):
            copy = load_shape(out / source.class_name / "train" / f"{stem}_aug{k}.ply")
            assert copy.is_watertight and len(copy.faces) == len(original.faces)
            ratio = np.ptp(copy.points(), axis=0) / extent
            assert np.all(ratio > 0.78) and np.all(ratio < 1.27), ratio
            assert np.ptp(ratio) > 1e-3  # per-axis, not uniform (uniform would vanish in normalisation)


def test_same_seed_same_copies_and_refusals(synth_shapes: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    run_cli("augment", synth_shapes, "--out", first, "--copies", "1")
    run_cli("augment", synth_shapes, "--out", second, "--copies", "1")
    for path in sorted(first.rglob("*.ply")):
        twin = second / path.relative_to(first)
        assert np.array_equal(load_shape(path).vertices, load_shape(twin).vertices)
    result = run_cli("augment", synth_shapes, "--out", first, check=False)
    assert_clean_failure(result, str(first))
    result = run_cli("augment", synth_shapes, "--out", tmp_path / "c", "--scale", "1.2", "0.8", check=False)
    assert_clean_failure(result, "--scale", tmp_path / "c")
