"""SMPL body model (smplx), restricted unpickling, procedural body and motion, AMASS, `body pose`."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli, run_nrtool

from nrtool.body import amass
from nrtool.body.body_model import (
    SMPL_PARENTS,
    BodyModel,
    load_model_data,
    load_pickle_restricted,
)
from nrtool.errors import InputFileError
from nrtool.synth import poses as synth_poses
from nrtool.synth.body import JOINTS, SHAPE_DIRECTIONS


@pytest.fixture(scope="module")
def body_file(synth_body: Path) -> Path:
    """The session's `synth body --resolution 0.03` (read-only), checked against its --json summary."""
    summary = json.loads((synth_body.parent / "body.json").read_text())
    assert summary["joints"] == 24 and summary["betas"] == 10
    return synth_body


@pytest.fixture(scope="module")
def model(body_file: Path) -> BodyModel:
    return BodyModel(body_file)


@pytest.fixture(scope="module")
def motions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("motions")
    run_cli("synth", "poses", "--out", out, "--seconds", "0.5", "--fps", "120", "--betas-scale", "0.5")
    return out


def _random_poses(n: int, seed: int, scale: float = 0.4) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, (n, 72))


# --------------------------------------------------------------------------------------------
# The procedural body in SMPL format, through smplx
# --------------------------------------------------------------------------------------------


def test_synth_body_has_smpl_format(body_file: Path) -> None:
    from nrtool.io import Shape

    with np.load(body_file, allow_pickle=False) as data:
        v, f = data["v_template"], data["f"]
        assert 1500 < len(v) < 8000
        assert data["weights"].shape == (len(v), 24)
        assert data["J_regressor"].shape == (24, len(v))
        assert data["shapedirs"].shape == (len(v), 3, 10)
        assert data["posedirs"].shape == (len(v), 3, 207)
        parents = data["kintree_table"][0].astype(np.int64)
        assert list(parents[1:]) == list(SMPL_PARENTS[1:]) and parents[0] == 2**32 - 1
        np.testing.assert_allclose(data["weights"].sum(axis=1), 1.0, atol=1e-9)
        assert data["weights"].min() >= 0
        assert data["J_regressor"].min() > -1e-3  # (nearly) convex combinations of vertices
        np.testing.assert_allclose(data["J_regressor"] @ v, JOINTS, atol=1e-9)
        assert list(data["nrtool_shape_directions"]) == list(SHAPE_DIRECTIONS)
    mesh = Shape("body", "mesh", str(body_file), v, f.astype(np.int64))
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert len(v) - len(f) // 2 == 2  # Euler characteristic 2: one closed genus-0 surface


def test_loads_through_smplx_like_a_real_model(body_file: Path, model: BodyModel) -> None:
    """The same arrays given to smplx.SMPL directly give the same mesh as BodyModel."""
    import smplx
    import torch
    from smplx.utils import Struct

    assert isinstance(model.smpl, smplx.SMPL)
    data = load_model_data(body_file)
    ids = {k[len("nrtool_vertex_ids_"):]: int(v) for k, v in data.items() if k.startswith("nrtool_vertex_ids_")}
    direct = smplx.SMPL(str(body_file), data_struct=Struct(**data), vertex_ids=ids, num_betas=10)
    poses = _random_poses(2, 1)
    betas = np.random.default_rng(2).normal(0, 1, (2, 10))
    with torch.no_grad():
        ref = direct(
            betas=torch.tensor(betas, dtype=torch.float32),
            global_orient=torch.tensor(poses[:, :3], dtype=torch.float32),
            body_pose=torch.tensor(poses[:, 3:], dtype=torch.float32),
        )
        out = model.forward(poses, betas)
    np.testing.assert_allclose(out.vertices.numpy(), ref.vertices.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.joints.numpy(), ref.joints[:, :24].numpy(), atol=1e-6)
    assert out.keypoints.shape == (2, 21, 3)  # smplx's extra keypoints, from our vertex_ids


def test_zero_pose_and_betas_reproduce_template(model: BodyModel) -> None:
    import torch

    with torch.no_grad():
        out = model.forward(np.zeros((1, 72)), np.zeros(10))
    np.testing.assert_allclose(out.vertices[0].numpy(), model.v_template, atol=1e-5)
    np.testing.assert_allclose(out.joints[0].numpy(), JOINTS, atol=1e-5)
    eye = np.broadcast_to(np.eye(4), (24, 4, 4))
    np.testing.assert_allclose(out.transforms[0].numpy(), eye, atol=1e-6)


def test_transforms_reproduce_posed_joints_and_skinning(model: BodyModel) -> None:
    import torch

    poses = _random_poses(3, 3)
    betas = np.random.default_rng(4).normal(0, 1, 10)
    trans = np.random.default_rng(5).normal(0, 0.3, (3, 3))
    with torch.no_grad():
        out = model.forward(poses, betas, trans)
    a = out.transforms.numpy().astype(np.float64)
    rest = out.rest_joints.numpy().astype(np.float64)
    joints = np.einsum("bjik,bjk->bji", a[:, :, :3, :3], rest) + a[:, :, :3, 3]
    np.testing.assert_allclose(joints, out.joints.numpy(), atol=1e-5)
    rot = a[:, :, :3, :3]
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    # Linear blend skinning with A (posedirs are zero here) gives smplx's vertices.
    shapedirs = model.smpl.shapedirs.numpy().astype(np.float64)
    v_shaped = model.v_template + np.einsum("vck,k->vc", shapedirs, betas)
    blended = np.einsum("vj,bjrc->bvrc", model.weights, a)
    skinned = np.einsum("bvrc,vc->bvr", blended[:, :, :3, :3], v_shaped) + blended[:, :, :3, 3]
    np.testing.assert_allclose(skinned, out.vertices.numpy(), atol=2e-5)


def test_normals_are_unit_and_outward(model: BodyModel) -> None:
    import torch

    with torch.no_grad():
        out = model.forward(np.zeros((1, 72)))
    normals = out.normals[0].numpy()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-4)
    # Outward: moving along the normal leaves the body (checked against the joint skeleton).
    v = model.v_template
    nearest_joint = JOINTS[np.argmin(np.linalg.norm(v[:, None] - JOINTS[None], axis=2), axis=1)]
    assert np.mean(np.einsum("ij,ij->i", normals, v - nearest_joint) > 0) > 0.9


def _measure(model: BodyModel, betas: np.ndarray) -> dict[str, float]:
    import torch

    with torch.no_grad():
        out = model.forward(np.zeros((1, 72)), betas)
    v, j = out.vertices[0].numpy(), out.joints[0].numpy()
    waist = v[np.abs(v[:, 1] - j[3, 1]) < 0.03]
    return {
        "height": float(v[:, 1].max() - v[:, 1].min()),
        "waist_width": float(waist[:, 0].max() - waist[:, 0].min()),
        "waist_depth": float(waist[:, 2].max() - waist[:, 2].min()),
        "leg": float(np.linalg.norm(j[1] - j[7])),
        "arm": float(np.linalg.norm(j[16] - j[20])),
        "shoulders": float(j[16, 0] - j[17, 0]),
    }


def test_shape_directions_change_height_and_girth(model: BodyModel) -> None:
    base = _measure(model, np.zeros(10))
    beta = np.zeros(10)
    beta[0] = 2.0  # height: +4 % per unit
    taller = _measure(model, beta)
    assert taller["height"] == pytest.approx(base["height"] * 1.08, rel=0.01)
    beta[0] = -2.0
    assert _measure(model, beta)["height"] < base["height"] * 0.93
    girth = np.zeros(10)
    girth[1] = 2.0
    wider = _measure(model, girth)
    assert wider["waist_width"] > base["waist_width"] * 1.12 and wider["waist_depth"] > base["waist_depth"] * 1.12
    assert wider["height"] == pytest.approx(base["height"], abs=0.01)
    for index, key in ((4, "leg"), (5, "arm"), (2, "shoulders")):
        b = np.zeros(10)
        b[index] = 1.0
        assert _measure(model, b)[key] > base[key] * 1.03, SHAPE_DIRECTIONS[index]


# --------------------------------------------------------------------------------------------
# Original-style .pkl files: restricted unpickler
# --------------------------------------------------------------------------------------------


class _FakeCh:
    """Pickles like chumpy.ch.Ch: a class named chumpy.ch.Ch with chumpy's instance state."""


def _fake_chumpy_pickle(path: Path, data: dict, protocol: int) -> None:
    import scipy.sparse

    module = types.ModuleType("chumpy.ch")
    package = types.ModuleType("chumpy")
    cls = type("Ch", (_FakeCh,), {"__module__": "chumpy.ch"})
    module.Ch = cls
    package.ch = module

    def ch(array: np.ndarray) -> object:
        obj = cls.__new__(cls)
        obj.__dict__.update({"x": np.asarray(array), "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}, "_make_dense": False, "_make_sparse": False})
        return obj

    payload = dict(data)
    for key in ("v_template", "weights", "shapedirs", "posedirs"):
        payload[key] = ch(data[key])
    payload["J_regressor"] = scipy.sparse.csc_matrix(data["J_regressor"])
    payload["bs_style"], payload["bs_type"] = "lbs", "lrotmin"
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = package, module
    try:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=protocol)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.mark.parametrize("protocol", [0, 2])
def test_fake_chumpy_pkl_loads_without_chumpy(tmp_path: Path, body_file: Path, model: BodyModel, protocol: int) -> None:
    import torch

    with np.load(body_file) as archive:
        data = {key: archive[key] for key in ("v_template", "f", "weights", "J_regressor", "kintree_table", "shapedirs", "posedirs")}
        data.update({k: archive[k] for k in archive.files if k.startswith("nrtool_vertex_ids_")})
    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    _fake_chumpy_pickle(pkl, data, protocol)
    assert b"chumpy" in pkl.read_bytes() and "chumpy" not in sys.modules
    loaded = load_model_data(pkl)
    for key in ("v_template", "weights", "J_regressor", "shapedirs"):
        np.testing.assert_array_equal(loaded[key], data[key].astype(np.float64))
    from_pkl = BodyModel(tmp_path, gender="neutral")  # a folder: SMPL_NEUTRAL.pkl inside
    poses = _random_poses(2, 7)
    with torch.no_grad():
        np.testing.assert_allclose(from_pkl.forward(poses).vertices.numpy(), model.forward(poses).vertices.numpy(), atol=1e-6)


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_pkl_with_other_classes_is_refused(tmp_path: Path, body_file: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as handle:
        pickle.dump({"v_template": _Evil(str(marker))}, handle, protocol=2)
    with pytest.raises(InputFileError, match=r"refusing to load (posix|nt)\.system"):
        load_pickle_restricted(evil)
    assert not marker.exists()
    from collections import OrderedDict

    other = tmp_path / "ordered.pkl"
    with open(other, "wb") as handle:
        pickle.dump(OrderedDict(a=1), handle, protocol=2)
    with pytest.raises(InputFileError, match="collections.OrderedDict"):
        load_pickle_restricted(other)
    # Through the CLI: one line, no traceback, no output folder, no side effect.
    out = tmp_path / "out"
    result = run_cli("body", "pose", "--body-model", evil, "--pose", _tiny_motion(tmp_path), "--out", out, check=False)
    assert_clean_failure(result, "evil.pkl", out)
    assert "refusing" in result.stderr and not marker.exists()


def _tiny_motion(folder: Path, frames: int = 3) -> Path:
    path = folder / "tiny.npz"
    np.savez(path, poses=np.zeros((frames, 156)), trans=np.zeros((frames, 3)), betas=np.zeros(16), gender="neutral", mocap_framerate=120.0)
    return path


def test_model_file_errors(tmp_path: Path, body_file: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        load_model_data(tmp_path / "missing.pkl")
    with np.load(body_file) as archive:
        data = {key: archive[key] for key in archive.files if key != "weights"}
    broken = tmp_path / "noweights.npz"
    np.savez(broken, **data)
    with pytest.raises(InputFileError, match="missing weights"):
        load_model_data(broken)
    data["weights"] = np.ones((5, 24))
    np.savez(broken, **data)
    with pytest.raises(InputFileError, match=r"weights must have shape"):
        load_model_data(broken)
    with pytest.raises(InputFileError, match="no neutral SMPL model"):
        load_model_data(tmp_path)


# --------------------------------------------------------------------------------------------
# AMASS reading and conversion
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width, layout", [(156, "smplh"), (165, "smplx"), (72, "smpl"), (66, "body22")])
def test_amass_widths_map_to_smpl72(tmp_path: Path, width: int, layout: str) -> None:
    poses = np.random.default_rng(width).normal(0, 0.3, (5, width))
    path = tmp_path / f"w{width}.npz"
    np.savez(path, poses=poses, trans=np.zeros((5, 3)), betas=np.zeros(16), gender="female", mocap_framerate=60.0)
    seq = amass.read_amass(path)
    assert seq.poses.shape == (5, 72) and seq.source_layout == layout and seq.gender == "female" and seq.fps == 60
    np.testing.assert_array_equal(seq.poses[:, :66], poses[:, :66])
    if width == 72:
        np.testing.assert_array_equal(seq.poses, poses)
    else:
        assert not seq.poses[:, 66:].any()  # SMPL hand joints 22, 23 zeroed


def test_amass_edge_cases(tmp_path: Path) -> None:
    one = tmp_path / "one.npz"
    np.savez(one, poses=np.zeros((1, 156)), mocap_framerate=120.0)  # 1 frame, no trans/betas/gender
    seq = amass.read_amass(one)
    assert seq.num_frames == 1 and seq.trans.shape == (1, 3) and not seq.trans.any()
    assert any("no trans" in n for n in seq.notes) and seq.gender == "neutral"
    assert amass.resample(seq, 30).num_frames == 1
    flat = tmp_path / "flat.npz"
    np.savez(flat, poses=np.zeros(72), mocap_framerate=30.0)
    assert amass.read_amass(flat).num_frames == 1
    cases = {
        "width.npz": ({"poses": np.zeros((4, 100))}, "100 columns"),
        "trans.npz": ({"poses": np.zeros((4, 156)), "trans": np.zeros((4, 2))}, r"trans has shape \(4, 2\)"),
        "frames.npz": ({"poses": np.zeros((4, 156)), "trans": np.zeros((3, 3))}, r"expected \(4, 3\)"),
        "shape.npz": ({"betas": np.zeros(16), "gender": "male"}, "shape.npz"),
        "empty.npz": ({"poses": np.zeros((0, 72))}, "T >= 1"),
        "nan.npz": ({"poses": np.full((2, 72), np.nan)}, "NaN"),
        "obj.npz": ({"poses": np.array([None, 1], dtype=object)}, "unpickling"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputFileError, match=message) as info:
            amass.read_amass(tmp_path / name)
        assert name in str(info.value)
    nofps = tmp_path / "nofps.npz"
    np.savez(nofps, poses=np.zeros((4, 72)))
    with pytest.raises(InputFileError, match="mocap_framerate"):
        amass.load_motion(nofps, fps=30)
    assert amass.load_motion(nofps, fps=30, source_fps=60).num_frames == 2


def test_resample_120_to_30_and_non_integer(motions: Path) -> None:
    seq = amass.read_amass(motions / "walk.npz")
    assert seq.fps == 120 and seq.num_frames == 60 and seq.source_layout == "smplh"
    down = amass.resample(seq, 30)
    assert down.fps == 30 and down.num_frames == 15
    np.testing.assert_array_equal(down.poses, seq.poses[::4])
    np.testing.assert_array_equal(down.trans, seq.trans[::4])
    odd = amass.resample(seq, 50)  # 120 -> 50: slerp
    assert odd.num_frames == int((60 - 1) / 120 * 50) + 1
    from scipy.spatial.transform import Rotation

    # Frame 5 at 50 fps is t = 0.1 s = frame 12 at 120 fps: interpolation hits it exactly.
    for j in range(24):
        a = Rotation.from_rotvec(odd.poses[5, 3 * j : 3 * j + 3])
        b = Rotation.from_rotvec(seq.poses[12, 3 * j : 3 * j + 3])
        assert (a.inv() * b).magnitude() < 1e-6
    np.testing.assert_allclose(odd.trans[5], seq.trans[12], atol=1e-9)


def test_axis_conversion_is_a_world_rotation(model: BodyModel, motions: Path) -> None:
    seq = amass.read_amass(motions / "squat.npz")
    pelvis = model.rest_pelvis(seq.betas[:10])
    y_up = amass.z_up_to_y_up(seq, pelvis)
    z_verts = model.pose_sequence(seq.poses, seq.betas[:10], seq.trans)["vertices"]
    y_verts = model.pose_sequence(y_up.poses, seq.betas[:10], y_up.trans)["vertices"]
    np.testing.assert_allclose(y_verts, z_verts @ amass.Z_UP_TO_Y_UP.T, atol=2e-5)
    # AMASS-format files are Z-up: the head is above the pelvis along Z before, along Y after.
    z_joints = model.pose_sequence(seq.poses, seq.betas[:10], seq.trans)["joints"]
    y_joints = model.pose_sequence(y_up.poses, seq.betas[:10], y_up.trans)["joints"]
    assert np.all(z_joints[:, 15, 2] > z_joints[:, 0, 2] + 0.3)
    assert np.all(y_joints[:, 15, 1] > y_joints[:, 0, 1] + 0.3)


def test_synth_motion_round_trips_and_respects_limits(tmp_path: Path) -> None:
    from scipy.spatial.transform import Rotation

    for name in synth_poses.MOTIONS:
        designed = synth_poses.write_motion(tmp_path / f"{name}.npz", name, seconds=0.5, fps=60)
        assert synth_poses.check_limits(designed.poses) == []
        back = amass.load_motion(tmp_path / f"{name}.npz", pelvis=JOINTS[0])
        assert back.up_axis == "y" and back.num_frames == 30
        rel = Rotation.from_rotvec(back.poses.reshape(-1, 3)).inv() * Rotation.from_rotvec(designed.poses.reshape(-1, 3))
        assert rel.magnitude().max() < 1e-6
        np.testing.assert_allclose(back.trans, designed.trans, atol=1e-9)
    knees = designed.poses[:, [3 * 4, 3 * 5]]
    assert knees.min() >= 0  # hinge: flexion only
    too_far = np.zeros((1, 72))
    too_far[0, 3 * 4] = -0.5  # knee hyper-extension
    assert synth_poses.check_limits(too_far)


def test_separate_arms_lifts_arms_away_from_torso(model: BodyModel, motions: Path) -> None:
    seq = amass.load_motion(motions / "walk.npz", pelvis=JOINTS[0])
    lifted = amass.separate_arms(seq, 20.0)
    a = model.pose_sequence(seq.poses[:3], trans=seq.trans[:3])["joints"]
    b = model.pose_sequence(lifted.poses[:3], trans=lifted.trans[:3])["joints"]

    def arm_angle(j: np.ndarray, shoulder: int, elbow: int) -> np.ndarray:
        arm = j[:, elbow] - j[:, shoulder]
        down = j[:, 0] - j[:, 12]  # torso axis, neck -> pelvis
        cos = np.einsum("ij,ij->i", arm, down) / np.linalg.norm(arm, axis=1) / np.linalg.norm(down, axis=1)
        return np.degrees(np.arccos(cos))

    for shoulder, elbow in ((16, 18), (17, 19)):
        gain = arm_angle(b, shoulder, elbow) - arm_angle(a, shoulder, elbow)
        assert np.all(gain > 12) and np.all(gain < 28)
    np.testing.assert_allclose(b[:, :16], a[:, :16], atol=1e-6)  # nothing else moves


# --------------------------------------------------------------------------------------------
# nrtool body pose
# --------------------------------------------------------------------------------------------


def test_body_pose_writes_meshes_and_contact_sheet(tmp_path: Path, body_file: Path, motions: Path) -> None:
    from nrtool.io import load_shape

    out = tmp_path / "walk"
    # The installed entry point, end to end.
    result = run_nrtool("body", "pose", "--body-model", body_file, "--pose", motions / "walk.npz", "--out", out, "--fps", "30", "--sheet-frames", "3", "--json")
    summary = json.loads(result.stdout)
    assert summary["frames"] == 15 and summary["fps"] == 30 and summary["up_axis"] == "y"
    meshes = sorted(out.glob("frame_*.obj"))
    assert len(meshes) == 15
    first = load_shape(meshes[0])
    assert first.is_watertight and len(first.vertices) == summary["vertices"]
    assert first.vertices[:, 1].max() - first.vertices[:, 1].min() > 1.4  # upright (Y-up)
    sheet = out / "contact_sheet.png"
    import matplotlib.image

    image = matplotlib.image.imread(sheet)
    assert image.shape[0] > 200 and (image[..., :3] < 0.9).mean() > 0.02  # something drawn
    assert not list(tmp_path.glob(".walk.*"))  # no temporary folder left
    # A second run refuses to overwrite unless --force.
    again = run_cli("body", "pose", "--body-model", body_file, "--pose", motions / "walk.npz", "--out", out, check=False)
    assert_clean_failure(again, str(out))
    assert len(list(out.glob("frame_*.obj"))) == 15


def test_body_pose_h5_artifact(tmp_path: Path, body_file: Path, motions: Path) -> None:
    from nrtool.artifacts.body_sequence import read_body_sequence

    out = tmp_path / "squat"
    run_cli("body", "pose", "-m", body_file, "-p", motions / "squat.npz", "-o", out, "--format", "h5", "--every", "10", "--sheet-frames", "0", "--separate-arms", "10")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["body_sequence.h5"]  # hidden: the folder marker
    seq = read_body_sequence(out / "body_sequence.h5")
    assert seq["vertices"].shape[0] == 6 and seq["vertices"].shape[2] == 3
    assert seq["transforms"].shape == (6, 24, 4, 4) and seq["poses"].shape == (6, 72)
    assert seq["attrs"]["nrtool_kind"] == "body-sequence" and seq["attrs"]["up_axis"] == "y"
    info = run_cli("info", out / "body_sequence.h5")
    assert "body-sequence" in info.stdout and "transforms" in info.stdout


def test_body_pose_bad_inputs(tmp_path: Path, body_file: Path) -> None:
    out = tmp_path / "out"
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, poses=np.zeros((3, 99)), mocap_framerate=120.0)
    result = run_cli("body", "pose", "--body-model", body_file, "--pose", wrong, "--out", out, check=False)
    assert_clean_failure(result, "wrong.npz: poses has 99 columns", out)
    result = run_cli("body", "pose", "--body-model", tmp_path / "nope.pkl", "--pose", _tiny_motion(tmp_path), "--out", out, check=False)
    assert_clean_failure(result, "nope.pkl", out)


def test_renderers_agree(model: BodyModel) -> None:
    """PyTorch3D's z-buffer and the matplotlib painter draw the same silhouette."""
    from nrtool.body.render import render_mesh

    poses = np.zeros((1, 72))
    poses[0, 3 * 16 + 2] = -1.2  # left arm down, right arm out: a mirrored image would not match
    vertices = model.pose_sequence(poses)["vertices"][0]
    masks = []
    for backend in ("matplotlib", "pytorch3d"):
        image = render_mesh(vertices, model.faces, "front", (240, 180), centre=np.array([0.0, -0.3, 0.0]), half=0.9, backend=backend)
        assert image.shape == (240, 180, 3)
        masks.append(image.min(axis=2) < 0.97)
    iou = (masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum()
    assert masks[0].mean() > 0.05 and iou > 0.8  # they differ on silhouette pixels (fill rules)
    boxes = [np.concatenate([np.nonzero(m.any(axis=1))[0][[0, -1]], np.nonzero(m.any(axis=0))[0][[0, -1]]]) for m in masks]
    assert np.abs(boxes[0] - boxes[1]).max() <= 2  # same placement and scale, to 2 px
    # Viewer faces the body's front: its outstretched right arm (-x) reaches the image's left
    # edge, its lowered left arm stays near the torso on the right.
    for mask in masks:
        assert mask[:, :30].any() and not mask[:, 150:].any()
