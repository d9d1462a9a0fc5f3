"""Settings of the classifier on embeddings and its presets (torch-free: validated first).

Presets. ``paper`` is the thesis setting (hidden 512/256, max lr 1e-4, 150 epochs). With max lr
1e-4 a small dataset needs hundreds of epochs to move, so the CPU presets use a larger max lr:
``tiny`` (128/64, 1e-2, 60 epochs) and ``small`` (256/128, 3e-3, 100 epochs). Measured on 3
separated 32-d Gaussian classes (60 train items), see ``tests/test_heads.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nrtool.config import Presets, option
from nrtool.training import LoopSettings


@dataclass(frozen=True)
class HeadSettings(LoopSettings):
    """What every classification head trains with (the classifier on embeddings, PointNet)."""

    preset: str = ""
    epochs: int = option(150, help="Training epochs.")
    lr: float = option(1e-4, help="Learning rate (the schedule's maximum).")
    batch: int = option(256, help="Batch size.")
    weight_decay: float = 1e-2
    val_fraction: float = option(0.1, help="Share of each class's train items kept for validation (when no 'val' split exists).")
    seed: int = option(0, help="Seed of initialisation, validation split, sampling and shuffling.")

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "lr": self.lr > 0, "weight_decay": self.weight_decay >= 0,
                "batch": self.batch >= 2,  # BatchNorm cannot train on single-item batches
                "val_fraction": 0 <= self.val_fraction < 1}


@dataclass(frozen=True)
class ClassifierConfig(HeadSettings):
    """Everything that determines a trained classifier (and the loop that trains it)."""

    WHAT = "classifier"

    hidden: tuple[int, ...] = option((512, 256), help="Hidden layer sizes, one --hidden per layer.")
    lr: float = option(1e-4, help="Maximum learning rate of the one-cycle schedule.")

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "hidden": len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden)}


PRESETS: Presets[ClassifierConfig] = Presets(
    paper=ClassifierConfig(preset="paper", hidden=(512, 256), epochs=150, lr=1e-4),
    small=ClassifierConfig(preset="small", hidden=(256, 128), epochs=100, lr=3e-3),
    tiny=ClassifierConfig(preset="tiny", hidden=(128, 64), epochs=60, lr=1e-2),
)
preset = PRESETS.__getitem__


@dataclass(frozen=True)
class SegmenterConfig(HeadSettings):
    """Everything that determines a trained part-segmentation decoder (thesis Sec. 5.5.4, Fig. C.3).

    ``batch`` counts shapes (embeddings); each brings ``queries`` of its labelled points per step.
    """

    WHAT = "segmenter"

    hidden: int = option(512, help="Width of the decoder's five hidden layers.")
    pe_frequencies: int = option(10, help="Positional-encoding frequencies of the query (10: 63 values).")
    queries: int = option(2048, help="Labelled points per shape per step (drawn from its cloud).")
    epochs: int = option(250, help="Training epochs.")
    lr: float = option(1e-4, help="Maximum learning rate of the one-cycle schedule.")
    batch: int = option(256, help="Shapes per step.")

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "hidden": self.hidden >= 1, "pe_frequencies": self.pe_frequencies >= 0,
                "queries": self.queries >= 1}


#: ``paper``: the thesis' 250 epochs, batches of 256 shapes at max lr 1e-4 with all 2048 points.
#: The CPU presets trade width and points per step for speed and raise the rate to move within
#: far fewer steps (measured on procedural part clouds, ``tests/test_segmentation.py``).
SEGMENTER_PRESETS: Presets[SegmenterConfig] = Presets(
    paper=SegmenterConfig(preset="paper"),
    small=SegmenterConfig(preset="small", hidden=256, queries=1024, epochs=150, lr=1e-3, batch=32),
    tiny=SegmenterConfig(preset="tiny", hidden=128, queries=512, epochs=80, lr=3e-3, batch=16),
)


@dataclass(frozen=True)
class GanConfig(LoopSettings):
    """Everything that determines a latent GAN on embeddings (thesis Sec. 5.5.5; Achlioptas et al.'s
    latent-GAN with a WGAN-GP critic, as the official code has it)."""

    WHAT = "latent GAN"

    preset: str = ""
    noise: int = option(1024, help="Generator noise size (the official code's 1024; the thesis says 128).")
    generator_hidden: int = option(128, help="Generator hidden width (noise -> hidden -> ReLU -> embedding).")
    critic_hidden: tuple[int, ...] = option((256, 512), help="Critic hidden widths, one --critic-hidden per layer.")
    critic_steps: int = option(5, help="Critic steps per generator step.")
    gradient_penalty: float = option(10.0, help="WGAN-GP weight lambda.")
    lr: float = option(1e-4, help="Adam learning rate (beta1 0.5) of both networks.")
    batch: int = option(50, help="Embeddings per critic step.")
    epochs: int = option(2000, help="Epochs (one generator step per batch of training embeddings).")
    seed: int = option(0, help="Seed of initialisation and sampling.")

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "noise": self.noise >= 1, "generator_hidden": self.generator_hidden >= 1,
                "critic_hidden": len(self.critic_hidden) >= 1 and all(h >= 1 for h in self.critic_hidden),
                "critic_steps": self.critic_steps >= 1, "gradient_penalty": self.gradient_penalty >= 0,
                "lr": self.lr > 0, "batch": self.batch >= 2}


#: ``paper``: the official code's sizes and rates. ``tiny``: the same networks trained for fewer,
#: faster steps (measured on the suite's procedural classes, ``tests/test_generation.py``).
GAN_PRESETS: Presets[GanConfig] = Presets(
    paper=GanConfig(preset="paper"),
    small=GanConfig(preset="small", epochs=800, lr=2e-4, batch=32),
    tiny=GanConfig(preset="tiny", epochs=300, lr=5e-4, batch=16),
)


@dataclass(frozen=True)
class MappingConfig(LoopSettings):
    """Everything that determines a transfer net between two embedding spaces (thesis Sec. 5.5.6)."""

    WHAT = "mapping"

    preset: str = ""
    hidden: int = option(1024, help="Width of the transfer net's layers.")
    layers: int = option(8, help="Linear layers (BatchNorm + ReLU between them).")
    epochs: int = option(300, help="Training epochs.")
    lr: float = option(1e-4, help="AdamW learning rate.")
    weight_decay: float = option(1e-4, help="AdamW weight decay.")
    batch: int = option(32, help="Pairs per step.")
    val_fraction: float = option(0.1, help="Share of each class's train pairs kept for validation (when no 'val' split exists).")
    seed: int = option(0, help="Seed of initialisation, validation split and shuffling.")

    def checks(self) -> dict[str, bool]:
        return {**super().checks(), "hidden": self.hidden >= 1, "layers": self.layers >= 2, "lr": self.lr > 0,
                "weight_decay": self.weight_decay >= 0, "batch": self.batch >= 2, "val_fraction": 0 <= self.val_fraction < 1}


#: ``paper``: the official code's 8 x Linear(1024) at AdamW 1e-4 / wd 1e-4. The CPU presets narrow
#: it and raise the rate for data sets of tens of shapes.
MAPPING_PRESETS: Presets[MappingConfig] = Presets(
    paper=MappingConfig(preset="paper"),
    small=MappingConfig(preset="small", hidden=512, epochs=300, lr=5e-4, batch=16),
    tiny=MappingConfig(preset="tiny", hidden=256, epochs=200, lr=1e-3, batch=8),
)
