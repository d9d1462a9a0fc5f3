"""Garment-only latent optimisation (thesis App. A.3.1, ``nrtool garment fit``).

The garment network is frozen; one code, started at the mean of its training codes, is optimised
so that the decoded garment (MeshUDF, differentiable through
:class:`nrtool.garments.surface.CodeSurface`) fits a target:

- a sparse or partial **point cloud** (Eq. A.5): Chamfer between points sampled on the garment
  and the cloud; with ``observed`` (``--partial``) garment points farther than that from every
  cloud point are left out of the garment-to-cloud half (a partial cloud says nothing of them);
- a **silhouette** (Eq. A.4): ``1 - IoU`` of the garment's soft silhouette (PyTorch3D, the
  renderer of :mod:`nrtool.drape.image_fit`) against a mask, from a calibrated camera.

The thesis: 1000 steps of Adam at 0.01. The target is in the garment's frame (the body's
canonical frame: metres, y up, facing +z), where ``garment decode`` puts its meshes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress

#: MeshUDF grid of the fitted garment unless told: the tiny draping models' (a garment checkpoint
#: does not record one).
DEFAULT_RESOLUTION = 48


class CodeParameter(nn.Module):
    def __init__(self, code: np.ndarray) -> None:
        super().__init__()
        self.code = nn.Parameter(torch.as_tensor(np.asarray(code, dtype=np.float32)))


class GarmentCodeFitter:
    """Adam on one code against a cloud or a silhouette (a Trainer of :func:`nrtool.training.run_training`)."""

    def __init__(self, surface: Any, code: np.ndarray, steps: int, lr: float, remesh_every: int, samples: int,
                 steps_per_epoch: int, cloud: torch.Tensor | None = None, observed: float | None = None,
                 silhouette: tuple[Any, Any, torch.Tensor] | None = None, seed: int = 0) -> None:
        self.model = CodeParameter(code).to(surface.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.scheduler, self.rng = None, None
        self.generator = torch.Generator().manual_seed(seed)
        self.surface, self.steps, self.remesh_every, self.samples = surface, steps, remesh_every, samples
        self.steps_per_epoch = steps_per_epoch
        self.cloud, self.observed, self.silhouette = cloud, observed, silhouette
        self._since = remesh_every

    def loss(self, samples: int | None = None) -> torch.Tensor:
        from nrtool.drape.fitting import chamfer, surface_samples
        from nrtool.drape.image_fit import soft_iou

        vertices = self.surface.vertices(self.model.code)[None]
        if self.silhouette is not None:
            renderer, _, mask = self.silhouette
            visible, _ = renderer.render([("top", vertices[0], self.surface.faces)])
            return 1 - soft_iou(visible["top"], mask)
        points = surface_samples(vertices, self.surface.faces, samples or self.samples, self.generator)
        return chamfer(points, self.cloud, self.observed)[0]

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        count = min(self.steps_per_epoch, self.steps - (epoch - 1) * self.steps_per_epoch)
        total, done = 0.0, 0
        for _ in range(max(count, 0)):
            if self._since >= self.remesh_every or self.surface.mesh is None:
                self.surface.remesh(self.model.code)
                self._since = 0
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss()
            if not bool(torch.isfinite(loss)):
                raise NrtoolError(f"the code fit diverged (loss {float(loss)}): lower --lr")
            loss.backward()
            self.optimizer.step()
            self._since += 1
            total, done = total + float(loss.detach()), done + 1
            advance()
            if out_of_time():
                break
        return {"steps": done, "loss": total / max(done, 1)}

    def validate(self, epoch: int) -> dict[str, float]:
        return {}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return None


def garment_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A garment checkpoint's dictionary, from a garment checkpoint or the one a draping checkpoint embeds."""
    from nrtool.checkpoints import load_checkpoint
    from nrtool.drape.model import load_draping
    from nrtool.garments.model import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    try:
        return load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "garment", "nrtool train garment")
    except InputFileError as exc:
        if "nrtool-drape" not in str(exc):
            raise
    return load_draping(path).checkpoint["garment"]


def _measure(fitter: GarmentCodeFitter) -> float:
    """The fit's quality at the current code, meshed afresh: Chamfer to the cloud (mm, 50k samples;
    for a partial cloud only the observed garment points count) or the hard silhouette IoU."""
    from nrtool.drape.fitting import chamfer, surface_samples
    from nrtool.drape.image_fit import hard_iou

    fitter.surface.remesh(fitter.model.code)
    with torch.no_grad():
        vertices = fitter.surface.vertices(fitter.model.code)[None]
        if fitter.silhouette is not None:
            _, hard, mask = fitter.silhouette
            labels = hard.label_image([("top", vertices[0], fitter.surface.faces)]) > 0
            return hard_iou(labels, mask.cpu().numpy() > 0.5)
        points = surface_samples(vertices, fitter.surface.faces, 50_000, torch.Generator().manual_seed(1))
        return 1000 * float(chamfer(points, fitter.cloud, fitter.observed)[0])


def fit_garment_code(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cloud_path: str | os.PathLike[str] | None = None,
    mask_path: str | os.PathLike[str] | None = None,
    camera_path: str | os.PathLike[str] | None = None,
    steps: int = 1000,
    lr: float = 0.01,
    partial: float | None = None,
    resolution: int | None = None,
    remesh_every: int = 10,
    samples: int = 4000,
    render_size: int = 64,
    time_limit: float | None = None,
    restart: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit a code to a cloud (``cloud_path``) or a silhouette (``mask_path`` + ``camera_path``); write
    ``out`` (the code, ``.npy``), the decoded garment beside it (``.obj``) and a figure (``.png``)."""
    from nrtool.artifacts.core import atomic_output, check_output_file, sha256_file
    from nrtool.device import resolve_device
    from nrtool.drape.fit_outputs import fit_sheet
    from nrtool.garments.model import training_codes
    from nrtool.garments.surface import CodeSurface
    from nrtool.io import save_obj_parts
    from nrtool.training import LoopSettings, run_training

    progress = progress or SilentProgress()
    if (cloud_path is None) == (mask_path is None):
        raise NrtoolError("give a target: a point cloud, or --mask with --camera")
    if mask_path is not None and camera_path is None:
        raise NrtoolError("--mask needs --camera (where the silhouette was seen from)")
    if steps < 1 or lr <= 0 or remesh_every < 1 or samples < 100:
        raise NrtoolError("--steps and --remesh-every must be at least 1, --lr positive, --samples at least 100")
    if resolution is not None and not 16 <= resolution <= 512:
        raise NrtoolError(f"--resolution must be between 16 and 512, got {resolution}")
    out = check_output_file(out, "--out")
    torch_device = resolve_device(device)
    checkpoint = garment_checkpoint(model_path)
    res = resolution or DEFAULT_RESOLUTION
    surface = CodeSurface(checkpoint, model_path, res, torch_device, str(checkpoint.get("category", "garment")))
    start = training_codes(checkpoint).mean(0)
    cloud = silhouette = None
    points = np.zeros((0, 3))
    if cloud_path is not None:
        from nrtool.drape.scan_input import read_points

        points = read_points(Path(cloud_path))[0]
        if len(points) < 10:
            raise InputFileError(cloud_path, f"has only {len(points)} points (at least 10 are needed)")
        cloud = torch.as_tensor(points, dtype=torch.float32, device=torch_device)[None]
        inputs = [cloud_path]
    else:
        from nrtool.drape.image_fit import Camera, SilhouetteRenderer, _downsample
        from nrtool.io.images import read_image

        camera = Camera.from_json(camera_path)  # type: ignore[arg-type]
        image = read_image(mask_path, unchanged=True)  # type: ignore[arg-type]
        if (image.shape[1], image.shape[0]) != (camera.width, camera.height):
            raise InputFileError(mask_path, f"is {image.shape[1]}x{image.shape[0]}, the camera's image "
                                 f"{camera.width}x{camera.height}")
        mask = (image.reshape(image.shape[0], image.shape[1], -1).max(-1) > 0)
        if not mask.any():
            raise InputFileError(mask_path, "has no garment pixels (all zero)")
        small, _ = camera.scaled(render_size)
        silhouette = (SilhouetteRenderer(small, torch_device), SilhouetteRenderer(small, torch_device, soft=False),
                      torch.as_tensor(_downsample(mask, small.width, small.height), device=torch_device))
        inputs = [mask_path, camera_path]
    spe = 50
    fitter = GarmentCodeFitter(surface, start, steps, lr, remesh_every, samples, spe, cloud, partial, silhouette)
    before = _measure(fitter)
    before_mesh = (surface.vertices(fitter.model.code).detach().cpu().numpy(), surface.faces.cpu().numpy())
    fingerprint = {"model": sha256_file(model_path), "inputs": {str(p): sha256_file(p) for p in inputs},
                   "settings": [steps, lr, partial, res, remesh_every, samples, render_size]}
    epochs = max(1, math.ceil(steps / spe))
    run = run_training(fitter, out, "code-fit", fingerprint, LoopSettings(epochs=epochs, val_every=epochs, time_limit=time_limit),
                       progress, restart, "fitting the code")
    summary: dict[str, Any] = {"out": str(out), "steps": int(sum(h.get("steps", 0) for h in run.history)),
                               "seconds": run.seconds, "resumed_from_epoch": run.resumed_from_epoch,
                               "stopped_by_time_limit": run.stopped_by_time_limit, "target": "cloud" if cloud is not None
                               else "silhouette", "resolution": res}
    if run.stopped_by_time_limit:
        return summary
    fitter.model.load_state_dict(run.best_state)
    after = _measure(fitter)
    vertices = surface.vertices(fitter.model.code).detach().cpu().numpy()
    key = "chamfer_mm" if cloud is not None else "iou"
    summary.update({f"{key}_start": before, key: after, "vertices": int(len(vertices)), "obj": str(out.with_suffix(".obj")),
                    "figure": str(out.with_suffix(".png"))})
    with atomic_output(out, ".npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, fitter.model.code.detach().cpu().numpy().astype(np.float32)[None])
    save_obj_parts(out.with_suffix(".obj"), [(surface.name, vertices, surface.faces.cpu().numpy())])
    rows = [("mean code", [(surface.name, *before_mesh)]), ("fitted", [(surface.name, vertices, surface.faces.cpu().numpy())])]
    fit_sheet(rows, {surface.name: points} if len(points) else {}, out.with_suffix(".png"),
              title=f"{key.replace('_mm', ' (mm)')}: {before:.3f} -> {after:.3f}")
    run.finish()
    return summary
