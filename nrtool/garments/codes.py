"""Garments <-> codes with a trained model: encode, decode, sample, interpolate (``nrtool garment ...``).

Decoded meshes are written into an output folder that appears complete or not at all (a
temporary folder renamed at the end), in the garments' source frame (``x * scale + centre``,
the transform stored with each code, which includes any ``encode --align`` offset: an aligned
garment decodes where it was given) unless ``normalised``. Codes with no transform (a ``.npy``,
samples, interpolations) use the model's training normalisation when all its garments shared
one (synthetic sets do), else stay in the normalised frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.core import ItemInfo, atomic_write_bytes, provenance, sha256_file
from nrtool.artifacts.garment_codes import (
    GarmentCodes,
    load_codes_any,
    write_garment_codes,
)
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress

__all__ = ["EncodeResult", "encode_garments", "decode_codes", "sample_garments", "interpolate_garments", "garment_sheet"]

SHEET_NAME = "sheet.png"
CODES_NAME = "codes.h5"


@dataclass
class DecodedGarment:
    name: str
    path: str | None  # None: the decoded field had no surface
    vertices: int
    faces: int
    boundary_edges: int
    seconds: float


def _check_resolution(resolution: int) -> None:
    if resolution < 8 or resolution > 512:
        raise NrtoolError(f"--resolution must be between 8 and 512, got {resolution}")


@dataclass
class EncodeResult:
    codes: GarmentCodes
    notes: list[str]  # for the user: garments outside the training frame, shapes that told nothing
    garments: list[Any] = field(default_factory=list)  # the GarmentMesh inputs, normalised frame


def encode_garments(
    inputs: Sequence[str | os.PathLike[str]],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    npy: str | os.PathLike[str] | None = None,
    sheet: str | os.PathLike[str] | None = None,
    resolution: int = 128,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
    align: bool = False,
    category_check: bool = True,
) -> EncodeResult:
    """Codes of garment meshes; written to ``out`` (garment-codes) and/or ``npy`` (one code).

    A garment of the other category than the model's is refused: by its metadata, or, without
    metadata, by its shape (unless ``category_check`` is off). A garment outside the model's
    training frame gets a note; ``align`` translates it into the frame first (the offsets are
    stored with the codes; decoding returns meshes in the garment's own frame). See
    :mod:`nrtool.garments.checks`. ``sheet``: a PNG of each input (top row) and its decoded
    mesh (bottom row), as the network saw them.
    """
    from nrtool.device import resolve_device
    from nrtool.garments.model import load_model

    if out is None and npy is None:
        raise NrtoolError("nothing to write: pass --out CODES.h5 and/or --npy Z.npy")
    torch_device = resolve_device(device)
    model, checkpoint = load_model(model_path, torch_device)
    encoded = encode_with_model(inputs, model, checkpoint, model_path, seed, progress, align, category_check)
    codes, garments, notes, result = encoded.codes.codes, encoded.garments, encoded.notes, encoded.codes
    if npy is not None and len(garments) != 1:
        raise NrtoolError(f"--npy writes one code; {len(garments)} garments given (use --out for several)")
    if npy is not None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, codes[0])
        atomic_write_bytes(npy, buffer.getvalue())
    if out is not None:
        write_garment_codes(out, result, inputs=provenance([model_path]), command=command)
    if sheet is not None:
        _check_sheet_folder(sheet)
        decoded = [_decode_normalised(model, code, resolution) for code in codes]
        garment_sheet([(g.vertices, g.faces) for g in garments], decoded, [g.name for g in garments], sheet,
                      ("input", "decoded"))
    return EncodeResult(result, notes, garments)


def encode_with_model(
    inputs: Sequence[str | os.PathLike[str]],
    model: Any,
    checkpoint: dict[str, Any],
    model_path: str | os.PathLike[str],
    seed: int = 0,
    progress: Progress | None = None,
    align: bool = False,
    category_check: bool = True,
) -> EncodeResult:
    """Codes of garment meshes with a loaded garment network (``model_path`` names it in
    messages and provenance): the category and frame checks of :func:`encode_garments`."""
    import torch

    from nrtool.garments.checks import (
        CATEGORY_OVERRIDE,
        check_shape_categories,
        checkpoint_frame,
        frame_notes,
    )
    from nrtool.garments.data import load_garments, sample_surface_points
    from nrtool.garments.train import encode_points

    progress = progress or SilentProgress()
    torch_device = next(model.parameters()).device
    category = checkpoint["category"]
    garments = load_garments(inputs, normalise=checkpoint.get("normalise"), check_bounds=False)
    if not garments:
        raise NrtoolError("no garments to encode")
    for garment in garments:
        if garment.category not in ("unknown", category):
            raise InputFileError(garment.source, f"is a {garment.category}, but {model_path} is a {category} model")
    notes: list[str] = []
    if category_check:
        notes += check_shape_categories(garments, category, f"{model_path} is a {category} model", CATEGORY_OVERRIDE)
    garments, offsets, frame_said = frame_notes(garments, checkpoint_frame(checkpoint), align, model_path)
    notes += frame_said
    rng = np.random.default_rng(seed)
    with progress.task("encoding garments", len(garments), "garments") as advance:
        clouds = []
        for g in garments:
            clouds.append(sample_surface_points(g, model.config.points, rng))
            advance()
    with torch.no_grad():
        codes = encode_points(model, clouds, torch_device)
    items = [ItemInfo(g.name, g.type if g.type != "unknown" else None, None, str(Path(g.source).resolve()), i, g.centre, g.scale)
             for i, g in enumerate(garments)]
    model_sha = sha256_file(model_path) if Path(model_path).is_file() else ""
    result = GarmentCodes(codes, items, category, [g.attributes for g in garments], model_sha,
                          offsets if align else None)
    return EncodeResult(result, notes, garments)


def _check_sheet_folder(sheet: str | os.PathLike[str]) -> None:
    parent = Path(sheet).parent
    if str(parent) and not parent.is_dir():
        raise InputFileError(sheet, f"output folder {parent} does not exist")


def _decode_normalised(model: Any, code: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from nrtool.garments.meshing import decode_mesh

    return decode_mesh(model, code, resolution)


def _transform(codes: GarmentCodes, row: int, checkpoint: dict[str, Any], normalised: bool) -> tuple[np.ndarray, float]:
    if normalised:
        return np.zeros(3), 1.0
    item = codes.items[row]
    if codes.category in ("top", "bottom"):
        return np.asarray(item.center, dtype=np.float64), float(item.scale)
    norm = checkpoint.get("normalise")
    if norm:
        return np.asarray(norm["centre"], dtype=np.float64), float(norm["scale"])
    return np.zeros(3), 1.0


def decode_to_folder(
    codes: GarmentCodes,
    model: Any,
    checkpoint: dict[str, Any],
    out: str | os.PathLike[str],
    resolution: int = 128,
    normalised: bool = False,
    sheet: bool = False,
    fmt: str = "obj",
    force: bool = False,
    progress: Progress | None = None,
    command: list[str] | None = None,
    inputs: list[dict[str, str]] | None = None,
    sheet_rows: list[tuple[np.ndarray, np.ndarray]] | None = None,
    sheet_labels: tuple[str, str] = ("input", "decoded"),
) -> list[DecodedGarment]:
    """Decode every code into ``out/NAME.obj`` (plus ``codes.h5`` and optionally ``sheet.png``)."""
    import time

    from nrtool.artifacts.core import atomic_folder, check_output_folder
    from nrtool.geometry.meshudf import boundary_edge_count
    from nrtool.io import save_mesh

    _check_resolution(resolution)
    if fmt not in ("obj", "ply"):
        raise NrtoolError(f"--format {fmt!r}: choose obj or ply")
    check_output_folder(out, force)
    progress = progress or SilentProgress()
    results: list[DecodedGarment] = []
    meshes: list[tuple[np.ndarray, np.ndarray]] = []
    with atomic_folder(out, force=force) as tmp:
        with progress.task("decoding garments", len(codes.codes), "garments") as advance:
            for row, name in enumerate(codes.names):
                started = time.perf_counter()
                vertices, faces = _decode_normalised(model, codes.codes[row], resolution)
                seconds = time.perf_counter() - started
                meshes.append((vertices, faces))
                path = None
                if len(faces):
                    centre, scale = _transform(codes, row, checkpoint, normalised)
                    save_mesh(tmp / f"{name}.{fmt}", vertices * scale + centre, faces)
                    path = str(Path(out) / f"{name}.{fmt}")
                results.append(DecodedGarment(name, path, len(vertices), len(faces), boundary_edge_count(faces), seconds))
                advance()
        write_garment_codes(tmp / CODES_NAME, codes, inputs=inputs, command=command)
        if sheet:
            if sheet_rows is not None:
                garment_sheet(sheet_rows, meshes, codes.names, tmp / SHEET_NAME, sheet_labels)
            else:
                garment_sheet(None, meshes, codes.names, tmp / SHEET_NAME, ("", "decoded"))
    return results


def _load(model_path: str | os.PathLike[str], device: str) -> tuple[Any, dict[str, Any]]:
    from nrtool.device import resolve_device
    from nrtool.garments.model import load_model

    return load_model(model_path, resolve_device(device))


def decode_codes(
    codes_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    resolution: int = 128,
    normalised: bool = False,
    sheet: bool = False,
    fmt: str = "obj",
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> list[DecodedGarment]:
    """Decode a garment-codes artifact (or a ``.npy``) into meshes. ``sheet``: inputs vs decoded
    when the codes' source meshes are still there, else the decoded meshes alone."""
    from nrtool.garments.model import check_category, check_code_width

    _check_resolution(resolution)
    model, checkpoint = _load(model_path, device)
    codes = load_codes_any(codes_path)
    check_code_width(codes.codes, checkpoint, codes_path)
    check_category(codes.category, checkpoint, codes_path, model_path)
    if names:
        rows = [codes.index(n, codes_path) for n in names]
        codes = codes.select(rows)
    sheet_rows = None
    if sheet and all(Path(item.source).is_file() and Path(item.source).suffix.lower() != ".npy" for item in codes.items):
        from nrtool.garments.data import load_garment_mesh

        sheet_rows = []
        for item in codes.items:
            # the code's own transform (it includes any --align offset), not the index entry's
            g = load_garment_mesh(item.source, {"centre": list(item.center), "scale": item.scale}, override=True,
                                  check_bounds=False)
            sheet_rows.append((g.vertices, g.faces))
    return decode_to_folder(codes, model, checkpoint, out, resolution, normalised, sheet, fmt, force, progress, command,
                            provenance([model_path, codes_path]), sheet_rows)


def _new_codes(vectors: np.ndarray, names: list[str], checkpoint: dict[str, Any], model_path: str | os.PathLike[str]) -> GarmentCodes:
    from nrtool.garments.model import training_normalisation

    centre, scale = training_normalisation(checkpoint)
    items = [ItemInfo(n, None, None, "", i, centre, scale) for i, n in enumerate(names)]
    return GarmentCodes(np.asarray(vectors, dtype=np.float32), items, checkpoint["category"], [{} for _ in names],
                        sha256_file(model_path))


def sample_garments(
    model_path: str | os.PathLike[str],
    count: int,
    out: str | os.PathLike[str],
    seed: int = 0,
    spread: float = 1.0,
    resolution: int = 128,
    sheet: bool = True,
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> list[DecodedGarment]:
    """``count`` new garments: codes drawn from a Gaussian fitted to the training codes.

    Mean and covariance of the training codes (covariance shrunk towards its diagonal when there
    are fewer codes than dimensions), scaled by ``spread``.
    """
    from nrtool.garments.model import training_codes

    if count < 1:
        raise NrtoolError(f"-n must be at least 1, got {count}")
    if not spread >= 0:
        raise NrtoolError(f"--spread must be >= 0, got {spread}")
    model, checkpoint = _load(model_path, device)
    train = training_codes(checkpoint).astype(np.float64)
    mean = train.mean(axis=0)
    cov = np.cov(train, rowvar=False) if len(train) > 1 else np.eye(train.shape[1]) * 1e-4
    weight = min(1.0, len(train) / (2.0 * train.shape[1]))  # shrinkage: few codes -> mostly diagonal
    cov = weight * cov + (1 - weight) * np.diag(np.diag(cov))
    rng = np.random.default_rng(seed)
    vectors = rng.multivariate_normal(mean, cov * spread**2, size=count, method="eigh")
    codes = _new_codes(vectors, [f"sample_{i:04d}" for i in range(count)], checkpoint, model_path)
    return decode_to_folder(codes, model, checkpoint, out, resolution, False, sheet, "obj", force, progress, command,
                            provenance([model_path]))


def interpolate_garments(
    codes_path: str | os.PathLike[str],
    model_path: str | os.PathLike[str],
    start: str,
    end: str,
    steps: int,
    out: str | os.PathLike[str],
    resolution: int = 128,
    force: bool = False,
    device: str = "auto",
    progress: Progress | None = None,
    command: list[str] | None = None,
) -> list[DecodedGarment]:
    """Garments decoded along the straight line between two codes (end points included), plus a sheet."""
    from nrtool.garments.model import check_category, check_code_width

    if steps < 2:
        raise NrtoolError(f"--steps must be at least 2, got {steps}")
    model, checkpoint = _load(model_path, device)
    codes = load_codes_any(codes_path)
    check_code_width(codes.codes, checkpoint, codes_path)
    check_category(codes.category, checkpoint, codes_path, model_path)
    a, b = codes.codes[codes.index(start, codes_path)], codes.codes[codes.index(end, codes_path)]
    weights = np.linspace(0.0, 1.0, steps)
    vectors = np.stack([(1 - w) * a + w * b for w in weights])
    line = _new_codes(vectors, [f"interp_{i:02d}" for i in range(steps)], checkpoint, model_path)
    return decode_to_folder(line, model, checkpoint, out, resolution, False, True, "obj", force, progress, command,
                            provenance([model_path, codes_path]))


def garment_sheet(inputs: Sequence[tuple[np.ndarray, np.ndarray]] | None, decoded: Sequence[tuple[np.ndarray, np.ndarray]],
                  names: Sequence[str], png: str | os.PathLike[str], labels: tuple[str, str] = ("input", "decoded"),
                  limit: int = 10) -> None:
    """PNG: one column per garment (up to ``limit``), the input above its decoded mesh (front view).

    Meshes are in the normalised frame; both panels of a column show the same box (around the
    input, else the decoded mesh) so the two compare.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.body.render import render_mesh
    from nrtool.figures import save_figure

    shown = list(range(min(limit, len(decoded))))
    rows = [(labels[0], inputs)] if inputs is not None else []
    rows.append((labels[1], decoded))
    fig, axes = plt.subplots(len(rows), len(shown), figsize=(1.9 * len(shown) + 0.3, 2.1 * len(rows)), squeeze=False)
    boxes = []
    for i in shown:
        framed = next((m[i][0] for _, m in rows if len(m[i][1])), np.zeros((1, 3)))
        lo, hi = framed.min(axis=0), framed.max(axis=0)
        boxes.append(((lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.15, 0.05)))
    for r, (label, meshes) in enumerate(rows):
        for c, i in enumerate(shown):
            ax = axes[r][c]
            vertices, faces = meshes[i]
            centre, half = boxes[c]
            if len(faces):
                ax.imshow(render_mesh(vertices, faces, "front", (200, 200), centre, half))
            else:
                ax.text(0.5, 0.5, "no surface", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            ax.set_title(f"{label}\n{names[i]}" if label else names[i], fontsize=6)
    fig.tight_layout()
    save_figure(fig, png, dpi=100)
