"""`nrtool synth garments`: open garment meshes around the body, outside it, attributes = geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from nrtool.garments.files import load_garment
from nrtool.geometry.topology import boundary_edges
from nrtool.synth.garments import BOTTOM_TYPES, TOP_TYPES, body_frame, clip_mesh

RES = 0.02


@pytest.fixture(scope="module")
def garments(synth_body: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    body = synth_body  # the session's (read-only)
    out = tmp_path_factory.mktemp("garments") / "garments"
    run_cli("synth", "garments", "--body", body, "--out", out, "--tops", "4", "--bottoms", "2", "--resolution", str(RES), "--seed", "3")
    index = json.loads((out / "garments.json").read_text())
    return body, out, index


@pytest.fixture(scope="module")
def body_distance(garments):
    import open3d as o3d

    frame = body_frame(garments[0])
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(frame.vertices.astype(np.float32)), o3d.core.Tensor(frame.faces.astype(np.uint32)))

    def signed(points: np.ndarray) -> np.ndarray:
        return scene.compute_signed_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()

    return frame, signed


def _items(index: dict, out: Path):
    for entry in index["garments"]:
        yield entry, load_garment(out / entry["file"])


def test_layout_and_types(garments) -> None:
    _, out, index = garments
    entries = index["garments"]
    assert [e["type"] for e in entries] == list(TOP_TYPES) + list(BOTTOM_TYPES)
    assert sorted(p.name for p in (out / "tops").iterdir()) == [f"top_{i:04d}.obj" for i in range(4)]
    assert sorted(p.name for p in (out / "bottoms").iterdir()) == [f"bottom_{i:04d}.obj" for i in range(2)]
    import matplotlib.image

    preview = matplotlib.image.imread(out / "preview.png")
    blue = (preview[..., 2] > preview[..., 0] + 0.2).mean()  # garments are drawn blue on a grey body
    assert preview.shape[1] > 600 and blue > 0.01


def test_every_garment_is_open_and_loads_through_the_shape_reader(garments) -> None:
    from nrtool.io import load_shape

    _, out, index = garments
    for entry, garment in _items(index, out):
        shape = load_shape(out / entry["file"])  # the reader real (CLOTH3D) garments go through
        assert shape.kind == "mesh" and not shape.is_watertight
        edges = boundary_edges(shape.faces)
        assert len(edges) >= 20, entry["name"]  # boundary loops: hem, neckline, sleeves / waist, legs
        assert len(garment.vertices) > 300 and garment.attributes == entry["attributes"]
        assert garment.category == entry["category"] and garment.type == entry["type"]


def test_garments_lie_outside_the_body_by_a_margin(garments, body_distance) -> None:
    _, out, index = garments
    _, signed = body_distance
    for entry, garment in _items(index, out):
        loose = entry["attributes"]["looseness"]
        a, b, c = (garment.vertices[garment.faces[:, k]] for k in range(3))
        points = np.vstack([garment.vertices, (a + b + c) / 3, (a + b) / 2])  # faces too, not just vertices
        d = signed(points)
        assert d.min() > max(0.5 * loose, 0.006), (entry["name"], d.min(), loose)
        # The garment hugs the body at its looseness: the median offset is the looseness.
        assert np.median(signed(garment.vertices)) == pytest.approx(loose, abs=0.004)


def test_attributes_match_geometry(garments, body_distance) -> None:
    _, out, index = garments
    frame, _ = body_distance
    sleeve_x = {}
    for entry, garment in _items(index, out):
        attrs, v = entry["attributes"], garment.vertices
        if entry["category"] == "top":
            assert v[:, 1].min() == pytest.approx(attrs["hem_y"], abs=1e-6)
            expected_hem = frame.waist_y - attrs["hem_length"] * (frame.waist_y - frame.crotch_y - 0.02)
            assert attrs["hem_y"] == pytest.approx(expected_hem)
            if attrs["sleeve_length"] > 0:
                # The sleeve ends where sleeve_length says: shoulder + fraction of shoulder -> wrist.
                assert np.abs(v[:, 0]).max() == pytest.approx(attrs["sleeve_x"], abs=1e-6)
                expected = frame.shoulder_x + attrs["sleeve_length"] * (frame.wrist_x - 0.02 - frame.shoulder_x)
                assert attrs["sleeve_x"] == pytest.approx(expected)
                sleeve_x[entry["type"]] = attrs["sleeve_x"]
            else:
                assert np.abs(v[:, 0]).max() < frame.shoulder_x + 0.06  # no sleeves past the shoulder
            # Front opening: no face crosses the front centre line of the torso.
            a, b, c = (v[garment.faces[:, k]] for k in range(3))
            xs = np.stack([a[:, 0], b[:, 0], c[:, 0]], axis=1)
            cent = (a + b + c) / 3
            front = (cent[:, 2] > frame.z_centre) & (cent[:, 1] > attrs["hem_y"] + 0.03) & (cent[:, 1] < attrs["neck_y"] - 0.15)
            crossing = front & (xs.min(axis=1) < 0) & (xs.max(axis=1) > 0)
            assert (crossing.sum() == 0) == attrs["front_open"], entry["name"]
            # Neckline: at the front centre the garment stops neckline_depth below the back.
            centre = np.abs(v[:, 0]) < 0.02
            front_top = v[centre & (v[:, 2] > frame.z_centre + 0.05), 1].max()
            back_top = v[centre & (v[:, 2] < frame.z_centre - 0.05), 1].max()
            if not attrs["front_open"]:
                assert back_top - front_top == pytest.approx(attrs["neckline_depth"], abs=0.02)
        else:
            assert v[:, 1].min() == pytest.approx(attrs["leg_y"], abs=1e-6)
            assert v[:, 1].max() == pytest.approx(attrs["waist_y"], abs=1e-6)
            expected_leg = frame.crotch_y - attrs["leg_length"] * (frame.crotch_y - frame.ankle_y - 0.04)
            assert attrs["leg_y"] == pytest.approx(expected_leg)
            assert (attrs["leg_length"] > 0.7) == (entry["type"] == "trousers")
    assert sleeve_x["longsleeve"] > sleeve_x["tshirt"]


def test_normalisation_puts_tops_up_and_bottoms_down(garments) -> None:
    _, out, index = garments
    scales = set()
    for entry, garment in _items(index, out):
        norm = entry["normalise"]
        p = (garment.vertices - np.asarray(norm["centre"])) / norm["scale"]
        scales.add(norm["scale"])
        assert np.abs(p).max() <= 1.0
        if entry["category"] == "top":
            assert p[:, 1].min() >= 0.0
        else:
            assert p[:, 1].max() <= 0.0
    assert len(scales) == 1  # one scale for all garments: sizes stay comparable


def test_clip_mesh_cuts_exactly_and_keeps_orientation() -> None:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3)
    v, f = clip_mesh(sphere.vertices, sphere.faces, sphere.vertices[:, 2] - 0.3)
    assert v[:, 2].min() >= 0.3 - 1e-12
    rim = np.unique(boundary_edges(f))
    np.testing.assert_allclose(v[rim, 2], 0.3, atol=1e-12)
    # Spherical cap area 2 pi r h with r = 1, h = 0.7 (up to the polygonal approximation).
    area = trimesh.Trimesh(v, f, process=False).area
    assert area == pytest.approx(2 * np.pi * 0.7, rel=0.02)
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(np.einsum("ij,ij->i", normals, v[f].mean(axis=1)) > 0)  # still outward


def test_bad_inputs_fail_cleanly(tmp_path: Path, garments) -> None:
    body = garments[0]
    out = tmp_path / "g"
    result = run_cli("synth", "garments", "--body", tmp_path / "missing.npz", "--out", out, check=False)
    assert_clean_failure(result, "missing.npz", out)
    result = run_cli("synth", "garments", "--body", body, "--out", out, "--tops", "0", "--bottoms", "0", check=False)
    assert_clean_failure(result, "--tops", out)
    result = run_cli("synth", "garments", "--body", body, "--out", garments[1], "--tops", "1", "--bottoms", "0", check=False)
    assert_clean_failure(result, "not empty")
