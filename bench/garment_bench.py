"""Benchmark of the garment network (``nrtool train garment`` / ``nrtool garment ...``).

Measured side by side in one run, on one machine:

* encoder latency per garment (DGCNN, batch 1, eval mode) for each preset's sizes and points;
* decode + MeshUDF meshing time at 128^3 and 256^3 of a trained model, next to plain marching
  cubes (skimage, level = half a voxel, which gives the double layer) on the same dense grid;
  for the paper-size decoder (untrained weights give no meaningful surface to cull around) the
  time is *estimated* from its measured points/s times the evaluations the trained model's
  coarse-to-fine pass needed -- printed as an estimate;
* reconstruction Chamfer (normalised frame) of held-out procedural tops for each preset,
  trained for the same wall-clock budget (not converged on a CPU; a GPU run is the real test;
  ``paper`` is not trained on a CPU: one step takes minutes and more than 10 GB).

The thesis' reference points: ~25 ms (encoder) and ~2 s (decode + mesh) on a V100.

Standalone: ``.venv/bin/python bench/garment_bench.py --quick``; in ``bench/run.py`` as the
``garment`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up."""
    import numpy as np

    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def make_data(folder: Path, tops: int, held_out: int) -> tuple[Path, Path]:
    from nrtool.synth.body import write_body
    from nrtool.synth.garments import make_garments

    body = folder / "body.npz"
    write_body(body, 0.03)
    train, held = folder / "train", folder / "held"
    make_garments(body, train, tops=tops, bottoms=0, seed=0, resolution=0.02, preview=False)
    make_garments(body, held, tops=held_out, bottoms=0, seed=11, resolution=0.02, preview=False)
    return train, held


def encoder_latency(preset: str, device: Any, repeats: int) -> float:
    import torch

    from nrtool.garments.config import garment_preset
    from nrtool.garments.model import GarmentNet

    config = garment_preset(preset)
    model = GarmentNet(config).to(device).eval()
    points = torch.rand(1, config.points, 3, device=device) * 2 - 1

    def run() -> None:
        with torch.no_grad():
            model.encoder(points)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return _timed(run, repeats)


def decoder_throughput(preset: str, device: Any, points: int = 16_384) -> float:
    """Points per second of the preset's decoder (UDF only, no gradients)."""
    import torch

    from nrtool.garments.config import garment_preset
    from nrtool.garments.model import GarmentNet

    model = GarmentNet(garment_preset(preset)).to(device).eval()
    code = torch.zeros(1, 32, device=device)
    queries = torch.rand(1, points, 3, device=device) * 2 - 1

    def run() -> None:
        with torch.no_grad():
            model.decoder.udf(code, queries)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return points / _timed(run, 2)


def meshing_times(model: Any, code: Any, resolution: int, plain: bool) -> dict[str, Any]:
    """Seconds of decode + MeshUDF, and of dense evaluation + plain marching cubes, on R cells."""
    import numpy as np
    import torch

    from nrtool.geometry.meshudf import boundary_edge_count, mesh_udf_grid, sample_udf_grid
    from nrtool.geometry.reconstruct import _evaluate_on_grid

    fn = model.udf_fn(torch.as_tensor(code))
    started = time.perf_counter()
    grid = sample_udf_grid(fn, resolution + 1, max_distance=model.config.delta)
    sampled = time.perf_counter() - started

    def at(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.as_tensor(points, dtype=torch.float32)).numpy()

    mesh = mesh_udf_grid(grid, at)
    ours = time.perf_counter() - started
    row: dict[str, Any] = {"resolution": resolution, "meshudf_s": ours, "meshudf_sampling_s": sampled,
                           "evaluations": grid.evaluated, "dense_points": (resolution + 1) ** 3,
                           "faces": len(mesh.faces), "boundary_edges": boundary_edge_count(mesh.faces),
                           "plain_mc_s": None, "plain_mc_faces": None}
    if plain:
        from skimage.measure import marching_cubes

        started = time.perf_counter()
        values = _evaluate_on_grid(fn, resolution + 1, 1.0, cell_centres=False, chunk=65_536,
                                   device=torch.device("cpu"), dtype=torch.float32)
        level = float(values.min()) + 0.5 * 2.0 / resolution
        _, faces, _, _ = marching_cubes(values, level=level)
        row["plain_mc_s"] = time.perf_counter() - started
        row["plain_mc_faces"] = len(faces)
    return row


def held_out_chamfer(model_path: Path, held: Path, resolution: int) -> float:
    import numpy as np
    import torch

    from nrtool.garments.data import load_garments, sample_surface_points
    from nrtool.garments.meshing import decode_mesh, mesh_chamfer
    from nrtool.garments.model import load_model
    from nrtool.garments.train import encode_points

    model, _ = load_model(model_path)
    garments = load_garments([held], category="top")
    rng = np.random.default_rng(0)
    codes = encode_points(model, [sample_surface_points(g, model.config.points, rng) for g in garments], torch.device("cpu"))
    scores = [mesh_chamfer(*decode_mesh(model, code, resolution), sample_surface_points(g, 5_000, rng))
              for g, code in zip(garments, codes)]
    return float(np.mean(scores))


def run(quick: bool = False, presets: tuple[str, ...] = ("tiny", "small", "paper"), train_seconds: float | None = None,
        say: Callable[[str], None] = print, work: Path | None = None,
        resolutions: tuple[int, ...] | None = None, plain_up_to: int | None = None) -> dict[str, Any]:
    """Measure and print; returns the numbers.

    ``resolutions``: meshing grids (default 128 and 256; --quick 128); plain marching cubes runs
    side by side up to ``plain_up_to`` cells (default: all; --quick 128; a dense 256^3 grid is
    16.8M decoder evaluations, minutes on a CPU).
    """
    resolutions = resolutions or ((128,) if quick else (128, 256))
    plain_up_to = plain_up_to or (128 if quick else max(resolutions))
    import torch

    from nrtool.garments.config import garment_preset
    from nrtool.garments.model import load_model, training_codes
    from nrtool.garments.train import TrainSettings, train_garment

    device = torch.device("cpu")
    train_seconds = train_seconds or (45.0 if quick else 300.0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    say(f"  (torch threads {torch.get_num_threads()}, 1-min load {load:.2f} before starting)" if load is not None else "")
    result: dict[str, Any] = {"device": str(device), "train_seconds": train_seconds, "presets": {}}
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        started = time.perf_counter()
        train, held = make_data(Path(tmp), tops=8 if quick else 24, held_out=2 if quick else 4)
        say(f"  (procedural tops made in {time.perf_counter() - started:.1f} s, not timed)")
        for preset in presets:
            row: dict[str, Any] = {"encoder_ms": 1e3 * encoder_latency(preset, device, 2 if quick else 5),
                                   "points": garment_preset(preset).points,
                                   "decoder_points_per_s": decoder_throughput(preset, device)}
            out = Path(tmp) / f"{preset}.pt"
            if preset == "paper" and device.type == "cpu":
                # One paper-size step (batch 4 x 10k points through EdgeConv, 4 x 20k queries with
                # double backward) takes minutes and >10 GB here: a GPU benchmark.
                row.update({"trained_s": None, "epochs": None, "held_out_chamfer": None})
                result["presets"][preset] = row
                say(f"  {preset}: encoder {row['encoder_ms']:.1f} ms/garment ({row['points']} points), decoder "
                    f"{row['decoder_points_per_s'] / 1e6:.3f} M points/s; training skipped on a CPU")
                continue
            started = time.perf_counter()
            report = train_garment([train], out, garment_preset(preset), TrainSettings(
                epochs=100_000, val_items=1, val_every=100_000, val_resolution=32, time_limit=train_seconds),
                category="top", device="cpu")
            row["trained_s"] = time.perf_counter() - started
            row["epochs"] = report.epochs
            row["held_out_chamfer"] = held_out_chamfer(out, held, 64)
            result["presets"][preset] = row
            say(f"  {preset}: encoder {row['encoder_ms']:.1f} ms/garment ({row['points']} points), decoder "
                f"{row['decoder_points_per_s'] / 1e6:.2f} M points/s, {report.epochs} epochs in {row['trained_s']:.0f} s, "
                f"held-out Chamfer {row['held_out_chamfer']:.4f}")
        model, checkpoint = load_model(Path(tmp) / f"{presets[0]}.pt")
        code = training_codes(checkpoint)[0]
        rows = []
        for resolution in resolutions:
            rows.append(meshing_times(model, code, resolution, plain=resolution <= plain_up_to))
        result["meshing"] = {"preset": presets[0], "rows": rows}
    say("")
    say("| preset | encoder ms/garment | points | held-out Chamfer | epochs in budget |")
    say("|---|---|---|---|---|")
    for preset, row in result["presets"].items():
        chamfer = "-" if row["held_out_chamfer"] is None else f"{row['held_out_chamfer']:.4f}"
        say(f"| {preset} | {row['encoder_ms']:.1f} | {row['points']} | {chamfer} | {row['epochs'] or '-'} |")
    say("")
    say(f"decode + meshing ({presets[0]} model, CPU):")
    say("")
    say("| grid | MeshUDF s | UDF evaluations | faces | boundary edges | plain MC s (dense) | plain MC faces | ratio |")
    say("|---|---|---|---|---|---|---|---|")
    for row in rows:
        plain = row["plain_mc_s"] is not None
        say(f"| {row['resolution']}^3 | {row['meshudf_s']:.2f} | {row['evaluations']:,} of {row['dense_points']:,} | "
            f"{row['faces']} | {row['boundary_edges']} | {row['plain_mc_s']:.2f} | {row['plain_mc_faces']} | "
            f"{row['plain_mc_s'] / row['meshudf_s']:.1f}x |" if plain else
            f"| {row['resolution']}^3 | {row['meshudf_s']:.2f} | {row['evaluations']:,} of {row['dense_points']:,} | "
            f"{row['faces']} | {row['boundary_edges']} | (not run) | | |")
    if "paper" in result["presets"]:
        rate = result["presets"]["paper"]["decoder_points_per_s"]
        for row in rows:
            row["paper_estimate_s"] = row["evaluations"] / rate
            say(f"paper-size decoder at {row['resolution']}^3: ~{row['paper_estimate_s']:.1f} s (estimate: "
                f"{row['evaluations']:,} evaluations at {rate / 1e3:.0f}k points/s; gradients at corners cost extra)")
    say("(plain MC = dense evaluation + skimage marching cubes at level min + half a voxel: a double layer, "
        "about twice MeshUDF's faces)")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer garments, 45 s of training per preset, 128^3 only.")
    parser.add_argument("--presets", default="tiny,small,paper", help="Comma-separated presets (default: all three).")
    parser.add_argument("--train-seconds", type=float, default=None, help="Training budget per preset (default 300, --quick 45).")
    parser.add_argument("--resolutions", default=None, help="Meshing grids, comma-separated (default 128,256; --quick 128).")
    parser.add_argument("--plain-up-to", type=int, default=None, help="Largest grid for plain marching cubes (default: all).")
    parser.add_argument("--json", metavar="PATH", default=None, help="Also write the numbers to this JSON file.")
    args = parser.parse_args(argv)
    resolutions = tuple(int(r) for r in args.resolutions.split(",")) if args.resolutions else None
    result = run(args.quick, tuple(p for p in args.presets.split(",") if p), args.train_seconds,
                 resolutions=resolutions, plain_up_to=args.plain_up_to)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
