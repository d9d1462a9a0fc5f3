"""``nrtool mask``: object masks of a turntable capture from a NeRF of its raw frames (ScanNeRF,
thesis Sec. 3.3.3).

1. A NeRF is trained on every kept frame as filmed (board, turntable and room included) inside
   a *training box* wider than the board: whatever the room contributes can settle there, away
   from the object.
2. A *render box* covers the board's footprint from ``z_offset`` above the board up to
   ``box_height``. The offset cuts the board itself away: with about one voxel the board's dark
   squares leak into the alpha, so it defaults to the larger of 2 voxels and an eighth of a board
   square (6.25 mm on a 5 cm board: the board's density is a few millimetres thick whatever the
   voxel, measured in the README).
3. Each frame's alpha is rendered from its own pose at full resolution with only the density
   inside the render box, and thresholded into the mask.

Written into ``OUT``: ``NAME.png`` per frame (0/255, what ``export nerf --masks OUT`` reads),
``rgba/NAME.png`` (the frame with the mask as alpha), ``masks.h5`` (the ``masks`` artifact),
``contact_sheet.png`` (frames, alpha, masks) and ``nerf.pt`` (the model; an interrupted
training resumes from ``nerf.pt.partial``). The mask images are staged in ``OUT/.staging`` and
moved into place when every frame is done; ``masks.h5`` is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from nrtool.config import Config, option
from nrtool.errors import InputFileError, NrtoolError
from nrtool.nerf.boxes import board_boxes, default_z_offset, render_box
from nrtool.nerf.config import NerfConfig

if TYPE_CHECKING:
    from nrtool.nerf.rays import FrameRays

KIND = "masks"


@dataclass(frozen=True)
class MaskSettings(Config):
    """Where the render box sits and how alpha becomes a mask (lengths in the scan's unit)."""

    WHAT = "mask"

    z_offset: float | None = option(None, help="Height of the render box's floor above the board (default: the larger "
                                    "of 2 voxels and an eighth of a board square).")
    box_height: float | None = option(None, help="Height of the render box's top above the board (default: half the "
                                      "board's longer side).")
    threshold: float = option(0.5, help="Alpha at or above which a pixel is the object.")
    train_margin: float = option(1.25, help="The training box's footprint over the board's (>= 1).")

    def checks(self) -> dict[str, bool]:
        return {"z_offset": self.z_offset is None or self.z_offset >= 0,
                "box_height": self.box_height is None or self.box_height > 0,
                "threshold": 0 < self.threshold < 1, "train_margin": self.train_margin >= 1}


@torch.no_grad()
def frame_alpha(model: Any, rays: "FrameRays", index: int, box: tuple[torch.Tensor, torch.Tensor],
                chunk: int = 65_536) -> torch.Tensor:
    """(H, W) opacity inside ``box`` of frame ``index``."""
    origins, directions = rays.frame(index)
    alpha = [model.render_alpha(origins[s:s + chunk], directions[s:s + chunk], box)
             for s in range(0, len(origins), chunk)]
    return torch.cat(alpha).view(rays.height, rays.width)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    union = np.logical_or(mask, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(mask, truth).sum() / union)


@dataclass
class MaskResult:
    names: list[str]
    coverage: np.ndarray  # (N,) fraction of the frame that is object
    iou: np.ndarray  # (N,) NaN without ground truth
    details: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        valid = self.iou[np.isfinite(self.iou)]
        return {"frames": len(self.names), "coverage_mean": float(self.coverage.mean()),
                "iou_mean": float(valid.mean()) if len(valid) else None,
                "iou_min": float(valid.min()) if len(valid) else None, **self.details}


def make_masks(scan: str | os.PathLike[str], out: str | os.PathLike[str], config: NerfConfig,
               settings: MaskSettings, images: str | os.PathLike[str] | None = None,
               truth: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu",
               progress: Any = None, time_limit: float | None = None, restart: bool = False,
               command: list[str] | None = None, sheet_frames: int = 6) -> MaskResult:
    """Train (or resume) the NeRF of ``scan``'s raw frames and write every kept frame's mask."""
    from nrtool.artifacts.core import output_lock
    from nrtool.io.images import write_image
    from nrtool.nerf.rays import FrameRays
    from nrtool.nerf.train import finished_nerf, train_nerf
    from nrtool.nerf.views import camera_for, read_mask, scan_frames, views_from_scan
    from nrtool.progress import SilentProgress
    from nrtool.scan.artifact import load_scan

    settings.validate()
    config.validate()
    progress = progress or SilentProgress()
    device = torch.device(device)
    scan = Path(scan)
    out = Path(out)
    truth_folder = Path(truth) if truth is not None else None
    if truth_folder is not None and not truth_folder.is_dir():
        raise InputFileError(truth_folder, "ground-truth masks folder not found")
    data = load_scan(scan)
    indices = np.flatnonzero(data.kept & np.isfinite(data.camera_to_world).all(axis=(1, 2)))
    if not len(indices):
        raise InputFileError(scan, "has no kept, posed frame to mask")
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out / "masks.h5"):
        views = views_from_scan(scan, "all", config.max_side, images, progress=progress)
        train_box, height = board_boxes(data.board, settings.box_height, settings.train_margin)
        started = time.perf_counter()
        nerf = finished_nerf(out / "nerf.pt", config, views, train_box, device) if not restart else None
        reused, resumed_from, stopped = nerf is not None, None, False
        if nerf is None:
            nerf, run = train_nerf(views, config, out / "nerf.pt", train_box, device, progress, time_limit=time_limit,
                                   restart=restart, extra={"purpose": "mask"})
            resumed_from, stopped = run.resumed_from_epoch, run.stopped_by_time_limit
        train_s = time.perf_counter() - started
        model = nerf.model
        z_offset = settings.z_offset if settings.z_offset is not None else default_z_offset(model.voxel_size, data.board)
        if z_offset >= height:
            raise NrtoolError(f"--z-offset {z_offset:g} is not below the render box's top ({height:g}); raise --box-height")
        box_np = render_box(data.board, z_offset, height)
        box = (torch.as_tensor(box_np[0], dtype=torch.float32, device=device),
               torch.as_tensor(box_np[1], dtype=torch.float32, device=device))
        full = views.full_size
        intr = camera_for(data.intrinsics, full)
        # Full-resolution rays from every masked frame's own pose.
        rays = FrameRays(intr.K, intr.distortion5(), full, data.camera_to_world[indices], device=device)
        staging = out / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "rgba").mkdir(parents=True)
        sheet_at = set(np.linspace(0, len(indices) - 1, min(sheet_frames, len(indices))).round().astype(int).tolist())
        sheet: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        coverage, ious, names = [], [], []
        started = time.perf_counter()
        with progress.task("rendering masks", len(indices), unit="frames") as advance:
            for k, (i, image, _where) in enumerate(scan_frames(data, scan, indices, Path(images) if images else None)):
                alpha = frame_alpha(model, rays, k, box).cpu().numpy()
                mask = alpha >= settings.threshold
                name = data.names[i]
                write_image(staging / f"{name}.png", np.where(mask, 255, 0).astype(np.uint8))
                bgr = np.ascontiguousarray(image[:, :, 2::-1])
                write_image(staging / "rgba" / f"{name}.png",
                            np.dstack([bgr, np.where(mask, 255, 0).astype(np.uint8)]))
                coverage.append(float(mask.mean()))
                names.append(name)
                if truth_folder is not None:
                    ious.append(iou(mask, read_mask(truth_folder / f"{name}.png") >= 128))
                else:
                    ious.append(float("nan"))
                if k in sheet_at:
                    sheet.append((name, image[:, :, :3], alpha, mask))
                advance(1)
        render_s = time.perf_counter() - started
        for file in staging.glob("*.png"):
            os.replace(file, out / file.name)
        (out / "rgba").mkdir(exist_ok=True)
        for file in (staging / "rgba").glob("*.png"):
            os.replace(file, out / "rgba" / file.name)
        shutil.rmtree(staging, ignore_errors=True)
        contact_sheet(sheet, out / "contact_sheet.png")
        details = {"scan": str(scan), "out": str(out), "nerf": str(out / "nerf.pt"), "preset": config.preset,
                   "train_size": list(views.size), "frame_size": list(full), "training_frames": len(views),
                   "train_box": [train_box[0].tolist(), train_box[1].tolist()],
                   "render_box": [box_np[0].tolist(), box_np[1].tolist()], "z_offset": float(z_offset),
                   "box_height": float(height), "threshold": settings.threshold, "voxel": model.voxel_size,
                   "train_s": train_s, "render_s": render_s, "seed": config.seed,
                   "train_psnr": nerf.history[-1].get("train_psnr") if nerf.history else None,
                   "resumed_from_epoch": resumed_from, "stopped_by_time_limit": stopped,
                   "reused_model": reused}
        result = MaskResult(names, np.asarray(coverage), np.asarray(ious), details)
        write_masks_artifact(out / "masks.h5", result, config, settings, scan, command)
    return result


def contact_sheet(rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], png: str | os.PathLike[str]) -> None:
    """Frames (left), rendered alpha inside the render box (middle), masked frames (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    if not rows:
        return
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 2.4 * len(rows)), squeeze=False)
    for row, (name, image, alpha, mask) in zip(axes, rows):
        shown = image.astype(np.float32) / 255.0
        row[0].imshow(shown)
        row[0].set_title(name, fontsize=8)
        row[1].imshow(alpha, cmap="gray", vmin=0, vmax=1)
        row[1].set_title("alpha in the render box", fontsize=8)
        row[2].imshow(np.where(mask[:, :, None], shown, 0.15 * shown))
        row[2].set_title(f"mask ({mask.mean():.1%} of the frame)", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    save_figure(fig, png)


def write_masks_artifact(path: Path, result: MaskResult, config: NerfConfig, settings: MaskSettings, scan: Path,
                         command: list[str] | None) -> None:
    import h5py

    from nrtool.artifacts.core import (
        STR_DTYPE,
        atomic_output,
        provenance,
        write_root_attrs,
    )

    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=provenance([scan]), command=command)
        handle.create_dataset("names", data=np.array(result.names, dtype=object).astype(STR_DTYPE))
        handle["coverage"] = result.coverage.astype(np.float64)
        handle["iou"] = result.iou.astype(np.float64)
        for key, value in result.summary().items():
            handle.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) or value is None else value
        handle.attrs["nerf_config"] = json.dumps(config.to_dict())
        handle.attrs["mask_settings"] = json.dumps(settings.to_dict())


def load_masks_artifact(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The per-frame arrays and the summary of a ``masks`` artifact."""
    from nrtool.artifacts.core import open_artifact, read_strings

    with open_artifact(path, KIND) as handle:
        try:
            return {"names": read_strings(handle["names"]), "coverage": handle["coverage"][()],
                    "iou": handle["iou"][()], "attrs": dict(handle.attrs)}
        except KeyError as exc:
            raise InputFileError(path, f"damaged 'masks' artifact (no {exc})") from exc
