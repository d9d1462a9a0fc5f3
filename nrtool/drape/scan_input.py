"""Labelled scans for ``nrtool fit-scan``: which points are body, top or bottom.

Accepted (every problem is one line naming the file):

- ``SCAN.npz`` holding ``points (N, 3)`` and ``labels (N,)``;
- any point cloud or mesh (``.ply .obj .off .stl .xyz .pts .npy``; a mesh gives its vertices,
  in the file's order) with ``--labels L`` -- ``L.npy`` or ``L.txt`` of ``N`` labels, or the word
  ``colours`` to read them from the file's vertex colours (nearest of :data:`PART_COLOURS`);
- a folder holding one file per part, ``body.*``, ``top.*``, ``bottom.*`` (any of them).

A label is an integer (:data:`PART_IDS`: 0 body, 1 top, 2 bottom) or a part name. Units are
metres and the body model's frame: y up, the person facing +z (SMPL's); only translation is
searched, not a rotation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nrtool.drape.synthetic_scan import PART_IDS
from nrtool.errors import InputFileError, NrtoolError

PART_NAMES = tuple(PART_IDS)
#: ``--labels colours``: RGB (0-255) of each part; a point takes the nearest (the colours
#: ``nrtool drape`` and ``fit-scan`` draw the parts in).
PART_COLOURS = {"body": (199, 199, 199), "top": (64, 115, 217), "bottom": (217, 115, 51)}
SCAN_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".xyz", ".pts", ".npy", ".npz")


@dataclass
class LabelledScan:
    path: str
    parts: dict[str, np.ndarray]  # part -> (N_p, 3) float64
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.parts.values())


def read_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) points in the file's vertex order, and (N, 3) RGB colours when the file has them."""
    if not path.is_file():
        raise InputFileError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        raise InputFileError(path, f"not a scan (use {', '.join(SCAN_SUFFIXES)})")
    colours = None
    try:
        if suffix in (".npy", ".npz"):
            data = np.load(path, allow_pickle=False)
            points = data["points"] if suffix == ".npz" and "points" in data else (data if suffix == ".npy" else None)
            if points is None:
                raise InputFileError(path, f"holds no 'points' array (found: {', '.join(data.files) or 'nothing'})")
        elif suffix in (".xyz", ".pts"):
            table = np.loadtxt(path, ndmin=2)
            points = table[:, :3]
            colours = table[:, 3:6] if table.shape[1] >= 6 else None
        else:
            import trimesh

            loaded = trimesh.load(path, process=False)
            if isinstance(loaded, trimesh.Scene):
                loaded = loaded.to_geometry() if hasattr(loaded, "to_geometry") else loaded.dump(concatenate=True)
            points = np.asarray(loaded.vertices)
            rgba = getattr(loaded, "colors", None)
            if rgba is None or len(rgba) == 0:
                visual = getattr(loaded, "visual", None)
                rgba = getattr(visual, "vertex_colors", None) if getattr(visual, "kind", None) == "vertex" else None
            colours = None if rgba is None or len(rgba) != len(points) else np.asarray(rgba)[:, :3]
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
        raise InputFileError(path, f"cannot be read as a scan ({type(exc).__name__}: {exc})") from None
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputFileError(path, f"points of shape {points.shape}, expected (N, 3)")
    if len(points) == 0:
        raise InputFileError(path, "holds no points")
    if not np.all(np.isfinite(points)):
        raise InputFileError(path, "has NaN or infinite coordinates")
    return points, colours


def _parse_labels(values: np.ndarray, where: str | os.PathLike[str]) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind in "US":
        names = np.char.lower(values.astype(str))
        bad = sorted(set(names) - set(PART_NAMES))
        if bad:
            raise InputFileError(where, f"unknown part label(s) {', '.join(bad[:3])} (use {', '.join(PART_NAMES)} or 0/1/2)")
        return np.asarray([PART_IDS[n] for n in names], dtype=np.int64)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise InputFileError(where, "labels contain NaN")
    ints = values.astype(np.int64)
    if values.dtype.kind == "f" and np.any(ints != values):
        raise InputFileError(where, "labels must be whole numbers 0 (body), 1 (top), 2 (bottom)")
    bad = sorted(set(np.unique(ints).tolist()) - set(PART_IDS.values()))
    if bad:
        raise InputFileError(where, f"unknown part label(s) {bad[:3]} (use 0 body, 1 top, 2 bottom)")
    return ints


def _read_labels(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        if path.suffix.lower() == ".npy":
            return _parse_labels(np.load(path, allow_pickle=False), path)
        text = path.read_text().split()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot be read as labels ({exc})") from None
    if not text:
        raise InputFileError(path, "holds no labels")
    values = np.asarray(text)
    try:
        values = values.astype(np.float64)
    except ValueError:
        pass
    return _parse_labels(values, path)


def _labels_from_colours(colours: np.ndarray | None, path: Path) -> np.ndarray:
    if colours is None:
        raise InputFileError(path, "has no vertex colours: --labels colours needs them (or pass a labels file)")
    palette = np.asarray(list(PART_COLOURS.values()), dtype=np.float64)
    rgb = np.asarray(colours, dtype=np.float64)
    if rgb.max(initial=0) <= 1.0:
        rgb = rgb * 255
    return np.argmin(((rgb[:, None] - palette[None]) ** 2).sum(-1), axis=1).astype(np.int64)


def load_labelled_scan(scan: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None) -> LabelledScan:
    """Read a scan and its labels (see the module docstring for the accepted forms)."""
    scan = Path(scan)
    if scan.is_dir():
        if labels is not None:
            raise NrtoolError(f"{scan} is a folder of parts: --labels goes with a single scan file")
        parts = {}
        for part in PART_NAMES:
            found = sorted(p for p in scan.glob(f"{part}.*") if p.suffix.lower() in SCAN_SUFFIXES)
            if found:
                parts[part] = read_points(found[0])[0]
        if not parts:
            raise InputFileError(scan, f"holds none of {', '.join(p + '.*' for p in PART_NAMES)}")
        return LabelledScan(str(scan), parts)
    points, colours = read_points(scan)
    if labels is None:
        if scan.suffix.lower() == ".npz":
            with np.load(scan, allow_pickle=False) as data:
                if "labels" not in data:
                    raise InputFileError(scan, "has points but no 'labels' array: pass --labels")
                ids = _parse_labels(data["labels"], scan)
        else:
            raise InputFileError(scan, "has no labels: pass --labels L.npy|L.txt|colours (or a folder of body/top/bottom files)")
        where: str | os.PathLike[str] = scan
    elif str(labels).lower() in ("colours", "colors"):
        ids, where = _labels_from_colours(colours, scan), scan
    else:
        ids, where = _read_labels(Path(labels)), labels
    if len(ids) != len(points):
        raise InputFileError(where, f"{len(ids)} labels for the {len(points)} points of {scan}")
    parts = {name: points[ids == i] for name, i in PART_IDS.items() if np.any(ids == i)}
    return LabelledScan(str(scan), parts)


def check_scan_parts(scan: LabelledScan, categories: list[str], min_points: int = 20) -> None:
    """Refuse a scan that lacks the points a fit needs: every garment whose model was given, and the body."""
    for part in ["body", *categories]:
        count = len(scan.parts.get(part, ()))
        if count == 0:
            why = "a model was given for it" if part != "body" else "the body is fitted to them"
            raise InputFileError(scan.path, f"has no {part} points ({why}); label some, or leave out the {part} model")
        if count < min_points:
            raise InputFileError(scan.path, f"has only {count} {part} points (at least {min_points} are needed)")
    extra = sorted(set(scan.parts) - {"body", *categories})
    if extra:
        scan.notes.append(f"{scan.path}: its {', '.join(extra)} points are not fitted (no model given for them)")
