"""Fitting configurations and the ``tiny`` / ``small`` / ``paper`` presets.

``paper`` is the inr2vec configuration (thesis App. C.2/C.5): SIREN with 4 hidden layers of 512,
500 Adam steps at lr 1e-4, 10k points per step, batches of 16 INRs, 500k ground-truth queries.
``small`` and ``tiny`` are CPU presets; their measured quality is in the README. They keep fewer
near-surface queries than ``paper`` but not proportionally fewer far ones: with a few thousand
queries in total, the handful of uniform ones left by plain scaling leave most of the cube
unsupervised and the SIREN fills it with spurious surfaces (measured: udf Chamfer 0.10 with 1k
uniform queries vs 0.016 with 10k, same steps, on procedural shapes). They also decay a 4x
higher rate along a cosine and fit sdf with L1 (``loss="auto"``): on 38 PSB test meshes that took
``tiny`` from F-score 0.747 to 0.859 in the same time (README, "Fidelity against cost").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nrtool.artifacts.architecture import SirenSpec
from nrtool.config import Config, Presets, option
from nrtool.errors import NrtoolError
from nrtool.geometry.ground_truth import FIELDS, FieldName, QuerySpec

#: Learning-rate schedules of ``FitConfig.schedule``.
SCHEDULES = ("constant", "cosine")
#: Losses of the distance fields (see :func:`nrtool.inr.fields.field_loss`); ``FitConfig.loss``
#: also takes ``auto`` (:meth:`FitConfig.distance_loss`).
DISTANCE_LOSSES = ("bce", "l1")
#: Matmul precisions of ``FitConfig.precision`` (:func:`nrtool.inr.fit.precision_mode`).
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True)
class FitConfig(Config):
    """Everything that determines a fitted INR (plus ``batch``, which only affects speed)."""

    WHAT = "fit"

    preset: str
    hidden: int = option(help="Hidden units per layer.")
    layers: int = option(help="Hidden-to-hidden layers.")
    steps: int = option(help="Optimisation steps per INR.")
    points: int = option(help="Query points per step.")
    lr: float = option(help="Adam learning rate.")
    batch: int = option(help="INRs fitted at once (speed only, results do not change).")
    queries: QuerySpec = field(default_factory=QuerySpec)
    omega0: float = option(30.0, help="SIREN frequency omega_0.")
    focal_alpha: float = option(0.25, help="Focal-loss alpha (occ).")
    focal_gamma: float = option(2.0, help="Focal-loss gamma (occ).")
    loss: str = option("bce", help="udf/sdf loss: bce (inr2vec: cross-entropy on the clipped distance squashed to "
                       "[0, 1]) | l1 (absolute error of the clipped distance) | auto (l1 for sdf, bce for udf; "
                       "tiny and small).")
    schedule: str = option("constant", help="Learning-rate schedule: constant | cosine (decays to 0 along a half "
                           "cosine over the steps).")
    seed: int = option(0, help="Seed of the shared initialisation and of query sampling.")
    precision: str = option("fp32", help="Matmul precision of the fit: fp32 | tf32 (CUDA TensorFloat-32 matmuls; "
                            "none on the CPU) | bf16 (bfloat16 autocast; parameters, loss and Adam in float32).")
    compile: bool = option(False, help="torch.compile the fitting step (speed only: the same fit up to float "
                           "rounding; the first batch pays the compilation).")

    @property
    def spec(self) -> SirenSpec:
        return SirenSpec(hidden=self.hidden, layers=self.layers, omega0=self.omega0)

    def distance_loss(self, field_name: FieldName) -> str:
        """The loss ``auto`` stands for: on 38 PSB meshes (tiny, cosine, lr 2e-3) l1 gave sdf
        F-score 0.859 against bce's 0.847, while on their point clouds bce gave udf 0.723
        against l1's 0.661 (README, "Fidelity against cost")."""
        if self.loss != "auto":
            return self.loss
        return "l1" if field_name == "sdf" else "bce"

    def identity(self, field_name: FieldName) -> dict[str, Any]:
        """The settings that must match for two runs to write into the same file.

        ``batch`` is left out on purpose: every INR's sampling is seeded by its own name, so the
        batch size changes speed, not results; so are the default ``loss`` and ``schedule``, see
        below.
        """
        data = self.to_dict()
        data.pop("batch")
        data.pop("compile")  # speed only, as the batch
        data["loss"] = self.distance_loss(field_name)  # what was fitted, not the name of the rule
        # The defaults are what every file written before these options existed used: left out,
        # those files still resume and merge with runs of the same settings.
        for name, default in (("loss", "bce"), ("schedule", "constant"), ("precision", "fp32")):
            if data.get(name) == default:
                data.pop(name)
        data["field"] = field_name
        return data

    def checks(self) -> dict[str, bool]:
        return {
            "hidden": self.hidden >= 1,
            "layers": self.layers >= 0,
            "steps": self.steps >= 1,
            "points": self.points >= 1,
            "lr": self.lr > 0,
            "batch": self.batch >= 1,
            "omega0": self.omega0 > 0,
            "focal_alpha": 0 <= self.focal_alpha <= 1,
            "focal_gamma": self.focal_gamma >= 0,
            "loss": self.loss in ("auto", *DISTANCE_LOSSES),
            "schedule": self.schedule in SCHEDULES,
            "precision": self.precision in PRECISIONS,
        }


_PAPER_QUERIES = QuerySpec()

PRESETS: Presets[FitConfig] = Presets(
    paper=FitConfig("paper", hidden=512, layers=4, steps=500, points=10_000, lr=1e-4, batch=16,
                    queries=_PAPER_QUERIES),
    small=FitConfig("small", hidden=128, layers=2, steps=300, points=4_000, lr=2e-3, batch=16, loss="auto",
                    schedule="cosine",
                    queries=QuerySpec(near=((0.003, 50_000), (0.01, 40_000), (0.1, 10_000)), uniform=25_000)),
    tiny=FitConfig("tiny", hidden=64, layers=2, steps=300, points=2_000, lr=2e-3, batch=8, loss="auto",
                   schedule="cosine",
                   queries=QuerySpec(near=((0.003, 10_000), (0.01, 8_000), (0.1, 5_000)), uniform=10_000)),
)
preset = PRESETS.__getitem__


@dataclass(frozen=True)
class Shard:
    """The ``index``-th (1-based) of ``count`` interleaved parts of the input list."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "Shard":
        if not text:
            return cls()
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise NrtoolError(f"--shard {text!r}: expected K/N, e.g. 2/8") from None
        if count < 1 or not 1 <= index <= count:
            raise NrtoolError(f"--shard {text}: K must be between 1 and N (N >= 1)")
        return cls(index, count)

    def selects(self, position: int) -> bool:
        return position % self.count == self.index - 1


def check_field_name(requested: str) -> None:
    """Refuse an unknown ``--field`` before any input is read."""
    if requested != "auto" and requested not in FIELDS:
        raise NrtoolError(f"--field {requested!r}: choose auto, udf, sdf or occ")
