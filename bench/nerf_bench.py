"""Benchmark of the dense-grid NeRF (``nrtool nerf``): training and rendering rays/s, with the
occupancy grid's empty-space skipping on and off side by side, and the PSNR reached per minute.

The scene is the test suite's: a 320x240 synthetic capture, object-only frames (ground-truth
masks, over white) at the preset's training size, trained on ``train_all`` and scored on
``test_all``. For reference, the thesis' budgets on an RTX 3090 (Tab. 3.2, 1,000 training
frames): Instant-NGP ~1 min per scene (36.99 dB), DVGO ~15 min at half resolution (38.52 dB).

Standalone: ``.venv/bin/python bench/nerf_bench.py --steps 600``; in ``bench/run.py`` as the
``nerf`` section.
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

THESIS = {"instant-ngp": {"minutes": 1, "psnr": 36.99}, "dvgo": {"minutes": 15, "psnr": 38.52}}


def make_scene(folder: Path) -> Path:
    """A synthetic capture, scanned and exported object-only (its ground-truth masks)."""
    from nrtool.cli.main import invoke

    capture = folder / "cap"
    assert invoke(["-q", "synth", "capture", "--out", str(capture), "--size", "320x240", "--steps", "4",
                   "--frames-per-turn", "30", "--turns", "1", "--descent-frames", "2"]) == 0
    truth = json.loads((capture / "ground_truth.json").read_text())
    options = [o.replace("intrinsics.yml", str(capture / "intrinsics.yml")) for o in truth["scan_options"]]
    assert invoke(["-q", "scan", str(capture / "images"), "--out", str(folder / "scan.h5"), *options,
                   "--splits", "60,20,20", "--train-subsets", "40,20"]) == 0
    assert invoke(["-q", "export", "nerf", str(folder / "scan.h5"), "--out", str(folder / "dataset"), "--masks",
                   str(capture / "masks")]) == 0
    return folder / "dataset"


def run(steps: int, say: Callable[[str], None] = print, device: str = "cpu", work: Path | None = None,
        preset: str = "tiny") -> dict[str, Any]:
    import torch

    from nrtool.nerf.boxes import box_from_cameras
    from nrtool.nerf.config import preset as nerf_preset
    from nrtool.nerf.evaluate import evaluate
    from nrtool.nerf.train import train_nerf
    from nrtool.nerf.views import load_views

    torch_device = torch.device(device)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        dataset = make_scene(Path(tmp))
        base = nerf_preset(preset).with_overrides(steps=steps)
        train = load_views(dataset, "train_all", base.max_side)
        test = load_views(dataset, "test_all", base.max_side)
        box = box_from_cameras(train)
        rows = {}
        for name, config in (("skipping", base), ("no skipping", base.with_overrides(occupancy_threshold=0.0))):
            started = time.perf_counter()
            nerf, run_ = train_nerf(train, config, None, box, torch_device, held_out=test)
            seconds = time.perf_counter() - started
            scores = evaluate(nerf, test, torch_device)["results"]
            curve = [(h["epoch"] * 100, h.get("val_psnr")) for h in run_.history]
            rows[name] = {"train_s": seconds, "train_rays_per_s": steps * config.rays / seconds,
                          "render_rays_per_s": scores["num_rays_per_sec"], "test_psnr": scores["psnr"],
                          "test_ssim": scores["ssim"], "psnr_per_100_steps": curve,
                          "samples_per_ray": run_.history[-1]["samples_per_ray"]}
            say(f"  {name:12s} train {seconds:6.1f} s ({rows[name]['train_rays_per_s']:8.0f} rays/s, "
                f"{rows[name]['samples_per_ray']:.1f} samples/ray), render {scores['num_rays_per_sec']:8.0f} rays/s, "
                f"test PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.4f}")
        a, b = rows["skipping"], rows["no skipping"]
        ratios = {"train": a["train_rays_per_s"] / b["train_rays_per_s"],
                  "render": a["render_rays_per_s"] / b["render_rays_per_s"]}
        say(f"  empty-space skipping: training {ratios['train']:.2f}x, rendering {ratios['render']:.2f}x faster")
        minutes = a["train_s"] / 60
        say(f"  {preset}: {a['test_psnr']:.2f} dB after {minutes:.1f} min on {device} ({len(train)} frames at "
            f"{train.size[0]}x{train.size[1]}); thesis on an RTX 3090 with 1,000 frames: Instant-NGP "
            f"{THESIS['instant-ngp']['psnr']} dB in ~1 min, DVGO {THESIS['dvgo']['psnr']} dB in ~15 min")
    return {"preset": preset, "steps": steps, "device": device, "frames": len(train), "size": list(train.size),
            "runs": rows, "skipping_speedup": ratios, "thesis": THESIS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    def say(line: str) -> None:
        print(line, file=sys.stderr)  # stdout carries the JSON alone

    print(json.dumps(run(args.steps, say=say, device=args.device, preset=args.preset), indent=2))


if __name__ == "__main__":
    main()
