"""``nrtool scan``, ``nrtool export nerf``, ``nrtool plot scan`` and ``nrtool synth capture``:
ScanNeRF turntable captures -> camera poses, filtered frames, benchmark splits, NeRF datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nrtool.cli.app import app, export_app, plot_app, synth_app
from nrtool.cli.common import (
    OPTIONS,
    argv,
    check_outputs,
    image_size,
    note,
    print_json,
    progress,
)


def _int_list(text: str, option: str) -> tuple[int, ...]:
    from nrtool.errors import NrtoolError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise NrtoolError(f"{option} must be comma-separated integers, got {text!r}")
    return values


@app.command("scan")
def scan(
    source: Path = typer.Argument(..., help="Folder of images (natural sort order = time order) or a video file."),
    out: Path = typer.Option(..., "--out", "-o", help="scan artifact (.h5) to write."),
    board: str = typer.Option(..., "--board", help="Board size in squares, COLSxROWS (e.g. 5x7)."),
    square: float = typer.Option(..., "--square", help="Square side (sets the unit of the poses, e.g. metres)."),
    marker: float = typer.Option(..., "--marker", help="ArUco marker side, same unit."),
    dictionary: str = typer.Option("DICT_6X6_250", "--dict", help="ArUco dictionary (OpenCV name)."),
    legacy: bool = typer.Option(False, "--legacy", help="Board printed with OpenCV < 4.6 (matters for even row counts)."),
    inverted: bool = typer.Option(False, "--inverted", help="Board printed white on black (white markers in black squares). "
                                  "Without it such a board is still found, by a second pass on frames that show no board."),
    intrinsics: Optional[Path] = typer.Option(None, "--intrinsics", help="Camera intrinsics: OpenCV YAML/XML/JSON, COLMAP "
                                              "cameras.txt, nerfstudio/instant-ngp transforms.json, or a 3x3 matrix (.txt, "
                                              ".npy; then for the capture's image size)."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Calibrate K and distortion from the capture's own detections."),
    every: int = typer.Option(1, "--every", help="Use every N-th frame (of the video or the image list)."),
    min_azimuth_step: float = typer.Option(1.15, help="Drop frames whose azimuth moved less than this (deg) since the previous frame: the arm was moving."),
    max_reprojection_error: float = typer.Option(2.0, help="Drop frames whose pose reprojects the corners worse than this (RMS px)."),
    min_corners: int = typer.Option(6, help="Drop frames with fewer ChArUco corners."),
    splits: str = typer.Option("1000,500,500", "--splits", help="Train,Val,Test sizes (scaled down for small captures)."),
    train_subsets: str = typer.Option("500,250,100", help="Training subset sizes, by FPS inside Train."),
    octant_extra: float = typer.Option(0.1, help="Fraction of out-of-octant views added to each octant sub-split."),
    no_splits: bool = typer.Option(False, "--no-splits", help="Poses only (e.g. a calibration-only run)."),
    seed: int = typer.Option(0, help="Seed of the split sampling."),
    embed_images: bool = typer.Option(False, "--embed-images", help="Store the images themselves in the artifact."),
    workers: int = typer.Option(0, help="Detection threads (0 = every available core)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Camera poses of a turntable capture from its ChArUco board, frame filtering and benchmark splits.

    World frame: the board (origin at its centre, z up out of it). Poses are stored as OpenCV
    camera-to-world matrices; `nrtool export nerf` converts them for NeRF tools.

    Example: `nrtool scan capture/images --out scan.h5 --board 8x8 --square 0.05 --marker 0.037 --dict DICT_4X4_50 --intrinsics capture/intrinsics.yml`
    """
    from nrtool.artifacts.core import provenance
    from nrtool.errors import NrtoolError
    from nrtool.scan.artifact import write_scan
    from nrtool.scan.board import ChArUcoBoard
    from nrtool.scan.filtering import FilterConfig
    from nrtool.scan.intrinsics import read_intrinsics
    from nrtool.scan.pipeline import run_scan
    from nrtool.scan.splits import SplitSizes

    if calibrate == (intrinsics is not None):
        raise NrtoolError("pass exactly one of --intrinsics FILE and --calibrate")
    filtering = FilterConfig(min_azimuth_step, max_reprojection_error, min_corners)
    if workers < 0:
        raise NrtoolError("--workers must be >= 0")
    charuco = ChArUcoBoard.parse(board, square, marker, dictionary, legacy, inverted)
    camera = read_intrinsics(intrinsics) if intrinsics is not None else None
    sizes = None
    if not no_splits:
        macro = _int_list(splits, "--splits")
        if len(macro) != 3:
            raise NrtoolError(f"--splits takes three sizes (train,val,test), got {splits!r}")
        sizes = SplitSizes(*macro, train_subsets=_int_list(train_subsets, "--train-subsets"), octant_extra=octant_extra)
    check_outputs(files=[out])
    data = run_scan(source, charuco, camera, filtering,
                    sizes, seed=seed, every=every, workers=workers or None, embed_images=embed_images,
                    progress=progress(), warn=lambda message: note(f"warning: {message}"))
    write_scan(out, data, inputs=provenance([intrinsics] if intrinsics is not None else []), command=argv())
    summary = {"out": str(out), **data.summary()}
    if json_out:
        print_json(summary)
    elif not OPTIONS.quiet:
        error = summary["reprojection_error_px"]
        dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()) or "none"
        intr = summary["intrinsics"]
        calibrated = f", calibration RMS {intr['calibration_rms']:.3f} px" if intr["calibration_rms"] is not None else ""
        print(f"{out}: {summary['frames']} frames, {summary['kept_frames']} kept (dropped: {dropped})")
        print(f"  intrinsics {intr['source']}: fx {intr['fx']:.2f} fy {intr['fy']:.2f} cx {intr['cx']:.2f} "
              f"cy {intr['cy']:.2f}{calibrated}")
        if error["mean"] is not None:
            print(f"  reprojection error of kept frames: mean {error['mean']:.3f} px, max {error['max']:.3f} px")
        if summary["splits"]:
            macro_sizes = {k: summary["splits"][k] for k in ("train", "val", "test")}
            print(f"  splits: {macro_sizes} + {len(summary['splits']) - 3} subsets/octant sub-splits")


@export_app.command("nerf")
def export_nerf_cmd(
    scan_file: Path = typer.Argument(..., metavar="SCAN", help="scan artifact from `nrtool scan`."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to create."),
    masks: Optional[Path] = typer.Option(None, "--masks", help="Folder of object masks NAME.png per frame (adds mask_path)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it is a non-empty folder nrtool wrote (never a folder it did not write)."),
    link: bool = typer.Option(False, "--link", help="Hard-link the capture's images instead of copying them (no extra "
                              "space, but editing the dataset's images then edits the capture's); copies where linking fails."),
    json_out: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """A nerfstudio `transforms.json` and ScanNeRF's NeRF-synthetic split files (train_all.json, ...).

    Example: `nrtool export nerf scan.h5 --out nerf/`
    """
    from nrtool.scan.artifact import load_scan
    from nrtool.scan.export import export_nerf

    check_outputs(folders=[out])
    data = load_scan(scan_file)  # embedded images are read one at a time, as they are written
    result = export_nerf(data, out, masks=masks, overwrite=overwrite, progress=progress(), link=link)
    if json_out:
        print_json(result)
    elif not OPTIONS.quiet:
        print(f"{out}: {result['frames']} frames, {len(result['files'])} json files ({result['camera_model']})")


@plot_app.command("scan")
def plot_scan(
    scan_file: Path = typer.Argument(..., metavar="SCAN", help="scan artifact."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for cameras.png and azimuth.png."),
) -> None:
    """Camera positions on the hemisphere by split, and the azimuth step per frame (kept/dropped).

    Example: `nrtool plot scan scan.h5 --out figures/`
    """
    from nrtool.scan.artifact import load_scan
    from nrtool.scan.plots import scan_figures

    check_outputs(folders=[out])
    data = load_scan(scan_file)
    paths = scan_figures(data, out, scan_file.name)
    if not OPTIONS.quiet:
        print(f"{out}: {', '.join(p.name for p in paths)}")


@synth_app.command("capture")
def synth_capture(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write images/, masks/, intrinsics.yml, ground_truth.json into."),
    size: str = typer.Option("960x720", "--size", help="Image size WIDTHxHEIGHT (the station films 1440x1080)."),
    steps: int = typer.Option(16, help="Zenith steps of the arm."),
    zenith: str = typer.Option("20,75", help="First and last zenith (deg)."),
    frames_per_turn: int = typer.Option(66, help="Frames per 360 deg of the base (the station: ~280)."),
    turns: float = typer.Option(2.0, help="Base turns per zenith step."),
    descent_frames: int = typer.Option(8, help="Frames taken while the arm moves between steps."),
    distance: float = typer.Option(0.7, help="Camera distance to the board centre (m)."),
    noise: float = typer.Option(2.0, help="Sensor noise std (grey levels)."),
    blur: float = typer.Option(0.6, help="Gaussian blur sigma (px)."),
    seed: int = typer.Option(0, help="Noise seed."),
    inverted: bool = typer.Option(False, "--inverted", help="Print the board white on black (as `scan --inverted` reads it)."),
    workers: int = typer.Option(0, help="Rendering threads (0 = every available core)."),
) -> None:
    """A synthetic turntable capture with ground-truth poses and object masks.

    Example: `nrtool synth capture --out capture/ --size 640x480 --steps 4 --frames-per-turn 24`
    """
    from dataclasses import replace

    from nrtool.errors import NrtoolError
    from nrtool.synth.capture import CaptureConfig, make_capture, trajectory

    width, height = image_size(size)
    parts = zenith.split(",")
    try:
        zenith_start, zenith_end = (float(v) for v in parts)
    except ValueError:
        raise NrtoolError(f"--zenith must be two angles START,END in degrees, got {zenith!r}") from None
    board = replace(CaptureConfig().board, inverted=inverted)
    config = CaptureConfig(width=width, height=height, board=board, steps=steps, zenith_start=zenith_start,
                           zenith_end=zenith_end, frames_per_turn=frames_per_turn, turns=turns,
                           descent_frames=descent_frames, distance=distance, noise=noise, blur=blur, seed=seed)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NrtoolError(f"{out}: already exists and is not empty")
    total = len(trajectory(config))
    with progress().task("rendering capture", total, unit="frames") as advance:
        truth = make_capture(out, config, workers=workers or None, on_frame=advance)
    if not OPTIONS.quiet:
        moving = sum(f["moving"] for f in truth["frames"])
        print(f"{out}: {len(truth['frames'])} frames ({moving} while the arm moves), {width}x{height}; "
              f"scan it with: nrtool scan {out / 'images'} {' '.join(truth['scan_options']).replace('intrinsics.yml', str(out / 'intrinsics.yml'))} --out scan.h5")
