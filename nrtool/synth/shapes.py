"""Procedural, labelled, watertight triangle meshes: a ModelNet-shaped demo/test data set.

Each class is a primitive *family* (ellipsoid, box, cylinder, cone, torus, capsule, star prism,
twisted box, bent capsule, peanut) with random proportions and a random rotation. Every mesh is
built directly as one closed surface on a fixed grid topology (a sphere-like grid closed by two
pole vertices, or a torus grid), so it is watertight and consistently oriented by construction:
no boolean operations, no repair. Vertex positions come from maps that cannot fold the grid
(radial functions, surfaces of revolution of a simple profile, twist and bend deformations with
positive Jacobian), so the surfaces do not self-intersect either.

With more than 10 classes the families repeat, stretched along their axis by a per-variant
factor (``long``, ``flat``, ...) so that repeated families still differ in their proportions.

Output layout (like ModelNet): ``out_dir/CLASS/{train,test}/CLASS_0007.ply``; item ``i`` of class
``c`` depends only on ``(seed, c, i)``, so a larger ``per_class`` keeps the earlier items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.io import save_mesh

__all__ = ["FAMILIES", "class_names", "make_mesh", "make_shape_dataset", "held_out_count"]

FAMILIES: tuple[str, ...] = (
    "ellipsoid",
    "box",
    "cylinder",
    "cone",
    "torus",
    "capsule",
    "star_prism",
    "twisted_box",
    "bent_capsule",
    "peanut",
)
"""Primitive families; class ``c`` uses family ``c % 10`` and stretch variant ``c // 10``."""

_VARIANT_SUFFIXES = ("", "long", "flat", "xlong", "xflat")

# Grid resolution: 64 x 24 gives 3072 triangles per mesh (sphere grid and torus grid alike),
# inside the ~1-4k range and fine enough to resolve an 8-lobed star cross-section.
_N_AROUND = 64
_N_ALONG = 24

# Every mesh is centred and scaled so that its farthest vertex lies at this radius: it fits in
# the unit sphere, hence in the [-1, 1]^3 cube the fitting stages sample.
_RADIUS = 0.9

Mesh = tuple[np.ndarray, np.ndarray]  # (V, 3) float64 vertices, (F, 3) int64 faces


def class_names(classes: int) -> list[str]:
    """Names of the first ``classes`` synthetic classes, e.g. ``["ellipsoid", "box", ...]``.

    Classes 10-19 are ``"<family>_long"``, 20-29 ``"<family>_flat"``, then ``xlong``, ``xflat``,
    then ``"<family>_v5"`` and so on.
    """
    if classes < 1:
        raise NrtoolError(f"the number of classes must be at least 1, got {classes}")
    names = []
    for c in range(classes):
        family, variant = FAMILIES[c % len(FAMILIES)], c // len(FAMILIES)
        if variant == 0:
            names.append(family)
        elif variant < len(_VARIANT_SUFFIXES):
            names.append(f"{family}_{_VARIANT_SUFFIXES[variant]}")
        else:
            names.append(f"{family}_v{variant}")
    return names


def _variant_stretch(variant: int) -> float:
    """Axial stretch of a repeated family: 1, 1.8, 1/1.8, 1.8^2, 1/1.8^2, ..."""
    if variant == 0:
        return 1.0
    power = (variant + 1) // 2
    return 1.8**power if variant % 2 else 1.8**-power


# --------------------------------------------------------------------------------------------
# Grid topologies
# --------------------------------------------------------------------------------------------


def _sphere_grid_faces(n_rings: int, n_around: int) -> np.ndarray:
    """Faces of a closed sphere-like grid: ``n_rings`` rings of ``n_around`` vertices.

    Vertex 0 is the bottom pole, ring ``r`` (bottom to top) holds vertices
    ``1 + r * n_around + j`` with ``j`` counter-clockwise seen from above, and the last vertex is
    the top pole. Faces are oriented outward for such a layout. Returns ``(F, 3)`` int64 with
    ``F = 2 * n_around * n_rings``.
    """
    j = np.arange(n_around)
    j_next = (j + 1) % n_around
    faces = []
    bottom, top = 0, 1 + n_rings * n_around
    faces.append(np.stack([np.full(n_around, bottom), 1 + j_next, 1 + j], axis=1))
    for r in range(n_rings - 1):
        a = 1 + r * n_around + j
        b = 1 + r * n_around + j_next
        c = 1 + (r + 1) * n_around + j_next
        d = 1 + (r + 1) * n_around + j
        faces.append(np.stack([a, b, c], axis=1))
        faces.append(np.stack([a, c, d], axis=1))
    last = 1 + (n_rings - 1) * n_around
    faces.append(np.stack([np.full(n_around, top), last + j, last + j_next], axis=1))
    return np.concatenate(faces).astype(np.int64)


def _sphere_grid_mesh(rings: np.ndarray, bottom: np.ndarray, top: np.ndarray) -> Mesh:
    """Mesh from ``(R, A, 3)`` ring positions and the two ``(3,)`` pole positions."""
    n_rings, n_around, _ = rings.shape
    vertices = np.concatenate([bottom[None], rings.reshape(-1, 3), top[None]])
    return vertices, _sphere_grid_faces(n_rings, n_around)


def _torus_grid_faces(n_major: int, n_minor: int) -> np.ndarray:
    """Faces of a closed torus grid, vertex ``u * n_minor + v``; ``(2 * n_major * n_minor, 3)``."""
    u, v = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    u, v = u.ravel(), v.ravel()
    u1, v1 = (u + 1) % n_major, (v + 1) % n_minor
    a, b = u * n_minor + v, u1 * n_minor + v
    c, d = u1 * n_minor + v1, u * n_minor + v1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)


def _angles(n: int) -> np.ndarray:
    return np.arange(n) * (2.0 * np.pi / n)


# --------------------------------------------------------------------------------------------
# Surface builders
# --------------------------------------------------------------------------------------------


def _radial_superquadric(
    a: float, b: float, c: float, e1: float, e2: float, n_rings: int = _N_ALONG
) -> Mesh:
    """Superquadric with semi-axes ``a, b, c`` and exponents ``e1`` (along z), ``e2`` (around).

    Built radially: a grid of directions ``d`` on the unit sphere is scaled to the surface point
    ``t * d``, with ``t`` solving the inside-outside function ``F(t d) = 1``. Radial placement
    samples flat faces evenly (the classic angular parameterisation bunches vertices at edges)
    and can never fold.
    """
    polar = np.pi * np.arange(1, n_rings + 1) / (n_rings + 1)  # from the bottom pole upwards
    azimuth = _angles(_N_AROUND)
    sin_p, cos_p = np.sin(polar)[:, None], np.cos(polar)[:, None]
    directions = np.stack(
        np.broadcast_arrays(sin_p * np.cos(azimuth), sin_p * np.sin(azimuth), -cos_p), axis=-1
    )
    x, y, z = np.abs(directions[..., 0]), np.abs(directions[..., 1]), np.abs(directions[..., 2])
    inside = ((x / a) ** (2 / e2) + (y / b) ** (2 / e2)) ** (e2 / e1) + (z / c) ** (2 / e1)
    rings = directions * inside[..., None] ** (-e1 / 2)
    return _sphere_grid_mesh(rings, np.array([0.0, 0.0, -c]), np.array([0.0, 0.0, c]))


def _revolve(
    profile: np.ndarray,
    cross_section: Callable[[np.ndarray], np.ndarray] | None = None,
    n_rings: int = _N_ALONG,
) -> Mesh:
    """Surface of revolution of a profile curve around the z axis.

    Args:
        profile: ``(P, 2)`` polyline of ``(rho, z)`` from a point on the axis (``rho = 0``) to
            another one, with ``rho > 0`` in between and no self-crossing; it is resampled to
            ``n_rings`` points evenly spaced by arc length.
        cross_section: optional radial factor ``(A,) azimuth -> (A,)`` > 0 shaping the
            horizontal sections (e.g. a star); default round.
    """
    segment = np.linalg.norm(np.diff(profile, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    samples = arc[-1] * np.arange(1, n_rings + 1) / (n_rings + 1)
    rho = np.interp(samples, arc, profile[:, 0])
    z = np.interp(samples, arc, profile[:, 1])
    azimuth = _angles(_N_AROUND)
    factor = np.ones_like(azimuth) if cross_section is None else cross_section(azimuth)
    ring_x = rho[:, None] * (factor * np.cos(azimuth))[None]
    ring_y = rho[:, None] * (factor * np.sin(azimuth))[None]
    ring_z = np.broadcast_to(z[:, None], ring_x.shape)
    rings = np.stack([ring_x, ring_y, ring_z], axis=-1)
    bottom = np.array([0.0, 0.0, profile[0, 1]])
    top = np.array([0.0, 0.0, profile[-1, 1]])
    return _sphere_grid_mesh(rings, bottom, top)


def _superellipse_profile(radius: float, half_height: float, exponent: float) -> np.ndarray:
    """``(P, 2)`` profile of a rounded-rectangle (exponent < 1) or ellipse (exponent 1)."""
    s = np.linspace(0.0, np.pi, 721)
    rho = radius * np.abs(np.sin(s)) ** exponent
    z = -half_height * np.sign(np.cos(s)) * np.abs(np.cos(s)) ** exponent
    rho[[0, -1]] = 0.0
    return np.stack([rho, z], axis=1)


def _capsule_profile(radius: float, half_length: float) -> np.ndarray:
    """``(P, 2)`` profile: bottom half circle, straight side, top half circle."""
    bottom = np.linspace(-np.pi / 2, 0.0, 181)
    top = np.linspace(0.0, np.pi / 2, 181)
    rho = np.concatenate([radius * np.cos(bottom), radius * np.cos(top)])
    z = np.concatenate(
        [-half_length + radius * np.sin(bottom), half_length + radius * np.sin(top)]
    )
    rho[[0, -1]] = 0.0
    return np.stack([rho, z], axis=1)


def _torus(major: float, minor: float, z_scale: float, exponent: float) -> Mesh:
    """Torus around z with a superelliptic tube section (``exponent`` 1 = ellipse)."""
    u = _angles(_N_AROUND)[:, None]
    v = _angles(_N_ALONG)[None, :]
    cos_v, sin_v = np.cos(v), np.sin(v)
    tube_r = minor * np.sign(cos_v) * np.abs(cos_v) ** exponent
    tube_z = z_scale * minor * np.sign(sin_v) * np.abs(sin_v) ** exponent
    rho = major + tube_r  # > 0 because minor < major
    vertices = np.stack(
        np.broadcast_arrays(rho * np.cos(u), rho * np.sin(u), tube_z), axis=-1
    ).reshape(-1, 3)
    return vertices, _torus_grid_faces(_N_AROUND, _N_ALONG)


def _twist(vertices: np.ndarray, total_angle: float) -> np.ndarray:
    """Rotate each point about z by an angle linear in z (a twist; Jacobian determinant 1)."""
    z = vertices[:, 2]
    span = np.ptp(z) or 1.0
    angle = total_angle * (z - z.min()) / span - total_angle / 2
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    x, y = vertices[:, 0], vertices[:, 1]
    return np.stack([cos_a * x - sin_a * y, sin_a * x + cos_a * y, z], axis=1)


def _bend(vertices: np.ndarray, bend_radius: float) -> np.ndarray:
    """Bend the z axis into a circular arc of ``bend_radius`` in the x-z plane.

    Point ``(x, y, z)`` goes to angle ``z / R`` at distance ``R - x`` from the arc centre; the
    Jacobian determinant is ``(R - x) / R``, positive while ``x < R``, so the map neither folds
    nor flips orientation.
    """
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    theta = z / bend_radius
    distance = bend_radius - x
    return np.stack([bend_radius - distance * np.cos(theta), y, distance * np.sin(theta)], axis=1)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed ``(3, 3)`` rotation (from a normalised Gaussian quaternion)."""
    w, x, y, z = rng.normal(size=4)
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


# --------------------------------------------------------------------------------------------
# Families (canonical pose: axis along z, size about 1)
# --------------------------------------------------------------------------------------------


def _family_mesh(family: str, rng: np.random.Generator) -> Mesh:
    u = rng.uniform
    if family == "ellipsoid":
        return _radial_superquadric(u(0.55, 1.0), u(0.55, 1.0), u(0.55, 1.0), 1.0, 1.0)
    if family == "box":
        return _radial_superquadric(
            u(0.5, 1.0), u(0.5, 1.0), u(0.5, 1.0), u(0.1, 0.3), u(0.1, 0.3)
        )
    if family == "cylinder":
        return _revolve(_superellipse_profile(u(0.35, 0.7), u(0.6, 1.0), u(0.08, 0.2)))
    if family == "cone":
        radius, half_height = u(0.5, 0.9), u(0.6, 1.0)
        tip = u(0.0, 0.2) * radius
        profile = np.array([[0.0, -half_height], [radius, -half_height], [tip, half_height]])
        if tip > 0:
            profile = np.vstack([profile, [0.0, half_height]])  # flat top of a frustum
        return _revolve(profile)
    if family == "torus":
        major = u(0.6, 0.8)
        return _torus(major, u(0.2, 0.45) * major, u(0.7, 1.4), u(0.6, 1.0))
    if family == "capsule":
        return _revolve(_capsule_profile(u(0.25, 0.45), u(0.3, 0.7)))
    if family == "star_prism":
        lobes, depth, phase = int(rng.integers(5, 9)), u(0.2, 0.35), u(0.0, 2 * np.pi)
        profile = _superellipse_profile(u(0.5, 0.8), u(0.3, 0.7), u(0.1, 0.25))
        return _revolve(profile, lambda az: 1.0 + depth * np.cos(lobes * az + phase))
    if family == "twisted_box":
        vertices, faces = _radial_superquadric(
            u(0.3, 0.5), u(0.15, 0.3), u(0.8, 1.0), u(0.15, 0.3), u(0.1, 0.2)
        )
        return _twist(vertices, u(np.pi / 3, np.pi)), faces
    if family == "bent_capsule":
        radius, half_length = u(0.18, 0.3), u(0.5, 0.8)
        vertices, faces = _revolve(_capsule_profile(radius, half_length))
        bend_angle = u(np.pi / 3, 2 * np.pi / 3)  # angle subtended by the whole length
        return _bend(vertices, 2 * (half_length + radius) / bend_angle), faces
    if family == "peanut":
        half_length, radius = u(0.8, 1.0), u(0.35, 0.55)
        waist, width = u(0.3, 0.6), u(0.25, 0.4)
        s = np.linspace(0.0, np.pi, 721)
        rho = radius * np.sin(s) * (1.0 - waist * np.exp(-(((s - np.pi / 2) / width) ** 2)))
        rho[[0, -1]] = 0.0
        return _revolve(np.stack([rho, -half_length * np.cos(s)], axis=1))
    raise ValueError(f"unknown family {family!r}")


def _normalise(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    """Centre on the bounding-box centre, scale into the unit sphere, orient faces outward."""
    vertices = vertices - (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    vertices = vertices * (_RADIUS / np.linalg.norm(vertices, axis=1).max())
    # Signed volume > 0 means outward normals; the grids are built that way, and every map we
    # apply preserves orientation, so this is a safety net rather than a routine fix.
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    if np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() < 0:
        faces = faces[:, ::-1].copy()
    return vertices, faces


def make_mesh(class_index: int, seed: int, item: int) -> Mesh:
    """Mesh ``item`` of synthetic class ``class_index``, deterministic in ``(seed, class, item)``.

    Returns:
        ``(V, 3)`` float64 vertices and ``(F, 3)`` int64 faces of a closed, outward-oriented
        triangle mesh centred at the origin inside the sphere of radius 0.9.
    """
    rng = np.random.default_rng([seed, class_index, item])
    family = FAMILIES[class_index % len(FAMILIES)]
    vertices, faces = _family_mesh(family, rng)
    vertices = vertices * np.array([1.0, 1.0, _variant_stretch(class_index // len(FAMILIES))])
    vertices = vertices @ _random_rotation(rng).T
    return _normalise(vertices, faces)


def held_out_count(per_class: int, test_fraction: float) -> int:
    """How many of a class's ``per_class`` items go to ``test``: the last ``round(per_class * f)``,
    at least one (and at least one left for ``train``) when ``0 < f`` and ``per_class >= 2``."""
    n_test = int(round(per_class * test_fraction))
    if test_fraction > 0 and per_class >= 2:
        n_test = min(max(n_test, 1), per_class - 1)
    return min(n_test, per_class)


def make_shape_dataset(
    out_dir: Path,
    classes: int,
    per_class: int,
    seed: int,
    test_fraction: float = 0.25,
    families: Sequence[str] | None = None,
) -> list[Path]:
    """Write a labelled data set of watertight meshes as ``out_dir/CLASS/{train,test}/*.ply``.

    Args:
        out_dir: root folder (created if needed; existing files of the same names are replaced).
        classes: number of classes (see :func:`class_names`); ignored when ``families`` is given.
        per_class: meshes per class, named ``CLASS_0000.ply`` upwards.
        seed: non-negative seed; the same seed gives byte-identical files.
        test_fraction: share of each class in ``test``: the last ``round(per_class * f)``
            items, at least one (and at least one left for ``train``) when ``0 < f`` and
            ``per_class >= 2``.
        families: pick these families of :data:`FAMILIES` as the classes instead of the first
            ``classes`` (e.g. well-separated ones for a test).

    Returns:
        The written files, in class then item order.
    """
    if per_class < 1:
        raise NrtoolError(f"the number of shapes per class must be at least 1, got {per_class}")
    if not 0.0 <= test_fraction <= 1.0:
        raise NrtoolError(f"test fraction must be between 0 and 1, got {test_fraction}")
    if seed < 0:
        raise NrtoolError(f"seed must be non-negative, got {seed}")
    if families:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise NrtoolError(f"unknown shape family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
        indices, names = [FAMILIES.index(f) for f in families], list(families)
    else:
        names = class_names(classes)
        indices = list(range(len(names)))
    n_test = held_out_count(per_class, test_fraction)
    out_dir = Path(out_dir)
    written = []
    for class_index, name in zip(indices, names):
        for item in range(per_class):
            split = "test" if item >= per_class - n_test else "train"
            path = out_dir / name / split / f"{name}_{item:04d}.ply"
            vertices, faces = make_mesh(class_index, seed, item)
            save_mesh(path, vertices, faces)
            written.append(path)
    return written
