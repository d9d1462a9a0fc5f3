"""Figures of a scan (like the thesis's Fig. 3.3 and 3.5): where the cameras are, by split, and
the per-frame azimuth step that decides which frames were taken while the arm moved."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nrtool.figures import save_figure
from nrtool.scan.artifact import ScanData

SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green", "": "tab:gray"}


def camera_plot(data: ScanData, png: str | os.PathLike[str], title: str = "") -> None:
    """Kept camera centres on their hemisphere, coloured by macro-split; dropped ones as red x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = data.centres
    labels = np.array(data.split_labels())
    fig = plt.figure(figsize=(11, 5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    top = fig.add_subplot(1, 2, 2)
    for split, colour in SPLIT_COLOURS.items():
        chosen = data.kept & (labels == split)
        if chosen.any():
            name = split or ("kept, in no split" if data.splits else "kept")
            ax.scatter(*centres[chosen].T, s=4, c=colour, label=f"{name} ({chosen.sum()})", depthshade=False)
            top.scatter(centres[chosen, 0], centres[chosen, 1], s=4, c=colour)
    dropped = ~data.kept & np.isfinite(centres[:, 0])
    if dropped.any():
        ax.scatter(*centres[dropped].T, s=8, c="tab:red", marker="x", label=f"dropped, posed ({dropped.sum()})")
        top.scatter(centres[dropped, 0], centres[dropped, 1], s=8, c="tab:red", marker="x")
    width, height = data.board.size
    outline = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * [width / 2, height / 2]
    ax.plot(outline[:, 0], outline[:, 1], 0, c="k", lw=1)
    top.plot(outline[:, 0], outline[:, 1], c="k", lw=1, label="board")
    radius = np.nanmax(np.linalg.norm(centres, axis=1)) if np.isfinite(centres).any() else 1.0
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(0, radius)
    ax.set_box_aspect((2, 2, 1))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title("camera centres (world = board, z up)", fontsize=9)
    top.set_aspect("equal")
    top.set_title("seen from above", fontsize=9)
    top.set_xlabel("x")
    top.set_ylabel("y")
    fig.suptitle(title or f"{len(data)} frames, {int(data.kept.sum())} kept", fontsize=10)
    fig.tight_layout()
    save_figure(fig, png)


def azimuth_plot(data: ScanData, png: str | os.PathLike[str], title: str = "") -> None:
    """Azimuth step to the previous posed frame, per frame: kept, dropped as arm-moving, the
    threshold; plus the zenith, which shows the arm's steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.arange(len(data))
    steps = data.azimuth_step
    reasons = np.array(data.drop_reason)
    fig, (ax, zen) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    kept = data.kept & np.isfinite(steps)
    moving = (reasons == "arm-moving") & np.isfinite(steps)
    ax.scatter(frames[kept], steps[kept], s=4, c="tab:blue", label=f"kept ({data.kept.sum()})")
    ax.scatter(frames[moving], steps[moving], s=8, c="tab:red", marker="x", label=f"arm moving ({moving.sum()})")
    other = ~data.kept & (reasons != "arm-moving")
    if other.any():
        ymin = 0.0
        ax.scatter(frames[other], np.full(other.sum(), ymin), s=10, c="k", marker="|",
                   label=f"no reliable pose ({other.sum()})")
    threshold = data.filter_config.min_azimuth_step
    ax.axhline(threshold, c="tab:red", lw=0.8, ls="--", label=f"min azimuth step {threshold:g} deg")
    finite = steps[np.isfinite(steps)]
    if len(finite):
        ax.set_ylim(0, max(threshold * 2, float(np.percentile(finite, 99)) * 1.3))
    ax.set_ylabel("azimuth step (deg)")
    ax.legend(loc="upper right", fontsize=7)
    posed = np.isfinite(data.zenith)
    zen.scatter(frames[posed], data.zenith[posed], s=2, c=np.where(data.kept[posed], "tab:blue", "tab:red"))
    zen.set_ylabel("zenith (deg)")
    zen.set_xlabel("frame")
    fig.suptitle(title or "azimuth difference per frame", fontsize=10)
    fig.tight_layout()
    save_figure(fig, png)


def scan_figures(data: ScanData, out: str | os.PathLike[str], name: str = "") -> list[Path]:
    """Write ``cameras.png`` and ``azimuth.png`` into ``out`` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cameras, azimuth = out / "cameras.png", out / "azimuth.png"
    camera_plot(data, cameras, f"{name}: {len(data)} frames, {int(data.kept.sum())} kept" if name else "")
    azimuth_plot(data, azimuth, f"{name}: azimuth difference per frame" if name else "")
    return [cameras, azimuth]
