"""Batched Chamfer with lengths (PyTorch3D layout) equals the per-pair metric."""

from __future__ import annotations

import numpy as np
import torch


def test_batched_chamfer_with_lengths_equals_each_pair() -> None:
    from nrtool.geometry.metrics import chamfer_distance, chamfer_distances, pad_clouds

    rng = np.random.default_rng(0)
    clouds_a = [rng.normal(size=(n, 3)) for n in (50, 120, 7)] + [None]
    clouds_b = [rng.normal(size=(n, 3)) + 0.1 for n in (80, 30, 200, 10)]
    a, a_lengths = pad_clouds(clouds_a)
    b, b_lengths = pad_clouds(clouds_b)
    assert a.shape == (4, 120, 3) and a_lengths.tolist() == [50, 120, 7, 0]
    batched = chamfer_distances(a, b, a_lengths, b_lengths, empty=1.0)
    for row in range(3):
        expected = chamfer_distance(clouds_a[row].astype(np.float32), clouds_b[row].astype(np.float32))
        assert abs(float(batched[row]) - expected) < 1e-6
    assert float(batched[3]) == 1.0  # an empty cloud gets the given value
    cloud = torch.rand(2, 64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    shifted = chamfer_distances(cloud, cloud + torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64))
    # Each point's shifted copy is 0.1 away, so no nearest neighbour is farther.
    assert ((shifted > 0) & (shifted <= 0.1 + 1e-9)).all()
