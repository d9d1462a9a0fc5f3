"""Training a :class:`~nrtool.nerf.model.DenseGridNeRF` on posed frames, and its checkpoint.

The run goes through the one training loop (:func:`nrtool.training.run_training`): an "epoch"
is :data:`STEPS_PER_EPOCH` optimisation steps, so progress, ``--time-limit`` and resuming after
an interruption work as for every other model. Each epoch reports the training PSNR and, when
held-out frames were given, the PSNR of one of them; the last epoch is kept (a NeRF only gets
better with steps, and a held-out view's PSNR is too noisy to pick an epoch by).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import InputFileError, NrtoolError
from nrtool.nerf.config import NerfConfig
from nrtool.nerf.metrics import psnr_from_mse
from nrtool.nerf.model import DenseGridNeRF, reset_moments
from nrtool.nerf.rays import FrameRays
from nrtool.nerf.views import Views

CHECKPOINT_FORMAT = "nrtool-nerf"
CHECKPOINT_VERSION = 1
STEPS_PER_EPOCH = 100
#: Steps before the first occupancy update (the grid must first learn where nothing is).
OCCUPANCY_WARMUP = 32
#: Rays per chunk when rendering whole frames.
RENDER_CHUNK = 16_384


@dataclass
class NerfModel:
    """A loaded NeRF checkpoint."""

    model: DenseGridNeRF
    config: NerfConfig
    data: dict[str, Any]  # what it was trained on: source, split, frame size, camera
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    path: str = ""


def make_model(config: NerfConfig, box: tuple[np.ndarray, np.ndarray], learned_background: bool) -> DenseGridNeRF:
    return DenseGridNeRF(box[0], box[1], config.grid_start, config.features, config.mlp_width,
                         config.view_frequencies, config.step_ratio, learned_background, config.alpha_init)


def resolve_background(config: NerfConfig, views: Views) -> bool:
    """True for a learned background (``auto``: when the frames carry no alpha)."""
    if config.background == "auto":
        return views.alpha is None
    return config.background == "learned"


class NerfTrainer:
    """The epochs of one NeRF, for :func:`nrtool.training.run_training`."""

    def __init__(self, config: NerfConfig, views: Views, box: tuple[np.ndarray, np.ndarray], device: torch.device,
                 held_out: Views | None = None) -> None:
        torch.manual_seed(config.seed)
        self.config = config
        self.device = device
        self.model = make_model(config, box, resolve_background(config, views)).to(device)
        self.rays = FrameRays.of(views, device)
        self.held_out = FrameRays.of(held_out, device) if held_out is not None and len(held_out) else None
        grids = [self.model.density, self.model.features]
        others = [p for n, p in self.model.named_parameters() if n not in ("density", "features")]
        self.optimizer = torch.optim.Adam([{"params": grids, "lr": config.lr_grid},
                                           {"params": others, "lr": config.lr_mlp}], betas=(0.9, 0.99),
                                          fused=True)  # one pass over the dense grids, on CPU and CUDA
        # DVGO's decay: the rates fall to a tenth over the run.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 0.1 ** (s / config.steps))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None
        self.steps_per_epoch = STEPS_PER_EPOCH
        self.upsample_at = set(config.upsample_steps())

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        config, model = self.config, self.model
        first = (epoch - 1) * STEPS_PER_EPOCH
        last = min(config.steps, epoch * STEPS_PER_EPOCH)
        losses, samples, done = [], [], 0
        for step in range(first, last):
            if step in self.upsample_at and model.upsample(config.grid_at(step)):
                reset_moments(self.optimizer, [model.density, model.features])
            if step >= OCCUPANCY_WARMUP and step % config.occupancy_every == 0:
                model.update_occupancy(config.occupancy_threshold)
            mse, count = self._step()
            losses.append(mse)
            samples.append(count)
            done += 1
            advance(1)
        # The time limit is looked at between epochs only (by the loop): a stopped run then
        # resumes at an epoch boundary and ends exactly as an uninterrupted one.
        advance(STEPS_PER_EPOCH - done)  # a short last epoch
        mse = float(np.mean(losses)) if losses else float("nan")
        return {"train_mse": mse, "train_psnr": psnr_from_mse(mse), "steps": float(done),
                "samples_per_ray": float(np.mean(samples)) / config.rays if samples else 0.0,
                "grid": float(max(model.shape)), "occupied": float(model.occupancy.float().mean())}

    def _step(self) -> tuple[float, float]:
        """One optimisation step; returns its MSE and sample count. A method of its own so that
        no graph outlives it: a live graph would pin the grids' old shapes when they grow."""
        config, model = self.config, self.model
        flat = torch.randint(self.rays.pixels, (config.rays,), generator=self.generator).to(self.device)
        jitter = torch.rand(config.rays, generator=self.generator).to(self.device)
        origins, directions, target = self.rays.at(flat)
        out = model.render(origins, directions, jitter)
        mse = torch.mean((out["rgb"] - target) ** 2)
        loss = mse
        if config.tv_weight:
            loss = loss + config.tv_weight * model.total_variation()
        if config.sparsity_weight:
            # Empty space starts at alpha_init per voxel; nothing else asks it to clear where it
            # does not change a pixel's colour (haze over the board): a mean alpha per sample.
            loss = loss + config.sparsity_weight * out["sample_alpha"]
        if config.entropy_weight:
            # DVGO's background entropy: a ray is either blocked or clear. Without it the empty
            # space in front of a white background keeps its initial density (white over white
            # costs nothing) and is never skipped.
            a = out["alpha"].clamp(1e-6, 1 - 1e-6)
            loss = loss + config.entropy_weight * -(a * a.log() + (1 - a) * (1 - a).log()).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return mse.item(), float(out["samples"])

    def validate(self, epoch: int) -> dict[str, float]:
        if self.held_out is None:
            return {}
        rgb, _ = render_frame(self.model, self.held_out, 0)
        mse = float(torch.mean((rgb - self.held_out.rgb[0]) ** 2))
        return {"val_psnr": psnr_from_mse(mse)}

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return None  # keep the last epoch


@torch.no_grad()
def render_frame(model: DenseGridNeRF, rays: FrameRays, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) RGB and (H, W) alpha of frame ``index``."""
    model.eval()
    origins, directions = rays.frame(index)
    rgb, alpha = [], []
    for start in range(0, len(origins), RENDER_CHUNK):
        out = model.render(origins[start:start + RENDER_CHUNK], directions[start:start + RENDER_CHUNK])
        rgb.append(out["rgb"])
        alpha.append(out["alpha"])
    h, w = rays.height, rays.width
    return torch.cat(rgb).view(h, w, 3).clamp(0, 1), torch.cat(alpha).view(h, w)


def views_fingerprint(views: Views) -> dict[str, Any]:
    """What identifies the frames a run trains on (for resuming)."""
    import hashlib

    digest = hashlib.sha256(views.images.tobytes()).hexdigest()[:16]
    return {"source": str(Path(views.source).resolve()), "split": views.split, "frames": len(views),
            "size": list(views.size), "pixels_sha": digest,
            "poses_sha": hashlib.sha256(views.camera_to_world.tobytes()).hexdigest()[:16]}


def train_nerf(views: Views, config: NerfConfig, out: str | os.PathLike[str] | None,
               box: tuple[np.ndarray, np.ndarray], device: torch.device, progress: Any = None,
               held_out: Views | None = None, time_limit: float | None = None, restart: bool = False,
               extra: dict[str, Any] | None = None) -> tuple[NerfModel, Any]:
    """Train on ``views`` inside ``box``; with ``out``, resumable and saved there. Returns the
    model and the training run."""
    from nrtool.training import LoopSettings, run_training

    config.validate()
    box = (np.asarray(box[0], np.float64), np.asarray(box[1], np.float64))
    if not np.all(box[1] > box[0]):
        raise NrtoolError(f"the scene box {box[0].tolist()} .. {box[1].tolist()} is empty")
    trainer = NerfTrainer(config, views, box, device, held_out)
    loop = LoopSettings(epochs=math.ceil(config.steps / STEPS_PER_EPOCH), val_every=1, time_limit=time_limit)
    fingerprint = {"config": config.to_dict(), "box": [box[0].tolist(), box[1].tolist()],
                   "views": views_fingerprint(views)}
    run = run_training(trainer, out, "nerf", fingerprint, loop, progress, restart,
                       f"training NeRF ({config.preset}, {views.size[0]}x{views.size[1]}, {len(views)} frames)")
    trainer.model.load_state_dict(run.best_state)
    data = {"source": views.source, "dataset": views.source, "split": views.split, "frames": len(views),
            "names": list(views.names),
            "size": list(views.size), "full_size": list(views.full_size), "K": views.K.tolist(),
            "distortion": views.distortion.tolist(), "alpha": views.alpha is not None,
            "camera_to_world": views.camera_to_world.tolist(), "fingerprint": views_fingerprint(views), **(extra or {})}
    result = NerfModel(trainer.model.eval(), config, data, run.history, run.seconds, str(out or ""))
    if out is not None:
        save_nerf(out, result)
        if not run.stopped_by_time_limit:  # otherwise OUT.partial stays: a rerun carries on
            run.finish()
    return result, run


def save_nerf(path: str | os.PathLike[str], nerf: NerfModel) -> None:
    from nrtool.checkpoints import save_checkpoint

    model = nerf.model
    save_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {
        "config": nerf.config.to_dict(),
        "box": [model.box_min.tolist(), model.box_max.tolist()],
        "learned_background": bool(model.learned_background),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "data": nerf.data,
        "history": nerf.history,
        "seconds": float(nerf.seconds),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })


def load_nerf(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> NerfModel:
    """A checkpoint of :func:`save_nerf` (one-line error naming the file otherwise)."""
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "NeRF", "nrtool nerf train")
    try:
        config = NerfConfig.from_dict(data["config"])
        box = (np.asarray(data["box"][0]), np.asarray(data["box"][1]))
        model = make_model(config, box, bool(data["learned_background"]))
        model.load_state_dict(data["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError, NrtoolError) as exc:
        raise damaged(path, "NeRF", exc) from exc
    return NerfModel(model.to(device).eval(), config, dict(data["data"]), list(data.get("history", [])),
                     float(data.get("seconds", 0.0)), str(path))


def finished_nerf(path: str | os.PathLike[str], config: NerfConfig, views: Views, box: tuple[np.ndarray, np.ndarray],
                  device: torch.device | str = "cpu") -> NerfModel | None:
    """The model that a finished earlier training left in ``path`` with the same settings, frames
    and box (a rerun goes straight to what follows the training), else None: absent, damaged,
    stopped by a time limit (``path.partial`` is there, a rerun continues it) or trained on
    something else."""
    from nrtool.training import partial_path

    path = Path(path)
    if not path.is_file() or partial_path(path).exists():
        return None
    try:
        nerf = load_nerf(path, device)
    except InputFileError:
        return None
    same_box = (np.allclose(nerf.model.box_min.cpu().numpy(), box[0], atol=1e-6)
                and np.allclose(nerf.model.box_max.cpu().numpy(), box[1], atol=1e-6))
    if nerf.config != config or nerf.data.get("fingerprint") != views_fingerprint(views) or not same_box:
        return None
    return nerf


def check_frames_match(nerf: NerfModel, views: Views, where: str | os.PathLike[str]) -> None:
    """Frames rendered with a model must share its frames' aspect (K is rescaled to any size)."""
    w, h = nerf.data["full_size"]
    fw, fh = views.full_size
    if abs(w / h - fw / fh) > 1e-3:
        raise InputFileError(where, f"its frames are {fw}x{fh}, the NeRF was trained on {w}x{h} frames")
