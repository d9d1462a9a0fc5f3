"""A garment surface as a differentiable function of its code (what fitting optimises through).

MeshUDF has no gradient of its own; :func:`nrtool.geometry.meshudf.differentiable_vertices`
gives its implicit-function derivative ``dv/dz = -n (du/dz)/(n . grad u)`` at ``v + epsilon n``.
Meshing costs ~0.5 s for the tiny garment network at 48³ on 2 cores, so a :class:`CodeSurface`
re-meshes only when told (:meth:`CodeSurface.remesh`) and in between lets the vertices follow the
code to first order (``reference`` in ``differentiable_vertices``): the faces stay, the vertices move.
"""

from __future__ import annotations

from typing import Any

import torch

from nrtool.errors import NrtoolError

#: Offset off the surface (normalised frame) where MeshUDF's derivative is taken: inside the
#: clip distance, where the learnt UDF is smooth (as :func:`nrtool.garments.meshing.vertices_with_grad`).
SURFACE_EPSILON = 0.02


class CodeSurface:
    """Code -> garment mesh in the body's frame (``x * scale + centre`` of the network's training
    normalisation), differentiable w.r.t. the code.

    ``checkpoint``: a garment checkpoint's dictionary (a file's, or the one a draping checkpoint
    embeds); ``path`` names it in errors.
    """

    def __init__(self, checkpoint: dict[str, Any], path: Any, resolution: int, device: torch.device,
                 name: str = "garment") -> None:
        from nrtool.garments.model import model_from_checkpoint

        self.name, self.resolution, self.device = name, resolution, device
        self.net = model_from_checkpoint(checkpoint, path, device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        from nrtool.garments.model import training_normalisation

        centre, self.scale = training_normalisation(checkpoint)
        self.centre = torch.as_tensor(centre, dtype=torch.float32, device=device)
        self.mesh: dict[str, torch.Tensor] | None = None
        self.remeshes = 0

    def remesh(self, code: torch.Tensor) -> None:
        """Decode ``code`` anew (MeshUDF, no gradient) and keep what the first-order motion needs."""
        from nrtool.garments.meshing import decode_mesh
        from nrtool.geometry.meshudf import vertex_normals

        vertices, faces = decode_mesh(self.net, code.detach(), self.resolution)
        if len(faces) == 0:
            raise NrtoolError(f"the {self.name} code decodes to no surface at {self.resolution}^3 "
                              "(the fit left the garment space: lower --lr)")
        v = torch.as_tensor(vertices, dtype=torch.float32, device=self.device)
        n = torch.as_tensor(vertex_normals(vertices, faces), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            reference = self.net.udf_fn(code.detach())(v + SURFACE_EPSILON * n)
        self.mesh = {"vertices": v, "normals": n, "reference": reference,
                     "faces": torch.as_tensor(faces, dtype=torch.int64, device=self.device)}
        self.remeshes += 1

    @property
    def faces(self) -> torch.Tensor:
        assert self.mesh is not None, "remesh() first"
        return self.mesh["faces"]

    def vertices(self, code: torch.Tensor) -> torch.Tensor:
        """``(V, 3)`` the garment in the body's frame, differentiable w.r.t. ``code`` (meshed on first use)."""
        from nrtool.geometry.meshudf import differentiable_vertices

        if self.mesh is None:
            self.remesh(code)
        assert self.mesh is not None
        v = differentiable_vertices(self.net.udf_fn(code), self.mesh["vertices"], self.mesh["normals"],
                                    epsilon=SURFACE_EPSILON, reference=self.mesh["reference"])
        return v * self.scale + self.centre
