"""fit-inr / reconstruct / merge / info: in process (``run_cli``, the console script's error boundary),
plus end-to-end runs of the installed `nrtool`: a fit-inr -> reconstruct round trip, --version and
--help, a run killed mid-way and resumed, a run killed before its first item, and Ctrl-C (exit 130)."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import (
    NRTOOL,
    assert_clean_failure,
    psb_test_meshes,
    requires_psb,
    run_cli,
    run_nrtool,
    sample_cloud,
)


def params_of(path: Path) -> tuple[list[str], np.ndarray]:
    with h5py.File(path, "r") as handle:
        return [n.decode() for n in handle["names"][()]], handle["params"][()]


# ---------------------------------------------------------------- round trips per modality


def test_mesh_sdf_round_trip(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "inrs.h5"
    run_nrtool("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--quiet")  # the installed entry point
    info = json.loads(run_cli("info", out, "--json").stdout)
    assert info["kind"] == "inrs" and info["items"] == 6
    assert info["attributes"]["field"] == "sdf"
    assert info["per_split"] == {"test": 2, "train": 4}
    report = json.loads(run_nrtool("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json",
                                   "--resolution", "64", "--quiet").stdout)
    # A fit that learnt nothing gives the init's blob: Chamfer ~0.2 on these shapes. Measured:
    # Chamfer 0.0099, F-score 0.55 at 64^3 (the same at 96^3, in twice the time).
    assert report["chamfer_mean"] < 0.035, report
    assert report["fscore_mean"] > 0.4, report
    meshes = sorted((tmp_path / "recon").glob("*.obj"))
    assert len(meshes) == 6
    # A rerun (e.g. after an interruption) reuses finished files and redoes only missing ones.
    kept = {p: p.stat().st_mtime_ns for p in meshes[1:]}
    meshes[0].unlink()
    rerun = json.loads(run_cli("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json",
                                  "--resolution", "64", "--quiet").stdout)
    assert meshes[0].exists() and all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert abs(rerun["chamfer_mean"] - report["chamfer_mean"]) < 1e-3
    other = run_cli("reconstruct", out, "--out", tmp_path / "recon", "--resolution", "48", check=False)
    assert other.returncode == 2 and "--overwrite" in other.stderr


def test_point_cloud_udf_round_trip(synth_shapes: Path, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds"
    clouds.mkdir()
    for mesh in sorted(synth_shapes.glob("*/train/*.ply"))[:3]:
        np.save(clouds / f"{mesh.stem}.npy", sample_cloud(mesh))
    out = tmp_path / "udf.h5"
    run_cli("fit-inr", clouds, "--out", out, "--preset", "tiny", "--quiet")
    with h5py.File(out, "r") as handle:
        assert handle.attrs["field"] == "udf"
    report = json.loads(run_cli("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json", "--quiet").stdout)
    # F-score@0.01 is bounded by the clouds' own spacing (20k points here); a failed fit scores ~0.02.
    assert report["chamfer_mean"] < 0.03, report
    assert report["fscore_mean"] > 0.3, report


def test_voxel_occ_round_trip(tmp_path: Path) -> None:
    from nrtool.io import save_binvox

    grids = tmp_path / "voxels"
    grids.mkdir()
    axis = (np.arange(32) + 0.5) / 32 * 2 - 1
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    save_binvox(grids / "ball.binvox", (x**2 + y**2 + z**2) < 0.6**2)
    save_binvox(grids / "slab.binvox", (np.abs(x) < 0.7) & (np.abs(y) < 0.25) & (np.abs(z) < 0.5))
    out = tmp_path / "occ.h5"
    run_cli("fit-inr", grids, "--out", out, "--preset", "tiny", "--quiet")
    report = json.loads(run_cli("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json",
                                   "--voxel-resolution", "32", "--quiet").stdout)
    assert report["field"] == "occ"
    assert report["iou_mean"] > 0.85, report
    assert sorted(p.name for p in (tmp_path / "recon").glob("*.binvox")) == ["ball.binvox", "slab.binvox"]


@requires_psb
def test_real_psb_mesh_round_trip(tmp_path: Path) -> None:
    meshes = psb_test_meshes()[::40][:2]
    out = tmp_path / "psb.h5"
    run_cli("fit-inr", *meshes, "--out", out, "--preset", "tiny", "--quiet")
    report = json.loads(run_cli("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json", "--quiet").stdout)
    assert report["chamfer_mean"] < 0.05, report


# ---------------------------------------------------------------- determinism, shards, merge


def test_same_seed_gives_identical_parameters(synth_shapes: Path, tmp_path: Path) -> None:
    args = ["--preset", "tiny", "--steps", "40", "--quiet"]
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "a.h5", *args)
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "b.h5", *args, "--batch", "4")
    names_a, params_a = params_of(tmp_path / "a.h5")
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "a2.h5", *args)
    names_b, params_b = params_of(tmp_path / "b.h5")
    assert names_a == names_b
    np.testing.assert_array_equal(params_of(tmp_path / "a2.h5")[1], params_a)
    # Another batch size only changes float rounding inside the batched matmul.
    np.testing.assert_allclose(params_a, params_b, rtol=0, atol=1e-5)
    with h5py.File(tmp_path / "a.h5", "r") as handle:
        init = handle["shared_init"][()]
    assert not np.allclose(params_a[0], init), "parameters never moved from the shared init"
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "c.h5", "--preset", "tiny", "--steps", "40", "--seed", "1", "--quiet")
    assert not np.allclose(params_of(tmp_path / "c.h5")[1], params_a)


def test_shards_merge_back_to_the_full_run(synth_shapes: Path, tmp_path: Path) -> None:
    args = ["--preset", "tiny", "--steps", "30", "--quiet"]
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "full.h5", *args)
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "s2.h5", "--shard", "2/2", *args)
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "s1.h5", "--shard", "1/2", *args)
    assert len(params_of(tmp_path / "s1.h5")[0]) == 3
    run_cli("merge", tmp_path / "s2.h5", tmp_path / "s1.h5", "--out", tmp_path / "merged.h5")
    names_full, params_full = params_of(tmp_path / "full.h5")
    names_merged, params_merged = params_of(tmp_path / "merged.h5")
    assert names_merged == names_full
    np.testing.assert_allclose(params_merged, params_full, atol=1e-6)
    # A file with another architecture is refused.
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "wide.h5", "--hidden", "32", "--shard", "1/6", *args)
    bad = run_cli("merge", tmp_path / "s1.h5", tmp_path / "wide.h5", "--out", tmp_path / "bad.h5", check=False)
    assert bad.returncode != 0 and "wide.h5" in bad.stderr and "hidden" in bad.stderr
    assert not (tmp_path / "bad.h5").exists()


def test_rerun_resumes_and_other_settings_are_refused(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "inrs.h5"
    run_cli("fit-inr", synth_shapes / "class_00" if (synth_shapes / "class_00").exists() else synth_shapes,
               "--out", out, "--preset", "tiny", "--steps", "20", "--shard", "1/3", "--quiet")
    before = params_of(out)
    again = json.loads(run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "20", "--json", "--quiet").stdout)
    assert again["skipped"] == 2 and again["fitted"] == 4 and again["total"] == 6
    names, params = params_of(out)
    for name, row in zip(*before):
        np.testing.assert_array_equal(params[names.index(name)], row)
    refused = run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "25", check=False)
    assert refused.returncode == 2
    assert str(out) in refused.stderr and "steps" in refused.stderr and "Traceback" not in refused.stderr
    run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--steps", "25", "--overwrite", "--quiet")
    with h5py.File(out, "r") as handle:
        assert json.loads(handle.attrs["fit_config"])["steps"] == 25


def test_distance_losses_are_recorded_and_keep_old_files_resumable(synth_shapes: Path, tmp_path: Path) -> None:
    """`tiny`'s `--loss auto` fits sdf with l1 (the clipped distance's absolute error) and records
    l1; `--loss bce` (inr2vec's) is refused on resume under the default and, being what every
    file from before the option used, is left out of the identity, so those files resume."""
    import torch

    from nrtool.inr.config import preset
    from nrtool.inr.fields import field_loss

    logits, labels = torch.tensor([[0.0, 2.0, -1.0]]), torch.tensor([[0.2, 0.9, 0.5]])
    expected = (torch.sigmoid(logits) - labels).abs().mean(-1)
    torch.testing.assert_close(field_loss("sdf", logits, labels, loss="l1"), expected)
    tiny = preset("tiny")
    assert (tiny.distance_loss("sdf"), tiny.distance_loss("udf"), preset("paper").distance_loss("sdf")) == ("l1", "bce", "bce")
    out = tmp_path / "auto.h5"
    run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--quiet")
    with h5py.File(out, "r") as handle:
        assert json.loads(handle.attrs["fit_config"])["loss"] == "l1"
    report = json.loads(run_cli("reconstruct", out, "--out", tmp_path / "recon", "--metrics", "--json",
                                "--resolution", "64", "--quiet").stdout)
    # The bounds of test_mesh_sdf_round_trip.
    assert report["chamfer_mean"] < 0.035 and report["fscore_mean"] > 0.4, report
    refused = run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--loss", "bce", check=False)
    assert refused.returncode == 2 and "loss" in refused.stderr
    old_style = tmp_path / "bce.h5"
    run_cli("fit-inr", synth_shapes, "--out", old_style, "--preset", "tiny", "--loss", "bce", "--steps", "5", "--quiet")
    with h5py.File(old_style, "r") as handle:
        assert "loss" not in json.loads(handle.attrs["fit_config"])


def test_cosine_schedule_decays_the_rate_to_zero_and_constant_is_left_out_of_the_identity() -> None:
    import torch

    from nrtool.inr.config import preset
    from nrtool.inr.fit import _scheduler

    config = dataclasses.replace(preset("tiny"), steps=10, lr=1e-3, schedule="cosine")
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = _scheduler(optimizer, config)
    rates = []
    for _ in range(config.steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1e-3) and rates[5] == pytest.approx(5e-4) and rates[-1] < 3e-5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    constant = dataclasses.replace(config, schedule="constant")
    assert _scheduler(optimizer, constant) is None
    assert "schedule" not in constant.identity("sdf") and config.identity("sdf")["schedule"] == "cosine"


# ---------------------------------------------------------------- interruption


#: Steps per INR in the interruption tests: what they check is which items are fitted and that
#: resumed ones are bit-identical, not how well; few steps keep three fits of six items short.
KILL_STEPS = ("--steps", "60")
#: How long a started fit may take to show that it is fitting (start-up and imports included):
#: generous, for a slow or busy machine; the tests wait for the evidence, never for a fixed time.
START_DEADLINE_S = 300


def _start_fit(inputs: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(NRTOOL), "fit-inr", str(inputs), "--out", str(out), "--preset", "tiny",
                             "--batch", "1", "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_until(proc: subprocess.Popen, done, what: str) -> None:
    """Poll ``done()`` until it holds; fail if the process ends first or START_DEADLINE_S passes."""
    deadline = time.monotonic() + START_DEADLINE_S
    while not done():
        if proc.poll() is not None:
            raise AssertionError(f"fit-inr ended ({proc.returncode}) before {what}: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no sign of {what} after {START_DEADLINE_S} s")
        time.sleep(0.01)


def test_killed_run_resumes_with_every_item_once(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "inrs.h5"
    parts = tmp_path / "inrs.h5.parts"
    proc = _start_fit(synth_shapes, out, *KILL_STEPS)
    # Evidence that fitting is under way: two finished part files (one INR per batch here).
    _wait_until(proc, lambda: len(list(parts.glob("batch-*.npz"))) >= 2, "two finished batches in OUT.parts/")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(parts.glob("batch-*.npz")))
    assert 2 <= finished < 6, "the kill should land mid-run"
    assert not out.exists(), "a killed run must not leave a file under the final name"
    report = json.loads(run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "tiny", "--batch", "1", *KILL_STEPS,
                                "--json", "--quiet").stdout)
    assert report["fitted"] == 6 - finished and report["total"] == 6
    assert not parts.exists()
    names, params = params_of(out)
    assert len(names) == len(set(names)) == 6
    # Resumed INRs are the very ones an uninterrupted run gives.
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "clean.h5", "--preset", "tiny", "--batch", "1", *KILL_STEPS, "--quiet")
    clean_names, clean_params = params_of(tmp_path / "clean.h5")
    assert clean_names == names
    np.testing.assert_array_equal(params, clean_params)


def test_run_killed_before_any_item_leaves_no_output(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "inrs.h5"
    parts = tmp_path / "inrs.h5.parts"
    proc = _start_fit(synth_shapes, out, "--steps", "100000")
    # Evidence that it is fitting its first item: the run's settings recorded in OUT.parts/.
    _wait_until(proc, (parts / "settings.json").is_file, "OUT.parts/settings.json")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert not list(parts.glob("batch-*.npz"))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".h5") or ".tmp" in p.name]


def test_ctrl_c_exits_130_and_keeps_finished_batches(synth_shapes: Path, tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) to the installed `nrtool`: exit status 130, one line saying how to resume,
    no output under the final name, finished batches kept for the rerun."""
    out = tmp_path / "inrs.h5"
    parts = tmp_path / "inrs.h5.parts"
    proc = _start_fit(synth_shapes, out, *KILL_STEPS)
    _wait_until(proc, lambda: len(list(parts.glob("batch-*.npz"))) >= 1, "a finished batch in OUT.parts/")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=START_DEADLINE_S)
    assert proc.returncode == 130, stderr
    assert stderr.decode().strip().splitlines() == ["nrtool: interrupted (rerun the same command to resume)"]
    assert not out.exists()
    assert 1 <= len(list(parts.glob("batch-*.npz"))) < 6


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "filename, content, problem",
    [
        ("broken.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nproperty float x\nend_header\n\x00\x01", None),
        ("empty.xyz", b"", None),
        ("nan.npy", None, "nan"),
        ("shape.abc", b"hello", None),
    ],
)
def test_bad_inputs_fail_in_one_line(tmp_path: Path, filename: str, content: bytes | None, problem: str | None) -> None:
    path = tmp_path / filename
    if content is not None:
        path.write_bytes(content)
    else:
        cloud = np.random.default_rng(0).normal(size=(100, 3))
        cloud[5, 1] = np.nan
        np.save(path, cloud)
    out = tmp_path / "out.h5"
    result = run_cli("fit-inr", path, "--out", out, "--quiet", check=False)
    assert_clean_failure(result, str(path), out)
    if problem:
        assert problem in result.stderr.lower()


def test_open_mesh_with_sdf_is_refused(tmp_path: Path) -> None:
    from nrtool.io import save_mesh

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2]])  # a tetrahedron missing one face
    mesh = tmp_path / "open.obj"
    save_mesh(mesh, vertices, faces)
    out = tmp_path / "out.h5"
    result = run_cli("fit-inr", mesh, "--out", out, "--field", "sdf", check=False)
    assert_clean_failure(result, str(mesh), out)
    assert "open" in result.stderr or "watertight" in result.stderr


def test_wrong_artifact_kind_and_impossible_options(synth_shapes: Path, tmp_path: Path) -> None:
    fake = tmp_path / "emb.h5"
    with h5py.File(fake, "w") as handle:
        handle.attrs["nrtool_kind"] = "embeddings"
        handle.attrs["nrtool_schema"] = 1
    result = run_cli("reconstruct", fake, "--out", tmp_path / "recon", check=False)
    assert_clean_failure(result, str(fake))
    assert "'embeddings'" in result.stderr and "'inrs'" in result.stderr
    plain = tmp_path / "plain.h5"
    h5py.File(plain, "w").close()
    assert_clean_failure(run_cli("info", plain, check=False), str(plain))
    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    assert_clean_failure(run_cli("reconstruct", notes, "--out", tmp_path / "r2", check=False), str(notes))
    out = tmp_path / "out.h5"
    shard = run_cli("fit-inr", synth_shapes, "--out", out, "--shard", "3/2", check=False)
    assert_clean_failure(shard, "3/2", out)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", out, "--lr", "-1", check=False), "lr", out)
    assert_clean_failure(run_cli("fit-inr", synth_shapes, "--out", out, "--preset", "huge", check=False), "huge", out)
    assert_clean_failure(run_cli("fit-inr", tmp_path / "missing", "--out", out, check=False), "missing", out)
    # --debug lets the error through the boundary: Python prints its traceback.
    from nrtool.errors import NrtoolError

    with pytest.raises(NrtoolError, match="missing"):
        run_cli("--debug", "fit-inr", tmp_path / "missing", "--out", out)
    assert not out.exists()


def test_version_and_help_list_every_command() -> None:
    from nrtool import __version__

    assert run_nrtool("--version").stdout.strip() == f"nrtool {__version__}"  # the installed entry point
    help_text = run_nrtool("--help").stdout
    for command in ("fit-inr", "reconstruct", "merge", "info", "synth"):
        assert command in help_text
    for command in (["fit-inr"], ["reconstruct"], ["merge"], ["info"], ["synth", "shapes"]):
        assert "Example" in run_cli(*command, "--help").stdout


# ---------------------------------------------------------------- precomputed ground truth


def test_samples_artifact_fits_like_shapes_without_geometry_libraries(synth_shapes: Path, tmp_path: Path) -> None:
    import sys

    samples = tmp_path / "samples.h5"
    run_cli("sample", synth_shapes, "--out", samples, "--quiet")
    info = json.loads(run_cli("info", samples, "--json").stdout)
    assert info["kind"] == "samples" and info["items"] == 6
    run_cli("fit-inr", synth_shapes, "--out", tmp_path / "direct.h5", "--steps", "30", "--quiet")
    # A bare GPU node: the geometry stack is missing, only torch + h5py (+ the CLI's typer/rich).
    blocked = ("open3d", "trimesh", "pykdtree", "skimage", "scipy", "matplotlib")
    script = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        f"sys.argv = ['nrtool', 'fit-inr', {str(samples)!r}, '--out', {str(tmp_path / 'gpu.h5')!r}, '--steps', '30', '-q']\n"
        "from nrtool.cli.main import run\n"
        "run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    names_direct, params_direct = params_of(tmp_path / "direct.h5")
    names_gpu, params_gpu = params_of(tmp_path / "gpu.h5")
    assert names_gpu == names_direct
    np.testing.assert_array_equal(params_gpu, params_direct)
    wrong = run_cli("fit-inr", samples, "--out", tmp_path / "x.h5", "--field", "udf", check=False)
    assert_clean_failure(wrong, str(samples), tmp_path / "x.h5")
