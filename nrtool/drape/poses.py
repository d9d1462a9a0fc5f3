"""Poses to train a draping model on: the user's AMASS-format motions, read and prepared once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.errors import InputFileError, NrtoolError

MOTION_SUFFIXES = (".npz", ".npy")
NO_POSES = "no poses to train on: pass motion files or folders (or the built-in motions)"


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


@dataclass(frozen=True, eq=False)  # eq on arrays would be elementwise
class TrainingPoses:
    """Where a draping model's training poses come from: motion files (and folders of them),
    resampled to ``fps`` when they state their rate, arms rotated ``separate_arms`` degrees away
    from the torso; and poses ``generated`` in code (``nrtool.synth.poses.procedural_training_poses``,
    Y-up, used as they are), named by ``generated_names``."""

    files: tuple[str, ...] = ()
    fps: float | None = 30.0
    separate_arms: float = 0.0
    generated: np.ndarray | None = None  # (P, 72)
    generated_names: tuple[str, ...] = ()

    def check(self) -> None:
        """Read every motion file once (no body needed), so that a missing or wrong-kind file is
        refused in one line before any training starts."""
        from nrtool.body.amass import read_amass

        self._require_some()
        for path in motion_files(list(self.files)):
            read_amass(path)

    def _require_some(self) -> None:
        if not self.files and self.generated is None:
            raise NrtoolError(NO_POSES)

    def load(self, body: Any) -> tuple[np.ndarray, list[str]]:
        """``(P, 72)`` Y-up poses for ``body`` (its rest joints place the arm rotation) and where
        they came from: the files (:func:`load_training_poses`, which refuses a bad one as
        :meth:`check` does) first, then the generated poses."""
        self._require_some()
        arrays, names = [], []
        if self.files:
            loaded, found = load_training_poses(list(self.files), body, self.fps, self.separate_arms)
            arrays.append(loaded)
            names += found
        if self.generated is not None:
            arrays.append(np.asarray(self.generated, dtype=np.float32))
            names += list(self.generated_names)
        return np.concatenate(arrays), names
