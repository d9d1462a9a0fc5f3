"""``nrtool train gan`` and ``nrtool generate``: shapes generated in inr2vec's embedding space
(thesis Sec. 5.5.5)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, train_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    FORCE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    check_device,
    print_json,
    print_training,
    progress,
)
from nrtool.config import override_options
from nrtool.heads.config import GAN_PRESETS, GanConfig


@train_app.command("gan")
@override_options(GanConfig, ["epochs", "lr", "batch", "noise", "critic_steps", "gradient_penalty", "time_limit", "seed"])
def train_gan(
    embeddings: Path = typer.Argument(..., help="inr2vec embeddings ('train' items, or unsplit ones, are used)."),
    out: Path = typer.Option(..., "--out", "-o", help="The checkpoint to write (a training-curves PNG goes beside it)."),
    class_name: Optional[str] = typer.Option(None, "--class", help="Train on this class only (the thesis: one GAN per class)."),
    preset: str = typer.Option("tiny", help="tiny | small | paper (official code: 2000 epochs, batches of 50, lr 1e-4)."),
    device: str = DEVICE_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
    overrides: dict = None,
) -> None:
    """Train a latent GAN (WGAN-GP) on embeddings; `nrtool generate` samples and decodes it.

    Example: `nrtool train gan emb.h5 --class chair --out chair-gan.pt`
    """
    config = GAN_PRESETS(preset, **overrides)
    check_device(device)
    from nrtool.inr2vec.generation import train_gan_file

    report = train_gan_file(embeddings, out, config, class_name=class_name, device=device, progress=progress(),
                            restart=restart)
    d = report.details
    last = report.history[-1] if report.history else {}
    print_training(report, json_out, f"GAN on {d['items']} {d['dim']}-d embeddings"
                   + (f" of {class_name}" if class_name else "")
                   + (f", critic's Wasserstein estimate {last['wasserstein']:.3f}" if "wasserstein" in last else ""))


@app.command("generate")
def generate(
    model: Path = typer.Option(..., "--model", "-m", help="A checkpoint from `nrtool train gan`."),
    count: int = typer.Option(8, "-n", help="Shapes to generate."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the shapes, embeddings.h5, samples.png (and metrics.json)."),
    decoder: Optional[Path] = typer.Option(None, help="The inr2vec model to decode with (default: the one the GAN's embeddings came from)."),
    resolution: int = typer.Option(64, help="Marching-cubes grid of sdf shapes (voxel grid of occ)."),
    seed: int = typer.Option(0, help="Seed of the noise."),
    reference: Optional[Path] = typer.Option(None, help="Embeddings of real shapes: score MMD-CD, COV-CD, 1-NNA against their sources."),
    reference_split: list[str] = typer.Option(["test"], help="Reference items of this split (repeatable)."),
    device: str = DEVICE_OPTION,
    force: bool = FORCE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Sample embeddings from a latent GAN and decode them into shapes through the inr2vec decoder.

    Example: `nrtool generate --model chair-gan.pt -n 16 --out gen/ --reference emb.h5`
    """
    check_device(device)
    from nrtool.inr2vec.generation import generate_file

    result = generate_file(model, count, out, decoder_path=decoder, resolution=resolution, seed=seed, reference=reference,
                           reference_splits=tuple(reference_split), device=device, progress=progress(), force=force)
    if json_out:
        print_json(result)
        return
    if OPTIONS.quiet:
        return
    line = f"{out}: {result['generated']} shapes ({result['empty']} empty), samples.png"
    metrics = result.get("metrics")
    if metrics:
        line += (f"; against {metrics['reference']} {result['class']} shapes: MMD-CD {metrics['mmd_cd']:.4f}, "
                 f"COV-CD {metrics['cov_cd']:.3f}, 1-NNA {metrics['1nna']:.3f}" if metrics["1nna"] is not None else "")
    if result.get("mmd_cd_per_class"):
        line += "; MMD-CD per reference class: " + ", ".join(f"{c} {v:.4f}" for c, v in result["mmd_cd_per_class"].items())
    print(line)
