"""Body and motion inputs beyond the plain AMASS + SMPL case (issue 11).

Per-joint pose arrays, files without betas, Y-up motion files, rigged-mesh bodies without a
shape space, pickles whose headers claim huge arrays, and non-motion files given as --pose.
Everything runs on the procedural body and motions, in-process, with a few frames.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from nrtool.artifacts.body_sequence import read_body_sequence
from nrtool.body import amass
from nrtool.body.body_model import (
    SMPL_PARENTS,
    BodyModel,
    load_model_data,
    load_pickle_restricted,
)
from nrtool.errors import InputFileError, NrtoolError
from nrtool.synth.body import JOINTS
from nrtool.synth.poses import make_motion


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("body_inputs")


@pytest.fixture(scope="module")
def body_file(synth_body: Path) -> Path:
    """The session's `synth body --resolution 0.03` (~2.6k vertices; read-only)."""
    return synth_body


@pytest.fixture(scope="module")
def body_arrays(body_file: Path) -> dict[str, np.ndarray]:
    with np.load(body_file, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def full_model(body_file: Path) -> BodyModel:
    return BodyModel(body_file)


@pytest.fixture(scope="module")
def walk() -> amass.MotionSequence:
    """A short Y-up walk (6 frames at 60 fps) with a non-mean shape."""
    return make_motion("walk", seconds=0.1, fps=60.0, betas_scale=0.5)


def _ids(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k.startswith("nrtool_vertex_ids_")}


@pytest.fixture(scope="module")
def rigged_file(folder: Path, body_arrays: dict[str, np.ndarray]) -> Path:
    """The procedural body as a rigged mesh: no shapedirs, posedirs or J_regressor; joints stored."""
    path = folder / "rigged.npz"
    np.savez(
        path,
        vertices=body_arrays["v_template"],
        faces=body_arrays["f"],
        weights=body_arrays["weights"],
        joints=body_arrays["J"],
        parents=np.array(SMPL_PARENTS),
        **_ids(body_arrays),
    )
    return path


def _pose(body: Path, motion: Path, out: Path, *extra: str) -> tuple[dict, dict, str]:
    """``body pose --format h5``: (JSON summary, body-sequence arrays, stderr)."""
    result = run_cli("body", "pose", "-m", body, "-p", motion, "-o", out, "--format", "h5", "--sheet-frames", "0", "--json", *extra)
    return json.loads(result.stdout), read_body_sequence(out / "body_sequence.h5"), result.stderr


def _head_above_pelvis(joints: np.ndarray, axis: int) -> np.ndarray:
    return joints[:, 15, axis] - joints[:, 0, axis]


# --------------------------------------------------------------------------------------------
# 1. Pose layouts: (T, J, 3), single frames, no betas
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("joints, layout", [(24, "smpl"), (52, "smplh"), (55, "smplx"), (22, "body22")])
def test_per_joint_poses_are_flattened(tmp_path: Path, joints: int, layout: str) -> None:
    poses = np.random.default_rng(joints).normal(0, 0.3, (4, joints, 3))
    path = tmp_path / "per_joint.npz"
    np.savez(path, poses=poses, trans=np.zeros((4, 3)), betas=np.zeros(16), mocap_framerate=30.0)
    seq = amass.read_amass(path)
    flat = poses.reshape(4, -1)
    assert seq.poses.shape == (4, 72) and seq.source_layout == layout
    np.testing.assert_array_equal(seq.poses[:, :66], flat[:, :66])
    if joints == 24:
        np.testing.assert_array_equal(seq.poses, flat)


def test_per_joint_single_frame_and_bad_joint_count(tmp_path: Path) -> None:
    one = tmp_path / "one.npz"
    np.savez(one, poses=np.full((24, 3), 0.1))
    seq = amass.read_amass(one)
    assert seq.num_frames == 1 and np.allclose(seq.poses, 0.1)
    assert any("single frame of 24 joints" in n for n in seq.notes)
    bad = tmp_path / "bad.npz"
    np.savez(bad, poses=np.zeros((4, 30, 3)))
    with pytest.raises(InputFileError, match=r"bad.npz: poses has shape \(4, 30, 3\).*J one of 24"):
        amass.read_amass(bad)


def test_trans_without_betas_is_mean_shape_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "nobetas.npz"
    trans = np.random.default_rng(0).normal(0, 0.2, (3, 3))
    np.savez(path, poses=np.zeros((3, 72)), trans=trans, mocap_framerate=30.0)
    seq = amass.read_amass(path)
    assert not seq.betas.any()
    np.testing.assert_array_equal(seq.trans, trans)
    assert any("no betas" in n and "zero betas" in n for n in seq.notes)
    assert not any("no trans" in n for n in seq.notes)


def test_npy_of_poses_is_read(tmp_path: Path) -> None:
    path = tmp_path / "poses.npy"
    np.save(path, np.zeros((5, 24, 3)))
    seq = amass.read_amass(path)
    assert seq.num_frames == 5 and seq.fps is None and any(".npy" in n for n in seq.notes)


# --------------------------------------------------------------------------------------------
# 2. Up axis: Z-up (AMASS) and Y-up files both give an upright, Y-up body
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk_files(folder: Path, walk: amass.MotionSequence, full_model: BodyModel) -> dict[str, Path]:
    """The same walk written Z-up as AMASS does (SMPL+H columns) and Y-up (SMPL columns)."""
    z_up = folder / "walk_zup.npz"
    # The shaped body's pelvis makes the axis change exact (see amass.z_up_to_y_up).
    amass.write_amass(z_up, walk, layout="smplh", pelvis=full_model.rest_pelvis(walk.betas[:10]))
    y_up = folder / "walk_yup.npz"
    np.savez(y_up, poses=walk.poses, trans=walk.trans, betas=walk.betas, mocap_framerate=60.0)
    return {"z": z_up, "y": y_up}


def test_body_pose_on_per_joint_poses(tmp_path: Path, body_file: Path, walk_files: dict[str, Path]) -> None:
    """AMASS's SMPL+H poses stored as (T, 52, 3) pose the body as the (T, 156) file does."""
    with np.load(walk_files["z"]) as archive:
        arrays = {k: archive[k] for k in archive.files}
    per_joint = tmp_path / "walk_52x3.npz"
    np.savez(per_joint, **{**arrays, "poses": arrays["poses"].reshape(-1, 52, 3)})
    summary, seq, _ = _pose(body_file, per_joint, tmp_path / "per_joint")
    _, ref, _ = _pose(body_file, walk_files["z"], tmp_path / "flat")
    assert summary["source_layout"] == "smplh" and summary["frames"] == 6
    np.testing.assert_array_equal(seq["vertices"], ref["vertices"])


def test_zup_and_yup_files_give_the_same_upright_body(tmp_path: Path, body_file: Path, walk_files: dict[str, Path]) -> None:
    results = {axis: _pose(body_file, path, tmp_path / axis) for axis, path in walk_files.items()}
    for axis, (summary, seq, _) in results.items():
        assert np.all(_head_above_pelvis(seq["joints"], 1) > 0.3), axis  # height along +Y
        assert np.abs(_head_above_pelvis(seq["joints"], 2)).max() < 0.2, axis
        height = seq["vertices"][:, :, 1].max(axis=1) - seq["vertices"][:, :, 1].min(axis=1)
        assert np.all(height > 1.4), axis
    for axis, (summary, _, _) in results.items():
        assert summary["source_up_axis"] == axis and summary["up_axis"] == "y"
    np.testing.assert_allclose(results["y"][1]["vertices"], results["z"][1]["vertices"], atol=1e-4)
    assert "Y-up" in results["y"][2] and "Y-up" not in results["z"][2]  # a note for the non-AMASS frame only
    assert "not +Y" not in results["y"][2] + results["z"][2]  # no upright warning


def test_forced_up_axis_and_keep_z_up(tmp_path: Path, body_file: Path, walk_files: dict[str, Path]) -> None:
    # Forcing the wrong axis lays the body flat, and the note says so.
    summary, seq, stderr = _pose(body_file, walk_files["y"], tmp_path / "forced", "--source-up", "z")
    assert summary["source_up_axis"] == "z"
    assert np.all(np.abs(_head_above_pelvis(seq["joints"], 1)) < 0.2)
    assert "pelvis->head direction is -Z, not +Y" in stderr and "--source-up" in stderr
    # --keep-z-up writes Z-up bodies whichever way the file is stored.
    for axis, path in walk_files.items():
        summary, seq, _ = _pose(body_file, path, tmp_path / f"keep_{axis}", "--keep-z-up")
        assert summary["up_axis"] == "z" and np.all(_head_above_pelvis(seq["joints"], 2) > 0.3), axis
    bad = run_cli("body", "pose", "-m", body_file, "-p", walk_files["y"], "-o", tmp_path / "bad", "--source-up", "x", check=False)
    assert_clean_failure(bad, "--source-up 'x'", tmp_path / "bad")


def test_detect_up_axis_without_a_body_model_and_when_unclear(walk: amass.MotionSequence) -> None:
    from scipy.spatial.transform import Rotation

    z_up = amass.y_up_to_z_up(walk, JOINTS[0])
    assert amass.detect_up_axis(z_up.poses)[0] == "z"  # straight-spine skeleton
    assert amass.detect_up_axis(walk.poses, JOINTS)[0] == "y"
    lying = walk.poses.copy()  # rotated 90 degrees about Z: head along -X
    lying[:, :3] = (Rotation.from_rotvec([0, 0, np.pi / 2]) * Rotation.from_rotvec(lying[:, :3])).as_rotvec()
    axis, found = amass.detect_up_axis(lying, JOINTS)
    assert axis is None and found == "-X"
    resolved = amass.resolve_up_axis(amass.MotionSequence(lying, walk.trans, walk.betas), "auto", JOINTS)
    assert resolved.up_axis == "z" and any("could not tell" in n for n in resolved.notes)


# --------------------------------------------------------------------------------------------
# 3. Rigged-mesh bodies (no shape space)
# --------------------------------------------------------------------------------------------


def test_rigged_mesh_poses_like_the_full_model_at_zero_betas(rigged_file: Path, full_model: BodyModel) -> None:
    import torch

    rigged = BodyModel(rigged_file)
    assert rigged.kind == "rigged" and rigged.num_betas == 0 and not rigged.has_shape_space
    assert full_model.kind == "smpl"
    poses = np.random.default_rng(3).normal(0, 0.4, (4, 72))
    trans = np.random.default_rng(4).normal(0, 0.3, (4, 3))
    with torch.no_grad():
        a, b = full_model.forward(poses, np.zeros(10), trans), rigged.forward(poses, None, trans)
    for key in ("vertices", "joints", "transforms", "rest_joints", "keypoints"):
        np.testing.assert_allclose(getattr(b, key).numpy(), getattr(a, key).numpy(), atol=2e-6, err_msg=key)
    np.testing.assert_allclose(b.normals.numpy(), a.normals.numpy(), atol=1e-4)
    assert b.keypoints.shape == (4, 21, 3)
    np.testing.assert_allclose(rigged.rest_pelvis(), full_model.rest_pelvis(), atol=1e-6)
    sequence = rigged.pose_sequence(poses, trans=trans)
    assert sequence["transforms"].shape == (4, 24, 4, 4)


def test_rigged_mesh_with_posedirs_and_regressor_matches_smplx(tmp_path: Path, body_arrays: dict[str, np.ndarray], full_model: BodyModel) -> None:
    """SMPL key names, joints from J_regressor, non-zero pose correctives: as smplx poses them."""
    import torch

    posedirs = np.random.default_rng(5).normal(0, 1e-3, body_arrays["posedirs"].shape)
    full = tmp_path / "full_posedirs.npz"
    np.savez(full, **{**body_arrays, "posedirs": posedirs})
    rigged = tmp_path / "rigged_posedirs.npz"
    keep = ("v_template", "f", "weights", "J_regressor", "kintree_table")
    np.savez(rigged, posedirs=posedirs, **{k: body_arrays[k] for k in keep})
    data = load_model_data(rigged)
    np.testing.assert_allclose(data["J"], JOINTS, atol=1e-9)  # J_regressor @ v_template
    poses = np.random.default_rng(6).normal(0, 0.4, (3, 72))
    with torch.no_grad():
        a, b = BodyModel(full).forward(poses), BodyModel(rigged).forward(poses)
        without = full_model.forward(poses)
    assert np.abs(a.vertices.numpy() - without.vertices.numpy()).max() > 1e-3  # the correctives matter
    np.testing.assert_allclose(b.vertices.numpy(), a.vertices.numpy(), atol=2e-6)
    np.testing.assert_allclose(b.joints.numpy(), a.joints.numpy(), atol=2e-6)


def test_rigged_mesh_refuses_betas(rigged_file: Path) -> None:
    rigged = BodyModel(rigged_file)
    rigged.forward(np.zeros((1, 72)), np.zeros(10))  # zero betas: fine
    with pytest.raises(InputFileError, match="rigged.npz: is a rigged mesh without a shape space"):
        rigged.forward(np.zeros((1, 72)), np.ones(10))


def test_body_pose_on_a_rigged_mesh(tmp_path: Path, rigged_file: Path, body_file: Path, walk_files: dict[str, Path]) -> None:
    summary, seq, stderr = _pose(rigged_file, walk_files["z"], tmp_path / "rigged")
    assert summary["body_kind"] == "rigged" and summary["frames"] == 6
    assert seq["transforms"].shape == (6, 24, 4, 4) and seq["betas"].shape == (0,)
    assert "betas are ignored" in stderr and "rigged mesh" in stderr  # the walk has a non-mean shape
    assert np.all(_head_above_pelvis(seq["joints"], 1) > 0.3)
    # The same as the full model posed at beta = 0.
    zero = tmp_path / "walk_zero_betas.npz"
    with np.load(walk_files["z"]) as archive:
        np.savez(zero, **{**{k: archive[k] for k in archive.files}, "betas": np.zeros(16)})
    _, ref, _ = _pose(body_file, zero, tmp_path / "full")
    np.testing.assert_allclose(seq["vertices"], ref["vertices"], atol=2e-5)
    # Meshes and a contact sheet too.
    out = tmp_path / "rigged_obj"
    run_cli("body", "pose", "-m", rigged_file, "-p", walk_files["z"], "-o", out, "--max-frames", "2", "--sheet-frames", "1")
    assert len(list(out.glob("frame_*.obj"))) == 2 and (out / "contact_sheet.png").is_file()


def test_rigged_mesh_errors(tmp_path: Path, body_arrays: dict[str, np.ndarray], walk_files: dict[str, Path]) -> None:
    base = {"vertices": body_arrays["v_template"], "faces": body_arrays["f"], "weights": body_arrays["weights"], "joints": body_arrays["J"], "parents": np.array(SMPL_PARENTS)}
    cases = {
        "noweights": ({k: v for k, v in base.items() if k != "weights"}, "nor a rigged mesh: missing weights"),
        "joints30": ({**base, "parents": np.arange(-1, 29)}, "the skeleton has 30 joints; nrtool poses SMPL's 24"),
        "badsum": ({**base, "weights": 2 * base["weights"]}, "sum to 1"),
        "joints": ({**base, "joints": np.zeros((24, 2))}, r"joints must have shape \(24, 3\)"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(InputFileError, match=message):
            load_model_data(tmp_path / f"{name}.npz")
    out = tmp_path / "out"
    result = run_cli("body", "pose", "-m", tmp_path / "joints30.npz", "-p", walk_files["z"], "-o", out, check=False)
    assert_clean_failure(result, "joints30.npz: the skeleton has 30 joints", out)


# --------------------------------------------------------------------------------------------
# 4. Allocations sized by a file's own header
# --------------------------------------------------------------------------------------------


def _pickle(path: Path, obj: object) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
    return path


class _Reduce:
    """Pickles as ``func(*args)`` with optional BUILD ``state``: crafts hostile pickles."""

    def __init__(self, func: object, args: tuple, state: object = None) -> None:
        self.value = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.value


def test_sparse_matrix_with_a_huge_stated_shape_is_refused(tmp_path: Path, body_arrays: dict[str, np.ndarray], walk_files: dict[str, Path]) -> None:
    import scipy.sparse

    huge = scipy.sparse.csc_matrix(np.eye(3))
    huge._shape = (10_000_000, 10_000_000)  # the header lies: 1e14 entries, 800 TB dense
    path = _pickle(tmp_path / "huge.pkl", {**{k: body_arrays[k] for k in ("v_template", "f")}, "J_regressor": huge})
    with pytest.raises(InputFileError, match=r"huge.pkl: 'J_regressor': sparse matrix of shape \(10000000, 10000000\) is larger"):
        load_pickle_restricted(path)  # refused from the stated shape, before anything is allocated
    out = tmp_path / "out"
    result = run_cli("body", "pose", "-m", path, "-p", walk_files["z"], "-o", out, check=False)
    assert_clean_failure(result, "huge.pkl", out)
    for name, (indices, indptr) in {"outside": ([5], [0, 1, 1, 1]), "negative": ([-1], [0, 1, 1, 1]), "indptr": ([0], [0, 2, 1, 1])}.items():
        bad = scipy.sparse.csc_matrix((3, 3))
        bad.data, bad.indices, bad.indptr = np.ones(len(indices)), np.array(indices, np.int32), np.array(indptr, np.int32)
        with pytest.raises(InputFileError, match="inconsistent sparse matrix"):
            load_pickle_restricted(_pickle(tmp_path / f"{name}.pkl", {"J_regressor": bad}))


def test_arrays_with_huge_stated_shapes_are_refused(tmp_path: Path) -> None:
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    crafted = {
        # _reconstruct allocates its shape before any data is read.
        "reconstruct": _Reduce(multiarray._reconstruct, (np.ndarray, (1_000_000, 1_000_000), b"b")),
        # ndarray(shape) allocates uninitialised memory of that size.
        "ndarray": _Reduce(np.ndarray, ((100_000, 100_000),)),
        # An object array's __setstate__ allocates its shape; its data is a (short) list.
        "objects": _Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (100_000, 100_000), np.dtype("O"), False, [])),
    }
    for name, obj in crafted.items():
        path = _pickle(tmp_path / f"{name}.pkl", {"v_template": obj})
        with pytest.raises(InputFileError, match=f"{name}.pkl: .*larger than any body model needs"):
            load_pickle_restricted(path)
    # Ordinary arrays still load.
    ok = load_pickle_restricted(_pickle(tmp_path / "ok.pkl", {"a": np.arange(6.0).reshape(2, 3), "s": np.float64(2.5)}))
    assert type(ok["a"]) is np.ndarray and ok["a"].shape == (2, 3) and ok["s"] == 2.5


@pytest.mark.timeout(120)  # resolving each of the 2**64 paths would never finish: the timeout fails it
def test_shared_references_do_not_explode(tmp_path: Path) -> None:
    """A pickle that shares one list 2**64 times over loads in linear time."""
    nested: list = [np.zeros(2)]
    for _ in range(64):
        nested = [nested, nested]
    loaded = load_pickle_restricted(_pickle(tmp_path / "shared.pkl", {"x": nested}))
    assert isinstance(loaded["x"], list) and loaded["x"][0] is loaded["x"][1]


def test_resampling_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "slow.npz"
    np.savez(path, poses=np.zeros((10, 72)), mocap_framerate=1e-6)  # 10 frames over 100 days
    with pytest.raises(NrtoolError, match="more than 100x"):
        amass.load_motion(path, fps=30)


# --------------------------------------------------------------------------------------------
# 5. A file that is not a motion file, given as --pose
# --------------------------------------------------------------------------------------------


def _write_h5(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        handle["x"] = np.zeros(3)


NOT_MOTION = {
    "walk.obj": (lambda p: p.write_text("# a mesh\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), "a Wavefront OBJ mesh"),
    "mesh.npz": (lambda p: p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), "a Wavefront OBJ mesh"),
    "photo.png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "a PNG image"),
    "seq.h5": (_write_h5, "an HDF5 file"),
    "motion.pkl": (lambda p: p.write_bytes(pickle.dumps({"poses": [0.0] * 72}, protocol=4)), "a Python pickle"),
    "scan.ply": (lambda p: p.write_bytes(b"ply\nformat binary_little_endian 1.0\nend_header\n"), "a PLY mesh"),
    "notes.dat": (lambda p: p.write_text("some words\n"), "a text file"),
}


@pytest.mark.parametrize("name", list(NOT_MOTION))
def test_non_motion_file_as_pose_says_what_it_is(tmp_path: Path, name: str) -> None:
    write, what = NOT_MOTION[name]
    path = tmp_path / name
    write(path)
    with pytest.raises(InputFileError) as info:
        amass.read_amass(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {what}, not a motion file; expected an AMASS-format .npz"), message
    assert "pickled" not in message and "allow_pickle" not in message


def test_obj_as_pose_through_the_cli(tmp_path: Path, body_file: Path) -> None:
    mesh = tmp_path / "walk.obj"
    NOT_MOTION["walk.obj"][0](mesh)
    out = tmp_path / "out"
    result = run_cli("body", "pose", "-m", body_file, "-p", mesh, "-o", out, check=False)
    assert_clean_failure(result, "walk.obj: a Wavefront OBJ mesh, not a motion file; expected an AMASS-format .npz", out)
    assert result.returncode == 2
    # The same for a body model that is a mesh.
    motion = tmp_path / "still.npz"
    np.savez(motion, poses=np.zeros((2, 72)))
    result = run_cli("body", "pose", "-m", mesh, "-p", motion, "-o", out, check=False)
    assert_clean_failure(result, "walk.obj: a Wavefront OBJ mesh, not a body model; expected an SMPL model", out)
