"""Settings of NetSpace: the zoo of networks, the framework's sizes, its training (thesis Sec. 4.4, App. B).

The ``paper`` values are the thesis' (Adam 1e-4 for zoos of 1 to 600 epochs, 100 / 16 / 16
networks, embedding 4096, meta-batch 8, T = 4); ``tiny`` is scaled so that a zoo and a NetSpace
train on 2 CPU cores in a few minutes (digits, a 256-value embedding, a faster learning rate).
"""

from __future__ import annotations

from dataclasses import dataclass

from nrtool.config import Config, Presets, option
from nrtool.training import LoopSettings

#: Names a zoo understands, in ClassId order (fewest parameters first, as the thesis numbers them).
ZOO_ARCHITECTURES = ("lenetlike", "vanillacnn", "resnet8", "resnet32", "resnet56")
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class ZooSettings(Config):
    """How the networks of a zoo are trained (each from its own random initialisation)."""

    WHAT = "zoo"

    preset: str
    architectures: tuple[str, ...] = option(("lenetlike",), help="Architectures (lenetlike, vanillacnn, resnet8, resnet32, resnet56).")
    count: int = option(160, help="Networks per architecture (train + val + test).")
    val_nets: int = option(16, help="Networks per architecture kept for NetSpace's validation.")
    test_nets: int = option(16, help="Networks per architecture kept for NetSpace's test.")
    min_epochs: int = option(1, help="Fewest epochs a network trains for (each draws its own, so accuracies spread).")
    max_epochs: int = option(12, help="Most epochs a network trains for.")
    optimizer: str = option("adam", help="adam (constant lr, the single-architecture zoos) | sgd (momentum 0.9, "
                            "weight decay 5e-4, lr / 10 at 50/60/70 % of the epochs: the multi-architecture zoos).")
    lr: float = option(1e-4, help="Learning rate.")
    batch: int = option(64, help="Images per step.")
    width: int = 16  # ResNet stage-1 channels (Tab. B.1 sizes at 16)
    seed: int = option(0, help="Seed of the initialisations, the drawn epochs and the network split.")

    def checks(self) -> dict[str, bool]:
        return {
            "architectures": bool(self.architectures) and all(a in ZOO_ARCHITECTURES for a in self.architectures)
            and len(set(self.architectures)) == len(self.architectures),
            "count": self.count >= 3 and self.count > self.val_nets + self.test_nets, "val_nets": 1 <= self.val_nets, "test_nets": 1 <= self.test_nets,
            "min_epochs": self.min_epochs >= 0, "max_epochs": self.max_epochs >= max(1, self.min_epochs),
            "optimizer": self.optimizer in OPTIMIZERS, "lr": self.lr > 0, "batch": self.batch >= 1,
            "width": self.width >= 1,
        }


ZOO_PRESETS: Presets[ZooSettings] = Presets(
    # Thesis App. B.3: 132 ResNet8s (100 / 16 / 16), Adam at 1e-4 for 1 to 600 epochs.
    paper=ZooSettings("paper", architectures=("resnet8",), count=132, min_epochs=1, max_epochs=600, lr=1e-4, batch=128),
    small=ZooSettings("small", count=200, min_epochs=1, max_epochs=30, lr=1e-4),
    # 160 LeNetLikes on digits, 1 to 12 epochs at 1e-4: accuracies from 10 % to ~90 %, ~45 s on 2 cores.
    tiny=ZooSettings("tiny"),
)
zoo_preset = ZOO_PRESETS.__call__


@dataclass(frozen=True)
class NetSpaceConfig(Config):
    """Sizes of the encoder / decoder and what one step sees."""

    WHAT = "NetSpace"

    preset: str
    embedding: int = option(help="Embedding size E (a square: 256, 1024, 4096).")
    prep_width: int = option(help="PRep row width W (a multiple of 8).")
    channels: int = option(help="Decoder channels C of its first reshape (the official code: 128).")
    meta_batch: int = option(help="Networks per step.")
    image_batch: int = option(help="Images per step.")
    lr: float = option(help="Adam learning rate.")
    channels3: int = 256  # decoder channels before its last conv (the official code's)
    temperature: float = 4.0  # of the distillation KL (Eq. 4.1)
    kd_alpha: float = 0.9  # multi-architecture: 0.9 KD(teacher) + 0.1 CE (Eq. 4.5)
    points: int = option(4096, help="Zoos of INRs: random points per step where the outputs are compared (Eq. 4.2).")

    def checks(self) -> dict[str, bool]:
        side = int(round(self.embedding ** 0.5))
        return {"embedding": side * side == self.embedding and side % 4 == 0,
                "prep_width": self.prep_width >= 8 and self.prep_width % 8 == 0,
                "channels": self.channels >= 1, "meta_batch": self.meta_batch >= 1, "image_batch": self.image_batch >= 1,
                "lr": self.lr > 0, "temperature": self.temperature > 0, "points": self.points >= 1}


PRESETS: Presets[NetSpaceConfig] = Presets(
    paper=NetSpaceConfig("paper", embedding=4096, prep_width=512, channels=128, meta_batch=8, image_batch=128, lr=1e-4),
    small=NetSpaceConfig("small", embedding=1024, prep_width=256, channels=32, channels3=64, meta_batch=8,
                         image_batch=128, lr=3e-4),
    tiny=NetSpaceConfig("tiny", embedding=256, prep_width=256, channels=8, channels3=32, meta_batch=8, image_batch=128,
                        lr=1e-3),
)
netspace_preset = PRESETS.__call__


@dataclass(frozen=True)
class NetSpaceTraining(LoopSettings):
    """The loop's settings, plus the steps of an epoch (an epoch: this many meta-batches)."""

    WHAT = "NetSpace training"

    epochs: int = option(12, help="Epochs.")
    steps: int = option(100, help="Steps (meta-batches) per epoch.")
    seed: int = option(0, help="Seed of the initialisation and of the batches.")

    def checks(self) -> dict[str, bool]:
        return super().checks() | {"steps": self.steps >= 1}
