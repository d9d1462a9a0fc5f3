"""Shared fixtures: run nrtool (in process or as the real console script), make small datasets.

Heavy artifacts (fitted INRs, a trained inr2vec chain, a garment model) are built once per
session, in process, and kept in pytest's cache (``.pytest_cache/d/nrtool-fixtures``) under a
key made of every ``nrtool/**/*.py`` file's bytes, the versions of the libraries that compute
them, the fixture's parameters and the source of its builder: a second run on unchanged code
reuses them, any edit to nrtool rebuilds them. ``pytest --cache-clear`` (or ``-p
no:cacheprovider``) starts from nothing, like a fresh clone. Shared artifacts are read-only
for tests: a test that edits one copies it first; the session checks at its end that none was
changed (see :class:`SharedArtifacts`).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# Torch's OpenMP threads busy-wait for each other by default: on a loaded machine (another job on
# the 2 cores) two spinning threads slow each other down. Measured here, 4 garment epochs + 6
# INR fits: idle 15.5 s + 5.8 s either way; with 3 busy processes beside it 72.7 s + 56.5 s by
# default, 44.5 s + 20.4 s passive (one thread: 60.6 s + 26.1 s). Set before torch and numpy are
# imported; subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Under pytest-xdist (`make test` runs a worker per core) each worker's torch would start a thread
# per core: share the cores out instead, but keep two per worker, which the passive waits above
# make cheaper than one when both workers compute at once (and better when one is idle).
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(2, (os.cpu_count() or 2) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

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


def assert_clean_failure(result: Result, mentions: str, *outputs: Path) -> None:
    """Non-zero exit, exactly one stderr line naming ``mentions``, no traceback, no outputs."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    for path in outputs:
        assert not path.exists(), f"{path} was written despite the error"


def run_nrtool(*args: str, cwd: Path | None = None, check: bool = True, timeout: float = 600) -> Result:
    """Run the installed `nrtool` entry point (the same one a user runs).

    For the end-to-end checks of the console script only (start-up, signals, exit codes of a
    real process); everything else uses :func:`run_cli`, which is the same code minus the
    interpreter start-up and the re-imports.
    """
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


# ---------------------------------------------------------------- shared, cached artifacts


@functools.cache
def code_version() -> str:
    """sha256 of every nrtool/**/*.py file (path and bytes) and of the computing libraries' versions."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "nrtool").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for dist in ("torch", "numpy", "scipy", "trimesh", "open3d", "scikit-image", "h5py", "opencv-python-headless",
                 "opencv-contrib-python-headless", "opencv-python", "smplx"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}\0".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()


MANIFEST = ".nrtool-fixture.json"


def _manifest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below ``folder`` (the manifest itself left out)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            files[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _builder_source(build: Callable[[Path], None]) -> str:
    """``build``'s source, with that of the test-module functions and the constants it names."""
    names: set[str] = set()
    codes = [build.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if inspect.iscode(c)]
    parts = [inspect.getsource(build)]
    for name in sorted(names):
        value = build.__globals__.get(name)
        if inspect.isfunction(value) and value.__module__ == build.__module__:
            parts.append(inspect.getsource(value))
        elif isinstance(value, (str, int, float, tuple, list, dict)):
            parts.append(f"{name} = {value!r}")
    return "\n".join(parts)


class SharedArtifacts:
    """Folders of artifacts built once and shared by the session's tests (see the module docstring).

    ``get(name, params, build)`` returns a folder that ``build(folder)`` filled. With pytest's
    cache it lives in ``nrtool-fixtures/NAME-KEY`` and is reused by later sessions while the
    key (code version, ``params``, ``build``'s source) is the same and every file is as it was
    written; without the cache it is built in the session's temporary folder. Built in place
    (artifacts record absolute input paths), marked complete by the manifest written last.
    """

    def __init__(self, config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> None:
        cache = getattr(config, "cache", None)
        self.root = Path(cache.mkdir("nrtool-fixtures")) if cache is not None else None
        self.tmp_path_factory = tmp_path_factory
        self.handed_out: dict[Path, dict[str, str]] = {}
        self.timings: dict[str, str] = {}

    def get(self, name: str, params: dict, build: Callable[[Path], None]) -> Path:

        key = hashlib.sha256(json.dumps({"code": code_version(), "params": params, "build": _builder_source(build)},
                                        sort_keys=True, default=str).encode()).hexdigest()[:16]
        if self.root is None:
            folder = self.tmp_path_factory.mktemp(name) / "shared"
            return self._build(name, folder, build)
        # pytest-xdist workers share the cache: the first to ask builds, the others wait for it.
        with open(self.root / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            folder = self.root / f"{name}-{key}"
            manifest = folder / MANIFEST
            if manifest.is_file():
                recorded = json.loads(manifest.read_text())
                if recorded == _manifest(folder):
                    self.handed_out[folder] = recorded
                    self.timings.setdefault(name, "reused from the cache")
                    return folder
            for stale in self.root.glob(f"{name}-*"):  # older code versions, or a damaged copy
                shutil.rmtree(stale)
            return self._build(name, folder, build)

    def _build(self, name: str, folder: Path, build: Callable[[Path], None]) -> Path:
        import time

        folder.mkdir(parents=True)
        started = time.perf_counter()
        build(folder)
        self.timings[name] = f"built in {time.perf_counter() - started:.0f} s"
        recorded = _manifest(folder)
        (folder / MANIFEST).write_text(json.dumps(recorded, indent=1))
        self.handed_out[folder] = recorded
        return folder

    def check_untouched(self) -> list[str]:
        """Shared folders whose files a test changed, added or removed (their cache entry is dropped)."""
        changed = []
        for folder, recorded in self.handed_out.items():
            if folder.is_dir() and _manifest(folder) != recorded:
                changed.append(str(folder))
                (folder / MANIFEST).unlink(missing_ok=True)
        return changed


SHARED_KEY = pytest.StashKey["SharedArtifacts"]()


@pytest.fixture(scope="session")
def shared_artifacts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The session's :class:`SharedArtifacts`; at the end, fails if a test changed a shared folder."""
    shared = SharedArtifacts(request.config, tmp_path_factory)
    request.config.stash[SHARED_KEY] = shared
    yield shared
    changed = shared.check_untouched()
    assert not changed, f"tests wrote into shared fixtures (copy them first): {changed}"


# ---------------------------------------------------------------- datasets shared by several modules


@pytest.fixture(scope="session")
def synth_shapes(shared_artifacts: SharedArtifacts) -> Path:
    """A small procedural labelled mesh dataset: 2 classes x 3 shapes (2 train / 1 test). Read it;
    never write to it (copy what a test edits)."""

    def build(folder: Path) -> None:
        run_cli("synth", "shapes", "--out", folder / "shapes", "--classes", "2", "--per-class", "3", "--seed", "1",
                "--test-fraction", "0.34", "--quiet")

    return shared_artifacts.get("synth-shapes", {}, build) / "shapes"


@pytest.fixture(scope="session")
def fitted_inrs(synth_shapes: Path, shared_artifacts: SharedArtifacts) -> Path:
    """The session's procedural shapes fitted once (tiny preset, 60 steps): an ``inrs`` artifact
    for tests that need real INRs but not good ones. Read it; never write to it."""

    def build(folder: Path) -> None:
        run_cli("fit-inr", synth_shapes, "--out", folder / "inrs.h5", "--preset", "tiny", "--steps", "60", "--quiet")

    return shared_artifacts.get("fitted-inrs", {"shapes": str(synth_shapes)}, build) / "inrs.h5"


SEPARABLE = ("ellipsoid", "torus", "star_prism")
#: The fitting these bounds were measured on: `tiny` before its cosine schedule (lr 5e-4
#: constant, BCE). The thesis' encoder reads those INRs' weights better: with the current `tiny`
#: fits, the same chain scored accuracy 0.61 and decoded some INRs empty (lr 5e-4 with the
#: cosine: mAP@1 0.67; measured 2026-12-02, README), while ProbeGen and PointNet gained.
INR2VEC_FIT = ("--lr", "5e-4", "--schedule", "constant", "--loss", "bce")


@pytest.fixture(scope="session")
def trained_separable(shared_artifacts) -> dict[str, Path]:
    """3 well-separated procedural classes (18 train / 6 test each), tiny INRs, a trained inr2vec,
    the embeddings and a classifier: the whole chain, in process, cached across sessions (read-only).

    inr2vec trains as `nrtool train inr2vec --preset tiny --epochs 50 --batch 8` does, except that
    it validates every 5th epoch on 4 INRs at a 32^3 grid (the command: every epoch, 8 INRs at
    48^3), which keeps the validation's share of the training small: ~35 s instead of ~140 s.
    """

    def build(folder: Path) -> None:
        from nrtool.inr2vec.config import inr2vec_preset, train_preset
        from nrtool.inr2vec.train import train_inr2vec

        run_cli("synth", "shapes", "--out", folder / "shapes", "--families", ",".join(SEPARABLE), "--per-class", "24",
                "--test-fraction", "0.25", "--seed", "0", "--quiet")
        run_cli("fit-inr", folder / "shapes", "--out", folder / "inrs.h5", "--preset", "tiny", *INR2VEC_FIT, "--quiet")
        settings = train_preset("tiny").with_overrides(epochs=50, batch=8, val_every=5, val_items=4, val_resolution=32)
        train_inr2vec(folder / "inrs.h5", folder / "inr2vec.pt", inr2vec_preset("tiny"), settings, device="cpu")
        run_cli("encode", folder / "inrs.h5", "--model", folder / "inr2vec.pt", "--out", folder / "emb.h5", "--quiet")
        run_cli("train", "classifier", folder / "emb.h5", "--out", folder / "clf.pt", "--preset", "tiny", "--quiet")

    folder = shared_artifacts.get("inr2vec-separable", {"classes": SEPARABLE}, build)
    return {name: folder / name for name in ("inrs.h5", "inr2vec.pt", "emb.h5", "clf.pt")}


@pytest.fixture(scope="session")
def synth_body(shared_artifacts: SharedArtifacts) -> Path:
    """`nrtool synth body --resolution 0.03` (~2.6k vertices: fast, still a full humanoid); its
    ``--json`` summary is ``body.json`` beside it."""

    def build(folder: Path) -> None:
        result = run_cli("synth", "body", "--out", folder / "body.npz", "--resolution", "0.03", "--json")
        (folder / "body.json").write_text(result.stdout)

    return shared_artifacts.get("synth-body", {}, build) / "body.npz"


#: How the shared top model is trained (`nrtool train garment DATA --out top.pt ...`).
TOP_TRAINING = ("--category", "top", "--preset", "tiny", "--epochs", "15", "--val", "2", "--val-every", "1000",
                "--device", "cpu", "--quiet")


#: How the shared bottom model is trained: good enough to drape (its decoded bottoms lie within
#: ~2 cm of the meshes, ~7 s), for the layered-draping tests; narrower clouds and a faster
#: learning rate than the top's, since there are only 3 training bottoms (1 held out).
BOTTOM_TRAINING = ("--category", "bottom", "--preset", "tiny", "--epochs", "40", "--points", "128", "--queries", "1000",
                   "--lr", "3e-3", "--val", "1", "--val-every", "1000", "--val-resolution", "16", "--device", "cpu",
                   "--quiet")


@pytest.fixture(scope="session")
def garment_models(synth_body: Path, shared_artifacts: SharedArtifacts) -> dict[str, Path]:
    """Procedural garments on the shared body and two tiny models trained on them, for every test
    that needs a trained garment network (read-only):

    - ``train``: `synth garments --tops 16 --bottoms 4 --seed 0` (coarse: 0.03 m);
    - ``held``: 4 tops and a bottom of another seed (11), never trained on;
    - ``top``: a top model trained for a fixed 15 epochs of 3 steps (seeded: the same model on
      any machine; ~45 s on a quiet CPU), 2 tops held out and validated once, at the end;
    - ``bottom``: a bottom model trained for a fixed 40 epochs of one step (seeded), 1 of the 4
      bottoms held out: its training codes decode to bottoms close to their meshes, so the
      layered-draping tests can drape them.
    """

    def build(folder: Path) -> None:
        run_cli("synth", "garments", "--body", synth_body, "--out", folder / "train", "--tops", "16", "--bottoms", "4",
                "--resolution", "0.03", "--seed", "0", "--no-preview", "--quiet")
        run_cli("synth", "garments", "--body", synth_body, "--out", folder / "held", "--tops", "4", "--bottoms", "1",
                "--resolution", "0.03", "--seed", "11", "--no-preview", "--quiet")
        run_cli("train", "garment", folder / "train", "--out", folder / "top.pt", *TOP_TRAINING)
        run_cli("train", "garment", folder / "train", "--out", folder / "bottom.pt", *BOTTOM_TRAINING)

    folder = shared_artifacts.get("garment-models", {"body": str(synth_body), "top": TOP_TRAINING,
                                                     "bottom": BOTTOM_TRAINING}, build)
    return {"root": folder, "body": synth_body, "train": folder / "train", "held": folder / "held",
            "top": folder / "top.pt", "bottom": folder / "bottom.pt"}


#: `nrtool train skinning` options of the shared skinning field: tiny, half its epochs (6 of 12,
#: 900 steps, validated after epochs 3 and 6; ~30 s on 2 cores).
SKINNING_TRAINING = ("--preset", "tiny", "--epochs", "6", "--device", "cpu", "--json", "--quiet")


@pytest.fixture(scope="session")
def skinning_model(synth_body: Path, shared_artifacts: SharedArtifacts) -> dict[str, Path]:
    """``model``: the skinning field W(x), Δx(x, β) of the shared body (`nrtool train skinning`
    with SKINNING_TRAINING) and ``report``: its --json training report; shared by the skinning
    tests and every draping model of the session."""

    def build(folder: Path) -> None:
        result = run_cli("train", "skinning", "--body-model", synth_body, "--out", folder / "skin.pt",
                         *SKINNING_TRAINING)
        (folder / "report.json").write_text(result.stdout)

    folder = shared_artifacts.get("skinning", {"body": str(synth_body), "training": SKINNING_TRAINING}, build)
    return {"model": folder / "skin.pt", "report": folder / "report.json"}


#: `nrtool train drape` options of the shared top model (tiny preset, fixed steps, seeded).
DRAPE_TRAINING = ("--preset", "tiny", "--epochs", "8", "--steps-per-epoch", "30", "--val-poses", "6",
                  "--garment-resolution", "48", "--device", "cpu", "--json", "--quiet")


@pytest.fixture(scope="session")
def drape_models(garment_models: dict[str, Path], skinning_model: dict[str, Path], shared_artifacts) -> dict[str, Path]:
    """``skinning`` (tiny, the synth body), ``top`` (a tiny top draping model), ``report`` (its
    --json training report), ``motion`` (a procedural walk, AMASS format), ``z`` (a held-out top's code)."""

    def build(folder: Path) -> None:
        tops = sorted((garment_models["train"] / "tops").glob("*.obj"))[:4]
        run_cli("garment", "encode", *tops, "--model", garment_models["top"], "--out", folder / "codes.h5",
                "--device", "cpu", "--quiet")
        result = run_cli("train", "drape", "--garment-model", garment_models["top"], "--codes", folder / "codes.h5",
                         "--body-model",
                         garment_models["body"], "--poses", "procedural", "--skinning", skinning_model["model"],
                         "--out", folder / "drape-top.pt", *DRAPE_TRAINING)
        (folder / "report.json").write_text(result.stdout)
        run_cli("synth", "poses", "--out", folder / "walk.npz", "--motion", "walk", "--seconds", "1", "--fps", "30",
                "--seed", "5", "--quiet")
        run_cli("garment", "encode", garment_models["held"] / "tops" / "top_0000.obj", "--model", garment_models["top"],
                "--npy", folder / "z.npy", "--device", "cpu", "--quiet")

    folder = shared_artifacts.get("drape-models", {"body": str(garment_models["body"]), "training": DRAPE_TRAINING,
                                                   "skinning": str(skinning_model["model"])},
                                  build)
    return {"skinning": skinning_model["model"], "top": folder / "drape-top.pt", "report": folder / "report.json",
            "motion": folder / "walk.npz", "z": folder / "z.npy", **{k: garment_models[k] for k in ("body", "held")},
            "garment_top": garment_models["top"], "garment_bottom": garment_models["bottom"]}



#: `nrtool train drape` of the bottom model: the top model's settings (test_drape.DRAPE_TRAINING).
BOTTOM_DRAPE_TRAINING = ("--preset", "tiny", "--epochs", "8", "--steps-per-epoch", "30", "--val-poses", "6",
                         "--garment-resolution", "48", "--device", "cpu", "--json", "--quiet")
#: The intersection solver: 4 tops x 4 bottoms = 16 pairs, 180 steps, validated twice (each
#: validation drapes all 16 pairs on the 6 held-out bodies: ~5 s on 2 cores).
SOLVER_TRAINING = ("--preset", "tiny", "--epochs", "6", "--steps-per-epoch", "30", "--val-every", "3",
                   "--val-poses", "6", "--garment-resolution", "48", "--device", "cpu", "--json", "--quiet")

@pytest.fixture(scope="session")
def layer_models(drape_models: dict[str, Path], garment_models: dict[str, Path],
                 shared_artifacts) -> dict[str, Path]:
    """``bottom`` (a tiny bottom draping model on 4 training bottoms), ``bottom_report`` and
    ``solver_report`` (their --json training reports), ``solver`` (the intersection solver of
    test_drape's top model and this bottom model), ``zb`` (a held-out bottom's code), plus
    drape_models' ``top``, ``z``, ``motion``, ``body``."""

    def build(folder: Path) -> None:
        bottoms = sorted((garment_models["train"] / "bottoms").glob("*.obj"))[:4]
        run_cli("garment", "encode", *bottoms, "--model", garment_models["bottom"], "--out", folder / "bottoms.h5",
                "--device", "cpu", "--quiet")
        result = run_cli("train", "drape", "--garment-model", garment_models["bottom"], "--codes",
                         folder / "bottoms.h5", "--body-model", garment_models["body"], "--poses", "procedural",
                         "--skinning", drape_models["skinning"], "--out", folder / "drape-bottom.pt",
                         *BOTTOM_DRAPE_TRAINING)
        (folder / "bottom-report.json").write_text(result.stdout)
        # The tops: the 4 the top model was trained on (its checkpoint records them); every top
        # with every bottom.
        result = run_cli("train", "drape", "--top-model", drape_models["top"], "--bottom-model",
                         folder / "drape-bottom.pt", "--body-model", garment_models["body"], "--poses", "procedural",
                         "--out", folder / "drape-is.pt", *SOLVER_TRAINING)
        (folder / "solver-report.json").write_text(result.stdout)
        run_cli("garment", "encode", garment_models["held"] / "bottoms" / "bottom_0000.obj", "--model",
                garment_models["bottom"], "--npy", folder / "zb.npy", "--device", "cpu", "--quiet")

    folder = shared_artifacts.get("drape-layers", {"body": str(garment_models["body"]), "top": str(drape_models["top"]),
                                                   "bottom": BOTTOM_DRAPE_TRAINING, "solver": SOLVER_TRAINING}, build)
    return {"bottom": folder / "drape-bottom.pt", "solver": folder / "drape-is.pt", "zb": folder / "zb.npy",
            "bottom_report": folder / "bottom-report.json", "solver_report": folder / "solver-report.json",
            **{k: drape_models[k] for k in ("top", "z", "motion", "body")}}


# ---------------------------------------------------------------- real shapes shared by ProbeGen and NetSpace

PSB_CLASSES = ("airplane", "chair", "cup", "hand", "table")


@pytest.fixture(scope="session")
def psb_subset(shared_artifacts) -> dict[str, Path]:
    """5 PSB classes (8 train / 4 test meshes each, the first of each folder), tiny INRs, a
    ProbeGen encoder trained with the tiny defaults, its embeddings and a classifier on them, and
    the raw weights as embeddings: cached across sessions (read-only). NetSpace's SDF experiment
    uses the INRs."""

    def build(folder: Path) -> None:
        data = folder / "psb"
        for name in PSB_CLASSES:
            for split, count in (("train", 8), ("test", 4)):
                (data / name / split).mkdir(parents=True)
                for mesh in sorted((SHARED_DATA / "psb" / name / split).glob("*.ply"))[:count]:
                    (data / name / split / mesh.name).symlink_to(mesh)
        run_cli("fit-inr", data, "--out", folder / "inrs.h5", "--preset", "tiny", "--quiet")
        run_cli("train", "probegen", folder / "inrs.h5", "--out", folder / "pg.pt", "--quiet")
        run_cli("encode", folder / "inrs.h5", "--encoder", "probegen", "--model", folder / "pg.pt", "--out",
                folder / "pg.h5", "--quiet")
        run_cli("train", "classifier", folder / "pg.h5", "--out", folder / "clf.pt", "--quiet")
        run_cli("encode", folder / "inrs.h5", "--encoder", "raw", "--out", folder / "raw.h5", "--quiet")

    folder = shared_artifacts.get("probegen-psb-subset", {"classes": PSB_CLASSES}, build)
    return {name: folder / name for name in ("inrs.h5", "pg.pt", "pg.h5", "clf.pt", "raw.h5")}


#: Test modules that build the longest shared chains, collected first: under pytest-xdist each
#: starts on a worker of its own at once rather than last, behind the quick modules.
LONG_CHAINS_FIRST = ("test_netspace.py", "test_nerf.py", "test_inr2vec.py", "test_drape_layers.py", "test_fit_scan.py",
                     "test_drape.py", "test_netspace_sdf.py", "test_segmentation.py", "test_probegen.py",
                     "test_netspace_multi.py")
WORKER_TIMINGS = pytest.StashKey[dict]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONG_CHAINS_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_sessionfinish(session: pytest.Session) -> None:
    shared = session.config.stash.get(SHARED_KEY, None)
    if shared is not None and hasattr(session.config, "workeroutput"):  # an xdist worker: tell the controller
        session.config.workeroutput["shared_fixtures"] = shared.timings


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist controller: gather the workers' fixture timings (a build outranks a reuse)."""
    timings = node.config.stash.setdefault(WORKER_TIMINGS, {})
    for name, timing in getattr(node, "workeroutput", {}).get("shared_fixtures", {}).items():
        if name not in timings or timing.startswith("built"):
            timings[name] = timing


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    shared = config.stash.get(SHARED_KEY, None)
    timings = dict(shared.timings) if shared is not None else config.stash.get(WORKER_TIMINGS, {})
    if timings:
        terminalreporter.write_sep("-", "shared fixtures")
        for name, timing in timings.items():
            terminalreporter.write_line(f"{name}: {timing}")


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
