"""The output contract (issue 11): interrupts, content-identified resume, safe names, locks,
permissions and durability, folders that are not ours, unwritable outputs, the `val` rule,
PointNet's classes and sampling, messages and progress in logs.

Most checks run in process (``run_cli``); fits use a handful of optimisation steps, since
what is checked is which items are fitted, not how well.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

STEPS = ["--preset", "tiny", "--steps", "5", "--quiet"]


def _mesh_folder(synth_shapes: Path, target: Path, count: int = 3) -> Path:
    """``count`` of the session's procedural meshes copied into a flat folder (editable here)."""
    target.mkdir(parents=True)
    for mesh in sorted(synth_shapes.glob("*/train/*.ply"))[:count]:
        (target / mesh.name).write_bytes(mesh.read_bytes())
    return target


def _params_by_name(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as handle:
        names = [n.decode() for n in handle["names"][()]]
        return dict(zip(names, handle["params"][()]))


# ---------------------------------------------------------------- 1. Ctrl-C is never "damaged"


def test_interrupt_is_not_an_exception_and_reaches_the_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from nrtool.checkpoints import save_checkpoint
    from nrtool.errors import Interrupted
    from nrtool.training import TrainingState

    assert issubclass(Interrupted, BaseException) and not issubclass(Interrupted, Exception)
    out = tmp_path / "model.pt"
    state = TrainingState(out, "inr2vec", {"settings": 1})
    save_checkpoint(state.path, state.fmt, 1, {"fingerprint": json.dumps({"settings": 1}), "epoch": 3})
    before = state.path.read_bytes()

    def interrupted_load(*args, **kwargs):
        raise Interrupted()

    monkeypatch.setattr(torch, "load", interrupted_load)
    # Loading a resumable state when Ctrl-C arrives: the interrupt goes through, the state stays.
    with pytest.raises(Interrupted):
        state.load()
    assert state.path.read_bytes() == before
    # Through the CLI: exit 130 and the resume hint, never "damaged ... delete it".
    model = tmp_path / "clf.pt"
    save_checkpoint(model, "nrtool-classifier", 1, {})
    result = run_cli("classify", tmp_path / "emb.h5", "--model", model, "--out", tmp_path / "p.h5", check=False)
    assert result.returncode == 130, result
    assert "interrupted (rerun the same command to resume)" in result.stderr
    assert "damaged" not in result.stderr


def test_interrupt_while_reading_a_shape_is_not_a_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trimesh

    from nrtool.errors import Interrupted
    from nrtool.io import load_shape

    mesh = tmp_path / "box.obj"
    trimesh.creation.box().export(mesh)

    def interrupted(*args, **kwargs):
        raise Interrupted()

    monkeypatch.setattr(trimesh, "load_scene", interrupted)
    with pytest.raises(Interrupted):
        load_shape(mesh)


# ---------------------------------------------------------------- 2. resume identifies items by content


def test_edited_source_is_refitted_and_the_rest_kept(synth_shapes: Path, tmp_path: Path) -> None:
    from nrtool.artifacts.core import sha256_file

    shapes = _mesh_folder(synth_shapes, tmp_path / "shapes")
    out = tmp_path / "inrs.h5"
    run_cli("fit-inr", shapes, "--out", out, *STEPS)
    before = _params_by_name(out)
    edited = sorted(shapes.glob("*.ply"))[0]
    other = sorted(synth_shapes.glob("*/test/*.ply"))[0]
    edited.write_bytes(other.read_bytes())  # same name, other content
    result = run_cli("fit-inr", shapes, "--out", out, "--preset", "tiny", "--steps", "5", "--json")
    report = json.loads(result.stdout)
    assert report["fitted"] == 1 and report["skipped"] == 2, report
    assert "1 source(s) changed" in result.stderr
    after = _params_by_name(out)
    assert list(after) == list(before)  # the edited item keeps its place
    assert not np.allclose(after[edited.stem], before[edited.stem])
    for name in before:
        if name != edited.stem:
            np.testing.assert_array_equal(after[name], before[name])
    with h5py.File(out, "r") as handle:
        hashes = dict(zip([n.decode() for n in handle["names"][()]], [h.decode() for h in handle["source_sha256"][()]]))
    assert hashes[edited.stem] == sha256_file(edited)


def _interrupted_fit(shapes: Path, out: Path, monkeypatch: pytest.MonkeyPatch, after_batches: int = 1) -> None:
    """Fit with batches of one INR and interrupt after ``after_batches`` finished batches."""
    from nrtool.errors import Interrupted
    from nrtool.inr import pipeline
    from nrtool.inr.config import preset

    real = pipeline._fit_sources
    calls = {"n": 0}

    def fit_then_interrupt(*args, **kwargs):
        if calls["n"] == after_batches:
            raise Interrupted()
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_fit_sources", fit_then_interrupt)
    with pytest.raises(Interrupted):
        pipeline.fit_inrs([str(shapes)], out, preset("tiny").with_overrides(steps=5, batch=1))
    monkeypatch.setattr(pipeline, "_fit_sources", real)


def test_parts_of_a_run_on_other_inputs_are_refused(synth_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder_a = _mesh_folder(synth_shapes, tmp_path / "a")
    folder_b = tmp_path / "b"
    folder_b.mkdir()
    for mesh in sorted(synth_shapes.glob("*/test/*.ply")):
        (folder_b / mesh.name).write_bytes(mesh.read_bytes())
    out = tmp_path / "inrs.h5"
    _interrupted_fit(folder_a, out, monkeypatch)
    parts = out.with_name(out.name + ".parts")
    assert len(list(parts.glob("batch-*.npz"))) == 1
    # The same command on folder B must not put A's item into B's file, nor delete A's work.
    result = run_cli("fit-inr", folder_b, "--out", out, "--preset", "tiny", "--steps", "5", "--batch", "1", "--quiet",
                     check=False)
    assert_clean_failure(result, "other inputs", out)
    assert "rerun that command" in result.stderr and len(list(parts.glob("batch-*.npz"))) == 1
    # Back on folder A, the interrupted run resumes.
    result = run_cli("fit-inr", folder_a, "--out", out, "--preset", "tiny", "--steps", "5", "--batch", "1", "--json")
    assert json.loads(result.stdout)["fitted"] == 2 and "resumed 1 INR(s)" in result.stderr
    assert sorted(_params_by_name(out)) == sorted(p.stem for p in folder_a.glob("*.ply"))


def test_part_of_an_edited_source_is_refitted(synth_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = _mesh_folder(synth_shapes, tmp_path / "shapes")
    out = tmp_path / "inrs.h5"
    _interrupted_fit(shapes, out, monkeypatch)
    first = sorted(shapes.glob("*.ply"))[0]  # the batch that finished
    first.write_bytes(sorted(synth_shapes.glob("*/test/*.ply"))[0].read_bytes())
    result = run_cli("fit-inr", shapes, "--out", out, "--preset", "tiny", "--steps", "5", "--batch", "1", "--json")
    assert json.loads(result.stdout)["fitted"] == 3
    assert "changed since the interrupted run" in result.stderr


# ---------------------------------------------------------------- 3. item names never become paths


@pytest.mark.parametrize("hostile", ["../escaped", "a/b", "..", "", "bad\nname"])
def test_hostile_item_names_are_refused(synth_shapes: Path, tmp_path: Path, hostile: str) -> None:

    out = tmp_path / "inrs.h5"
    run_cli("fit-inr", sorted(synth_shapes.glob("*/train/*.ply"))[0], "--out", out, *STEPS)
    with h5py.File(out, "a") as handle:
        handle["names"][0] = hostile.encode()
    (tmp_path / "deep").mkdir()
    result = run_cli("reconstruct", out, "--out", tmp_path / "deep" / "recon", check=False)
    assert_clean_failure(result, str(out))
    assert "refusing this artifact" in result.stderr
    assert not any(tmp_path.glob("*.obj")) and not any((tmp_path / "deep").glob("*.obj"))


def test_writers_refuse_names_that_are_not_file_names(tmp_path: Path) -> None:
    from nrtool.artifacts.core import ItemInfo, safe_child
    from nrtool.artifacts.embeddings import Embeddings, write_embeddings
    from nrtool.errors import NrtoolError

    items = [ItemInfo("../x", None, None, "", 0, np.zeros(3), 1.0)]
    with pytest.raises(NrtoolError, match="path separator"):
        write_embeddings(tmp_path / "e.h5", Embeddings(np.ones((1, 4)), items))
    assert not (tmp_path / "e.h5").exists() and not list(tmp_path.iterdir())
    with pytest.raises(NrtoolError):
        safe_child(tmp_path, "..")
    assert safe_child(tmp_path, "chair_01", ".obj") == tmp_path / "chair_01.obj"


# ---------------------------------------------------------------- 4. one run per output


def test_second_run_on_a_locked_output_is_refused_with_the_pid(synth_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "inrs.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from nrtool.artifacts.core import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run_cli("fit-inr", synth_shapes, "--out", out, *STEPS, check=False)
        assert result.returncode == 2
        assert_clean_failure(result, f"pid {holder.pid}", out)
        result = run_cli("train", "inr2vec", tmp_path / "x.h5", "--out", out, check=False)
        assert result.returncode == 2 and f"pid {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves no stale lock: the kernel released it.
    run_cli("fit-inr", sorted(synth_shapes.glob("*/train/*.ply"))[0], "--out", out, *STEPS)
    assert out.exists() and not out.with_name(out.name + ".lock").exists()


def test_lock_file_reused_after_release_is_exclusive(tmp_path: Path) -> None:
    from nrtool.artifacts.core import OutputBusyError, output_lock

    out = tmp_path / "x.h5"
    with output_lock(out):
        with pytest.raises(OutputBusyError, match=f"pid {os.getpid()}"):
            output_lock(out).acquire()
    assert not (tmp_path / "x.h5.lock").exists()
    with output_lock(out):  # free again after release
        pass


# ---------------------------------------------------------------- 5. permissions and durability


def test_outputs_get_umask_permissions_and_are_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nrtool.artifacts.core import atomic_folder, atomic_output, atomic_write_bytes

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", str(Path(dst).resolve())))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    old = os.umask(0o022)
    try:
        final = tmp_path / "a.h5"
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"data")
        atomic_write_bytes(tmp_path / "b.json", b"{}")
        with atomic_folder(tmp_path / "folder") as staging:
            (staging / "c.txt").write_text("c")
    finally:
        os.umask(old)
    assert (final.stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "b.json").stat().st_mode & 0o777) == 0o644
    assert ((tmp_path / "folder").stat().st_mode & 0o777) == 0o755
    # Data synced before the rename, the folder entry after it.
    at = events.index(("replace", str(final.resolve())))
    assert events[at - 1][0] == "fsync" and events[at - 1][1].startswith(str(tmp_path.resolve() / ".a.h5."))
    assert events[at + 1] == ("fsync", str(tmp_path.resolve()))
    synced = [path for kind, path in events if kind == "fsync"]
    assert any(p.endswith("/c.txt") for p in synced)


# ---------------------------------------------------------------- 6. folders that are not ours


def test_force_never_replaces_a_folder_nrtool_did_not_write(tmp_path: Path) -> None:
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    result = run_cli("synth", "shapes", "--out", mine, "--classes", "1", "--per-class", "1", "--force", check=False)
    assert_clean_failure(result, "not written by nrtool")
    assert (mine / "thesis.tex").read_text() == "years of work"
    # A folder nrtool wrote is replaced with --force (and refused without it).
    ours = tmp_path / "shapes"
    run_cli("synth", "shapes", "--out", ours, "--classes", "1", "--per-class", "1")
    assert (ours / ".nrtool-folder.json").is_file()
    assert run_cli("synth", "shapes", "--out", ours, "--classes", "1", "--per-class", "1", check=False).returncode == 2
    run_cli("synth", "shapes", "--out", ours, "--classes", "2", "--per-class", "1", "--force")
    assert len(list(ours.glob("*/*/*.ply"))) == 2


def test_reconstruct_refuses_a_foreign_non_empty_folder(synth_shapes: Path, tmp_path: Path) -> None:
    mesh = sorted(synth_shapes.glob("*/train/*.ply"))[0]
    out = tmp_path / "inrs.h5"
    run_cli("fit-inr", mesh, "--out", out, *STEPS)
    folder = tmp_path / "meshes"
    folder.mkdir()
    precious = folder / f"{mesh.stem}.obj"  # same name as the item's reconstruction
    precious.write_text("# the user's own mesh\n")
    for extra in ([], ["--overwrite"]):
        result = run_cli("reconstruct", out, "--out", folder, *extra, "--quiet", check=False)
        assert_clean_failure(result, "holds no nrtool reconstructions")
    assert precious.read_text() == "# the user's own mesh\n"


def test_reconstruct_split_picks_items_and_refuses_an_absent_split(fitted_inrs: Path, tmp_path: Path) -> None:
    report = json.loads(run_cli("reconstruct", fitted_inrs, "--out", tmp_path / "test", "--split", "test",
                                "--resolution", "32", "--json", "--quiet").stdout)
    assert len(report["results"]) == 2  # one test shape per class
    result = run_cli("reconstruct", fitted_inrs, "--out", tmp_path / "none", "--split", "nope", check=False)
    assert_clean_failure(result, "no items with split nope", tmp_path / "none")


# ---------------------------------------------------------------- 7. unwritable outputs found first


def _unwritable_folder(tmp_path: Path) -> Path:
    """A real folder this process cannot create files in (read-only bits, or a system folder
    when running as root); skips where there is none."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    candidates = [folder, Path("/sys"), Path("/proc")]
    for candidate in candidates:
        probe = candidate / f".nrtool-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
        except OSError:
            return candidate
        probe.unlink()
    pytest.skip("no folder on this machine refuses writes to this user")


def test_unwritable_or_missing_outputs_fail_before_any_work(synth_shapes: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import nrtool.io.shapes as shapes_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    blocked = _unwritable_folder(tmp_path)
    monkeypatch.setattr(shapes_module, "load_shape", must_not_run)
    for out in (blocked / "inrs.h5", tmp_path / "missing" / "inrs.h5", tmp_path / "file.txt" / "inrs.h5"):
        (tmp_path / "file.txt").write_text("not a folder")
        result = run_cli("fit-inr", synth_shapes, "--out", out, *STEPS, check=False)
        assert_clean_failure(result, str(out))
        assert "internal error" not in result.stderr
    monkeypatch.undo()
    try:
        mesh = sorted(synth_shapes.glob("*/train/*.ply"))[0]
        inrs = tmp_path / "inrs.h5"
        run_cli("fit-inr", mesh, "--out", inrs, *STEPS)
        recon = tmp_path / "recon"
        result = run_cli("reconstruct", inrs, "--out", recon, "--preview", blocked / "p.png", "--quiet", check=False)
        assert_clean_failure(result, str(blocked / "p.png"))
        assert not recon.exists() or not any(recon.glob("*.obj"))  # no meshes left behind
        for command in (["train", "classifier", tmp_path / "emb.h5"], ["train", "pointnet", inrs],
                        ["train", "inr2vec", inrs], ["encode", inrs, "--model", tmp_path / "m.pt"]):
            result = run_cli(*command, "--out", blocked / "x.pt", "--quiet", check=False)
            assert_clean_failure(result, str(blocked / "x.pt"))
    finally:
        (tmp_path / "read-only").chmod(0o755)


def test_os_error_on_a_user_path_is_one_line_not_internal(synth_shapes: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from nrtool.inr import pipeline

    target = tmp_path / "inrs.h5"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(pipeline, "write_inrs", disk_full)
    result = run_cli("fit-inr", sorted(synth_shapes.glob("*/train/*.ply"))[0], "--out", target, *STEPS, check=False)
    assert result.returncode == 2
    assert_clean_failure(result, f"{target}: no space left on device")
    assert "internal error" not in result.stderr


# ---------------------------------------------------------------- 8. `val` is held out, always


def test_val_items_validate_and_never_train() -> None:
    from nrtool.artifacts.inrs import InrItem
    from nrtool.inr2vec.train import _train_rows, split_validation
    from nrtool.io.naming import train_val_split

    splits = ["train"] * 6 + ["val"] * 2 + ["test"] * 2 + [None]
    items = [InrItem(f"i{k}", "c", s, "", k, np.zeros(3), 1.0, final_loss=0.0, params=np.zeros(1))
             for k, s in enumerate(splits)]
    train, val = split_validation(items, count=8, seed=0)
    assert sorted(val) == [6, 7] and not set(train) & {6, 7, 8, 9}
    assert _train_rows(items) == [0, 1, 2, 3, 4, 5, 10]  # what trains with --val FILE too
    train_idx, val_idx = train_val_split(np.zeros(len(splits), dtype=np.int64), splits, 0.2, 0)
    assert val_idx.tolist() == [6, 7] and not set(train_idx.tolist()) & {6, 7, 8, 9}
    # Without val items, validation is carved from the train items only.
    plain = [dataclasses.replace(item, split="train" if item.split == "val" else item.split) for item in items]
    train, val = split_validation(plain, count=8, seed=0)
    assert not set(train) & set(val) and not set(train + val) & {8, 9}


# ---------------------------------------------------------------- 9. PointNet classes, seeds, empties


def test_pointnet_output_size_follows_the_class_list(tmp_path: Path) -> None:
    from nrtool.baselines.config import preset
    from nrtool.baselines.pointnet import load_pointnet, save_pointnet, train_pointnet

    rng = np.random.default_rng(0)
    points = rng.normal(size=(8, 64, 3)).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # class 2 ("cup") has no usable item
    config = dataclasses.replace(preset("tiny"), epochs=1, batch=4, points=32, widths=(16, 32), head=(16,),
                                 val_fraction=0.0)
    run = train_pointnet(points, labels, config, num_classes=3)
    save_pointnet(tmp_path / "pn.pt", run.best_state, config, ["ant", "bird", "cup"], "sdf", run.history)
    assert load_pointnet(tmp_path / "pn.pt").model(torch_tensor(points[:2])).shape == (2, 3)


def torch_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(array)


def test_pointnet_clouds_are_seeded_by_name_and_empties_reported(fitted_inrs: Path, tmp_path: Path) -> None:
    from nrtool.artifacts.inrs import load_inrs, write_inrs
    from nrtool.baselines.config import preset
    from nrtool.baselines.pointnet import (
        empty_items,
        points_from_inrs,
        save_pointnet,
        train_pointnet,
    )

    header, items = load_inrs(fitted_inrs)
    reordered = tmp_path / "reordered.h5"
    write_inrs(reordered, header, items[::-1])
    a, items_a = points_from_inrs(fitted_inrs, 64, resolution=24)
    b, items_b = points_from_inrs(reordered, 64, resolution=24)
    by_name = {item.name: b[i] for i, item in enumerate(items_b)}
    for i, item in enumerate(items_a):
        np.testing.assert_array_equal(a[i], by_name[item.name])
    # An INR without a surface (its final bias pushes the sdf above the clip everywhere).
    empty = dataclasses.replace(items[0], name="no_surface", params=items[0].params.copy())
    empty.params[-1] = 50.0
    with_empty = tmp_path / "with_empty.h5"
    write_inrs(with_empty, header, [*items, empty])
    classes = sorted({i.class_name for i in items})
    config = dataclasses.replace(preset("tiny"), epochs=1, batch=2, points=32, widths=(16, 32), head=(16,),
                                 resolution=24, val_fraction=0.0)
    labels = np.array([classes.index(i.class_name) for i in items])
    run = train_pointnet(a, labels, config, num_classes=len(classes))
    save_pointnet(tmp_path / "pn.pt", run.best_state, config, classes, header.field, run.history)
    result = run_cli("classify-points", with_empty, "--model", tmp_path / "pn.pt", "--out", tmp_path / "p.h5")
    count = int(empty_items(a).sum()) + 1
    assert f"{count} of {len(items) + 1} INRs reconstructed to nothing" in result.stderr, result.stderr
    report = json.loads(run_cli("classify-points", with_empty, "--model", tmp_path / "pn.pt", "--out",
                                tmp_path / "p.h5", "--json", "--quiet").stdout)
    assert "no_surface" in report["empty_reconstructions"] and len(report["empty_reconstructions"]) == count


# ---------------------------------------------------------------- 15. messages


def test_zero_area_mesh_is_named(tmp_path: Path) -> None:
    mesh = tmp_path / "flat.obj"
    mesh.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\n")
    result = run_cli("fit-inr", mesh, "--out", tmp_path / "x.h5", "--quiet", check=False)
    assert_clean_failure(result, f"{mesh}: mesh has zero surface area", tmp_path / "x.h5")


def test_sparse_point_cloud_gets_a_note(tmp_path: Path) -> None:
    cloud = tmp_path / "three.xyz"
    cloud.write_text("0 0 0\n1 0 0\n0 1 0.5\n")
    result = run_cli("fit-inr", cloud, "--out", tmp_path / "x.h5", "--preset", "tiny", "--steps", "2")
    assert "fewer than 100 points" in result.stderr and "three.xyz: 3" in result.stderr


def test_parent_of_two_modelnet_roots_is_labelled_by_class_and_split(synth_shapes: Path, tmp_path: Path) -> None:
    from nrtool.io import discover_inputs

    for dataset in ("set_a", "set_b"):
        for mesh in synth_shapes.glob("*/*/*.ply"):
            target = tmp_path / dataset / mesh.relative_to(synth_shapes)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(mesh.read_bytes())
    sources = discover_inputs([tmp_path])
    classes = {p.parent.parent.name for p in synth_shapes.glob("*/*/*.ply")}
    assert {s.class_name for s in sources} == classes
    assert {s.split for s in sources} == {"train", "test"}
    assert len({s.name for s in sources}) == len(sources) == 12


# ---------------------------------------------------------------- 16. progress in logs


def test_line_progress_speaks_during_one_long_item(capsys: pytest.CaptureFixture[str]) -> None:
    from nrtool.progress import LineProgress

    with LineProgress(heartbeat_s=0.2).task("fitting", 2, "INRs") as advance:
        time.sleep(0.9)  # one long item: the loop cannot report
        advance()
        advance()
    lines = capsys.readouterr().err.strip().splitlines()
    assert sum("still working" in line for line in lines) >= 2, lines
    assert lines[-1].startswith("fitting: 2/2 INRs")
