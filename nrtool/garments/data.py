"""Garment meshes in the normalised frame, and the supervision the network is trained with.

Inputs are garment mesh files (``.obj``/``.ply``/...) or folders of them; a folder written by
``nrtool synth garments`` (``garments.json``) also gives each garment's category, type,
attributes and normalisation. Every garment is mapped into the normalised frame
``x_n = (x - centre) / scale`` (tops in the upper, bottoms in the lower half of ``[-1, 1]^3``);
decoded meshes are mapped back with the same transform.

Supervision (App. A.1.3): per garment and step, 30 % of the queries on the surface, 30 % on the
surface plus Gaussian noise of variance ``eps``, 30 % with variance ``3 eps`` and 10 % uniform:
half in the garment's bounding box (padded by ``delta``), half in the whole ``[-1, 1]^3`` cube
(a deviation from the thesis' "in the garment's box": without it the decoder never learns that
the rest of the cube is empty, and full-grid decoding meets spurious surfaces); labels are the exact unsigned distances to the mesh and their
gradients ``(q - closest) / d`` (Open3D ray casting on a CPU, exact brute force in PyTorch on a
GPU), undefined (masked) on the surface.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import InputFileError, NrtoolError

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb")


@dataclass
class GarmentMesh:
    """One garment in the normalised frame, with what is known about it."""

    name: str
    source: str
    category: str  # "top" | "bottom" | "unknown"
    type: str
    vertices: np.ndarray  # (V, 3) normalised frame
    faces: np.ndarray  # (F, 3)
    attributes: dict[str, Any] = field(default_factory=dict)
    centre: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0

    def to_source(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) * self.scale + self.centre


def bbox_normalisation(vertices: np.ndarray) -> dict[str, Any]:
    """Fallback for a mesh without a recorded normalisation: its box centre, half-extent / 0.9."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    return {"centre": ((lo + hi) / 2).tolist(), "scale": float(max((hi - lo).max() / 2 / 0.9, 1e-9))}


def load_garment_mesh(path: str | os.PathLike[str], normalise: dict[str, Any] | None = None, override: bool = False,
                      check_bounds: bool = True) -> GarmentMesh:
    """A garment file, normalised by its index entry, else by ``normalise``, else by its box.

    ``override``: ``normalise`` wins over the index entry (a stored code's own transform).
    ``check_bounds``: refuse a garment reaching outside ``[-1, 1]^3`` (off: the caller checks,
    after looking at where the garment sits).
    """
    from nrtool.garments.files import load_garment

    garment = load_garment(path)  # a mesh with faces and a surface (load_shape checks both)
    norm = (normalise if override else None) or garment.normalise or normalise or bbox_normalisation(garment.vertices)
    centre = np.asarray(norm["centre"], dtype=np.float64)
    scale = float(norm["scale"])
    vertices = (garment.vertices - centre) / scale
    result = GarmentMesh(garment.name, str(path), garment.category, garment.type, vertices,
                         garment.faces.astype(np.int64), dict(garment.attributes), centre, scale)
    if check_bounds:
        check_in_cube(result)
    return result


def check_in_cube(garment: GarmentMesh, hint: str = "") -> None:
    """Refuse a garment that reaches outside ``[-1, 1]^3`` (the decoder's domain); ``hint`` says why."""
    reach = float(np.abs(garment.vertices).max())
    if reach > 1.0:
        raise InputFileError(garment.source, f"garment reaches outside [-1, 1]^3 after normalisation (max |x| = {reach:.2f}); "
                             + (hint or "its scale differs from the model's garments"))


def discover_garment_files(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Mesh files from files and folders (a ``garments.json`` folder: the files it lists)."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise InputFileError(p, "no such file or folder")
        if p.is_dir():
            index = p / "garments.json"
            if index.is_file():
                try:
                    entries = json.loads(index.read_text())["garments"]
                    files += [p / entry["file"] for entry in entries]
                except (ValueError, KeyError, TypeError) as exc:
                    raise InputFileError(index, f"not a garments index ({exc})") from exc
            else:
                found = sorted(f for f in p.rglob("*") if f.suffix.lower() in MESH_SUFFIXES)
                if not found:
                    raise InputFileError(p, f"folder holds no garment meshes ({', '.join(MESH_SUFFIXES)})")
                files += found
        else:
            files.append(p)
    return files


def load_garments(inputs: Sequence[str | os.PathLike[str]], category: str | None = None,
                  normalise: dict[str, Any] | None = None, check_bounds: bool = True) -> list[GarmentMesh]:
    """Every garment of ``inputs``; with ``category``, only those of it (unknown ones are kept)."""
    garments = [load_garment_mesh(f, normalise, check_bounds=check_bounds) for f in discover_garment_files(inputs)]
    if category is not None:
        garments = [g for g in garments if g.category in (category, "unknown")]
    names = [g.name for g in garments]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise NrtoolError(f"garment names must be unique, found {', '.join(duplicated[:5])} more than once")
    return garments


def sample_surface_points(garment: GarmentMesh, count: int, rng: np.random.Generator) -> np.ndarray:
    from nrtool.geometry.metrics import sample_surface

    return sample_surface(garment.vertices, garment.faces, count, rng).astype(np.float32)


class Supervision:
    """Queries and exact UDF labels for a list of garments.

    On a CPU the labels come from Open3D ray-casting scenes (a BVH per garment); on a CUDA
    device from :class:`nrtool.geometry.closest_point.TriangleMesh` (brute force on the GPU), so
    a GPU training loop does not wait on CPU ray casting and needs no Open3D.
    """

    def __init__(self, garments: Sequence[GarmentMesh], eps: float = 0.003, pad: float = 0.1,
                 device: torch.device | str | None = None) -> None:
        self.pad = pad
        self.garments = list(garments)
        self.eps = eps
        self.scenes: list[Any] = []
        o3d = None
        if device is None or torch.device(device).type != "cuda":
            try:
                import open3d as o3d
            except ImportError:  # a CPU machine without Open3D: same labels, slower
                device = device or "cpu"
        if o3d is None:
            from nrtool.geometry.closest_point import TriangleMesh

            self.scenes = [TriangleMesh(g.vertices, g.faces, device) for g in self.garments]
            self._closest = self._closest_torch
        else:
            self._o3d = o3d
            for g in self.garments:
                scene = o3d.t.geometry.RaycastingScene()
                scene.add_triangles(o3d.core.Tensor(g.vertices.astype(np.float32)), o3d.core.Tensor(g.faces.astype(np.uint32)))
                self.scenes.append(scene)
            self._closest = self._closest_open3d

    def _closest_open3d(self, index: int, queries: np.ndarray) -> np.ndarray:
        return self.scenes[index].compute_closest_points(self._o3d.core.Tensor(queries.astype(np.float32)))["points"].numpy()

    def _closest_torch(self, index: int, queries: np.ndarray) -> np.ndarray:
        closest, _ = self.scenes[index].closest_points(torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)))
        return closest.cpu().numpy()

    def labels(self, index: int, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unsigned distances (M,) and unit gradients (M, 3) (zero where the distance is ~0)."""
        closest = self._closest(index, queries)
        diff = queries - closest
        dist = np.linalg.norm(diff, axis=1)
        grad = np.where(dist[:, None] > 1e-5, diff / np.maximum(dist[:, None], 1e-12), 0.0)
        return dist.astype(np.float32), grad.astype(np.float32)

    def sample(self, index: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Queries (M, 3), distances (M,), gradients (M, 3), gradient mask (M,) bool."""
        garment = self.garments[index]
        n_surface = n_near = n_far = int(0.3 * count)
        n_uniform = count - n_surface - n_near - n_far
        surface = sample_surface_points(garment, n_surface + n_near + n_far, rng)
        noise = np.concatenate([np.zeros((n_surface, 3)), rng.normal(0, np.sqrt(self.eps), (n_near, 3)),
                                rng.normal(0, np.sqrt(3 * self.eps), (n_far, 3))])
        # Half of the uniform queries in the garment's box (padded by the clip distance), half
        # in the whole normalised cube: without the latter the decoder is never told that the
        # rest of the cube is empty, and a full-grid decode meets spurious surfaces there.
        lo, hi = garment.vertices.min(axis=0) - self.pad, garment.vertices.max(axis=0) + self.pad
        n_box = n_uniform // 2
        uniform = np.concatenate([rng.uniform(lo, hi, (n_box, 3)), rng.uniform(-1.0, 1.0, (n_uniform - n_box, 3))])
        queries = np.clip(np.concatenate([surface + noise, uniform]), -1.0, 1.0).astype(np.float32)
        dist, grad = self.labels(index, queries)
        dist[:n_surface] = 0.0  # on the surface by construction
        mask = np.ones(count, dtype=bool)
        mask[:n_surface] = False
        mask &= dist > 1e-5
        return queries, dist, grad, mask
