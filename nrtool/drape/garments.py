"""The garments a draping model works on: codes decoded into canonical meshes, and what is
computed once per garment (its rest state for the physics, its skinning weights, its pins).

Meshes are decoded by the garment network the codes came from (MeshUDF) and put back into the
body's frame with each code's transform (``x * scale + centre``), so they overlay the canonical
body the skinning field was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nrtool.errors import NrtoolError
from nrtool.progress import Progress, SilentProgress


@dataclass
class GarmentTemplate:
    """One garment in the canonical frame (metres, the rest body's frame)."""

    name: str
    code: np.ndarray  # (C,)
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # per device: tensors computed once


def decode_templates(garment_model: Any, codes: np.ndarray, names: list[str], centres: np.ndarray, scales: np.ndarray,
                     resolution: int, progress: Progress | None = None) -> tuple[list[GarmentTemplate], list[str]]:
    """Decode ``codes (N, C)`` into canonical meshes; returns the templates and notes (codes whose
    field had no surface at this resolution are left out, named in a note)."""
    from nrtool.garments.meshing import decode_mesh

    progress = progress or SilentProgress()
    templates, notes = [], []
    with progress.task("decoding garments", len(codes), "garments") as advance:
        for row, name in enumerate(names):
            vertices, faces = decode_mesh(garment_model, codes[row], resolution)
            advance()
            if len(faces) == 0:
                notes.append(f"{name}: its code decodes to no surface at {resolution}^3; left out")
                continue
            canonical = vertices.astype(np.float64) * float(scales[row]) + np.asarray(centres[row], dtype=np.float64)
            templates.append(GarmentTemplate(name, np.asarray(codes[row], dtype=np.float32), canonical, faces.astype(np.int64)))
    if not templates:
        raise NrtoolError(f"none of the {len(codes)} codes decodes to a garment surface at {resolution}^3")
    return templates, notes


def code_transforms(codes: Any, checkpoint: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3)`` centres and ``(N,)`` scales that put each decoded code into the body frame:
    the code's own (a ``garment-codes`` artifact records it), else the garment model's common
    training normalisation; the identity when neither exists."""
    from nrtool.garments.model import training_normalisation

    centre, scale = training_normalisation(checkpoint)
    centres, scales = [], []
    for item in codes.items:
        if item.center is not None and item.scale is not None and codes.category in ("top", "bottom"):
            centres.append(np.asarray(item.center, dtype=np.float64))
            scales.append(float(item.scale))
        else:
            centres.append(centre)
            scales.append(scale)
    return np.stack(centres), np.asarray(scales)


def template_tensors(template: GarmentTemplate, skinning: Any, material: Any, body: Any, pins: bool,
                     device: torch.device) -> dict[str, Any]:
    """What does not change while a garment is draped, computed once per garment and device:
    points, faces, rest state (physics), skinning weights ``W(x)``, waist pins (bottoms)."""
    key = f"{device}:{pins}"
    if key not in template.cache:
        from nrtool.drape.physics import ClothRest, waist_pins

        points = torch.as_tensor(template.vertices, dtype=torch.float32, device=device)
        faces = torch.as_tensor(template.faces, dtype=torch.int64, device=device)
        with torch.no_grad():
            weights = skinning.skinning_weights(points)
        entry = {"points": points, "faces": faces, "rest": ClothRest.from_mesh(points, faces, material),
                 "weights": weights, "code": torch.as_tensor(template.code, device=device)}
        if pins:
            entry["pinned"] = torch.as_tensor(waist_pins(template.vertices, body), device=device)
        template.cache[key] = entry
    return template.cache[key]
