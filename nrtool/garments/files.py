"""Garment mesh files: one garment and what it is, read from a mesh and its ``garments.json``.

Real garments (a user's CLOTH3D export) and procedural ones (:mod:`nrtool.synth.garments`)
are read and described by the same code. Numpy only: no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError

#: The index beside the category folders (``tops/``, ``bottoms/``) of a garment set.
INDEX_NAME = "garments.json"


@dataclass
class Garment:
    """One garment mesh with what it is."""

    name: str
    category: str  # "top" | "bottom"
    type: str
    vertices: np.ndarray  # (V, 3) body frame, metres
    faces: np.ndarray  # (F, 3)
    attributes: dict[str, Any]
    normalise: dict[str, Any] = field(default_factory=dict)  # {"centre": [3], "scale": s}


def load_garment(path: str | os.PathLike[str]) -> Garment:
    """A garment mesh file (``.obj``/``.ply``/...; procedural or a user's CLOTH3D export).

    Read with :func:`nrtool.io.shapes.load_shape`; attributes are filled from a
    ``garments.json`` beside the category folder when there is one.
    """
    from nrtool.io import load_shape

    shape = load_shape(path)
    if shape.kind != "mesh":
        raise InputFileError(path, f"is a {shape.kind} file, expected a garment mesh")
    p = Path(path)
    attributes: dict[str, Any] = {}
    normalise: dict[str, Any] = {}
    category, kind = "unknown", "unknown"
    index_file = p.parent.parent / INDEX_NAME
    if index_file.is_file():
        try:
            entries = json.loads(index_file.read_text())["garments"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(index_file, f"not a garments index ({exc})") from exc
        for entry in entries:
            if (index_file.parent / entry["file"]).resolve() == p.resolve():
                attributes, normalise = entry["attributes"], entry["normalise"]
                category, kind = entry["category"], entry["type"]
    assert shape.vertices is not None and shape.faces is not None
    return Garment(shape.name, category, kind, shape.vertices, shape.faces, attributes, normalise)
