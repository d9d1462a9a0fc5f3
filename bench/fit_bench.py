"""Benchmark of ``nrtool fit-scan``: seconds per fitting step and steps to converge.

One run, one machine: a synthetic labelled scan of the shipped tiny models' clothed body
(``nrtool synth scan``), fitted with the draping network and without it (skinning only, the
baseline). Reported: seconds per step of each stage (body alone; body + garment, which
re-meshes every ``remesh_every`` steps: the re-meshing's share is given), the number of steps
after which the loss stays within 1 % of its final value, and the errors against the truth.
Standalone: ``.venv/bin/python bench/fit_bench.py``; in ``bench/run.py`` as the ``fit`` section.
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


def _converged_at(history: list[dict[str, float]], steps_per_epoch: int) -> int:
    """Steps after which every later epoch's mean loss is within 1 % of the last epoch's."""
    last = history[-1]["loss"]
    for i, record in enumerate(history):
        if all(abs(h["loss"] - last) <= 0.01 * abs(last) for h in history[i:]):
            return i * steps_per_epoch
    return len(history) * steps_per_epoch


def run(quick: bool = False, say: Any = print, device: str = "cpu", work: Path | None = None) -> dict[str, Any]:
    import numpy as np
    import torch

    from nrtool.drape.fit_config import FIT_PRESETS
    from nrtool.drape.fit_outputs import build_clothed
    from nrtool.drape.fitting import (
        FitParameters,
        ScanObjective,
        initial_translation,
        rest_fitting_pose,
        run_fit,
    )
    from nrtool.drape.outputs import load_body_for, load_models
    from nrtool.drape.synthetic_scan import PART_IDS, dress_truth, sample_labelled_scan
    from nrtool.geometry.metrics import chamfer_distance, sample_surface

    models_dir = REPO / "examples" / "models"
    dev = torch.device(device)
    models = load_models([models_dir / "drape-top.pt"], dev)
    body, _, skinning, _ = load_body_for(models, models_dir / "body.npz", dev)
    from nrtool.body.amass import load_motion

    motion = load_motion(models_dir / "walk.npz", y_up=True, rest_joints=body.rest_joints())
    betas = np.zeros(10)
    betas[:3] = [1.0, -0.8, 0.6]
    truth = dress_truth(models, body, {"top": np.load(models_dir / "top-z.npy").reshape(-1)}, betas,
                        motion.poses[15], motion.trans[15], None, dev)
    points, labels = sample_labelled_scan(truth, 20_000, seed=0)
    parts = {p: points[labels == i] for p, i in PART_IDS.items() if np.any(labels == i)}
    steps = 60 if quick else 200
    result: dict[str, Any] = {"device": str(dev), "steps_per_stage": steps, "scan_points": {k: len(v) for k, v in parts.items()}}
    for name, drape in (("draped", True), ("skinning only", False)):
        settings = FIT_PRESETS["tiny"].with_overrides(body_steps=steps, garment_steps=steps, drape=drape)
        clothed, codes = build_clothed(models, body, skinning, settings, dev)
        pose = rest_fitting_pose()
        params = FitParameters(np.zeros(10), pose, initial_translation(body, np.zeros(10), pose, points), codes)
        objective = ScanObjective(parts, settings, dev)
        started = time.perf_counter()
        outcome = run_fit(clothed, params, objective, settings, dev)
        seconds = time.perf_counter() - started
        body_history = [h for h in outcome.history if h["stage"] == 0.0]
        garment_history = [h for h in outcome.history if h["stage"] == 1.0]
        # Re-meshing cost: time one MeshUDF decode of the fitted code.
        chain = clothed.chains["top"]
        began = time.perf_counter()
        chain.remesh(torch.as_tensor(outcome.params["codes"]["top"], dtype=torch.float32))
        remesh_s = time.perf_counter() - began
        top = chamfer_distance(sample_surface(outcome.garments["top"], outcome.faces["top"], 20_000, 0),
                               sample_surface(truth.garments["top"], truth.faces["top"], 20_000, 1))
        row = {
            "seconds": seconds, "seconds_per_step": seconds / (2 * steps), "remesh_seconds": remesh_s,
            "remeshes": outcome.remeshes,
            "body_stage_converged_at": _converged_at(body_history, settings.steps_per_epoch),
            "garment_stage_converged_at": _converged_at(garment_history, settings.steps_per_epoch),
            "top_to_truth_mm": 1000 * top,
            "joints_mm": 1000 * float(np.linalg.norm(outcome.joints - truth.joints, axis=1).mean()),
            **outcome.metrics,
        }
        result[name] = row
        say(f"  {name:14s} {row['seconds_per_step'] * 1000:6.1f} ms/step ({outcome.remeshes} re-meshings of "
            f"{remesh_s:.2f} s), converged after {row['body_stage_converged_at']} + {row['garment_stage_converged_at']} "
            f"steps; top {row['top_to_truth_mm']:.2f} mm from the truth, joints {row['joints_mm']:.2f} mm")
    ratio = result["skinning only"]["top_to_truth_mm"] / result["draped"]["top_to_truth_mm"]
    result["baseline_over_draped_error"] = ratio
    say(f"  garment error, skinning-only baseline / draped: {ratio:.2f}x")
    result["image"] = _image_fit(truth, models, body, skinning, steps, dev, say)
    return result


def _image_fit(truth: Any, models: dict[str, Any], body: Any, skinning: dict[str, Any], steps: int, dev: Any,
               say: Any) -> dict[str, Any]:
    """``fit-image``'s optimisation on the same clothed body seen from the front (240x320 masks,
    silhouettes compared at 48x64), from the true pose disturbed by 0.08 rad per joint angle."""
    import numpy as np
    import torch

    from nrtool.drape.fit_config import FIT_PRESETS
    from nrtool.drape.fit_outputs import build_clothed
    from nrtool.drape.fitting import FitParameters, final_state, run_fit
    from nrtool.drape.image_fit import MASK_LABELS, ImageObjective, SilhouetteRenderer
    from nrtool.drape.synthetic_scan import front_camera

    camera = front_camera(truth, 240, 320)
    parts = [("body", truth.body_vertices, truth.body_faces)] + [(c, truth.garments[c], truth.faces[c]) for c in truth.garments]
    labels = SilhouetteRenderer(camera, torch.device("cpu"), soft=False).label_image(
        [(n, torch.as_tensor(v, dtype=torch.float32), torch.as_tensor(f)) for n, v, f in parts])
    masks = {p: labels == v for p, v in MASK_LABELS.items() if np.any(labels == v)}
    rng = np.random.default_rng(0)
    pose = truth.pose.copy()
    pose[3:] += rng.normal(scale=0.08, size=69)
    settings = FIT_PRESETS["tiny"].with_overrides(body_steps=steps // 4, garment_steps=steps // 2)
    clothed, codes = build_clothed(models, body, skinning, settings, dev)
    params = FitParameters(np.zeros(10), pose, truth.trans + rng.normal(scale=0.03, size=3), codes)
    objective = ImageObjective(masks, camera, 64, dev)
    before = objective.final_metrics(final_state(clothed, params), torch.Generator())
    started = time.perf_counter()
    outcome = run_fit(clothed, params, objective, settings, dev)
    seconds = time.perf_counter() - started
    count = settings.body_steps + settings.garment_steps
    row = {"seconds_per_step": seconds / count, "before": before, "after": outcome.metrics,
           "garment_stage_converged_at": _converged_at([h for h in outcome.history if h["stage"] == 1.0],
                                                       settings.steps_per_epoch)}
    say(f"  fit-image      {1000 * row['seconds_per_step']:6.1f} ms/step at 48x64; person IoU "
        f"{before['iou_person']:.3f} -> {outcome.metrics['iou_person']:.3f}, top {before.get('iou_top', 0):.3f} -> "
        f"{outcome.metrics.get('iou_top', 0):.3f}; converged after {row['garment_stage_converged_at']} garment steps")
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, device=args.device), indent=1, default=float))
