"""Recovering a clothed body by optimisation through the whole differentiable chain (Sec. 2.4.4).

Variables: the body's shape ``β (10)``, pose ``θ (72)`` and translation, and one garment code
``z`` per garment (started at the mean of the garment network's training codes). The chain from
them to what is compared with the observation:

    z --D_G, MeshUDF--> canonical garment --Δx(x, β), B(θ, β)·M(x, z), W(x)--> draped garment
    β, θ --body model--> posed body

MeshUDF has no gradient of its own: :class:`nrtool.garments.surface.CodeSurface` gives it (the
implicit-function derivative) and re-meshes only every ``remesh_every`` steps, the vertices
following the code to first order in between.

What is compared -- a labelled scan (Eq. 2.13, :class:`ScanObjective`) or silhouettes
(Eq. 2.12, :mod:`nrtool.drape.image_fit`) -- is an *objective*; the optimisation is one
:class:`ClothedFitter`, run by the one training loop (:func:`nrtool.training.run_training`:
progress, ``--time-limit``, resume from ``OUT.partial``). Two stages as the authors advise:
first the body alone (β, θ, translation), then the garment codes with the body refined.
:func:`refine_garments` is the post-refinement of App. A.2.3 (Eq. A.2-A.3): per-vertex offsets
of the draped garments under the draping energies plus the Chamfer to the scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from nrtool.drape.fit_config import FitSettings
from nrtool.drape.model import DrapingModel, posed_bodies
from nrtool.errors import NrtoolError

GARMENT_PARTS = ("top", "bottom")


# ------------------------------------------------------------------------------------------------
# Surfaces and distances (differentiable in the surface's vertices)
# ------------------------------------------------------------------------------------------------


def surface_samples(vertices: torch.Tensor, faces: torch.Tensor, count: int, generator: torch.Generator
                    ) -> torch.Tensor:
    """``count`` points on the mesh, uniform by area: ``(B, V, 3)`` -> ``(B, count, 3)``.

    Which face and where in it are drawn without gradients (from the first batch element's
    areas); the points are barycentric blends of the vertices, so gradients reach them.
    """
    with torch.no_grad():
        a, b, c = (vertices[0, faces[:, k]] for k in range(3))
        areas = torch.linalg.cross(b - a, c - a, dim=-1).norm(dim=-1)
        if not bool(torch.isfinite(areas).all()) or float(areas.sum()) <= 0:
            raise NrtoolError("a fitted surface degenerated (no area, or NaN vertices): lower --lr")
        index = torch.multinomial(areas.cpu(), count, replacement=True, generator=generator).to(vertices.device)
        r = torch.rand((count, 2), generator=generator).to(vertices)
        s = r[:, :1].sqrt()
        weights = torch.cat([1 - s, s * (1 - r[:, 1:]), s * r[:, 1:]], dim=1)
    chosen = faces[index]
    return sum(weights[None, :, k, None] * vertices[:, chosen[:, k]] for k in range(3))


def directed_distance(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean distance (m) from each ``query (B, N, 3)`` point to its nearest ``reference (B, M, 3)`` point -> ``(B,)``.

    The nearest point is found without gradients (a k-d tree on the CPU); the distance is
    differentiable in both clouds.
    """
    from nrtool.drape.physics import gather_points, nearest_vertex

    index = nearest_vertex(query, reference)
    nearest = gather_points(reference, index)
    return torch.sqrt(((query - nearest) ** 2).sum(-1) + 1e-12).mean(-1)


def chamfer(a: torch.Tensor, b: torch.Tensor, observed: float | None = None) -> torch.Tensor:
    """Bidirectional Chamfer distance (m), ``0.5 (d(a->b) + d(b->a))``, as :func:`nrtool.geometry.metrics.chamfer_distance`.

    ``observed``: for a partial observation ``b`` (a scan without the person's back), points of
    the surface ``a`` farther than this from every ``b`` point are unobserved and left out of
    ``d(a->b)`` (otherwise they drag the unseen side of the garment onto the seen one).
    """
    if not observed:
        return 0.5 * (directed_distance(a, b) + directed_distance(b, a))
    from nrtool.drape.physics import gather_points, nearest_vertex

    d = torch.sqrt(((a - gather_points(b, nearest_vertex(a, b))) ** 2).sum(-1) + 1e-12)
    seen = (d < observed).to(d.dtype)
    forward = (d * seen).sum(-1) / seen.sum(-1).clamp_min(1.0)
    return 0.5 * (forward + directed_distance(b, a))


def depth_inside(points: torch.Tensor, body_vertices: torch.Tensor, body_normals: torch.Tensor) -> torch.Tensor:
    """``(B, N, 3)`` points -> ``(B, N)`` how deep (m) each is under the body's tangent plane at its nearest vertex (0 outside)."""
    from nrtool.drape.physics import gather_points, nearest_vertex

    index = nearest_vertex(points, body_vertices)
    height = (gather_points(body_normals, index) * (points - gather_points(body_vertices, index))).sum(-1)
    return torch.relu(-height)


# ------------------------------------------------------------------------------------------------
# The chain: codes -> draped garments, β/θ -> posed body
# ------------------------------------------------------------------------------------------------


class FitParameters(nn.Module):
    """What is optimised: ``betas (10)``, ``pose (72)``, ``trans (3)`` and ``codes[category] (C,)``."""

    def __init__(self, betas: np.ndarray, pose: np.ndarray, trans: np.ndarray, codes: dict[str, np.ndarray],
                 shape_space: bool = True) -> None:
        super().__init__()
        self.betas = nn.Parameter(torch.as_tensor(np.asarray(betas, dtype=np.float32)), requires_grad=shape_space)
        self.pose = nn.Parameter(torch.as_tensor(np.asarray(pose, dtype=np.float32)))
        self.trans = nn.Parameter(torch.as_tensor(np.asarray(trans, dtype=np.float32)))
        self.codes = nn.ParameterDict({c: nn.Parameter(torch.as_tensor(np.asarray(z, dtype=np.float32)))
                                       for c, z in codes.items()})
        # The loss of every step (NaN: not run yet): a buffer, so an interrupted fit's state keeps it.
        self.register_buffer("step_losses", torch.full((0,), float("nan")))

    def keep_step_losses(self, steps: int) -> None:
        """Room for the loss of each of ``steps`` steps."""
        self.step_losses = torch.full((steps,), float("nan"), device=self.pose.device)

    def numpy(self) -> dict[str, Any]:
        return {"step_losses": self.step_losses.cpu().numpy().astype(np.float64),
                "betas": self.betas.detach().cpu().numpy().astype(np.float64),
                "pose": self.pose.detach().cpu().numpy().astype(np.float64),
                "trans": self.trans.detach().cpu().numpy().astype(np.float64),
                "codes": {c: z.detach().cpu().numpy().astype(np.float64) for c, z in self.codes.items()}}


class GarmentChain:
    """One garment category: code -> MeshUDF mesh (:class:`nrtool.garments.surface.CodeSurface`) ->
    draped on the body.

    ``model``: its draping checkpoint (the garment network, the skinning field and ``M`` come
    from it); ``drape`` False leaves out the learnt displacement (the skinning-only baseline).
    """

    def __init__(self, category: str, model: DrapingModel, skinning: Any, resolution: int, device: torch.device,
                 drape: bool = True) -> None:
        from nrtool.garments.surface import CodeSurface

        self.category, self.skinning = category, skinning
        self.surface = CodeSurface(model.checkpoint["garment"], model.path, resolution, device, category)
        self.field = model.field if drape else None

    @property
    def remeshes(self) -> int:
        return self.surface.remeshes

    @property
    def faces(self) -> torch.Tensor:
        return self.surface.faces

    def remesh(self, code: torch.Tensor) -> None:
        self.surface.remesh(code)

    def dress(self, code: torch.Tensor, pose: torch.Tensor, betas: torch.Tensor, out: Any,
              solver: tuple[Any, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The garment worn by the posed body ``out`` (``pose (1, 72)``, ``betas (1, 10)``):
        (draped ``(1, V, 3)``, canonical ``(V, 3)``). ``solver``: the intersection solver's field and
        its code ``[z_bottom, z_top]``, added to a bottom."""
        from nrtool.drape.skinning import linear_blend_skinning

        x = self.surface.vertices(code)
        weights = self.skinning.skinning_weights(x)
        moved = x[None] + self.skinning.shape_displacement(x[None], betas)
        if self.field is not None:
            moved = moved + self.field(x, code, pose, betas)
            if solver is not None:
                moved = moved + solver[0](x, solver[1], pose, betas)
        return linear_blend_skinning(moved, weights, out.transforms), x


@dataclass
class ClothedState:
    """One evaluation of the chain: the posed body and each draped garment."""

    body: Any  # BodyOutput
    body_faces: torch.Tensor  # (Fb, 3)
    garments: dict[str, torch.Tensor] = field(default_factory=dict)  # category -> (1, V, 3)
    canonical: dict[str, torch.Tensor] = field(default_factory=dict)  # category -> (V, 3)
    faces: dict[str, torch.Tensor] = field(default_factory=dict)


class ClothedBody:
    """The body model and the garment chains, evaluated for a :class:`FitParameters`."""

    def __init__(self, body: Any, chains: dict[str, GarmentChain], solver: Any | None = None) -> None:
        self.body, self.chains, self.solver = body, chains, solver

    def network_betas(self, params: FitParameters) -> torch.Tensor:
        """``(1, 10)`` what the networks read (the body's betas, zeros beyond them), with β's gradient."""
        return torch.cat([params.betas[None], torch.zeros((1, 10 - len(params.betas)), device=params.betas.device)],
                         dim=1)[:, :10]

    def evaluate(self, params: FitParameters, with_garments: bool = True) -> ClothedState:
        betas = self.network_betas(params)
        out = posed_bodies(self.body, params.pose[None], betas, params.trans[None])
        state = ClothedState(out, self.body.faces_tensor)
        if not with_garments:
            return state
        for category, chain in self.chains.items():
            solver = None
            if category == "bottom" and self.solver is not None and "top" in params.codes:
                solver = (self.solver, torch.cat([params.codes["bottom"], params.codes["top"]]))
            draped, canonical = chain.dress(params.codes[category], params.pose[None], betas, out, solver)
            state.garments[category], state.canonical[category] = draped, canonical
            state.faces[category] = chain.faces
        return state

    def remesh(self, params: FitParameters) -> None:
        for category, chain in self.chains.items():
            chain.remesh(params.codes[category])


class Objective(Protocol):
    """What a fit compares the chain with (a labelled scan, silhouettes)."""

    parts: tuple[str, ...]

    def terms(self, stage: str, state: ClothedState, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Named scalar losses of one step (``stage``: "body" or "garments")."""
        ...

    def final_metrics(self, state: ClothedState, generator: torch.Generator) -> dict[str, float]:
        """What the fit reports at its end (e.g. the Chamfer per part, mm)."""
        ...


class ScanObjective:
    """Eq. 2.13: bidirectional Chamfer between each draped garment and its scan points, plus the
    one-directional Chamfer from the body scan points to the body surface.

    Beyond Eq. 2.13, ``inside_weight`` × the mean depth of the garment scan points inside the
    body: the body under the garments is otherwise unobserved, and nothing else keeps it from
    swelling through them.
    """

    def __init__(self, points: dict[str, np.ndarray], settings: FitSettings, device: torch.device) -> None:
        self.points = {part: torch.as_tensor(np.asarray(p, dtype=np.float32), device=device)[None]
                       for part, p in points.items() if len(p)}
        self.parts = tuple(self.points)
        self.settings = settings

    def _garment_points(self) -> torch.Tensor | None:
        clouds = [self.points[c] for c in GARMENT_PARTS if c in self.points]
        return torch.cat(clouds, dim=1) if clouds else None

    def terms(self, stage: str, state: ClothedState, generator: torch.Generator) -> dict[str, torch.Tensor]:
        s = self.settings
        out = state.body
        terms: dict[str, torch.Tensor] = {}
        if "body" in self.points:
            surface = surface_samples(out.vertices, state.body_faces, s.body_samples, generator)
            terms["body"] = directed_distance(self.points["body"], surface)[0]
        clothes = self._garment_points()
        if clothes is not None and s.inside_weight > 0:
            terms["inside"] = s.inside_weight * depth_inside(clothes, out.vertices, out.normals).mean()
        if clothes is not None and stage == "body" and s.clothes_weight > 0:
            surface = surface_samples(out.vertices, state.body_faces, s.body_samples, generator)
            terms["clothes"] = s.clothes_weight * directed_distance(clothes, surface)[0]
        for category, draped in state.garments.items():
            if category in self.points:
                samples = surface_samples(draped, state.faces[category], s.samples, generator)
                terms[category] = chamfer(samples, self.points[category], s.observed_radius)[0]
        return terms

    def final_metrics(self, state: ClothedState, generator: torch.Generator) -> dict[str, float]:
        """Chamfer per part in mm: garments bidirectional, the body from its scan points (dense samples)."""
        out = state.body
        metrics: dict[str, float] = {}
        with torch.no_grad():
            if "body" in self.points:
                surface = surface_samples(out.vertices, state.body_faces, 100_000, generator)
                metrics["chamfer_body_mm"] = 1000 * float(directed_distance(self.points["body"], surface)[0])
            for category, draped in state.garments.items():
                if category in self.points:
                    samples = surface_samples(draped, state.faces[category], 50_000, generator)
                    metrics[f"chamfer_{category}_mm"] = 1000 * float(chamfer(samples, self.points[category])[0])
        return metrics


# ------------------------------------------------------------------------------------------------
# The optimisation (a Trainer of the one training loop)
# ------------------------------------------------------------------------------------------------


class ClothedFitter:
    """Two stages of Adam on :class:`FitParameters` against an :class:`Objective`.

    Epochs ``1 .. settings.body_epochs`` fit the body (the codes get no gradient and the garments
    are not even draped); later epochs fit everything, re-meshing every ``remesh_every`` steps.
    Each epoch's record holds the mean of every loss term and ``stage`` (0 body, 1 garments).
    """

    def __init__(self, params: FitParameters, clothed: ClothedBody, objective: Objective, settings: FitSettings,
                 device: torch.device) -> None:
        self.model, self.clothed, self.objective, self.settings = params, clothed, objective, settings
        self.optimizer = torch.optim.Adam(params.parameters(), lr=settings.lr)
        self.scheduler = None
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.rng = None
        self.steps_per_epoch = settings.steps_per_epoch
        self.device = device
        self._since_remesh = 0
        params.keep_step_losses(settings.body_steps + settings.garment_steps)
        self.start_codes = {c: z.detach().clone() for c, z in params.codes.items()}

    def stage(self, epoch: int) -> str:
        return "body" if epoch <= self.settings.body_epochs else "garments"

    def _stage_steps(self, epoch: int) -> int:
        s = self.settings
        if epoch <= s.body_epochs:
            return min(s.steps_per_epoch, s.body_steps - (epoch - 1) * s.steps_per_epoch)
        return min(s.steps_per_epoch, s.garment_steps - (epoch - 1 - s.body_epochs) * s.steps_per_epoch)

    def prior_terms(self, stage: str) -> dict[str, torch.Tensor]:
        from nrtool.body.pose_prior import pose_prior

        s = self.settings
        terms = {"pose_prior": s.pose_weight * pose_prior(self.model.pose[None], s.pose_l2)[0]}
        if self.model.betas.requires_grad and s.beta_weight > 0:
            terms["beta_prior"] = s.beta_weight * (self.model.betas**2).sum()
        if s.code_weight > 0 and stage == "garments":
            terms["code_prior"] = s.code_weight * sum(((z - self.start_codes[c]) ** 2).sum()
                                                      for c, z in self.model.codes.items())
        return terms

    def step(self, stage: str) -> dict[str, float]:
        garments = stage == "garments" and bool(self.clothed.chains)
        if garments and (self._since_remesh >= self.settings.remesh_every or
                         any(c.surface.mesh is None for c in self.clothed.chains.values())):
            self.clothed.remesh(self.model)
            self._since_remesh = 0
        self.optimizer.zero_grad(set_to_none=True)
        state = self.clothed.evaluate(self.model, with_garments=garments)
        terms = {**self.objective.terms(stage, state, self.generator), **self.prior_terms(stage)}
        loss = sum(terms.values())
        if not bool(torch.isfinite(loss)):
            raise NrtoolError(f"the fit diverged at the {stage} stage (loss {float(loss)}): lower --lr")
        loss.backward()
        if not garments:
            for code in self.model.codes.values():
                code.grad = None
        self.optimizer.step()
        self._since_remesh += 1
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        stage = self.stage(epoch)
        sums: dict[str, float] = {}
        steps = 0
        first = sum(max(self._stage_steps(e), 0) for e in range(1, epoch))  # this epoch's first step
        for _ in range(max(self._stage_steps(epoch), 0)):
            record = self.step(stage)
            self.model.step_losses[first + steps] = record["loss"]
            for key, value in record.items():
                sums[key] = sums.get(key, 0.0) + value
            steps += 1
            advance()
            if out_of_time():
                break
        record = {k: v / max(steps, 1) for k, v in sums.items()}
        return {"steps": steps, "stage": 0.0 if stage == "body" else 1.0, **record}

    def validate(self, epoch: int) -> dict[str, float]:
        return {}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return None  # the last epoch is the fit


@dataclass
class FitOutcome:
    """The end of a fit: the variables, the meshes and what was measured."""

    params: dict[str, Any]  # betas, pose, trans, codes (numpy)
    body_vertices: np.ndarray  # (Vb, 3)
    body_faces: np.ndarray
    joints: np.ndarray  # (24, 3)
    garments: dict[str, np.ndarray]  # category -> (V, 3) draped
    canonical: dict[str, np.ndarray]  # category -> (V, 3) in the canonical frame
    faces: dict[str, np.ndarray]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    seconds: float
    resumed_from_epoch: int | None
    stopped_by_time_limit: bool
    remeshes: int = 0
    refined: dict[str, np.ndarray] | None = None
    refine_metrics: dict[str, dict[str, float]] | None = None
    run: Any = field(default=None, repr=False)  # the TrainingRun: finish it once the outputs are written
    state: Any = field(default=None, repr=False)  # the ClothedState at the fitted values (meshed afresh)


def final_state(clothed: ClothedBody, params: FitParameters) -> ClothedState:
    """The chain at the fitted values, meshed afresh (no first-order motion left)."""
    with torch.no_grad():
        if clothed.chains:
            clothed.remesh(params)
        return clothed.evaluate(params, with_garments=True)


def rest_fitting_pose() -> np.ndarray:
    """``(72,)`` where the body fit starts: arms down along the body (an A-pose), not SMPL's T-pose,
    whose outstretched arms sit far from a scanned person's and lead the Chamfer astray."""
    from nrtool.body.body_model import SMPL_JOINT_NAMES

    pose = np.zeros(72)
    pose[3 * SMPL_JOINT_NAMES.index("left_shoulder") + 2] = -1.2
    pose[3 * SMPL_JOINT_NAMES.index("right_shoulder") + 2] = 1.2
    return pose


def initial_translation(body: Any, betas: np.ndarray, pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The translation that puts the posed body's vertex centroid on the observed points' centroid."""
    with torch.no_grad():
        out = body.forward(torch.as_tensor(pose, dtype=torch.float32)[None],
                           torch.as_tensor(betas[: body.num_betas], dtype=torch.float32)[None] if body.num_betas else None)
    return np.asarray(points, dtype=np.float64).mean(0) - out.vertices[0].cpu().numpy().mean(0)


def run_fit(clothed: ClothedBody, params: FitParameters, objective: Objective, settings: FitSettings,
            device: torch.device, out: Any = None, fingerprint: dict[str, Any] | None = None, progress: Any = None,
            restart: bool = False, time_limit: float | None = None, description: str = "fitting") -> FitOutcome:
    """Both stages through :func:`nrtool.training.run_training` (``out``: where ``OUT.partial`` lives;
    None keeps nothing on disk), then the chain at the fitted values, meshed afresh."""
    from nrtool.training import run_training

    params.to(device)
    fitter = ClothedFitter(params, clothed, objective, settings, device)
    run = run_training(fitter, out, "fit", fingerprint or {}, settings.loop(time_limit), progress, restart, description)
    params.load_state_dict(run.best_state)
    state = final_state(clothed, params)
    metrics = objective.final_metrics(state, torch.Generator().manual_seed(settings.seed + 1))
    outcome = FitOutcome(
        params=params.numpy(), body_vertices=state.body.vertices[0].cpu().numpy().astype(np.float64),
        body_faces=np.asarray(clothed.body.faces), joints=state.body.joints[0].cpu().numpy().astype(np.float64),
        garments={c: v[0].cpu().numpy().astype(np.float64) for c, v in state.garments.items()},
        canonical={c: v.cpu().numpy().astype(np.float64) for c, v in state.canonical.items()},
        faces={c: f.cpu().numpy() for c, f in state.faces.items()}, metrics=metrics, history=run.history,
        seconds=run.seconds, resumed_from_epoch=run.resumed_from_epoch, stopped_by_time_limit=run.stopped_by_time_limit,
        remeshes=sum(c.remeshes for c in clothed.chains.values()), run=run, state=state)
    return outcome


# ------------------------------------------------------------------------------------------------
# Post-refinement (App. A.2.3, Eq. A.2-A.3)
# ------------------------------------------------------------------------------------------------


class GarmentOffsets(nn.Module):
    """``Δ_G``: per-vertex offsets of each draped garment, starting at zero."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__()
        self.offsets = nn.ParameterDict({c: nn.Parameter(torch.zeros(n, 3)) for c, n in counts.items()})


class RefineTrainer:
    """Adam on :class:`GarmentOffsets` against Eq. A.3: strain + bending + gravity + collision of
    ``G_D + Δ_G`` (the draping energies, rest state the fitted canonical garment) plus
    ``chamfer_weight`` × the Chamfer to the garment's scan points (Eq. A.2 when there are none)."""

    def __init__(self, outcome: FitOutcome, body_out: Any, targets: dict[str, torch.Tensor], settings: FitSettings,
                 material: Any, device: torch.device) -> None:
        from nrtool.drape.physics import ClothRest

        # One offset per welded vertex: MeshUDF's near-duplicate vertices are one cloth point, and
        # the needles between them have no rest shape -- as free points, Adam's first step
        # (~lr per coordinate) inverts them and the strain explodes (1.3 J -> 587,000 J seen).
        self.groups: dict[str, torch.Tensor] = {}
        self.draped, self.faces, self.rest = {}, {}, {}
        for c, draped in outcome.garments.items():
            groups, faces = weld_fitted_garment(outcome.canonical[c], outcome.faces[c])
            self.groups[c] = torch.as_tensor(groups, dtype=torch.int64, device=device)
            self.draped[c] = group_means(torch.as_tensor(draped, dtype=torch.float32, device=device), self.groups[c])[None]
            self.faces[c] = torch.as_tensor(faces, dtype=torch.int64, device=device)
            canonical = group_means(torch.as_tensor(outcome.canonical[c], dtype=torch.float32, device=device),
                                    self.groups[c])
            self.rest[c] = ClothRest.from_mesh(canonical, self.faces[c], material)
        self.model = GarmentOffsets({c: v.shape[1] for c, v in self.draped.items()}).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.refine_lr)
        self.scheduler, self.rng = None, None
        self.generator = torch.Generator().manual_seed(settings.seed + 2)
        self.steps_per_epoch = settings.steps_per_epoch
        self.settings, self.material, self.body_out, self.targets = settings, material, body_out, targets
        self.unwelded = {c: torch.as_tensor(v, dtype=torch.float32, device=device) for c, v in outcome.garments.items()}
        self.floor = body_out.vertices[..., 1].min(dim=1).values

    def terms(self, category: str, x: torch.Tensor, samples: int | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        from nrtool.drape.physics import (
            bending_energy,
            collision_energy,
            gravity_energy,
            strain_energy,
        )

        rest, out = self.rest[category], self.body_out
        terms = {"strain": strain_energy(x, rest, self.material)[0], "bending": bending_energy(x, rest, self.material)[0],
                 "gravity": gravity_energy(x, rest, self.material, self.floor)[0],
                 "collision": collision_energy(x, out.vertices, out.normals, self.material, rest.faces)[0]}
        if category in self.targets:
            surface = surface_samples(x, self.faces[category], samples or self.settings.samples,
                                      generator or self.generator)
            terms["chamfer"] = chamfer(surface, self.targets[category], self.settings.observed_radius)[0]
        return terms

    def loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        total = torch.zeros((), device=self.floor.device)
        record: dict[str, float] = {}
        for category, draped in self.draped.items():
            terms = self.terms(category, draped + self.model.offsets[category][None])
            weighted = {k: (self.settings.refine_chamfer_weight * v if k == "chamfer" else v) for k, v in terms.items()}
            total = total + sum(weighted.values())
            record.update({f"{category}_{k}": float(v.detach()) for k, v in weighted.items()})
        return total, record

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        steps = min(self.steps_per_epoch, self.settings.refine_steps - (epoch - 1) * self.steps_per_epoch)
        sums: dict[str, float] = {}
        done = 0
        for _ in range(max(steps, 0)):
            self.optimizer.zero_grad(set_to_none=True)
            loss, record = self.loss()
            if not bool(torch.isfinite(loss)):
                raise NrtoolError(f"the post-refinement diverged (loss {float(loss)}): lower --refine-lr")
            loss.backward()
            self.optimizer.step()
            for key, value in {"loss": float(loss.detach()), **record}.items():
                sums[key] = sums.get(key, 0.0) + value
            done += 1
            advance()
            if out_of_time():
                break
        return {"steps": done, **{k: v / max(done, 1) for k, v in sums.items()}}

    def validate(self, epoch: int) -> dict[str, float]:
        return {}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return None

    def refined(self, category: str) -> torch.Tensor:
        """``(V, 3)`` the draped garment plus its welded vertex's offset, on the fit's own mesh."""
        with torch.no_grad():
            return self.unwelded[category] + self.model.offsets[category][self.groups[category]]

    def measure(self) -> dict[str, dict[str, float]]:
        """Each garment's energies (J) and Chamfer to its scan points (mm) at the current offsets."""
        generator = torch.Generator().manual_seed(self.settings.seed + 3)  # the same samples before and after
        result = {}
        with torch.no_grad():
            for category, draped in self.draped.items():
                terms = self.terms(category, draped + self.model.offsets[category][None], 50_000, generator)
                result[category] = {(f"{k}_mm" if k == "chamfer" else f"{k}_j"): float(v) * (1000 if k == "chamfer" else 1)
                                    for k, v in terms.items()}
        return result


#: Edges of the fitted garment shorter than this fraction of its median edge are welded before
#: the post-refinement (see :class:`RefineTrainer`).
WELD_FRACTION = 0.02


def weld_fitted_garment(canonical: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(V,)`` welded vertex of each vertex and the welded ``(F', 3)`` faces of a fitted garment."""
    from nrtool.geometry.topology import collapse_short_edges

    canonical, faces = np.asarray(canonical, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    lengths = np.linalg.norm(canonical[edges[:, 1]] - canonical[edges[:, 0]], axis=1)
    positive = lengths[lengths > 0]
    median = float(np.median(positive)) if len(positive) else 0.0
    return collapse_short_edges(canonical, faces, WELD_FRACTION * median)


def group_means(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """``(G, 3)`` mean of the ``(V, 3)`` values of each group (``groups``: ``(V,)`` in 0..G-1)."""
    count = int(groups.max()) + 1
    sums = torch.zeros((count, values.shape[1]), dtype=values.dtype, device=values.device).index_add_(0, groups, values)
    sizes = torch.bincount(groups, minlength=count).to(values.dtype)
    return sums / sizes[:, None]


def refine_garments(outcome: FitOutcome, body_out: Any, targets: dict[str, np.ndarray], settings: FitSettings,
                    device: torch.device, out: Any = None, fingerprint: dict[str, Any] | None = None,
                    progress: Any = None, restart: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any], Any]:
    """Post-refine the fitted garments; returns (refined vertices, ``{"before", "after"}`` measures, the run)."""
    from nrtool.drape.physics import Material
    from nrtool.training import LoopSettings, run_training

    tensors = {c: torch.as_tensor(np.asarray(p, dtype=np.float32), device=device)[None] for c, p in targets.items()
               if c in outcome.garments and len(p)}
    trainer = RefineTrainer(outcome, body_out, tensors, settings, Material(), device)
    before = trainer.measure()
    epochs = max(1, math.ceil(settings.refine_steps / settings.steps_per_epoch))
    run = run_training(trainer, out, "refine", fingerprint or {}, LoopSettings(epochs=epochs, val_every=epochs),
                       progress, restart, "post-refinement")
    trainer.model.load_state_dict(run.best_state)
    after = trainer.measure()
    refined = {c: trainer.refined(c).cpu().numpy().astype(np.float64) for c in trainer.draped}
    return refined, {"before": before, "after": after, "history": run.history}, run
