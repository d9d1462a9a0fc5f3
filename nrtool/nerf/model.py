"""The dense-grid NeRF: density and feature voxel grids, a colour MLP, and the renderer.

Shapes: rays ``(R, 3)``; samples are packed (only those that fall in occupied voxels are kept)
as flat ``(S,)`` tensors with the index of their ray, sorted by ray and then by depth.

Density follows DVGO: a raw grid value ``d`` becomes ``tau = softplus(d + shift) * interval``
(``interval`` = the sample spacing in voxels), so that a zero grid starts at alpha
``ALPHA_INIT`` per voxel; alpha is ``1 - exp(-tau)`` and transmittance the exclusive cumulative
sum of ``tau`` along each ray (in float64: a batch's cumulative sum runs over every sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Alpha per voxel of a zero density grid.
ALPHA_INIT = 1e-2
#: Samples whose weight is below this get no colour (DVGO's ``fast_color_thres``).
COLOUR_WEIGHT_THRESHOLD = 1e-4


def grid_sides(extent: torch.Tensor, voxels_per_side: int) -> list[int]:
    """Voxels along x, y, z for a box of ``extent`` (3,) holding about ``voxels_per_side``³
    cubic voxels."""
    voxel = float(torch.prod(extent)) ** (1 / 3) / voxels_per_side
    return [max(2, int(round(float(e) / voxel))) for e in extent]


def ray_box(origins: torch.Tensor, directions: torch.Tensor, box_min: torch.Tensor, box_max: torch.Tensor,
            near: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances (R,) of rays through an axis-aligned box; exit <= entry where a
    ray misses it."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    a = (box_min - origins) / safe
    b = (box_max - origins) / safe
    t_near = torch.minimum(a, b).amax(dim=-1).clamp_min(near)
    t_far = torch.maximum(a, b).amin(dim=-1)
    return t_near, t_far


@dataclass
class Samples:
    """Packed samples of a batch of rays."""

    ray: torch.Tensor  # (S,) int64, sorted
    points: torch.Tensor  # (S, 3)
    rays: int  # R


def view_encoding(directions: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(R, 3 + 6F): unit directions and their sines/cosines at 2^0 ... 2^(F-1)."""
    if frequencies == 0:
        return directions
    scales = 2.0 ** torch.arange(frequencies, device=directions.device, dtype=directions.dtype)
    angles = (directions[:, :, None] * scales).flatten(1)
    return torch.cat([directions, angles.sin(), angles.cos()], dim=1)


class DenseGridNeRF(nn.Module):
    """A NeRF over the axis-aligned box ``[box_min, box_max]`` (world units)."""

    def __init__(self, box_min: Any, box_max: Any, voxels_per_side: int, features: int = 12, mlp_width: int = 64,
                 view_frequencies: int = 4, step_ratio: float = 0.5, learned_background: bool = False,
                 alpha_init: float = ALPHA_INIT) -> None:
        super().__init__()
        self.register_buffer("box_min", torch.as_tensor(box_min, dtype=torch.float32).clone())
        self.register_buffer("box_max", torch.as_tensor(box_max, dtype=torch.float32).clone())
        sides = grid_sides(self.box_max - self.box_min, voxels_per_side)
        shape = (sides[2], sides[1], sides[0])  # grid_sample's (D, H, W) = (z, y, x)
        self.density = nn.Parameter(torch.zeros(1, 1, *shape))
        self.features = nn.Parameter(torch.zeros(1, features, *shape))
        self.register_buffer("occupancy", torch.ones(shape, dtype=torch.bool))
        self.view_frequencies = view_frequencies
        self.step_ratio = step_ratio
        self.mlp = nn.Sequential(nn.Linear(features + 3 + 6 * view_frequencies, mlp_width), nn.ReLU(),
                                 nn.Linear(mlp_width, mlp_width), nn.ReLU(), nn.Linear(mlp_width, 3))
        nn.init.zeros_(self.mlp[-1].bias)
        # Where rays leave the box they see the room, far away: a colour per direction (a small
        # MLP of the view encoding), the far field that NeRF++ models with its outer sphere.
        self.learned_background = learned_background
        self.background_mlp = nn.Sequential(nn.Linear(3 + 6 * view_frequencies, 32), nn.ReLU(), nn.Linear(32, 3))
        self.shift = math.log(1 / (1 - alpha_init) - 1)

    # --- geometry of the grid ---------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid vertices along (z, y, x)."""
        return tuple(self.density.shape[2:])  # type: ignore[return-value]

    @property
    def voxel_size(self) -> float:
        """Edge of one voxel (world units), the mean over the three axes."""
        sides = torch.tensor(self.shape[::-1], dtype=torch.float32, device=self.box_min.device) - 1
        return float(((self.box_max - self.box_min) / sides).mean())

    @property
    def step(self) -> float:
        """Distance between samples along a ray (world units)."""
        return self.step_ratio * self.voxel_size

    def _normalised(self, points: torch.Tensor) -> torch.Tensor:
        return (points - self.box_min) / (self.box_max - self.box_min) * 2 - 1

    def _lookup(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(P, C) trilinear values of ``grid`` (1, C, D, H, W) at world ``points`` (P, 3)."""
        coords = self._normalised(points).view(1, 1, 1, -1, 3)
        values = F.grid_sample(grid, coords, mode="bilinear", align_corners=True)
        return values.view(grid.shape[1], -1).t()

    def tau(self, points: torch.Tensor) -> torch.Tensor:
        """(P,) optical thickness of one sample step at ``points``."""
        return F.softplus(self._lookup(self.density, points)[:, 0] + self.shift) * self.step_ratio

    def colour(self, points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """(P, 3) RGB in [0, 1] at ``points`` seen along unit ``directions`` (P, 3)."""
        inputs = torch.cat([self._lookup(self.features, points), view_encoding(directions, self.view_frequencies)], 1)
        return torch.sigmoid(self.mlp(inputs))

    def background(self, directions: torch.Tensor) -> torch.Tensor:
        """(R, 3) the colour of rays that leave the box along unit ``directions``: learned, or white."""
        if self.learned_background:
            return torch.sigmoid(self.background_mlp(view_encoding(directions, self.view_frequencies)))
        return torch.ones(len(directions), 3, device=directions.device)

    # --- sampling -----------------------------------------------------------------------------
    def sample(self, origins: torch.Tensor, directions: torch.Tensor, jitter: torch.Tensor | None = None,
               box: tuple[torch.Tensor, torch.Tensor] | None = None, skip_empty: bool = True) -> Samples:
        """Samples every :attr:`step` along the rays inside ``box`` (default: the model's),
        dropping those in unoccupied voxels. ``jitter`` (R,) in [0, 1) shifts each ray's samples."""
        lo, hi = box if box is not None else (self.box_min, self.box_max)
        t0, t1 = ray_box(origins, directions, lo, hi)
        step = self.step
        length = (t1 - t0).clamp_min(0)
        count = int(math.ceil(float(length.max()) / step)) if len(length) else 0
        if count == 0:
            empty = torch.zeros(0, dtype=torch.long, device=origins.device)
            return Samples(empty, origins.new_zeros(0, 3), len(origins))
        offset = jitter[:, None] if jitter is not None else 0.5
        k = torch.arange(count, device=origins.device, dtype=origins.dtype)
        t = t0[:, None] + step * (k[None, :] + offset)  # (R, count)
        keep = t < t1[:, None]
        ray, index = keep.nonzero(as_tuple=True)
        depth = t[ray, index]
        points = origins[ray] + depth[:, None] * directions[ray]
        if skip_empty:
            occupied = self.occupied(points)
            ray, points = ray[occupied], points[occupied]
        return Samples(ray, points, len(origins))

    def occupied(self, points: torch.Tensor) -> torch.Tensor:
        """(P,) bool: the nearest grid vertex is occupied."""
        shape = torch.tensor(self.shape[::-1], device=points.device)  # x, y, z counts
        index = ((points - self.box_min) / (self.box_max - self.box_min) * (shape - 1)).round().long()
        index = torch.minimum(index.clamp_min(0), shape - 1)
        return self.occupancy[index[:, 2], index[:, 1], index[:, 0]]

    @torch.no_grad()
    def update_occupancy(self, threshold: float) -> float:
        """Mark the vertices whose alpha over one voxel (or a neighbour's) reaches ``threshold``;
        returns the occupied fraction."""
        alpha = 1 - torch.exp(-F.softplus(self.density + self.shift))
        alpha = F.max_pool3d(alpha, kernel_size=3, stride=1, padding=1)[0, 0]
        self.occupancy = alpha >= threshold
        return float(self.occupancy.float().mean())

    # --- compositing --------------------------------------------------------------------------
    @staticmethod
    def weights(tau: torch.Tensor, ray: torch.Tensor, rays: int) -> torch.Tensor:
        """(S,) volume-rendering weights ``T_i (1 - exp(-tau_i))`` of packed samples."""
        if len(tau) == 0:
            return tau
        total = torch.cumsum(tau.double(), 0)
        counts = torch.bincount(ray, minlength=rays)
        first = torch.cumsum(counts, 0) - counts  # index of each ray's first sample
        before = total - tau.double()  # exclusive sums over the whole batch
        transmittance = torch.exp(-(before - before[first[ray]])).float()
        return transmittance * (1 - torch.exp(-tau))

    def render(self, origins: torch.Tensor, directions: torch.Tensor, jitter: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
        """``rgb`` (R, 3) and ``alpha`` (R,) of unit-direction rays."""
        samples = self.sample(origins, directions, jitter)
        tau = self.tau(samples.points)
        weights = self.weights(tau, samples.ray, samples.rays)
        alpha = torch.zeros(samples.rays, device=origins.device).index_add(0, samples.ray, weights)
        rgb = torch.zeros(samples.rays, 3, device=origins.device)
        lit = weights > COLOUR_WEIGHT_THRESHOLD
        if bool(lit.any()):
            ray = samples.ray[lit]
            colour = self.colour(samples.points[lit], directions[ray])
            rgb = rgb.index_add(0, ray, weights[lit, None] * colour)
        rgb = rgb + (1 - alpha)[:, None] * self.background(directions)
        return {"rgb": rgb, "alpha": alpha, "samples": torch.tensor(len(tau)),
                "sample_alpha": (1 - torch.exp(-tau)).mean() if len(tau) else tau.sum()}

    @torch.no_grad()
    def render_alpha(self, origins: torch.Tensor, directions: torch.Tensor,
                     box: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(R,) opacity of the density inside ``box`` alone (what ``nrtool mask`` thresholds)."""
        samples = self.sample(origins, directions, box=box)
        tau = self.tau(samples.points)
        weights = self.weights(tau, samples.ray, samples.rays)
        return torch.zeros(samples.rays, device=origins.device).index_add(0, samples.ray, weights)

    # --- coarse to fine ---------------------------------------------------------------------
    @torch.no_grad()
    def upsample(self, voxels_per_side: int) -> bool:
        """Resample the grids (trilinearly) to ``voxels_per_side``; True when the shape changed.

        The parameters keep their identity (``.data`` is replaced), so an optimiser holding
        them carries on; its moments for them must be reset (:func:`reset_moments`)."""
        sides = grid_sides(self.box_max - self.box_min, voxels_per_side)
        shape = (sides[2], sides[1], sides[0])
        if shape == self.shape:
            return False
        for grid in (self.density, self.features):
            grid.data = F.interpolate(grid.data, size=shape, mode="trilinear", align_corners=True)
        self.occupancy = torch.ones(shape, dtype=torch.bool, device=self.density.device)
        return True

    def total_variation(self) -> torch.Tensor:
        """Mean squared difference of neighbouring density values."""
        d = self.density
        return ((d[:, :, 1:] - d[:, :, :-1]).pow(2).mean() + (d[:, :, :, 1:] - d[:, :, :, :-1]).pow(2).mean()
                + (d[..., 1:] - d[..., :-1]).pow(2).mean())

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # A checkpoint taken at another stage of coarse to fine: take its grid shape first.
        for name in ("density", "features"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                getattr(self, name).data = torch.zeros(saved.shape, device=self.density.device)
        saved = state_dict.get(prefix + "occupancy")
        if saved is not None and saved.shape != self.occupancy.shape:
            self.occupancy = torch.ones(saved.shape, dtype=torch.bool, device=self.density.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def reset_moments(optimizer: torch.optim.Optimizer, parameters: list[nn.Parameter]) -> None:
    """Forget Adam's moments of ``parameters`` (after they changed shape)."""
    for parameter in parameters:
        optimizer.state.pop(parameter, None)
