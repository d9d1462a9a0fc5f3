"""Clothed bodies of known parameters, and labelled scans of them (``nrtool synth scan``).

The ground truth of the fitting tests and demo: garments of known codes draped (by the same
:class:`nrtool.drape.sequence.SequenceDraper` that ``nrtool drape`` uses) on the body with a
known shape, pose and translation; then a scan of it as a scanner would give it -- points on
the surfaces, Gaussian noise, the back missing, the body only where no garment covers it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.drape.model import DrapingModel

#: Label of each part in a labelled scan (``labels`` arrays hold these integers).
PART_IDS = {"body": 0, "top": 1, "bottom": 2}


@dataclass
class ClothedTruth:
    """A draped clothed body (numpy, metres)."""

    betas: np.ndarray  # (10,)
    pose: np.ndarray  # (72,)
    trans: np.ndarray  # (3,)
    codes: dict[str, np.ndarray]
    body_vertices: np.ndarray
    body_faces: np.ndarray
    joints: np.ndarray  # (24, 3)
    garments: dict[str, np.ndarray]
    faces: dict[str, np.ndarray]


def dress_truth(models: dict[str, DrapingModel], body: object, codes: dict[str, np.ndarray], betas: np.ndarray,
                pose: np.ndarray, trans: np.ndarray, resolution: int | None, device: torch.device) -> ClothedTruth:
    """Drape ``codes`` (by category) on the body posed by ``betas``, ``pose``, ``trans``.

    Each code is placed in the body frame by its garment network's training normalisation (as
    the fitter places its codes).
    """
    from nrtool.drape.garments import decode_templates
    from nrtool.drape.physics import Material
    from nrtool.drape.sequence import SequenceDraper
    from nrtool.drape.skinning import skinning_from_checkpoint
    from nrtool.garments.model import model_from_checkpoint, training_normalisation

    templates, skinning = {}, {}
    for category, code in codes.items():
        model = models[category]
        net = model_from_checkpoint(model.checkpoint["garment"], model.path, device)
        centre, scale = training_normalisation(model.checkpoint["garment"])
        (templates[category],), _ = decode_templates(net, np.asarray(code, dtype=np.float32)[None], [category],
                                                     centre[None], np.asarray([scale]),
                                                     resolution or model.field.config.garment_resolution)
        skinning[category] = skinning_from_checkpoint(model.checkpoint["skinning"], model.path, body,
                                                      getattr(body, "path", "body"), device)
    kinds = [k for k in (*templates, "intersection") if k in models]
    draper = SequenceDraper({k: models[k] for k in kinds}, templates, skinning, body, np.asarray(betas), Material(), device)
    posed, out = draper.drape(np.asarray(pose, dtype=np.float32)[None], np.asarray(trans, dtype=np.float32)[None])
    return ClothedTruth(np.asarray(betas, dtype=np.float64), np.asarray(pose, dtype=np.float64),
                        np.asarray(trans, dtype=np.float64), {c: np.asarray(z) for c, z in codes.items()},
                        out.vertices[0].cpu().numpy().astype(np.float64), np.asarray(body.faces),
                        out.joints[0].cpu().numpy().astype(np.float64),
                        {c: v[0].cpu().numpy().astype(np.float64) for c, v in posed.items()},
                        {c: t.faces for c, t in templates.items()})


def sample_labelled_scan(truth: ClothedTruth, count: int = 20_000, noise: float = 0.003, back_cut: float = 0.05,
                         covered: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy, partial labelled scan: ``(N, 3)`` points and ``(N,)`` labels (:data:`PART_IDS`).

    ``count`` points are drawn on all surfaces by area; then the body's points within
    ``covered`` m of a garment are dropped (a scanner sees the clothes, not the skin under
    them), every point more than ``back_cut`` m behind the body's centre (−z, the body faces +z)
    is dropped (the scanner saw the front and sides), and Gaussian noise of ``noise`` m is added.
    """
    from scipy.spatial import cKDTree

    from nrtool.geometry.metrics import sample_surface

    rng = np.random.default_rng(seed)
    surfaces = [("body", truth.body_vertices, truth.body_faces)] + [(c, truth.garments[c], truth.faces[c])
                                                                   for c in truth.garments]
    areas = []
    for _, v, f in surfaces:
        a, b, c = (v[f[:, k]] for k in range(3))
        areas.append(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())
    shares = np.asarray(areas) / np.sum(areas)
    clothes = np.vstack([sample_surface(v, f, 20_000, seed) for name, v, f in surfaces if name != "body"]) \
        if len(surfaces) > 1 else None
    centre_z = float(truth.body_vertices[:, 2].mean())
    points, labels = [], []
    for (name, v, f), share in zip(surfaces, shares):
        p = sample_surface(v, f, max(1, int(round(count * share))), int(rng.integers(1 << 30)))
        keep = p[:, 2] > centre_z - back_cut
        if name == "body" and clothes is not None:
            keep &= cKDTree(clothes).query(p, k=1)[0] > covered
        p = p[keep] + rng.normal(scale=noise, size=(int(keep.sum()), 3))
        points.append(p)
        labels.append(np.full(len(p), PART_IDS[name], dtype=np.int64))
    return np.vstack(points), np.concatenate(labels)


def truth_path(out: str | os.PathLike[str]) -> Path:
    """Where ``nrtool synth scan`` writes the ground truth of ``out``: ``NAME.truth.npz`` beside it."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".npz") + ".truth.npz")


def synthetic_truth(model_paths: list[str | os.PathLike[str]], top: str | os.PathLike[str] | None,
                    bottom: str | os.PathLike[str] | None, pose_path: str | os.PathLike[str] | None, frame: int,
                    betas: list[float] | None, body_model: str | os.PathLike[str] | None,
                    device: torch.device) -> ClothedTruth:
    """The clothed body ``nrtool synth scan|image`` observe: codes from ``top``/``bottom`` (.npy;
    default the model's first training code), pose and translation from a motion frame (default
    arms down at the origin), ``betas``."""
    from nrtool.body.amass import load_motion
    from nrtool.drape.fitting import rest_fitting_pose
    from nrtool.drape.outputs import load_body_for, load_models
    from nrtool.errors import InputFileError, NrtoolError
    from nrtool.garments.model import training_codes

    models = load_models(list(model_paths), device)
    body, _, _, _ = load_body_for(models, body_model, device)
    codes = {}
    for category, given in (("top", top), ("bottom", bottom)):
        if category not in models:
            if given is not None:
                raise NrtoolError(f"--{category} needs a {category} draping model among --model")
            continue
        if given is None:
            codes[category] = training_codes(models[category].checkpoint["garment"])[0]
            continue
        try:
            code = np.load(given, allow_pickle=False).reshape(-1).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise InputFileError(given, f"is not a code .npy ({exc})") from None
        if len(code) != models[category].field.code_dim or not np.all(np.isfinite(code)):
            raise InputFileError(given, f"is not a finite code of width {models[category].field.code_dim}")
        codes[category] = code
    if not codes:
        raise NrtoolError("--model: give a top or bottom draping model")
    pose, trans = rest_fitting_pose(), np.zeros(3)
    if pose_path is not None:
        motion = load_motion(pose_path, y_up=True, rest_joints=body.rest_joints())
        if not 0 <= frame < motion.num_frames:
            raise NrtoolError(f"--frame {frame}: {pose_path} has {motion.num_frames} frames")
        pose, trans = motion.poses[frame].astype(np.float64), motion.trans[frame].astype(np.float64)
    shape = np.zeros(10)
    if betas:
        if len(betas) > 10:
            raise NrtoolError(f"--betas: at most 10 values, got {len(betas)}")
        shape[: len(betas)] = betas
    return dress_truth(models, body, codes, shape, pose, trans, None, device)


def save_truth(path: str | os.PathLike[str], truth: ClothedTruth) -> None:
    """The truth as an ``.npz`` (betas, pose, trans, joints, body and garment meshes, codes), atomically."""
    from nrtool.artifacts.core import atomic_output

    arrays = {"betas": truth.betas, "pose": truth.pose, "trans": truth.trans, "joints": truth.joints,
              "body_vertices": truth.body_vertices, "body_faces": truth.body_faces}
    for category in truth.garments:
        arrays[f"{category}_vertices"] = truth.garments[category]
        arrays[f"{category}_faces"] = truth.faces[category]
        arrays[f"{category}_code"] = truth.codes[category]
    with atomic_output(path, ".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def write_synthetic_scan(out: str | os.PathLike[str], model_paths: list[str | os.PathLike[str]],
                         top: str | os.PathLike[str] | None, bottom: str | os.PathLike[str] | None,
                         pose_path: str | os.PathLike[str] | None, frame: int, betas: list[float] | None,
                         body_model: str | os.PathLike[str] | None, count: int, noise: float, back_cut: float,
                         seed: int, device: str = "auto") -> dict[str, Any]:
    """``nrtool synth scan``: dress, scan, write ``out`` (``points``, ``labels``) and its truth."""
    from nrtool.artifacts.core import atomic_output
    from nrtool.device import resolve_device
    from nrtool.errors import NrtoolError

    if count < 100 or noise < 0:
        raise NrtoolError("--points must be at least 100 and --noise at least 0")
    truth = synthetic_truth(model_paths, top, bottom, pose_path, frame, betas, body_model, resolve_device(device))
    points, labels = sample_labelled_scan(truth, count, noise, back_cut, seed=seed)
    with atomic_output(out, ".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, points=points.astype(np.float32), labels=labels)
    save_truth(truth_path(out), truth)
    return {"out": str(out), "truth": str(truth_path(out)),
            "points": {name: int((labels == i).sum()) for name, i in PART_IDS.items()}}


def front_camera(truth: ClothedTruth, width: int, height: int, distance: float = 3.0, fill: float = 0.85) -> Any:
    """A camera ``distance`` m in front of the body (on +z, looking along -z), the body filling
    ``fill`` of the image height."""
    from nrtool.drape.image_fit import Camera

    vertices = np.vstack([truth.body_vertices, *truth.garments.values()])
    centre = (vertices.min(0) + vertices.max(0)) / 2
    extent = float(vertices[:, 1].max() - vertices[:, 1].min())
    R = np.diag([1.0, -1.0, -1.0])  # OpenCV: x right, y down, z forward (towards -z of the world)
    eye = centre + np.array([0.0, 0.0, distance])
    f = fill * height * distance / extent
    return Camera(np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]), R, -R @ eye, width, height)


def write_synthetic_image(out: str | os.PathLike[str], model_paths: list[str | os.PathLike[str]],
                          top: str | os.PathLike[str] | None, bottom: str | os.PathLike[str] | None,
                          pose_path: str | os.PathLike[str] | None, frame: int, betas: list[float] | None,
                          body_model: str | os.PathLike[str] | None, width: int, height: int, init_noise: float,
                          seed: int, force: bool = False, device: str = "auto") -> dict[str, Any]:
    """``nrtool synth image``: a folder with ``image.png`` (shaded parts), ``mask.png`` (part labels),
    ``camera.json``, ``init.npz`` (the true body disturbed, as a detector's estimate) and ``truth.npz``."""
    import json

    from nrtool.artifacts.core import atomic_folder
    from nrtool.device import resolve_device
    from nrtool.drape.image_fit import MASK_LABELS, SilhouetteRenderer
    from nrtool.errors import NrtoolError
    from nrtool.io.images import write_image

    if width < 16 or height < 16:
        raise NrtoolError("--size: at least 16x16")
    torch_device = resolve_device(device)
    truth = synthetic_truth(model_paths, top, bottom, pose_path, frame, betas, body_model, torch_device)
    camera = front_camera(truth, width, height)
    renderer = SilhouetteRenderer(camera, torch.device("cpu"), soft=False)
    parts = [("body", truth.body_vertices, truth.body_faces)] + [(c, truth.garments[c], truth.faces[c]) for c in truth.garments]
    tensors = [(n, torch.as_tensor(v, dtype=torch.float32), torch.as_tensor(f, dtype=torch.int64)) for n, v, f in parts]
    labels = renderer.label_image(tensors)
    # The picture a person would look at: each part in its flat colour (what is fitted is the mask).
    from nrtool.drape.scan_input import PART_COLOURS

    image = np.zeros((height, width, 3))
    for name, value in MASK_LABELS.items():
        image[labels == value] = np.asarray(PART_COLOURS[name]) / 255
    rng = np.random.default_rng(seed)
    pose = truth.pose.copy()
    pose[3:] += rng.normal(scale=init_noise, size=69)
    init = {"betas": np.zeros(10), "pose": pose, "trans": truth.trans + rng.normal(scale=0.03, size=3)}
    with atomic_folder(out, force=force) as tmp:
        write_image(tmp / "image.png", (np.clip(image, 0, 1) * 255).astype(np.uint8)[..., ::-1])
        write_image(tmp / "mask.png", labels)
        (tmp / "camera.json").write_text(json.dumps(camera.to_json(), indent=1))
        with open(tmp / "init.npz", "wb") as handle:
            np.savez(handle, **init)
        save_truth(tmp / "truth.npz", truth)
    return {"out": str(out), "pixels": {name: int((labels == v).sum()) for name, v in MASK_LABELS.items()}}
