"""DGCNN's neighbour graph: PyTorch3D's knn_points and the plain-torch fallback agree."""

from __future__ import annotations

import torch


def test_knn_matches_the_torch_path_and_excludes_each_point_itself() -> None:
    from nrtool.garments.encoder import knn_indices, knn_indices_torch

    torch.manual_seed(0)
    points = torch.rand(2, 600, 3)
    points[0, 10] = points[0, 20]  # a duplicate: it may come before the point itself
    fast, plain = knn_indices(points, 8), knn_indices_torch(points, 8)
    assert fast.shape == plain.shape == (2, 600, 8)
    own = torch.arange(600).view(1, -1, 1)
    assert not (fast == own).any() and not (plain == own).any()

    def distances(idx: torch.Tensor) -> torch.Tensor:
        neighbours = torch.gather(points.unsqueeze(1).expand(-1, 600, -1, -1), 2, idx.unsqueeze(-1).expand(-1, -1, -1, 3))
        return (neighbours - points.unsqueeze(2)).norm(dim=-1).sort(-1).values

    # The same neighbour distances (indices may differ only between equally distant points).
    torch.testing.assert_close(distances(fast), distances(plain))
    assert fast[0, 10].tolist().count(20) == 1 and fast[0, 20].tolist().count(10) == 1
