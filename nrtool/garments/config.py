"""Sizes and training constants of the garment network (thesis App. A.1.1-A.1.3, A.1.5)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from nrtool.errors import NrtoolError

CATEGORIES = ("top", "bottom")


@dataclass(frozen=True)
class GarmentConfig:
    """Network sizes and the supervision of one garment model (one per category)."""

    preset: str
    points: int  # P, surface points per garment fed to the encoder
    queries: int  # supervision queries per garment per step
    batch: int  # garments per step
    lr: float  # Adam
    encoder_widths: tuple[int, ...] = (64, 64, 128, 256)  # EdgeConv layers
    k: int = 16  # neighbours of the EdgeConv graph
    code_dim: int = 32
    decoder_hidden: int = 512
    decoder_blocks: int = 5  # residual blocks (two linear layers each)
    pe_frequencies: int = 10  # 3 + 3*2*10 = 63 positional-encoding values
    delta: float = 0.1  # UDF clip distance (normalised frame)
    eps: float = 0.003  # variance of the near-surface query noise
    lambda_grad: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["encoder_widths"] = list(self.encoder_widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GarmentConfig":
        values = dict(data)
        values["encoder_widths"] = tuple(int(w) for w in values["encoder_widths"])
        return cls(**values)

    def validate(self) -> None:
        if self.points < self.k + 1 or self.queries < 10 or self.batch < 2 or self.lr <= 0:
            raise NrtoolError(f"impossible garment settings: need points > k ({self.k}), queries >= 10, batch >= 2, lr > 0")


PRESETS: dict[str, GarmentConfig] = {
    # The thesis: 10k points per cloud, 20k queries, batch 4, Adam 1e-4, decoder 512 x 5 blocks.
    "paper": GarmentConfig("paper", points=10_000, queries=20_000, batch=4, lr=1e-4),
    "small": GarmentConfig("small", points=4_096, queries=8_000, batch=4, lr=3e-4, decoder_hidden=256),
    # Tests and CPU demos: narrower, two blocks, 4 encoding frequencies (smoother, learnt in a
    # minute on a CPU), a faster learning rate.
    "tiny": GarmentConfig("tiny", points=1_024, queries=3_000, batch=4, lr=1e-3, encoder_widths=(32, 32, 64, 128),
                          decoder_hidden=128, decoder_blocks=2, pe_frequencies=4),
}


def garment_preset(name: str, **overrides: Any) -> GarmentConfig:
    """A preset with some values replaced (None values are ignored)."""
    try:
        config = PRESETS[name]
    except KeyError:
        raise NrtoolError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config.validate()
    return config
