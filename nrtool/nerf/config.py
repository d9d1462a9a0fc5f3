"""NeRF settings and the ``tiny`` / ``small`` / ``paper`` presets (torch-free).

The model is a dense voxel grid in the manner of DVGO (Sun et al., CVPR 2022): a density grid
and a feature grid sampled trilinearly, a small MLP for view-dependent colour, coarse-to-fine
upsampling of both grids, and an occupancy grid that drops samples in empty space. ``paper``
is DVGO's fine stage (160³ voxels, 20k steps of 8,192 rays, full-resolution frames) for a GPU;
``tiny`` and ``small`` are the CPU presets measured in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrtool.config import Config, Presets, option

#: What the renderer composites over where the rays leave the box: ``white`` (NeRF-synthetic
#: RGBA frames are composited over white), ``learned`` (one colour, trained) or ``auto`` (white
#: when the frames have alpha or masks, learned otherwise).
BACKGROUNDS = ("auto", "white", "learned")


@dataclass(frozen=True)
class NerfConfig(Config):
    """Everything that determines a trained NeRF."""

    WHAT = "nerf"

    preset: str
    max_side: int = option(help="Train on frames downscaled so their longer side is at most this (0 = full size).")
    grid: int = option(help="Voxels per side of the final grids (the cube root of the voxel count; the box's aspect "
                       "sets the sides).")
    grid_start: int = option(help="Voxels per side before the first upsampling (coarse to fine).")
    steps: int = option(help="Optimisation steps.")
    rays: int = option(help="Rays per step.")
    features: int = option(12, help="Channels of the feature grid read by the colour MLP.")
    mlp_width: int = option(64, help="Hidden units of the colour MLP.")
    view_frequencies: int = option(4, help="Positional-encoding frequencies of the view direction.")
    lr_grid: float = option(0.1, help="Adam learning rate of the grids.")
    lr_mlp: float = option(1e-3, help="Adam learning rate of the colour MLP and the background.")
    step_ratio: float = option(0.5, help="Distance between samples along a ray, in voxels.")
    tv_weight: float = option(1e-5, help="Total-variation weight on the density grid (smooths floaters away).")
    entropy_weight: float = option(1e-3, help="Weight of the entropy of each ray's opacity (rays end up blocked or clear).")
    sparsity_weight: float = option(0.01, help="Weight of the mean alpha per sample (clears haze from empty space).")
    alpha_init: float = option(1e-3, help="Alpha per voxel of the untrained density grid.")
    occupancy_threshold: float = option(1e-4, help="Voxels whose alpha over one voxel is below this are skipped.")
    occupancy_every: int = option(16, help="Steps between updates of the occupancy grid.")
    background: str = option("auto", help="auto | white | learned: what rays that leave the box see.")
    seed: int = option(0, help="Seed of ray sampling and initialisation.")

    def checks(self) -> dict[str, bool]:
        return {
            "max_side": self.max_side >= 0 and (self.max_side == 0 or self.max_side >= 8),
            "grid": self.grid >= 8,
            "grid_start": 8 <= self.grid_start <= self.grid,
            "steps": self.steps >= 1,
            "rays": self.rays >= 1,
            "features": self.features >= 1,
            "mlp_width": self.mlp_width >= 1,
            "view_frequencies": self.view_frequencies >= 0,
            "lr_grid": self.lr_grid > 0,
            "lr_mlp": self.lr_mlp > 0,
            "step_ratio": self.step_ratio > 0,
            "tv_weight": self.tv_weight >= 0,
            "entropy_weight": self.entropy_weight >= 0,
            "sparsity_weight": self.sparsity_weight >= 0,
            "alpha_init": 0 < self.alpha_init < 1,
            "occupancy_threshold": 0 <= self.occupancy_threshold < 1,
            "occupancy_every": self.occupancy_every >= 1,
            "background": self.background in BACKGROUNDS,
        }

    def upsample_steps(self) -> list[int]:
        """Steps after which the grids grow (three stages over the first 40 % of training,
        as DVGO does over its first 12k of 20k steps)."""
        if self.grid_start == self.grid:
            return []
        return sorted({max(1, int(self.steps * f)) for f in (0.1, 0.2, 0.3, 0.4)})

    def grid_at(self, step: int) -> int:
        """Voxels per side in use after ``step`` steps (geometric growth from ``grid_start``)."""
        stages = self.upsample_steps()
        done = sum(1 for s in stages if step >= s)
        if not stages:
            return self.grid
        ratio = (self.grid / self.grid_start) ** (done / len(stages))
        return self.grid if done == len(stages) else int(round(self.grid_start * ratio))


PRESETS: Presets[NerfConfig] = Presets(
    paper=NerfConfig("paper", max_side=0, grid=160, grid_start=80, steps=20_000, rays=8192),
    small=NerfConfig("small", max_side=200, grid=128, grid_start=64, steps=3000, rays=2048),
    tiny=NerfConfig("tiny", max_side=240, grid=80, grid_start=40, steps=1500, rays=1024, mlp_width=32),
)
preset = PRESETS.__getitem__
