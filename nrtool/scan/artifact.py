"""The ``scan`` artifact: a turntable capture's frames, camera, per-frame poses, keep/drop
decisions and benchmark splits (``nrtool scan``; read by ``nrtool export nerf``, ``plot scan``
and, later, ``nrtool mask``).

Layout (schema 1), item-aligned over the N frames of the capture in time order:

* ``names`` (N,) str, ``frame_paths`` (N,) str (image file, or the video), ``video_frame`` (N,)
  int (frame number in the video, -1 for image files), optional ``images`` (N,) vlen uint8 (the
  encoded image bytes, with ``--embed-images``).
* ``K`` (3, 3), ``distortion`` (D,) (OpenCV order k1, k2, p1, p2, k3, ...); attributes
  ``image_size`` [w, h], ``intrinsics_source``, ``calibration_rms``.
* ``camera_to_world`` (N, 4, 4) f64: OpenCV camera axes (x right, y down, z forward) in the world
  frame of the board (origin at the board centre, z up out of the board); NaN where no pose.
  OpenGL/NeRF convention: ``camera_to_world @ diag(1, -1, -1, 1)``.
* ``reprojection_error`` (N,) RMS px, ``markers`` (N,), ``corner_count`` (N,), ``corners``
  (N, C, 2) f32 pixel position of each of the board's C ChArUco corners (NaN where not detected),
  ``azimuth``/``zenith`` (N,) degrees of the camera centre, ``azimuth_step`` (N,) degrees to the
  previous posed frame.
* ``kept`` (N,) bool, ``drop_reason`` (N,) str code (see :mod:`nrtool.scan.filtering`; "" kept),
  ``drop_detail`` (N,) str.
* ``split`` (N,) str: train/val/test/"" (macro-split), and group ``splits/`` with one sorted
  int64 index array per split: ``train``, ``val``, ``test``, the training subsets
  ``train_all_500``... (named by their actual size) and the octant sub-splits ``train_0``...

Attributes also carry a summary (``frames``, ``kept_frames``, ``dropped``, ...) that ``nrtool
info`` prints as is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import (
    STR_DTYPE,
    atomic_output,
    check_item_names,
    open_artifact,
    read_strings,
    write_root_attrs,
)
from nrtool.errors import InputFileError, NrtoolError
from nrtool.scan.board import ChArUcoBoard
from nrtool.scan.filtering import FilterConfig, reason_counts
from nrtool.scan.intrinsics import Intrinsics

KIND = "scan"

WORLD_FRAME = "ChArUco board: origin at the board centre, x along the columns, z up out of the printed face"
CAMERA_CONVENTION = ("OpenCV camera-to-world (x right, y down, z forward); OpenGL/NeRF = "
                     "camera_to_world @ diag(1,-1,-1,1)")


@dataclass
class ScanData:
    """Everything ``nrtool scan`` learned about a capture (see the module docstring)."""

    names: list[str]
    frame_paths: list[str]
    video_frame: np.ndarray  # (N,) int64
    intrinsics: Intrinsics
    board: ChArUcoBoard
    camera_to_world: np.ndarray  # (N, 4, 4)
    reprojection_error: np.ndarray  # (N,)
    markers: np.ndarray  # (N,) int
    corners: np.ndarray  # (N, C, 2) float32, NaN = not detected
    azimuth: np.ndarray  # (N,)
    zenith: np.ndarray  # (N,)
    azimuth_step: np.ndarray  # (N,)
    kept: np.ndarray  # (N,) bool
    drop_reason: list[str]
    drop_detail: list[str]
    filter_config: FilterConfig
    source: str
    source_kind: str  # "images" | "video"
    every: int = 1
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    split_sizes: dict[str, Any] = field(default_factory=dict)
    octant_centre: np.ndarray | None = None
    seed: int = 0
    images: list[bytes] | None = None
    warnings: list[str] = field(default_factory=list)
    embedded_in: str = ""  # the artifact holding the images, when they were left on disk by load_scan

    def encoded_image(self, index: int) -> bytes:
        """The encoded bytes of frame ``index`` embedded with ``--embed-images`` (b"" if none);
        read from the artifact one at a time when they were not loaded."""
        if self.images is not None:
            return self.images[index]
        if not self.embedded_in:
            return b""
        with h5py.File(self.embedded_in, "r") as handle:
            return bytes(np.asarray(handle["images"][index], np.uint8))

    @property
    def has_images(self) -> bool:
        return self.images is not None or bool(self.embedded_in)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def corner_count(self) -> np.ndarray:
        return np.isfinite(self.corners[:, :, 0]).sum(axis=1)

    @property
    def centres(self) -> np.ndarray:
        """(N, 3) camera centres in the world frame (NaN where no pose)."""
        return self.camera_to_world[:, :3, 3]

    def split_labels(self) -> list[str]:
        labels = [""] * len(self)
        for name in ("train", "val", "test"):
            for index in self.splits.get(name, []):
                labels[int(index)] = name
        return labels

    def summary(self) -> dict[str, Any]:
        """Counts and headline numbers (what ``nrtool info`` and ``nrtool scan --json`` show)."""
        posed = np.isfinite(self.reprojection_error) & self.kept
        errors = self.reprojection_error[posed]
        intr = self.intrinsics
        return {
            "frames": len(self),
            "kept_frames": int(self.kept.sum()),
            "dropped": reason_counts(self.drop_reason),
            "reprojection_error_px": {
                "mean": float(errors.mean()) if len(errors) else None,
                "median": float(np.median(errors)) if len(errors) else None,
                "max": float(errors.max()) if len(errors) else None,
            },
            "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy, "width": intr.width,
                           "height": intr.height, "source": intr.source, "calibration_rms": intr.rms},
            "splits": {name: int(len(indices)) for name, indices in self.splits.items()},
        }


def write_scan(path: str | os.PathLike[str], data: ScanData, inputs: list[dict[str, str]] | None = None,
               command: list[str] | None = None) -> None:
    """Write a ``scan`` artifact atomically."""
    n = len(data)
    if n == 0:
        raise NrtoolError(f"{path}: a scan needs at least one frame")
    summary = data.summary()
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        write_root_attrs(handle, KIND, inputs=inputs, command=command)
        attrs = handle.attrs
        attrs["source"] = data.source
        attrs["source_kind"] = data.source_kind
        attrs["every"] = int(data.every)
        attrs["board"] = json.dumps(data.board.to_dict())
        attrs["image_size"] = json.dumps([data.intrinsics.width, data.intrinsics.height])
        attrs["intrinsics_source"] = data.intrinsics.source
        attrs["calibration_rms"] = float(data.intrinsics.rms) if data.intrinsics.rms is not None else np.nan
        attrs["world_frame"] = WORLD_FRAME
        attrs["camera_convention"] = CAMERA_CONVENTION
        attrs["filter"] = json.dumps(vars(data.filter_config))
        attrs["split_sizes"] = json.dumps(data.split_sizes)
        attrs["seed"] = int(data.seed)
        attrs["octant_centre"] = json.dumps(None if data.octant_centre is None else [float(v) for v in data.octant_centre])
        attrs["warnings"] = json.dumps(data.warnings)
        # The summary as flat attributes: `nrtool info` prints every attribute, one row each.
        attrs["frames"] = summary["frames"]
        attrs["kept_frames"] = summary["kept_frames"]
        attrs["dropped"] = json.dumps(summary["dropped"])
        attrs["reprojection_error_px"] = json.dumps(summary["reprojection_error_px"])
        attrs["split_counts"] = json.dumps(summary["splits"])

        def strings(name: str, values: list[str]) -> None:
            handle.create_dataset(name, data=np.array(values, dtype=object).astype(STR_DTYPE))

        check_item_names(data.names, path)
        strings("names", data.names)
        strings("frame_paths", data.frame_paths)
        handle["video_frame"] = np.asarray(data.video_frame, np.int64)
        handle["K"] = np.asarray(data.intrinsics.K, np.float64)
        handle["distortion"] = np.asarray(data.intrinsics.distortion, np.float64)
        handle["camera_to_world"] = np.asarray(data.camera_to_world, np.float64)
        handle["reprojection_error"] = np.asarray(data.reprojection_error, np.float64)
        handle["markers"] = np.asarray(data.markers, np.int32)
        handle["corner_count"] = np.asarray(data.corner_count, np.int32)
        corners = np.asarray(data.corners, np.float32)
        handle.create_dataset("corners", data=corners, chunks=(min(n, 256), *corners.shape[1:]),
                              compression="gzip", compression_opts=4)
        handle["azimuth"] = np.asarray(data.azimuth, np.float64)
        handle["zenith"] = np.asarray(data.zenith, np.float64)
        handle["azimuth_step"] = np.asarray(data.azimuth_step, np.float64)
        handle["kept"] = np.asarray(data.kept, bool)
        strings("drop_reason", data.drop_reason)
        strings("drop_detail", data.drop_detail)
        strings("split", data.split_labels())
        group = handle.create_group("splits")
        for name, indices in data.splits.items():
            group[name] = np.asarray(indices, np.int64)
        if data.images is not None:
            images = handle.create_dataset("images", (n,), dtype=h5py.vlen_dtype(np.uint8))
            for i, encoded in enumerate(data.images):
                images[i] = np.frombuffer(encoded or b"", np.uint8)


def load_scan(path: str | os.PathLike[str], with_images: bool = False) -> ScanData:
    """Read a ``scan`` artifact (one-line error naming the file for anything else)."""
    with open_artifact(path, KIND) as handle:
        try:
            attrs = handle.attrs
            width, height = json.loads(attrs["image_size"])
            rms = float(attrs.get("calibration_rms", np.nan))
            intrinsics = Intrinsics(handle["K"][()], handle["distortion"][()], int(width), int(height),
                                    str(attrs.get("intrinsics_source", "")), None if np.isnan(rms) else rms)
            centre = json.loads(attrs.get("octant_centre", "null"))
            images = None
            if with_images and "images" in handle:  # all in memory: fine for tests, large for 9000 frames
                images = [bytes(np.asarray(v, np.uint8)) for v in handle["images"][()]]
            data = ScanData(
                names=read_strings(handle["names"]),
                frame_paths=read_strings(handle["frame_paths"]),
                video_frame=handle["video_frame"][()],
                intrinsics=intrinsics,
                board=ChArUcoBoard.from_dict(json.loads(attrs["board"])),
                camera_to_world=handle["camera_to_world"][()],
                reprojection_error=handle["reprojection_error"][()],
                markers=handle["markers"][()],
                corners=handle["corners"][()],
                azimuth=handle["azimuth"][()],
                zenith=handle["zenith"][()],
                azimuth_step=handle["azimuth_step"][()],
                kept=handle["kept"][()].astype(bool),
                drop_reason=read_strings(handle["drop_reason"]),
                drop_detail=read_strings(handle["drop_detail"]),
                filter_config=FilterConfig(**json.loads(attrs["filter"])),
                source=str(attrs["source"]),
                source_kind=str(attrs["source_kind"]),
                every=int(attrs.get("every", 1)),
                splits={name: handle["splits"][name][()] for name in handle["splits"]},
                split_sizes=json.loads(attrs.get("split_sizes", "{}")),
                octant_centre=None if centre is None else np.asarray(centre, np.float64),
                seed=int(attrs.get("seed", 0)),
                images=images,
                warnings=json.loads(attrs.get("warnings", "[]")),
                embedded_in=str(path) if "images" in handle and images is None else "",
            )
        except (KeyError, ValueError, TypeError, json.JSONDecodeError, NrtoolError) as exc:
            raise InputFileError(path, f"damaged 'scan' artifact ({exc})") from exc
    # Frame names become file names in `export nerf`: refuse a hostile or damaged artifact.
    check_item_names(data.names, path)
    n = len(data)
    if not (data.camera_to_world.shape == (n, 4, 4) and len(data.kept) == n and len(data.frame_paths) == n):
        raise InputFileError(path, "damaged 'scan' artifact (per-frame datasets differ in length)")
    return data


def has_embedded_images(path: str | os.PathLike[str]) -> bool:
    with open_artifact(path, KIND) as handle:
        return "images" in handle
