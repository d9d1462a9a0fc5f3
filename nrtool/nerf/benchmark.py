"""``nrtool nerf benchmark``: ScanNeRF's two experiments on one capture (thesis Sec. 3.4).

* **Training size** (Tab. 3.2): train on the evenly distributed training splits (``train_all``
  and its subsets ``train_all_500``, ``train_all_250``, ``train_all_100``, named by their actual
  size), test each on ``test_all``.
* **Octants** (Tab. 3.3): train on each densely localised sub-split ``train_i`` and test on every
  ``test_j``: an 8 x 8 PSNR matrix.

ScanNeRF publishes the Train and Val splits only (Test stays private for its leaderboard): with
``test="val"`` the scores are on ``val_all`` and ``val_j`` instead.

Every model is kept in ``OUT/models/SPLIT.pt`` and every score in ``OUT/models/scores.json``
(tied to the model file it came from): a rerun skips the trainings and renderings already done
(an interrupted or time-limited training resumes), so the benchmark can be stopped and
continued. Results go to ``OUT/results.json``, ``OUT/table.md`` and ``OUT/octants.png``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nrtool.errors import InputFileError, NrtoolError
from nrtool.nerf.boxes import scene_box
from nrtool.nerf.config import NerfConfig


def benchmark_splits(names: list[str], test: str = "test") -> tuple[list[str], list[str], list[str]]:
    """(training-size splits, largest first; train octants; ``test`` octants) among ``names``."""
    sizes = [n for n in names if n == "train_all" or re.fullmatch(r"train_all_\d+", n)]
    sizes.sort(key=lambda n: float("-inf") if n == "train_all" else -int(n.rsplit("_", 1)[1]))
    octant = sorted((n for n in names if re.fullmatch(r"train_\d", n)), key=lambda n: int(n[-1]))
    tests = sorted((n for n in names if re.fullmatch(rf"{test}_\d", n)), key=lambda n: int(n[-1]))
    return sizes[:4], octant, tests


def run_benchmark(source: str | os.PathLike[str], out: str | os.PathLike[str], config: NerfConfig,
                  device: torch.device | str = "cpu", progress: Any = None, masks: str | os.PathLike[str] | None = None,
                  images: str | os.PathLike[str] | None = None, octants: bool = True, time_limit: float | None = None,
                  box: tuple[np.ndarray, np.ndarray] | None = None, test: str = "test") -> dict[str, Any]:
    """Run both experiments (the octants with ``octants``), scored on the ``test`` (or ``val``)
    splits, and write the results (see the module)."""
    from nrtool.artifacts.core import atomic_write_bytes, output_lock
    from nrtool.nerf.evaluate import evaluate
    from nrtool.nerf.train import finished_nerf, train_nerf
    from nrtool.nerf.views import available_splits, load_views
    from nrtool.progress import SilentProgress

    progress = progress or SilentProgress()
    source, out = Path(source), Path(out)
    names = available_splits(source)
    if test not in ("test", "val"):
        raise NrtoolError(f"--test must be test or val, got {test!r}")
    test_all = f"{test}_all"
    sizes, train_octants, test_octants = benchmark_splits(names, test)
    if not sizes:
        raise InputFileError(source, f"has no evenly distributed training split (train_all...); it has: {', '.join(names)}")
    if test_all not in names:
        hint = " (ScanNeRF's published data have none: score on val with --test val)" if test == "test" else ""
        raise InputFileError(source, f"has no {test_all} split{hint}")
    (out / "models").mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    loaded: dict[str, Any] = {}

    def frames(split: str) -> Any:
        if split not in loaded:
            loaded[split] = load_views(source, split, config.max_side, images=images, masks=masks)
        return loaded[split]

    scene = box if box is not None else scene_box(source, frames(sizes[0]))
    timings: dict[str, float] = {}

    scores_file = out / "models" / "scores.json"
    scores = _read_scores(scores_file)

    def model_for(split: str) -> Any:
        path = out / "models" / f"{split}.pt"
        nerf = finished_nerf(path, config, frames(split), scene, device)
        if nerf is None:
            started = time.perf_counter()
            nerf, _ = train_nerf(frames(split), config, path, scene, device, progress, time_limit=time_limit)
            timings[split] = time.perf_counter() - started
        return nerf

    def psnr(nerf: Any, train: str, scored: str) -> float:
        key, stamp = f"{train} -> {scored}", _stamp(out / "models" / f"{train}.pt")
        if scores.get(key, {}).get("model") != stamp:
            value = float(evaluate(nerf, frames(scored), device, progress)["results"]["psnr"])
            scores[key] = {"psnr": value, "model": stamp}
            atomic_write_bytes(scores_file, (json.dumps(scores, indent=1) + "\n").encode())
        return float(scores[key]["psnr"])

    with output_lock(out / "results.json"):
        size_rows = []
        for split in sizes:
            nerf = model_for(split)
            size_rows.append({"train": split, "frames": len(frames(split)), "test_psnr": psnr(nerf, split, test_all),
                              "train_s": timings.get(split)})
        matrix = None
        if octants and train_octants and test_octants:
            matrix = np.full((len(train_octants), len(test_octants)), np.nan)
            for i, split in enumerate(train_octants):
                nerf = model_for(split)
                for j, test_octant in enumerate(test_octants):
                    matrix[i, j] = psnr(nerf, split, test_octant)
        results = {"source": str(source), "preset": config.preset, "config": config.to_dict(),
                   "box": [np.asarray(scene[0]).tolist(), np.asarray(scene[1]).tolist()],
                   "device": str(device), "test": test_all, "training_sizes": size_rows,
                   "octants": None if matrix is None else {"train": train_octants, "test": test_octants,
                                                          "psnr": matrix.tolist()},
                   "train_seconds": timings}
        atomic_write_bytes(out / "table.md", table_markdown(results).encode())
        if matrix is not None:
            octant_heatmap(matrix, train_octants, test_octants, out / "octants.png", config.preset)
        atomic_write_bytes(out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    return results


def _stamp(model: Path) -> str:
    """What ties a score to the model file it was measured on (size and modification time)."""
    info = model.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def _read_scores(path: Path) -> dict[str, Any]:
    """The cached scores (nothing when absent or unreadable: they are measured again)."""
    try:
        scores = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return scores if isinstance(scores, dict) else {}


def table_markdown(results: dict[str, Any]) -> str:
    rows = results["training_sizes"]
    lines = [f"# NeRF benchmark ({results['preset']}), {results['source']}", "",
             f"| training split | frames | {results.get('test', 'test_all')} PSNR (dB) |", "|---|---|---|"]
    lines += [f"| {r['train']} | {r['frames']} | {r['test_psnr']:.2f} |" for r in rows]
    octants = results.get("octants")
    if octants:
        lines += ["", "PSNR (dB), rows: training sub-split, columns: test sub-split", "",
                  "| train \\ test | " + " | ".join(t.rsplit("_", 1)[1] for t in octants["test"]) + " |",
                  "|---|" + "---|" * len(octants["test"])]
        for name, row in zip(octants["train"], octants["psnr"]):
            lines.append(f"| {name.rsplit('_', 1)[1]} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def octant_heatmap(matrix: np.ndarray, train: list[str], test: list[str], png: str | os.PathLike[str], preset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nrtool.figures import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(test)), [t.rsplit("_", 1)[1] for t in test])
    ax.set_yticks(range(len(train)), [t.rsplit("_", 1)[1] for t in train])
    ax.set_xlabel("test sub-split")
    ax.set_ylabel("training sub-split")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]:.1f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(image, ax=ax, label="PSNR (dB)")
    ax.set_title(f"densely localised splits ({preset})")
    fig.tight_layout()
    save_figure(fig, png)
