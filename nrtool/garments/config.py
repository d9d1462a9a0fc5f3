"""Sizes and training constants of the garment network (thesis App. A.1.1-A.1.3, A.1.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nrtool.config import Config, Presets, option
from nrtool.training import LoopSettings

CATEGORIES = ("top", "bottom")


@dataclass(frozen=True)
class GarmentConfig(Config):
    """Network sizes and the supervision of one garment model (one per category)."""

    WHAT = "garment"

    preset: str
    points: int = option(help="Surface points per garment for the encoder (P).")
    queries: int = option(help="Supervision queries per garment per step.")
    batch: int = option(help="Garments per step.")
    lr: float = option(help="Adam learning rate.")
    encoder_widths: tuple[int, ...] = (64, 64, 128, 256)  # EdgeConv layers
    k: int = 16  # neighbours of the EdgeConv graph
    code_dim: int = 32
    decoder_hidden: int = 512
    decoder_blocks: int = 5  # residual blocks (two linear layers each)
    pe_frequencies: int = 10  # 3 + 3*2*10 = 63 positional-encoding values
    delta: float = 0.1  # UDF clip distance (normalised frame)
    eps: float = 0.003  # variance of the near-surface query noise
    lambda_grad: float = 0.1

    def checks(self) -> dict[str, bool]:
        return {"points": self.points > self.k, "queries": self.queries >= 10, "batch": self.batch >= 2,
                "lr": self.lr > 0}


PRESETS: Presets[GarmentConfig] = Presets(
    # The thesis: 10k points per cloud, 20k queries, batch 4, Adam 1e-4, decoder 512 x 5 blocks.
    paper=GarmentConfig("paper", points=10_000, queries=20_000, batch=4, lr=1e-4),
    small=GarmentConfig("small", points=4_096, queries=8_000, batch=4, lr=3e-4, decoder_hidden=256),
    # Tests and CPU demos: narrower, two blocks, 4 encoding frequencies (smoother, learnt in a
    # minute on a CPU), a faster learning rate.
    tiny=GarmentConfig("tiny", points=1_024, queries=3_000, batch=4, lr=1e-3, encoder_widths=(32, 32, 64, 128),
                          decoder_hidden=128, decoder_blocks=2, pe_frequencies=4),
)


#: ``garment_preset("tiny", lr=3e-3)``: a preset with overrides (``None`` values ignored), validated.
garment_preset = PRESETS.__call__


@dataclass(frozen=True)
class TrainSettings(LoopSettings):
    """How a garment model trains: the loop's settings plus the validation set."""

    WHAT = "garment training"

    epochs: int = option(100, help="Passes over the training garments.")
    val_every: int = option(10, help="Epochs between validations (Chamfer of decoded meshes; always after the last).")
    val_items: int | None = option(None, help="Garments held out for validation (default 10%, at least 1).")
    val_resolution: int = option(48, help="MeshUDF grid cells of the validation meshes.")
    seed: int = option(0, help="Seed of initialisation, split and sampling.")

    def checks(self) -> dict[str, Any]:
        return {**super().checks(), "val_resolution": self.val_resolution >= 8,
                "val_items": self.val_items is None or self.val_items >= 1}
