"""Fitting configurations and the ``tiny`` / ``small`` / ``paper`` presets.

``paper`` is the inr2vec configuration (thesis App. C.2/C.5): SIREN with 4 hidden layers of 512,
500 Adam steps at lr 1e-4, 10k points per step, batches of 16 INRs, 500k ground-truth queries.
``small`` and ``tiny`` are CPU presets; their measured quality is in the README. They keep fewer
near-surface queries than ``paper`` but not proportionally fewer far ones: with a few thousand
queries in total, the handful of uniform ones left by plain scaling leave most of the cube
unsupervised and the SIREN fills it with spurious surfaces (measured: udf Chamfer 0.10 with 1k
uniform queries vs 0.016 with 10k, same steps, on procedural shapes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nrtool.errors import NrtoolError
from nrtool.inr.fields import FieldName
from nrtool.inr.siren import SirenSpec


@dataclass(frozen=True)
class QuerySpec:
    """How many ground-truth queries to precompute per shape (App. C.1).

    Near-surface queries are surface samples plus Gaussian noise of the given std; the rest are
    uniform in [-1,1]^3. Voxel grids ignore this and use every voxel centre.
    """

    near: tuple[tuple[float, int], ...] = ((0.003, 250_000), (0.01, 200_000), (0.1, 25_000))
    uniform: int = 25_000

    @property
    def total(self) -> int:
        return sum(n for _, n in self.near) + self.uniform

    def scaled(self, factor: float) -> "QuerySpec":
        return QuerySpec(
            near=tuple((std, max(1, round(n * factor))) for std, n in self.near),
            uniform=max(1, round(self.uniform * factor)),
        )


@dataclass(frozen=True)
class FitConfig:
    """Everything that determines a fitted INR (plus ``batch``, which only affects speed)."""

    preset: str
    hidden: int
    layers: int
    steps: int
    points: int
    lr: float
    batch: int
    queries: QuerySpec = field(default_factory=QuerySpec)
    omega0: float = 30.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    seed: int = 0

    @property
    def spec(self) -> SirenSpec:
        return SirenSpec(hidden=self.hidden, layers=self.layers, omega0=self.omega0)

    def identity(self, field_name: FieldName) -> dict[str, Any]:
        """The settings that must match for two runs to write into the same file.

        ``batch`` is left out on purpose: every INR's sampling is seeded by its own name, so the
        batch size changes speed, not results.
        """
        data = dataclasses.asdict(self)
        data.pop("batch")
        data["queries"] = {"near": [list(p) for p in self.queries.near], "uniform": self.queries.uniform}
        data["field"] = field_name
        return data

    def with_overrides(self, **overrides: Any) -> "FitConfig":
        """A copy with the given values replaced (``None`` means keep the preset's)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise NrtoolError(f"unknown fit settings: {', '.join(sorted(unknown))}")
        config = dataclasses.replace(self, **values)
        config.validate()
        return config

    def validate(self) -> None:
        checks = {
            "hidden": self.hidden >= 1,
            "layers": self.layers >= 0,
            "steps": self.steps >= 1,
            "points": self.points >= 1,
            "lr": self.lr > 0,
            "batch": self.batch >= 1,
            "omega0": self.omega0 > 0,
            "focal_alpha": 0 <= self.focal_alpha <= 1,
            "focal_gamma": self.focal_gamma >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            detail = ", ".join(f"{name}={getattr(self, name)}" for name in bad)
            raise NrtoolError(f"impossible fit settings: {detail}")


_PAPER_QUERIES = QuerySpec()

PRESETS: dict[str, FitConfig] = {
    "paper": FitConfig("paper", hidden=512, layers=4, steps=500, points=10_000, lr=1e-4, batch=16,
                       queries=_PAPER_QUERIES),
    "small": FitConfig("small", hidden=128, layers=2, steps=300, points=4_000, lr=5e-4, batch=16,
                       queries=QuerySpec(near=((0.003, 50_000), (0.01, 40_000), (0.1, 10_000)), uniform=25_000)),
    "tiny": FitConfig("tiny", hidden=64, layers=2, steps=300, points=2_000, lr=5e-4, batch=8,
                      queries=QuerySpec(near=((0.003, 10_000), (0.01, 8_000), (0.1, 5_000)), uniform=10_000)),
}


def preset(name: str) -> FitConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise NrtoolError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
