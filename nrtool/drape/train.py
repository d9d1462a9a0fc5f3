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

from nrtool.distributed import rank_slice
from nrtool.drape.config import NUM_BETAS, DrapeConfig, DrapeTrainSettings
from nrtool.drape.garments import GarmentTemplate, template_tensors
from nrtool.drape.model import DisplacementField, pad_betas, posed_bodies, poses_digest
from nrtool.drape.poses import TrainingPoses
from nrtool.progress import Progress
from nrtool.training import TrainReport

__all__ = ["DrapeTrainer", "IntersectionTrainer", "drape_energies", "pose_garment", "split_poses", "template_record",
           "train_drape", "train_intersection"]


def split_poses(poses: np.ndarray, held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P, 72)`` poses -> (training poses, ``held_out`` validation poses), a seeded random split."""
    if len(poses) < held_out + 1:
        from nrtool.errors import NrtoolError

        raise NrtoolError(f"{len(poses)} poses: need more than --val-poses {held_out} (give longer or more motions)")
    order = np.random.default_rng(seed).permutation(len(poses))
    return poses[order[held_out:]], poses[order[:held_out]]


def pose_garment(field: DisplacementField | None, entry: dict[str, Any], skinning: Any, out: Any, poses: torch.Tensor,
                 betas: torch.Tensor, weights: torch.Tensor | None = None, shape_dx: torch.Tensor | None = None,
                 solver: tuple[DisplacementField, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One garment (``entry``: :func:`template_tensors`, ``V`` vertices) worn by ``B`` posed bodies.

    ``out``: the posed bodies (``body.forward``; its ``transforms (B, 24, 4, 4)`` skin the
    garment). ``field`` None skins by W and Δx alone (no Δx_ref); ``weights``/``shape_dx``
    replace the skinning field's. ``solver``: the intersection solver and its code
    ``[z_bottom, z_top] (2C,)``, whose displacement is added to the field's (Eq. 2.9).
    Returns (posed garment ``(B, V, 3)``, the learnt displacement ``(B, V, 3)`` added before
    skinning, None without a field).
    """
    from nrtool.drape.skinning import linear_blend_skinning

    batch = len(poses)
    points = entry["points"]
    if shape_dx is None:
        with torch.no_grad():
            shape_dx = skinning.shape_displacement(points[None].expand(batch, -1, -1), betas)
    canonical = points[None] + shape_dx
    displacement = None
    if field is not None:
        displacement = field(points, entry["code"], poses, betas)
        if solver is not None:
            displacement = displacement + solver[0](points, solver[1], poses, betas)
        canonical = canonical + displacement
    posed = linear_blend_skinning(canonical, entry["weights"] if weights is None else weights, out.transforms)
    return posed, displacement


def drape_energies(field: DisplacementField | None, entry: dict[str, Any], skinning: Any, body: Any, material: Any,
                   poses: torch.Tensor, betas: torch.Tensor, kind: str, floor_at_body: bool = True,
                   weights: torch.Tensor | None = None, shape_dx: torch.Tensor | None = None,
                   solver: tuple[DisplacementField, torch.Tensor] | None = None, out: Any = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, Any]:
    """Drape one garment (``entry``: :func:`template_tensors`) on ``B`` bodies and measure it.

    ``field``, ``weights``, ``shape_dx``, ``solver``: as :func:`pose_garment` (the
    nearest-vertex baseline passes the body's own weights and shape displacement). ``out``: the
    posed bodies when the caller has them already (else posed here from ``poses``/``betas``).
    Bottoms (``kind`` "bottom" or "intersection") add the waist pins (Eq. 2.8) on the whole
    learnt displacement (the solver's included).
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

    batch = len(poses)
    if out is None:
        with torch.no_grad():
            out = posed_bodies(body, poses, betas)
    posed, displacement = pose_garment(field, entry, skinning, out, poses, betas, weights, shape_dx, solver)
    floor = out.vertices[..., 1].min(dim=1).values if floor_at_body else None
    rest = entry["rest"]
    terms = {
        "strain": strain_energy(posed, rest, material),
        "bending": bending_energy(posed, rest, material),
        "gravity": gravity_energy(posed, rest, material, floor),
        # Vertices and face centroids: B2G tests the centroids (see collision_energy).
        "collision": collision_energy(posed, out.vertices, out.normals, material, rest.faces),
    }
    if kind in ("bottom", "intersection"):
        pinned = entry["pinned"]
        terms["pin"] = (pin_energy(displacement, pinned) if displacement is not None
                        else torch.zeros(batch, device=posed.device))
    total = sum(terms.values())
    return total, terms, posed, out


class DrapeTrainer:
    """Epochs of physics-driven steps and their validation, for :func:`nrtool.training.run_training`.

    Each step takes one training item (here a garment; :class:`IntersectionTrainer`'s: a
    top/bottom pair) in a seeded order and ``batch`` bodies, and minimises the mean of
    :meth:`item_energies`; validation averages :meth:`measure` over every item on the held-out
    bodies. Subclasses change what an item is by overriding those two methods.
    """

    def __init__(self, field: DisplacementField, kind: str, templates: list[GarmentTemplate], skinning: Any, body: Any,
                 material: Any, train_poses: np.ndarray, val_poses: np.ndarray, settings: DrapeTrainSettings,
                 device: torch.device) -> None:
        self.model, self.kind, self.templates = field, kind, templates
        self.skinning, self.body, self.material, self.device = skinning, body, material, device
        self.config: DrapeConfig = field.config
        self.settings = settings
        self.optimizer = torch.optim.Adam([p for p in field.parameters() if p.requires_grad], lr=self.config.lr)
        self.scheduler = None
        self.generator = None
        self.rng = np.random.default_rng(settings.seed)
        self.steps_per_epoch = settings.steps_per_epoch
        self.train_poses = torch.as_tensor(train_poses, dtype=torch.float32, device=device)
        self.val_poses = torch.as_tensor(val_poses, dtype=torch.float32, device=device)
        self.val_betas = self._betas(np.random.default_rng(settings.seed + 1), len(val_poses))
        pins = kind in ("bottom", "intersection")
        self.entries = [template_tensors(t, skinning, material, body, pins, device) for t in templates]
        self.items: list[Any] = self.entries

    def _betas(self, rng: np.random.Generator, count: int) -> torch.Tensor:
        """``count`` shapes from U[-r, r]^10 (zeros for a body without a shape space)."""
        r = self.config.beta_range
        betas = rng.uniform(-r, r, size=(count, NUM_BETAS)) if self.body.has_shape_space else np.zeros((count, NUM_BETAS))
        return pad_betas(betas.astype(np.float32), count, self.device)

    def item_energies(self, item: Any, poses: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of one item on ``B`` bodies: (total ``(B,)``, each term ``(B,)``)."""
        total, terms, _, _ = drape_energies(self.model, item, self.skinning, self.body, self.material, poses, betas,
                                            self.kind)
        return total, terms

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        sums: dict[str, float] = {}
        steps = 0
        order = self.rng.permutation(len(self.items))
        for step in range(self.steps_per_epoch):
            if steps and out_of_time():
                break
            item = self.items[order[step % len(order)]]
            # Both drawn whole on every rank (the streams stay alike); under torchrun each keeps its share.
            rows = rank_slice(self.rng.integers(0, len(self.train_poses), size=self.config.batch))
            poses = self.train_poses[torch.as_tensor(rows, device=self.device)]
            betas = rank_slice(self._betas(self.rng, self.config.batch))
            total, terms = self.item_energies(item, poses, betas)
            loss = total.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for name, value in {"loss": loss, **{k: v.mean() for k, v in terms.items()}}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            steps += 1
            advance()
        return {"steps": steps, **{k: v / max(steps, 1) for k, v in sums.items()}}

    def measure(self, item: Any, field: DisplacementField | None, baseline: bool) -> dict[str, torch.Tensor]:
        """Per held-out body ``(B,)``: the total energy, each term and B2G of one item."""
        from nrtool.drape.metrics import body_to_garment
        from nrtool.drape.skinning import nearest_vertex_skinning

        weights = shape_dx = None
        if baseline:
            weights, shape_dx = nearest_vertex_skinning(item["points"], self.body, self.val_betas)
        total, terms, posed, out = drape_energies(field, item, self.skinning, self.body, self.material, self.val_poses,
                                                  self.val_betas, self.kind, weights=weights, shape_dx=shape_dx)
        b2g = body_to_garment(posed, item["faces"], out.vertices, out.normals)
        return {"energy": total, **terms, "b2g": b2g}

    def evaluate(self, field: DisplacementField | None, baseline: bool = False) -> dict[str, float]:
        """Mean energies and B2G over every item on the held-out bodies (``field`` None: skinning
        alone; ``baseline``: each vertex skinned like its nearest body vertex)."""
        sums: dict[str, float] = {}
        count = 0
        with torch.no_grad():
            for item in self.items:
                values = self.measure(item, field, baseline)
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + float(value.sum())
                count += len(values["energy"])
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
    poses: TrainingPoses,
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
    ``body_path`` (:func:`nrtool.drape.skinning.train_skinning`). ``poses``: where the training
    poses come from (read once the body is loaded: the arm rotation needs its joints).
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
    pose_array, pose_sources = poses.load(body)
    skinning_checkpoint = load_checkpoint(skinning_path, SKINNING_FORMAT, SKINNING_VERSION, "skinning",
                                          "nrtool train skinning")
    skinning = skinning_from_checkpoint(skinning_checkpoint, skinning_path, body, body_path, torch_device)
    centres, scales = code_transforms(codes, garment_checkpoint)
    templates, notes = decode_templates(garment_model, codes.codes, list(codes.names), centres, scales,
                                        config.garment_resolution, progress)
    train_poses, val_poses = split_poses(pose_array, settings.val_poses, settings.seed)
    material = Material()
    body_sha = sha256_file(body.path)
    run_settings = {k: v for k, v in settings.to_dict().items() if k != "time_limit"}
    fingerprint = {"config": config.to_dict(), "settings": run_settings, "kind": kind,
                   "garment_model": sha256_file(garment_model_path), "codes": codes_source,
                   "code_rows": [t.name for t in templates], "body": body_sha, "skinning": sha256_file(skinning_path),
                   "poses": poses_digest(pose_array)}
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
                     "val_poses": torch.as_tensor(val_poses),
                     "templates": template_record(templates, codes.names, centres, scales)},
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


# ------------------------------------------------------------------------------------------------
# The intersection solver (Eq. 2.9-2.11, App. A.2.2)
# ------------------------------------------------------------------------------------------------

#: Radius (m) within which a rest body vertex counts as covered by a garment for the layer
#: energy (:func:`nrtool.drape.physics.covered_by_both`). Garment vertices of meshes decoded at
#: 48-64^3 lie ~2.5 cm apart and 1-3 cm off the skin, so every body vertex under a garment has
#: one within ~4 cm; 5 cm also takes in a band of a few cm beyond the top's hem, where
#: ``d_top`` grows and the penalty vanishes by itself.
LAYER_COVER_RADIUS = 0.05


def template_record(templates: list[GarmentTemplate], names: list[str], centres: np.ndarray,
                    scales: np.ndarray) -> dict[str, Any]:
    """What a draping checkpoint keeps of the garments it was trained on, so that the
    intersection solver can drape the same ones: ``names``, ``codes (N, C)``, ``centres (N, 3)``
    and ``scales (N,)`` (each code's transform into the body frame)."""
    rows = [names.index(t.name) for t in templates]
    return {"names": [t.name for t in templates],
            "codes": torch.as_tensor(np.stack([t.code for t in templates]).astype(np.float32)),
            "centres": torch.as_tensor(np.asarray(centres, dtype=np.float64)[rows]),
            "scales": torch.as_tensor(np.asarray(scales, dtype=np.float64)[rows])}


def training_templates(model: Any, codes_path: str | os.PathLike[str] | None, resolution: int, device: torch.device,
                       progress: Progress | None) -> tuple[list[GarmentTemplate], str, list[str]]:
    """The garments a draping model (:class:`nrtool.drape.model.DrapingModel`) drapes for the
    intersection solver, decoded by its own garment network at ``resolution``^3.

    ``codes_path``: a ``garment-codes`` artifact (or ``.npy``) of its category; None takes the
    garments the model was trained on (recorded in its checkpoint), or for a checkpoint without
    that record the garment network's own training codes. Returns (templates, where the codes
    came from, notes).
    """
    from nrtool.artifacts.garment_codes import load_codes_any
    from nrtool.drape.garments import code_transforms, decode_templates
    from nrtool.garments.model import (
        check_category,
        check_code_width,
        model_from_checkpoint,
        training_codes,
    )

    garment_checkpoint = model.checkpoint["garment"]
    garment_net = model_from_checkpoint(garment_checkpoint, model.path, device)
    record = model.checkpoint["training"].get("templates") if isinstance(model.checkpoint.get("training"), dict) else None
    if codes_path is not None:
        codes = load_codes_any(codes_path)
        check_code_width(codes.codes, garment_checkpoint, codes_path)
        check_category(codes.category, garment_checkpoint, codes_path, model.path)
        vectors, names = codes.codes, list(codes.names)
        centres, scales = code_transforms(codes, garment_checkpoint)
        source = str(codes_path)
    elif record is not None:
        vectors, names = record["codes"].numpy().astype(np.float32), list(record["names"])
        centres, scales = record["centres"].numpy(), record["scales"].numpy()
        source = f"{model.path} (the garments it was trained on)"
    else:
        vectors, names = training_codes(garment_checkpoint), list(garment_checkpoint["train"]["names"])
        from nrtool.garments.model import training_normalisation

        centre, scale = training_normalisation(garment_checkpoint)
        centres, scales = np.tile(centre, (len(names), 1)), np.full(len(names), scale)
        source = f"{model.path} (its garment network's training codes)"
    templates, notes = decode_templates(garment_net, vectors, names, centres, scales, resolution, progress)
    return templates, source, notes


class IntersectionTrainer(DrapeTrainer):
    """The intersection solver's epochs (Eq. 2.10: ``L_IS = L_bottom + w L_layer``, ``w`` the
    config's ``layer_weight``).

    An item is a (top, bottom) pair. Each step drapes the top with its frozen draping field and
    the bottom with its frozen field plus the solver (Eq. 2.9), on the same ``batch`` bodies,
    and minimises the bottom's energies (strain, bending, gravity, collision, waist pins on the
    whole learnt displacement) plus the layer energy (Eq. 2.11) over the body vertices both
    garments cover in the rest pose. Only the solver learns.
    """

    def __init__(self, solver: DisplacementField, top_field: DisplacementField, bottom_field: DisplacementField,
                 tops: list[GarmentTemplate], bottoms: list[GarmentTemplate], pairs: list[tuple[int, int]],
                 top_skinning: Any, skinning: Any, body: Any, material: Any, train_poses: np.ndarray,
                 val_poses: np.ndarray, settings: DrapeTrainSettings, device: torch.device) -> None:
        from nrtool.drape.physics import covered_by_both

        super().__init__(solver, "intersection", bottoms, skinning, body, material, train_poses, val_poses, settings,
                         device)
        for frozen in (top_field, bottom_field):
            frozen.requires_grad_(False)
            frozen.eval()
        self.top_field, self.bottom_field, self.top_skinning = top_field, bottom_field, top_skinning
        self.tops = tops
        self.gamma = float(solver.config.layer_gamma)
        self.layer_weight = float(solver.config.layer_weight)
        top_entries = [template_tensors(t, top_skinning, material, body, False, device) for t in tops]
        rest_body = torch.as_tensor(np.asarray(body.v_template, dtype=np.float32), device=device)
        self.pairs = pairs
        self.items = []
        for t, b in pairs:
            top, bottom = top_entries[t], self.entries[b]
            self.items.append({
                "top": top, "bottom": bottom, "top_index": t,
                "name": f"{tops[t].name}+{bottoms[b].name}",
                # Eq. 2.9's code: [z_bottom, z_top], as SequenceDraper feeds it.
                "code": torch.cat([bottom["code"], top["code"]]),
                # Only the covered body vertices enter the layer energy: gathered once, they spare
                # its two nearest-neighbour searches the other ~85 % of the body.
                "covered": torch.nonzero(covered_by_both(rest_body, top["points"], bottom["points"],
                                                         LAYER_COVER_RADIUS)).flatten(),
            })
        self._val_out: Any = None
        self._val_tops: dict[int, torch.Tensor] = {}

    def _pair_energies(self, pair: dict[str, Any], solver: DisplacementField | None, poses: torch.Tensor,
                       betas: torch.Tensor, out: Any, top_posed: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """``L_IS`` of one pair on ``B`` posed bodies (``solver`` None: the bottom model alone):
        (total ``(B,)``, each term ``(B,)`` with ``layer``, the posed bottom ``(B, V, 3)``)."""
        from nrtool.drape.physics import layer_energy

        total, terms, posed, _ = drape_energies(self.bottom_field, pair["bottom"], self.skinning, self.body,
                                                self.material, poses, betas, "intersection",
                                                solver=None if solver is None else (solver, pair["code"]), out=out)
        terms["layer"] = layer_energy(out.vertices[:, pair["covered"]], top_posed, posed, gamma=self.gamma)
        return total + self.layer_weight * terms["layer"], terms, posed

    def _top(self, pair: dict[str, Any], out: Any, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """The pair's top draped by its own (frozen) model: ``(B, Vt, 3)``."""
        with torch.no_grad():
            posed, _ = pose_garment(self.top_field, pair["top"], self.top_skinning, out, poses, betas)
        return posed

    def item_energies(self, item: Any, poses: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            out = posed_bodies(self.body, poses, betas)
        total, terms, _ = self._pair_energies(item, self.model, poses, betas, out, self._top(item, out, poses, betas))
        return total, terms

    def measure(self, item: Any, field: DisplacementField | None, baseline: bool) -> dict[str, torch.Tensor]:
        """Per held-out body: ``L_IS`` and its terms, the bottom's B2G and G2G (``field`` None: without the solver)."""
        from nrtool.drape.metrics import body_to_garment, garment_to_garment

        if baseline:
            raise ValueError("the intersection solver has no nearest-vertex baseline; evaluate(None) drapes without it")
        poses, betas = self.val_poses, self.val_betas
        if self._val_out is None:  # the held-out bodies and the frozen tops never change: posed once
            self._val_out = posed_bodies(self.body, poses, betas)
        out = self._val_out
        if item["top_index"] not in self._val_tops:
            self._val_tops[item["top_index"]] = self._top(item, out, poses, betas)
        top_posed = self._val_tops[item["top_index"]]
        total, terms, posed = self._pair_energies(item, field, poses, betas, out, top_posed)
        bottom_faces = item["bottom"]["faces"]
        return {"energy": total, **terms, "b2g": body_to_garment(posed, bottom_faces, out.vertices, out.normals),
                "g2g": garment_to_garment(posed, bottom_faces, top_posed, item["top"]["faces"], out.vertices,
                                          out.normals)}


def garment_pairs(tops: int, bottoms: int) -> list[tuple[int, int]]:
    """The (top, bottom) pairs the solver trains and validates on: every top with every bottom,
    top-major (``tops x bottoms`` pairs; each epoch visits them in a seeded random order)."""
    return [(t, b) for t in range(tops) for b in range(bottoms)]


def train_intersection(
    top_model_path: str | os.PathLike[str],
    bottom_model_path: str | os.PathLike[str],
    body_path: str | os.PathLike[str],
    poses: TrainingPoses,
    out: str | os.PathLike[str],
    config: DrapeConfig,
    settings: DrapeTrainSettings,
    device: str = "auto",
    progress: Progress | None = None,
    restart: bool = False,
    top_codes: str | os.PathLike[str] | None = None,
    bottom_codes: str | os.PathLike[str] | None = None,
) -> TrainReport:
    """Train the intersection solver of a top and a bottom draping model (both frozen); write
    the best checkpoint (kind ``intersection``).

    Garments: ``top_codes``/``bottom_codes`` (``garment-codes`` artifacts or ``.npy``), by
    default the garments each model was trained on (:func:`training_templates`); every top is
    paired with every bottom (:func:`garment_pairs`). ``poses``: as :func:`train_drape`, split
    into training and held-out ones as it does (the same poses and seed give
    the same split). The solver's ``M`` reads ``[PE(5x), z_bottom, z_top]``.
    """
    from nrtool.artifacts.core import sha256_file
    from nrtool.body.body_model import BodyModel
    from nrtool.drape.model import load_draping, save_draping
    from nrtool.drape.physics import Material
    from nrtool.drape.skinning import skinning_from_checkpoint
    from nrtool.errors import InputFileError
    from nrtool.figures import training_curves
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, settings, config)
    top = load_draping(top_model_path, torch_device)
    bottom = load_draping(bottom_model_path, torch_device)
    for model, wanted, option_name in ((top, "top", "--top-model"), (bottom, "bottom", "--bottom-model")):
        if model.kind != wanted:
            raise InputFileError(model.path, f"is a {model.kind} draping model; {option_name} needs a {wanted} one")
    if top.body.get("identity") != bottom.body.get("identity"):
        raise InputFileError(bottom.path, f"was trained on another body ({bottom.body.get('name', '?')}) than "
                             f"{top.path} ({top.body.get('name', '?')}); train both on one body")
    body = BodyModel(body_path, device=torch_device)
    pose_array, pose_sources = poses.load(body)
    # Each garment is skinned by its own model's field, as that model was trained; both must be of this body.
    top_skinning = skinning_from_checkpoint(top.checkpoint["skinning"], top.path, body, body_path, torch_device)
    skinning = skinning_from_checkpoint(bottom.checkpoint["skinning"], bottom.path, body, body_path, torch_device)
    tops, top_source, notes = training_templates(top, top_codes, config.garment_resolution, torch_device, progress)
    bottoms, bottom_source, more = training_templates(bottom, bottom_codes, config.garment_resolution, torch_device,
                                                      progress)
    notes += more
    pairs = garment_pairs(len(tops), len(bottoms))
    train_poses, val_poses = split_poses(pose_array, settings.val_poses, settings.seed)
    material = Material()
    run_settings = {k: v for k, v in settings.to_dict().items() if k != "time_limit"}
    fingerprint = {"config": config.to_dict(), "settings": run_settings, "kind": "intersection",
                   "top_model": sha256_file(top.path), "bottom_model": sha256_file(bottom.path),
                   "codes": [top_source, bottom_source], "tops": [t.name for t in tops],
                   "bottoms": [b.name for b in bottoms], "body": sha256_file(body.path),
                   "poses": poses_digest(pose_array)}
    torch.manual_seed(settings.seed)
    solver = DisplacementField(config, bottom.field.code_dim + top.field.code_dim).to(torch_device)
    trainer = IntersectionTrainer(solver, top.field, bottom.field, tops, bottoms, pairs, top_skinning, skinning, body,
                                  material, train_poses, val_poses, settings, torch_device)
    skinning.eval()
    top_skinning.eval()
    before = {"without_solver": trainer.evaluate(None)}
    run = run_training(trainer, out, "drape", fingerprint, settings, progress, restart, "training the intersection solver")
    solver.load_state_dict(run.best_state)
    solver.eval()
    skinning_checkpoint = bottom.checkpoint["skinning"]
    extra = {
        "skinning": skinning_checkpoint,
        "body": dict(bottom.body),
        "material": json.dumps(vars(material)),
        "training": {"settings": settings.to_dict(), "pairs": [item["name"] for item in trainer.items],
                     "tops": [t.name for t in tops], "bottoms": [b.name for b in bottoms],
                     "codes": [top_source, bottom_source], "top_model": str(top.path),
                     "bottom_model": str(bottom.path), "poses": pose_sources, "train_poses": int(len(train_poses)),
                     "val_poses": torch.as_tensor(val_poses), "layer_cover_radius": LAYER_COVER_RADIUS},
        "history": json.dumps(run.history),
        "best_epoch": run.best_epoch,
        "reference": json.dumps(before),
    }
    save_draping(out, "intersection", solver, extra)
    curves = out.with_suffix(".png")
    training_curves(run.history, curves, f"{out.name}: intersection solver, {config.preset}", run.best_epoch)
    run.finish()
    comparison = {"ours": {k[4:]: v for k, v in run.best.items() if k.startswith("val_")}, **before}
    report = run.report(out, curves, kind="intersection", pairs=len(pairs), tops=len(tops), bottoms=len(bottoms),
                        poses=int(len(train_poses)), validation_poses=int(len(val_poses)), held_out=comparison)
    report.notes = notes
    return report
