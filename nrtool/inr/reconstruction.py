"""``reconstruct``: fitted INRs back to discrete shapes, optionally scored against their sources.

udf -> dense point cloud (gradient projection, Eq. C.5), sdf -> mesh (marching cubes),
occ -> voxel grid. Metrics are computed in the normalised frame, where every shape spans about
[-1,1]^3, so numbers are comparable across datasets: symmetric Chamfer distance (mean of the
two mean nearest-neighbour distances), F-score at 0.01, and IoU for voxels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.core import ItemInfo
from nrtool.artifacts.inrs import InrHeader, InrItem, load_inrs
from nrtool.backends import BackendSettings, run_items
from nrtool.config import Config, option
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress

#: Points compared per shape for Chamfer / F-score (both sides).
METRIC_POINTS = 30_000
FSCORE_THRESHOLD = 0.01


@dataclass(frozen=True)
class ReconstructionSettings(Config):
    """How an INR becomes a shape (and where it is written)."""

    WHAT = "reconstruction"
    VALIDATE_ON_INIT = True

    resolution: int = option(128, help="Marching-cubes grid (sdf).")
    points: int = option(30_000, help="Points of a udf reconstruction.")
    voxel_resolution: int = option(64, help="Voxel grid (occ).")
    threshold: float = option(0.4, help="Occupancy threshold (occ).")
    source_units: bool = True  # write in the source's units (False: normalised frame)
    metrics: bool = False
    mesh_format: str = option("obj", help="obj | ply | off | stl.")

    def checks(self) -> dict[str, bool]:
        return {"resolution": self.resolution >= 8, "points": self.points >= 1, "voxel_resolution": self.voxel_resolution >= 2,
                "threshold": 0 < self.threshold < 1, "mesh_format": self.mesh_format in ("obj", "ply", "off", "stl")}


@dataclass
class ItemResult:
    name: str
    class_name: str | None
    path: str | None
    size: int  # points, faces or occupied voxels
    chamfer: float | None = None
    fscore: float | None = None
    iou: float | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Reconstruction:
    """An INR (or decoder) turned back into a discrete shape, in the normalised frame: points
    (udf), a mesh (sdf) or a voxel grid (occ)."""

    points: np.ndarray | None = None  # (N,3) udf
    vertices: np.ndarray | None = None  # (V,3) sdf
    faces: np.ndarray | None = None  # (F,3) sdf
    voxels: np.ndarray | None = None  # (R,R,R) occ

    @property
    def size(self) -> int:
        if self.points is not None:
            return len(self.points)
        if self.faces is not None:
            return len(self.faces)
        return int(self.voxels.sum()) if self.voxels is not None else 0

    def voxel_centres(self) -> np.ndarray:
        """Centres (K,3) of the occupied voxels; the grid spans the normalised cube [-1,1]^3."""
        assert self.voxels is not None
        return -1.0 + (np.argwhere(self.voxels) + 0.5) * (2.0 / self.voxels.shape[0])

    def surface_points(self, n: int, seed: int = 0) -> np.ndarray:
        """Points on the reconstruction (N,3) for metrics."""
        from nrtool.geometry.metrics import sample_surface

        if self.points is not None:
            return _subsample(self.points, n, seed)
        assert self.vertices is not None and self.faces is not None
        return sample_surface(self.vertices, self.faces, n, seed)

    def comparison_points(self, n: int = 4_000) -> np.ndarray | None:
        """What a shape is compared with (Chamfer, previews): occupied voxel centres for occ,
        ``n`` surface points otherwise; None when the reconstruction is empty."""
        if self.size == 0:
            return None
        return self.voxel_centres() if self.voxels is not None else self.surface_points(n)


def _subsample(points: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(points) <= n:
        return points
    return points[np.random.default_rng(seed).choice(len(points), n, replace=False)]


def field_function(header: InrHeader, params: Any, device: Any) -> Any:
    """``f(points (M,3)) -> field values (M,)`` of one stored INR (its flat ``(P,)`` parameters)."""
    import torch

    from nrtool.inr.fields import logits_to_field
    from nrtool.inr.siren import single_field

    flat = torch.as_tensor(np.asarray(params, dtype=np.float32), device=device)
    logits = single_field(flat, header.spec)
    return lambda points: logits_to_field(header.field, logits(points))  # type: ignore[arg-type]


def discretise(field: str, field_fn: Any, settings: ReconstructionSettings, device: Any, seed: int = 0) -> Reconstruction:
    """Run the field's reconstruction on a field function (normalised frame)."""
    import torch

    from nrtool.geometry.reconstruct import (
        occupancy_to_voxels,
        sdf_to_mesh,
        udf_to_points,
    )

    if field == "udf":
        generator = torch.Generator().manual_seed(seed)
        return Reconstruction(points=udf_to_points(field_fn, settings.points, device=device, generator=generator))
    if field == "sdf":
        vertices, faces = sdf_to_mesh(field_fn, settings.resolution, device=device)
        return Reconstruction(vertices=vertices, faces=faces)
    if field == "occ":
        return Reconstruction(voxels=occupancy_to_voxels(field_fn, settings.voxel_resolution, threshold=settings.threshold, device=device))
    raise NrtoolError(f"unknown field {field!r}")


def source_reference(field: str, item: "ItemInfo") -> np.ndarray:
    """What a reconstruction of ``item`` is scored against: its source's voxel grid (occ) or
    ``METRIC_POINTS`` points on its source in the normalised frame (read once, reuse for many)."""
    from nrtool.geometry.ground_truth import Normalisation
    from nrtool.geometry.metrics import sample_surface
    from nrtool.io import load_shape

    if not Path(item.source).exists():
        raise InputFileError(item.source, f"source of {item.name!r} not found (needed for --metrics)")
    shape = load_shape(item.source)
    if field == "occ":
        if shape.occupancy is None:
            raise InputFileError(item.source, "source is not a voxel grid")
        return shape.occupancy
    norm = Normalisation(center=np.asarray(item.center), scale=item.scale)
    if shape.kind == "mesh":
        assert shape.vertices is not None and shape.faces is not None
        return sample_surface(norm.to_normalised(shape.vertices), shape.faces, METRIC_POINTS, 1)
    return _subsample(norm.to_normalised(shape.points()), METRIC_POINTS, 1)


def score(field: str, recon: Reconstruction, item: InrItem) -> dict[str, float]:
    """Compare a reconstruction with the item's source shape, in the normalised frame."""
    from nrtool.geometry.metrics import (
        chamfer_distance,
        fscore,
        resample_voxels,
        voxel_iou,
    )

    source = source_reference(field, item)
    if field == "occ":
        if source.shape != recon.voxels.shape:  # type: ignore[union-attr]
            source = resample_voxels(source, recon.voxels.shape[0])  # type: ignore[union-attr]
        return {"iou": voxel_iou(recon.voxels, source)}  # type: ignore[arg-type]
    ours = recon.surface_points(METRIC_POINTS, seed=2)
    return {
        "chamfer": chamfer_distance(ours, source),
        "fscore": fscore(ours, source, FSCORE_THRESHOLD),
    }


def write_reconstruction(recon: Reconstruction, item: InrItem, folder: Path, settings: ReconstructionSettings) -> Path:
    """Write one reconstruction (atomically) in source units or the normalised frame."""
    from nrtool.io import save_binvox, save_mesh, save_points_ply

    center = np.asarray(item.center) if settings.source_units else np.zeros(3)
    scale = item.scale if settings.source_units else 1.0
    if recon.points is not None:
        path = _output_path("udf", item, folder, settings)
        save_points_ply(path, recon.points * scale + center)
    elif recon.faces is not None:
        path = _output_path("sdf", item, folder, settings)
        save_mesh(path, recon.vertices * scale + center, recon.faces)  # type: ignore[operator]
    else:
        path = _output_path("occ", item, folder, settings)
        # The grid spans the normalised cube [-1,1]^3: side 2 * scale in source units.
        save_binvox(path, recon.voxels, translate=tuple(center - scale), scale=2.0 * scale)  # type: ignore[arg-type]
    return path

MANIFEST = ".nrtool-reconstruct.json"


def _output_path(field: str, item: InrItem, folder: Path, settings: ReconstructionSettings) -> Path:
    from nrtool.artifacts.core import safe_child

    extension = {"udf": "ply", "sdf": settings.mesh_format, "occ": "binvox"}[field]
    return safe_child(folder, item.name, f".{extension}")


def _claim_folder(folder: Path, inrs_path: str | os.PathLike[str], settings: ReconstructionSettings,
                  overwrite: bool) -> bool:
    """Record what ``folder`` holds; True when earlier files of the same run can be reused.

    Files already written by an interrupted run with the same INRs and settings are reused;
    a folder written with other settings is refused unless ``overwrite``. A non-empty folder
    without the manifest is not ours: it is refused even with ``overwrite``, since writing
    into it would replace the user's files that happen to share an item's name.
    """
    from nrtool.artifacts.core import atomic_write_bytes, sha256_file

    wanted = {
        "inrs_sha256": sha256_file(inrs_path),
        "settings": {k: v for k, v in asdict(settings).items() if k != "metrics"},
    }
    manifest = folder / MANIFEST
    if not manifest.exists() and any(folder.iterdir()):
        raise InputFileError(folder, "folder is not empty and holds no nrtool reconstructions (no "
                             f"{MANIFEST}); not writing into it, even with --overwrite: choose another --out")
    reuse = False
    if manifest.exists() and not overwrite:
        try:
            found = json.loads(manifest.read_text())
        except json.JSONDecodeError:
            found = None
        if found is not None and found != wanted:
            raise InputFileError(folder, "holds reconstructions of other INRs or settings; "
                                 "pass --overwrite to replace them, or choose another --out")
        reuse = found == wanted
    atomic_write_bytes(manifest, json.dumps(wanted, indent=1).encode())
    return reuse


def load_reconstruction(path: Path, item: InrItem, settings: ReconstructionSettings) -> Reconstruction:
    """Read back a reconstruction written by :func:`write_reconstruction` (normalised frame)."""
    from nrtool.io import load_shape

    shape = load_shape(path)
    if shape.kind == "voxels":
        return Reconstruction(voxels=shape.occupancy)
    center = np.asarray(item.center) if settings.source_units else np.zeros(3)
    scale = item.scale if settings.source_units else 1.0
    vertices = (shape.vertices - center) / scale  # type: ignore[operator]
    if shape.kind == "points":
        return Reconstruction(points=vertices)
    return Reconstruction(vertices=vertices, faces=shape.faces)


def select_items(items: list[InrItem], names: Sequence[str] | None, path: str | os.PathLike[str],
                 splits: Sequence[str] | None = None) -> list[InrItem]:
    """The items named (all when none), then only those of ``splits`` (all when none)."""
    if names:
        by_name = {item.name: item for item in items}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputFileError(path, f"has no item named {missing[0]!r}")
        items = [by_name[n] for n in names]
    if splits:
        items = [item for item in items if item.split in splits]
        if not items:
            raise InputFileError(path, f"no items with split {' or '.join(splits)}" + (" among the --name items" if names else ""))
    return items


def reconstruct_inrs(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: ReconstructionSettings = ReconstructionSettings(),
    device: str = "auto",
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    splits: Sequence[str] | None = None,
    backend: BackendSettings = BackendSettings(),
) -> tuple[InrHeader, list[ItemResult]]:
    """Reconstruct (and optionally score) every INR of an ``inrs`` artifact into ``out_dir``.

    Rerunning into the same folder with the same INRs and settings reuses the files an earlier
    (possibly interrupted) run wrote, so long runs resume. The folder is locked for the run.
    With a Ray ``backend`` each INR is a task that writes its own file (:mod:`nrtool.backends`).
    """
    from nrtool.artifacts.core import check_output_dir, output_lock
    from nrtool.device import check_device_name, resolve_device

    progress = progress or SilentProgress()
    backend.validate()
    header, items = load_inrs(path)
    items = select_items(items, names, path, splits)
    if backend.is_local:
        resolve_device(device)  # fail here; a Ray worker resolves its own
    else:
        check_device_name(device)
    folder = check_output_dir(out_dir, "--out")
    folder.parent.mkdir(parents=True, exist_ok=True)  # the lock lives beside the folder
    with output_lock(folder):
        folder.mkdir(parents=True, exist_ok=True)
        work = _ReconstructionWork(header, str(folder), settings, _claim_folder(folder, path, settings, overwrite),
                                   device)
        results: list[Any] = [None] * len(items)
        with progress.task(f"reconstructing {header.field}", len(items), "shapes") as advance:
            for index, result in run_items(_reconstruct_item, work, items, backend):
                results[index] = result
                advance()
        return header, results


@dataclass(frozen=True)
class _ReconstructionWork:
    """What every item of a reconstruction needs (sent once to each Ray worker)."""

    header: InrHeader
    folder: str
    settings: ReconstructionSettings
    reuse: bool  # files of an earlier run with these settings may be reused
    device: str


def _reconstruct_item(work: _ReconstructionWork, item: InrItem) -> ItemResult:
    """Reconstruct (or reuse) and score one item into the folder: the unit of work of every backend."""
    from nrtool.device import resolve_device

    header, folder, settings = work.header, Path(work.folder), work.settings
    torch_device = resolve_device(work.device)
    existing = _output_path(header.field, item, folder, settings)
    reused = work.reuse and existing.exists()
    if reused:
        recon = load_reconstruction(existing, item, settings)
    else:
        recon = discretise(header.field, field_function(header, item.params, torch_device), settings, torch_device)
    result = ItemResult(item.name, item.class_name, None, recon.size)
    if recon.size == 0:
        result.problem = "empty reconstruction (the INR has no surface)"
        return result
    if not reused:
        write_reconstruction(recon, item, folder, settings)
    result.path = str(existing)
    if settings.metrics:
        for key, value in score(header.field, recon, item).items():
            setattr(result, key, float(value))
    return result


def summarise(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Means over the items that produced a reconstruction, plus the failures."""
    summary: dict[str, Any] = {"items": len(results)}
    for key in ("chamfer", "fscore", "iou"):
        values = [getattr(r, key) for r in results if getattr(r, key) is not None]
        if values:
            summary[f"{key}_mean"] = float(np.mean(values))
    summary["failed"] = [r.name for r in results if r.problem]
    return summary

