"""Shape generation in embedding space: a latent GAN on inr2vec embeddings (thesis Sec. 5.5.5).

As the official code builds it (after Achlioptas et al.'s latent GAN): a generator
``noise (1024) -> 128 -> ReLU -> D`` and a critic ``D -> 256 -> ReLU -> 512 -> ReLU -> 1``,
trained as a WGAN-GP (gradient penalty lambda = 10 on points between real and generated
embeddings, 5 critic steps per generator step, Adam lr 1e-4, beta1 0.5), one GAN per class.
Generated embeddings are decoded into shapes by the inr2vec implicit decoder.

Ours: the embeddings are standardised per dimension with the training set's mean and spread
before the GAN sees them (and generated ones mapped back). inr2vec's embeddings are max-pooled
ReLU features whose spread across shapes is a fraction of their size; on raw values the critic
sees mostly the shared offset.

Checkpoint (:mod:`nrtool.checkpoints`)::

    {"format": "nrtool-latent-gan", "version": 1, "config": {...}, "class": str | None, "dim": D,
     "mean": (D,), "std": (D,), "state_dict": ..., "history": [...],
     "decoder": {"path", "sha256"} (the inr2vec model the embeddings came from), "embeddings": {...}}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nrtool.artifacts.core import holds_output_lock
from nrtool.errors import InputFileError, NrtoolError
from nrtool.heads.config import GanConfig
from nrtool.progress import Progress, SilentProgress
from nrtool.training import TrainReport

CHECKPOINT_FORMAT = "nrtool-latent-gan"
CHECKPOINT_VERSION = 1


class LatentGan(nn.Module):
    """Generator and critic over standardised embeddings; :meth:`sample` returns them unstandardised."""

    def __init__(self, dim: int, config: GanConfig) -> None:
        super().__init__()
        self.noise = config.noise
        self.generator = nn.Sequential(nn.Linear(config.noise, config.generator_hidden), nn.ReLU(),
                                       nn.Linear(config.generator_hidden, dim))
        layers: list[nn.Module] = []
        width = dim
        for hidden in config.critic_hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.critic = nn.Sequential(*layers, nn.Linear(width, 1))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated embeddings (n, D) in the embeddings' own units."""
        device = self.mean.device
        noise = torch.randn(n, self.noise, generator=generator).to(device)
        return self.generator(noise) * self.std + self.mean


def _gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mean of ``(|grad critic(x)| - 1)^2`` at random points ``x`` between real and generated rows."""
    mix = torch.rand(len(real), 1, generator=generator).to(real.device)
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


class GanTrainer:
    """Epochs of the WGAN-GP, for :func:`nrtool.training.run_training` (no validation: the last
    epoch is kept). One Adam over both networks: a step updates only the parameters that got a
    gradient, so the critic's and the generator's steps stay separate."""

    def __init__(self, vectors: np.ndarray, config: GanConfig, device: torch.device) -> None:
        torch.manual_seed(config.seed)
        real = torch.as_tensor(np.asarray(vectors, np.float32), device=device)
        self.model = LatentGan(real.shape[1], config).to(device)
        self.model.mean.copy_(real.mean(0))
        self.model.std.copy_(real.std(0).clamp_min(1e-6 * float(real.abs().max()) + 1e-12))
        self.real = (real - self.model.mean) / self.model.std
        self.config, self.device = config, device
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.scheduler = None
        self.steps_per_epoch = max(1, math.ceil(len(real) / config.batch))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng = None

    def _batch(self) -> torch.Tensor:
        rows = torch.randint(len(self.real), (min(self.config.batch, len(self.real)),), generator=self.generator)
        return self.real[rows.to(self.device)]

    def _fake(self, n: int) -> torch.Tensor:
        return self.model.generator(torch.randn(n, self.config.noise, generator=self.generator).to(self.device))

    def train_epoch(self, epoch: int, advance: Any, out_of_time: Any) -> dict[str, float]:
        model, config = self.model, self.config
        totals = {"critic_loss": 0.0, "generator_loss": 0.0, "wasserstein": 0.0, "gradient_penalty": 0.0}
        for _ in range(self.steps_per_epoch):
            for _ in range(config.critic_steps):
                real = self._batch()
                with torch.no_grad():
                    fake = self._fake(len(real))
                wasserstein = model.critic(real).mean() - model.critic(fake).mean()
                penalty = _gradient_penalty(model.critic, real, fake, self.generator)
                loss = -wasserstein + config.gradient_penalty * penalty
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()  # the generator has no gradients: untouched
            generated_loss = -model.critic(self._fake(config.batch)).mean()
            self.optimizer.zero_grad(set_to_none=True)
            generated_loss.backward()
            for parameter in model.critic.parameters():
                parameter.grad = None  # the generator's step only
            self.optimizer.step()
            for key, value in (("critic_loss", loss), ("generator_loss", generated_loss), ("wasserstein", wasserstein),
                               ("gradient_penalty", penalty)):
                totals[key] += float(value.detach()) / self.steps_per_epoch
            advance()
            if out_of_time():
                break
        return totals

    def validate(self, epoch: int) -> dict[str, float]:
        return {}

    def score(self, record: dict[str, Any]) -> tuple[float, ...] | None:
        return None


def recorded_decoder(embeddings_path: str | os.PathLike[str]) -> dict[str, str] | None:
    """The inr2vec model an embeddings artifact was encoded with (its recorded input ``.pt``)."""
    from nrtool.artifacts.core import describe

    inputs = describe(embeddings_path)["inputs"]
    models = [entry for entry in inputs if str(entry.get("path", "")).endswith(".pt")]
    return dict(models[0]) if models else None


def resolve_decoder(model_path: str | os.PathLike[str], recorded: dict[str, str] | None,
                    decoder_path: str | os.PathLike[str] | None, device: torch.device, dim: int) -> tuple[Any, str]:
    """The inr2vec model that decodes a head's output embeddings, and its field: ``decoder_path``,
    or else the one ``model_path`` recorded (which must still exist, unchanged)."""
    from nrtool.artifacts.core import sha256_file
    from nrtool.inr2vec.train import load_model

    if decoder_path is None:
        if recorded is None or not Path(recorded["path"]).exists():
            raise InputFileError(model_path, "does not name an inr2vec model that exists here; pass --decoder inr2vec.pt")
        decoder_path = recorded["path"]
        if sha256_file(decoder_path) != recorded.get("sha256"):
            raise InputFileError(decoder_path, f"changed since {model_path}'s embeddings were encoded with it; pass --decoder")
    decoder, checkpoint = load_model(decoder_path, device)
    if decoder.config.embedding_dim != dim:
        raise InputFileError(decoder_path, f"decodes {decoder.config.embedding_dim}-d embeddings, {model_path} "
                             f"gives {dim}-d ones")
    return decoder, str(checkpoint["inr"]["field"])


@holds_output_lock("out")
def train_gan_file(
    embeddings_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: GanConfig,
    class_name: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    plot: bool = True,
    restart: bool = False,
) -> TrainReport:
    """Train a latent GAN on the training embeddings (of one class, or all); writes the checkpoint
    (+ curves PNG). An interrupted run resumes from ``OUT.partial``."""
    from nrtool.artifacts.core import provenance, sha256_file
    from nrtool.artifacts.embeddings import load_embeddings
    from nrtool.checkpoints import save_checkpoint
    from nrtool.figures import training_curves
    from nrtool.heads.checkpoints import curves_path
    from nrtool.io.naming import trains_on
    from nrtool.training import run_training, start_training

    out, torch_device, progress = start_training(out, device, progress, config)
    embeddings = load_embeddings(embeddings_path)
    if class_name is not None and class_name not in embeddings.classes:
        raise InputFileError(embeddings_path, f"has no class {class_name!r} (classes: {', '.join(embeddings.classes) or 'none'})")
    rows = [i for i, item in enumerate(embeddings.items)
            if trains_on(item.split) and (class_name is None or item.class_name == class_name)]
    if len(rows) < 2:
        raise InputFileError(embeddings_path, f"only {len(rows)} training embedding(s)"
                             + (f" of class {class_name!r}" if class_name else "") + "; a GAN needs at least 2")
    trainer = GanTrainer(embeddings.vectors[rows], config, torch_device)
    settings = {k: v for k, v in config.to_dict().items() if k != "time_limit"}
    run = run_training(trainer, out, "latent-gan", {"config": settings, "class": class_name,
                                                    "embeddings": sha256_file(embeddings_path)},
                       config, progress, restart, "training latent GAN" + (f" ({class_name})" if class_name else ""))
    save_checkpoint(out, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, {
        "config": config.to_dict(), "class": class_name, "dim": int(embeddings.vectors.shape[1]),
        "state_dict": run.best_state, "history": run.history, "decoder": recorded_decoder(embeddings_path),
        "field": embeddings.field, "encoder": embeddings.encoder,
        "embeddings": {"inputs": provenance([embeddings_path]), "items": len(rows)},
    })
    png = curves_path(out)
    if plot:
        training_curves(run.history, png, f"{out.name}: latent GAN {config.preset}" + (f" ({class_name})" if class_name else ""),
                        run.best_epoch)
    run.finish()
    return run.report(out, png if plot else None, class_name=class_name, items=len(rows), dim=int(embeddings.vectors.shape[1]),
                      config=config.to_dict(), device=str(torch_device))


@dataclass
class Gan:
    model: LatentGan
    config: GanConfig
    class_name: str | None
    field: str
    encoder: str
    decoder: dict[str, str] | None
    history: list[dict[str, Any]] = field(default_factory=list)


def load_gan(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Gan:
    """Load a checkpoint of ``nrtool train gan`` (one-line error naming the file)."""
    from nrtool.checkpoints import damaged, load_checkpoint

    data = load_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "latent GAN", "nrtool train gan")
    try:
        config = GanConfig.from_dict(data["config"])
        model = LatentGan(int(data["dim"]), config)
        model.load_state_dict(data["state_dict"])
        gan = Gan(model.to(device).eval(), config, data["class"], str(data["field"]), str(data["encoder"]),
                  data.get("decoder"), list(data.get("history", [])))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise damaged(path, "latent GAN", exc) from exc
    return gan


# --------------------------------------------------------------------------------------------
# `nrtool generate`
# --------------------------------------------------------------------------------------------

#: Points per shape compared by the generation metrics (the field's usual 2048).
METRIC_POINTS = 2048


def _reference_clouds(embeddings_path: str | os.PathLike[str], splits: list[str], field_name: str
                      ) -> dict[str, list[np.ndarray]]:
    """Per class, ``METRIC_POINTS`` points on each reference item's source, in its INR's frame."""
    from nrtool.artifacts.embeddings import load_embeddings, select
    from nrtool.inr.reconstruction import source_reference

    reference = select(load_embeddings(embeddings_path), splits)
    if not reference.items:
        raise InputFileError(embeddings_path, f"no items with split {' or '.join(splits)}")
    clouds: dict[str, list[np.ndarray]] = {}
    for item in reference.items:
        points = source_reference(field_name if field_name != "occ" else "sdf", item)[:METRIC_POINTS]
        clouds.setdefault(str(item.class_name), []).append(points)
    return clouds


@holds_output_lock("out_dir")
def generate_file(
    model_path: str | os.PathLike[str],
    count: int,
    out_dir: str | os.PathLike[str],
    decoder_path: str | os.PathLike[str] | None = None,
    resolution: int = 64,
    seed: int = 0,
    reference: str | os.PathLike[str] | None = None,
    reference_splits: tuple[str, ...] = ("test",),
    device: str = "auto",
    progress: Progress | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Sample ``count`` embeddings, decode them into shapes in ``out_dir`` (+ ``embeddings.h5``,
    ``samples.png``); with ``reference`` (an embeddings artifact of real shapes), MMD-CD, COV-CD and
    1-NNA against the reference shapes of the GAN's class, and MMD-CD against each other class."""
    from nrtool.artifacts.core import (
        ItemInfo,
        atomic_folder,
        atomic_write_bytes,
        check_output_folder,
    )
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings
    from nrtool.device import resolve_device
    from nrtool.geometry.generation_metrics import generation_metrics, mmd_cd
    from nrtool.inr.reconstruction import ReconstructionSettings
    from nrtool.inr2vec.decode import decode_rows
    from nrtool.plots import point_strip

    if count < 1:
        raise NrtoolError(f"-n must be at least 1, got {count}")
    check_output_folder(out_dir, force)
    torch_device = resolve_device(device)
    gan = load_gan(model_path, torch_device)
    decoder, field_name = resolve_decoder(model_path, gan.decoder, decoder_path, torch_device, int(gan.model.mean.shape[0]))
    references = _reference_clouds(reference, list(reference_splits), field_name) if reference is not None else None
    with torch.no_grad():
        vectors = gan.model.sample(count, torch.Generator().manual_seed(seed)).cpu().numpy()
    infos = [ItemInfo(f"generated_{k:04d}", gan.class_name, None, "", k, np.zeros(3), 1.0) for k in range(count)]
    settings = ReconstructionSettings(resolution=resolution, source_units=False)
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, force) as staging:
        shapes = decode_rows(decoder, vectors, infos, field_name, staging, out_dir, settings, torch_device,
                              progress or SilentProgress(), "decoding generated embeddings")
        write_embeddings(staging / "embeddings.h5", Embeddings(vectors, infos, "inr2vec", field_name))
        point_strip([s.points for s in shapes[:12]], [s.name for s in shapes[:12]], staging / "samples.png",
                    title=f"generated {gan.class_name or ''}".strip())
        result: dict[str, Any] = {"generated": count, "empty": sum(s.size == 0 for s in shapes),
                                  "class": gan.class_name, "out": str(out_dir)}
        if references is not None:
            clouds = [s.points[:METRIC_POINTS] for s in shapes if s.points is not None]
            if not clouds:
                raise NrtoolError("no generated embedding decoded into a shape: nothing to score")
            own = gan.class_name if gan.class_name in references else None
            result["metrics"] = generation_metrics(clouds, references[own]) if own else None
            result["mmd_cd_per_class"] = {name: mmd_cd(clouds, refs) for name, refs in references.items()}
            atomic_write_bytes(staging / "metrics.json", json.dumps(result, indent=1).encode())
    return result
