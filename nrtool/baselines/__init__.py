"""Baselines that inr2vec is compared with: models on points, not on INR weights.

:mod:`~nrtool.baselines.pointnet`: PointNet on point clouds reconstructed from each INR
(thesis Sec. 5.5.3).
"""
