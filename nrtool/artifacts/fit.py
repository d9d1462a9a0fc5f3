"""``fit`` artifacts: a body and garments recovered from a scan or an image (``nrtool fit-scan``, ``fit-image``).

Layout (schema 1):

- ``betas (10,)``, ``pose (72,)``, ``trans (3,)`` float64; ``joints (24, 3)`` of the fitted body
- ``codes/NAME (C,)`` the fitted garment codes (NAME: top, bottom)
- ``body/vertices (Vb, 3)``, ``body/faces (Fb, 3)``
- ``garments/NAME/vertices (V, 3)`` draped, ``canonical (V, 3)`` (the garment in the rest frame),
  ``faces (F, 3)``; ``refined (V, 3)`` after the post-refinement, when it ran
- ``history/KEY (E,)``: per epoch (``epoch``, ``stage`` 0 body / 1 garments, each loss term's mean)
- ``step_losses (S,)``: the total loss of every step (NaN for steps a time limit left out)
- attributes: ``objective`` ("scan" or "image"), ``metrics`` (JSON: e.g. ``chamfer_top_mm``),
  ``refine_metrics`` (JSON, before/after), ``settings`` (JSON), ``notes`` (JSON), plus provenance.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from nrtool.artifacts.core import atomic_output, open_artifact, write_root_attrs

KIND = "fit"
__all__ = ["KIND", "write_fit", "read_fit"]


def write_fit(path: str | os.PathLike[str], outcome: Any, attrs: dict[str, Any], inputs: list[dict[str, str]],
              command: list[str] | None = None) -> None:
    """Write a :class:`nrtool.drape.fitting.FitOutcome` atomically (``attrs``: objective, settings, notes)."""
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            write_root_attrs(handle, KIND, inputs, command)
            for key in ("betas", "pose", "trans"):
                handle[key] = np.asarray(outcome.params[key], dtype=np.float64)
            handle["joints"] = np.asarray(outcome.joints, dtype=np.float64)
            handle["step_losses"] = np.asarray(outcome.params["step_losses"], dtype=np.float64)
            codes = handle.create_group("codes")
            for name, code in outcome.params["codes"].items():
                codes[name] = np.asarray(code, dtype=np.float64)
            body = handle.create_group("body")
            body["vertices"] = np.asarray(outcome.body_vertices, dtype=np.float32)
            body["faces"] = np.asarray(outcome.body_faces, dtype=np.int32)
            garments = handle.create_group("garments")
            for name, vertices in outcome.garments.items():
                group = garments.create_group(name)
                group["vertices"] = np.asarray(vertices, dtype=np.float32)
                group["canonical"] = np.asarray(outcome.canonical[name], dtype=np.float32)
                group["faces"] = np.asarray(outcome.faces[name], dtype=np.int32)
                if outcome.refined is not None and name in outcome.refined:
                    group["refined"] = np.asarray(outcome.refined[name], dtype=np.float32)
            history = handle.create_group("history")
            for key in dict.fromkeys(k for record in outcome.history for k in record):
                history[key] = np.asarray([record.get(key, np.nan) for record in outcome.history], dtype=np.float64)
            handle.attrs["metrics"] = json.dumps(outcome.metrics)
            handle.attrs["refine_metrics"] = json.dumps(outcome.refine_metrics or {})
            for key, value in attrs.items():
                handle.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value


def read_fit(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Everything in a fit artifact (numpy arrays, groups as dicts; JSON attributes decoded)."""
    with open_artifact(path, KIND) as handle:
        out: dict[str, Any] = {key: handle[key][()] for key in ("betas", "pose", "trans", "joints", "step_losses")}
        out["codes"] = {name: handle[f"codes/{name}"][()] for name in handle["codes"]}
        out["body_vertices"], out["body_faces"] = handle["body/vertices"][()], handle["body/faces"][()]
        out["garments"] = {name: {k: group[k][()] for k in group} for name, group in handle["garments"].items()}
        out["history"] = {k: handle[f"history/{k}"][()] for k in handle["history"]}
        attrs = {}
        for key in handle.attrs.keys():
            value = handle.attrs[key]
            if key in ("metrics", "refine_metrics", "settings", "notes"):
                value = json.loads(value)
            attrs[key] = value
        out["attrs"] = attrs
    return out
