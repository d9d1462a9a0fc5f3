"""``drape`` artifacts: garments worn by a moving body (``nrtool drape``).

Layout (schema 1), ``T`` frames:

- ``body/vertices (T, Vb, 3)`` float32 (chunked per frame, compressed), ``body/faces (Fb, 3)``
- ``garments/NAME/vertices (T, V, 3)``, ``garments/NAME/faces (F, 3)`` for NAME in top, bottom
- ``frame_index (T,)`` (frame number in the motion as read), ``poses (T, 72)``, ``trans (T, 3)``,
  ``betas (10,)``
- ``metrics/KEY (T,)``: per frame ``b2g_top``, ``b2g_bottom`` (area fraction of the garment inside
  the body), ``g2g`` (bottom area outside the top / bottom area), ``strain_*``, ``bending_*``,
  ``gravity_*`` (J; gravity with its zero at the body's lowest vertex)
- ``baseline/KEY (T,)``: the same for the nearest-vertex baseline, when it was run
- attributes: ``motion``, ``body_model``, ``models`` (JSON), ``codes`` (JSON), ``notes`` (JSON),
  ``seconds_per_frame``, plus the provenance every artifact carries.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import atomic_output, open_artifact, write_root_attrs

KIND = "drape"
__all__ = ["KIND", "write_drape", "read_drape"]


def _frames(handle: h5py.Group, name: str, array: np.ndarray) -> None:
    array = np.asarray(array, dtype=np.float32)
    handle.create_dataset(name, data=array, chunks=(1,) + array.shape[1:], compression="gzip", compression_opts=4)


def write_drape(path: str | os.PathLike[str], arrays: dict[str, Any], attrs: dict[str, Any],
                inputs: list[dict[str, str]], command: list[str] | None = None) -> None:
    """Write a drape artifact atomically. ``arrays``: ``body_vertices``, ``body_faces``,
    ``garments`` {name: (T, V, 3)}, ``faces`` {name: (F, 3)}, ``frame_index``, ``poses``,
    ``trans``, ``betas``, ``metrics`` {key: (T,)}, optional ``baseline`` {key: (T,)}."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            write_root_attrs(handle, KIND, inputs, command)
            body = handle.create_group("body")
            _frames(body, "vertices", arrays["body_vertices"])
            body["faces"] = np.asarray(arrays["body_faces"], dtype=np.int32)
            garments = handle.create_group("garments")
            for name, vertices in arrays["garments"].items():
                group = garments.create_group(name)
                _frames(group, "vertices", vertices)
                group["faces"] = np.asarray(arrays["faces"][name], dtype=np.int32)
            handle["frame_index"] = np.asarray(arrays["frame_index"], dtype=np.int64)
            for key in ("poses", "trans", "betas"):
                handle[key] = np.asarray(arrays[key], dtype=np.float64)
            for group_name in ("metrics", "baseline"):
                values = arrays.get(group_name)
                if values is None:
                    continue
                group = handle.create_group(group_name)
                for key, value in values.items():
                    group[key] = np.asarray(value, dtype=np.float64)
            for key, value in attrs.items():
                handle.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value


def read_drape(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything in a drape artifact as numpy arrays (groups as dicts), plus ``attrs``."""
    with open_artifact(path, KIND) as handle:
        out: dict[str, Any] = {
            "body_vertices": handle["body/vertices"][()],
            "body_faces": handle["body/faces"][()],
            "garments": {name: handle[f"garments/{name}/vertices"][()] for name in handle["garments"]},
            "faces": {name: handle[f"garments/{name}/faces"][()] for name in handle["garments"]},
        }
        for key in ("frame_index", "poses", "trans", "betas"):
            out[key] = handle[key][()]
        for group in ("metrics", "baseline"):
            out[group] = {k: handle[f"{group}/{k}"][()] for k in handle[group]} if group in handle else None
        out["attrs"] = {key: handle.attrs[key] for key in handle.attrs.keys()}
    return out
