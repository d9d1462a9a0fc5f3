"""Shared fixtures: run the real `nrtool` console script, make small datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NRTOOL = Path(sys.executable).parent / "nrtool"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def assert_clean_failure(result: "Result", mentions: str, *outputs: Path) -> None:
    """Non-zero exit, exactly one stderr line naming ``mentions``, no traceback, no outputs."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    for path in outputs:
        assert not path.exists(), f"{path} was written despite the error"


def run_nrtool(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 600) -> Result:
    """Run the installed `nrtool` entry point (the same one a user runs)."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [str(NRTOOL), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"nrtool {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return result


def run_cli(*args: str, check: bool = True) -> Result:
    """Run nrtool in this process, through the same error boundary as the console script.

    For error paths and quick commands: no interpreter start-up or heavy re-imports per call.
    End-to-end checks of the installed entry point use :func:`run_nrtool`.
    """
    import contextlib
    import io

    from nrtool.cli.main import invoke

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = invoke([str(a) for a in args])
    result = Result(code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"nrtool {' '.join(map(str, args))} failed ({code}):\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def synth_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small procedural labelled mesh dataset: 2 classes x 3 shapes (2 train / 1 test)."""
    out = tmp_path_factory.mktemp("shapes")
    run_nrtool("synth", "shapes", "--out", out, "--classes", "2", "--per-class", "3", "--seed", "1", "--test-fraction", "0.34")
    return out


@pytest.fixture(scope="session")
def fitted_inrs(synth_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's procedural shapes fitted once (tiny preset, 60 steps): an ``inrs`` artifact
    for tests that need real INRs but not good ones. Read it; never write to it."""
    out = tmp_path_factory.mktemp("fitted") / "inrs.h5"
    run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "60", "--quiet")
    return out


def sample_cloud(mesh_path: Path, n: int = 20_000, seed: int = 0) -> np.ndarray:
    from nrtool.geometry.metrics import sample_surface
    from nrtool.io import load_shape

    shape = load_shape(mesh_path)
    return sample_surface(shape.vertices, shape.faces, n, seed)


def psb_test_meshes() -> list[Path]:
    return sorted((SHARED_DATA / "psb").glob("*/test/*.ply"))


requires_psb = pytest.mark.skipif(
    not (SHARED_DATA / "psb").is_dir(), reason=f"real data folder {SHARED_DATA / 'psb'} is absent"
)
