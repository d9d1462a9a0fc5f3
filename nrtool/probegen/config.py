"""ProbeGen encoder settings and presets (torch-free: validated before anything heavy).

ProbeGen is not in the thesis: it is the weight-space encoder added beside inr2vec (issue 14),
after Kahana et al., "Deep Linear Probe Generators for Weight Space Learning" (ICLR 2025). Its
presets are this project's: ``tiny`` was chosen on PSB INRs on a 2-core CPU (README), ``small``
and ``paper`` scale the probes and widths up for larger data and a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrtool.config import Presets, option
from nrtool.heads.config import HeadSettings


@dataclass(frozen=True)
class ProbeGenConfig(HeadSettings):
    """Everything that determines a trained ProbeGen encoder and the loop that trains it."""

    WHAT = "ProbeGen encoder"

    probes: int = option(1024, help="Query points every INR is read at.")
    code_dim: int = 32  # each probe's latent code, mapped to its point by the linear generator
    generator: tuple[int, ...] = (64, 64)  # hidden widths of the deep linear generator (no activations)
    hidden: int = option(512, help="Width of the layer between the probe values and the embedding.")
    embedding_dim: int = option(256, help="Embedding size (what `nrtool encode` writes).")
    dropout: float = 0.5
    stretch: float = option(0.25, help="Training reads each INR at probes scaled per axis by 1 +- up to this: "
                            "a stretched copy of its shape, new every step (0: off).")
    rotate: bool = option(False, help="Training also reads each INR at randomly rotated probes (uniform rotations): "
                          "for shapes in arbitrary orientations.")
    jitter: float = option(0.02, help="Std of the Gaussian noise added to the probes in training (normalised units).")
    label_smoothing: float = 0.1
    epochs: int = option(200, help="Training epochs.")
    lr: float = option(1e-3, help="Maximum learning rate of the one-cycle schedule (AdamW).")
    batch: int = option(32, help="INRs per batch.")
    weight_decay: float = 0.05
    val_fraction: float = option(0.05, help="Share of each class's train INRs kept for validation (when no 'val' split "
                                 "exists; at least one per class).")

    def checks(self) -> dict[str, bool]:
        return {
            **super().checks(),
            "probes": self.probes >= 2,
            "code_dim": self.code_dim >= 1,
            "generator": all(width >= 1 for width in self.generator),
            "hidden": self.hidden >= 1,
            "embedding_dim": self.embedding_dim >= 1,
            "dropout": 0 <= self.dropout < 1,
            "stretch": 0 <= self.stretch < 1,
            "jitter": self.jitter >= 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
        }


PRESETS: Presets[ProbeGenConfig] = Presets(
    paper=ProbeGenConfig(preset="paper", probes=4096, hidden=1024, embedding_dim=1024, epochs=300),
    small=ProbeGenConfig(preset="small", probes=2048, hidden=1024, embedding_dim=512),
    tiny=ProbeGenConfig(preset="tiny"),
)
preset = PRESETS.__getitem__
