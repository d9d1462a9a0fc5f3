"""Benchmark of NetSpace: encode / decode throughput (networks/s) and decoding vs training a network.

One run, one machine. For the ``tiny`` and ``paper`` sizes (a freshly initialised NetSpace: the
throughput does not depend on what it learnt) on LeNetLike PReps: networks/s of the encoder
and of the decoder, one network at a time and in batches of 8, side by side; and the seconds
to get a working network by decoding an embedding (decode + load + first forward) vs by
training one for the zoo's mean number of epochs. Standalone:
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
    return out


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
