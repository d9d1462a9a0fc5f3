"""``nrtool netspace train``: learn the space of a zoo's networks by distillation (thesis Sec. 4.3, Eq. 4.1).

Single architecture: each step takes a meta-batch of training networks and a batch of training
images; every network's PRep goes through the encoder and the decoder, the predicted PRep is
loaded into the architecture (functionally, so gradients reach the decoder) and must behave like
its target: ``KL(softmax(t / T) || softmax(p / T)) * T^2`` with ``T = 4``, ``t`` the target
network's logits, averaged over the meta-batch. Validation decodes the validation networks and
compares their accuracy on the validation images with their targets'; the epoch kept is the one
with the smallest mean gap (the thesis' "validation error"), through the one training loop.
Several architectures (Eq. 4.3-4.12): :class:`NetSpaceTrainer` has the losses, a teacher network
replaces the targets' own logits, and the epoch kept decodes every validation network into its
own architecture first, then has the best decoded accuracy.

The encoder sees each PRep standardised per element, ``(prep - mean) / (std + 1e-3)`` with the
mean and standard deviation of that element over the training networks (stored with the model).
This is ours, not the thesis': networks trained briefly from random initialisations differ from
their initialisations by little, and a layer's initial scale depends on its fan-in, so a raw PRep
is mostly initialisation noise at layer-dependent scales. Measured on one 160-network digits zoo,
same seed, 10 epochs: test gap 0.177 and correlation 0.68 with one global scale, 0.081 and 0.94
per element. The decoder's output needs no such step: its learned per-element scale and bias
take the weights' range.

Checkpoint::

    {"format": "nrtool-netspace", "version": 1, "config": {...}, "training": {...},
     "architectures": [{"name", "spec", "parameters"}], "prep_shape": [1, H, W],
     "prep_mean": (1, H, W), "prep_std": (1, H, W),
     "images": {...}, "images_sha256": str, "zoo": [{path, sha256}], "state_dict": {...}, "history": [...]}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.artifacts.zoo import Zoo, ZooNet
from nrtool.distributed import rank_slice
from nrtool.errors import InputFileError, NrtoolError
from nrtool.netspace.architectures import net_from_weights
from nrtool.netspace.config import NetSpaceConfig, NetSpaceTraining
from nrtool.netspace.data import ImageSource, ImageSplits, accuracy, load_images
from nrtool.netspace.model import NetSpace
from nrtool.netspace.prep import forward_with, prep_shape
from nrtool.netspace.sdf import (
    BANK_STEPS,
    field_points,
    inr_fields,
    is_inr_zoo,
    near_surface_bank,
    random_points,
)
from nrtool.progress import Progress, SilentProgress
from nrtool.training import TrainReport

CHECKPOINT_FORMAT = "nrtool-netspace"
CHECKPOINT_VERSION = 1


#: Added to each element's standard deviation (padding elements have none).
STD_FLOOR = 1e-3
#: Points where the validation INRs' outputs are compared (zoos of INRs).
VAL_POINTS = 16_384


def decoder_offset(task: str, prep_mean: torch.Tensor) -> torch.Tensor | float:
    """What the decoder's output is added to: for INRs the training INRs' mean PRep, 0 otherwise.

    Ours, not the thesis'. INRs fitted from one shared initialisation (as nrtool fits them) are that
    initialisation plus a small change. A decoder that must produce the full SIREN weights from
    scratch gave fields without any inside: 0 of 36 training and 0 of 20 test INRs had a surface
    after 1,000 steps. Predicting the difference from the mean gave 36 of 36 and 19 of 20. Image
    classifiers start from their own random initialisations; their mean PRep is near zero and
    is left out.
    """
    return prep_mean if task == "sdf" else 0.0


def standardised(preps: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """What the encoder sees: each PRep element standardised by the training networks' statistics."""
    return (preps - mean) / (std + STD_FLOOR)


def distillation_loss(predicted: torch.Tensor, target: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(target / T) || softmax(predicted / T)) * T^2`` per batch (Eq. 4.1)."""
    return nn.functional.kl_div(torch.log_softmax(predicted / temperature, 1), torch.softmax(target / temperature, 1),
                                reduction="batchmean") * temperature ** 2


def preps_of(nets: list[ZooNet], shape: tuple[int, int, int]) -> torch.Tensor:
    """(N, 1, H, W) PReps of zoo networks (their stored, fused weights, zero-padded)."""
    out = torch.zeros((len(nets), shape[1] * shape[2]), dtype=torch.float32)
    for i, net in enumerate(nets):
        out[i, : len(net.weights)] = torch.as_tensor(net.weights)
    return out.view(len(nets), *shape)


@dataclass
class LoadedNetSpace:
    """A trained NetSpace in eval mode, the architectures it decodes into, and its images."""

    model: NetSpace
    config: NetSpaceConfig
    templates: list[nn.Module]  # one per architecture, ClassId order (fused, eval)
    architectures: list[dict[str, Any]]
    prep_shape: tuple[int, int, int]
    prep_mean: torch.Tensor  # (1, H, W): the encoder's input standardisation
    prep_std: torch.Tensor
    images: dict[str, Any]  # the zoo's: an ImageSource's dict, or {"source": "inrs", "path", "field"}
    images_sha256: str
    history: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""

    @property
    def task(self) -> str:
        """``sdf`` for a space of INRs, ``classification`` for one of image classifiers."""
        return "sdf" if is_inr_zoo(self.images) else "classification"

    def encode(self, preps: torch.Tensor) -> torch.Tensor:
        return self.model.encoder(standardised(preps, self.prep_mean, self.prep_std))

    def decode(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, E) -> (B, 1, H, W) predicted PReps."""
        return self.model.decoder(embeddings) + decoder_offset(self.task, self.prep_mean)

    def architecture_of(self, embedding: torch.Tensor) -> torch.Tensor:
        """ClassId (index into :attr:`architectures`) of each embedding."""
        if self.model.class_id is None:
            return torch.zeros(len(embedding), dtype=torch.long, device=embedding.device)
        return self.model.class_id(embedding).argmax(1)

    def logits(self, prep: torch.Tensor, architecture: int, images: torch.Tensor) -> torch.Tensor:
        return forward_with(self.templates[architecture], prep, images)

    def decoded_net(self, embedding: torch.Tensor) -> tuple[nn.Module, int]:
        """One embedding (E,) as a plain fused network and its ClassId."""
        with torch.no_grad():
            architecture = int(self.architecture_of(embedding[None])[0])
            prep = self.decode(embedding[None])[0].reshape(-1)
        spec = self.architectures[architecture]["spec"]
        count = int(self.architectures[architecture]["parameters"])
        return net_from_weights(spec, prep[:count].cpu().numpy()), architecture


class NetSpaceTrainer:
    """One epoch of NetSpace, for :func:`nrtool.training.run_training`.

    One architecture: the distillation of each target (Eq. 4.1). Several (Eq. 4.3-4.12, as the
    official code computes them): every PRep is loaded into the architecture its embedding's
    ClassId predicts; ``L_kd = a KD(teacher, T) + (1 - a) CE`` plus ``L_class`` (CE of the ClassId)
    per network, and for every pair of the meta-batch made of the first and the last ClassId, the
    embeddings ``(1 - g) e_A + g e_B`` at ``g = i / (A - 1)``, ``i = 1 .. A - 2``, must decode into
    architecture ``i`` (CE, summed) with the same ``L_kd``.
    """

    def __init__(self, zoo: Zoo, images: ImageSplits, config: NetSpaceConfig, training: NetSpaceTraining,
                 device: torch.device, teacher: nn.Module | None = None, progress: Progress | None = None) -> None:
        self.architectures = zoo.architectures()
        self.train_nets, self.val_nets = zoo.of_split("train"), zoo.of_split("val")
        if len(self.train_nets) < config.meta_batch:
            raise InputFileError(zoo.path, f"has {len(self.train_nets)} training networks, fewer than the "
                                 f"meta-batch of {config.meta_batch}")
        if not self.val_nets:
            raise InputFileError(zoo.path, "has no validation networks (split 'val')")
        if len(self.architectures) > 1 and teacher is None:
            raise NrtoolError("several architectures need a teacher network (Eq. 4.3)")
        self.task = "sdf" if self.architectures == ["siren"] else "classification"
        self.field = str(zoo.images.get("field", "sdf"))
        if "siren" in self.architectures and self.task != "sdf":
            raise InputFileError(zoo.path, "mixes INRs with image classifiers; a zoo holds one task")
        torch.manual_seed(training.seed)
        self.config, self.training, self.device, self.images = config, training, device, images
        self.teacher = teacher.to(device).eval() if teacher is not None else None
        largest = max(len(n.weights) for n in zoo.nets)
        self.prep_shape = prep_shape(largest, config.prep_width)
        self.train_preps = preps_of(self.train_nets, self.prep_shape).to(device)
        self.val_preps = preps_of(self.val_nets, self.prep_shape).to(device)
        self.prep_mean, self.prep_std = self.train_preps.mean(0), self.train_preps.std(0)
        self.offset = decoder_offset(self.task, self.prep_mean)
        first = {a: next(n for n in zoo.nets if n.architecture == a) for a in self.architectures}
        self.templates = [net_from_weights(first[a].spec, first[a].weights).to(device) for a in self.architectures]
        self.inr_spec = self.templates[0].spec if self.task == "sdf" else None  # a Siren's SirenSpec
        self.specs = [{"name": a, "spec": first[a].spec, "parameters": len(first[a].weights)} for a in self.architectures]
        self.train_ids = torch.tensor([self.architectures.index(n.architecture) for n in self.train_nets], device=device)
        self.val_ids = [self.architectures.index(n.architecture) for n in self.val_nets]
        self.model = NetSpace(config.embedding, self.prep_shape[1], self.prep_shape[2], len(self.architectures),
                              config.channels, config.channels3).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = None
        self.generator = torch.Generator().manual_seed(training.seed)
        if self.task == "sdf":  # its own generator: a resumed run banks the same points
            with (progress or SilentProgress()).task("near-surface points of the training INRs",
                                                     len(self.train_nets), "INRs") as advance:
                self.bank_points, self.bank_values = near_surface_bank(
                    self.inr_spec, self.train_preps, self.field, BANK_STEPS * (config.points // 2),
                    torch.Generator().manual_seed(training.seed + 1), advance)
        self.rng = None
        self.steps_per_epoch = training.steps

    def fields_of(self, preps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """INRs' field values (sdf/udf in normalised units, occupancy probability) at ``points`` (B, M, 3)."""
        return inr_fields(preps, points, self.inr_spec, self.field)

    @property
    def multi(self) -> bool:
        return len(self.architectures) > 1

    def _kd(self, logits: torch.Tensor, taught: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``L_kd`` of Eq. 4.5."""
        alpha = self.config.kd_alpha
        return alpha * distillation_loss(logits, taught, self.config.temperature) + \
            (1 - alpha) * nn.functional.cross_entropy(logits, labels)

    def step_loss(self, nets: torch.Tensor, batch: Any) -> dict[str, torch.Tensor]:
        """The loss terms of one step: ``batch`` is image indices, or for a zoo of INRs each target's
        ``near`` bank indices (B, N/2) and ``uniform`` points (B, N - N/2, 3)."""
        targets = self.train_preps[nets]
        embeddings = self.model.encoder(standardised(targets, self.prep_mean, self.prep_std))
        predicted = self.model.decoder(embeddings) + self.offset
        if self.task == "sdf":  # Eq. 4.2: the fields at the same points
            # Half the points from each target's near-surface bank, half the step's uniform ones.
            near = self.bank_points[nets.unsqueeze(1), batch["near"]]
            with torch.no_grad():
                wanted = torch.cat([self.bank_values[nets.unsqueeze(1), batch["near"]],
                                    self.fields_of(targets, batch["uniform"])], dim=1)
            points = torch.cat([near, batch["uniform"]], dim=1)
            loss = nn.functional.mse_loss(self.fields_of(predicted, points), wanted)  # the mean of the INRs' MSEs
            return {"loss": loss, "mse": loss}
        x, y = self.images.images["train"][batch], self.images.labels["train"][batch]
        if not self.multi:
            loss = torch.zeros((), device=self.device)
            for target, prep in zip(targets, predicted):
                with torch.no_grad():
                    teacher = forward_with(self.templates[0], target, x)
                loss = loss + distillation_loss(forward_with(self.templates[0], prep, x), teacher,
                                                self.config.temperature)
            return {"loss": loss / len(nets), "kd": loss / len(nets)}
        with torch.no_grad():
            taught = self.teacher(x)
        ids = self.train_ids[nets]
        scores = self.model.class_id(embeddings)
        terms = {"class": nn.functional.cross_entropy(scores, ids, reduction="sum"),
                 "kd": sum(self._kd(forward_with(self.templates[int(c)], p, x), taught, y)
                           for c, p in zip(scores.argmax(1), predicted))}
        mixtures = boundary_mixtures(ids.tolist(), len(self.architectures))
        if mixtures:
            e = mixed_embeddings(embeddings, mixtures)
            wanted = [k for _, _, _, k in mixtures]
            mixed_scores, mixed_preps = self.model.class_id(e), self.model.decoder(e) + self.offset
            terms["interp_class"] = nn.functional.cross_entropy(
                mixed_scores, torch.tensor(wanted, device=self.device), reduction="sum")
            terms["interp_kd"] = sum(self._kd(forward_with(self.templates[int(c)], p, x), taught, y)
                                     for c, p in zip(mixed_scores.argmax(1), mixed_preps))
        terms["loss"] = sum(terms.values())
        return terms

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        totals: dict[str, float] = {}
        steps = 0
        for _ in range(self.steps_per_epoch):
            nets = rank_slice(torch.randperm(len(self.train_nets), generator=self.generator)[: self.config.meta_batch])
            if self.task == "sdf":  # per target: bank indices of its near points, and uniform points
                half = self.config.points // 2
                batch = {"near": torch.randint(0, self.bank_points.shape[1], (len(nets), half),
                                               generator=self.generator).to(self.device),
                         "uniform": random_points(len(nets) * (self.config.points - half), self.generator,
                                                  self.device).view(len(nets), -1, 3)}
            else:
                batch = torch.randint(0, len(self.images.images["train"]), (self.config.image_batch,),
                                      generator=self.generator).to(self.device)
            terms = self.step_loss(nets.to(self.device), batch)
            if not torch.isfinite(terms["loss"]):
                raise NrtoolError(f"NetSpace training diverged at epoch {epoch} (loss {terms['loss'].item()}); "
                                  "lower --lr")
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            self.optimizer.step()
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach())
            steps += 1
            advance(1)
            if out_of_time():
                break
        return {f"train_{k}": v / max(1, steps) for k, v in totals.items()} | {"steps": steps}

    @torch.no_grad()
    def validate(self, epoch: int) -> dict[str, float]:
        self.model.eval()
        embeddings = self.model.encoder(standardised(self.val_preps, self.prep_mean, self.prep_std))
        predicted = self.model.decoder(embeddings) + self.offset
        if self.task == "sdf":  # the same candidate points every time, so epochs compare
            candidates = random_points(4 * VAL_POINTS, torch.Generator().manual_seed(0), self.device)
            points = field_points(self.inr_spec, self.val_preps, candidates, self.field)
            error = nn.functional.mse_loss(self.fields_of(predicted, points), self.fields_of(self.val_preps, points))
            self.model.train()
            return {"val_mse": float(error)}
        ids = (self.model.class_id(embeddings).argmax(1).tolist() if self.multi else [0] * len(self.val_nets))
        x, y = self.images.images["val"], self.images.labels["val"]

        def score(prep: torch.Tensor, architecture: int) -> float:
            return accuracy(lambda batch: forward_with(self.templates[architecture], prep, batch), x, y)

        decoded = np.array([score(p, c) for p, c in zip(predicted, ids)])
        targets = np.array([n.accuracy[1] for n in self.val_nets])
        self.model.train()
        record = {"val_gap": float(np.abs(decoded - targets).mean()), "val_corr": correlation(decoded, targets),
                  "val_decoded_accuracy": float(decoded.mean())}
        if self.multi:
            record["val_class_accuracy"] = float(np.mean(np.array(ids) == np.array(self.val_ids)))
            mixtures = boundary_mixtures(self.val_ids, len(self.architectures))
            if mixtures:
                e = mixed_embeddings(embeddings, mixtures)
                chosen = self.model.class_id(e).argmax(1).tolist()
                preps = self.model.decoder(e) + self.offset
                record["val_interpolated_accuracy"] = float(np.mean([score(p, c) for p, c in zip(preps, chosen)]))
                record["val_interpolated_class_accuracy"] = float(np.mean([c == m[3] for c, m in zip(chosen, mixtures)]))
        return record

    def score(self, record: dict[str, float]) -> tuple[float, ...] | None:
        if "val_mse" in record:
            return (record["val_mse"],)
        if "val_gap" not in record:
            return None
        if not self.multi:
            return (record["val_gap"],)
        # The official code keeps the highest mean accuracy of the decoded and interpolated networks;
        # ours first asks the validation networks to decode into their own architectures (a network
        # of the wrong architecture is wrong however accurate), then the same mean accuracy.
        values = [record["val_decoded_accuracy"]] + ([record["val_interpolated_accuracy"]]
                                                     if "val_interpolated_accuracy" in record else [])
        return (-record["val_class_accuracy"], -float(np.mean(values)))


def boundary_mixtures(ids: list[int], architectures: int) -> list[tuple[int, int, float, int]]:
    """The interpolation loss' samples (Eq. 4.12): ``(i, j, gamma, class)`` for every pair of
    networks ``i`` of the first ClassId and ``j`` of the last, at ``gamma = k / (A - 1)`` with the
    wanted ClassId ``k = 1 .. A - 2`` (none with fewer than three architectures)."""
    last = architectures - 1
    return [(i, j, k / last, k) for i, a in enumerate(ids) if a == 0 for j, b in enumerate(ids) if b == last
            for k in range(1, last)]


def mixed_embeddings(embeddings: torch.Tensor, mixtures: list[tuple[int, int, float, int]]) -> torch.Tensor:
    """``(1 - g) e_i + g e_j`` of every :func:`boundary_mixtures` sample, stacked."""
    return torch.stack([(1 - g) * embeddings[i] + g * embeddings[j] for i, j, g, _ in mixtures])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (0 when either side is constant)."""
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def images_for(zoo: Zoo, device: torch.device | str = "cpu") -> ImageSplits | None:
    """The zoo's images, refused when they are no longer those its networks were judged on (None
    for a zoo of INRs: they are compared at random points)."""
    if is_inr_zoo(zoo.images):
        return None
    images = load_images(ImageSource.from_dict(zoo.images))
    if images.fingerprint != zoo.images_sha256:
        raise InputFileError(zoo.path, f"its images ({zoo.images.get('source')}) changed since the zoo was trained")
    return images.to(device)


def save_netspace(path: str | os.PathLike[str], trainer: NetSpaceTrainer, state_dict: dict[str, torch.Tensor],
                  zoo: Zoo, history: list[dict[str, Any]]) -> None:
    from nrtool.artifacts.core import provenance
    from nrtool.checkpoints import save_checkpoint

    save_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {
        "config": trainer.config.to_dict(), "training": trainer.training.to_dict(), "architectures": trainer.specs,
        "prep_shape": list(trainer.prep_shape), "prep_mean": trainer.prep_mean.cpu(),
        "prep_std": trainer.prep_std.cpu(), "images": zoo.images,
        "images_sha256": zoo.images_sha256, "zoo": provenance([zoo.path]), "state_dict": state_dict,
        "history": history})


def load_netspace(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedNetSpace:
    """A checkpoint of :func:`train_netspace`, in eval mode (one line naming the file if not one)."""
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "NetSpace model", "nrtool netspace train")
    try:
        config = NetSpaceConfig.from_dict(data["config"])
        shape = tuple(int(v) for v in data["prep_shape"])
        architectures = list(data["architectures"])
        model = NetSpace(config.embedding, shape[1], shape[2], len(architectures), config.channels, config.channels3)
        model.load_state_dict(data["state_dict"])
        templates = [net_from_weights(a["spec"], np.zeros(int(a["parameters"]), np.float32)).to(device)
                     for a in architectures]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "NetSpace model", exc) from exc
    return LoadedNetSpace(model.to(device).eval(), config, templates, architectures, shape,
                          data["prep_mean"].to(device), data["prep_std"].to(device),
                          dict(data["images"]), str(data["images_sha256"]), list(data["history"]),
                          str(path))


@holds_output_lock("out")
def train_netspace(zoo_path: str | os.PathLike[str], out: str | os.PathLike[str], config: NetSpaceConfig,
                   training: NetSpaceTraining, device: str = "auto", progress: Progress | None = None,
                   plot: bool = True, restart: bool = False,
                   teacher_path: str | os.PathLike[str] | None = None) -> TrainReport:
    """Train NetSpace on a ``zoo`` artifact and write the checkpoint (+ curves PNG); resumable.

    A zoo of several architectures needs a teacher (Eq. 4.3): ``teacher_path`` (a network
    checkpoint; the thesis uses a ResNet56), else the zoo's network of highest validation accuracy.
    """
    from nrtool.artifacts.core import sha256_file
    from nrtool.artifacts.zoo import load_zoo
    from nrtool.figures import training_curves
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config, training)
    zoo = load_zoo(zoo_path)
    images = images_for(zoo, torch_device)
    teacher, teacher_name, notes = _teacher_for(zoo, teacher_path)
    trainer = NetSpaceTrainer(zoo, images, config, training, torch_device, teacher, progress)
    settings = {"config": config.to_dict(), "training": {k: v for k, v in training.to_dict().items() if k != "time_limit"},
                "zoo": sha256_file(zoo_path), "teacher": teacher_name}
    run = run_training(trainer, out, "netspace", settings, training, progress, restart, "training NetSpace")
    save_netspace(out, trainer, run.best_state, zoo, run.history)
    png = out.with_suffix(".png")
    if plot:
        training_curves(run.history, png, f"{out.name}: NetSpace {config.preset}", run.best_epoch)
    run.finish()
    report = run.report(out, png if plot else None, architectures=trainer.architectures, config=config.to_dict(),
                        device=str(torch_device), train_nets=len(trainer.train_nets), val_nets=len(trainer.val_nets),
                        prep_shape=list(trainer.prep_shape), teacher=teacher_name)
    report.notes += notes
    return report


def _teacher_for(zoo: Zoo, path: str | os.PathLike[str] | None) -> tuple[nn.Module | None, str | None, list[str]]:
    """The teacher of a multi-architecture training, its name, and a note when it was chosen here."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.netspace.architectures import load_net

    if len(zoo.architectures()) == 1:
        if path is not None:
            return None, None, ["--teacher is not used with one architecture (each network is its own target)"]
        return None, None, []
    if path is not None:
        return load_net(path)[0], f"{path} ({sha256_file(path)[:12]})", []
    best = max(zoo.of_split("train"), key=lambda n: n.accuracy[1])
    return (net_from_weights(best.spec, best.weights), best.name,
            [f"teacher: {best.name} ({best.architecture}, validation accuracy {best.accuracy[1]:.1%}), the zoo's "
             "best training network (pass --teacher for a stronger one; the thesis uses a ResNet56)"])
