"""``nrtool mask`` and ``nrtool nerf train|eval|render|benchmark``: ScanNeRF's masking and its
NeRF benchmark, on a dense-grid NeRF (:mod:`nrtool.nerf`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, nerf_app
from nrtool.cli.common import (
    DEVICE_OPTION,
    OPTIONS,
    RESTART_OPTION,
    argv,
    check_device,
    check_outputs,
    image_size,
    note_resumed,
    print_json,
    progress,
)
from nrtool.config import override_options
from nrtool.nerf.config import PRESETS, NerfConfig

NERF_FIELDS = ["max_side", "grid", "grid_start", "steps", "rays", "features", "mlp_width", "lr_grid", "lr_mlp", "alpha_init",
               "tv_weight", "entropy_weight", "sparsity_weight", "occupancy_threshold", "background", "seed"]
PRESET_OPTION = typer.Option("tiny", help="tiny | small (CPU) | paper (DVGO's fine stage, for a GPU).")
TIME_LIMIT_OPTION = typer.Option(None, "--time-limit", help="Stop training after this many seconds (resumable).")
SOURCE_HELP = ("A scan artifact (.h5), a transforms.json / NeRF-synthetic split file, or a folder of them "
               "(`nrtool export nerf`, or ScanNeRF's published data).")


def _box(text: Optional[str]):
    import numpy as np

    from nrtool.errors import NrtoolError

    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 6 or not all(hi > lo for lo, hi in zip(values[:3], values[3:])):
        raise NrtoolError(f"--box must be XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX with each max above its min, got {text!r}")
    return np.array(values[:3]), np.array(values[3:])


@app.command("mask")
@override_options(NerfConfig, NERF_FIELDS)
def mask(
    scan_file: Path = typer.Argument(..., metavar="SCAN", help="scan artifact from `nrtool scan`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for NAME.png masks, rgba/, masks.h5, contact_sheet.png, nerf.pt."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of the capture's frames (when they moved since `nrtool scan`)."),
    z_offset: Optional[float] = typer.Option(None, "--z-offset", help="Render box floor above the board, scan units "
                                             "(default: the larger of 2 voxels and an eighth of a square)."),
    box_height: Optional[float] = typer.Option(None, "--box-height", help="Render box top above the board, scan units "
                                               "(default: half the board's longer side)."),
    threshold: float = typer.Option(0.5, help="Alpha at or above which a pixel is object."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Train on frames with this longer side (the preset's max_side)."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Folder of ground-truth masks NAME.png: adds IoU per frame."),
    preset: str = PRESET_OPTION,
    device: str = DEVICE_OPTION,
    time_limit: Optional[float] = TIME_LIMIT_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    overrides: dict = None,
) -> None:
    """Object masks of a turntable capture: a NeRF of the raw frames, its alpha inside a box over the board.

    Example: `nrtool mask scan.h5 --out masks/` then `nrtool export nerf scan.h5 --masks masks/ --out nerf/`
    """
    from nrtool.nerf.mask import MaskSettings, make_masks

    if resolution is not None:
        overrides["max_side"] = resolution
    config = PRESETS(preset, **overrides)
    settings = MaskSettings(z_offset=z_offset, box_height=box_height, threshold=threshold)
    settings.validate()
    check_device(device)
    check_outputs(folders=[out])
    from nrtool.device import resolve_device

    result = make_masks(scan_file, out, config, settings, images=images, truth=truth, device=resolve_device(device),
                        progress=progress(), time_limit=time_limit, restart=restart, command=argv())
    summary = result.summary()
    note_resumed(summary["resumed_from_epoch"])
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        scores = (f", IoU mean {summary['iou_mean']:.3f} min {summary['iou_min']:.3f}"
                  if summary["iou_mean"] is not None else "")
        print(f"{out}: {summary['frames']} masks, object {summary['coverage_mean']:.1%} of a frame{scores}; "
              f"z offset {summary['z_offset']:.4g}, training {summary['train_s']:.0f} s, rendering "
              f"{summary['render_s']:.0f} s; contact sheet {out / 'contact_sheet.png'}")


@nerf_app.command("train")
@override_options(NerfConfig, NERF_FIELDS)
def nerf_train(
    source: Path = typer.Argument(..., metavar="SOURCE", help=SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="NeRF checkpoint (.pt) to write."),
    split: str = typer.Option("train_all", help="Training split (train_all, train_all_250, train_3, ...; all = every frame)."),
    val_split: str = typer.Option("val_all", help="Split whose first frame's PSNR is shown per epoch (none: no validation)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Scan only: folder of the frames."),
    masks: Optional[Path] = typer.Option(None, "--masks", help="Scan only: masks NAME.png (from `nrtool mask`): object-only frames over white."),
    box: Optional[str] = typer.Option(None, "--box", help="Scene box XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX (default: from the board or the cameras)."),
    preset: str = PRESET_OPTION,
    device: str = DEVICE_OPTION,
    time_limit: Optional[float] = TIME_LIMIT_OPTION,
    restart: bool = RESTART_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
    overrides: dict = None,
) -> None:
    """Train the dense-grid NeRF on a split; resumable, with the training (and held-out) PSNR per epoch.

    Example: `nrtool nerf train nerf/ --split train_all_250 --out nerf.pt --preset small`
    """
    from nrtool.nerf.boxes import scene_box
    from nrtool.nerf.train import train_nerf
    from nrtool.nerf.views import available_splits, load_views
    from nrtool.training import start_training

    config = PRESETS(preset, **overrides)
    scene = _box(box)
    check_device(device)
    out, torch_device, bar = start_training(out, device, progress(), config)
    views = load_views(source, split, config.max_side, images, masks, bar)
    held_out = None
    if val_split != "none" and val_split in available_splits(source):
        held_out = load_views(source, val_split, config.max_side, images, masks, limit=1)
    nerf, run = train_nerf(views, config, out, scene if scene is not None else scene_box(source, views), torch_device,
                           bar, held_out=held_out, time_limit=time_limit, restart=restart,
                           extra={"dataset": str(source.resolve())})
    note_resumed(run.resumed_from_epoch)
    last = run.history[-1] if run.history else {}
    if json_out:
        print_json({"out": str(out), "frames": len(views), "size": list(views.size), "seconds": run.seconds,
                    "stopped_by_time_limit": run.stopped_by_time_limit, "history": run.history})
    elif not OPTIONS.quiet:
        val = f", held-out PSNR {last['val_psnr']:.2f} dB" if "val_psnr" in last else ""
        stopped = " (stopped by --time-limit; rerun to continue)" if run.stopped_by_time_limit else ""
        print(f"{out}: {len(views)} frames at {views.size[0]}x{views.size[1]}, {run.seconds:.0f} s, training PSNR "
              f"{last.get('train_psnr', float('nan')):.2f} dB{val}{stopped}")


@nerf_app.command("eval")
def nerf_eval(
    model: Path = typer.Argument(..., metavar="NERF", help="NeRF checkpoint from `nrtool nerf train`."),
    source: Optional[Path] = typer.Option(None, "--data", help="Frames to score (default: the model's training source)."),
    split: str = typer.Option("test_all", help="Split to render and score."),
    out: Path = typer.Option(..., "--out", "-o", help="results.json to write (ns-eval's shape, plus per-image metrics)."),
    renders: Optional[Path] = typer.Option(None, "--renders", help="Folder for the rendered frames (PNG)."),
    max_side: Optional[int] = typer.Option(None, "--max-side", help="Score at this longer side (default: the training size)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Scan only: folder of the frames."),
    masks: Optional[Path] = typer.Option(None, "--masks", help="Scan only: masks NAME.png (object-only frames over white)."),
    device: str = DEVICE_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """PSNR, SSIM (and LPIPS where its weights exist locally) of a trained NeRF on a split.

    Example: `nrtool nerf eval nerf.pt --split test_all --out results.json`
    """
    import json

    from nrtool.artifacts.core import atomic_write_bytes
    from nrtool.device import resolve_device
    from nrtool.nerf.evaluate import evaluate
    from nrtool.nerf.train import check_frames_match, load_nerf
    from nrtool.nerf.views import load_views

    check_device(device)
    check_outputs(files=[out], folders=[renders])
    torch_device = resolve_device(device)
    nerf = load_nerf(model, torch_device)
    data = source or Path(nerf.data.get("dataset", nerf.data["source"]))
    side = max_side if max_side is not None else max(nerf.data["size"])
    views = load_views(data, split, side, images, masks, progress())
    check_frames_match(nerf, views, data)
    results = evaluate(nerf, views, torch_device, progress(), renders, str(model))
    atomic_write_bytes(out, (json.dumps(results, indent=2) + "\n").encode())
    if json_out:
        print_json(results)
    elif not OPTIONS.quiet:
        r = results["results"]
        lpips = f"LPIPS {r['lpips']:.3f}" if r["lpips"] is not None else f"LPIPS n/a ({results['lpips_reason']})"
        print(f"{out}: {results['frames']} frames of {split} at {views.size[0]}x{views.size[1]}: PSNR {r['psnr']:.2f} "
              f"± {r['psnr_std']:.2f} dB, SSIM {r['ssim']:.4f}, {lpips}; {r['num_rays_per_sec']:.0f} rays/s")


@nerf_app.command("render")
def nerf_render(
    model: Path = typer.Argument(..., metavar="NERF", help="NeRF checkpoint."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for frame_NNNNN.png and turntable.mp4."),
    poses: Optional[Path] = typer.Option(None, "--poses", help="Poses: a NeRF JSON (frames[].transform_matrix) or an "
                                         "(N, 4, 4) OpenCV camera-to-world .npy. Default: a turntable orbit."),
    frames: int = typer.Option(48, help="Turntable frames (without --poses)."),
    elevation: Optional[float] = typer.Option(None, help="Turntable elevation in degrees (default: the training cameras' median)."),
    size: Optional[str] = typer.Option(None, "--size", help="WIDTHxHEIGHT (default: the training size)."),
    video: bool = typer.Option(True, "--video/--no-video", help="Also write turntable.mp4."),
    device: str = DEVICE_OPTION,
) -> None:
    """Render a trained NeRF from given poses or along a turntable orbit (PNGs and an mp4).

    Example: `nrtool nerf render nerf.pt --out turntable/ --frames 60`
    """
    from nrtool.device import resolve_device
    from nrtool.nerf.evaluate import read_poses, render_poses, turntable_poses
    from nrtool.nerf.train import load_nerf

    check_device(device)
    check_outputs(folders=[out])
    torch_device = resolve_device(device)
    nerf = load_nerf(model, torch_device)
    chosen = read_poses(poses) if poses is not None else turntable_poses(nerf, frames, elevation)
    result = render_poses(nerf, chosen, out, image_size(size) if size else None, torch_device, progress(), video)
    if not OPTIONS.quiet:
        movie = f", {result['video']}" if result["video"] else ""
        print(f"{out}: {result['frames']} frames at {result['size'][0]}x{result['size'][1]}{movie}")


@nerf_app.command("benchmark")
@override_options(NerfConfig, NERF_FIELDS)
def nerf_benchmark(
    source: Path = typer.Argument(..., metavar="SOURCE", help=SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for results.json, table.md, octants.png and models/."),
    masks: Optional[Path] = typer.Option(None, "--masks", help="Scan only: masks NAME.png (object-only frames, as ScanNeRF benchmarks)."),
    images: Optional[Path] = typer.Option(None, "--images", help="Scan only: folder of the frames."),
    octants: bool = typer.Option(True, "--octants/--no-octants", help="Also the 8 x 8 densely localised matrix (8 more trainings)."),
    test: str = typer.Option("test", "--test", help="Score on test_all/test_j, or val (ScanNeRF publishes no test split)."),
    box: Optional[str] = typer.Option(None, "--box", help="Scene box XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX."),
    preset: str = PRESET_OPTION,
    device: str = DEVICE_OPTION,
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per training."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    overrides: dict = None,
) -> None:
    """ScanNeRF's benchmark on one capture: PSNR by training size (Tab. 3.2) and the octant matrix (Tab. 3.3).

    Example: `nrtool nerf benchmark nerf/ --out bench/ --preset small`
    """
    from nrtool.device import resolve_device
    from nrtool.nerf.benchmark import run_benchmark

    config = PRESETS(preset, **overrides)
    scene = _box(box)
    check_device(device)
    check_outputs(folders=[out])
    results = run_benchmark(source, out, config, resolve_device(device), progress(), masks, images, octants,
                            time_limit, scene, test)
    if json_out:
        print_json(results)
    elif not OPTIONS.quiet:
        sizes = ", ".join(f"{r['train']} {r['test_psnr']:.2f}" for r in results["training_sizes"])
        print(f"{out}: {results['test']} PSNR (dB) by training split: {sizes}")
        if results["octants"]:
            import numpy as np

            m = np.asarray(results["octants"]["psnr"])
            print(f"  octants: same sub-split {np.mean(np.diag(m)):.2f} dB, others {m[~np.eye(len(m), dtype=bool)].mean():.2f} dB; "
                  f"{out / 'table.md'}, {out / 'octants.png'}")
