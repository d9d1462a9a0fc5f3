"""The architecture record of an INR, as the ``inrs`` artifact stores it (``architecture``).

It lives with the artifact layer (which imports no domain package); :mod:`nrtool.inr.siren`
builds networks from it. No h5py or torch here: settings that name an architecture can be
built and checked before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SirenSpec:
    """Architecture of a SIREN: ``in_dim -> hidden x (layers + 1) -> out_dim``."""

    hidden: int
    layers: int
    in_dim: int = 3
    out_dim: int = 1
    omega0: float = 30.0

    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(out, in)`` of every linear layer in forward order."""
        dims = [self.in_dim] + [self.hidden] * (self.layers + 1) + [self.out_dim]
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    @property
    def n_params(self) -> int:
        return sum(o * i + o for o, i in self.layer_shapes())

    def to_dict(self) -> dict[str, float | int | str]:
        return {"type": "siren", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "SirenSpec":
        fields = {k: data[k] for k in ("hidden", "layers", "in_dim", "out_dim", "omega0")}
        return cls(
            hidden=int(fields["hidden"]),
            layers=int(fields["layers"]),
            in_dim=int(fields["in_dim"]),
            out_dim=int(fields["out_dim"]),
            omega0=float(fields["omega0"]),
        )
