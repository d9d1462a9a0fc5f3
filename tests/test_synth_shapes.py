"""Tests for nrtool.synth.shapes: layout, determinism, watertight outward-oriented meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nrtool.errors import NrtoolError
from nrtool.io import Shape, discover_inputs, load_shape
from nrtool.synth.shapes import FAMILIES, class_names, make_mesh, make_shape_dataset


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6)


def test_class_names() -> None:
    assert class_names(3) == list(FAMILIES[:3])
    names = class_names(25)
    assert len(set(names)) == 25
    assert names[10] == f"{FAMILIES[0]}_long" and names[20] == f"{FAMILIES[0]}_flat"
    with pytest.raises(NrtoolError):
        class_names(0)


@pytest.mark.parametrize("class_index", range(12))
def test_every_family_is_watertight_and_outward(class_index: int) -> None:
    for item in range(2):
        vertices, faces = make_mesh(class_index, seed=3, item=item)
        shape = Shape("m", "mesh", "m.ply", vertices=vertices, faces=faces)
        assert shape.is_watertight and shape.is_winding_consistent
        assert 1000 <= len(faces) <= 4000
        assert signed_volume(vertices, faces) > 0  # outward normals
        # Distinct positions: the loader merges identical vertices, which would break the mesh.
        assert len(np.unique(vertices.astype(np.float32), axis=0)) == len(vertices)
        assert np.linalg.norm(vertices, axis=1).max() == pytest.approx(0.9)


def test_dataset_layout_counts_and_watertight_files(tmp_path: Path) -> None:
    paths = make_shape_dataset(tmp_path, classes=3, per_class=4, seed=0)
    assert len(paths) == 12 and all(p.is_file() for p in paths)
    names = class_names(3)
    for name in names:
        assert sorted(p.name for p in (tmp_path / name / "train").iterdir()) == [
            f"{name}_0000.ply",
            f"{name}_0001.ply",
            f"{name}_0002.ply",
        ]
        assert [p.name for p in (tmp_path / name / "test").iterdir()] == [f"{name}_0003.ply"]
    assert not list(tmp_path.rglob("*.tmp"))

    sources = discover_inputs([tmp_path])
    assert [(s.class_name, s.split) for s in sources].count((names[0], "train")) == 3
    assert {s.class_name for s in sources} == set(names)
    for path in paths:
        shape = load_shape(path)
        assert shape.is_watertight and shape.is_winding_consistent
        assert signed_volume(shape.vertices, shape.faces) > 0


def test_dataset_is_deterministic(tmp_path: Path) -> None:
    first = make_shape_dataset(tmp_path / "a", classes=2, per_class=3, seed=7)
    second = make_shape_dataset(tmp_path / "b", classes=2, per_class=3, seed=7)
    other = make_shape_dataset(tmp_path / "c", classes=2, per_class=3, seed=8)
    for a, b, c in zip(first, second, other):
        assert a.relative_to(tmp_path / "a") == b.relative_to(tmp_path / "b")
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() != c.read_bytes()


def test_items_do_not_depend_on_per_class(tmp_path: Path) -> None:
    small = make_shape_dataset(tmp_path / "s", classes=1, per_class=2, seed=1, test_fraction=0)
    large = make_shape_dataset(tmp_path / "l", classes=1, per_class=3, seed=1, test_fraction=0)
    for a, b in zip(small, large):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_split_sizes_and_bad_arguments(tmp_path: Path) -> None:
    paths = make_shape_dataset(tmp_path, classes=1, per_class=2, seed=0, test_fraction=0.1)
    assert [p.parent.name for p in paths] == ["train", "test"]  # at least one of each
    with pytest.raises(NrtoolError):
        make_shape_dataset(tmp_path, classes=1, per_class=0, seed=0)
    with pytest.raises(NrtoolError):
        make_shape_dataset(tmp_path, classes=1, per_class=2, seed=0, test_fraction=1.5)
