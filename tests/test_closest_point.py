"""Exact closest points on a triangle mesh in PyTorch (the GPU supervision path of `train garment`).

Checked on the CPU against hand-computed regions and against Open3D's ray-casting scene, which
the CPU training path uses: both must give the same unsigned distances.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nrtool.geometry.closest_point import TriangleMesh

TRIANGLE = (np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([[0, 1, 2]]))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ((0.2, 0.2, 0.5), (0.2, 0.2, 0.0)),  # face interior
        ((-1.0, -1.0, 0.3), (0.0, 0.0, 0.0)),  # vertex a
        ((2.0, -0.5, 0.0), (1.0, 0.0, 0.0)),  # vertex b
        ((-0.3, 2.0, 1.0), (0.0, 1.0, 0.0)),  # vertex c
        ((0.5, -1.0, 0.2), (0.5, 0.0, 0.0)),  # edge ab
        ((-1.0, 0.4, 0.0), (0.0, 0.4, 0.0)),  # edge ac
        ((1.0, 1.0, -0.5), (0.5, 0.5, 0.0)),  # edge bc
    ],
)
def test_each_voronoi_region(query: tuple[float, ...], expected: tuple[float, ...]) -> None:
    closest, index = TriangleMesh(*TRIANGLE).closest_points(torch.tensor([query]))
    assert index.tolist() == [0]
    np.testing.assert_allclose(closest[0].numpy(), expected, atol=1e-6)


def test_distances_match_open3d_on_an_open_mesh() -> None:
    import open3d as o3d

    torus = o3d.geometry.TriangleMesh.create_torus(0.5, 0.2, 40, 20)
    vertices = np.asarray(torus.vertices, dtype=np.float32)
    faces = np.asarray(torus.triangles)
    faces = faces[vertices[faces].mean(axis=1)[:, 0] > -0.1]  # cut it open: boundaries and both sides
    rng = np.random.default_rng(0)
    queries = np.concatenate([rng.uniform(-1, 1, (3_000, 3)),
                              vertices[faces].mean(axis=1) + rng.normal(0, 0.01, (len(faces), 3))]).astype(np.float32)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(faces.astype(np.uint32)))
    reference = scene.compute_closest_points(o3d.core.Tensor(queries))["points"].numpy()
    # a small chunk exercises the chunked path as well
    closest, index = TriangleMesh(vertices, faces).closest_points(torch.from_numpy(queries), pairs_per_chunk=100_000)
    ours = np.linalg.norm(queries - closest.numpy(), axis=1)
    theirs = np.linalg.norm(queries - reference, axis=1)
    assert np.abs(ours - theirs).max() < 1e-5
    assert index.min() >= 0 and index.max() < len(faces)


def test_rejects_a_mesh_without_faces() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        TriangleMesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=int))
