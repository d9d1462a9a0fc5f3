"""Reconstruction from fields, checked against analytic sphere fields (radius 0.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nrtool.errors import NrtoolError
from nrtool.geometry.metrics import chamfer_distance, sample_surface, voxel_iou
from nrtool.geometry.reconstruct import (
    grid_points,
    occupancy_to_voxels,
    sdf_to_mesh,
    udf_to_points,
)

RADIUS = 0.5


def sphere_sdf(p: torch.Tensor) -> torch.Tensor:
    return p.norm(dim=1) - RADIUS


def sphere_udf(p: torch.Tensor) -> torch.Tensor:
    return (p.norm(dim=1) - RADIUS).abs()


def sphere_occupancy(p: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(-(p.norm(dim=1) - RADIUS) * 50.0)


def dense_sphere(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return RADIUS * v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------------------- grid_points


def test_grid_points_conventions() -> None:
    centres = grid_points(4, 1.0).numpy()
    assert centres.shape == (64, 3)
    np.testing.assert_allclose(np.unique(centres[:, 0]), [-0.75, -0.25, 0.25, 0.75])
    # C order with x along axis 0: row (i*R + j)*R + k is (x_i, y_j, z_k).
    np.testing.assert_allclose(centres[(1 * 4 + 2) * 4 + 3], [-0.25, 0.25, 0.75])

    corners = grid_points(3, 2.0, cell_centres=False).numpy()
    np.testing.assert_allclose(np.unique(corners[:, 2]), [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(corners[-1], [2.0, 2.0, 2.0])


# ---------------------------------------------------------------------------- udf → points


def test_udf_to_points_lands_on_sphere_with_requested_count() -> None:
    gen = torch.Generator().manual_seed(0)
    pts = udf_to_points(sphere_udf, 5000, generator=gen, device="cpu")
    assert pts.shape == (5000, 3)
    assert pts.dtype == np.float32
    err = np.abs(np.linalg.norm(pts, axis=1) - RADIUS)
    assert err.mean() < 0.01
    # Coverage, not a clump: the cloud reaches every octant of the sphere.
    octant = (pts > 0) @ np.array([1, 2, 4])
    assert np.bincount(octant, minlength=8).min() > 300


def test_udf_to_points_is_reproducible_and_works_with_small_rounds() -> None:
    a = udf_to_points(
        sphere_udf, 700, queries_per_round=4000, chunk=1000,
        generator=torch.Generator().manual_seed(3),
    )
    b = udf_to_points(
        sphere_udf, 700, queries_per_round=4000, chunk=1000,
        generator=torch.Generator().manual_seed(3),
    )
    assert a.shape == (700, 3)
    np.testing.assert_array_equal(a, b)


def test_udf_to_points_returns_what_it_found_when_the_field_never_gets_small() -> None:
    far = lambda p: p.norm(dim=1) + 10.0  # noqa: E731 - never below threshold in the box
    pts = udf_to_points(far, 100, queries_per_round=2000, max_rounds=2)
    assert pts.shape == (0, 3)


def test_udf_to_points_accepts_column_output_and_rejects_bad_counts() -> None:
    pts = udf_to_points(lambda p: sphere_udf(p)[:, None], 50, queries_per_round=5000)
    assert pts.shape == (50, 3)
    with pytest.raises(NrtoolError):
        udf_to_points(sphere_udf, -1)


def test_udf_to_points_differentiates_an_mlp_under_no_grad() -> None:
    """Gradients flow inside although the caller disabled them; parameters stay untouched."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
        torch.nn.Linear(32, 1),
    )

    def udf(p: torch.Tensor) -> torch.Tensor:
        return mlp(p).abs().squeeze(1)

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # A threshold above the field's range keeps every query: only the projection acts.
        # A random network is far from a true distance (|grad| << 1), so each unit-normal step
        # of size udf only partly closes the gap: take more steps than for a fitted INR.
        pts = udf_to_points(udf, 2000, threshold=10.0, projection_steps=20, generator=gen)
        assert not torch.is_grad_enabled()  # the outer context is restored
        before = udf(torch.rand(2000, 3, generator=gen) * 2 - 1).mean().item()
        after = udf(torch.from_numpy(pts)).mean().item()
    assert pts.shape == (2000, 3)
    # Without gradients the points could not move; with them they reach the zero set.
    assert after < 0.1 * before
    assert all(p.grad is None for p in mlp.parameters())


# ---------------------------------------------------------------------------- sdf → mesh


def test_sdf_to_mesh_sphere_is_accurate_and_outward() -> None:
    vertices, faces = sdf_to_mesh(sphere_sdf, 64, device="cpu")
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert vertices.shape[1] == 3 and faces.shape[1] == 3 and len(faces) > 1000
    assert np.abs(vertices).max() <= 1.0

    samples = sample_surface(vertices, faces, 50_000, seed=0)
    assert chamfer_distance(samples, dense_sphere(50_000)) < 0.01

    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    centroids = tri.mean(axis=1)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    assert np.mean(np.sum(normals * centroids, axis=1)) > 0.9


def test_sdf_to_mesh_maps_vertices_with_bound_and_level() -> None:
    # Level 0.25 of the sphere sdf is the sphere of radius 0.75; bound 2 scales the grid.
    vertices, _ = sdf_to_mesh(sphere_sdf, 48, level=0.25, bound=2.0, chunk=5000)
    radii = np.linalg.norm(vertices, axis=1)
    assert abs(radii.mean() - 0.75) < 0.01


def test_sdf_to_mesh_without_crossing_is_empty() -> None:
    vertices, faces = sdf_to_mesh(lambda p: p.norm(dim=1) + 1.0, 16)
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    assert faces.dtype == np.int64


def test_sdf_to_mesh_reports_non_finite_fields() -> None:
    with pytest.raises(NrtoolError, match="NaN"):
        sdf_to_mesh(lambda p: torch.full((p.shape[0],), float("nan")), 8)


# ---------------------------------------------------------------------------- occupancy


def test_occupancy_to_voxels_matches_analytic_ball() -> None:
    r = 32
    voxels = occupancy_to_voxels(sphere_occupancy, r, chunk=7000)
    assert voxels.shape == (r, r, r) and voxels.dtype == bool
    centres = (np.arange(r) + 0.5) * 2.0 / r - 1.0
    x, y, z = np.meshgrid(centres, centres, centres, indexing="ij")
    ball = np.sqrt(x**2 + y**2 + z**2) < RADIUS
    assert voxel_iou(voxels, ball) > 0.95


def test_occupancy_to_voxels_axis_order() -> None:
    # Occupied only where x > 0.5: must show up along axis 0, not axis 2.
    voxels = occupancy_to_voxels(lambda p: (p[:, 0] > 0.5).float(), 8)
    assert voxels[7].all() and not voxels[:6].any()
    assert voxels[:, :, 0].sum() == 2 * 8
