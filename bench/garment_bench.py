"""Benchmark of the garment network (``nrtool train garment`` / ``nrtool garment ...``).

Measured side by side in one run, on one machine:

* encoder latency per garment (DGCNN, batch 1, eval mode) for each preset's sizes and points;
* decode + MeshUDF meshing time at 128^3 and 256^3 of a trained model, next to plain marching
  cubes (skimage, level = half a voxel, which gives the double layer) on the same dense grid;
  for the paper-size decoder (untrained weights give no meaningful surface to cull around) the
  time is *estimated* from its measured points/s times the evaluations the trained model's
  coarse-to-fine pass needed -- printed as an estimate;
* reconstruction Chamfer (normalised frame) of held-out procedural tops for each preset,
  trained for a wall-clock budget each (not converged on a CPU; ``paper`` is not trained on a
  CPU: one step takes minutes and more than 10 GB). With ``--device cuda`` every preset is
  trained, and decode + meshing is timed for every trained model, the paper size included.

``--data DIR`` keeps the procedural garments (made once, reused by later runs; a GPU machine
without Open3D can read a folder made elsewhere).

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


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


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
    """Procedural training and held-out tops under ``folder`` (reused when already there)."""
    train, held = folder / "train", folder / "held"
    if (train / "garments.json").is_file() and (held / "garments.json").is_file():
        found = [len(json.loads((f / "garments.json").read_text())["garments"]) for f in (train, held)]
        if found != [tops, held_out]:
            raise SystemExit(f"{folder} holds {found[0]} training and {found[1]} held-out tops, this run wants "
                             f"{tops} and {held_out}: use another --data folder")
        return train, held
    from nrtool.synth.body import write_body
    from nrtool.synth.garments import make_garments

    folder.mkdir(parents=True, exist_ok=True)
    body = folder / "body.npz"
    write_body(body, 0.03)
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
        _sync(device)

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
        _sync(device)

    return points / _timed(run, 2)


def meshing_times(model: Any, code: Any, resolution: int, plain: bool) -> dict[str, Any]:
    """Seconds of decode + MeshUDF, and of dense evaluation + plain marching cubes, on R cells."""
    import numpy as np
    import torch

    from nrtool.geometry.meshudf import (
        boundary_edge_count,
        mesh_udf_grid,
        sample_udf_grid,
    )
    from nrtool.geometry.reconstruct import _evaluate_on_grid

    device = next(model.parameters()).device
    fn = model.udf_fn(torch.as_tensor(code, device=device))
    chunk = 262_144 if device.type == "cuda" else 65_536
    _sync(device)
    started = time.perf_counter()
    grid = sample_udf_grid(fn, resolution + 1, max_distance=model.config.delta, chunk=chunk, device=device)
    sampled = time.perf_counter() - started

    def at(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.as_tensor(points, dtype=torch.float32, device=device)).cpu().numpy()

    mesh = mesh_udf_grid(grid, at)
    _sync(device)
    ours = time.perf_counter() - started
    row: dict[str, Any] = {"resolution": resolution, "meshudf_s": ours, "meshudf_sampling_s": sampled,
                           "evaluations": grid.evaluated, "dense_points": (resolution + 1) ** 3,
                           "faces": len(mesh.faces), "boundary_edges": boundary_edge_count(mesh.faces),
                           "plain_mc_s": None, "plain_mc_faces": None}
    if plain:
        from skimage.measure import marching_cubes

        started = time.perf_counter()
        values = _evaluate_on_grid(fn, resolution + 1, 1.0, cell_centres=False, chunk=chunk,
                                   device=device, dtype=torch.float32)
        level = float(values.min()) + 0.5 * 2.0 / resolution
        _, faces, _, _ = marching_cubes(values, level=level)
        row["plain_mc_s"] = time.perf_counter() - started
        row["plain_mc_faces"] = len(faces)
    return row


def held_out_chamfer(model_path: Path, held: Path, resolution: int, device: Any) -> float:
    import numpy as np

    from nrtool.garments.data import load_garments, sample_surface_points
    from nrtool.garments.meshing import decode_mesh, mesh_chamfer
    from nrtool.garments.model import load_model
    from nrtool.garments.train import encode_points

    model, _ = load_model(model_path, device)
    garments = load_garments([held], category="top")
    rng = np.random.default_rng(0)
    codes = encode_points(model, [sample_surface_points(g, model.config.points, rng) for g in garments], device)
    scores = [mesh_chamfer(*decode_mesh(model, code, resolution), sample_surface_points(g, 5_000, rng))
              for g, code in zip(garments, codes)]
    return float(np.mean(scores))


def run(quick: bool = False, presets: tuple[str, ...] = ("tiny", "small", "paper"),
        train_seconds: float | dict[str, float] | None = None,
        say: Callable[[str], None] = print, work: Path | None = None,
        resolutions: tuple[int, ...] | None = None, plain_up_to: int | None = None,
        device: str = "cpu", data: Path | None = None, json_path: Path | None = None) -> dict[str, Any]:
    """Measure and print; returns the numbers.

    ``train_seconds``: one budget for every preset, or one per preset name.
    ``resolutions``: meshing grids (default 128 and 256; --quick 128); plain marching cubes runs
    side by side up to ``plain_up_to`` cells (default: all; --quick 128; a dense 256^3 grid is
    16.8M decoder evaluations, minutes on a CPU). On a CPU only the first preset's model is
    meshed (the paper-size time is estimated from throughput); on CUDA every trained model.
    ``json_path``: rewritten after every preset, so a run stopped early keeps its numbers.
    """
    resolutions = resolutions or ((128,) if quick else (128, 256))
    plain_up_to = plain_up_to or (128 if quick else max(resolutions))
    import torch

    from nrtool.device import resolve_device
    from nrtool.garments.config import TrainSettings, garment_preset
    from nrtool.garments.model import load_model, training_codes
    from nrtool.garments.train import train_garment

    torch_device = resolve_device(device)
    on_gpu = torch_device.type == "cuda"
    default_budget = 45.0 if quick else 300.0
    budgets = {p: (train_seconds.get(p, default_budget) if isinstance(train_seconds, dict) else train_seconds or default_budget)
               for p in presets}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    gpu = f", {torch.cuda.get_device_name(torch_device)}" if on_gpu else ""
    say(f"  (device {torch_device}{gpu}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
        + (f", 1-min load {load:.2f} before starting)" if load is not None else ")"))
    result: dict[str, Any] = {"device": str(torch_device) + gpu, "train_seconds": budgets, "presets": {}, "meshing": {}}

    def keep() -> None:
        if json_path is not None:
            tmp = json_path.with_name(json_path.name + ".tmp")
            tmp.write_text(json.dumps(result, indent=2) + "\n")
            os.replace(tmp, json_path)

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        started = time.perf_counter()
        train, held = make_data(data or Path(tmp) / "data", tops=8 if quick else 24, held_out=2 if quick else 4)
        say(f"  (procedural tops ready in {time.perf_counter() - started:.1f} s, not timed: {train}, {held})")
        trained: list[str] = []
        for preset in presets:
            row: dict[str, Any] = {"encoder_ms": 1e3 * encoder_latency(preset, torch_device, 2 if quick else 5),
                                   "points": garment_preset(preset).points,
                                   "decoder_points_per_s": decoder_throughput(preset, torch_device)}
            out = Path(tmp) / f"{preset}.pt"
            if preset == "paper" and not on_gpu:
                # One paper-size step (batch 4 x 10k points through EdgeConv, 4 x 20k queries with
                # double backward) takes minutes and >10 GB here: a GPU benchmark.
                row.update({"trained_s": None, "epochs": None, "held_out_chamfer": None})
                result["presets"][preset] = row
                keep()
                say(f"  {preset}: encoder {row['encoder_ms']:.1f} ms/garment ({row['points']} points), decoder "
                    f"{row['decoder_points_per_s'] / 1e6:.3f} M points/s; training skipped on a CPU")
                continue
            say(f"  {preset}: training for {budgets[preset]:.0f} s ...")
            started = time.perf_counter()
            report = train_garment([train], out, garment_preset(preset), TrainSettings(
                epochs=100_000, val_items=1, val_every=100_000, val_resolution=32, time_limit=budgets[preset]),
                category="top", device=str(torch_device))
            row["trained_s"] = time.perf_counter() - started
            row["epochs"] = report.epochs
            row["steps"] = sum(int(h["steps"]) for h in report.history)  # the last epoch may stop early
            row["final_loss"] = report.history[-1]["loss"] if report.history else None
            row["held_out_chamfer"] = held_out_chamfer(out, held, 64, torch_device)
            result["presets"][preset] = row
            trained.append(preset)
            keep()
            say(f"  {preset}: encoder {row['encoder_ms']:.1f} ms/garment ({row['points']} points), decoder "
                f"{row['decoder_points_per_s'] / 1e6:.2f} M points/s, {report.epochs} epochs ({row['steps']} steps) in "
                f"{row['trained_s']:.0f} s, held-out Chamfer {row['held_out_chamfer']:.4f}")
        for preset in trained if on_gpu else trained[:1]:
            model, checkpoint = load_model(Path(tmp) / f"{preset}.pt", torch_device)
            code = training_codes(checkpoint)[0]
            rows = [meshing_times(model, code, resolution, plain=resolution <= plain_up_to) for resolution in resolutions]
            result["meshing"][preset] = rows
            keep()
    say("")
    say("| preset | encoder ms/garment | points | held-out Chamfer | epochs (steps) in budget | budget s |")
    say("|---|---|---|---|---|---|")
    for preset, row in result["presets"].items():
        chamfer = "-" if row["held_out_chamfer"] is None else f"{row['held_out_chamfer']:.4f}"
        epochs = f"{row['epochs']} ({row['steps']})" if row["epochs"] else "-"
        say(f"| {preset} | {row['encoder_ms']:.1f} | {row['points']} | {chamfer} | {epochs} | {budgets[preset]:.0f} |")
    for preset, rows in result["meshing"].items():
        say("")
        say(f"decode + meshing ({preset} model, {result['device']}):")
        say("")
        say("| grid | MeshUDF s | UDF evaluations | faces | boundary edges | plain MC s (dense) | plain MC faces | ratio |")
        say("|---|---|---|---|---|---|---|---|")
        for row in rows:
            head = (f"| {row['resolution']}^3 | {row['meshudf_s']:.2f} | {row['evaluations']:,} of {row['dense_points']:,} | "
                    f"{row['faces']} | {row['boundary_edges']} | ")
            say(head + (f"{row['plain_mc_s']:.2f} | {row['plain_mc_faces']} | {row['plain_mc_s'] / row['meshudf_s']:.1f}x |"
                        if row["plain_mc_s"] is not None else "(not run) | | |"))
    if "paper" in result["presets"] and "paper" not in result["meshing"] and result["meshing"]:
        rate = result["presets"]["paper"]["decoder_points_per_s"]
        first = next(iter(result["meshing"].values()))
        for row in first:
            row["paper_estimate_s"] = row["evaluations"] / rate
            say(f"paper-size decoder at {row['resolution']}^3: ~{row['paper_estimate_s']:.1f} s (estimate: "
                f"{row['evaluations']:,} evaluations at {rate / 1e3:.0f}k points/s; gradients at corners cost extra)")
    say("(plain MC = dense evaluation + skimage marching cubes at level min + half a voxel: a double layer, "
        "about twice MeshUDF's faces)")
    keep()
    return result


def _budgets(text: str | None, presets: tuple[str, ...]) -> float | dict[str, float] | None:
    """``--train-seconds``: one number for all presets, or one per preset (same order)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"--train-seconds: expected numbers, comma-separated, got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) != len(presets):
        raise SystemExit(f"--train-seconds: give one value or one per preset ({len(presets)}), got {len(values)}")
    return dict(zip(presets, values))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fewer garments, 45 s of training per preset, 128^3 only.")
    parser.add_argument("--presets", default="tiny,small,paper", help="Comma-separated presets (default: all three).")
    parser.add_argument("--train-seconds", default=None,
                        help="Training budget in seconds: one for all presets or one per preset, comma-separated "
                             "(default 300, --quick 45).")
    parser.add_argument("--resolutions", default=None, help="Meshing grids, comma-separated (default 128,256; --quick 128).")
    parser.add_argument("--plain-up-to", type=int, default=None, help="Largest grid for plain marching cubes (default: all).")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu).")
    parser.add_argument("--data", type=Path, default=None,
                        help="Folder for the procedural tops: made there once, reused when present.")
    parser.add_argument("--json", metavar="PATH", type=Path, default=None,
                        help="Also write the numbers to this JSON file (rewritten after each preset).")
    args = parser.parse_args(argv)
    presets = tuple(p for p in args.presets.split(",") if p)
    resolutions = tuple(int(r) for r in args.resolutions.split(",")) if args.resolutions else None
    from nrtool.errors import NrtoolError

    try:
        run(args.quick, presets, _budgets(args.train_seconds, presets), resolutions=resolutions,
            plain_up_to=args.plain_up_to, device=args.device, data=args.data, json_path=args.json)
    except NrtoolError as exc:  # bad input (device, preset, data): one line, non-zero exit
        raise SystemExit(f"garment_bench: {exc}") from None


if __name__ == "__main__":
    main()
