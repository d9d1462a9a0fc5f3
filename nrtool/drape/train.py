"""Self-supervised training of the draping network by physics alone (thesis Sec. 2.3.2, Eq. 2.6-2.8).

No simulation data: each step drapes one garment on ``batch`` bodies (poses from the motions
given, shapes from U[-r, r]^10) with the current field, and minimises the quasi-static energy
of the result -- StVK strain + bending + gravity + body collision (Eq. 2.7), plus the waist
pins for bottoms (Eq. 2.8) -- with Adam. The skinning stage (W, Δx) is trained before, once per
body, and stays frozen. Validation drapes every training garment on held-out poses and shapes
(never trained on) and keeps the epoch of lowest mean energy; it also reports B2G.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from nrtool.drape.config import NUM_BETAS, DrapeConfig, DrapeTrainSettings
from nrtool.drape.garments import GarmentTemplate, template_tensors
from nrtool.drape.model import DisplacementField, pad_betas
from nrtool.progress import Progress
from nrtool.training import TrainReport

__all__ = ["DrapeTrainer", "drape_energies", "split_poses", "train_drape"]


def split_poses(poses: np.ndarray, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P, 72)`` poses -> (training poses, ``held_out`` validation poses), a seeded random split."""
    if len(poses) < held_out + 1:
        from nrtool.errors import NrtoolError

        raise NrtoolError(f"{len(poses)} poses: need more than --val-poses {held_out} (give longer or more motions)")
    order = np.random.default_rng(seed).permutation(len(poses))
    return poses[order[held_out:]], poses[order[:held_out]]


def drape_energies(field: DisplacementField | None, entry: dict[str, Any], skinning: Any, body: Any, material: Any,
                   poses: torch.Tensor, betas: torch.Tensor, kind: str, floor_at_body: bool = True,
                   weights: torch.Tensor | None = None, shape_dx: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, Any]:
    """Drape one garment (``entry``: :func:`template_tensors`) on ``B`` bodies and measure it.

    ``field`` None drapes by skinning alone (W and Δx, no Δx_ref). ``weights``/``shape_dx``
    replace the skinning field's (the nearest-vertex baseline passes the body's own).
    Returns (per-body total energy ``(B,)``, each term ``(B,)``, posed garment ``(B, V, 3)``,
    the posed body output).
    """
    from nrtool.drape.physics import (
        bending_energy,
        collision_energy,
        gravity_energy,
        pin_energy,
        strain_energy,
    )
    from nrtool.drape.skinning import linear_blend_skinning

    batch = len(poses)
    points = entry["points"]
    with torch.no_grad():
        out = body.forward(poses, betas[:, : body.num_betas] if body.num_betas else None)
        if shape_dx is None:
            shape_dx = skinning.shape_displacement(points[None].expand(batch, -1, -1), betas)
    canonical = points[None] + shape_dx
    displacement = None
    if field is not None:
        displacement = field(points, entry["code"], poses, betas)
        canonical = canonical + displacement
    posed = linear_blend_skinning(canonical, entry["weights"] if weights is None else weights, out.transforms)
    floor = out.vertices[..., 1].min(dim=1).values if floor_at_body else None
    rest = entry["rest"]
    terms = {
        "strain": strain_energy(posed, rest, material),
        "bending": bending_energy(posed, rest, material),
        "gravity": gravity_energy(posed, rest, material, floor),
        "collision": collision_energy(posed, out.vertices, out.normals, material),
    }
    if kind == "bottom":
        pinned = entry["pinned"]
        terms["pin"] = (pin_energy(displacement, pinned) if displacement is not None
                        else torch.zeros(batch, device=posed.device))
    total = sum(terms.values())
    return total, terms, posed, out


class DrapeTrainer:
    """Epochs of physics-driven steps and their validation, for :func:`nrtool.training.run_training`."""

    def __init__(self, field: DisplacementField, kind: str, templates: list[GarmentTemplate], skinning: Any, body: Any,
                 material: Any, train_poses: np.ndarray, val_poses: np.ndarray, settings: DrapeTrainSettings,
                 device: torch.device) -> None:
        self.model, self.kind, self.templates = field, kind, templates
        self.skinning, self.body, self.material, self.device = skinning, body, material, device
        self.config: DrapeConfig = field.config
        self.settings = settings
        self.optimizer = torch.optim.Adam(field.parameters(), lr=self.config.lr)
        self.scheduler = None
        self.generator = None
        self.rng = np.random.default_rng(settings.seed)
        self.steps_per_epoch = settings.steps_per_epoch
        self.train_poses = torch.as_tensor(train_poses, dtype=torch.float32, device=device)
        self.val_poses = torch.as_tensor(val_poses, dtype=torch.float32, device=device)
        self.val_betas = self._betas(np.random.default_rng(settings.seed + 1), len(val_poses))
        self.entries = [template_tensors(t, skinning, material, body, kind == "bottom", device) for t in templates]

    def _betas(self, rng: np.random.Generator, count: int) -> torch.Tensor:
        """``count`` shapes from U[-r, r]^10 (zeros for a body without a shape space)."""
        r = self.config.beta_range
        betas = rng.uniform(-r, r, size=(count, NUM_BETAS)) if self.body.has_shape_space else np.zeros((count, NUM_BETAS))
        return pad_betas(betas.astype(np.float32), count, self.device)

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        sums: dict[str, float] = {}
        steps = 0
        order = self.rng.permutation(len(self.entries))
        for step in range(self.steps_per_epoch):
            if steps and out_of_time():
                break
            entry = self.entries[order[step % len(order)]]
            rows = self.rng.integers(0, len(self.train_poses), size=self.config.batch)
            poses = self.train_poses[torch.as_tensor(rows, device=self.device)]
            betas = self._betas(self.rng, self.config.batch)
            total, terms, _, _ = drape_energies(self.model, entry, self.skinning, self.body, self.material, poses, betas,
                                                self.kind)
            loss = total.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for name, value in {"loss": loss, **{k: v.mean() for k, v in terms.items()}}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            steps += 1
            advance()
        return {"steps": steps, **{k: v / max(steps, 1) for k, v in sums.items()}}

    def evaluate(self, field: DisplacementField | None, baseline: bool = False) -> dict[str, float]:
        """Mean energies and B2G over every garment on the held-out bodies (``field`` None: skinning
        alone; ``baseline``: each vertex skinned like its nearest body vertex)."""
        from nrtool.drape.metrics import body_to_garment
        from nrtool.drape.skinning import nearest_vertex_skinning

        sums: dict[str, float] = {}
        count = 0
        with torch.no_grad():
            for entry in self.entries:
                weights = shape_dx = None
                if baseline:
                    weights, shape_dx = nearest_vertex_skinning(entry["points"], self.body, self.val_betas)
                total, terms, posed, out = drape_energies(field, entry, self.skinning, self.body, self.material,
                                                          self.val_poses, self.val_betas, self.kind,
                                                          weights=weights, shape_dx=shape_dx)
                b2g = body_to_garment(posed, entry["faces"], out.vertices, out.normals)
                for name, value in {"energy": total, **terms, "b2g": b2g}.items():
                    sums[name] = sums.get(name, 0.0) + float(value.sum())
                count += len(total)
        return {k: v / count for k, v in sums.items()}

    def validate(self, epoch: int) -> dict[str, float]:
        self.model.eval()
        record = {f"val_{k}": v for k, v in self.evaluate(self.model).items()}
        self.model.train()
        return record

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        return (record["val_energy"],) if "val_energy" in record else None


def train_drape(
    garment_model_path: str | os.PathLike[str],
    codes_path: str | os.PathLike[str] | None,
    body_path: str | os.PathLike[str],
    skinning_path: str | os.PathLike[str],
    poses: np.ndarray,
    pose_sources: list[str],
    out: str | os.PathLike[str],
    config: DrapeConfig,
    settings: DrapeTrainSettings,
    device: str = "auto",
    progress: Progress | None = None,
    restart: bool = False,
) -> TrainReport:
    """Train the draping field of the garment model's category; write the best checkpoint.

    ``codes_path``: a ``garment-codes`` artifact (or ``.npy``) of the garments to drape; None
    uses the garment model's own training codes. ``skinning_path``: a trained skinning field of
    ``body_path`` (:func:`nrtool.drape.skinning.train_skinning`). ``poses (P, 72)``: Y-up SMPL
    poses (``pose_sources`` names where they came from, for the record).
    """
    from nrtool.artifacts.core import sha256_file
    from nrtool.artifacts.garment_codes import load_codes_any
    from nrtool.body.body_model import BodyModel
    from nrtool.checkpoints import load_checkpoint
    from nrtool.drape.garments import code_transforms, decode_templates
    from nrtool.drape.physics import Material
    from nrtool.drape.skinning import (
        SKINNING_FORMAT,
        SKINNING_VERSION,
        skinning_from_checkpoint,
    )
    from nrtool.figures import training_curves
    from nrtool.garments.model import (
        check_category,
        check_code_width,
        load_model,
        training_codes,
    )
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, settings, config)
    garment_model, garment_checkpoint = load_model(garment_model_path, torch_device)
    kind = garment_checkpoint["category"]
    if codes_path is None:
        from nrtool.artifacts.core import ItemInfo
        from nrtool.artifacts.garment_codes import GarmentCodes

        vectors = training_codes(garment_checkpoint)
        names = list(garment_checkpoint["train"]["names"])
        items = [ItemInfo(n, None, None, "", i, None, None) for i, n in enumerate(names)]
        codes = GarmentCodes(vectors, items, kind, [{} for _ in names], sha256_file(garment_model_path))
        codes_source = f"{garment_model_path} (its training codes)"
    else:
        codes = load_codes_any(codes_path)
        check_code_width(codes.codes, garment_checkpoint, codes_path)
        check_category(codes.category, garment_checkpoint, codes_path, garment_model_path)
        codes_source = str(codes_path)
    body = BodyModel(body_path, device=torch_device)
    skinning_checkpoint = load_checkpoint(skinning_path, SKINNING_FORMAT, SKINNING_VERSION, "skinning",
                                          "nrtool train skinning")
    skinning = skinning_from_checkpoint(skinning_checkpoint, skinning_path, body, body_path, torch_device)
    centres, scales = code_transforms(codes, garment_checkpoint)
    templates, notes = decode_templates(garment_model, codes.codes, list(codes.names), centres, scales,
                                        config.garment_resolution, progress)
    train_poses, val_poses = split_poses(np.asarray(poses, dtype=np.float32), settings.val_poses, settings.seed)
    material = Material()
    body_sha = sha256_file(body.path)
    run_settings = {k: v for k, v in settings.to_dict().items() if k != "time_limit"}
    fingerprint = {"config": config.to_dict(), "settings": run_settings, "kind": kind,
                   "garment_model": sha256_file(garment_model_path), "codes": codes_source,
                   "code_rows": [t.name for t in templates], "body": body_sha, "skinning": sha256_file(skinning_path),
                   "poses": [float(np.asarray(poses, dtype=np.float64).sum()), int(len(poses))]}
    torch.manual_seed(settings.seed)
    field = DisplacementField(config, codes.codes.shape[1]).to(torch_device)
    trainer = DrapeTrainer(field, kind, templates, skinning, body, material, train_poses, val_poses, settings,
                           torch_device)
    skinning.eval()
    before = {"skinning": trainer.evaluate(None), "baseline": trainer.evaluate(None, baseline=True)}
    run = run_training(trainer, out, "drape", fingerprint, settings, progress, restart, f"training {kind} draping")
    field.load_state_dict(run.best_state)
    field.eval()
    from nrtool.drape.model import save_draping

    extra = {
        "skinning": skinning_checkpoint,
        "garment": garment_checkpoint,
        "body": {**{k: v for k, v in skinning_checkpoint["body"].items() if k != "rest_joints"},
                 "path": str(body.path.resolve())},
        "material": json.dumps(material.to_dict() if hasattr(material, "to_dict") else vars(material)),
        "training": {"settings": settings.to_dict(), "garments": [t.name for t in templates],
                     "codes": codes_source, "poses": pose_sources, "train_poses": int(len(train_poses)),
                     "val_poses": torch.as_tensor(val_poses)},
        "history": json.dumps(run.history),
        "best_epoch": run.best_epoch,
        "reference": json.dumps(before),
    }
    save_draping(out, kind, field, extra)
    curves = out.with_suffix(".png")
    training_curves(run.history, curves, f"{out.name}: {kind} draping, {config.preset}", run.best_epoch)
    run.finish()
    best = run.best
    comparison = {"ours": {k[4:]: v for k, v in best.items() if k.startswith("val_")}, **before}
    report = run.report(out, curves, kind=kind, garments=len(templates), poses=int(len(train_poses)),
                        validation_poses=int(len(val_poses)), held_out=comparison)
    report.notes = notes
    return report
