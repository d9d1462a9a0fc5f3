"""The finished parts of an unfinished run, kept beside its output as ``OUT.parts/``.

The one resume mechanism for commands that produce many independent items (INRs fitted batch
by batch, the networks of a zoo): each finished part is one ``.npz`` written atomically, so a
kill at any moment loses at most the part being computed; ``settings.json`` records what
determines the run, and a later run with other settings is refused rather than merged. The
output itself is assembled and renamed into place only at the end; then the folder goes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nrtool.artifacts.core import atomic_write_bytes


class PartsFolder:
    """``OUT.parts/``: ``settings.json`` plus one ``PREFIX-KEY.npz`` per finished part."""

    prefix = "part"

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")

    @property
    def settings_file(self) -> Path:
        return self.folder / "settings.json"

    def exists(self) -> bool:
        return self.folder.is_dir()

    def settings(self) -> dict[str, Any] | None:
        if not self.settings_file.exists():
            return None
        try:
            return json.loads(self.settings_file.read_text())
        except json.JSONDecodeError:
            return None

    def start(self, settings: dict[str, Any]) -> None:
        self.folder.mkdir(exist_ok=True)
        atomic_write_bytes(self.settings_file, json.dumps(settings, indent=1, sort_keys=True).encode())

    def part_file(self, key: str) -> Path:
        return self.folder / f"{self.prefix}-{key}.npz"

    def save_part(self, key: str, arrays: dict[str, Any]) -> None:
        """One finished part (plain arrays, no pickles), atomically."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.part_file(key), buffer.getvalue())

    def load_parts(self) -> list[dict[str, np.ndarray]]:
        """The arrays of every complete part, in key order (damaged files are skipped: redone)."""
        parts = []
        for path in sorted(self.folder.glob(f"{self.prefix}-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as data:
                    parts.append({k: data[k] for k in data.files})
            except (OSError, ValueError, KeyError, EOFError):
                continue
        return parts

    def has_parts(self) -> bool:
        return any(self.folder.glob(f"{self.prefix}-*.npz"))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
