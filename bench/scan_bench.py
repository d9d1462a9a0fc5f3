"""Benchmark of ``nrtool scan``: frames per second of ChArUco detection + pose at the station's
1440x1080, with 1 core and with every available core, against the capture's 30 fps.

The question it answers: can a 9000-frame (5-minute) capture be processed faster than it was
recorded? Frames come from ``nrtool synth capture`` (rendered once, not timed) and go through
the same code as ``nrtool scan`` (JPEG decoding, detection, solvePnP + refinement, filtering),
splits excluded. Both runs are timed side by side in one process, after a warm-up.

Standalone: ``.venv/bin/python bench/scan_bench.py --frames 48``; in ``bench/run.py`` as the
``scan`` section.
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

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: The station's capture: 1440x1080 at 30 fps, ~9000 frames in 5 minutes.
WIDTH, HEIGHT, CAPTURE_FPS, CAPTURE_FRAMES = 1440, 1080, 30.0, 9000


def render_capture(folder: Path, frames: int) -> Path:
    """A ``frames``-frame synthetic capture at 1440x1080 (two zenith steps, station geometry)."""
    from nrtool.synth.capture import CaptureConfig, make_capture, trajectory

    per_turn = max(4, frames // 4)  # 2 steps x 2 turns
    config = CaptureConfig(width=WIDTH, height=HEIGHT, steps=2, zenith_start=30, zenith_end=60,
                           frames_per_turn=per_turn, descent_frames=0)
    assert len(trajectory(config)) >= frames
    out = folder / "capture"
    make_capture(out, config)
    images = out / "images"
    for extra in sorted(images.iterdir())[frames:]:
        extra.unlink()
    return out


def time_scan(capture: Path, workers: int) -> tuple[float, int, int]:
    """(seconds, frames, posed frames) of detection + poses + filtering over the capture."""
    from nrtool.scan.board import ChArUcoBoard
    from nrtool.scan.intrinsics import read_intrinsics
    from nrtool.scan.pipeline import run_scan

    truth = json.loads((capture / "ground_truth.json").read_text())
    board = ChArUcoBoard.from_dict(truth["board"])
    intrinsics = read_intrinsics(capture / "intrinsics.yml")
    started = time.perf_counter()
    data = run_scan(capture / "images", board, intrinsics, split_sizes=None, workers=workers)
    seconds = time.perf_counter() - started
    return seconds, len(data), int((data.reprojection_error == data.reprojection_error).sum())


def run(frames: int, say: Callable[[str], None] = print, work: Path | None = None) -> dict[str, Any]:
    """Measure and print; returns the numbers."""
    from nrtool.scan.detection import available_cores

    cores = available_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and load >= 0.5:
        say(f"  (1-min load {load:.2f} on {cores} cores before starting: other work shares the cores, so the "
            "multi-core speed-up is understated)")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        started = time.perf_counter()
        capture = render_capture(Path(tmp), frames)
        say(f"  ({frames} synthetic {WIDTH}x{HEIGHT} frames rendered in {time.perf_counter() - started:.1f} s, not timed)")
        time_scan(capture, cores)  # warm-up: page cache, OpenCV's lazy initialisation
        rows = []
        for workers in sorted({1, cores}):
            seconds, count, posed = time_scan(capture, workers)
            fps = count / seconds
            rows.append({"workers": workers, "frames": count, "posed": posed, "seconds": seconds, "fps": fps,
                         "ratio_to_realtime": fps / CAPTURE_FPS,
                         "minutes_for_9000_frames": CAPTURE_FRAMES / fps / 60})
    say("")
    say("| cores | frames | posed | s | frames/s | x real time (30 fps) | 9000 frames take |")
    say("|---|---|---|---|---|---|---|")
    for row in rows:
        say(f"| {row['workers']} | {row['frames']} | {row['posed']} | {row['seconds']:.2f} | {row['fps']:.1f} | "
            f"{row['ratio_to_realtime']:.2f} | {row['minutes_for_9000_frames']:.1f} min |")
    say("")
    best = rows[-1]
    verdict = "faster" if best["ratio_to_realtime"] >= 1 else "slower"
    say(f"with {best['workers']} core(s): {best['fps']:.1f} frames/s = {best['ratio_to_realtime']:.2f}x the capture's "
        f"{CAPTURE_FPS:g} fps -> a {CAPTURE_FRAMES}-frame capture is processed {verdict} than it was recorded "
        f"({best['minutes_for_9000_frames']:.1f} min vs {CAPTURE_FRAMES / CAPTURE_FPS / 60:.0f} min)")
    if len(rows) > 1:
        say(f"parallel speed-up: {rows[-1]['fps'] / rows[0]['fps']:.2f}x on {cores} cores")
    return {"width": WIDTH, "height": HEIGHT, "capture_fps": CAPTURE_FPS, "cores": cores, "load_before": load,
            "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="Frames to time (default 120).")
    parser.add_argument("--json", metavar="PATH", default=None, help="Also write the numbers to this JSON file.")
    args = parser.parse_args(argv)
    if args.frames < 8:
        parser.error("--frames must be at least 8")
    result = run(args.frames)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
