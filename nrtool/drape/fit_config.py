"""Settings of scan and image fitting (``nrtool fit-scan``, ``fit-image``), torch-free so that a
command refuses an impossible option before importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nrtool.config import Config, Presets, option
from nrtool.training import LoopSettings

__all__ = ["FitSettings", "FIT_PRESETS"]


@dataclass(frozen=True)
class FitSettings(Config):
    """How a clothed body is fitted (``--preset``; every value overridable)."""

    WHAT = "fitting"

    preset: str = "tiny"
    body_steps: int = option(200, help="Steps of the first stage: the body alone (β, θ, translation).")
    garment_steps: int = option(200, help="Steps of the second stage: garment codes with the body refined.")
    steps_per_epoch: int = option(25, help="Steps between saved states (what a resumed run repeats at most).")
    lr: float = option(0.01, help="Adam learning rate of both stages (the thesis: 0.01).")
    remesh_every: int = option(10, help="Re-mesh the garments (MeshUDF) every this many steps; in between the "
                               "vertices follow the codes to first order.")
    resolution: int | None = option(None, help="MeshUDF grid cells of the garments (default: the draping model's).")
    samples: int = option(6000, help="Points sampled on each fitted garment surface per step.")
    body_samples: int = option(20000, help="Points sampled on the fitted body surface per step.")
    pose_weight: float = option(1.0, help="Weight of the pose prior (joint limits, hinges, L2; rad²).")
    # The data terms are mean distances in metres: a prior worth a millimetre is 1e-3.
    pose_l2: float = option(1e-4, help="L2 weight on the body pose inside the pose prior (per rad²).")
    code_weight: float = option(1e-3, help="Weight of |z - z_start|² per garment code (keeps the codes near where "
                                "they start, the training codes' mean).")
    beta_weight: float = option(1e-5, help="Weight of |β|² (keeps the shape near the mean).")
    clothes_weight: float = option(0.5, help="First stage: weight of the mean distance from the garment scan points "
                                   "to the body (the body lies under its clothes).")
    inside_weight: float = option(1.0, help="Weight of the garment scan points' depth inside the body (m).")
    drape: bool = option(True, help="Drape the garments with the draping network (False: skinning alone, the baseline).")
    refine_steps: int = option(0, help="Post-refinement steps (App. A.2.3) after the fit; 0: none.")
    refine_lr: float = option(1e-3, help="Adam learning rate of the post-refinement (the thesis: 0.001).")
    refine_chamfer_weight: float = option(100.0, help="Weight (J/m) of the Chamfer to the scan against the energies "
                                          "(J) in the post-refinement.")
    observed_radius: float | None = option(0.02, help="Garment surface points farther than this (m) from every scan "
                                           "point count as unobserved (a partial scan); 0: use them all.")
    seed: int = option(0, help="Seed of the surface samples.")

    def checks(self) -> dict[str, bool]:
        return {"body_steps": self.body_steps >= 0, "garment_steps": self.garment_steps >= 0,
                "steps_per_epoch": self.steps_per_epoch >= 1, "lr": self.lr > 0, "remesh_every": self.remesh_every >= 1,
                "resolution": self.resolution is None or 16 <= self.resolution <= 512,
                "samples": self.samples >= 100, "body_samples": self.body_samples >= 100,
                "pose_weight": self.pose_weight >= 0, "pose_l2": self.pose_l2 >= 0, "beta_weight": self.beta_weight >= 0, "code_weight": self.code_weight >= 0,
                "inside_weight": self.inside_weight >= 0, "clothes_weight": self.clothes_weight >= 0, "refine_steps": self.refine_steps >= 0,
                "refine_lr": self.refine_lr > 0, "refine_chamfer_weight": self.refine_chamfer_weight >= 0,
                "observed_radius": self.observed_radius is None or self.observed_radius >= 0}

    @property
    def body_epochs(self) -> int:
        return math.ceil(self.body_steps / self.steps_per_epoch)

    @property
    def epochs(self) -> int:
        return self.body_epochs + math.ceil(self.garment_steps / self.steps_per_epoch)

    def loop(self, time_limit: float | None = None) -> LoopSettings:
        return LoopSettings(epochs=max(self.epochs, 1), val_every=max(self.epochs, 1), time_limit=time_limit)


FIT_PRESETS: Presets[FitSettings] = Presets(
    # The thesis gives Adam 0.01 and no step counts for Eq. 2.12-2.13; 1000 per stage is ours.
    paper=FitSettings(preset="paper", body_steps=1000, garment_steps=1000, steps_per_epoch=50, remesh_every=5,
                      samples=20000, body_samples=50000, refine_steps=500),
    small=FitSettings(preset="small", body_steps=400, garment_steps=400, samples=10000, body_samples=30000,
                      refine_steps=200),
    tiny=FitSettings(preset="tiny"),
)
