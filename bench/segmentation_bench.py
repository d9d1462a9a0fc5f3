"""Benchmark of the part-segmentation decoder: the shape's code applied once per shape vs per query.

One run, one machine. For the ``tiny`` and ``paper`` sizes (freshly initialised: speed does not
depend on what it learnt; 256-d embeddings, 5 classes, 13 parts), a training step (forward,
cross-entropy, backward) of :class:`nrtool.heads.segmentation.PartSegmenter` as built -- the
embedding and one-hot share of its two input layers computed once per shape
(:func:`nrtool.nn.split_linear`) -- against the same weights applied the plain way, on the
input concatenated at every query, in turns, medians; the outputs agree to float precision. Then
inference points/s.
Standalone: ``.venv/bin/python bench/segmentation_bench.py``; in ``bench/run.py`` as ``segmentation``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DIM, CLASSES, PARTS = 256, 5, 13


def _concatenated_forward(model: Any, embedding: Any, class_index: Any, queries: Any) -> Any:
    """The reference: the same network on ``[encoding, embedding, one-hot]`` built at every query."""
    import torch

    from nrtool.nn import positional_encoding

    encoded = positional_encoding(queries, model.pe_frequencies)
    shape = torch.cat([embedding, torch.nn.functional.one_hot(class_index, model.num_classes).float()], dim=1)
    inputs = torch.cat([encoded, shape[:, None].expand(-1, queries.shape[1], -1)], dim=-1)
    hidden = model.before_skip(torch.relu(model.layer_in(inputs)))
    return model.out(model.after_skip(hidden + model.skip(inputs)))


def _seconds(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def _side_by_side(fns: list[Any], repeats: int) -> list[float]:
    """Median seconds of each function, run in turns (a, b, a, b, ...) so that drifts of the
    machine's speed fall on both alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            started = time.perf_counter()
            fn()
            record.append(time.perf_counter() - started)
    return [float(np.median(record)) for record in times]


def run(quick: bool = False, say: Any = print, device: str = "cpu") -> dict[str, Any]:
    import torch

    from nrtool.heads.config import SEGMENTER_PRESETS
    from nrtool.heads.segmentation import PartSegmenter

    torch_device = torch.device(device)
    out: dict[str, Any] = {"device": str(torch_device)}
    for preset in ("tiny", "paper"):
        config = SEGMENTER_PRESETS[preset]
        # paper's full step (256 shapes x 2048 points) is a GPU's job: on the CPU a slice of it.
        shapes = config.batch if torch_device.type == "cuda" or preset == "tiny" else 16
        torch.manual_seed(0)
        model = PartSegmenter(DIM, CLASSES, PARTS, config.hidden, config.pe_frequencies).to(torch_device)
        embedding = torch.randn(shapes, DIM, device=torch_device)
        class_index = torch.randint(0, CLASSES, (shapes,), device=torch_device)
        queries = torch.rand(shapes, config.queries, 3, device=torch_device) * 2 - 1
        targets = torch.randint(0, PARTS, (shapes, config.queries), device=torch_device)

        def step(forward: Any) -> None:
            logits = forward(embedding, class_index, queries)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, PARTS), targets.reshape(-1))
            model.zero_grad(set_to_none=True)
            loss.backward()
            if torch_device.type == "cuda":
                torch.cuda.synchronize()

        with torch.no_grad():
            difference = float((model(embedding, class_index, queries)
                                - _concatenated_forward(model, embedding, class_index, queries)).abs().max())
        repeats = 3 if quick or preset == "paper" else 9
        ours, plain = _side_by_side([lambda: step(model), lambda: step(lambda *a: _concatenated_forward(model, *a))],
                                    repeats)
        with torch.no_grad():
            infer = _seconds(lambda: model(embedding, class_index, queries), repeats)
        row = {"shapes_per_step": shapes, "queries_per_shape": config.queries, "hidden": config.hidden,
               "step_s": ours, "step_s_concatenated": plain, "speedup": plain / ours,
               "train_queries_per_s": shapes * config.queries / ours,
               "inference_points_per_s": shapes * config.queries / infer, "max_abs_difference": difference}
        out[preset] = row
        say(f"  {preset:5s} ({shapes} shapes x {config.queries} points, width {config.hidden}): step {ours * 1e3:8.1f} ms "
            f"vs {plain * 1e3:8.1f} ms concatenated ({row['speedup']:.2f}x); {row['train_queries_per_s']:,.0f} "
            f"training / {row['inference_points_per_s']:,.0f} inference points/s; outputs differ by {difference:.1e}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.quick, device=args.device)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
