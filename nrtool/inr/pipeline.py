"""``fit-inr`` and ``merge`` as library calls: inputs -> ground truth -> batched fits -> artifact.

The run is resumable: finished batches are kept in ``OUT.parts/`` (see
:mod:`nrtool.artifacts.inrs`), and items already in an existing ``OUT`` fitted with the same
settings are skipped, so rerunning the same command continues where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nrtool.artifacts.core import (
    check_output_file,
    holds_output_lock,
    provenance,
    sha256_file,
)
from nrtool.artifacts.inrs import (
    InrHeader,
    InrItem,
    PartsStore,
    init_digest,
    input_set_digest,
    load_inrs,
    write_inrs,
)
from nrtool.artifacts.samples import is_samples_file
from nrtool.backends import BackendSettings, run_items
from nrtool.errors import InputFileError, NrtoolError
from nrtool.geometry.ground_truth import FIELDS, FieldName
from nrtool.inr.config import FitConfig, Shard
from nrtool.progress import Progress, SilentProgress

if TYPE_CHECKING:
    import torch

    from nrtool.io import ShapeSource


#: Point clouds with fewer points than this get a note: too few to describe a surface.
SPARSE_CLOUD_POINTS = 100


@dataclass
class FitReport:
    out: str
    field: str
    total: int
    fitted: int
    skipped: int
    seconds: float
    final_loss_mean: float
    notes: list[str] = dataclass_field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _resolve_field(requested: str, kinds: list[tuple[str, str, FieldName]]) -> tuple[FieldName, list[str]]:
    """Pick the run's field from ``(path, kind, auto field)`` of every input: one field per file."""
    notes: list[str] = []
    if requested != "auto":
        if requested not in FIELDS:
            raise NrtoolError(f"--field {requested!r}: choose auto, udf, sdf or occ")
        return requested, notes  # type: ignore[return-value]
    fields = {field for _, _, field in kinds}
    if "occ" in fields and len(fields) > 1:
        voxels = next(p for p, _, field in kinds if field == "occ")
        raise NrtoolError(
            f"--field auto: inputs mix voxel grids ({voxels}, ...) with meshes/point clouds; fit them into separate files"
        )
    if fields in ({"occ"}, {"sdf"}):
        return fields.pop(), notes  # type: ignore[return-value]
    open_ones = [p for p, kind, field in kinds if kind == "mesh" and field == "udf"]
    if open_ones:
        notes.append(f"--field auto chose udf: {len(open_ones)} mesh(es) are not watertight, e.g. {open_ones[0]}")
    return "udf", notes


@holds_output_lock("out")
def fit_inrs(
    inputs: Sequence[str],
    out: str | os.PathLike[str],
    config: FitConfig,
    field_name: str = "auto",
    device: str = "auto",
    shard: Shard = Shard(),
    overwrite: bool = False,
    progress: Progress | None = None,
    command: list[str] | None = None,
    backend: BackendSettings = BackendSettings(),
    auto_batch: bool = False,
) -> FitReport:
    """Fit one SIREN per input shape into the ``inrs`` artifact ``out`` (resuming if possible).

    ``auto_batch``: choose ``config.batch`` from the device's free memory (:func:`auto_batch_size`).

    Items are identified by name *and* their source's content (SHA-256): an item already in
    ``out`` whose source changed is fitted again, and the finished batches of an interrupted
    run are reused only when they belong to these inputs. The output is locked for the run.
    """

    from nrtool.device import check_device_name, resolve_device
    from nrtool.inr.siren import siren_init

    progress = progress or SilentProgress()
    started = time.perf_counter()
    out = check_output_file(out, "--out")
    if backend.is_local:
        torch_device = resolve_device(device)  # a Ray worker resolves its own (it may have the GPU this machine lacks)
    else:
        check_device_name(device)
        if auto_batch:
            raise NrtoolError("--batch auto cannot see the Ray workers' memory; give --batch a number")
    config.validate()
    backend.validate()

    if len(inputs) == 1 and is_samples_file(inputs[0]):
        plan = _plan_from_samples(inputs[0], config, field_name, shard)
    else:
        plan = _plan_from_shapes(inputs, config, field_name, shard, progress)
    config, field_resolved, selected, notes = plan.config, plan.field, plan.selected, plan.notes
    if auto_batch:
        from nrtool.inr.fit import auto_batch_size

        batch, how = auto_batch_size(config, torch_device, len(selected))
        config = replace(config, batch=batch)
        plan = replace(plan, config=config)
        notes.append(how)

    spec = config.spec
    shared_init = siren_init(spec, config.seed)
    settings = {
        "architecture": spec.to_dict(),
        "fit": config.identity(field_resolved),
        "init_sha256": init_digest(shared_init.numpy()),
    }
    header = InrHeader(
        spec=spec,
        field=field_resolved,
        preset=config.preset,
        fit_config={**config.identity(field_resolved), "batch": config.batch},
        shared_init=shared_init.numpy(),
        input_set=plan.input_set,
    )

    existing: list[InrItem] = []
    if out.exists() and not overwrite:
        old_header, existing = load_inrs(out)
        old_settings = {
            "architecture": old_header.spec.to_dict(),
            "fit": {k: v for k, v in old_header.fit_config.items() if k != "batch"},
            "init_sha256": old_header.init_sha256,
        }
        if old_settings != settings:
            raise InputFileError(out, f"exists with other settings ({_differences(old_settings, settings)}); "
                                 "pass --overwrite to replace it, or choose another --out")
    current = {src.name: plan.sha256[src.name] for _, src in selected}
    stale = [item.name for item in existing if _changed(item, current)]
    if stale:
        notes.append(f"{len(stale)} source(s) changed since they were fitted into {out.name}; fitting them again "
                     f"(e.g. {stale[0]})")
    parts = PartsStore(out)
    if parts.exists():
        if parts.settings() not in (None, settings) and not overwrite:
            raise InputFileError(parts.folder, "holds an unfinished run with other settings; "
                                 "pass --overwrite to discard it, or rerun with the same settings")
        if overwrite or parts.settings() is None:
            parts.remove()
        else:
            _check_parts_belong(parts, current)
    parts.start(settings)
    done = {item.name for item in existing} - set(stale)
    resumed: list[InrItem] = []
    changed_parts: list[str] = []
    for item in parts.load():
        if item.name in done:
            continue
        if _changed(item, current):
            changed_parts.append(item.name)
        else:
            resumed.append(item)
    if changed_parts:
        notes.append(f"{len(changed_parts)} source(s) changed since the interrupted run fitted them; fitting them "
                     f"again (e.g. {changed_parts[0]})")
    done |= {item.name for item in resumed}
    todo = [(pos, src) for pos, src in selected if src.name not in done]
    if resumed:
        notes.append(f"resumed {len(resumed)} INR(s) from an interrupted run")

    batches = [todo[first : first + config.batch] for first in range(0, len(todo), config.batch)]
    work = _FitWork(plan, shared_init.numpy(), device, str(out))
    try:
        with progress.task(f"fitting {field_resolved} INRs ({config.preset})", len(todo), "INRs") as advance:
            for _, fitted in run_items(_fit_and_keep, work, batches, backend):
                if not parts.has_batch(fitted):
                    raise NrtoolError(f"{parts.folder}: a batch a Ray worker fitted is not there; --out must be on a "
                                      "filesystem every Ray node shares")
                resumed.extend(fitted)
                advance(len(fitted))
    except BaseException:
        # Keep finished batches for the next run; leave no empty leftovers when there are none.
        if not parts.has_batches():
            parts.remove()
        raise

    refitted = {item.name: item for item in resumed}
    # Existing items keep their place (a changed source's item is replaced where it was).
    kept = [refitted.pop(item.name, item) for item in existing]
    all_items = kept + sorted(refitted.values(), key=lambda item: item.source_index)
    n_fitted = len(todo)
    if resumed or overwrite or not out.exists():
        write_inrs(out, header, all_items, inputs=None, command=command)
    parts.remove()
    losses = [item.final_loss for item in all_items]
    return FitReport(
        out=str(out),
        field=field_resolved,
        total=len(all_items),
        fitted=n_fitted,
        skipped=len(selected) - n_fitted,
        seconds=round(time.perf_counter() - started, 3),
        final_loss_mean=float(np.mean(losses)) if losses else float("nan"),
        notes=notes,
    )


def _changed(item: InrItem, current: dict[str, str]) -> bool:
    """True when ``item`` was fitted from other content than the current source of that name.

    An item or a source without a recorded hash (older files; samples without hashes) cannot be
    compared and counts as unchanged.
    """
    now = current.get(item.name)
    return bool(now and item.source_sha256 and now != item.source_sha256)


def _check_parts_belong(parts: PartsStore, current: dict[str, str]) -> None:
    """Refuse the finished batches of an interrupted run on other inputs (naming one of them).

    Discarding them silently would lose that run's work; merging them would put another
    folder's items into this output.
    """
    foreign = [item.name for item in parts.load() if item.name not in current]
    if foreign:
        raise InputFileError(parts.folder, f"holds {len(foreign)} INR(s) of an interrupted run on other inputs "
                             f"(e.g. {foreign[0]!r}, not among these inputs); rerun that command to finish it, "
                             "or pass --overwrite to discard it")


@dataclass
class _Plan:
    """What a fit run works on: the field, the final config, the selected items and where each
    item's ground truth comes from (computed from its shape, or read from a samples file)."""

    field: FieldName
    config: FitConfig
    selected: list[tuple[int, "ShapeSource"]]  # (position in the full input list, source)
    truth_for: Callable[[int, "ShapeSource"], tuple[np.ndarray, np.ndarray, np.ndarray, float]]
    input_set: str
    notes: list[str]
    sha256: dict[str, str]  # item name -> SHA-256 of its source ("" = unknown)


def _plan_from_shapes(
    inputs: Sequence[str], config: FitConfig, field_name: str, shard: Shard, progress: Progress
) -> _Plan:
    """Discover shape files, check them all, and resolve the field."""
    from nrtool.geometry.ground_truth import (
        auto_field,
        check_field,
        compute_ground_truth,
        item_seed,
    )
    from nrtool.io import discover_inputs, load_shape

    sources = discover_inputs(inputs)
    selected = [(pos, src) for pos, src in enumerate(sources) if shard.selects(pos)]
    if not selected:
        raise NrtoolError(f"--shard {shard.index}/{shard.count} selects none of the {len(sources)} inputs")
    # Read every input once before fitting: a bad file fails now, not hours into the run.
    to_inspect = sources if field_name == "auto" else [s for _, s in selected]
    kinds: list[tuple[str, str, FieldName]] = []
    sparse: list[tuple[str, int]] = []
    wanted = {src.name for _, src in selected}
    sha256: dict[str, str] = {}
    with progress.task("reading shapes", len(to_inspect), "shapes") as advance:
        for src in to_inspect:
            shape = load_shape(src.path)
            if field_name != "auto":
                check_field(shape, field_name)  # type: ignore[arg-type]
            kinds.append((src.path, shape.kind, auto_field(shape)))
            if shape.kind == "points" and len(shape.points()) < SPARSE_CLOUD_POINTS:
                sparse.append((src.path, len(shape.points())))
            if src.name in wanted:
                sha256[src.name] = sha256_file(src.path)
            advance()
    field_resolved, notes = _resolve_field(field_name, kinds)
    if sparse:
        notes.append(f"{len(sparse)} point cloud(s) have fewer than {SPARSE_CLOUD_POINTS} points (e.g. {sparse[0][0]}: "
                     f"{sparse[0][1]}); their INRs will model those few points, not a surface")

    def truth_for(pos: int, src: "ShapeSource") -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        seed = item_seed(config.seed, src.name)
        truth = compute_ground_truth(load_shape(src.path), field_resolved, config.queries, seed)
        return truth.queries, truth.values, truth.normalisation.center, truth.normalisation.scale

    return _Plan(field_resolved, config, selected, truth_for, input_set_digest([s.name for s in sources]), notes,
                 sha256)


def _plan_from_samples(path: str, config: FitConfig, field_name: str, shard: Shard) -> _Plan:
    """Items and ground truth from a ``samples`` artifact (no geometry libraries needed)."""
    from nrtool.artifacts.samples import SamplesReader
    from nrtool.geometry.ground_truth import QuerySpec
    from nrtool.io import ShapeSource

    reader = SamplesReader(path)
    field_resolved = reader.header.field
    if field_name not in ("auto", field_resolved):
        raise InputFileError(path, f"holds {field_resolved!r} samples, but --field {field_name} was asked for")
    spec = reader.header.queries
    queries = QuerySpec(near=tuple((float(std), int(n)) for std, n in spec["near"]), uniform=int(spec["uniform"]))
    config = config.with_overrides(queries=queries)
    rows = {name: row for row, name in enumerate(reader.names)}
    selected = [
        (reader.source_index[row], ShapeSource(reader.sources[row], name, reader.class_names[row], reader.splits[row]))
        for row, name in enumerate(reader.names)
        if shard.selects(row)
    ]
    if not selected:
        raise NrtoolError(f"--shard {shard.index}/{shard.count} selects none of the {len(reader)} items of {path}")

    def truth_for(pos: int, src: "ShapeSource") -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        row = rows[src.name]
        queries_array, values = reader.truth(row)
        return queries_array, values, reader.center[row], float(reader.scale[row])

    notes = [f"ground truth read from {path} ({field_resolved}, sampled with seed {reader.header.seed})"]
    sha256 = {name: reader.source_sha256[row] for row, name in enumerate(reader.names)}
    return _Plan(field_resolved, config, selected, truth_for, reader.header.input_set, notes, sha256)


@dataclass(frozen=True)
class _FitWork:
    """What every batch of a fit needs (sent once to each Ray worker): the plan, the shared
    initialisation, the ``--device`` asked for and the output whose ``.parts/`` keeps the batches."""

    plan: _Plan
    init: np.ndarray
    device: str
    out: str


def _fit_and_keep(work: _FitWork, batch: Sequence[tuple[int, "ShapeSource"]]) -> list[InrItem]:
    """Fit one batch and keep it in ``OUT.parts/`` (atomically): the unit of work of every backend."""
    import torch

    from nrtool.device import resolve_device

    device = resolve_device(work.device)
    fitted = _fit_sources(batch, work.plan, torch.from_numpy(work.init).to(device), device)
    PartsStore(work.out).save_batch(fitted)
    return fitted


def _fit_sources(
    batch: Sequence[tuple[int, "ShapeSource"]], plan: _Plan, init: "torch.Tensor", device: "torch.device"
) -> list[InrItem]:
    """Ground truth, then one batched fit, for ``(position, source)`` pairs."""
    from nrtool.geometry.ground_truth import item_seed
    from nrtool.inr.fit import FitTarget, fit_batch

    targets, frames = [], []
    for pos, src in batch:
        queries, values, center, scale = plan.truth_for(pos, src)
        targets.append(FitTarget(queries, values, item_seed(plan.config.seed, src.name)))
        frames.append((center, scale))
    result = fit_batch(targets, plan.field, plan.config, init, device)
    return [
        InrItem(
            name=src.name,
            class_name=src.class_name,
            split=src.split,
            source=str(Path(src.path).resolve()),
            source_index=pos,
            center=np.asarray(center),
            scale=float(scale),
            final_loss=float(result.final_loss[row]),
            params=result.params[row],
            source_sha256=plan.sha256.get(src.name, ""),
        )
        for row, ((pos, src), (center, scale)) in enumerate(zip(batch, frames))
    ]


def sample_shapes(
    inputs: Sequence[str],
    out: str | os.PathLike[str],
    config: FitConfig,
    field_name: str = "auto",
    shard: Shard = Shard(),
    progress: Progress | None = None,
    command: list[str] | None = None,
    backend: BackendSettings = BackendSettings(),
) -> int:
    """Compute ground truth for every input shape into a ``samples`` artifact; returns the count.

    With a Ray ``backend`` each shape is a task; the artifact is written here, once, at the end.
    """
    from nrtool.artifacts.samples import SamplesHeader, write_samples

    progress = progress or SilentProgress()
    out = check_output_file(out, "--out")
    backend.validate()
    plan = _plan_from_shapes(inputs, config, field_name, shard, progress)
    entries: list[Any] = [None] * len(plan.selected)
    with progress.task(f"sampling {plan.field} ground truth", len(plan.selected), "shapes") as advance:
        for index, entry in run_items(_sample_entry, plan, plan.selected, backend):
            entries[index] = entry
            advance()
    header = SamplesHeader(
        field=plan.field,
        queries={"near": [list(p) for p in config.queries.near], "uniform": config.queries.uniform},
        seed=config.seed,
        input_set=plan.input_set,
    )
    write_samples(out, header, entries, command=command)
    return len(entries)


def _sample_entry(plan: _Plan, item: tuple[int, "ShapeSource"]) -> Any:
    """One shape's ground truth as a samples entry (the unit of work of ``sample`` on any backend)."""
    from nrtool.artifacts.samples import SampleEntry

    pos, src = item
    queries, values, center, scale = plan.truth_for(pos, src)
    return SampleEntry(src.name, src.class_name, src.split, str(Path(src.path).resolve()), pos, center, scale,
                       queries, values, source_sha256=plan.sha256[src.name])


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    keys = sorted(set(old) | set(new))
    diffs = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return "; ".join(diffs)


def merge_inrs(paths: Sequence[str], out: str | os.PathLike[str], command: list[str] | None = None) -> int:
    """Concatenate ``inrs`` artifacts that share architecture, field and shared init.

    Shards of one run (same ``input_set``) come back in the order of the original input list.
    Returns the number of items written.
    """
    if len(paths) < 1:
        raise NrtoolError("merge needs at least one input file")
    check_output_file(out, "--out")
    first_header, items = load_inrs(paths[0])
    owner = {item.name: paths[0] for item in items}
    same_run = True
    for path in paths[1:]:
        header, more = load_inrs(path)
        if header.identity() != first_header.identity():
            diff = _differences(first_header.identity(), header.identity())
            raise InputFileError(path, f"cannot merge with {paths[0]}: {diff}")
        same_run &= header.input_set == first_header.input_set and bool(header.input_set)
        for item in more:
            if item.name in owner:
                raise InputFileError(path, f"item {item.name!r} is also in {owner[item.name]}")
            owner[item.name] = path
        items += more
    if same_run:
        items.sort(key=lambda item: item.source_index)
    write_inrs(out, first_header, items, inputs=provenance(paths), command=command)
    return len(items)
