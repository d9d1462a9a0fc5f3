"""Tests for nrtool.io.shapes: loading every format, binvox, watertightness, discovery, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from nrtool.errors import InputFileError, NrtoolError
from nrtool.io import (
    SUPPORTED_EXTENSIONS,
    Shape,
    discover_inputs,
    load_binvox,
    load_shape,
    save_binvox,
    save_mesh,
    save_points_ply,
)

PSB_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "psb"


def octahedron() -> tuple[np.ndarray, np.ndarray]:
    """A closed, outward-oriented octahedron: (6, 3) vertices, (8, 3) faces."""
    vertices = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float
    )
    faces = np.array(
        [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    )
    return vertices, faces


def uv_sphere(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A closed sphere mesh with poles, built here so the test does not depend on synth code."""
    rings, around = n, 2 * n
    polar = np.pi * np.arange(1, rings + 1) / (rings + 1)
    azimuth = 2 * np.pi * np.arange(around) / around
    ring = np.stack(
        [
            np.outer(np.sin(polar), np.cos(azimuth)),
            np.outer(np.sin(polar), np.sin(azimuth)),
            np.outer(-np.cos(polar), np.ones(around)),
        ],
        axis=-1,
    ).reshape(-1, 3)
    vertices = np.vstack([[0, 0, -1], ring, [0, 0, 1]])
    j, jn = np.arange(around), (np.arange(around) + 1) % around
    faces = [np.stack([np.zeros(around, int), 1 + jn, 1 + j], 1)]
    for r in range(rings - 1):
        a, b = 1 + r * around + j, 1 + r * around + jn
        c, d = 1 + (r + 1) * around + jn, 1 + (r + 1) * around + j
        faces += [np.stack([a, b, c], 1), np.stack([a, c, d], 1)]
    top, last = len(vertices) - 1, 1 + (rings - 1) * around
    faces.append(np.stack([np.full(around, top), last + j, last + jn], 1))
    return vertices, np.concatenate(faces)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6)


# ------------------------------------------------------------------------------------------
# Meshes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".ply", ".obj", ".off", ".stl"])
def test_mesh_formats_round_trip_watertight(tmp_path: Path, ext: str) -> None:
    vertices, faces = uv_sphere()
    path = tmp_path / f"ball{ext}"
    save_mesh(path, vertices, faces)
    shape = load_shape(path)
    assert shape.kind == "mesh" and shape.name == "ball" and shape.path == str(path)
    assert shape.vertices.dtype == np.float64 and shape.faces.dtype == np.int64
    # STL stores three corners per triangle: the loader must merge them back to V vertices.
    assert shape.vertices.shape == vertices.shape
    assert shape.faces.shape == faces.shape
    assert shape.is_watertight and shape.is_winding_consistent
    assert signed_volume(shape.vertices, shape.faces) == pytest.approx(
        signed_volume(vertices, faces), rel=1e-4
    )


def test_handwritten_obj_with_quads_and_off(tmp_path: Path) -> None:
    cube = "\n".join(
        ["v 0 0 0", "v 1 0 0", "v 1 1 0", "v 0 1 0", "v 0 0 1", "v 1 0 1", "v 1 1 1", "v 0 1 1"]
        + ["f 1 4 3 2", "f 5 6 7 8", "f 1 2 6 5", "f 2 3 7 6", "f 3 4 8 7", "f 4 1 5 8"]
    )
    (tmp_path / "cube.obj").write_text(cube + "\n")
    shape = load_shape(tmp_path / "cube.obj")
    assert shape.faces.shape == (12, 3) and shape.is_watertight
    assert signed_volume(shape.vertices, shape.faces) == pytest.approx(1.0)

    # ModelNet's OFF files sometimes glue the counts to the keyword ("OFF6 8 0").
    vertices, faces = octahedron()
    lines = ["OFF6 8 0"] + [" ".join(map(str, v)) for v in vertices]
    lines += ["3 " + " ".join(map(str, f)) for f in faces]
    (tmp_path / "octa.off").write_text("\n".join(lines) + "\n")
    shape = load_shape(tmp_path / "octa.off")
    assert shape.is_watertight and shape.faces.shape == (8, 3)


def test_glb_scene_is_flattened_with_node_transforms(tmp_path: Path) -> None:
    import trimesh

    vertices, faces = octahedron()
    first = trimesh.Trimesh(vertices, faces, process=False)
    second = trimesh.Trimesh(vertices * 0.5, faces, process=False)
    scene = trimesh.Scene()
    scene.add_geometry(first, node_name="a")
    shift = np.eye(4)
    shift[:3, 3] = [5.0, 0.0, 0.0]
    scene.add_geometry(second, node_name="b", transform=shift)
    path = tmp_path / "pair.glb"
    path.write_bytes(scene.export(file_type="glb"))

    shape = load_shape(path)
    assert shape.kind == "mesh"
    assert shape.vertices.shape == (12, 3) and shape.faces.shape == (16, 3)
    assert shape.vertices[:, 0].max() == pytest.approx(5.5)  # transform applied
    assert shape.is_watertight


def test_watertight_detection() -> None:
    vertices, faces = uv_sphere()
    sphere = Shape("s", "mesh", "s.ply", vertices=vertices, faces=faces)
    assert sphere.is_watertight and sphere.is_winding_consistent
    holed = Shape("h", "mesh", "h.ply", vertices=vertices, faces=faces[1:])
    assert not holed.is_watertight
    flipped_faces = faces.copy()
    flipped_faces[0] = flipped_faces[0, ::-1]
    flipped = Shape("f", "mesh", "f.ply", vertices=vertices, faces=flipped_faces)
    assert flipped.is_watertight and not flipped.is_winding_consistent
    points = Shape("p", "points", "p.ply", vertices=vertices)
    assert not points.is_watertight
    assert "vertices=(" in repr(sphere) and "array" not in repr(sphere)


# ------------------------------------------------------------------------------------------
# Point clouds
# ------------------------------------------------------------------------------------------


def test_ply_without_faces_is_point_cloud(tmp_path: Path) -> None:
    points = np.random.default_rng(0).normal(size=(50, 3))
    save_points_ply(tmp_path / "cloud.ply", points)
    shape = load_shape(tmp_path / "cloud.ply")
    assert shape.kind == "points" and shape.faces is None
    np.testing.assert_allclose(shape.points(), points, rtol=1e-6, atol=1e-6)


def test_xyz_and_pts_text(tmp_path: Path) -> None:
    (tmp_path / "a.xyz").write_text("# comment\n0 0 0 0.5 1\n1 2 3 0 0\n\n4.5 5 6e-1 9 9\n")
    shape = load_shape(tmp_path / "a.xyz")
    assert shape.kind == "points"
    np.testing.assert_allclose(shape.points(), [[0, 0, 0], [1, 2, 3], [4.5, 5, 0.6]])
    # A leading point count, as some .pts writers emit, is skipped.
    (tmp_path / "b.pts").write_text("2\n1 1 1\n2 2 2\n")
    np.testing.assert_allclose(load_shape(tmp_path / "b.pts").points(), [[1, 1, 1], [2, 2, 2]])


def test_npy_and_npz_point_clouds(tmp_path: Path) -> None:
    points = np.random.default_rng(1).uniform(-1, 1, size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "p.npy", points)
    np.savez(tmp_path / "keyed.npz", points=points, normals=points)
    np.savez(tmp_path / "single.npz", whatever=points)
    for name in ("p.npy", "keyed.npz", "single.npz"):
        shape = load_shape(tmp_path / name)
        assert shape.kind == "points"
        assert shape.vertices.dtype == np.float64
        np.testing.assert_allclose(shape.points(), points)


# ------------------------------------------------------------------------------------------
# Voxels
# ------------------------------------------------------------------------------------------


def test_npy_voxels_map_to_unit_cube(tmp_path: Path) -> None:
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[0, 0, 0] = grid[3, 2, 1] = True
    np.save(tmp_path / "v.npy", grid)
    np.savez(tmp_path / "v01.npz", occupancy=grid.astype(np.uint8))
    for name in ("v.npy", "v01.npz"):
        shape = load_shape(tmp_path / name)
        assert shape.kind == "voxels" and shape.occupancy.dtype == bool
        np.testing.assert_array_equal(shape.occupancy, grid)
        # voxel i centre at -1 + (i + 0.5) * 2 / D with D = 4
        np.testing.assert_allclose(shape.points(), [[-0.75, -0.75, -0.75], [0.75, 0.25, -0.25]])


@pytest.mark.parametrize("dims", [(8, 8, 8), (4, 6, 5), (16, 16, 16)])
def test_binvox_round_trip(tmp_path: Path, dims: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(2)
    grid = rng.random(dims) < 0.3
    grid[: dims[0] // 2] = True  # long runs: more than 255 equal voxels in a row
    path = tmp_path / "g.binvox"
    save_binvox(path, grid, translate=(0.5, -1.0, 2.0), scale=3.0)
    shape = load_binvox(path)
    assert shape.kind == "voxels" and shape.name == "g"
    np.testing.assert_array_equal(shape.occupancy, grid)
    same = load_shape(path)
    np.testing.assert_array_equal(same.occupancy, grid)
    np.testing.assert_allclose(same.voxel_to_world, shape.voxel_to_world)


def test_binvox_reads_xzy_order_and_world_coordinates(tmp_path: Path) -> None:
    # A 2x2x2 grid written by hand: runs over the voxels in x-z-y order (y fastest), so
    # flat index = x * 4 + z * 2 + y. Occupy flat index 4 only -> voxel (x=1, y=0, z=0).
    header = b"#binvox 1\ndim 2 2 2\ntranslate 1 2 3\nscale 4\ndata\n"
    (tmp_path / "x.binvox").write_bytes(header + bytes([0, 4, 1, 1, 0, 3]))
    # Flat index 2 -> (x=0, y=0, z=1).
    (tmp_path / "z.binvox").write_bytes(header + bytes([0, 2, 1, 1, 0, 5]))
    x_shape, z_shape = load_shape(tmp_path / "x.binvox"), load_shape(tmp_path / "z.binvox")
    assert np.argwhere(x_shape.occupancy).tolist() == [[1, 0, 0]]
    assert np.argwhere(z_shape.occupancy).tolist() == [[0, 0, 1]]
    # world = translate + (index + 0.5) / dim * scale
    np.testing.assert_allclose(x_shape.points(), [[1 + 1.5 / 2 * 4, 2 + 1.0, 3 + 1.0]])
    np.testing.assert_allclose(z_shape.points(), [[2.0, 3.0, 3 + 1.5 / 2 * 4]])


def test_save_binvox_defaults_match_npy_frame(tmp_path: Path) -> None:
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[3, 2, 1] = True
    save_binvox(tmp_path / "d.binvox", grid)
    np.testing.assert_allclose(load_shape(tmp_path / "d.binvox").points(), [[0.75, 0.25, -0.25]])


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def _write_bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "corrupt.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 10\n"
        b"property float x\nproperty float y\nproperty float z\nend_header\n\x00\x01\x02",
        "garbage.ply": b"\x13\x88 not a ply at all" * 4,
        "empty.off": b"",
        "nan.xyz": b"0 0 0\n1 nan 2\n",
        "inf.off": b"OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n",
        "empty_cloud.ply": b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\n"
        b"property float y\nproperty float z\nend_header\n",
        "only_comments.xyz": b"# nothing here\n",
        "bad_index.off": b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
        "bad_index.ply": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
        b"property float y\nproperty float z\nelement face 1\n"
        b"property list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n",
        "no_faces.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\n",
        "short_line.xyz": b"0 0 0\n1 2\n",
        "words.pts": b"0 0 0\na b c\n",
        "shape.weird": b"0 0 0\n",
        "noext": b"0 0 0\n",
        "bad.binvox": b"#binvox 1\ndim 2 2 2\ndata\n\x01\x07",  # covers 7 of 8 voxels
        "nobinvox.binvox": b"hello\n",
        "bad.npy": b"\x93NUMPY garbage",
        "bad.npz": b"PK\x03\x04 not really a zip",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    np.save(tmp_path / "four_cols.npy", np.zeros((5, 4)))
    np.save(tmp_path / "empty_points.npy", np.zeros((0, 3)))
    np.save(tmp_path / "not_binary.npy", np.full((3, 3, 3), 2, dtype=np.int32))
    np.save(tmp_path / "float_grid.npy", np.ones((3, 3, 3), dtype=np.float32))
    np.save(tmp_path / "empty_grid.npy", np.zeros((3, 3, 3), dtype=bool))
    np.savez(tmp_path / "two_arrays.npz", a=np.zeros((2, 3)), b=np.zeros((2, 3)))
    for name in (
        "four_cols.npy",
        "empty_points.npy",
        "not_binary.npy",
        "float_grid.npy",
        "empty_grid.npy",
        "two_arrays.npz",
    ):
        paths[name] = tmp_path / name
    paths["missing.ply"] = tmp_path / "missing.ply"
    paths["a_folder.ply"] = tmp_path / "a_folder.ply"
    paths["a_folder.ply"].mkdir()
    return paths


def test_bad_files_raise_input_file_error_naming_the_path(tmp_path: Path) -> None:
    for name, path in _write_bad_files(tmp_path).items():
        with pytest.raises(InputFileError) as info:
            load_shape(path)
        assert str(path) in str(info.value), name
        assert info.value.path == str(path)


def test_specific_error_messages(tmp_path: Path) -> None:
    paths = _write_bad_files(tmp_path)
    expectations = {
        "empty.off": "empty",
        "nan.xyz": "NaN",
        "inf.off": "NaN or infinite",
        "empty_cloud.ply": "no geometry",
        "empty_points.npy": "0 points",
        "shape.weird": "unsupported",
        "missing.ply": "no such file",
        "bad_index.ply": "vertex that does not exist",
        "no_faces.obj": "no faces",
        "four_cols.npy": "neither",
        "not_binary.npy": "0/1",
        "bad.binvox": "7 voxels",
    }
    for name, fragment in expectations.items():
        with pytest.raises(InputFileError, match=fragment):
            load_shape(paths[name])


def test_save_mesh_rejects_unknown_extension(tmp_path: Path) -> None:
    vertices, faces = octahedron()
    with pytest.raises(NrtoolError, match="cannot write"):
        save_mesh(tmp_path / "x.xyz", vertices, faces)
    assert not list(tmp_path.iterdir())


def test_atomic_write_bytes_replaces_whole_files_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from nrtool.artifacts.core import atomic_write_bytes

    target = tmp_path / "new" / "code.npy"
    atomic_write_bytes(target, b"first")  # the missing folder is made, as the shape writers always did
    atomic_write_bytes(str(target), b"second")
    assert target.read_bytes() == b"second" and [p.name for p in target.parent.iterdir()] == ["code.npy"]
    ordinary = tmp_path / "ordinary"
    ordinary.write_bytes(b"")
    assert target.stat().st_mode & 0o777 == ordinary.stat().st_mode & 0o777  # not mkstemp's private 0o600

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"third")
    assert target.read_bytes() == b"second" and [p.name for p in target.parent.iterdir()] == ["code.npy"]


def test_atomic_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    vertices, faces = octahedron()
    save_mesh(tmp_path / "sub" / "m.ply", vertices, faces)
    save_mesh(tmp_path / "sub" / "m.ply", vertices * 2, faces)  # replaces the first
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.ply"]
    assert load_shape(tmp_path / "sub" / "m.ply").vertices.max() == pytest.approx(2.0)


# ------------------------------------------------------------------------------------------
# Discovery
# ------------------------------------------------------------------------------------------


def _touch_mesh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    vertices, faces = octahedron()
    save_mesh(path, vertices, faces)
    return path


def test_discover_modelnet_layout(tmp_path: Path) -> None:
    root = tmp_path / "modelnet"
    _touch_mesh(root / "table" / "train" / "a.off")
    _touch_mesh(root / "table" / "test" / "a.off")
    _touch_mesh(root / "chair" / "train" / "chair_0002.off")
    _touch_mesh(root / "chair" / "train" / "chair_0001.off")
    _touch_mesh(root / "chair" / "val" / "chair_0003.ply")
    _touch_mesh(root / "chair" / "train" / ".hidden.off")
    _touch_mesh(root / ".cache" / "x" / "y.off")
    (root / "README.txt").write_text("not a shape\n")
    (root / "chair" / "notes.md").write_text("ignored\n")

    sources = discover_inputs([root])
    got = [(s.name, s.class_name, s.split) for s in sources]
    assert got == [  # sorted by path components; colliding stems get class and split
        ("chair_0001", "chair", "train"),
        ("chair_0002", "chair", "train"),
        ("chair_0003", "chair", "val"),
        ("table_test_a", "table", "test"),
        ("table_train_a", "table", "train"),
    ]
    assert sources == discover_inputs([str(root)])  # deterministic, str or Path
    assert all(Path(s.path).is_file() for s in sources)

    # Class only: ROOT/CLASS/FILE, seen from the class folders' parent.
    sources = discover_inputs([root / "chair"])
    assert {(s.class_name, s.split) for s in sources} == {(None, "train"), (None, "val")}
    flat = tmp_path / "flat"
    _touch_mesh(flat / "mugs" / "m1.stl")
    assert [(s.name, s.class_name, s.split) for s in discover_inputs([flat])] == [
        ("m1", "mugs", None)
    ]


def test_discover_order_names_and_duplicates(tmp_path: Path) -> None:
    a = _touch_mesh(tmp_path / "one" / "shape.ply")
    b = _touch_mesh(tmp_path / "two" / "shape.ply")
    c = _touch_mesh(tmp_path / "two" / "other.obj")
    sources = discover_inputs([b, a, tmp_path / "two", c])
    assert [s.path for s in sources] == [str(b), str(a), str(c)]  # input order, deduplicated
    names = [s.name for s in sources]
    assert len(set(names)) == 3 and names[2] == "other"
    assert all(s.class_name is None and s.split is None for s in sources)


def test_discover_list_file(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _touch_mesh(root / "chair" / "train" / "c1.off")
    _touch_mesh(root / "chair" / "test" / "c2.off")
    elsewhere = _touch_mesh(tmp_path / "elsewhere" / "lamp" / "test" / "l1.ply")
    listing = root / "shapes.lst"
    listing.write_text(
        "# shapes to fit\n\nchair/train/c1.off\n  chair/test/c2.off  \n" f"{elsewhere}\n"
    )
    sources = discover_inputs([listing])
    assert [(s.name, s.class_name, s.split) for s in sources] == [
        ("c1", "chair", "train"),
        ("c2", "chair", "test"),
        ("l1", "lamp", "test"),
    ]
    assert sources[0].path == str(root / "chair" / "train" / "c1.off")

    # A listed folder is scanned like a folder input, labels seen from the list's folder.
    folder_list = root / "folders.txt"
    folder_list.write_text("chair\n")
    assert [(s.class_name, s.split) for s in discover_inputs([folder_list])] == [
        ("chair", "test"),
        ("chair", "train"),
    ]

    broken = root / "broken.txt"
    broken.write_text("chair/train/c1.off\nchair/train/nope.off\n")
    with pytest.raises(InputFileError, match="nope.off") as info:
        discover_inputs([broken])
    assert "broken.txt:2" in str(info.value)


def test_discover_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(InputFileError, match=re.escape(str(missing))):
        discover_inputs([missing])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("no shapes\n")
    with pytest.raises(InputFileError, match=re.escape(str(empty))):
        discover_inputs([empty])
    odd = tmp_path / "shape.abc"
    odd.write_text("x")
    with pytest.raises(InputFileError, match="unsupported") as info:
        discover_inputs([odd])
    assert str(odd) in str(info.value)
    empty_list = tmp_path / "empty.txt"
    empty_list.write_text("# nothing\n")
    with pytest.raises(InputFileError, match=re.escape(str(empty_list))):
        discover_inputs([empty_list])
    with pytest.raises(NrtoolError):
        discover_inputs([])


def test_supported_extensions_constant() -> None:
    for ext in (".off", ".obj", ".ply", ".stl", ".glb", ".xyz", ".pts", ".npy", ".npz"):
        assert ext in SUPPORTED_EXTENSIONS
    assert ".binvox" in SUPPORTED_EXTENSIONS


# ------------------------------------------------------------------------------------------
# Real data
# ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not PSB_ROOT.is_dir(), reason=f"real PSB meshes not found at {PSB_ROOT}")
def test_real_psb_mesh_is_watertight() -> None:
    path = sorted(PSB_ROOT.glob("*/train/*.ply"))[0]
    shape = load_shape(path)
    assert shape.kind == "mesh"
    assert 0 < len(shape.faces) <= 4000
    assert shape.is_watertight and shape.is_winding_consistent


@pytest.mark.skipif(not PSB_ROOT.is_dir(), reason=f"real PSB meshes not found at {PSB_ROOT}")
def test_real_psb_layout_is_discovered() -> None:
    sources = discover_inputs([PSB_ROOT])
    assert len(sources) == 380
    assert len({s.class_name for s in sources}) == 19
    assert {s.split for s in sources} == {"train", "test"}
    assert len({s.name for s in sources}) == len(sources)
