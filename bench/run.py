"""nrtool benchmarks: every number is measured side by side, in one run, on one machine.

Sections (``--only`` picks some, comma-separated):

* ``batched``      fit_batch (B INRs as one stacked tensor) vs the same B INRs fitted one at a
                   time with a plain ``nn.Module`` + Adam loop: same steps, points, lr, loss.
* ``efficiency``   achieved GFLOP/s of batched fitting vs a large float32 matmul on the device.
* ``ground-truth`` seconds per shape for 500k queries: mesh -> sdf, point cloud -> udf.
* ``quality``      Chamfer / F-score of the 95 PSB test meshes through the real CLI
                   (``nrtool fit-inr`` then ``nrtool reconstruct --metrics``); slow, resumable.
* ``inr2vec``      classify one INR: inr2vec (encode + classifier) vs PointNet on points
                   reconstructed from the INR; encode throughput (``bench/inr2vec_bench.py``).
* ``scan``         frames/s of ChArUco detection + pose (``nrtool scan``) at 1440x1080 with 1 and
                   with all cores, vs the capture's 30 fps (``bench/scan_bench.py``).
* ``garment``      garment network: encoder ms/garment, decode + MeshUDF at 128^3/256^3 vs plain
                   marching cubes, held-out Chamfer per preset (``bench/garment_bench.py``).
* ``nerf``         dense-grid NeRF: training/rendering rays/s with empty-space skipping on and off,
                   PSNR per 100 steps, beside the thesis' budgets (``bench/nerf_bench.py``).
* ``fit``          ``nrtool fit-scan``: seconds per fitting step, steps to converge, errors against the
                   truth, draped vs skinning only (``bench/fit_bench.py``).
* ``netspace``     NetSpace: encoder / decoder networks/s one at a time and in batches of 8 (tiny and
                   paper sizes), a network decoded vs one trained, LSO of INRs in groups vs all at
                   once (``bench/netspace_bench.py``).
* ``segmentation`` part-segmentation decoder: a training step with the shape's code applied once
                   per shape vs concatenated at every query (same weights), points/s
                   (``bench/segmentation_bench.py``).
* ``scale``        ``fit-inr --backend ray``: INR/s in this process vs Ray tasks on 1 and 2 workers,
                   the INRs checked equal (``bench/scale_bench.py``).
* ``speedups``     the fitter's speed-ups, each on and off side by side, with the fit quality
                   beside: index draws per chunk vs per step, TF32 (CUDA), bf16 autocast,
                   ``torch.compile`` (compilation timed apart), ``--batch auto`` (CUDA).
* ``knn``          DGCNN's neighbour graph: PyTorch3D ``knn_points`` vs chunked ``cdist`` + ``topk``.

Run ``make bench`` (all sections) or e.g.
``.venv/bin/python bench/run.py --quick --only batched,efficiency --json bench-out/quick.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from nrtool.device import resolve_device
from nrtool.errors import NrtoolError
from nrtool.geometry.ground_truth import GroundTruth, compute_ground_truth
from nrtool.geometry.metrics import sample_surface
from nrtool.inr.config import PRESETS, FitConfig, QuerySpec, preset
from nrtool.inr.fields import FieldName, distance_to_label, field_loss
from nrtool.inr.fit import FINAL_LOSS_QUERIES, FitTarget, fit_batch
from nrtool.inr.siren import Siren, SirenSpec, siren_init
from nrtool.io import Shape, load_shape, save_points_ply

REPO = Path(__file__).resolve().parent.parent
PSB = REPO.parent / "shared" / "data" / "psb"
OUT = REPO / "bench-out"
NRTOOL = Path(sys.executable).parent / "nrtool"

SECTIONS = ("batched", "efficiency", "ground-truth", "quality", "inr2vec", "scan", "garment", "knn", "drape", "nerf", "fit",
            "netspace", "segmentation", "scale", "speedups")
DEFAULT_PRESETS = {
    "speedups": ("tiny", "small"),
    "batched": ("tiny", "small"),
    "efficiency": ("tiny", "small", "paper"),
    "quality": ("tiny", "small"),
}
#: Points per cloud for the udf benchmarks (ground truth and quality).
CLOUD_POINTS = 100_000
#: Size of the reference matmul (n x n @ n x n, float32).
MATMUL_N = 2048

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every section needs: options, device, and the caches shared between sections."""

    args: argparse.Namespace
    device: torch.device
    results: dict[str, Any] = field(default_factory=dict)
    _truth: dict[tuple[QuerySpec, str, int], list[GroundTruth]] = field(default_factory=dict)
    _samples: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        return bool(self.args.quick)

    def presets(self, section: str) -> list[str]:
        return list(self.args.preset) if self.args.preset else list(DEFAULT_PRESETS[section])

    def record(self, section: str, data: Any) -> None:
        """Keep a section's numbers and rewrite the --json file, so a partial run keeps them."""
        self.results[section] = data
        if self.args.json:
            path = Path(self.args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(self.results, indent=2) + "\n")
            os.replace(tmp, path)

    def truth_pool(self, queries: QuerySpec, count: int, field_name: FieldName = "sdf") -> list[GroundTruth]:
        """Ground truth of ``count`` benchmark shapes, computed once per query spec."""
        key = (queries, field_name, count)
        if key not in self._truth:
            shapes = bench_shapes(count)
            started = time.perf_counter()
            self._truth[key] = [
                compute_ground_truth(shape, field_name, queries, seed=index) for index, shape in enumerate(shapes)
            ]
            say(f"  (ground truth for {count} shapes x {queries.total} queries: {time.perf_counter() - started:.1f} s, not timed)")
        return self._truth[key]

    def samples_pool(self, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Ground truth of ``count`` items of the ``--samples`` artifact (read once, spread over it)."""
        key = ("samples", count)
        if key not in self._samples:
            from nrtool.artifacts.samples import SamplesReader

            reader = SamplesReader(self.args.samples)
            if reader.header.field != "sdf":
                raise NrtoolError(f"{self.args.samples}: the benchmarks fit sdf, this artifact holds {reader.header.field}")
            picks = np.linspace(0, len(reader) - 1, min(count, len(reader))).round().astype(int)
            self._samples[key] = [reader.truth(int(i)) for i in picks]
            say(f"  (ground truth of {len(picks)} shapes read from {self.args.samples}, not timed)")
        return self._samples[key]

    def targets(self, config: FitConfig, batch: int) -> list[FitTarget]:
        """``batch`` fitting targets cycling over the shape pool, each with its own seed."""
        count = min(self.args.shapes, batch)
        pool = (self.samples_pool(count) if self.args.samples else
                [(gt.queries, gt.values) for gt in self.truth_pool(config.queries, count)])
        return [FitTarget(q, v, seed=1000 + row) for row, (q, v) in zip(range(batch), itertools.cycle(pool))]


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(title: str) -> None:
    say()
    say(f"## {title}")
    say()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "-" if value is None else str(value)

    say("| " + " | ".join(headers) + " |")
    say("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        say("| " + " | ".join(cell(v) for v in row) + " |")


def ratio_line(label: str, fast: float, slow: float, unit: str) -> str:
    return f"{label}: {fast:.3g} {unit} vs {slow:.3g} {unit} -> {fast / slow:.2f}x"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """Run ``fn`` and return its result and wall seconds, queued device work included."""
    synchronize(device)
    started = time.perf_counter()
    value = fn()
    synchronize(device)
    return value, time.perf_counter() - started


class StepClock:
    """``on_step`` callback of a fitting loop: steady seconds per step, the first step excluded."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stamps: list[float] = []

    def __call__(self, step: int) -> None:
        synchronize(self.device)
        self.stamps.append(time.perf_counter())

    def per_step(self) -> float:
        if len(self.stamps) < 2:
            raise ValueError("StepClock needs at least 2 steps")
        return (self.stamps[-1] - self.stamps[0]) / (len(self.stamps) - 1)


def psb_test_meshes() -> list[Path]:
    return sorted(PSB.glob("*/test/*.ply"))


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items evenly spread over a sorted list (so over classes, for PSB)."""
    if count >= len(items):
        return list(items)
    return [items[round(i * len(items) / count)] for i in range(count)]


def bench_shapes(count: int) -> list[Shape]:
    """``count`` PSB test meshes from different classes, or synthetic meshes without PSB."""
    meshes = psb_test_meshes()
    if meshes:
        return [load_shape(path) for path in spread(meshes, count)]
    from nrtool.synth.shapes import make_mesh

    say(f"  ({PSB} not found: using synthetic meshes)")
    shapes = []
    for index in range(count):
        vertices, faces = make_mesh(index, seed=0, item=0)
        shapes.append(Shape(name=f"synth_{index}", kind="mesh", path=f"<synthetic {index}>", vertices=vertices, faces=faces))
    return shapes


def point_cloud(shape: Shape, points: int = CLOUD_POINTS) -> Shape:
    """A faceless point cloud sampled from a mesh (by area), seeded by the shape's name."""
    assert shape.vertices is not None and shape.faces is not None
    cloud = sample_surface(shape.vertices, shape.faces, points, seed=zlib.crc32(shape.name.encode()))
    return Shape(name=shape.name, kind="points", path=shape.path, vertices=cloud)


def architecture(spec: SirenSpec) -> str:
    return f"{spec.in_dim}-{spec.hidden}x{spec.layers + 1}-{spec.out_dim}"


def forward_matmul_flops(spec: SirenSpec, points: int) -> int:
    """FLOPs of one INR's forward matmuls on ``points`` inputs: sum over layers of 2*M*in*out."""
    return sum(2 * points * n_in * n_out for n_out, n_in in spec.layer_shapes())


def fit_one_by_one(targets: Sequence[FitTarget], field_name: FieldName, config: FitConfig, init: torch.Tensor,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: each INR alone, as an ``nn.Module`` with its own Adam.

    Mirrors :func:`nrtool.inr.fit.fit_batch` step for step (same per-INR sampling generator,
    points, lr and loss, same final-loss evaluation), so both do the same work and should reach
    the same parameters. Returns params (B, P) and final losses (B,).
    """
    loss_kwargs = {"focal_alpha": config.focal_alpha, "focal_gamma": config.focal_gamma}
    params, finals = [], []
    for target in targets:
        model = Siren(config.spec, init.detach().cpu()).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        queries = torch.from_numpy(np.asarray(target.queries, dtype=np.float32)).to(device)
        labels = distance_to_label(field_name, torch.from_numpy(np.asarray(target.values, dtype=np.float32))).to(device)
        size = len(queries)
        generator = torch.Generator().manual_seed(target.seed)
        for _ in range(config.steps):
            index = torch.randint(size, (config.points,), generator=generator).to(device)
            loss = field_loss(field_name, model(queries[index]).unsqueeze(0), labels[index].unsqueeze(0), **loss_kwargs).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            index = torch.linspace(0, size - 1, min(FINAL_LOSS_QUERIES, size)).long().to(device)
            final = field_loss(field_name, model(queries[index]).unsqueeze(0), labels[index].unsqueeze(0), **loss_kwargs)
        params.append(model.flat().detach().cpu().numpy())
        finals.append(float(final[0]))
    return np.stack(params), np.array(finals, dtype=np.float32)


def describe_machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def bench_batched(bench: Bench) -> None:
    """fit_batch vs one-at-a-time nn.Module fitting, same INRs, same work."""
    heading("batched: fit_batch (B INRs at once) vs one INR at a time (nn.Module + Adam)")
    steps_note = "the preset's full step count" if bench.args.full_steps else (
        f"{bench.args.steps} steps per INR instead of the preset's (per-step cost is constant, so the ratio "
        "holds at full length; pass --full-steps for full runs)")
    say(f"sdf of real meshes; timed with {steps_note}; both ways include setup and the final-loss evaluation; "
        "one warm-up run each before timing.")
    say()
    rows, records, lines = [], [], []
    for name in bench.presets("batched"):
        base = preset(name)
        config = base if bench.args.full_steps else base.with_overrides(steps=bench.args.steps)
        batch = base.batch
        targets = bench.targets(config, batch)
        init = siren_init(config.spec, config.seed).to(bench.device)
        warm = config.with_overrides(steps=2)
        fit_batch(targets, "sdf", warm, init, bench.device)
        fit_one_by_one(targets[:1], "sdf", warm, init, bench.device)

        batched, t_batched = timed(lambda: fit_batch(targets, "sdf", config, init, bench.device), bench.device)
        (seq_params, seq_loss), t_seq = timed(lambda: fit_one_by_one(targets, "sdf", config, init, bench.device), bench.device)
        rate_batched, rate_seq = batch / t_batched, batch / t_seq
        full_scale = config.steps / base.steps
        param_diff = float(np.abs(batched.params - seq_params).max())
        loss_diff = float(np.abs(batched.final_loss - seq_loss).max())
        lines.append(ratio_line(f"batched vs one-by-one ({name}, B={batch})", rate_batched, rate_seq, "INR/s"))
        rows.append([name, architecture(config.spec), batch, f"{config.steps}/{base.steps}", config.points,
                     round(t_batched, 2), round(t_seq, 2), rate_batched * full_scale, rate_seq * full_scale,
                     f"{rate_batched / rate_seq:.2f}x", f"{param_diff:.1e}"])
        records.append({
            "preset": name, "architecture": architecture(config.spec), "batch": batch, "steps": config.steps,
            "preset_steps": base.steps, "points": config.points, "seconds_batched": t_batched,
            "seconds_one_by_one": t_seq, "inr_per_s_batched": rate_batched, "inr_per_s_one_by_one": rate_seq,
            "inr_per_s_batched_full_steps_est": rate_batched * full_scale,
            "inr_per_s_one_by_one_full_steps_est": rate_seq * full_scale,
            "speedup": rate_batched / rate_seq, "max_param_diff": param_diff, "max_final_loss_diff": loss_diff,
        })
        say(f"  {lines[-1]}")
    say()
    markdown_table(["preset", "arch", "B", "steps timed/preset", "points", "batched s", "one-by-one s",
                    "batched INR/s @full", "one-by-one INR/s @full", "speedup", "max |Δparam|"], rows)
    say()
    say("INR/s @full = measured INR/s scaled to the preset's step count. max |Δparam| compares the two "
        "ways' fitted parameters (same sampling and init, so they should agree up to float rounding).")
    bench.record("batched", records)


def matmul_gflops(device: torch.device, reps: int) -> float:
    """GFLOP/s of a plain float32 MATMUL_N^3 matmul (2 n^3 FLOPs each), after a warm-up."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(MATMUL_N, MATMUL_N, generator=generator).to(device)
    b = torch.randn(MATMUL_N, MATMUL_N, generator=generator).to(device)
    torch.mm(a, b)

    def run() -> None:
        for _ in range(reps):
            torch.mm(a, b)

    _, seconds = timed(run, device)
    return 2 * MATMUL_N**3 * reps / seconds / 1e9


def bench_efficiency(bench: Bench) -> None:
    """Achieved GFLOP/s of batched fitting relative to the device's matmul GFLOP/s."""
    heading("efficiency: batched fitting GFLOP/s vs plain matmul GFLOP/s")
    reps = 50 if bench.device.type == "cuda" else (3 if bench.quick else 8)
    peak = matmul_gflops(bench.device, reps)
    say(f"reference: float32 {MATMUL_N}x{MATMUL_N} @ {MATMUL_N}x{MATMUL_N}, {reps} reps: {peak:.1f} GFLOP/s")
    say("fitting FLOPs per step = 3 x B x sum_layers 2*M*in*out  (forward matmuls 2*M*in*out per layer per "
        "INR, backward ~2x forward; sin, bias, loss and Adam ignored); seconds per step are steady-state "
        "(first step of each run excluded).")
    say()
    rows, records, lines = [], [], []
    for name in bench.presets("efficiency"):
        base = preset(name)
        is_paper = name == "paper"
        steps = bench.args.paper_steps if is_paper else bench.args.steps
        points = (bench.args.paper_points or base.points) if is_paper else base.points
        config = base.with_overrides(steps=max(2, steps), points=points)
        targets = bench.targets(config, base.batch)
        init = siren_init(config.spec, config.seed).to(bench.device)
        clock = StepClock(bench.device)
        fit_batch(targets, "sdf", config, init, bench.device, on_step=clock)
        per_step = clock.per_step()
        flops = 3 * base.batch * forward_matmul_flops(config.spec, config.points)
        achieved = flops / per_step / 1e9
        lines.append(ratio_line(f"fitting vs matmul ({name}, B={base.batch}, M={config.points})", achieved, peak, "GFLOP/s"))
        rows.append([name, architecture(config.spec), base.batch, config.points, config.steps, flops / 1e9,
                     round(per_step, 4), achieved, peak, f"{achieved / peak:.1%}"])
        records.append({
            "preset": name, "architecture": architecture(config.spec), "batch": base.batch, "points": config.points,
            "steps": config.steps, "gflop_per_step": flops / 1e9, "seconds_per_step": per_step,
            "gflops_fit": achieved, "gflops_matmul": peak, "ratio": achieved / peak,
        })
        say(f"  {lines[-1]}")
    say()
    markdown_table(["preset", "arch", "B", "points M", "steps", "GFLOP/step", "s/step", "fit GFLOP/s",
                    "matmul GFLOP/s", "fit/matmul"], rows)
    if any(r["preset"] == "paper" and r["points"] != preset("paper").points for r in records):
        say()
        say("paper ran with fewer points per step than the preset (--paper-points) to stay short on this device.")
    bench.record("efficiency", {"matmul_gflops": peak, "matmul_n": MATMUL_N, "rows": records})


def bench_ground_truth(bench: Bench) -> None:
    """Seconds per shape of the paper's 500k-query ground truth, for sdf of meshes and udf of clouds."""
    heading("ground-truth: 500k queries per shape (paper QuerySpec)")
    queries = QuerySpec()
    count = 1 if bench.quick else bench.args.gt_shapes
    shapes = bench_shapes(count)
    clouds = [point_cloud(shape) for shape in shapes]
    say(f"{count} shape(s); mesh -> sdf (Open3D ray casting), {CLOUD_POINTS // 1000}k-point cloud -> udf "
        "(KD-tree). Both run on the CPU whatever --device says; one small warm-up call each before timing.")
    say()
    cases: list[tuple[str, FieldName, list[Shape]]] = [("mesh -> sdf", "sdf", shapes), ("point cloud -> udf", "udf", clouds)]
    rows, records = [], []
    for label, field_name, inputs in cases:
        compute_ground_truth(inputs[0], field_name, queries.scaled(0.01), seed=0)
        seconds = [time.perf_counter()]
        for index, shape in enumerate(inputs):
            compute_ground_truth(shape, field_name, queries, seed=index)
            seconds.append(time.perf_counter())
        per_shape = (seconds[-1] - seconds[0]) / len(inputs)
        rows.append([label, len(inputs), queries.total, round(per_shape, 3), f"{queries.total / per_shape:,.0f}"])
        records.append({"case": label, "field": field_name, "shapes": len(inputs), "queries": queries.total,
                        "seconds_per_shape": per_shape, "queries_per_s": queries.total / per_shape})
        say(f"  {label}: {per_shape:.2f} s/shape, {queries.total / per_shape:,.0f} queries/s")
    say()
    markdown_table(["case", "shapes", "queries/shape", "s/shape", "queries/s"], rows)
    bench.record("ground-truth", records)


def run_cli(argv: list[str], stdout_file: Path, label: str, progress: Callable[[], str] | None = None,
            every: float = 30.0) -> dict[str, Any]:
    """Run ``nrtool ARGV`` (quiet, JSON on stdout), printing a progress line every ``every`` s."""
    command = [str(NRTOOL), "--quiet", *argv, "--json"]
    started = time.perf_counter()
    with stdout_file.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, cwd=REPO)
        last = started
        while proc.poll() is None:
            time.sleep(1.0)
            if progress is not None and time.perf_counter() - last >= every:
                last = time.perf_counter()
                say(f"    {label}: {progress()} ({last - started:.0f} s)")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {proc.returncode}")
    return json.loads(stdout_file.read_text())


def parts_done(artifact: Path) -> int:
    """INRs already saved in ``ARTIFACT.parts/`` by a fit-inr run in progress."""
    done = 0
    for path in artifact.with_name(artifact.name + ".parts").glob("batch-*.npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                done += len(data["names"])
        except (OSError, ValueError, KeyError):
            pass
    return done


def fresh_files(folder: Path, since: float) -> int:
    """Files in ``folder`` written after ``since`` (a time.time() value)."""
    return sum(1 for p in folder.glob("*") if p.is_file() and p.stat().st_mtime >= since)


def stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_mtime_ns, stat.st_size]


def quality_inputs(field_name: FieldName, meshes: Sequence[Path], work: Path, tag: str) -> Path:
    """The list file for fit-inr: the meshes (sdf), or one 100k-point cloud per mesh (udf).

    Clouds are sampled once and kept in ``work/points/CLASS/NAME.ply``, so reruns reuse them.
    """
    if field_name == "sdf":
        paths = list(meshes)
    else:
        paths = []
        for mesh in meshes:
            path = work / "points" / mesh.parent.parent.name / mesh.name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                save_points_ply(path, point_cloud(load_shape(mesh)).vertices)
            paths.append(path)
    listing = work / f"psb_{field_name}{tag}.txt"
    listing.write_text("".join(f"{p.resolve()}\n" for p in paths))
    return listing


def quality_run(bench: Bench, name: str, field_name: FieldName, listing: Path, count: int, work: Path,
                tag: str) -> dict[str, Any]:
    """fit-inr then reconstruct --metrics for one preset and field, reusing finished artifacts.

    ``ARTIFACT.bench.json`` keeps fit seconds (of the last run that fitted something) and the
    metrics, the latter valid while the artifact is unchanged.
    """
    artifact = OUT / f"psb_{field_name}_{name}{tag}.h5"
    sidecar = artifact.with_name(artifact.name + ".bench.json")
    info: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    label = f"{field_name}/{name}"
    device = ["--device", bench.args.device]

    say(f"  {label}: fit-inr -> {artifact.relative_to(REPO)}")
    report = run_cli(["fit-inr", str(listing), "--out", str(artifact), "--preset", name, "--field", field_name, *device],
                     work / f"fit_{field_name}_{name}{tag}.json", label,
                     progress=lambda: f"{parts_done(artifact)}/{count} INRs fitted")
    if report["fitted"] > 0:
        info.update(fit_seconds=report["seconds"], fit_count=report["fitted"])
    say(f"  {label}: {report['total']} INRs ({report['fitted']} fitted now, {report['skipped']} reused)")

    if info.get("metrics_for") != stamp(artifact):
        recon = work / f"recon_{field_name}_{name}{tag}"
        since = time.time() - 1.0
        say(f"  {label}: reconstruct --metrics -> {recon.relative_to(REPO)}")
        summary = run_cli(["reconstruct", str(artifact), "--out", str(recon), "--metrics", *device],
                          work / f"recon_{field_name}_{name}{tag}.json", label,
                          progress=lambda: f"{fresh_files(recon, since)}/{count} reconstructed")
        info.update(metrics={k: summary.get(k) for k in ("items", "chamfer_mean", "fscore_mean", "failed")},
                    metrics_for=stamp(artifact))
    else:
        say(f"  {label}: metrics reused (artifact unchanged)")
    sidecar.write_text(json.dumps(info, indent=1) + "\n")
    metrics = info["metrics"]
    seconds = info["fit_seconds"] / info["fit_count"] if info.get("fit_count") else None
    return {"preset": name, "field": field_name, "inrs": metrics["items"], "fit_s_per_inr": seconds,
            "chamfer": metrics.get("chamfer_mean"), "fscore": metrics.get("fscore_mean"),
            "failed": metrics.get("failed", []), "artifact": str(artifact.relative_to(REPO))}


def bench_quality(bench: Bench) -> None:
    """Reconstruction quality of the PSB test meshes, sdf and udf, through the real CLI."""
    heading("quality: PSB test meshes through `nrtool fit-inr` + `nrtool reconstruct --metrics`")
    meshes = psb_test_meshes()
    if not meshes:
        say(f"skipped: {PSB} not found")
        bench.record("quality", {"skipped": f"{PSB} not found"})
        return
    if bench.quick:
        meshes = spread(meshes, 5)
    tag = f"_quick{len(meshes)}" if bench.quick else ""
    work = OUT / "quality"
    work.mkdir(parents=True, exist_ok=True)
    say(f"{len(meshes)} meshes; udf from a {CLOUD_POINTS // 1000}k-point cloud per mesh (faceless .ply). "
        "Resumable: rerun to continue; finished artifacts and metrics are reused.")
    say()
    records = []
    for field_name in ("sdf", "udf"):
        listing = quality_inputs(field_name, meshes, work, tag)
        for name in bench.presets("quality"):
            try:
                records.append(quality_run(bench, name, field_name, listing, len(meshes), work, tag))
            except RuntimeError as exc:  # e.g. the artifact was fitted with other preset settings
                say(f"  {field_name}/{name}: FAILED: {exc} (nrtool's message is above; to refit with the current preset, move the artifact away)")
                records.append({"preset": name, "field": field_name, "inrs": None, "fit_s_per_inr": None,
                                "chamfer": None, "fscore": None, "failed": [], "error": str(exc)})
            bench.record("quality", records)
    say()
    markdown_table(["preset", "field", "INRs", "fit s/INR", "Chamfer", "F-score@0.01"],
                   [[r["preset"], r["field"], r["inrs"], r["fit_s_per_inr"], r["chamfer"], r["fscore"]] for r in records])
    say()
    say("fit s/INR = wall time of `nrtool fit-inr` (reading shapes and ground truth included) per INR it fitted; "
        "metrics in the normalised frame (shapes span ~[-1,1]^3).")
    for r in records:
        if r["failed"]:
            say(f"  {r['field']}/{r['preset']}: no surface for {len(r['failed'])} INR(s): {', '.join(r['failed'][:5])}")


def bench_inr2vec(bench: Bench) -> None:
    """inr2vec vs PointNet-on-reconstructed-points, one INR classified each way (bench/inr2vec_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import inr2vec_bench

    heading("inr2vec: classify one INR from its weights vs PointNet on points reconstructed from it")
    count = 4 if bench.quick else 16
    bench.record("inr2vec", inr2vec_bench.run(count, say=say, work=OUT, repeats=3 if bench.quick else 5))


def bench_scan(bench: Bench) -> None:
    """Frames/s of `nrtool scan` at 1440x1080 with 1 and all cores, vs 30 fps (bench/scan_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scan_bench

    frames = 24 if bench.quick else bench.args.scan_frames
    heading(f"scan: ChArUco detection + pose, {frames} frames at {scan_bench.WIDTH}x{scan_bench.HEIGHT}")
    bench.record("scan", scan_bench.run(frames, say=say, work=OUT))


def bench_nerf(bench: Bench) -> None:
    """Dense-grid NeRF rays/s, skipping on vs off, PSNR reached (bench/nerf_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import nerf_bench

    steps = 200 if bench.quick else 1500
    heading(f"nerf: dense-grid NeRF, {steps} steps, empty-space skipping on vs off")
    bench.record("nerf", nerf_bench.run(steps, say=say, device=str(bench.device), work=OUT))


def bench_garment(bench: Bench) -> None:
    """Encoder latency, decode + MeshUDF vs plain marching cubes, held-out Chamfer (bench/garment_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import garment_bench

    heading("garment: DGCNN encoder, UDF decoder + MeshUDF, held-out Chamfer per preset")
    bench.record("garment", garment_bench.run(bench.quick, train_seconds=bench.args.garment_seconds, say=say, work=OUT,
                                              device=str(bench.device),
                                              data=OUT / ("garment-data-quick" if bench.quick else "garment-data")))


def bench_knn(bench: Bench) -> None:
    """DGCNN's neighbour graph: PyTorch3D ``knn_points`` (what the encoder uses) vs the plain-torch
    chunked ``cdist`` + ``topk`` fallback, same clouds, k = 16, median of 3 runs."""
    from nrtool.garments.encoder import knn_indices, knn_indices_torch

    heading("knn: DGCNN neighbour graph, PyTorch3D knn_points vs chunked cdist + topk (k = 16, batch 4)")
    sizes = (1_024, 4_096) if bench.quick else (1_024, 4_096, 10_000)
    rows = []
    for count in sizes:
        points = torch.rand(4, count, 3, generator=torch.Generator().manual_seed(count)).to(bench.device)

        def timed(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> float:
            times = []
            for _ in range(3):
                if bench.device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
                fn(points, 16)
                if bench.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - started)
            return float(np.median(times))

        ours, plain = timed(knn_indices), timed(knn_indices_torch)
        rows.append({"points": count, "knn_points_s": ours, "cdist_topk_s": plain, "ratio": plain / ours})
        say(f"  {count:>6} points: knn_points {ours:.3f} s, cdist+topk {plain:.3f} s, {plain / ours:.2f}x")
    bench.record("knn", rows)


def bench_fit(bench: Bench) -> None:
    """``nrtool fit-scan``: seconds per step, steps to converge, draped vs skinning only (bench/fit_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fit_bench

    heading("fit: fit-scan seconds per step and steps to converge, draped vs skinning only")
    bench.record("fit", fit_bench.run(bench.quick, say=say, device=str(bench.device)))


def bench_netspace(bench: Bench) -> None:
    """NetSpace: encode/decode networks/s at batch 1 and 8, tiny and paper sizes; decoding vs training a
    network (bench/netspace_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import netspace_bench

    heading("netspace: encode / decode networks/s (batch 1 vs 8) and decoding vs training a network")
    bench.record("netspace", netspace_bench.run(bench.quick, say=say, device=str(bench.device)))


def bench_scale(bench: Bench) -> None:
    """fit-inr locally vs as Ray tasks on 1 and 2 workers (bench/scale_bench.py)."""
    sys.path.insert(0, str(REPO / "bench"))
    import scale_bench

    heading("scale: fit-inr INR/s, this process vs Ray tasks (1 and 2 workers)")
    bench.record("scale", scale_bench.run(bench.quick, say=say))


def bench_speedups(bench: Bench) -> None:
    """Each speed-up of ``fit_batch`` against the plain float32 eager run, same INRs, same run."""
    import nrtool.inr.fit as fit_module
    from nrtool.inr.fit import auto_batch_size

    heading("speedups: the fitter's speed-ups, each against float32 eager with per-step index copies")
    cuda = bench.device.type == "cuda"
    say(f"sdf of real meshes, {bench.args.steps} steps timed after a warm-up fit of 2 steps (torch.compile's "
        "compilation is that warm-up's, given apart); quality: the mean final loss (20k queries per INR) and the "
        "largest parameter difference to the plain run. TF32 and --batch auto act on CUDA only.")
    say()
    rows, records = [], []
    names = bench.presets("speedups") if bench.args.preset or not cuda else ["tiny", "small", "paper"]
    for name in names:
        base = preset(name).with_overrides(steps=bench.args.steps)
        variants: list[tuple[str, FitConfig, int]] = [("float32, index copy per step", base, 1),
                                                      ("+ index draws per 32 steps", base, fit_module.INDEX_CHUNK)]
        if cuda:
            variants.append(("+ tf32", base.with_overrides(precision="tf32"), fit_module.INDEX_CHUNK))
        variants += [("+ bf16 autocast", base.with_overrides(precision="bf16"), fit_module.INDEX_CHUNK),
                     ("+ torch.compile", base.with_overrides(compile=True), fit_module.INDEX_CHUNK)]
        if cuda:
            auto, _ = auto_batch_size(base, bench.device, 4096)
            variants.append((f"+ --batch auto ({auto})", base.with_overrides(batch=auto), fit_module.INDEX_CHUNK))
        init = siren_init(base.spec, base.seed).to(bench.device)
        plain = None
        chunk = fit_module.INDEX_CHUNK
        try:
            for label, config, index_chunk in variants:
                fit_module.INDEX_CHUNK = index_chunk
                targets = bench.targets(config, config.batch)
                _, warm = timed(lambda: fit_batch(targets, "sdf", config.with_overrides(steps=2), init, bench.device),
                                bench.device)
                result, seconds = timed(lambda: fit_batch(targets, "sdf", config, init, bench.device), bench.device)
                rate = config.batch / seconds * (config.steps / preset(name).steps)  # at the preset's steps
                plain = plain or (result, rate)
                same = len(result.params) == len(plain[0].params)
                diff = float(np.abs(result.params - plain[0].params).max()) if same else None
                rows.append([name, label, config.batch, round(warm, 1), rate, f"{rate / plain[1]:.2f}x",
                             float(result.final_loss.mean()), None if diff is None else f"{diff:.1e}"])
                records.append({"preset": name, "variant": label, "batch": config.batch, "warmup_seconds": warm,
                                "inr_per_s_full_steps_est": rate, "vs_plain": rate / plain[1],
                                "final_loss_mean": float(result.final_loss.mean()), "max_param_diff_vs_plain": diff})
                say(f"  {name} {label}: {rate:.3g} INR/s ({rate / plain[1]:.2f}x)")
        finally:
            fit_module.INDEX_CHUNK = chunk
    say()
    markdown_table(["preset", "variant", "B", "warm-up s", "INR/s @full", "vs plain", "final loss", "max |Δparam|"],
                   rows)
    say()
    say("Each row adds its speed-up to the second row (not to the rows above it). INR/s @full: measured at "
        "the timed steps, scaled to the preset's step count.")
    bench.record("speedups", records)


def bench_segmentation(bench: Bench) -> None:
    """Part-segmentation decoder: training step with the shape's code applied once per shape vs
    concatenated at every query, inference points/s (bench/segmentation_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import segmentation_bench

    heading("segmentation: decoder step, code once per shape vs concatenated per query; points/s")
    bench.record("segmentation", segmentation_bench.run(bench.quick, say=say, device=str(bench.device)))


def bench_drape(bench: Bench) -> None:
    """ms per frame of a ~5k-vertex garment with and without the per-sequence cache, training
    steps/s per preset (bench/drape_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import drape_bench

    heading("drape: ms per frame (per-sequence cache vs none) and training steps/s per preset")
    bench.record("drape", drape_bench.run(bench.quick, say=say, device=str(bench.device), work=OUT / "drape"))


SECTION_FUNCTIONS: dict[str, Callable[[Bench], None]] = {
    "batched": bench_batched,
    "efficiency": bench_efficiency,
    "ground-truth": bench_ground_truth,
    "quality": bench_quality,
    "inr2vec": bench_inr2vec,
    "scan": bench_scan,
    "nerf": bench_nerf,
    "garment": bench_garment,
    "knn": bench_knn,
    "drape": bench_drape,
    "fit": bench_fit,
    "netspace": bench_netspace,
    "segmentation": bench_segmentation,
    "scale": bench_scale,
    "speedups": bench_speedups,
}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated), got {text!r}")
        return values

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Fast smoke run: fewer steps, shapes and meshes.")
    parser.add_argument("--only", type=comma_list(SECTIONS), default=list(SECTIONS),
                        help=f"Sections to run, comma-separated: {','.join(SECTIONS)} (default: all).")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda.")
    parser.add_argument("--preset", type=comma_list(tuple(PRESETS)), default=None,
                        help="Presets for batched/efficiency/quality, comma-separated (default: tiny,small; "
                             "efficiency adds paper).")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is steadier on a busy machine).")
    parser.add_argument("--json", metavar="PATH", default=None, help="Also write every number to this JSON file.")
    parser.add_argument("--steps", type=int, default=None,
                        help="Steps per INR when timing batched/efficiency (default 50, --quick 10).")
    parser.add_argument("--full-steps", action="store_true", help="batched: time the preset's full step count.")
    parser.add_argument("--paper-steps", type=int, default=None, help="efficiency: steps for paper (default 3, --quick 2).")
    parser.add_argument("--paper-points", type=int, default=None,
                        help="efficiency: points per step for paper (default: the preset's 10k on CUDA, "
                             "1000 on CPU, 500 with --quick on CPU).")
    parser.add_argument("--shapes", type=int, default=None,
                        help="Distinct meshes behind the B INRs of batched/efficiency (default 4, --quick 2).")
    parser.add_argument("--samples", metavar="FILE", default=None,
                        help="batched/efficiency: read the ground truth from this sdf samples artifact (nrtool sample) "
                             "instead of computing it (for a machine without Open3D; only the per-step point count "
                             "affects the timings, so any preset's samples serve every preset).")
    parser.add_argument("--gt-shapes", type=int, default=3, help="ground-truth: shapes to average over (--quick: 1).")
    parser.add_argument("--scan-frames", type=int, default=120, help="scan: 1440x1080 frames to time (--quick: 24).")
    parser.add_argument("--garment-seconds", type=float, default=None,
                        help="garment: training budget per preset in seconds (default 300, --quick 45).")
    args = parser.parse_args(argv)
    args.steps = args.steps or (10 if args.quick else 50)
    args.paper_steps = args.paper_steps or (2 if args.quick else 3)
    args.shapes = args.shapes or (2 if args.quick else 4)
    if min(args.steps, args.paper_steps, args.shapes, args.gt_shapes, args.threads or 1) < 1:
        parser.error("--steps, --paper-steps, --shapes, --gt-shapes and --threads must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except NrtoolError as exc:
        sys.exit(f"bench: {exc}")
    if args.paper_points is None and device.type == "cpu":
        args.paper_points = 500 if args.quick else 1000
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the nrtool subprocesses of quality
    bench = Bench(args=args, device=device)
    OUT.mkdir(exist_ok=True)

    machine = describe_machine(device)
    say("# nrtool benchmarks" + (" (--quick)" if args.quick else ""))
    say()
    say(f"machine: {machine['cpu']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"load {machine['load_average_1min']}; python {machine['python']}, torch {machine['torch']} "
        f"({machine['torch_threads']} threads); device {machine['device']}"
        + (f" ({machine['gpu']})" if "gpu" in machine else ""))
    if machine["load_average_1min"] and machine["load_average_1min"] >= 0.5:
        hint = " (with several torch threads a busy core stalls each parallel op: try --threads 1)" if torch.get_num_threads() > 1 else ""
        say(f"warning: the machine is busy (1-min load {machine['load_average_1min']} before starting): timings are noisy{hint}")
    bench.record("machine", machine)
    bench.record("options", vars(args))

    for section in SECTIONS:
        if section in args.only:
            started = time.perf_counter()
            try:
                SECTION_FUNCTIONS[section](bench)
            except NrtoolError as exc:  # bad input (e.g. --samples): one line, non-zero exit
                sys.exit(f"bench: {section}: {exc}")
            say(f"\n({section}: {time.perf_counter() - started:.0f} s)")
    if args.json:
        say(f"\nnumbers written to {args.json}")


if __name__ == "__main__":
    main()
