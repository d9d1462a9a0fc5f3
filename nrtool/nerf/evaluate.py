"""``nerf eval`` and ``nerf render``: render frames from a trained NeRF and score them.

The results file has nerfstudio's ``ns-eval`` shape (``results`` with ``psnr``, ``psnr_std``,
``ssim``, ``ssim_std``, ``lpips``, ``lpips_std``, ``num_rays_per_sec``, ``fps``) plus
``images``, the metrics of every frame, and ``lpips_reason`` when LPIPS is null.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import NrtoolError
from nrtool.nerf.metrics import LpipsMetric, lpips_status, psnr_of, ssim_of, summary
from nrtool.nerf.rays import FrameRays
from nrtool.nerf.train import NerfModel, render_frame
from nrtool.nerf.views import Views


def _to_uint8_bgr(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1)[:, :, ::-1] * 255 + 0.5).astype(np.uint8)


def evaluate(nerf: NerfModel, views: Views, device: torch.device | str = "cpu", progress: Any = None,
             renders: str | os.PathLike[str] | None = None, checkpoint: str = "") -> dict[str, Any]:
    """Render every frame of ``views`` and score it against the frame; with ``renders``, also
    write ``NAME.png`` (render) per frame into that folder (created)."""
    from nrtool.io.images import write_image
    from nrtool.progress import SilentProgress

    progress = progress or SilentProgress()
    rays = FrameRays.of(views, device)
    use_lpips, reason = lpips_status()
    lpips = LpipsMetric() if use_lpips else None
    folder = Path(renders) if renders is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    seconds = []
    with progress.task(f"rendering {len(views)} frames", len(views), unit="frames") as advance:
        for i, name in enumerate(views.names):
            started = time.perf_counter()
            rgb, _ = render_frame(nerf.model, rays, i)
            if rays.device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
            rendered, target = rgb.cpu().numpy(), views.images[i]
            images.append({"name": name, "psnr": psnr_of(rendered, target), "ssim": ssim_of(rendered, target),
                           "lpips": lpips(rendered, target) if lpips is not None else None})
            if folder is not None:
                write_image(folder / f"{name}.png", _to_uint8_bgr(rendered))
            advance(1)
    results: dict[str, Any] = {}
    for metric in ("psnr", "ssim", "lpips"):
        results[metric], results[f"{metric}_std"] = summary([m[metric] for m in images])
    w, h = views.size
    per_frame = np.asarray(seconds)
    results["num_rays_per_sec"] = float(np.mean(w * h / per_frame))
    results["num_rays_per_sec_std"] = float(np.std(w * h / per_frame))
    results["fps"] = float(np.mean(1 / per_frame))
    results["fps_std"] = float(np.std(1 / per_frame))
    out: dict[str, Any] = {"experiment_name": Path(views.source).stem, "method_name": f"nrtool-dense-grid-{nerf.config.preset}",
                           "checkpoint": checkpoint or nerf.path, "split": views.split, "frames": len(views),
                           "size": [w, h], "results": results, "images": images}
    if lpips is None:
        out["lpips_reason"] = reason
    return out


def turntable_poses(nerf: NerfModel, count: int, elevation: float | None = None) -> np.ndarray:
    """(count, 4, 4) OpenCV camera-to-world poses circling the box centre at the training
    cameras' median distance and elevation (or ``elevation`` degrees above the box's xy plane),
    z up."""
    from nrtool.scan.poses import look_at

    poses = np.asarray(nerf.data.get("camera_to_world", []), np.float64)
    centre = ((nerf.model.box_min + nerf.model.box_max) / 2).cpu().numpy().astype(np.float64)
    if len(poses):
        offsets = poses[:, :3, 3] - centre
        distance = float(np.median(np.linalg.norm(offsets, axis=1)))
        zenith = float(np.median(np.degrees(np.arccos(np.clip(offsets[:, 2] / np.linalg.norm(offsets, axis=1), -1, 1)))))
    else:
        distance = float(np.linalg.norm((nerf.model.box_max - nerf.model.box_min).cpu().numpy())) * 1.5
        zenith = 60.0
    if elevation is not None:
        zenith = 90.0 - elevation
    out = []
    for azimuth in np.linspace(0, 360, count, endpoint=False):
        pose = look_at(float(azimuth), zenith, distance)
        pose[:3, 3] += centre
        out.append(pose)
    return np.stack(out)


def render_poses(nerf: NerfModel, poses: np.ndarray, out: str | os.PathLike[str], size: tuple[int, int] | None = None,
                 device: torch.device | str = "cpu", progress: Any = None, video: bool = True, fps: int = 24
                 ) -> dict[str, Any]:
    """Render ``poses`` (N, 4, 4, OpenCV camera-to-world) with the training camera (rescaled to
    ``size``) into ``out/frame_NNNNN.png`` and, with ``video``, ``out/turntable.mp4``."""
    import cv2

    from nrtool.io.images import write_image
    from nrtool.nerf.views import scaled_camera
    from nrtool.progress import SilentProgress

    progress = progress or SilentProgress()
    train_size = tuple(nerf.data["size"])
    size = size or train_size  # type: ignore[assignment]
    K = scaled_camera(np.asarray(nerf.data["K"]), train_size, size)  # type: ignore[arg-type]
    w, h = size  # type: ignore[misc]
    rays = FrameRays(K, np.asarray(nerf.data["distortion"]), (w, h), poses, device=device)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    with progress.task(f"rendering {len(poses)} poses", len(poses), unit="frames") as advance:
        for i in range(len(poses)):
            rgb, _ = render_frame(nerf.model, rays, i)
            path = folder / f"frame_{i:05d}.png"
            write_image(path, _to_uint8_bgr(rgb.cpu().numpy()))
            files.append(str(path))
            advance(1)
    result: dict[str, Any] = {"out": str(folder), "frames": len(files), "size": [w, h], "video": None}
    if video and files:
        movie = folder / "turntable.mp4"
        tmp = folder / ".turntable.tmp.mp4"
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            raise NrtoolError(f"{movie}: OpenCV cannot write mp4 video here (the frames are written)")
        for path in files:
            writer.write(cv2.imread(path))
        writer.release()
        os.replace(tmp, movie)
        result["video"] = str(movie)
    return result


def read_poses(path: str | os.PathLike[str]) -> np.ndarray:
    """Poses from a NeRF JSON (``frames[].transform_matrix``, OpenGL) or a ``.npy`` (N, 4, 4)
    OpenCV camera-to-world array."""
    from nrtool.errors import InputFileError
    from nrtool.scan.poses import CV_TO_GL

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    if path.suffix.lower() == ".npy":
        try:
            poses = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputFileError(path, f"not a readable .npy array ({exc})") from exc
    else:
        try:
            frames = json.loads(path.read_text())["frames"]
            poses = np.stack([np.asarray(f["transform_matrix"], np.float64) @ CV_TO_GL for f in frames])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(path, f"not a NeRF JSON with frames[].transform_matrix ({exc})") from exc
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not len(poses) or not np.isfinite(poses).all():
        raise InputFileError(path, f"holds an array of shape {poses.shape}, not finite (N, 4, 4) poses")
    return poses
