"""PointNet baseline settings and presets (torch-free: validated before anything heavy).

Presets. ``paper`` is the thesis/PointNet setting (per-point widths 64-64-64-128-1024, head
512-256, Adam lr 1e-3, batch 32, 200 epochs, marching cubes at 128^3, voxels at 64^3).
``tiny`` (32/32/64/128/256, head 128/64, 40 epochs, 512 points, 32^3 grids) keeps tests fast
on a CPU; ``small`` sits between.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrtool.config import Presets, option
from nrtool.heads.config import HeadSettings


@dataclass(frozen=True)
class PointNetConfig(HeadSettings):
    """Everything that determines a trained PointNet and the clouds it reads."""

    WHAT = "PointNet"

    widths: tuple[int, ...] = (64, 64, 64, 128, 1024)  # shared per-point MLP
    head: tuple[int, ...] = (512, 256)  # MLP after the max-pool
    dropout: float = 0.3
    points: int = option(2048, help="Points per shape fed to PointNet.")
    pool: int = 2  # training clouds hold pool * points points; each epoch draws `points` of them
    jitter: float = 0.01  # std of the Gaussian noise added in training (normalised units)
    resolution: int = option(128, help="Marching-cubes grid of the sdf reconstructions.")
    voxel_resolution: int = option(64, help="Voxel grid of the occ reconstructions.")
    epochs: int = option(200, help="Training epochs.")
    lr: float = option(1e-3, help="AdamW learning rate (cosine schedule).")
    batch: int = option(32, help="Batch size.")
    weight_decay: float = 1e-4

    def checks(self) -> dict[str, bool]:
        return {
            **super().checks(),
            "widths": len(self.widths) >= 1 and all(w >= 1 for w in self.widths),
            "head": all(h >= 1 for h in self.head),
            "dropout": 0 <= self.dropout < 1,
            "points": self.points >= 1,
            "pool": self.pool >= 1,
            "jitter": self.jitter >= 0,
            "resolution": self.resolution >= 8,
            "voxel_resolution": self.voxel_resolution >= 4,
        }


PRESETS: Presets[PointNetConfig] = Presets(
    paper=PointNetConfig(preset="paper"),
    small=PointNetConfig(preset="small", widths=(64, 64, 64, 128, 512), head=(256, 128), points=1024, resolution=64,
                         voxel_resolution=48, epochs=100),
    tiny=PointNetConfig(preset="tiny", widths=(32, 32, 64, 128, 256), head=(128, 64), points=512, resolution=32,
                        voxel_resolution=32, epochs=40, batch=16, lr=2e-3),
)
preset = PRESETS.__getitem__
