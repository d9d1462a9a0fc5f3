"""Sizes and training constants of the draping network (thesis Sec. 2.3.2, App. A.1.4-A.1.5, A.2).

Torch-free, so that ``nrtool train drape`` refuses impossible options before importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nrtool.config import Config, Presets, option
from nrtool.training import LoopSettings

#: What a draping model drapes: a top, a bottom, or a bottom under a top (the intersection solver).
KINDS = ("top", "bottom", "intersection")
#: Shape coefficients the networks read (a body with fewer gets zeros, a rigged mesh has none).
NUM_BETAS = 10
POSE_DIM = 72


@dataclass(frozen=True)
class DrapeConfig(Config):
    """The displacement field ``Δx_ref = B(θ, β) · M(x, z) · out_scale`` of one garment category.

    ``B`` maps ``[θ (72), β (10)]`` to ``basis`` values, ``M`` maps ``[PE(5 x), z]`` to
    ``basis × 3``; each is ``layers`` Linear layers with LeakyReLU between them, ``hidden`` wide
    except the last (the official code: 5 layers of 512, basis 128, NeRF encoding with 4
    frequencies of 5 x, output / 100).
    """

    WHAT = "draping"

    preset: str
    hidden: int = option(help="Width of the B and M networks.")
    layers: int = option(help="Linear layers of B and of M.")
    basis: int = option(help="Size of the body embedding B(θ, β) (rows of M).")
    batch: int = option(help="Bodies (pose + shape) per step, all wearing the step's garment.")
    lr: float = option(help="Adam learning rate.")
    garment_resolution: int = option(help="MeshUDF grid cells of the garment meshes decoded from the codes.")
    beta_range: float = option(3.0, help="Shapes for training drawn from U[-r, r]^10.")
    pe_frequencies: int = 4
    pe_scale: float = 5.0
    out_scale: float = 0.01
    pin_lambda: float = 0.1  # Eq. 2.8, App. A.1.5
    layer_gamma: float = 0.5  # Eq. 2.11, App. A.1.5
    # Eq. 2.10 adds the layer term with weight 1. Its distances are to the nearest garment
    # *vertex* (Eq. 2.11), ~2.5 cm apart on these meshes, so it never reaches 0 and its weight
    # decides how far the bottom is pulled in under the top, against the collision term.
    # Measured on the test suite's 16 top/bottom pairs (180 solver steps, 6 held-out bodies):
    # weight 1: G2G 22.4 -> 22.3 %, bottom B2G 14.8 -> 8.0 %; 3: G2G 12.0 %, B2G 16.1 %;
    # 10: G2G 8.2 %, B2G 26.5 %. 3 halves G2G at about the bottom's own B2G.
    layer_weight: float = option(3.0, help="Weight of the layer energy (Eq. 2.11, m) against the bottom's energies (J) "
                                 "in the intersection solver's loss.")

    def checks(self) -> dict[str, bool]:
        return {"hidden": self.hidden >= 4, "layers": self.layers >= 2, "basis": self.basis >= 1,
                "batch": self.batch >= 1, "lr": self.lr > 0, "beta_range": self.beta_range >= 0,
                "garment_resolution": 16 <= self.garment_resolution <= 512, "layer_weight": self.layer_weight >= 0}


PRESETS: Presets[DrapeConfig] = Presets(
    # The thesis and the official code: 250k iterations of batch 18, Adam 1e-3.
    paper=DrapeConfig("paper", hidden=512, layers=5, basis=128, batch=18, lr=1e-3, garment_resolution=256),
    small=DrapeConfig("small", hidden=256, layers=5, basis=64, batch=8, lr=1e-3, garment_resolution=128),
    # Tests and CPU demos: learns in a few minutes on 2 cores.
    tiny=DrapeConfig("tiny", hidden=96, layers=4, basis=32, batch=4, lr=1e-3, garment_resolution=64),
)

#: ``drape_preset("tiny", lr=3e-3)``: a preset with overrides (``None`` values ignored), validated.
drape_preset = PRESETS.__call__


@dataclass(frozen=True)
class DrapeTrainSettings(LoopSettings):
    """How a draping model trains: the loop's settings, steps per epoch, held-out bodies."""

    WHAT = "draping training"

    epochs: int = option(20, help="Epochs of --steps-per-epoch steps each.")
    steps_per_epoch: int = option(50, help="Optimisation steps per epoch (each: one garment on --batch bodies).")
    val_every: int = option(1, help="Epochs between validations on the held-out bodies (always after the last).")
    val_poses: int = option(8, help="Poses held out for validation (with random shapes), never trained on.")
    seed: int = option(0, help="Seed of initialisation, the held-out poses and sampling.")

    def checks(self) -> dict[str, Any]:
        return {**super().checks(), "steps_per_epoch": self.steps_per_epoch >= 1, "val_poses": self.val_poses >= 1}


#: Epochs and steps per preset (the thesis' 250k iterations = 250 epochs of 1000 steps).
TRAIN_PRESETS: Presets[DrapeTrainSettings] = Presets(
    paper=DrapeTrainSettings(epochs=250, steps_per_epoch=1000, val_every=5, val_poses=64),
    # Under an hour on 2 CPU cores: 6000 steps; measured on the 8 tops of examples/models decoded at
    # 128^3, one epoch of 30 steps with its validation (32 bodies x 8 garments) took 13.8 s, so
    # 6000 steps take at most ~46 min (12,000 steps, the earlier setting, ~92 min).
    small=DrapeTrainSettings(epochs=40, steps_per_epoch=150, val_every=2, val_poses=32),
    tiny=DrapeTrainSettings(epochs=12, steps_per_epoch=40, val_every=1, val_poses=8),
)



@dataclass(frozen=True)
class SkinningSettings(LoopSettings):
    """Sizes of ``W``/``Δx`` and how they are fitted (the defaults are the ``paper`` preset)."""

    WHAT = "skinning"

    preset: str = "paper"
    epochs: int = option(100, help="Epochs of --steps-per-epoch steps each.")
    val_every: int = option(5, help="Epochs between validations on held-out points (always after the last).")
    steps_per_epoch: int = option(1000, help="Optimisation steps per epoch.")
    hidden: int = option(256, help="Width of the hidden layers of W(x) and Δx(x, β).")
    layers: int = option(8, help="Hidden layers of each MLP (the input is concatenated again at the middle one).")
    points: int = option(8192, help="Points sampled around the rest body per step.")
    betas_per_step: int = option(8, help="Random shapes per point and step (Δx sees each point this many times).")
    lr: float = option(1e-3, help="Adam learning rate (cosine decay to lr × lr_final).")
    lr_final: float = option(0.05, help="Learning rate at the end of the run, as a fraction of --lr.")
    beta_range: float = option(3.0, help="Shapes drawn from U[-r, r]^nb.")
    near_offset: float = option(0.10, help="Most samples lie up to this far (m) off the skin along its normal.")
    far_offset: float = option(0.20, help="The far fraction of samples lies between --near-offset and this (m).")
    far_fraction: float = option(0.2, help="Fraction of samples between --near-offset and --far-offset.")
    inside_offset: float = option(0.01, help="Samples reach this far (m) inside the skin (garments may touch it).")
    lambda_weights: float = option(1.0, help="Weight of the skinning-weight loss against the shape loss (cm).")
    val_points: int = option(4096, help="Held-out points of the validation (fixed, never trained on).")
    val_poses: int = option(16, help="Held-out random poses (each with a random shape) of the validation.")
    seed: int = option(0, help="Seed of initialisation, sampling and the held-out points.")

    def checks(self) -> dict[str, bool]:
        return {
            **super().checks(),
            "steps_per_epoch": self.steps_per_epoch >= 1,
            "hidden": self.hidden >= 16,
            "layers": self.layers >= 2,
            "points": self.points >= 16,
            "betas_per_step": self.betas_per_step >= 1,
            "lr": self.lr > 0,
            "lr_final": 0 < self.lr_final <= 1,
            "beta_range": self.beta_range >= 0,
            "near_offset": self.near_offset > 0,
            "far_offset": self.far_offset >= self.near_offset,
            "far_fraction": 0 <= self.far_fraction <= 1,
            "inside_offset": self.inside_offset >= 0,
            "lambda_weights": self.lambda_weights > 0,
            "val_points": self.val_points >= 16,
            "val_poses": self.val_poses >= 1,
        }


SKINNING_PRESETS: Presets[SkinningSettings] = Presets(
    # The thesis' sizes (App. A.1.4: 8 hidden layers of 256, the input again at the middle) and
    # Adam 1e-3 (A.1.5). The thesis gives no step count for this stage: 100k steps of 8192
    # points (x 8 shapes for Δx) is our choice, meant for a GPU (3.3 s per step on 2 CPU cores).
    paper=SkinningSettings(preset="paper"),
    # Under an hour on 2 CPU cores (measured: 255 ms per step, 10k steps ~43 min).
    small=SkinningSettings(preset="small", epochs=40, steps_per_epoch=250, val_every=4, hidden=128, points=4096,
                           betas_per_step=4, val_points=4096, val_poses=16),
    # Tests and CPU demos: ~70 s on 2 cores (45 ms per step); narrower and shallower, a faster learning rate
    # (5e-3 beat 3e-3 and 1e-3 at this length; 1024 points x 4 shapes and more steps beat 2048).
    tiny=SkinningSettings(preset="tiny", epochs=12, steps_per_epoch=150, val_every=3, hidden=96, layers=6,
                          points=1024, betas_per_step=4, lr=5e-3, val_points=2048, val_poses=8),
)

#: ``skinning_preset("tiny", epochs=3)``: a preset with overrides (``None`` values ignored), validated.
skinning_preset = SKINNING_PRESETS.__call__
