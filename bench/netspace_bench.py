"""Benchmark of NetSpace: encode / decode throughput (networks/s) and decoding vs training a network.

One run, one machine. For the ``tiny`` and ``paper`` sizes (a freshly initialised NetSpace: the
throughput does not depend on what it learnt) on LeNetLike PReps: networks/s of the encoder
and of the decoder, one network at a time and in batches of 8, side by side; and the seconds
to get a working network by decoding an embedding (decode + load + first forward) vs by
training one for the zoo's mean number of epochs; latent-space optimisation of SDF INRs' embeddings
(INR-steps/s) in groups of ``LSO_GROUP`` against all at once. Standalone:
``.venv/bin/python bench/netspace_bench.py``; in ``bench/run.py`` as the ``netspace`` section.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _rate(fn: Any, items: int, repeats: int) -> float:
    fn()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return items * repeats / (time.perf_counter() - started)


def run(quick: bool = False, say: Any = print, device: str = "cpu") -> dict[str, Any]:
    import torch

    from nrtool.netspace.architectures import build
    from nrtool.netspace.config import PRESETS, zoo_preset
    from nrtool.netspace.data import ImageSource, load_images
    from nrtool.netspace.model import NetSpace
    from nrtool.netspace.prep import prep_shape
    from nrtool.netspace.zoo import PlannedNet, architecture_spec, train_net

    torch_device = torch.device(device)
    parameters = sum(p.numel() for p in build({"architecture": "lenetlike"}).parameters())
    out: dict[str, Any] = {"device": str(torch_device), "architecture": "lenetlike", "parameters": parameters}
    for preset in ("tiny", "paper"):
        config = PRESETS[preset]
        shape = prep_shape(parameters, config.prep_width)
        model = NetSpace(config.embedding, shape[1], shape[2], 1, config.channels, config.channels3).to(torch_device).eval()
        row: dict[str, Any] = {"prep_shape": list(shape), "embedding": config.embedding,
                               "netspace_parameters": sum(p.numel() for p in model.parameters())}
        repeats = 2 if quick or preset == "paper" else 5
        for batch in (1, 8):
            preps = torch.randn((batch, *shape), device=torch_device) * 0.04
            with torch.no_grad():
                embeddings = model.encoder(preps)
                row[f"encode_nets_per_s_batch{batch}"] = _rate(lambda: model.encoder(preps), batch, repeats)
                row[f"decode_nets_per_s_batch{batch}"] = _rate(lambda: model.decoder(embeddings), batch, repeats)
        row["encode_batch_speedup"] = row["encode_nets_per_s_batch8"] / row["encode_nets_per_s_batch1"]
        row["decode_batch_speedup"] = row["decode_nets_per_s_batch8"] / row["decode_nets_per_s_batch1"]
        say(f"  {preset}: PRep {shape}, E={config.embedding}: encode {row['encode_nets_per_s_batch1']:.1f} / "
            f"{row['encode_nets_per_s_batch8']:.1f} nets/s (batch 1 / 8), decode {row['decode_nets_per_s_batch1']:.1f} / "
            f"{row['decode_nets_per_s_batch8']:.1f} nets/s")
        out[preset] = row
    # A working network: decoded from an embedding vs trained for the tiny zoo's mean epochs.
    settings = zoo_preset("tiny")
    images = load_images(ImageSource()).to(torch_device)
    epochs = (settings.min_epochs + settings.max_epochs) // 2
    started = time.perf_counter()
    train_net(PlannedNet("bench", "lenetlike", "train", epochs, 0),
              architecture_spec("lenetlike", 10, 3), images, settings, torch_device)
    trained_s = time.perf_counter() - started
    config = PRESETS["tiny"]
    shape = prep_shape(parameters, config.prep_width)
    model = NetSpace(config.embedding, shape[1], shape[2], 1, config.channels, config.channels3).to(torch_device).eval()
    template = build({"architecture": "lenetlike"}).to(torch_device).eval()
    from nrtool.netspace.prep import forward_with

    def decode_one() -> None:
        with torch.no_grad():
            prep = model.decoder(torch.randn(1, config.embedding, device=torch_device))[0]
            forward_with(template, prep, images.images["test"][:1])

    decoded_s = 1.0 / _rate(decode_one, 1, 5)
    out["network_by_decoding_s"] = decoded_s
    out["network_by_training_s"] = trained_s
    out["training_over_decoding"] = trained_s / decoded_s
    say(f"  a working LeNetLike: decoded in {decoded_s * 1000:.1f} ms vs trained ({epochs} epochs on digits) in "
        f"{trained_s:.2f} s: {trained_s / decoded_s:.0f}x")
    out["inr_lso"] = inr_lso_rates(quick, say, torch_device)
    return out


def inr_lso_rates(quick: bool, say: Any, device: Any) -> dict[str, Any]:
    """``netspace optimize`` on a space of INRs: INR-steps/s of 48 tiny SDF INRs (3 -> 64 x 3 -> 1) in
    groups of ``LSO_GROUP`` vs all 48 at once (a fresh tiny NetSpace; the rate does not depend on
    what it learnt)."""
    import numpy as np

    import nrtool.netspace.sdf as sdf
    from nrtool.artifacts.architecture import SirenSpec
    from nrtool.artifacts.zoo import ZooNet
    from nrtool.inr.siren import siren_init
    from nrtool.netspace.architectures import net_from_weights
    from nrtool.netspace.config import PRESETS
    from nrtool.netspace.model import NetSpace
    from nrtool.netspace.prep import prep_shape
    from nrtool.netspace.train import LoadedNetSpace, preps_of

    spec = SirenSpec(hidden=64, layers=2)
    arch = {"architecture": "siren", **spec.to_dict()}
    start = siren_init(spec, 0).numpy()
    rng = np.random.default_rng(0)
    nets = [ZooNet(f"inr-{i}", "test", "siren", arch, (start + rng.normal(0, 0.01, start.shape)).astype(np.float32),
                   -1, -1, sdf.NAN_ACCURACY) for i in range(48)]
    config = PRESETS["tiny"]
    shape = prep_shape(spec.n_params, config.prep_width)
    preps = preps_of(nets, shape)
    model = LoadedNetSpace(NetSpace(config.embedding, shape[1], shape[2], 1, config.channels, config.channels3)
                           .to(device).eval(), config, [net_from_weights(arch, nets[0].weights).to(device)],
                           [{"name": "siren", "spec": arch, "parameters": spec.n_params}], shape,
                           preps.mean(0).to(device), preps.std(0).to(device) + 1e-6,
                           {"source": "inrs", "path": "", "field": "sdf"}, "")
    steps = 5 if quick else 50
    row: dict[str, Any] = {"inrs": len(nets), "steps": steps, "group": sdf.LSO_GROUP}
    grouped = sdf.LSO_GROUP
    for label, group in (("grouped", grouped), ("all_at_once", len(nets))):
        sdf.LSO_GROUP = group
        try:
            started = time.perf_counter()
            sdf.optimize_inr_embeddings(model, nets, steps, 1e-2, "bench", val_every=steps, device=device)
            row[f"{label}_inr_steps_per_s"] = len(nets) * steps / (time.perf_counter() - started)
        finally:
            sdf.LSO_GROUP = grouped
    row["grouped_speedup"] = row["grouped_inr_steps_per_s"] / row["all_at_once_inr_steps_per_s"]
    say(f"  LSO of {len(nets)} SDF INRs ({steps} steps): {row['grouped_inr_steps_per_s']:.0f} INR-steps/s in groups "
        f"of {grouped} vs {row['all_at_once_inr_steps_per_s']:.0f} all at once: {row['grouped_speedup']:.2f}x")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.quick, device=args.device)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
