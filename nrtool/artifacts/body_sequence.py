"""``body-sequence`` artifacts: a posed body over time (``nrtool body pose --format h5``).

Layout (schema 1), ``T`` frames, ``V`` vertices, ``F`` faces:

- ``vertices (T, V, 3)`` float32, chunked per frame and compressed; ``faces (F, 3)`` int32
- ``joints (T, 24, 3)`` and ``transforms (T, 24, 4, 4)`` (the per-joint skinning transforms A)
- ``poses (T, 72)``, ``trans (T, 3)``, ``betas (B,)``: the SMPL parameters that produced them
- ``frame_index (T,)`` (frame number in the resampled sequence), ``time (T,)`` seconds
- attributes: ``fps``, ``gender``, ``up_axis``, ``source_layout``, ``body_model``, ``motion``,
  ``notes`` (JSON list), plus the provenance every artifact carries.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import (
    atomic_output,
    open_artifact,
    provenance,
    write_root_attrs,
)

KIND = "body-sequence"
__all__ = ["KIND", "write_body_sequence", "read_body_sequence"]


def write_body_sequence(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    attrs: dict[str, Any],
    inputs: list[str | os.PathLike[str]],
    command: list[str] | None = None,
) -> None:
    """Write a body-sequence artifact atomically.

    ``arrays`` holds ``vertices, faces, joints, transforms, poses, trans, betas, frame_index,
    time``; ``attrs`` the scalar attributes listed in the module docstring.
    """
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            write_root_attrs(handle, KIND, provenance(inputs), command)
            vertices = np.asarray(arrays["vertices"], dtype=np.float32)
            handle.create_dataset(
                "vertices", data=vertices, chunks=(1,) + vertices.shape[1:], compression="gzip", compression_opts=4
            )
            handle["faces"] = np.asarray(arrays["faces"], dtype=np.int32)
            for key in ("joints", "transforms"):
                handle.create_dataset(key, data=np.asarray(arrays[key], dtype=np.float32), compression="gzip")
            for key in ("poses", "trans", "betas", "time"):
                handle[key] = np.asarray(arrays[key], dtype=np.float64)
            handle["frame_index"] = np.asarray(arrays["frame_index"], dtype=np.int64)
            for key, value in attrs.items():
                handle.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value


def read_body_sequence(path: str | os.PathLike[str]) -> dict[str, Any]:
    """All datasets of a body-sequence artifact as numpy arrays, plus ``attrs``."""
    with open_artifact(path, KIND) as handle:
        out: dict[str, Any] = {key: handle[key][()] for key in handle.keys()}
        out["attrs"] = {key: handle.attrs[key] for key in handle.attrs.keys()}
    return out
