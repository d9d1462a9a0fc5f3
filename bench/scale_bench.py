"""Benchmark of ``fit-inr --backend ray``: INR/s in this process vs as Ray tasks on 1 and 2 workers.

One run, one machine, the same inputs and settings for every row: procedural meshes, the
``tiny`` preset (``--steps`` of it in ``--quick``), batches of ``--batch`` INRs (each a Ray task).
The local row uses torch's threads over all cores; each Ray task reserves one CPU (Ray then gives
it one thread), so "2 workers" runs two batches at a time. Ray's start-up is timed on its own
and left out of the rates (a cluster is started once for many runs); the INRs of every row are
checked equal to the local ones.

Standalone: ``.venv/bin/python bench/scale_bench.py``; in ``bench/run.py`` as ``scale``.
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _fit(shapes: Path, out: Path, steps: int, batch: int, backend: Any) -> tuple[float, dict[str, np.ndarray]]:
    from nrtool.artifacts.inrs import load_inrs
    from nrtool.inr.config import preset
    from nrtool.inr.pipeline import fit_inrs

    config = preset("tiny").with_overrides(steps=steps, batch=batch)
    started = time.perf_counter()
    fit_inrs([str(shapes)], out, config, device="cpu", backend=backend)
    seconds = time.perf_counter() - started
    return seconds, {item.name: item.params for item in load_inrs(out)[1]}


def run(quick: bool = False, say: Callable[[str], None] = print, shapes: int | None = None) -> dict[str, Any]:
    from nrtool.backends import BackendSettings, import_ray
    from nrtool.cli.main import invoke

    ray = import_ray()
    count = shapes or (8 if quick else 16)
    steps, batch = (100, 2) if quick else (300, 2)
    results: dict[str, Any] = {"shapes": count, "steps": steps, "batch": batch, "rows": []}
    with tempfile.TemporaryDirectory(prefix="nrbench-") as tmp:
        folder = Path(tmp)
        invoke(["synth", "shapes", "--out", str(folder / "shapes"), "--classes", "2", "--per-class", str(count // 2),
                "--seed", "0", "--quiet"])
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_TMPDIR", str(folder / "ray"))
        (folder / "ray").mkdir(exist_ok=True)
        seconds, reference = _fit(folder / "shapes", folder / "local.h5", steps, batch, BackendSettings())
        rows = [{"backend": "local (torch threads: all cores)", "seconds": seconds, "inr_per_s": count / seconds,
                 "max_param_difference": 0.0}]
        say(f"  local: {count} INRs in {seconds:.1f} s = {count / seconds:.2f} INR/s")
        for workers in (1, 2):
            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
            startup = time.perf_counter() - started
            try:
                seconds, params = _fit(folder / "shapes", folder / f"ray{workers}.h5", steps, batch,
                                       BackendSettings(backend="ray"))
            finally:
                ray.shutdown()
            difference = max(float(np.abs(params[name] - reference[name]).max()) for name in reference)
            rows.append({"backend": f"ray, {workers} worker(s) x 1 CPU", "seconds": seconds,
                         "inr_per_s": count / seconds, "startup_s": startup, "max_param_difference": difference})
            say(f"  ray {workers} worker(s): {count} INRs in {seconds:.1f} s = {count / seconds:.2f} INR/s "
                f"({seconds and rows[0]['seconds'] / seconds:.2f}x local; Ray start-up {startup:.1f} s not counted; "
                f"largest parameter difference to local {difference:.1e})")
        results["rows"] = rows
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shapes", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = run(args.quick, shapes=args.shapes)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
