"""Draping a motion: garments worn by a moving body, frame by frame (``nrtool drape``).

What does not change within a sequence is done once: the garment mesh (decoded from its code),
its skinning weights ``W(x)``, its displacement matrix ``M(x, z)``, the shape displacement
``Δx(x, β)`` of the sequence's body shape, and the intersection solver's matrix. Per frame only
the body (SMPL), the body embedding ``B(θ, β)``, one product and the skinning run, in batches
of frames. The nearest-vertex baseline (``baseline=True``) drapes the same garments by the
skinning weights and shape displacement of each vertex's nearest body vertex, with no learnt
displacement, on the same frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nrtool.drape.garments import GarmentTemplate
from nrtool.drape.model import DrapingModel, pad_betas, posed_bodies
from nrtool.errors import NrtoolError

#: Frames draped per batch (memory: about frames x vertices x 24 x 16 floats for the skinning).
FRAME_BATCH = 16


@dataclass
class DrapedSequence:
    """Per-frame results of one sequence (numpy)."""

    body_vertices: np.ndarray  # (T, Vb, 3)
    body_faces: np.ndarray  # (Fb, 3)
    garments: dict[str, np.ndarray]  # "top"/"bottom" -> (T, V, 3)
    faces: dict[str, np.ndarray]  # "top"/"bottom" -> (F, 3)
    metrics: dict[str, np.ndarray]  # name -> (T,)
    baseline: dict[str, np.ndarray] | None = None  # same keys as metrics
    seconds_per_frame: float = 0.0
    setup_seconds: float = 0.0


class SequenceDraper:
    """Drapes fixed garments on one body shape over any number of frames (caches what it can).

    ``models``: the draping models by kind (``top``, ``bottom``, optionally ``intersection``);
    ``templates``: the garments by category, canonical meshes; ``skinning``: the skinning
    field each category's model was trained with (``{category: field}``; one field: all of
    them); ``betas (10,)`` the body shape of the whole sequence.
    """

    def __init__(self, models: dict[str, DrapingModel], templates: dict[str, GarmentTemplate],
                 skinning: Any | dict[str, Any], body: Any, betas: np.ndarray | None, material: Any,
                 device: torch.device, cache: bool = True) -> None:
        from nrtool.drape.garments import template_tensors

        started = time.perf_counter()
        self.models, self.templates, self.body = models, templates, body
        self.skinning = skinning if isinstance(skinning, dict) else {category: skinning for category in templates}
        self.material, self.device, self.cache = material, device, cache
        self.betas = pad_betas(betas, 1, device)
        self.entries: dict[str, dict[str, Any]] = {}
        with torch.no_grad():
            for category, template in templates.items():
                skinning = self.skinning[category]
                entry = dict(template_tensors(template, skinning, material, body, False, device))
                points = entry["points"]
                entry["shape_dx"] = skinning.shape_displacement(points[None], self.betas)[0]
                if cache:
                    entry["matrix"] = models[category].field.garment_matrix(points, entry["code"])
                self.entries[category] = entry
            if "intersection" in models and {"top", "bottom"} <= set(templates):
                bottom = self.entries["bottom"]
                both = torch.cat([bottom["code"], self.entries["top"]["code"]])
                bottom["is_code"] = both
                if cache:
                    bottom["is_matrix"] = models["intersection"].field.garment_matrix(bottom["points"], both)
        self.setup_seconds = time.perf_counter() - started

    def _displacement(self, category: str, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        entry = self.entries[category]
        field = self.models[category].field
        matrix = entry["matrix"] if self.cache else field.garment_matrix(entry["points"], entry["code"])
        out = field.combine(matrix, field.body_embedding(poses, betas))
        if "is_code" in entry:
            solver = self.models["intersection"].field
            is_matrix = entry["is_matrix"] if self.cache else solver.garment_matrix(entry["points"], entry["is_code"])
            out = out + solver.combine(is_matrix, solver.body_embedding(poses, betas))
        return out

    def drape(self, poses: np.ndarray, trans: np.ndarray | None = None) -> tuple[dict[str, torch.Tensor], Any]:
        """One batch of frames: ``poses (B, 72)``, ``trans (B, 3)`` -> ({category: (B, V, 3)}, body output)."""
        from nrtool.drape.skinning import linear_blend_skinning

        poses_t = torch.as_tensor(poses, dtype=torch.float32, device=self.device)
        batch = len(poses_t)
        betas = self.betas.expand(batch, -1)
        trans_t = None if trans is None else torch.as_tensor(trans, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            out = posed_bodies(self.body, poses_t, betas, trans_t)
            posed = {}
            for category, entry in self.entries.items():
                canonical = entry["points"][None] + entry["shape_dx"][None] + self._displacement(category, poses_t, betas)
                posed[category] = linear_blend_skinning(canonical, entry["weights"], out.transforms)
        return posed, out

    def drape_baseline(self, poses: np.ndarray, trans: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The nearest-vertex baseline on the same frames."""
        from nrtool.drape.skinning import linear_blend_skinning, nearest_vertex_skinning

        poses_t = torch.as_tensor(poses, dtype=torch.float32, device=self.device)
        batch = len(poses_t)
        trans_t = None if trans is None else torch.as_tensor(trans, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            out = self.body.forward(poses_t, self.betas.expand(batch, -1)[:, : self.body.num_betas]
                                    if self.body.num_betas else None, trans_t)
            posed = {}
            for category, entry in self.entries.items():
                if "nearest" not in entry:
                    entry["nearest"] = nearest_vertex_skinning(entry["points"], self.body, self.betas)
                weights, shape_dx = entry["nearest"]
                posed[category] = linear_blend_skinning(entry["points"][None] + shape_dx, weights, out.transforms)
        return posed

    def frame_metrics(self, posed: dict[str, torch.Tensor], out: Any) -> dict[str, np.ndarray]:
        """Per frame: B2G of each garment, G2G (both garments), strain/bending/gravity of each."""
        from nrtool.drape.metrics import body_to_garment, garment_to_garment
        from nrtool.drape.physics import bending_energy, gravity_energy, strain_energy

        metrics: dict[str, np.ndarray] = {}
        floor = out.vertices[..., 1].min(dim=1).values
        for category, vertices in posed.items():
            entry = self.entries[category]
            rest = entry["rest"]
            metrics[f"b2g_{category}"] = body_to_garment(vertices, entry["faces"], out.vertices, out.normals).cpu().numpy()
            metrics[f"strain_{category}"] = strain_energy(vertices, rest, self.material).cpu().numpy()
            metrics[f"bending_{category}"] = bending_energy(vertices, rest, self.material).cpu().numpy()
            metrics[f"gravity_{category}"] = gravity_energy(vertices, rest, self.material, floor).cpu().numpy()
        if {"top", "bottom"} <= set(posed):
            metrics["g2g"] = garment_to_garment(posed["bottom"], self.entries["bottom"]["faces"], posed["top"],
                                                self.entries["top"]["faces"], out.vertices, out.normals).cpu().numpy()
        return metrics


def _per_frame(timings: list[tuple[float, int]]) -> float:
    """Seconds per frame of draping, leaving out the first batch when there are more (it pays
    for one-time start-up: allocator, the body model's first forward pass)."""
    kept = timings[1:] if len(timings) > 1 else timings
    return sum(t for t, _ in kept) / max(sum(n for _, n in kept), 1)


def drape_motion(draper: SequenceDraper, poses: np.ndarray, trans: np.ndarray | None, baseline: bool = False,
                 advance: Any = None) -> DrapedSequence:
    """Drape every frame of ``poses (T, 72)`` (``trans (T, 3)``) in batches of :data:`FRAME_BATCH`."""
    if len(poses) == 0:
        raise NrtoolError("no frames to drape")
    body_frames: list[np.ndarray] = []
    garments: dict[str, list[np.ndarray]] = {c: [] for c in draper.entries}
    metrics: dict[str, list[np.ndarray]] = {}
    base_metrics: dict[str, list[np.ndarray]] = {}
    timings: list[tuple[float, int]] = []  # (seconds, frames) per batch
    for start in range(0, len(poses), FRAME_BATCH):
        stop = min(len(poses), start + FRAME_BATCH)
        t = None if trans is None else trans[start:stop]
        began = time.perf_counter()
        posed, out = draper.drape(poses[start:stop], t)
        timings.append((time.perf_counter() - began, stop - start))
        body_frames.append(out.vertices.cpu().numpy())
        for category, vertices in posed.items():
            garments[category].append(vertices.cpu().numpy())
        with torch.no_grad():
            for key, value in draper.frame_metrics(posed, out).items():
                metrics.setdefault(key, []).append(value)
            if baseline:
                base = draper.drape_baseline(poses[start:stop], t)
                for key, value in draper.frame_metrics(base, out).items():
                    base_metrics.setdefault(key, []).append(value)
        if advance is not None:
            advance(stop - start)
    return DrapedSequence(
        body_vertices=np.concatenate(body_frames),
        body_faces=np.asarray(draper.body.faces),
        garments={c: np.concatenate(v) for c, v in garments.items()},
        faces={c: draper.templates[c].faces for c in draper.entries},
        metrics={k: np.concatenate(v) for k, v in metrics.items()},
        baseline={k: np.concatenate(v) for k, v in base_metrics.items()} if baseline else None,
        seconds_per_frame=_per_frame(timings),
        setup_seconds=draper.setup_seconds,
    )
