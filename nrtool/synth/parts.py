"""Procedural point clouds with part labels: a ShapeNet-Part-shaped test/demo data set.

Each class is an object assembled from labelled primitives (boxes, cylinders, frusta,
ellipsoids, tori) with random proportions, axis-aligned like ShapeNet-Part (y up): an airplane is
a body, wings and a tail; a chair a seat, a back and legs; a lamp a base, a pole and a shade; a
mug a body and a handle; a table a top and legs. Points are drawn uniformly (by area) on the
primitives' surfaces, and points that fall inside another primitive are dropped, so the cloud
samples the outer surface of the union, as a scan of the object would. Each point carries the
label of the primitive it came from.

Part labels are global ids over the whole data set, as in ShapeNet-Part (50 parts over 16
classes): class ``c``'s parts are a contiguous range, in :data:`PART_CLASSES` order.

Output layout (like ModelNet, which ``fit-inr`` reads): ``out_dir/CLASS/{train,test}/CLASS_0007.npz``
holding ``points`` (N, 3) float32, ``labels`` (N,) int64 and ``part_names`` (K,) str (the names of
all the data set's parts, indexed by label). Item ``i`` of class ``c`` depends only on
``(seed, c, i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrtool.errors import NrtoolError
from nrtool.io.part_clouds import save_labelled_cloud
from nrtool.synth.shapes import held_out_count

__all__ = ["PART_CLASSES", "part_names", "make_part_cloud", "make_part_dataset"]

#: Farthest point from the centre, as for the procedural meshes: inside the unit sphere.
_RADIUS = 0.9
#: A point this close inside another primitive is hidden by it (shared faces are dropped too).
_INSIDE_MARGIN = 1e-4


# --------------------------------------------------------------------------------------------
# Primitives: closed surfaces in a local frame (axis y), placed by a rotation and a translation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Primitive:
    """One closed surface: ``kind`` with ``size`` parameters, at ``centre``, local axes ``rotation``
    (columns: where the local x, y, z axes point), labelled ``part`` (an index into its class's
    parts)."""

    kind: str  # box (hx, hy, hz) | cylinder (r, h) | frustum (r_bottom, r_top, h) | ellipsoid (a, b, c) | torus (R, r)
    size: tuple[float, ...]
    centre: tuple[float, float, float]
    part: int
    rotation: np.ndarray | None = None  # (3, 3); None: identity

    def _axes(self) -> np.ndarray:
        return np.eye(3) if self.rotation is None else np.asarray(self.rotation, dtype=np.float64)

    def area(self) -> float:
        return _AREAS[self.kind](*self.size)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points uniform on the surface, world frame."""
        local = _SAMPLERS[self.kind](n, rng, *self.size)
        return local @ self._axes().T + np.asarray(self.centre)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Which world points lie inside (by more than a hair)."""
        local = (points - np.asarray(self.centre)) @ self._axes()
        return _INSIDE[self.kind](local, *self.size)


def _rotation_about(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _disk(n: int, rng: np.random.Generator, radius: float) -> tuple[np.ndarray, np.ndarray]:
    rho = radius * np.sqrt(rng.random(n))
    theta = rng.random(n) * 2 * np.pi
    return rho * np.cos(theta), rho * np.sin(theta)


def _choose(n: int, rng: np.random.Generator, areas: Sequence[float]) -> np.ndarray:
    """Which piece of a surface each of ``n`` points lies on, by area."""
    weights = np.asarray(areas, dtype=np.float64)
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def _sample_box(n: int, rng: np.random.Generator, hx: float, hy: float, hz: float) -> np.ndarray:
    half = np.array([hx, hy, hz])
    face = _choose(n, rng, [hy * hz, hy * hz, hx * hz, hx * hz, hx * hy, hx * hy])
    points = (rng.random((n, 3)) * 2 - 1) * half
    axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
    points[np.arange(n), axis] = sign * half[axis]
    return points


def _sample_frustum(n: int, rng: np.random.Generator, r0: float, r1: float, h: float) -> np.ndarray:
    """Closed frustum: radius ``r0`` at y = -h, ``r1`` at y = +h (a cylinder when equal)."""
    slant = np.hypot(2 * h, r1 - r0)
    piece = _choose(n, rng, [np.pi * (r0 + r1) * slant, np.pi * r0**2, np.pi * r1**2])
    points = np.empty((n, 3))
    side = piece == 0
    u = rng.random(side.sum())
    # Side density grows with the radius: invert the CDF of t in [0, 1] with density ~ r(t).
    t = u if abs(r1 - r0) < 1e-12 else (np.sqrt(r0**2 + u * (r1**2 - r0**2)) - r0) / (r1 - r0)
    radius, theta = r0 + (r1 - r0) * t, rng.random(side.sum()) * 2 * np.pi
    points[side] = np.stack([radius * np.cos(theta), -h + 2 * h * t, radius * np.sin(theta)], 1)
    for index, (radius, y) in ((1, (r0, -h)), (2, (r1, h))):
        cap = piece == index
        x, z = _disk(cap.sum(), rng, radius)
        points[cap] = np.stack([x, np.full(cap.sum(), y), z], 1)
    return points


def _sample_ellipsoid(n: int, rng: np.random.Generator, a: float, b: float, c: float) -> np.ndarray:
    """Directions scaled to the ellipsoid, accepted by the surface's area element (exact)."""
    chunks, have = [], 0
    top = max(b * c, a * c, a * b)
    while have < n:
        d = rng.normal(size=(2 * n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        element = np.sqrt((b * c * d[:, 0]) ** 2 + (a * c * d[:, 1]) ** 2 + (a * b * d[:, 2]) ** 2)
        keep = d[rng.random(2 * n) * top < element] * np.array([a, b, c])
        chunks.append(keep)
        have += len(keep)
    return np.concatenate(chunks)[:n]


def _sample_torus(n: int, rng: np.random.Generator, major: float, minor: float) -> np.ndarray:
    """Ring in the xz plane around the y axis, accepted by the area element R + r cos v (exact)."""
    chunks, have = [], 0
    while have < n:
        u, v = rng.random(2 * n) * 2 * np.pi, rng.random(2 * n) * 2 * np.pi
        keep = rng.random(2 * n) * (major + minor) < major + minor * np.cos(v)
        u, v = u[keep], v[keep]
        ring = major + minor * np.cos(v)
        chunks.append(np.stack([ring * np.cos(u), minor * np.sin(v), ring * np.sin(u)], 1))
        have += len(u)
    return np.concatenate(chunks)[:n]


def _inside_frustum(p: np.ndarray, r0: float, r1: float, h: float) -> np.ndarray:
    t = (p[:, 1] + h) / (2 * h)
    radius = r0 + (r1 - r0) * np.clip(t, 0, 1)
    return (np.abs(p[:, 1]) < h - _INSIDE_MARGIN) & (np.hypot(p[:, 0], p[:, 2]) < radius - _INSIDE_MARGIN)


def _ellipsoid_area(a: float, b: float, c: float) -> float:
    p = 1.6075  # Knud Thomsen's approximation (relative error below 1.1 %): enough for weights
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


_SAMPLERS: dict[str, Callable[..., np.ndarray]] = {
    "box": _sample_box,
    "cylinder": lambda n, rng, r, h: _sample_frustum(n, rng, r, r, h),
    "frustum": _sample_frustum,
    "ellipsoid": _sample_ellipsoid,
    "torus": _sample_torus,
}
_AREAS: dict[str, Callable[..., float]] = {
    "box": lambda hx, hy, hz: 8 * (hx * hy + hy * hz + hx * hz),
    "cylinder": lambda r, h: 2 * np.pi * r * (2 * h) + 2 * np.pi * r**2,
    "frustum": lambda r0, r1, h: np.pi * (r0 + r1) * np.hypot(2 * h, r1 - r0) + np.pi * (r0**2 + r1**2),
    "ellipsoid": _ellipsoid_area,
    "torus": lambda major, minor: 4 * np.pi**2 * major * minor,
}
_INSIDE: dict[str, Callable[..., np.ndarray]] = {
    "box": lambda p, hx, hy, hz: np.all(np.abs(p) < np.array([hx, hy, hz]) - _INSIDE_MARGIN, axis=1),
    "cylinder": lambda p, r, h: _inside_frustum(p, r, r, h),
    "frustum": _inside_frustum,
    "ellipsoid": lambda p, a, b, c: ((p / np.array([a, b, c])) ** 2).sum(1) < 1 - _INSIDE_MARGIN,
    "torus": lambda p, major, minor: (np.hypot(p[:, 0], p[:, 2]) - major) ** 2 + p[:, 1] ** 2 < (minor - _INSIDE_MARGIN) ** 2,
}


# --------------------------------------------------------------------------------------------
# Classes: objects assembled from labelled primitives
# --------------------------------------------------------------------------------------------


def _airplane(u: Callable[[float, float], float]) -> list[Primitive]:
    length, radius = u(0.75, 1.0), u(0.08, 0.13)
    span, chord, thickness = u(0.7, 1.1), u(0.15, 0.28), u(0.015, 0.03)
    sweep, wing_y = u(-0.1, 0.15), u(-0.5, 0.3) * radius
    fin_height, fin_chord = u(0.15, 0.3), u(0.1, 0.18)
    tail_span = u(0.2, 0.4)
    tail_x = -length + fin_chord
    return [
        Primitive("ellipsoid", (length, radius, radius), (0.0, 0.0, 0.0), 0),
        Primitive("box", (chord, thickness, span), (-sweep, wing_y, 0.0), 1),
        Primitive("box", (fin_chord, fin_height / 2, thickness), (tail_x, fin_height / 2 + 0.5 * radius, 0.0), 2),
        Primitive("box", (0.7 * fin_chord, thickness, tail_span), (tail_x, 0.3 * radius, 0.0), 2),
    ]


def _chair(u: Callable[[float, float], float]) -> list[Primitive]:
    width, depth, seat = u(0.35, 0.5), u(0.35, 0.5), u(0.03, 0.06)
    leg_height, back_height = u(0.35, 0.55), u(0.35, 0.7)
    leg = u(0.025, 0.05)
    back = u(0.025, 0.05)
    parts = [
        Primitive("box", (width, seat, depth), (0.0, 0.0, 0.0), 0),
        Primitive("box", (width, back_height / 2, back), (0.0, seat + back_height / 2 - 0.01, -depth + back), 1),
    ]
    inset = u(0.0, 0.08)
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = (sx * (width - leg - inset), -seat - leg_height / 2 + 0.01, sz * (depth - leg - inset))
            parts.append(Primitive("box", (leg, leg_height / 2, leg), centre, 2))
    return parts


def _lamp(u: Callable[[float, float], float]) -> list[Primitive]:
    base_r, base_h = u(0.18, 0.32), u(0.02, 0.05)
    pole_r, pole_h = u(0.015, 0.035), u(0.5, 0.9)
    shade_bottom, shade_top, shade_h = u(0.2, 0.35), u(0.08, 0.2), u(0.12, 0.22)
    top = base_h + pole_h
    return [
        Primitive("cylinder", (base_r, base_h), (0.0, 0.0, 0.0), 0),
        Primitive("cylinder", (pole_r, pole_h / 2 + 0.01), (0.0, base_h + pole_h / 2, 0.0), 1),
        Primitive("frustum", (shade_bottom, shade_top, shade_h), (0.0, top + 0.6 * shade_h, 0.0), 2),
    ]


def _mug(u: Callable[[float, float], float]) -> list[Primitive]:
    radius, half_height = u(0.25, 0.4), u(0.25, 0.45)
    handle_r, handle_minor = u(0.35, 0.6) * half_height, u(0.03, 0.06)
    # The handle's ring stands in the xy plane (local y -> world z), centred on the body's wall,
    # so its inner half lies inside the body and is dropped.
    return [
        Primitive("cylinder", (radius, half_height), (0.0, 0.0, 0.0), 0),
        Primitive("torus", (handle_r, handle_minor), (radius, u(-0.2, 0.2) * half_height, 0.0), 1,
                  rotation=_rotation_about("x", np.pi / 2)),
    ]


def _table(u: Callable[[float, float], float]) -> list[Primitive]:
    width, depth, thickness = u(0.55, 0.9), u(0.35, 0.6), u(0.03, 0.06)
    leg_height, leg = u(0.4, 0.65), u(0.025, 0.05)
    parts = [Primitive("box", (width, thickness, depth), (0.0, 0.0, 0.0), 0)]
    inset = u(0.0, 0.1)
    if u(0, 1) < 0.3:  # a pedestal table: one column on a foot
        parts.append(Primitive("cylinder", (2 * leg, leg_height / 2), (0.0, -thickness - leg_height / 2 + 0.01, 0.0), 1))
        parts.append(Primitive("cylinder", (u(0.2, 0.35), 0.02), (0.0, -thickness - leg_height, 0.0), 1))
        return parts
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = (sx * (width - leg - inset), -thickness - leg_height / 2 + 0.01, sz * (depth - leg - inset))
            parts.append(Primitive("box", (leg, leg_height / 2, leg), centre, 1))
    return parts


#: Class -> (its part names, the builder of its primitives from a uniform draw ``u(low, high)``).
PART_CLASSES: dict[str, tuple[tuple[str, ...], Callable[[Callable[[float, float], float]], list[Primitive]]]] = {
    "airplane": (("body", "wing", "tail"), _airplane),
    "chair": (("seat", "back", "leg"), _chair),
    "lamp": (("base", "pole", "shade"), _lamp),
    "mug": (("body", "handle"), _mug),
    "table": (("top", "leg"), _table),
}


def part_names(classes: Sequence[str]) -> list[str]:
    """Global part names ``CLASS/part`` of these classes, in label order."""
    return [f"{name}/{part}" for name in classes for part in PART_CLASSES[name][0]]


def sample_visible(primitives: Sequence[Primitive], points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``points`` points uniform on the outer surface of the primitives' union, and each one's part.

    Points are drawn on every primitive by area and those inside another primitive dropped, in
    rounds until enough are visible; a uniform subset of them is kept.
    """
    areas = np.array([p.area() for p in primitives])
    kept_points, kept_labels, have = [], [], 0
    while have < points:
        counts = rng.multinomial(2 * points, areas / areas.sum())
        for index, (primitive, count) in enumerate(zip(primitives, counts)):
            sample = primitive.sample(int(count), rng)
            hidden = np.zeros(len(sample), dtype=bool)
            for other_index, other in enumerate(primitives):
                if other_index != index:
                    hidden |= other.inside(sample)
            kept_points.append(sample[~hidden])
            kept_labels.append(np.full(int((~hidden).sum()), primitive.part, dtype=np.int64))
            have += int((~hidden).sum())
    cloud, labels = np.concatenate(kept_points), np.concatenate(kept_labels)
    chosen = rng.choice(len(cloud), size=points, replace=False)
    return cloud[chosen], labels[chosen]


def make_part_cloud(class_name: str, seed: int, item: int, points: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Cloud ``item`` of ``class_name``: ``(points, 3)`` float32 on the union's outer surface (centred,
    farthest point at radius 0.9) and ``(points,)`` int64 labels, indices into the class's parts.
    Deterministic in ``(seed, class, item)``."""
    if class_name not in PART_CLASSES:
        raise NrtoolError(f"unknown part class {class_name!r}; choose from {', '.join(PART_CLASSES)}")
    rng = np.random.default_rng([seed, list(PART_CLASSES).index(class_name), item])

    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    cloud, labels = sample_visible(PART_CLASSES[class_name][1](u), points, rng)
    cloud = cloud - (cloud.min(0) + cloud.max(0)) / 2
    cloud *= _RADIUS / np.linalg.norm(cloud, axis=1).max()
    return cloud.astype(np.float32), labels


def make_part_dataset(out_dir: Path, classes: Sequence[str], per_class: int, seed: int,
                      test_fraction: float = 0.25, points: int = 2048) -> list[Path]:
    """Write ``out_dir/CLASS/{train,test}/CLASS_NNNN.npz`` labelled clouds (see the module doc).

    Labels are global over ``classes`` (class ``c``'s parts follow those of the classes before
    it); the test items are the last of each class, as in :func:`nrtool.synth.shapes.make_shape_dataset`.
    """
    if per_class < 1:
        raise NrtoolError(f"the number of shapes per class must be at least 1, got {per_class}")
    if points < 16:
        raise NrtoolError(f"--points must be at least 16, got {points}")
    if seed < 0:
        raise NrtoolError(f"seed must be non-negative, got {seed}")
    unknown = [name for name in classes if name not in PART_CLASSES]
    if unknown:
        raise NrtoolError(f"unknown part class {unknown[0]!r}; choose from {', '.join(PART_CLASSES)}")
    names = part_names(classes)
    n_test = held_out_count(per_class, test_fraction)
    written, offset = [], 0
    for name in classes:
        for item in range(per_class):
            split = "test" if item >= per_class - n_test else "train"
            cloud, labels = make_part_cloud(name, seed, item, points)
            path = Path(out_dir) / name / split / f"{name}_{item:04d}.npz"
            save_labelled_cloud(path, cloud, labels + offset, names)
            written.append(path)
        offset += len(PART_CLASSES[name][0])
    return written
