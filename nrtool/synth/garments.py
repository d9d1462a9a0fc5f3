"""Procedural garments around a canonical body: open-surface tops and bottoms with attributes.

Stand-ins for CLOTH3D-style garment meshes (which are licensed and cannot ship). Each garment is
an *offset surface* of the body in its rest pose (zero pose, zero betas): the level set
``sdf_body(x) = looseness`` (marching cubes on Open3D's exact signed distance to the body mesh),
clipped by smooth cut fields into a garment shape:

- tops — ``tshirt`` (short sleeves), ``shirt`` (front opening), ``tank`` (no sleeves, armholes),
  ``longsleeve``; attributes ``sleeve_length`` (fraction of shoulder -> wrist, 0 for a tank),
  ``hem_length`` (0 = hem at the waist, 1 = at the crotch), ``neckline_depth`` (m, front drop
  below the back of the neck), ``front_open``, ``looseness`` (m);
- bottoms — ``trousers``, ``shorts``; attributes ``leg_length`` (fraction crotch -> ankle),
  ``waist_offset`` (m, waistband above spine1), ``looseness``.

Cuts are exact: a vertex on a cut lies on the cut field's zero set (edges are split, not
faces dropped), so a garment's boundaries are clean curves and e.g. the sleeve ends exactly at
``x = shoulder + sleeve_length * (wrist - shoulder)``. Every garment is an open mesh (it has
boundary loops), lies outside the body by at least about half its looseness, and keeps only
its largest connected piece.

Normalisation (DrapeNet, App. A.1.3): all garments share one scale ``s``; tops are centred on
``(0, crotch_y, z_body)`` and bottoms on ``(0, waist_max_y, z_body)``, so ``(x - centre) / s``
puts every top in the upper half of ``[-1, 1]^3`` (y >= 0) and every bottom in the lower half
(y <= 0). Meshes are written in body coordinates (metres, overlaying the body); ``garments.json``
lists each file with its category, type, attributes and ``normalise = {centre, scale}``.

Real garment meshes (``.obj``/``.ply``, e.g. a CLOTH3D export) load through the same reader,
:func:`nrtool.garments.files.load_garment`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.garments.files import INDEX_NAME, Garment
from nrtool.geometry.topology import boundary_edges
from nrtool.progress import Progress, SilentProgress

__all__ = [
    "TOP_TYPES",
    "BOTTOM_TYPES",
    "BodyFrame",
    "clip_mesh",
    "body_frame",
    "make_garment",
    "make_garments",
]

TOP_TYPES = ("tshirt", "shirt", "tank", "longsleeve")
BOTTOM_TYPES = ("trousers", "shorts")
PREVIEW_NAME = "preview.png"
_FRONT_GAP = 0.012  # width of a shirt's front opening (m)


# --------------------------------------------------------------------------------------------
# Mesh helpers
# --------------------------------------------------------------------------------------------


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used = np.unique(faces)
    remap = -np.ones(len(vertices), dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def _largest_component(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0:
        return vertices[:0], faces
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2)
    _, labels = connected_components(graph, directed=False)
    face_label = labels[faces[:, 0]]
    main = np.bincount(face_label).argmax()
    return _compact(vertices, faces[face_label == main])


def clip_mesh(vertices: np.ndarray, faces: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the part of a triangle mesh where the per-vertex field ``keep >= 0``.

    Faces crossing the zero set are split along it (the field is interpolated linearly on each
    edge), so the new boundary is a clean polyline on the zero set; new vertices are shared by
    the faces on both sides of an edge. Winding is preserved.

    Args:
        vertices: ``(V, 3)``; faces: ``(F, 3)``; keep: ``(V,)``.
    Returns:
        ``(V', 3)`` vertices and ``(F', 3)`` faces (unreferenced vertices removed).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    f = np.asarray(keep, dtype=np.float64).copy()
    f[np.abs(f) < 1e-9] = 1e-9  # no vertex exactly on the cut: every crossing is strict
    inside = f >= 0
    count = inside[faces].sum(axis=1)
    out_faces = [faces[count == 3]]
    new_points: list[np.ndarray] = []
    edge_index: dict[tuple[int, int], int] = {}
    base = len(vertices)

    def crossing(a: int, b: int) -> int:
        key = (a, b) if a < b else (b, a)
        if key not in edge_index:
            t = f[key[0]] / (f[key[0]] - f[key[1]])
            new_points.append(vertices[key[0]] + t * (vertices[key[1]] - vertices[key[0]]))
            edge_index[key] = base + len(new_points) - 1
        return edge_index[key]

    extra: list[tuple[int, int, int]] = []
    for face, n_in in zip(faces[(count == 1) | (count == 2)], count[(count == 1) | (count == 2)]):
        flags = inside[face]
        # Rotate the face (keeping its winding) so the odd-one-out vertex comes first.
        odd = int(np.argmax(flags)) if n_in == 1 else int(np.argmin(flags))
        a, b, c = (int(face[(odd + k) % 3]) for k in range(3))
        ab, ac = crossing(a, b), crossing(a, c)
        if n_in == 1:  # a inside
            extra.append((a, ab, ac))
        else:  # b, c inside, a outside
            extra.append((ab, b, c))
            extra.append((ab, c, ac))
    if extra:
        out_faces.append(np.array(extra, dtype=np.int64))
    all_vertices = np.vstack([vertices, np.array(new_points)]) if new_points else vertices
    return _compact(all_vertices, np.concatenate(out_faces))


# --------------------------------------------------------------------------------------------
# Body landmarks
# --------------------------------------------------------------------------------------------


@dataclass
class BodyFrame:
    """The canonical body and the landmarks garment cuts are placed by (metres, Y up)."""

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray  # (24, 3) SMPL order

    @property
    def crotch_y(self) -> float:
        return float(min(self.joints[1, 1], self.joints[2, 1]) - 0.06)

    @property
    def waist_y(self) -> float:
        return float(self.joints[3, 1])

    @property
    def neck_y(self) -> float:
        return float(self.joints[12, 1] - 0.02)

    @property
    def shoulder_x(self) -> float:
        return float((self.joints[16, 0] - self.joints[17, 0]) / 2)

    @property
    def wrist_x(self) -> float:
        return float((self.joints[20, 0] - self.joints[21, 0]) / 2)

    @property
    def ankle_y(self) -> float:
        return float(max(self.joints[7, 1], self.joints[8, 1]))

    @property
    def z_centre(self) -> float:
        return float(self.joints[[0, 3, 6, 9, 12], 2].mean())

    def normalisation(self, category: str, max_looseness: float = 0.05) -> dict[str, Any]:
        """``{centre, scale}`` putting tops in the upper, bottoms in the lower half of [-1, 1]^3."""
        top_hi = float(self.vertices[np.abs(self.vertices[:, 0]) > 0.08, 1].max()) + max_looseness
        bottom_hi = self.waist_y + 0.06 + max_looseness
        scale = 1.02 * max(
            self.wrist_x + 0.1,
            top_hi - self.crotch_y,
            bottom_hi - (self.ankle_y - 0.1),
            float(np.abs(self.vertices[:, 2] - self.z_centre).max()) + max_looseness,
        )
        y = self.crotch_y if category == "top" else bottom_hi
        return {"centre": [0.0, float(y), self.z_centre], "scale": float(scale)}


def body_frame(body_model: str | os.PathLike[str], gender: str = "neutral") -> BodyFrame:
    """The rest-pose, mean-shape body of an SMPL model file (any SMPL-format file)."""
    import torch

    from nrtool.body.body_model import BodyModel

    model = BodyModel(body_model, gender=gender)
    with torch.no_grad():
        out = model.forward(np.zeros((1, 72)))
    return BodyFrame(out.vertices[0].numpy().astype(np.float64), model.faces, out.joints[0].numpy().astype(np.float64))


# --------------------------------------------------------------------------------------------
# Garments
# --------------------------------------------------------------------------------------------


class _Distance:
    """Signed distance to the body mesh (Open3D ray casting; positive outside)."""

    def __init__(self, frame: BodyFrame) -> None:
        import open3d as o3d

        self._o3d = o3d
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(
            o3d.core.Tensor(frame.vertices.astype(np.float32)), o3d.core.Tensor(frame.faces.astype(np.uint32))
        )

    def __call__(self, points: np.ndarray) -> np.ndarray:
        query = self._o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32))
        return self.scene.compute_signed_distance(query).numpy().astype(np.float64)


def _sample_attributes(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    u = rng.uniform
    if kind == "tshirt":
        return {"sleeve_length": u(0.15, 0.45), "hem_length": u(0.3, 0.9), "neckline_depth": u(0.02, 0.07), "front_open": False, "looseness": u(0.015, 0.035)}
    if kind == "shirt":
        return {"sleeve_length": u(0.25, 0.95), "hem_length": u(0.5, 1.0), "neckline_depth": u(0.05, 0.11), "front_open": True, "looseness": u(0.015, 0.035)}
    if kind == "tank":
        return {"sleeve_length": 0.0, "hem_length": u(0.3, 0.9), "neckline_depth": u(0.04, 0.12), "front_open": False, "looseness": u(0.012, 0.03)}
    if kind == "longsleeve":
        return {"sleeve_length": u(0.8, 0.95), "hem_length": u(0.3, 0.9), "neckline_depth": u(0.02, 0.06), "front_open": False, "looseness": u(0.015, 0.03)}
    if kind == "trousers":
        return {"leg_length": u(0.8, 1.0), "waist_offset": u(-0.03, 0.04), "looseness": u(0.012, 0.025)}
    if kind == "shorts":
        return {"leg_length": u(0.15, 0.45), "waist_offset": u(-0.03, 0.04), "looseness": u(0.015, 0.035)}
    raise NrtoolError(f"unknown garment type {kind!r}; choose {', '.join(TOP_TYPES + BOTTOM_TYPES)}")


def _cut_levels(frame: BodyFrame, kind: str, attrs: dict[str, Any]) -> dict[str, float]:
    """Where the straight cuts of a garment lie (also recorded with the garment)."""
    if kind in TOP_TYPES:
        hem_y = frame.waist_y - attrs["hem_length"] * (frame.waist_y - frame.crotch_y - 0.02)
        levels = {"hem_y": hem_y, "neck_y": frame.neck_y}
        if attrs["sleeve_length"] > 0:
            levels["sleeve_x"] = frame.shoulder_x + attrs["sleeve_length"] * (frame.wrist_x - 0.02 - frame.shoulder_x)
        else:
            levels["armhole_x"] = frame.shoulder_x - 0.02
            levels["armhole_y"] = float(frame.joints[16, 1] - 0.10)
        return levels
    waist = frame.waist_y + attrs["waist_offset"]
    leg_y = frame.crotch_y - attrs["leg_length"] * (frame.crotch_y - (frame.ankle_y + 0.04))
    return {"waist_y": waist, "leg_y": leg_y}


def _keep_field(frame: BodyFrame, kind: str, attrs: dict[str, Any], levels: dict[str, float], v: np.ndarray) -> list[np.ndarray]:
    """Cut fields (keep where >= 0), applied one after another."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    fields = []
    if kind in TOP_TYPES:
        fields.append(y - levels["hem_y"])
        # Neck hole: remove what is inside an elliptic cylinder around the neck above the
        # neckline; the front of the neckline drops by neckline_depth.
        zn = float(frame.joints[12, 2])
        drop = attrs["neckline_depth"] * np.clip((z - zn + 0.06) / 0.12, 0.0, 1.0)
        ellipse = np.sqrt((x / 0.10) ** 2 + ((z - zn) / 0.13) ** 2) - 1.0
        fields.append(np.maximum(0.1 * ellipse, (levels["neck_y"] - drop) - y))
        if "sleeve_x" in levels:
            fields.append(levels["sleeve_x"] - np.abs(x))
        else:
            fields.append(np.maximum(levels["armhole_x"] - np.abs(x), levels["armhole_y"] - y))
        if attrs["front_open"]:
            fields.append(np.maximum(np.abs(x) - _FRONT_GAP / 2, frame.z_centre - z))
    else:
        fields.append(levels["waist_y"] - y)
        fields.append(y - levels["leg_y"])
    return fields


def _grid_bounds(frame: BodyFrame, kind: str, levels: dict[str, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
    v = frame.vertices
    if kind in TOP_TYPES:
        lo_y, hi_y = levels["hem_y"], float(frame.joints[15, 1]) + 0.05
        half_x = levels.get("sleeve_x", frame.shoulder_x + 0.08)
    else:
        lo_y, hi_y = levels["leg_y"], levels["waist_y"]
        half_x = float(np.abs(v[(v[:, 1] > lo_y) & (v[:, 1] < hi_y), 0]).max())
    lo = np.array([-half_x - margin, lo_y - margin, v[:, 2].min() - margin])
    hi = np.array([half_x + margin, hi_y + margin, v[:, 2].max() + margin])
    return lo, hi


def make_garment(
    frame: BodyFrame,
    kind: str,
    attrs: dict[str, Any],
    name: str,
    resolution: float = 0.015,
    distance: _Distance | None = None,
) -> Garment:
    """One garment of type ``kind`` with the given attributes (see :func:`_sample_attributes`)."""
    from skimage.measure import marching_cubes

    distance = distance or _Distance(frame)
    loose = float(attrs["looseness"])
    levels = _cut_levels(frame, kind, attrs)
    lo, hi = _grid_bounds(frame, kind, levels, margin=loose + 3 * resolution)
    counts = np.ceil((hi - lo) / resolution).astype(int) + 1
    axes = [lo[i] + resolution * np.arange(counts[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    sdf = distance(grid).reshape(counts)
    verts, faces, _, _ = marching_cubes(sdf, level=loose, spacing=(resolution,) * 3)
    verts = verts + lo
    faces = faces.astype(np.int64)
    verts, faces = _apply_cuts_sequentially(frame, kind, attrs, levels, verts, faces)
    if len(faces) == 0:
        raise NrtoolError(f"{name}: nothing left after cutting (body too small for a {kind}?)")
    verts, faces = _largest_component(verts, faces)
    # Orient the surface outward (away from the body).
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    normals = np.cross(b - a, c - a)
    centroids = (a + b + c) / 3
    step = resolution / 2
    outward = distance(centroids + step * normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12))
    if np.mean(outward > loose) < 0.5:
        faces = faces[:, ::-1].copy()
    if len(boundary_edges(faces)) == 0:
        raise AssertionError(f"{name}: garment came out closed")  # cannot happen with the cuts above
    attributes = {"type": kind, **{k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v)) for k, v in attrs.items()}}
    attributes.update({k: float(v) for k, v in levels.items()})
    category = "top" if kind in TOP_TYPES else "bottom"
    return Garment(name, category, kind, verts, faces, attributes, frame.normalisation(category))


def _apply_cuts_sequentially(
    frame: BodyFrame, kind: str, attrs: dict[str, Any], levels: dict[str, float], verts: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clip by each cut field in turn, evaluating it on the vertices the previous cut left."""
    count = len(_keep_field(frame, kind, attrs, levels, verts[:1]))
    for index in range(count):
        if len(faces) == 0:
            break
        verts, faces = clip_mesh(verts, faces, _keep_field(frame, kind, attrs, levels, verts)[index])
    return verts, faces


def make_garments(
    body_model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    tops: int = 4,
    bottoms: int = 2,
    seed: int = 0,
    resolution: float = 0.015,
    fmt: str = "obj",
    gender: str = "neutral",
    force: bool = False,
    preview: bool = True,
    progress: Progress | None = None,
) -> list[Garment]:
    """Write ``tops`` + ``bottoms`` garments around the body into ``out`` (atomically).

    Layout: ``out/tops/top_0000.obj``, ``out/bottoms/bottom_0000.obj``, ``out/garments.json``
    and (``preview``) ``out/preview.png``: every garment on the body, front and side.
    Types cycle through :data:`TOP_TYPES` / :data:`BOTTOM_TYPES`; attributes are drawn from
    ``seed`` (item ``i`` depends only on ``(seed, category, i)``).
    """
    from nrtool.artifacts.core import atomic_folder, check_output_folder
    from nrtool.io import save_mesh

    progress = progress or SilentProgress()
    if tops < 0 or bottoms < 0 or tops + bottoms == 0:
        raise NrtoolError("--tops and --bottoms must be >= 0, and at least one garment asked for")
    if not 0.005 <= resolution <= 0.04:
        raise NrtoolError(f"--resolution must be between 0.005 and 0.04 m, got {resolution}")
    if fmt not in ("obj", "ply"):
        raise NrtoolError(f"--format {fmt!r}: choose obj or ply")
    check_output_folder(out, force)
    frame = body_frame(body_model, gender)
    distance = _Distance(frame)
    plan = [("top", TOP_TYPES[i % len(TOP_TYPES)], i) for i in range(tops)]
    plan += [("bottom", BOTTOM_TYPES[i % len(BOTTOM_TYPES)], i) for i in range(bottoms)]
    garments: list[Garment] = []
    with atomic_folder(out, force=force) as tmp:
        index = []
        with progress.task("garments", total=len(plan), unit="garments") as advance:
            for category, kind, i in plan:
                rng = np.random.default_rng([seed, 0 if category == "top" else 1, i])
                name = f"{category}_{i:04d}"
                garment = make_garment(frame, kind, _sample_attributes(kind, rng), name, resolution, distance)
                folder = tmp / f"{category}s"
                folder.mkdir(exist_ok=True)
                rel = f"{category}s/{name}.{fmt}"
                save_mesh(tmp / rel, garment.vertices, garment.faces)
                garments.append(garment)
                index.append({
                    "name": name, "file": rel, "category": category, "type": kind,
                    "attributes": garment.attributes, "normalise": garment.normalise,
                    "vertices": int(len(garment.vertices)), "faces": int(len(garment.faces)),
                    "boundary_edges": int(len(boundary_edges(garment.faces))),
                })  # fmt: skip
                advance()
        meta = {"body_model": str(Path(body_model).resolve()), "seed": seed, "resolution": resolution, "garments": index}
        (tmp / INDEX_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        if preview:
            from nrtool.body.render import garment_sheet

            shown = [(g.vertices, g.faces, f"{g.name}: {g.type}") for g in garments[:12]]
            garment_sheet((frame.vertices, frame.faces), shown, tmp / PREVIEW_NAME)
    return garments
