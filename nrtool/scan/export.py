"""``nrtool export nerf``: a scan as a NeRF dataset folder.

* ``transforms.json`` in nerfstudio's format: ``camera_model`` ``OPENCV``, ``fl_x``, ``fl_y``,
  ``cx``, ``cy``, ``w``, ``h``, ``k1``, ``k2``, ``k3``, ``p1``, ``p2``, ``frames`` (every kept frame: ``file_path``, OpenGL camera-to-world ``transform_matrix``,
  ``mask_path`` when masks are given) and ``train/val/test_filenames``.
* ScanNeRF's NeRF-synthetic-style split files, one per split: ``train_all.json``,
  ``train_all_{500,250,100}.json`` (the subsets, named by their actual size), ``val_all.json``,
  ``test_all.json`` and the octant sub-splits ``{train,val,test}_{0..7}.json``; each holds
  ``camera_angle_x`` plus the intrinsics and its ``frames``.
* ``images/`` (and ``masks/``): the kept frames, copied (``link=True``, ``--link``: hard-linked
  where the file system allows, else copied); decoded from the video or from the embedded bytes
  when the scan has no image files. Copies are the default because a hard link is the capture's
  own file: a tool that edits the dataset's images in place (cropping, undistorting, writing
  masks over them) would silently change the capture too.

Poses go from the scan's OpenCV camera convention to OpenGL's (x right, y up, z backward) by
flipping the camera's y and z axes: ``transform_matrix = camera_to_world @ diag(1, -1, -1, 1)``.
The folder is built beside ``out`` under a temporary name and renamed at the end: an interrupted
export leaves no half-written dataset.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.core import atomic_folder
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress
from nrtool.scan.artifact import ScanData
from nrtool.scan.poses import opencv_to_opengl

MACRO = ("train", "val", "test")


def camera_fields(data: ScanData) -> dict[str, Any]:
    """Intrinsics in nerfstudio's keys (plus NeRF-synthetic's ``camera_angle_x/y``)."""
    intr = data.intrinsics
    dist = np.zeros(8)
    dist[: min(8, len(intr.distortion))] = intr.distortion[:8]
    k1, k2, p1, p2, k3, k4, k5, k6 = (float(v) for v in dist)
    if any((k4, k5, k6)) or np.any(intr.distortion[8:]):
        # nerfstudio's k4 is a radial r^8 term, OpenCV's k4..k6 the rational model's denominator:
        # writing them would silently mean another lens.
        raise NrtoolError("the scan's distortion uses OpenCV's rational/thin-prism terms (k4 and up), which "
                          "nerfstudio's OPENCV model cannot express; calibrate with 5 coefficients (k1 k2 p1 p2 k3)")
    fields: dict[str, Any] = {
        "camera_model": "OPENCV",
        "fl_x": intr.fx, "fl_y": intr.fy, "cx": intr.cx, "cy": intr.cy, "w": intr.width, "h": intr.height,
        "k1": k1, "k2": k2, "k3": k3, "p1": p1, "p2": p2,
    }
    fields["camera_angle_x"] = float(2 * np.arctan(intr.width / (2 * intr.fx)))
    fields["camera_angle_y"] = float(2 * np.arctan(intr.height / (2 * intr.fy)))
    return fields


def split_file_names(data: ScanData) -> dict[str, str]:
    """Split name in the artifact -> ScanNeRF file name (``train`` -> ``train_all.json`` ...)."""
    names: dict[str, str] = {}
    for name in data.splits:
        if name in MACRO:
            names[name] = f"{name}_all.json"
        else:
            names[name] = f"{name}.json"  # subsets train_all_500.json ..., octants train_3.json ...
    return names


def _image_suffix(data: ScanData, index: int) -> str:
    if data.source_kind == "images":
        return Path(data.frame_paths[index]).suffix.lower() or ".jpg"
    return ".jpg"


def _write_images(data: ScanData, frames: list[int], folder: Path, advance: Callable[[int], None],
                  link: bool = False) -> list[str]:
    """Put each frame's image in ``folder`` (image files copied, or hard-linked with ``link``);
    returns the file names (same order as ``frames``)."""
    import cv2

    from nrtool.io.images import write_image

    folder.mkdir()
    names = [f"{data.names[i]}{_image_suffix(data, i)}" for i in frames]
    if data.has_images:
        for i, name in zip(frames, names):
            encoded = data.encoded_image(i)
            if not encoded:
                raise NrtoolError(f"frame {data.names[i]} has no embedded image")
            (folder / name).write_bytes(encoded)
            advance(1)
    elif data.source_kind == "images":
        for i, name in zip(frames, names):
            source = Path(data.frame_paths[i])
            if not source.is_file():
                raise InputFileError(source, "frame image is gone (moved since `nrtool scan`? scan with "
                                             "--embed-images to keep images inside the artifact)")
            if link:
                try:
                    os.link(source, folder / name)  # no copy when on the same file system
                except OSError:  # another file system, or one without hard links
                    shutil.copy2(source, folder / name)
            else:
                shutil.copy2(source, folder / name)
            advance(1)
    else:
        wanted = {int(data.video_frame[i]): name for i, name in zip(frames, names)}
        from nrtool.scan.frames import read_video_frames

        written = 0
        for number, image in read_video_frames(data.source, set(wanted)):
            write_image(folder / wanted[number], image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            written += 1
            advance(1)
        if written != len(wanted):
            raise InputFileError(data.source, f"the video yielded {written} of the {len(wanted)} kept frames")
    return names


def _write_masks(data: ScanData, frames: list[int], masks: Path, folder: Path) -> list[str]:
    """Copy ``MASKS/<frame name>.png`` for each frame (nerfstudio: 0 = ignore, 255 = object)."""
    folder.mkdir()
    names = []
    for i in frames:
        source = masks / f"{data.names[i]}.png"
        if not source.is_file():
            raise InputFileError(source, f"no mask for kept frame {data.names[i]} (expected NAME.png per frame)")
        shutil.copy2(source, folder / source.name)
        names.append(source.name)
    return names


def export_nerf(data: ScanData, out: str | os.PathLike[str], masks: str | os.PathLike[str] | None = None,
                overwrite: bool = False, progress: Progress | None = None, link: bool = False) -> dict[str, Any]:
    """Write the NeRF dataset folder ``out``; returns a summary (files, frame counts).

    ``link``: hard-link the capture's image files instead of copying them (saves the space;
    the dataset's images are then the capture's own files).
    """
    out = Path(out)
    progress = progress or SilentProgress()
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise InputFileError(out, "already exists and is not empty (pass --overwrite to replace it)")
    if not out.parent.is_dir():
        raise InputFileError(out, f"output folder {out.parent} does not exist")
    if masks is not None and not Path(masks).is_dir():
        raise InputFileError(masks, "masks folder not found")
    frames = [int(i) for i in np.flatnonzero(data.kept)]
    if not frames:
        raise NrtoolError("the scan kept no frames: nothing to export")
    camera = camera_fields(data)
    # Built beside `out` and renamed when complete: no half-written dataset folder.
    with atomic_folder(out, force=overwrite) as tmp:
        with progress.task("exporting frames", len(frames), unit="frames") as advance:
            image_names = _write_images(data, frames, tmp / "images", advance, link)
        mask_names = _write_masks(data, frames, Path(masks), tmp / "masks") if masks is not None else None
        gl = opencv_to_opengl(data.camera_to_world)
        entries: dict[int, dict[str, Any]] = {}
        for k, i in enumerate(frames):
            entry: dict[str, Any] = {"file_path": f"images/{image_names[k]}",
                                     "transform_matrix": np.round(gl[i], 10).tolist()}
            if mask_names is not None:
                entry["mask_path"] = f"masks/{mask_names[k]}"
            entries[i] = entry
        transforms = {k: v for k, v in camera.items() if not k.startswith("camera_angle")}
        transforms["frames"] = [entries[i] for i in frames]
        for name in MACRO:
            if name in data.splits:
                transforms[f"{name}_filenames"] = [entries[int(i)]["file_path"] for i in data.splits[name]]
        (tmp / "transforms.json").write_text(json.dumps(transforms, indent=2) + "\n")
        files = ["transforms.json"]
        for split, file_name in split_file_names(data).items():
            frames_json = []
            for i in data.splits[split]:
                entry = dict(entries[int(i)])
                entry["file_path"] = "./" + entry["file_path"]
                frames_json.append(entry)
            (tmp / file_name).write_text(json.dumps({**camera, "frames": frames_json}, indent=2) + "\n")
            files.append(file_name)
    return {"out": str(out), "frames": len(frames), "files": files, "masks": mask_names is not None,
            "camera_model": camera["camera_model"]}
