"""Draping physics and metrics against closed forms (issue 13).

Every expected value is computed here from the material constants and the geometry by the
textbook formula, never by calling the code under test a second time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nrtool.drape.metrics import (
    body_to_garment,
    frame_metrics,
    garment_to_garment,
    inside_body,
)
from nrtool.drape.physics import (
    ClothRest,
    Material,
    bending_energy,
    collision_energy,
    covered_by_both,
    dihedral_angles,
    gravity_energy,
    layer_energy,
    pin_energy,
    strain_energy,
    waist_pins,
)
from nrtool.errors import NrtoolError

MAT = Material()
E, NU, H = MAT.young, MAT.poisson, MAT.thickness
# Hand formulas (plane-stress Lamé constants of a thin sheet, SNUG/ARCSim).
MU = E / (2 * (1 + NU))
LAM = E * NU / (1 - NU**2)
KB = E * H**3 / (12 * (1 - NU**2)) * 50.0
RHO_A = 426.0 * 4.7e-4


# ---------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------


def grid_sheet(nx: int, nz: int, sx: float, sz: float, dtype=torch.float64, y: float = 0.0, x0: float = 0.0,
               z0: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat nx x nz-cell sheet in the plane y = const: vertices (V, 3), faces (F, 3)."""
    xs = torch.linspace(x0, x0 + sx, nx + 1, dtype=dtype)
    zs = torch.linspace(z0, z0 + sz, nz + 1, dtype=dtype)
    gx, gz = torch.meshgrid(xs, zs, indexing="ij")
    vertices = torch.stack([gx.reshape(-1), torch.full_like(gx.reshape(-1), y), gz.reshape(-1)], -1)
    faces = []
    for i in range(nx):
        for j in range(nz):
            a, b, c, d = i * (nz + 1) + j, (i + 1) * (nz + 1) + j, (i + 1) * (nz + 1) + j + 1, i * (nz + 1) + j + 1
            faces += [[a, b, c], [a, c, d]]
    return vertices, torch.tensor(faces, dtype=torch.int64)


def rotation(axis: tuple[float, float, float], angle: float, dtype=torch.float64) -> torch.Tensor:
    """Rodrigues' rotation matrix (3, 3)."""
    k = torch.tensor(axis, dtype=dtype)
    k = k / k.norm()
    cross = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=dtype)
    return torch.eye(3, dtype=dtype) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def bumpy(vertices: torch.Tensor, seed: int = 0, amount: float = 0.01) -> torch.Tensor:
    """The sheet with small random heights, so that its hinges are not flat."""
    g = torch.Generator().manual_seed(seed)
    out = vertices.clone()
    out[:, 1] += amount * torch.rand(len(vertices), generator=g, dtype=vertices.dtype)
    return out


def cylinder_patch(radius: float, t0: float, t1: float, y0: float, y1: float, nt: int, ny: int,
                   dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grid on the cylinder of ``radius`` around the y axis: vertices, faces, outward normals."""
    ts = torch.linspace(t0, t1, nt + 1, dtype=dtype)
    ys = torch.linspace(y0, y1, ny + 1, dtype=dtype)
    gt, gy = torch.meshgrid(ts, ys, indexing="ij")
    normals = torch.stack([torch.cos(gt), torch.zeros_like(gt), torch.sin(gt)], -1).reshape(-1, 3)
    vertices = normals * radius + torch.stack([torch.zeros_like(gy), gy, torch.zeros_like(gy)], -1).reshape(-1, 3)
    faces = []
    for i in range(nt):
        for j in range(ny):
            a, b, c, d = i * (ny + 1) + j, (i + 1) * (ny + 1) + j, (i + 1) * (ny + 1) + j + 1, i * (ny + 1) + j + 1
            faces += [[a, b, c], [a, c, d]]
    return vertices, torch.tensor(faces, dtype=torch.int64), normals


def patch_area(radius: float, t0: float, t1: float, y0: float, y1: float, nt: int) -> float:
    """Area of the polygonal cylinder patch: nt flat strips of chord 2 r sin(dt / 2)."""
    return nt * 2 * radius * math.sin((t1 - t0) / nt / 2) * (y1 - y0)


def merge(*meshes: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    vertices, faces, offset = [], [], 0
    for v, f in meshes:
        vertices.append(v)
        faces.append(f + offset)
        offset += len(v)
    return torch.cat(vertices), torch.cat(faces)


def box_body(half: float = 0.5, n: int = 10, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices sampled on the six faces of a cube, each with its face's outward normal."""
    s = torch.linspace(-half, half, n + 1, dtype=dtype)
    u, v = (t.reshape(-1) for t in torch.meshgrid(s, s, indexing="ij"))
    full = torch.full_like(u, half)
    vertices, normals = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            coords = [u, v]
            coords.insert(axis, sign * full)
            vertices.append(torch.stack(coords, -1))
            normal = torch.zeros(len(u), 3, dtype=dtype)
            normal[:, axis] = sign
            normals.append(normal)
    return torch.cat(vertices), torch.cat(normals)


def plane_body(size: float = 1.0, n: int = 10, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A body that is the half-space y < 0: a grid of vertices on y = 0 with normal +y."""
    v, _ = grid_sheet(n, n, size, size, dtype=dtype, x0=-size / 2, z0=-size / 2)
    normals = torch.zeros_like(v)
    normals[:, 1] = 1.0
    return v, normals


# ---------------------------------------------------------------------------------------------
# Material and rest state
# ---------------------------------------------------------------------------------------------


def test_material_constants_are_snugs() -> None:
    assert MAT.area_density == pytest.approx(0.2002, rel=1e-3)
    assert MAT.mu == pytest.approx(2.357e4, rel=1e-3)
    assert MAT.lam == pytest.approx(4.439e4, rel=1e-3)
    assert MAT.bending_stiffness == pytest.approx(KB, rel=1e-12)
    assert MAT.bending_stiffness == pytest.approx(3.96e-5, rel=1e-2)
    assert MAT.collision_margin == 2e-3 and MAT.collision_stiffness > 0


def test_rest_state_of_a_sheet() -> None:
    nx, nz, sx, sz = 4, 3, 0.4, 0.3
    v, f = grid_sheet(nx, nz, sx, sz)
    rest = ClothRest.from_mesh(v, f, MAT)
    assert rest.dm_inv.shape == (len(f), 2, 2) and rest.dm_inv.dtype == torch.float64
    assert float(rest.areas.sum()) == pytest.approx(sx * sz, rel=1e-12)
    assert float(rest.masses.sum()) == pytest.approx(RHO_A * sx * sz, rel=1e-12)
    # Edges of the grid: horizontal + vertical + diagonals; interior = all - boundary.
    all_edges = nx * (nz + 1) + nz * (nx + 1) + nx * nz
    assert len(rest.edges) == all_edges - 2 * (nx + nz)
    assert torch.allclose(rest.hinge_areas, torch.full_like(rest.hinge_areas, sx * sz / (nx * nz)))
    # float32 input stays float32 (the working dtype), indices int64.
    rest32 = ClothRest.from_mesh(v.float(), f, MAT)
    assert rest32.areas.dtype == torch.float32 and rest32.edges.dtype == torch.int64


def test_degenerate_rest_faces_are_dropped_or_refused() -> None:
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1], [2, 0, 0]], dtype=torch.float64)
    # The third face is collinear (0, 1, 4 on the x axis).
    f = torch.tensor([[0, 1, 2], [1, 3, 2], [0, 1, 4]])
    with pytest.raises(NrtoolError, match="1 of the garment's 3 rest faces are degenerate"):
        ClothRest.from_mesh(v, f, MAT, strict=True)
    rest = ClothRest.from_mesh(v, f, MAT)
    assert rest.degenerate.tolist() == [False, False, True]
    assert float(rest.areas[2]) == 0.0 and float(rest.masses[4]) == 0.0
    assert len(rest.edges) == 1  # only the shared edge of the two good faces
    x = (v * 1.1)[None]
    for energy in (strain_energy(x, rest, MAT), bending_energy(x, rest, MAT)):
        assert torch.isfinite(energy).all()
    with pytest.raises(NrtoolError, match="3 of the garment's 3"):
        ClothRest.from_mesh(v, torch.tensor([[0, 1, 4], [0, 0, 1], [2, 2, 2]]), MAT)


# ---------------------------------------------------------------------------------------------
# Strain
# ---------------------------------------------------------------------------------------------


def test_strain_of_a_triangle_under_uniform_stretch_is_the_hand_computed_stvk() -> None:
    # An arbitrary triangle, tilted in space.
    tri = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.0, 0.01], [0.015, 0.0, 0.04]], dtype=torch.float64)
    tri = tri @ rotation((0.3, 1.0, -0.5), 0.8).T + torch.tensor([0.2, 1.0, -0.1], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    rest = ClothRest.from_mesh(tri, faces, MAT)
    area = 0.5 * float(torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0]).norm())
    centre = tri.mean(0)
    s = torch.tensor([1.1, 0.95, 1.0], dtype=torch.float64)
    x = centre + s[:, None, None] * (tri - centre)  # (3, 3, 3): three stretch factors
    # F = s R: G = (s^2 - 1)/2 I, G:G = (s^2 - 1)^2 / 2, tr G = s^2 - 1.
    expected = area * H * (MU * 0.5 * (s**2 - 1) ** 2 + 0.5 * LAM * (s**2 - 1) ** 2)
    got = strain_energy(x, rest, MAT)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-16)
    assert float(got[2]) == pytest.approx(0.0, abs=1e-16)


def test_strain_of_a_uniaxial_stretch_in_the_plane() -> None:
    # Triangle in the xz plane, stretched by s along x only: G has eigenvalues (s^2 - 1)/2 and 0.
    tri = torch.tensor([[0.0, 0.0, 0.0], [0.04, 0.0, 0.005], [0.01, 0.0, 0.03]], dtype=torch.float64)
    rest = ClothRest.from_mesh(tri, torch.tensor([[0, 2, 1]]), MAT)
    area = 0.5 * float(torch.linalg.cross(tri[1] - tri[0], tri[2] - tri[0]).norm())
    s = 1.2
    x = tri * torch.tensor([s, 1.0, 1.0], dtype=torch.float64)
    g = (s**2 - 1) / 2
    expected = area * H * (MU * g**2 + 0.5 * LAM * g**2)
    assert float(strain_energy(x[None], rest, MAT)[0]) == pytest.approx(expected, rel=1e-10)


def test_strain_and_bending_are_zero_at_rest_and_invariant_under_rigid_motion() -> None:
    v, f = grid_sheet(4, 4, 0.2, 0.2)
    rest = ClothRest.from_mesh(bumpy(v), f, MAT)
    flat_rest = ClothRest.from_mesh(v, f, MAT)
    r = rotation((1.0, -2.0, 0.5), 2.1)
    t = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    # Rest shapes (bumpy for strain; flat for bending, whose rest angle is 0) and their rigid motions.
    for x in (bumpy(v), bumpy(v) @ r.T + t):
        assert float(strain_energy(x[None], rest, MAT)[0]) == pytest.approx(0.0, abs=1e-15)
    for x in (v, v @ r.T + t):
        assert float(bending_energy(x[None], flat_rest, MAT)[0]) == pytest.approx(0.0, abs=1e-18)
    # A deformed state keeps its energies under a rigid motion.
    deformed = bumpy(v, seed=3, amount=0.03) * torch.tensor([1.05, 1.0, 0.97], dtype=torch.float64)
    moved = deformed @ r.T + t
    both = torch.stack([deformed, moved])
    for energy in (strain_energy(both, rest, MAT), bending_energy(both, flat_rest, MAT)):
        assert float(energy[0]) > 0
        assert float(energy[1]) == pytest.approx(float(energy[0]), rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Bending
# ---------------------------------------------------------------------------------------------


def hinge(phi: float, length: float = 0.03, height: float = 0.02) -> torch.Tensor:
    """Two triangles on the edge (0,0,0)-(L,0,0); the second folds by phi towards +z, the side the
    first face's normal points to."""
    return torch.tensor([[0.0, 0.0, 0.0], [length, 0.0, 0.0], [length / 2, height, 0.0],
                         [length / 2, -height * math.cos(phi), height * math.sin(phi)]], dtype=torch.float64)


HINGE_FACES = torch.tensor([[0, 1, 2], [1, 0, 3]])


@pytest.mark.parametrize("phi", [0.3, 1.0, 2.5])
def test_bending_of_a_hinge_of_known_dihedral_angle(phi: float) -> None:
    length, height = 0.03, 0.02
    rest = ClothRest.from_mesh(hinge(0.0, length, height), HINGE_FACES, MAT)
    x = torch.stack([hinge(phi, length, height), hinge(-phi, length, height)])
    angles = dihedral_angles(x, rest)
    assert angles[:, 0].tolist() == pytest.approx([phi, -phi], rel=1e-10)
    # k_b l^2 / (4 (A0 + A1)) theta^2 / 2 with A0 = A1 = L H / 2.
    expected = KB * length**2 / (4 * length * height) * phi**2 / 2
    assert bending_energy(x, rest, MAT).tolist() == pytest.approx([expected, expected], rel=1e-10)


def test_bending_gradient_is_finite_at_a_flat_hinge() -> None:
    for dtype in (torch.float32, torch.float64):
        flat = hinge(0.0).to(dtype)
        rest = ClothRest.from_mesh(flat, HINGE_FACES, MAT)
        x = flat[None].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(bending_energy(x, rest, MAT).sum(), x)
        assert torch.isfinite(grad).all() and float(grad.abs().max()) == 0.0
        (grad,) = torch.autograd.grad(dihedral_angles(x, rest).sum(), x)
        # d(theta)/d(z of the folding vertex) = 1/height at a flat hinge: finite and not zero.
        assert torch.isfinite(grad).all()
        assert float(grad[0, 3, 2]) == pytest.approx(1 / 0.02, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# Gravity, collision, pins, layers
# ---------------------------------------------------------------------------------------------


def test_gravity_of_a_sheet_is_m_g_h() -> None:
    sx, sz, h = 0.5, 0.4, 1.3
    v, f = grid_sheet(5, 4, sx, sz)
    rest = ClothRest.from_mesh(v, f, MAT)
    mass = RHO_A * sx * sz
    x = torch.stack([v + torch.tensor([0.0, h, 0.0], dtype=v.dtype), v + torch.tensor([0.0, h + 0.7, 0.0], dtype=v.dtype)])
    assert gravity_energy(x, rest, MAT).tolist() == pytest.approx([mass * 9.81 * h, mass * 9.81 * (h + 0.7)], rel=1e-12)
    floor = torch.tensor([0.0, 0.7], dtype=v.dtype)
    assert gravity_energy(x, rest, MAT, floor).tolist() == pytest.approx([mass * 9.81 * h] * 2, rel=1e-12)
    # A tilted sheet: lumped masses integrate the linear height exactly -> m g (height of the centroid).
    tilted = v.clone()
    tilted[:, 1] = 0.3 * v[:, 0] + h
    assert float(gravity_energy(tilted[None], rest, MAT)[0]) == pytest.approx(mass * 9.81 * (0.3 * sx / 2 + h), rel=1e-12)


def test_collision_is_zero_outside_the_margin_and_cubic_inside() -> None:
    body, normals = plane_body()
    eps, kc = MAT.collision_margin, MAT.collision_stiffness
    heights = [0.05, 0.0021, 0.0019, 0.0, -0.004, -0.02]  # d of a point above the grid vertex (0.1, 0.2)
    points = torch.tensor([[[0.1, d, 0.2]] for d in heights], dtype=torch.float64)
    bodies = body[None].expand(len(heights), -1, -1)
    got = collision_energy(points, bodies, normals[None].expand_as(bodies), MAT)
    expected = [kc * max(eps - d, 0.0) ** 3 for d in heights]
    assert got.tolist() == pytest.approx(expected, rel=1e-9, abs=1e-20)
    assert got[0] == 0 and got[1] == 0 and got[2] > 0
    # Gradient: -3 k_c (eps - d)^2 along the normal, for the point 4 mm deep.
    p = points[4:5].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(collision_energy(p, bodies[:1], normals[None], MAT).sum(), p)
    assert grad[0, 0].tolist() == pytest.approx([0.0, -3 * kc * (eps + 0.004) ** 2, 0.0], rel=1e-9)
    # Each batch element uses its own body: the same point is clear of a body moved 1 m down.
    two = torch.stack([body, body - torch.tensor([0.0, 1.0, 0.0], dtype=body.dtype)])
    e = collision_energy(points[5:6].expand(2, -1, -1), two, normals[None].expand(2, -1, -1), MAT)
    assert float(e[0]) == pytest.approx(kc * (eps + 0.02) ** 3) and float(e[1]) == 0.0


def test_collision_with_faces_adds_the_centroids() -> None:
    """With the faces, each face centroid is penalised like a vertex: a triangle over the plane
    body with corner heights 3, 3 and -3 mm (centroid at 1 mm) costs k_c ((eps + 3 mm)^3 +
    (eps - 1 mm)^3); the corners alone only the first."""
    body, normals = plane_body()
    eps, kc = MAT.collision_margin, MAT.collision_stiffness
    tri = torch.tensor([[[0.10, 0.003, 0.20], [0.12, 0.003, 0.20], [0.11, -0.003, 0.22]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    corners = collision_energy(tri, body[None], normals[None], MAT)
    both = collision_energy(tri, body[None], normals[None], MAT, faces)
    assert float(corners[0]) == pytest.approx(kc * (eps + 0.003) ** 3, rel=1e-9)
    assert float(both[0]) == pytest.approx(kc * ((eps + 0.003) ** 3 + (eps - 0.001) ** 3), rel=1e-9)
    # Lifted 3 mm, the corners are clear (6, 6, 0 mm -> only the last within eps) and so is the centroid (4 mm).
    lifted = tri + torch.tensor([0.0, 0.003, 0.0], dtype=tri.dtype)
    assert float(collision_energy(lifted, body[None], normals[None], MAT, faces)[0]) == pytest.approx(kc * eps**3, rel=1e-9)


def test_pin_energy_of_a_known_displacement() -> None:
    displacement = torch.tensor([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.5, 0.0, -1.0]]])
    pinned = torch.tensor([True, False, True])
    # 2^2 + 0.1 (1 + 9) + 0^2 + 0.1 (0.25 + 1)
    assert float(pin_energy(displacement, pinned)[0]) == pytest.approx(4 + 1.0 + 0.125, rel=1e-6)


class LineBody:
    """Duck-typed BodyModel for :func:`waist_pins`: vertices on the y axis, trunk above y = -0.3."""

    def __init__(self) -> None:
        ys = np.arange(-1.0, 0.5001, 0.01)
        self.v_template = np.stack([np.zeros_like(ys), ys, np.zeros_like(ys)], -1)
        self.weights = np.zeros((len(ys), 24))
        trunk = ys >= -0.305  # between grid rows: no rounding question at y = -0.3
        self.weights[trunk, 0] = 0.6  # pelvis majority
        self.weights[trunk, 1] = 0.4
        self.weights[~trunk, 1] = 1.0  # hip

    def rest_joints(self) -> np.ndarray:
        joints = np.zeros((24, 3))
        joints[3, 1] = -0.1
        return joints


def test_waist_pins_take_the_trunk_band_around_the_waist() -> None:
    # 3 mm above a body row: the nearest body vertex is the row below, never a tie.
    ys = np.arange(-0.5, 0.2, 0.01) + 0.003
    garment = np.stack([np.full_like(ys, 0.02), ys, np.zeros_like(ys)], -1)
    pins = waist_pins(garment, LineBody()).numpy()
    assert pins.dtype == bool and pins.tolist() == (np.abs(ys + 0.1) <= 0.06).tolist()
    # A band reaching below the trunk: the hip-skinned part stays free.
    low = waist_pins(torch.as_tensor(garment), LineBody(), waist_height=-0.32).numpy()
    assert low.tolist() == ((np.abs(ys + 0.32) <= 0.06) & (ys >= -0.3)).tolist()
    assert 0 < low.sum() < (np.abs(ys + 0.32) <= 0.06).sum()


def test_layer_energy_of_a_simple_stack() -> None:
    body = torch.tensor([[[float(i), 0.0, 0.0] for i in range(5)]], dtype=torch.float64)
    lift = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    top = body + 0.02 * lift
    covered = torch.tensor([True, True, False, True, False])
    # Bottom at 1.5 cm under a top at 2 cm: 1.5 - 0.5 x 2 = 0.5 cm per covered vertex.
    assert float(layer_energy(body, top, body + 0.015 * lift, covered)[0]) == pytest.approx(3 * 0.005, rel=1e-9)
    assert float(layer_energy(body, top, body + 0.005 * lift, covered)[0]) == 0.0
    # Covered by both: the top only over the first three vertices, the bottom over all.
    assert covered_by_both(body[0], top[0, :3], body[0] + 0.01 * lift, radius=0.03).tolist() == [True] * 3 + [False] * 2


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


def test_energies_match_finite_differences_in_float64() -> None:
    v, f = grid_sheet(2, 2, 0.04, 0.04)
    rest_shape = bumpy(v, seed=1, amount=0.006)
    rest = ClothRest.from_mesh(rest_shape, f, MAT)
    g = torch.Generator().manual_seed(2)
    x = (rest_shape + 0.003 * torch.randn(rest_shape.shape, generator=g, dtype=torch.float64))[None]
    x = x.clone().requires_grad_(True)
    body, normals = plane_body(size=0.2, n=20)
    # Cloth 1-4 mm above and below the body plane, inside the collision margin.
    near = (x.detach() * torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64) + torch.tensor([0.0, 0.001, 0.0], dtype=torch.float64))
    near = (near + 0.003 * torch.randn(near.shape, generator=g, dtype=torch.float64) * torch.tensor([0, 1, 0])).requires_grad_(True)
    # The body vertices under the cloth, for the layer term.
    under = body[(body[:, 0] >= 0) & (body[:, 0] <= 0.04) & (body[:, 2] >= 0) & (body[:, 2] <= 0.04)]
    checks = [
        (lambda y: strain_energy(y, rest, MAT), x),
        (lambda y: bending_energy(y, rest, MAT) * 1e4, x),
        (lambda y: gravity_energy(y, rest, MAT), x),
        (lambda y: collision_energy(y, body[None], normals[None], MAT), near),
        (lambda y: layer_energy(under[None], y + 0.01, y, torch.ones(len(under), dtype=torch.bool)), near),
    ]
    for fn, inp in checks:
        assert torch.autograd.gradcheck(fn, (inp,), eps=1e-7, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def test_b2g_of_a_sheet_half_inside_a_box_is_a_half() -> None:
    body, normals = box_body()
    v, f = grid_sheet(10, 4, 1.0, 0.4, z0=-0.2)  # x in [0, 1]: half inside the box, half outside
    inside = inside_body(v[None], body[None], normals[None])
    assert inside.shape == (1, len(v)) and inside.dtype == torch.bool
    # The sign test is sharp: a millimetre below / above the tangent plane.
    plane, up = plane_body()
    near = torch.tensor([[[0.12, -0.001, 0.05], [0.12, 0.001, 0.05], [0.3, -0.2, -0.3]]], dtype=torch.float64)
    assert inside_body(near, plane[None], up[None]).tolist() == [[True, False, True]]
    assert float(body_to_garment(v[None], f, body[None], normals[None])[0]) == pytest.approx(0.5, abs=1e-12)
    shifted = v + torch.tensor([0.6, 0.0, 0.0], dtype=v.dtype)  # all outside
    both = torch.stack([v, shifted])
    assert body_to_garment(both, f, body[None].expand(2, -1, -1), normals[None].expand(2, -1, -1)).tolist() == \
        pytest.approx([0.5, 0.0], abs=1e-12)


def layered_cylinders(swapped_radius: float) -> dict[str, torch.Tensor]:
    """A cylinder body (r = 0.10), a top (r = 0.13, y 0.5-1.0) and a bottom of three patches:
    A under the top at r = 0.12 (3/4 of the way around), B over the other quarter at
    ``swapped_radius``, C at r = 0.14 on the legs below the top (y 0-0.3, never covered)."""
    body, _, body_n = cylinder_patch(0.10, 0, 2 * math.pi, -0.1, 1.1, 48, 24)
    top_v, top_f, _ = cylinder_patch(0.13, 0, 2 * math.pi, 0.5, 1.0, 64, 20)
    pa = (0.12, math.pi / 2, 2 * math.pi, 0.55, 0.95, 36)
    pb = (swapped_radius, 0.0, math.pi / 2, 0.55, 0.95, 12)
    pc = (0.14, 0.0, 2 * math.pi, 0.0, 0.3, 48)
    bottom_v, bottom_f = merge(*(cylinder_patch(*p, 8)[:2] for p in (pa, pb, pc)))
    areas = [patch_area(*p) for p in (pa, pb, pc)]
    return {"body": body, "normals": body_n, "top": top_v, "top_faces": top_f, "bottom": bottom_v,
            "bottom_faces": bottom_f, "swapped": areas[1] / sum(areas)}


def test_g2g_counts_the_bottom_outside_the_top_only_where_the_top_covers_it() -> None:
    out = layered_cylinders(0.14)
    args = (out["body"][None], out["normals"][None])
    g2g = garment_to_garment(out["bottom"][None], out["bottom_faces"], out["top"][None], out["top_faces"], *args)
    assert float(g2g[0]) == pytest.approx(out["swapped"], rel=1e-9)
    assert 0.05 < out["swapped"] < 0.2
    # Correct layering (the quarter back under the top): nothing counts, though patch C is at 0.14.
    ok = layered_cylinders(0.12)
    g2g = garment_to_garment(ok["bottom"][None], ok["bottom_faces"], ok["top"][None], ok["top_faces"], *args)
    assert float(g2g[0]) == 0.0
    # B2G of the layered garments on the cylinder body: nothing is inside.
    assert float(body_to_garment(out["bottom"][None], out["bottom_faces"], *args)[0]) == 0.0


def test_frame_metrics_put_the_gravity_zero_at_the_lowest_body_vertex() -> None:
    body, normals = box_body()
    v, f = grid_sheet(10, 4, 1.0, 0.4, z0=-0.2)
    rest = ClothRest.from_mesh(v.float(), f, MAT)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=v.dtype)
    # Frame 1: body and sheet lifted by 1 m together.
    garment = torch.stack([v, v + up]).numpy()
    bodies = torch.stack([body, body + up]).numpy()
    metrics = frame_metrics(garment, rest, bodies, torch.stack([normals, normals]).numpy(), MAT)
    assert set(metrics) == {"b2g", "strain", "bending", "gravity"}
    mgh = RHO_A * 0.4 * 9.81 * 0.5  # the sheet is 0.5 m above the box's bottom
    assert metrics["gravity"].tolist() == pytest.approx([mgh, mgh], rel=1e-5)
    assert metrics["b2g"].tolist() == pytest.approx([0.5, 0.5])
    assert np.abs(metrics["strain"]).max() < 1e-9 and np.abs(metrics["bending"]).max() < 1e-12
    # With a bottom: g2g and the bottom's own metrics.
    cyl = layered_cylinders(0.14)
    top_rest = ClothRest.from_mesh(cyl["top"], cyl["top_faces"], MAT)
    bottom_rest = ClothRest.from_mesh(cyl["bottom"], cyl["bottom_faces"], MAT)
    metrics = frame_metrics(cyl["top"][None], top_rest, cyl["body"][None], cyl["normals"][None], MAT,
                            bottom=cyl["bottom"][None], bottom_rest=bottom_rest)
    assert metrics["g2g"].tolist() == pytest.approx([cyl["swapped"]], rel=1e-9)
    assert {"bottom_b2g", "bottom_strain", "bottom_bending", "bottom_gravity"} <= set(metrics)
