"""Metrics on clouds and grids whose answers are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nrtool.errors import NrtoolError
from nrtool.geometry import metrics
from nrtool.geometry.metrics import (
    chamfer_distance,
    fscore,
    nearest_distances,
    resample_voxels,
    sample_surface,
    voxel_iou,
)


def plane_cloud(n: int, seed: int = 0) -> np.ndarray:
    """Random points on the plane x = 0: a copy shifted in x by d is at distance exactly d."""
    rng = np.random.default_rng(seed)
    return np.column_stack([np.zeros(n), rng.uniform(-1, 1, size=(n, 2))])


# ---------------------------------------------------------------------------- distances


def test_nearest_distances_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(300, 3)), rng.normal(size=(500, 3))
    expected = np.linalg.norm(q[:, None] - r[None], axis=2).min(axis=1)
    got = nearest_distances(q, r)
    assert got.shape == (300,) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # CPU tensors take the KD-tree path too.
    got_t = nearest_distances(torch.from_numpy(q), torch.from_numpy(r))
    np.testing.assert_allclose(got_t, expected)


def test_torch_path_agrees_with_kdtree() -> None:
    """The GPU path's code, run on CPU tensors (knn_points or cdist both work there)."""
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(200, 3)), rng.normal(size=(400, 3))
    got = metrics._nearest_distances_torch(torch.from_numpy(q), torch.from_numpy(r), chunk=64)
    np.testing.assert_allclose(got.double().numpy(), nearest_distances(q, r), atol=1e-5)


def test_chamfer_identical_and_shifted() -> None:
    a = plane_cloud(2000)
    assert chamfer_distance(a, a) == 0.0
    shifted = a + np.array([0.1, 0.0, 0.0])
    assert chamfer_distance(a, shifted) == pytest.approx(0.1, abs=1e-9)
    # Asymmetric case: the mean of both directions, not the sum or the max.
    far = np.array([[0, 0, 1.0], [0, 0, 3.0]])
    assert chamfer_distance(np.zeros((1, 3)), far) == pytest.approx(0.5 * (1.0 + 2.0))


def test_fscore_identical_shifted_and_partial() -> None:
    a = plane_cloud(2000)
    assert fscore(a, a) == 1.0
    assert fscore(a, a + np.array([0.05, 0.0, 0.0]), threshold=0.01) == 0.0
    # Half of the prediction matches: P = 0.5, R = 1 → F = 2/3.
    pred = np.concatenate([a, a + np.array([1.0, 0.0, 0.0])])
    assert fscore(pred, a) == pytest.approx(2.0 / 3.0)


def test_empty_clouds_raise_clearly() -> None:
    a = plane_cloud(10)
    with pytest.raises(NrtoolError, match="empty"):
        chamfer_distance(np.zeros((0, 3)), a)
    with pytest.raises(NrtoolError, match="reference"):
        fscore(a, np.zeros((0, 3)))
    with pytest.raises(NrtoolError, match=r"\(N, 3\)"):
        nearest_distances(np.zeros((5, 2)), a)


# ---------------------------------------------------------------------------- sampling


def test_sample_surface_unit_square_is_uniform() -> None:
    # Two triangles of very different shape tile [0,1]^2 at z = 0.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    pts = sample_surface(vertices, faces, 40_000, seed=0)
    assert pts.shape == (40_000, 3)
    assert np.all(pts[:, 2] == 0) and pts[:, :2].min() >= 0 and pts[:, :2].max() <= 1
    np.testing.assert_allclose(pts[:, :2].mean(axis=0), [0.5, 0.5], atol=0.01)
    # Uniform density: every cell of a 4x4 grid gets about 1/16 of the points.
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=4, range=[[0, 1], [0, 1]])
    np.testing.assert_allclose(counts / len(pts), 1 / 16, atol=0.006)
    # Same seed, same points.
    np.testing.assert_array_equal(pts, sample_surface(vertices, faces, 40_000, seed=0))


def test_sample_surface_weights_by_area() -> None:
    # A 1x1 and a 3x3 right triangle far apart: 1 : 9 area ratio.
    vertices = np.array(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [13, 0, 0], [10, 3, 0]], dtype=float
    )
    pts = sample_surface(vertices, np.array([[0, 1, 2], [3, 4, 5]]), 50_000, seed=1)
    assert np.mean(pts[:, 0] >= 10) == pytest.approx(0.9, abs=0.01)


def test_sample_surface_rejects_degenerate_meshes() -> None:
    with pytest.raises(NrtoolError, match="area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 10, seed=0)
    with pytest.raises(NrtoolError):
        sample_surface(np.zeros((3, 3)), np.zeros((0, 3), int), 10, seed=0)


# ---------------------------------------------------------------------------- voxels


def test_voxel_iou_known_values() -> None:
    a = np.zeros((4, 4, 4), bool)
    b = np.zeros((4, 4, 4), bool)
    a[:2] = True  # 32 voxels
    b[1:3] = True  # 32 voxels, 16 shared
    assert voxel_iou(a, b) == pytest.approx(16 / 48)
    assert voxel_iou(a, a) == 1.0
    assert voxel_iou(a, ~a) == 0.0
    assert voxel_iou(np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), bool)) == 1.0
    with pytest.raises(NrtoolError, match="shape"):
        voxel_iou(a, np.zeros((8, 8, 8), bool))


def test_resample_voxels_round_trip_and_geometry() -> None:
    rng = np.random.default_rng(0)
    grid = rng.random((16, 16, 16)) > 0.5
    up = resample_voxels(grid, 48)
    assert up.shape == (48, 48, 48) and up.dtype == bool
    np.testing.assert_array_equal(resample_voxels(up, 16), grid)
    assert up.mean() == pytest.approx(grid.mean())
    # A half-filled grid stays half filled along the same axis at another resolution.
    half = np.zeros((10, 10, 10), bool)
    half[5:] = True
    for r in (4, 7, 20):
        out = resample_voxels(half, r)
        assert voxel_iou(out, resample_voxels(resample_voxels(half, 20), r)) == 1.0
        assert out[-1].all() and not out[0].any()
