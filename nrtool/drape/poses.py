"""Poses to train a draping model on: the user's AMASS-format motions, read and prepared once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

MOTION_SUFFIXES = (".npz", ".npy")


def motion_files(sources: list[str | os.PathLike[str]]) -> list[Path]:
    """Files and folders (searched recursively for ``.npz``/``.npy``) -> motion files, sorted."""
    files: list[Path] = []
    for source in sources:
        p = Path(source)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in MOTION_SUFFIXES and q.is_file())
            if not found:
                raise InputFileError(p, "holds no .npz/.npy motion files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputFileError(p, "no such file or folder")
    return files


def load_training_poses(sources: list[str | os.PathLike[str]], body: Any, fps: float | None = 30.0,
                        arms_degrees: float = 0.0, source_up: str = "auto") -> tuple[np.ndarray, list[str]]:
    """``(P, 72)`` Y-up SMPL poses of every motion file (resampled to ``fps`` when the file says
    its rate, arms separated by ``arms_degrees``), and the files' names."""
    from nrtool.body.amass import load_motion, read_amass

    poses, names = [], []
    rest = body.rest_joints()
    for path in motion_files(sources):
        rate = fps if fps is not None and read_amass(path).fps is not None else None
        motion = load_motion(path, fps=rate, y_up=True, arms_degrees=arms_degrees, source_up=source_up, rest_joints=rest)
        poses.append(motion.poses.astype(np.float32))
        names.append(str(path))
    if not poses:
        raise NrtoolError("no poses to train on")
    return np.concatenate(poses), names
