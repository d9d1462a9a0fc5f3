"""Fitting to an image's part masks (thesis Eq. 2.12, ``nrtool fit-image``).

The chain of :mod:`nrtool.drape.fitting` is rendered as soft silhouettes by PyTorch3D's
rasteriser from a calibrated camera: body, top and bottom in one mesh, each face carrying its
part as a one-hot colour, blended by ``softmax_rgb_blend`` (SoftRas' depth-aware blending) so that
a part hidden behind another does not count as visible. The loss is ``1 - IoU`` of each part's
soft visible mask against the image's mask of that part (the IoU loss of [130]); the first
stage (body alone) compares the body's silhouette with the whole person's.

Inputs (documented in the README): the mask is a PNG of part labels -- single channel, 0
background, 1 body, 2 top, 3 bottom -- or RGB in the part colours of
:data:`nrtool.drape.scan_input.PART_COLOURS` on black; the camera is a JSON of OpenCV
intrinsics and extrinsics (:class:`Camera`); the body starts from ``--init`` (an ``.npz`` of
``betas``, ``pose``, ``trans``: no detector ships offline, so the user supplies the estimate).

PyTorch3D's CPU rasteriser is the naive per-pixel one: a step at 48x64 with 8 faces per pixel
costs ~0.2 s on 2 cores (forward and backward), so the silhouettes are rendered at a reduced
size (``render_size``, the longer side) with the masks averaged down to it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import InputFileError, NrtoolError

#: Mask label of each part (0 is background).
MASK_LABELS = {"body": 1, "top": 2, "bottom": 3}
#: SoftRas' edge sharpness (squared NDC). The tutorials' 1e-4 with 3 faces per pixel left holes
#: inside the silhouettes at 48x64: faces within the blur radius (a pixel at this size) but in
#: front filled the slots before the face the pixel lies in (person soft IoU 0.34 against the
#: true masks). 3e-6 and 8 faces per pixel: 0.88, the hard silhouette's pixels at alpha 0.99.
SIGMA = 3e-6


@dataclass
class Camera:
    """A pinhole camera, OpenCV conventions: ``x_img ~ K (R x_world + t)``; x right, y down, z forward."""

    K: np.ndarray  # (3, 3)
    R: np.ndarray  # (3, 3) world -> camera rotation
    t: np.ndarray  # (3,)
    width: int
    height: int

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Camera:
        """``{"width", "height", "fx", "fy", "cx", "cy", and "world_to_camera" (4x4) or "R" (3x3) + "t" (3)}``."""
        p = Path(path)
        if not p.is_file():
            raise InputFileError(p, "no such file")
        try:
            data = json.loads(p.read_text())
            width, height = int(data["width"]), int(data["height"])
            K = np.array([[float(data["fx"]), 0, float(data["cx"])], [0, float(data["fy"]), float(data["cy"])], [0, 0, 1]])
            if "world_to_camera" in data:
                m = np.asarray(data["world_to_camera"], dtype=np.float64)
                if m.shape != (4, 4):
                    raise ValueError("world_to_camera must be 4x4")
                R, t = m[:3, :3], m[:3, 3]
            else:
                R, t = np.asarray(data["R"], dtype=np.float64), np.asarray(data["t"], dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InputFileError(p, f"is not a camera JSON (width, height, fx, fy, cx, cy, world_to_camera or R/t): {what}") from None
        if R.shape != (3, 3) or t.shape != (3,) or width < 1 or height < 1:
            raise InputFileError(p, "needs a 3x3 R, a 3-vector t and a positive width and height")
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
            raise InputFileError(p, "contains NaN or infinite values")
        if abs(np.linalg.det(R) - 1) > 1e-3:
            raise InputFileError(p, "R is not a rotation (det must be 1)")
        return cls(K, R, t, width, height)

    def to_json(self) -> dict[str, Any]:
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.t
        return {"width": self.width, "height": self.height, "fx": float(self.K[0, 0]), "fy": float(self.K[1, 1]),
                "cx": float(self.K[0, 2]), "cy": float(self.K[1, 2]), "world_to_camera": m.tolist()}

    def scaled(self, longest: int) -> tuple[Camera, float]:
        """The same camera at an image whose longer side is ``longest`` pixels, and the factor."""
        factor = min(1.0, longest / max(self.width, self.height))
        K = self.K.copy()
        K[:2] *= factor
        return Camera(K, self.R, self.t, max(1, round(self.width * factor)), max(1, round(self.height * factor))), factor


def read_part_masks(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """``(H, W)`` bool mask per part present (see the module docstring); ``size (W, H)`` must match if given."""
    from nrtool.drape.scan_input import PART_COLOURS
    from nrtool.io.images import read_image

    p = Path(path)
    image = read_image(p, unchanged=True)
    if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        raise InputFileError(p, f"is {image.shape[1]}x{image.shape[0]}, the image is {size[0]}x{size[1]}")
    if image.ndim == 2 or image.shape[2] == 1:
        labels = image.reshape(image.shape[:2]).astype(np.int64)
        bad = sorted(set(np.unique(labels).tolist()) - {0, *MASK_LABELS.values()})
        if bad:
            raise InputFileError(p, f"has label values {bad[:4]}: use 0 background, 1 body, 2 top, 3 bottom")
    else:
        rgb = image[..., :3][..., ::-1].astype(np.float64)  # OpenCV reads BGR
        palette = np.asarray([(0, 0, 0), *PART_COLOURS.values()], dtype=np.float64)
        labels = np.argmin(((rgb[..., None, :] - palette) ** 2).sum(-1), axis=-1)
    masks = {part: labels == value for part, value in MASK_LABELS.items() if np.any(labels == value)}
    if not masks:
        raise InputFileError(p, "labels no pixel as a part (all background)")
    return masks


def _downsample(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


class SilhouetteRenderer:
    """Soft per-part visible silhouettes of a :class:`nrtool.drape.fitting.ClothedState` from one camera."""

    def __init__(self, camera: Camera, device: torch.device, faces_per_pixel: int = 8, sigma: float = SIGMA,
                 soft: bool = True) -> None:
        try:
            from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
            from pytorch3d.utils import cameras_from_opencv_projection
        except ImportError as exc:
            raise NrtoolError("fit-image needs PyTorch3D (pip install easypytorch3d==0.7.9.post1)") from exc
        self.camera, self.device, self.sigma = camera, device, sigma
        cameras = cameras_from_opencv_projection(
            torch.as_tensor(camera.R, dtype=torch.float32)[None], torch.as_tensor(camera.t, dtype=torch.float32)[None],
            torch.as_tensor(camera.K, dtype=torch.float32)[None], torch.tensor([[camera.height, camera.width]])).to(device)
        settings = RasterizationSettings(image_size=(camera.height, camera.width), faces_per_pixel=faces_per_pixel if soft else 1,
                                         blur_radius=float(np.log(1.0 / 1e-4 - 1.0) * sigma) if soft else 0.0,
                                         bin_size=0, perspective_correct=False)
        self.rasterizer = MeshRasterizer(cameras=cameras, raster_settings=settings)

    def render(self, parts: list[tuple[str, torch.Tensor, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``parts``: (name, vertices ``(V, 3)``, faces ``(F, 3)``) -> ({name: soft visible mask ``(H, W)``}, alpha)."""
        from pytorch3d.renderer import BlendParams
        from pytorch3d.renderer.blending import softmax_rgb_blend
        from pytorch3d.structures import Meshes

        names = [name for name, _, _ in parts]
        vertices, faces, part_of_face = _one_mesh(parts)
        fragments = self.rasterizer(Meshes([vertices], [faces]))
        hit = fragments.pix_to_face >= 0
        colours = torch.zeros(fragments.pix_to_face.shape + (3,), device=vertices.device)
        onehot = torch.nn.functional.one_hot(part_of_face[fragments.pix_to_face.clamp_min(0)], 3).float()
        colours = torch.where(hit[..., None], onehot, colours)
        image = softmax_rgb_blend(colours, fragments, BlendParams(sigma=self.sigma, gamma=1e-4, background_color=(0, 0, 0)),
                                  znear=0.01, zfar=100.0)[0]
        # The blended colour says which part is in front; times the coverage, how much of it shows.
        return {name: image[..., k] * image[..., 3] for k, name in enumerate(names)}, image[..., 3]

    def label_image(self, parts: list[tuple[str, torch.Tensor, torch.Tensor]]) -> np.ndarray:
        """Hard labels (0 background, :data:`MASK_LABELS`) of the nearest face per pixel (a truth mask)."""
        from pytorch3d.structures import Meshes

        vertices, faces, part_of_face = _one_mesh(parts)
        labels = torch.as_tensor([MASK_LABELS[name] for name, _, _ in parts])[part_of_face.cpu()]
        with torch.no_grad():
            nearest = self.rasterizer(Meshes([vertices], [faces])).pix_to_face[0, ..., 0].cpu()
        return torch.where(nearest >= 0, labels[nearest.clamp_min(0)], torch.zeros_like(nearest)).numpy().astype(np.uint8)


def _one_mesh(parts: list[tuple[str, torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Renderer parts as one mesh: vertices, faces (indices shifted) and each face's part index."""
    offsets = np.cumsum([0] + [len(v) for _, v, _ in parts])
    vertices = torch.cat([v for _, v, _ in parts])
    faces = torch.cat([f.to(vertices.device) + int(o) for (_, _, f), o in zip(parts, offsets)])
    part_of_face = torch.cat([torch.full((len(f),), k, dtype=torch.int64, device=vertices.device)
                              for k, (_, _, f) in enumerate(parts)])
    return vertices, faces, part_of_face


def hard_iou(found: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks (1 when both are empty)."""
    union = (found | truth).sum()
    return float((found & truth).sum() / union) if union else 1.0


def state_parts(state: Any) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The body and each draped garment of a state, as renderer parts."""
    return [("body", state.body.vertices[0], state.body_faces)] + [
        (c, v[0], state.faces[c]) for c, v in state.garments.items()]


def soft_iou(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    intersection = (prediction * target).sum()
    return intersection / (prediction + target - prediction * target).sum().clamp_min(1e-6)


class ImageObjective:
    """Eq. 2.12: ``1 - IoU`` of each part's soft visible silhouette against its mask."""

    def __init__(self, masks: dict[str, np.ndarray], camera: Camera, render_size: int, device: torch.device) -> None:
        self.camera, self.factor = camera.scaled(render_size)
        self.renderer = SilhouetteRenderer(self.camera, device)
        self.hard = SilhouetteRenderer(self.camera, device, soft=False)
        w, h = self.camera.width, self.camera.height
        self.masks = {p: torch.as_tensor(_downsample(m, w, h), device=device) for p, m in masks.items()}
        self.person = torch.as_tensor(_downsample(np.any(np.stack(list(masks.values())), 0), w, h), device=device)
        self.parts = tuple(masks)

    def terms(self, stage: str, state: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        visible, alpha = self.renderer.render(state_parts(state))
        if stage == "body":
            return {"person": 1 - soft_iou(alpha, self.person)}
        return {part: 1 - soft_iou(visible[part], self.masks[part]) for part in visible if part in self.masks}

    def final_metrics(self, state: Any, generator: torch.Generator) -> dict[str, float]:
        """Hard IoU (labels of the nearest face) per part and of the whole person, at render size."""
        labels = self.hard.label_image(state_parts(state))
        metrics = {}
        for part, mask in self.masks.items():
            metrics[f"iou_{part}"] = hard_iou(labels == MASK_LABELS[part], mask.cpu().numpy() > 0.5)
        metrics["iou_person"] = hard_iou(labels > 0, self.person.cpu().numpy() > 0.5)
        return metrics
