"""Benchmark of classifying shapes from their INRs: inr2vec (encode + MLP on the embedding) vs
PointNet on points reconstructed from each INR (thesis Tab. C.5), side by side in one run.

Measured on real fitted INRs (``tiny`` SIRENs of PSB meshes, procedural shapes when PSB is
absent): the PointNet path must run marching cubes on each INR, so its cost depends on the
fitted fields. Network weights are freshly initialised: run time does not depend on their
values, so no trained checkpoint is needed.

* encode throughput: INRs/s of the inr2vec encoder in batches of 64, for the ``tiny`` encoder on
  the ``tiny`` INRs and for the ``paper`` encoder on ``paper``-architecture INRs (4x512 SIRENs;
  the shared init stands in for fitted ones, the cost is the same);
* latency to classify one INR, median over the INRs: inr2vec = encode + classifier;
  PointNet = marching cubes of the INR + surface sampling (2,048 and 16,384 points, the PointNet
  input and a dense cloud) + PointNet forward.

Standalone: ``.venv/bin/python bench/inr2vec_bench.py --inrs 8``; in ``bench/run.py`` as the
``inr2vec`` section.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PSB = REPO.parent / "shared" / "data" / "psb"
CLASSES = 19  # PSB's class count: the classifier heads are sized as for the PSB run


def _fitted_inrs(work: Path, count: int) -> Path:
    """``count`` tiny INRs of PSB test meshes (procedural shapes without PSB), fitted once."""
    from nrtool.inr.config import preset
    from nrtool.inr.pipeline import fit_inrs

    out = work / f"inr2vec-bench-{count}.h5"
    if out.exists():
        return out
    if PSB.is_dir():
        inputs = [str(p) for p in sorted(PSB.glob("*/test/*.ply"))[::5][:count]]
    else:
        from nrtool.synth.shapes import make_shape_dataset

        inputs = [str(p) for p in make_shape_dataset(work / "inr2vec-bench-shapes", classes=4, per_class=max(1, count // 4), seed=0)]
    fit_inrs(inputs, out, preset("tiny"), device="cpu")
    return out


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up (allocations, first-call dispatch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _encode_throughput(model: Any, params: Any, batch: int, repeats: int) -> float:
    import torch

    rows = params.repeat((batch + len(params) - 1) // len(params), 1)[:batch]
    with torch.no_grad():
        seconds = _median_seconds(lambda: model.encode(rows), repeats)
    return batch / seconds


def run(inr_count: int, say: Callable[[str], None] = print, work: Path | None = None, repeats: int = 5) -> dict[str, Any]:
    import numpy as np
    import torch

    from nrtool.artifacts.inrs import load_inrs
    from nrtool.baselines.config import preset as pointnet_preset
    from nrtool.baselines.pointnet import PointNet, cloud_from_field
    from nrtool.heads.classifier import EmbeddingClassifier
    from nrtool.heads.config import preset as classifier_preset
    from nrtool.inr.reconstruction import field_function
    from nrtool.inr.siren import SirenSpec, siren_init
    from nrtool.inr2vec.config import inr2vec_preset
    from nrtool.inr2vec.models import Inr2vec

    work = work or REPO / "bench-out"
    work.mkdir(parents=True, exist_ok=True)
    header, items = load_inrs(_fitted_inrs(work, inr_count))
    device = torch.device("cpu")
    params = torch.from_numpy(np.stack([item.params for item in items]))
    torch.manual_seed(0)
    results: dict[str, Any] = {"inrs": len(items), "threads": torch.get_num_threads()}

    # Encode throughput, tiny on the fitted INRs and paper on paper-sized ones.
    tiny_model = Inr2vec(inr2vec_preset("tiny"), header.spec).eval()
    paper_spec = SirenSpec(hidden=512, layers=4)
    paper_model = Inr2vec(inr2vec_preset("paper"), paper_spec).eval()
    paper_params = siren_init(paper_spec, 0).unsqueeze(0)
    results["encode_inrs_per_s"] = {
        "tiny": _encode_throughput(tiny_model, params, 64, repeats),
        "paper": _encode_throughput(paper_model, paper_params, 64, max(2, repeats // 2)),
    }

    # Classify one INR: inr2vec.
    clf_config = classifier_preset("tiny")
    classifier = EmbeddingClassifier(tiny_model.config.embedding_dim, CLASSES, clf_config.hidden).eval()
    with torch.no_grad():
        inr2vec_seconds = [
            _median_seconds(lambda row=row: classifier(tiny_model.encode(params[row : row + 1])), repeats)
            for row in range(len(items))
        ]
    results["inr2vec_ms_per_inr"] = 1e3 * statistics.median(inr2vec_seconds)

    # Classify one INR: PointNet on reconstructed points, at the tiny preset's grid (what the PSB
    # run used) and at the paper preset's 128^3.
    pn_config = pointnet_preset("tiny")
    pointnet = PointNet(CLASSES, pn_config.widths, pn_config.head).eval()
    cases = [(pn_config.resolution, 2048), (pn_config.resolution, 16384), (pointnet_preset("paper").resolution, 2048)]
    results["pointnet_ms_per_inr"] = {}
    for resolution, n_points in cases:
        per_item = []
        for row, item in enumerate(items):
            field_fn = field_function(header, item.params, device)

            def classify_once(field_fn: Any = field_fn, row: int = row, resolution: int = resolution,
                              n_points: int = n_points) -> None:
                cloud = cloud_from_field(header.field, field_fn, n_points, resolution, device, seed=row)
                if cloud is not None:
                    with torch.no_grad():
                        pointnet(torch.from_numpy(cloud).unsqueeze(0))

            per_item.append(_median_seconds(classify_once, max(1, repeats // 2)))
        results["pointnet_ms_per_inr"][f"{resolution}^3, {n_points} points"] = 1e3 * statistics.median(per_item)

    say(f"{len(items)} tiny INRs ({header.field}), CPU, {results['threads']} threads; median of {repeats} runs per INR")
    say("")
    say("| path | ms per INR | vs inr2vec |")
    say("|---|---|---|")
    base = results["inr2vec_ms_per_inr"]
    say(f"| inr2vec: encode + classifier | {base:.2f} | 1.0x |")
    for case, ms in results["pointnet_ms_per_inr"].items():
        say(f"| PointNet (tiny): marching cubes {case} + PointNet | {ms:.2f} | {ms / base:.1f}x |")
    say("")
    say(f"encode throughput (batches of 64): tiny {results['encode_inrs_per_s']['tiny']:.0f} INRs/s, "
        f"paper (4x512 INRs, 1024-d) {results['encode_inrs_per_s']['paper']:.0f} INRs/s")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inrs", type=int, default=8, help="Fitted INRs to time (default 8).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = run(args.inrs, repeats=args.repeats)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
