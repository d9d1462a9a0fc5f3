"""Benchmark of the draping network (``nrtool drape`` / ``nrtool train drape``).

Measured side by side in one run, on one machine:

* milliseconds per frame to drape a ~5k-vertex garment on the procedural body, with the
  per-sequence cache (``M(x, z)``, ``W(x)``, ``Δx(x, β)`` computed once; per frame only the body,
  ``B(θ, β)`` and the skinning) and without it (``M(x, z)`` recomputed every frame, as a naive
  implementation would), for each preset's network sizes, frames batched 16 at a time and one
  at a time (streaming latency); the thesis: ~5 ms per 5k-vertex frame on a V100;
* training steps per second of each preset (one garment on ``batch`` bodies per step, all
  physics terms and the backward pass).

Network weights are untrained (timing does not depend on them). Standalone:
``.venv/bin/python bench/drape_bench.py --quick``; in ``bench/run.py`` as the ``drape`` section.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

from garment_bench import _sync  # noqa: E402  (the one device synchronisation of the benches)


def _median_seconds(fn: Callable[[], Any], repeats: int, device: Any) -> float:
    import numpy as np

    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _garment(body_path: Path, work: Path, target_vertices: int) -> tuple[Any, Any]:
    """A procedural top of about ``target_vertices`` vertices (finer cells until it has them)."""
    import numpy as np

    from nrtool.synth.garments import make_garments

    resolution = 0.02
    while True:
        garments = make_garments(body_path, work / f"g{resolution:.4f}", tops=1, bottoms=0, resolution=resolution,
                                 seed=3, preview=False)
        top = garments[0]
        if len(top.vertices) >= target_vertices or resolution < 0.006:
            return np.asarray(top.vertices), np.asarray(top.faces)
        resolution *= 0.85


def run(quick: bool, say: Callable[[str], None] = print, device: str = "cpu", work: Path | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from nrtool.body.body_model import BodyModel
    from nrtool.drape.config import PRESETS, DrapeTrainSettings, skinning_preset
    from nrtool.drape.garments import GarmentTemplate
    from nrtool.drape.model import DisplacementField, DrapingModel
    from nrtool.drape.physics import Material
    from nrtool.drape.sequence import SequenceDraper
    from nrtool.drape.skinning import SkinningField
    from nrtool.drape.train import DrapeTrainer
    from nrtool.synth.body import write_body
    from nrtool.synth.poses import make_motion

    torch_device = torch.device(device)
    work = Path(work or tempfile.mkdtemp(prefix="drape-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    body_path = work / "body.npz"
    if not body_path.is_file():
        write_body(body_path, resolution=0.03)
    body = BodyModel(body_path, device=torch_device)
    vertices, faces = _garment(body_path, work, 2_000 if quick else 5_000)
    say(f"  garment: {len(vertices)} vertices, {len(faces)} faces; body {body.num_vertices} vertices; device {torch_device}")
    motion = make_motion("walk", seconds=2.0, fps=30.0)
    poses = motion.poses.astype(np.float32)[: 32 if quick else 64]
    results: dict[str, Any] = {"garment_vertices": int(len(vertices)), "frames": int(len(poses)), "draping": [],
                               "training": []}
    presets = ("tiny", "small") if quick else ("tiny", "small", "paper")
    material = Material()
    rows = []
    for preset in presets:
        config = PRESETS[preset]
        skin = skinning_preset(preset)
        torch.manual_seed(0)
        skinning = SkinningField(body.num_betas, skin.hidden, skin.layers).to(torch_device).eval()
        field = DisplacementField(config, 32).to(torch_device).eval()
        # Untrained fields start at zero displacement; random weights make M do real work.
        with torch.no_grad():
            for parameter in field.garment_net[-1].parameters():
                parameter.normal_(0, 0.01)
        model = DrapingModel("top", field, {}, "bench")
        template = GarmentTemplate("top", np.zeros(32, np.float32), vertices, faces)
        timings = {}
        for cache in (True, False):
            draper = SequenceDraper({"top": model}, {"top": template}, skinning, body, None, material, torch_device,
                                    cache=cache)

            def batched() -> None:
                with torch.no_grad():
                    for start in range(0, len(poses), 16):
                        draper.drape(poses[start : start + 16])

            def one_by_one() -> None:
                with torch.no_grad():
                    for t in range(min(len(poses), 16)):
                        draper.drape(poses[t : t + 1])

            timings[cache] = (1000 * _median_seconds(batched, 3, torch_device) / len(poses),
                              1000 * _median_seconds(one_by_one, 3, torch_device) / min(len(poses), 16))
        row = {"preset": preset, "cached_ms_per_frame": timings[True][0], "uncached_ms_per_frame": timings[False][0],
               "cached_ms_streaming": timings[True][1], "uncached_ms_streaming": timings[False][1]}
        row["speedup"] = row["uncached_ms_per_frame"] / row["cached_ms_per_frame"]
        rows.append(row)
        say(f"  {preset:>5}: {row['cached_ms_per_frame']:.1f} ms/frame cached vs {row['uncached_ms_per_frame']:.1f} "
            f"uncached ({row['speedup']:.1f}x), batches of 16; one frame at a time {row['cached_ms_streaming']:.1f} vs "
            f"{row['uncached_ms_streaming']:.1f} ms")
        # Training steps/s of the preset (its batch), on this garment.
        train_poses = np.concatenate([make_motion(m, seconds=1.0, fps=30.0).poses for m in ("walk", "squat")])
        settings = DrapeTrainSettings(epochs=1, steps_per_epoch=3 if quick or preset == "paper" else 6, val_poses=2)
        trainer = DrapeTrainer(DisplacementField(config, 32).to(torch_device), "top", [template], skinning, body,
                               material, train_poses.astype(np.float32), train_poses[:2].astype(np.float32), settings,
                               torch_device)
        trainer.train_epoch(1, lambda *a: None, lambda: False)  # warm-up
        _sync(torch_device)
        started = time.perf_counter()
        trainer.train_epoch(2, lambda *a: None, lambda: False)
        _sync(torch_device)
        rate = settings.steps_per_epoch / (time.perf_counter() - started)
        results["training"].append({"preset": preset, "batch": config.batch, "steps_per_s": rate,
                                    "bodies_per_s": rate * config.batch})
        say(f"  {preset:>5}: training {rate:.2f} steps/s (batch {config.batch}: {rate * config.batch:.1f} draped bodies/s)")
    results["draping"] = rows
    results["nearest"] = _nearest_search(body, vertices, faces, poses, torch_device, say)
    say("  thesis (V100): ~5 ms per frame of a 5k-vertex garment")
    return results


def _nearest_search(body: Any, vertices: Any, faces: Any, poses: Any, device: Any,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """The collision term's nearest-body-vertex search (garment vertices and face centroids of 8
    bodies) by ``nrtool.drape.physics.nearest_vertex`` against PyTorch3D's ``knn_points``, side by
    side on the same points; the indices must agree."""
    import torch
    from pytorch3d.ops import knn_points

    from nrtool.drape.physics import face_centroids, nearest_vertex

    with torch.no_grad():
        bodies = body.forward(torch.as_tensor(poses[:8], device=device)).vertices.float()
        x = torch.as_tensor(vertices, dtype=torch.float32, device=device)
        f = torch.as_tensor(faces, dtype=torch.int64, device=device)
        points = torch.cat([x[None], face_centroids(x[None], f)], 1).expand(len(bodies), -1, -1)
        ours_ms = 1000 * _median_seconds(lambda: nearest_vertex(points, bodies), 3, device)
        knn_ms = 1000 * _median_seconds(lambda: knn_points(points, bodies, K=1), 3, device)
        agree = float((nearest_vertex(points, bodies) == knn_points(points, bodies, K=1).idx[..., 0]).float().mean())
    say(f"  nearest body vertex of {points.shape[1]} points x {len(bodies)} bodies: {ours_ms:.1f} ms "
        f"(nearest_vertex) vs {knn_ms:.1f} ms (pytorch3d knn_points): {knn_ms / ours_ms:.1f}x; indices agree "
        f"{100 * agree:.3f} %")
    return {"points": int(points.shape[1]), "bodies": int(len(bodies)), "ours_ms": ours_ms, "knn_points_ms": knn_ms,
            "ratio": knn_ms / ours_ms, "agree": agree}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = run(args.quick, device=args.device)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
