"""`nrtool scan` / `export nerf` / `plot scan` / `synth capture` (ScanNeRF capture processing).

A small synthetic turntable capture (640x480, 4 zenith steps, ~200 frames) gives exact ground
truth for poses, for the frames taken while the arm moved, and for object masks; the four real
photos of OpenCV's ChArUco tutorial check detection and calibration against OpenCV's reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SHARED_DATA, assert_clean_failure, run_cli, run_nrtool

from nrtool.errors import InputFileError
from nrtool.scan.poses import CV_TO_GL, rotation_angle_deg

CHARUCO = SHARED_DATA / "charuco_opencv"
REAL_BOARD = ["--board", "5x7", "--square", "0.04", "--marker", "0.02", "--dict", "DICT_6X6_250"]

requires_charuco = pytest.mark.skipif(
    not CHARUCO.is_dir(), reason=f"real data folder {CHARUCO} is absent"
)


def load_truth(capture: Path) -> dict:
    return json.loads((capture / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def capture_and_scan(shared_artifacts) -> Path:
    """A synthetic capture and its scan with default split sizes, built once and cached (read-only):
    ``cap/`` (4 zenith steps 25..70 deg, 2 turns of 24 frames each, 6 descent frames per transition:
    210 frames), ``scan.h5`` and the scan's --json summary and stderr."""

    def build(folder: Path) -> None:
        capture = folder / "cap"
        run_cli("synth", "capture", "--out", capture, "--size", "640x480", "--steps", "4", "--zenith", "25,70",
                "--frames-per-turn", "24", "--descent-frames", "6", "-q")
        options = [o.replace("intrinsics.yml", str(capture / "intrinsics.yml")) for o in load_truth(capture)["scan_options"]]
        result = run_cli("scan", capture / "images", "--out", folder / "scan.h5", *options, "--json")
        (folder / "scan.json").write_text(result.stdout)
        (folder / "scan.stderr").write_text(result.stderr)

    return shared_artifacts.get("scan-capture", {}, build)


@pytest.fixture(scope="module")
def capture(capture_and_scan: Path) -> Path:
    return capture_and_scan / "cap"


@pytest.fixture(scope="module")
def scanned(capture_and_scan: Path) -> tuple[Path, dict, str]:
    """(scan artifact, --json summary, stderr) of the synthetic capture with default split sizes."""
    folder = capture_and_scan
    return folder / "scan.h5", json.loads((folder / "scan.json").read_text()), (folder / "scan.stderr").read_text()


def read_scan(path: Path):
    from nrtool.scan.artifact import load_scan

    return load_scan(path)


# ---------------------------------------------------------------- synthetic capture


def test_synth_capture_writes_images_masks_and_truth(capture: Path) -> None:
    import cv2

    truth = load_truth(capture)
    frames = truth["frames"]
    assert len(frames) == 4 * 48 + 3 * 6
    assert sum(f["moving"] for f in frames) == 18
    image = cv2.imread(str(capture / frames[0]["image"]))
    mask = cv2.imread(str(capture / frames[0]["mask"]), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (480, 640, 3) and mask.shape == (480, 640)
    assert set(np.unique(mask)) == {0, 255}
    # The object (an orange box) is where its mask says: orange inside, not outside.
    b, g, r = (image[..., c].astype(float) for c in range(3))
    orange = (r > 1.4 * g) & (r > 2.5 * b) & (r > 30)  # by hue: the faces are shaded differently
    inside = mask == 255
    assert orange[inside].mean() > 0.9 and orange[~inside].mean() < 0.01
    # Zenith steps and the descent between them, as the station moves.
    zeniths = sorted({round(f["zenith"], 6) for f in frames if not f["moving"]})
    np.testing.assert_allclose(zeniths, [25, 40, 55, 70])
    assert not list(capture.parent.glob(".cap.*"))  # no temporary folder left behind


def test_poses_match_ground_truth(capture: Path, scanned: tuple[Path, dict, str]) -> None:
    path, summary, _ = scanned
    data = read_scan(path)
    truth = load_truth(capture)
    expected = np.array([f["camera_to_world"] for f in truth["frames"]])
    assert len(data) == len(expected) and summary["frames"] == len(expected)
    posed = np.isfinite(data.reprojection_error)
    assert posed.all(), [d for d in data.drop_detail if d]
    rotation_errors = [rotation_angle_deg(expected[i], data.camera_to_world[i]) for i in range(len(data))]
    position_errors = np.linalg.norm(expected[:, :3, 3] - data.centres, axis=1) / truth["distance"]
    assert max(rotation_errors) < 0.5, max(rotation_errors)
    assert position_errors.max() < 0.01, position_errors.max()
    np.testing.assert_allclose(data.zenith, [f["zenith"] for f in truth["frames"]], atol=0.5)
    azimuth_error = (data.azimuth - np.array([f["azimuth"] for f in truth["frames"]]) + 180) % 360 - 180
    assert np.abs(azimuth_error).max() < 0.5
    assert summary["reprojection_error_px"]["max"] < 1.0


def test_descent_frames_are_the_ones_filtered(capture: Path, scanned: tuple[Path, dict, str]) -> None:
    data = read_scan(scanned[0])
    moving = np.array([f["moving"] for f in load_truth(capture)["frames"]])
    flagged = np.array([r == "arm-moving" for r in data.drop_reason])
    precision = (flagged & moving).sum() / flagged.sum()
    recall = (flagged & moving).sum() / moving.sum()
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    # Every dropped frame keeps its reason and a detail; kept frames have none.
    for kept, reason, detail in zip(data.kept, data.drop_reason, data.drop_detail):
        assert (reason == "" and detail == "") if kept else (reason and detail)
    assert all("azimuth step" in d for d, f in zip(data.drop_detail, flagged) if f)
    assert scanned[1]["dropped"] == {"arm-moving": int(flagged.sum())}


def test_splits_are_disjoint_sized_and_cover_the_hemisphere(scanned: tuple[Path, dict, str]) -> None:
    path, summary, stderr = scanned
    data = read_scan(path)
    kept = int(data.kept.sum())
    # 192 kept < 2000: sizes scaled down in proportion, with a warning.
    assert "warning" in stderr and "scaled" in stderr
    factor = kept / 2000
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [int(1000 * factor), int(500 * factor), int(500 * factor)]
    train, val, test = (set(data.splits[s].tolist()) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert all(data.kept[i] for i in train | val | test)
    for name in ("train", "val", "test"):
        quadrants = set((data.azimuth[data.splits[name]] // 90).astype(int))
        assert quadrants == {0, 1, 2, 3}, (name, quadrants)
        zeniths = set(np.round(data.zenith[data.splits[name]] / 15).astype(int))
        assert len(zeniths) == 4, (name, zeniths)  # every zenith ring
    subsets = sorted((k for k in data.splits if k.startswith("train_all_")), key=lambda k: -int(k[10:]))
    assert [len(data.splits[k]) for k in subsets] == [int(s * factor) for s in (500, 250, 100)]
    for bigger, smaller in zip(subsets, subsets[1:]):  # nested FPS prefixes inside Train
        assert set(data.splits[smaller].tolist()) <= set(data.splits[bigger].tolist()) <= train
    # FPS covers the hemisphere more evenly than a random sample of the same size.
    centres = data.centres[data.kept]

    def coverage(chosen: np.ndarray) -> float:
        distances = np.linalg.norm(centres[:, None] - data.centres[chosen][None], axis=2)
        return float(distances.min(axis=1).max())

    rng = np.random.default_rng(0)
    for name in ("train", "val", "test", subsets[0]):
        chosen = data.splits[name]
        random_cover = np.median([coverage(rng.choice(np.flatnonzero(data.kept), len(chosen), replace=False))
                                  for _ in range(20)])
        assert coverage(chosen) < 0.9 * random_cover, name
    assert summary["splits"]["train"] == len(train)


def test_octant_sub_splits_hold_their_region(scanned: tuple[Path, dict, str]) -> None:
    from nrtool.scan.splits import octant_of

    data = read_scan(scanned[0])
    centre = data.octant_centre
    octants = octant_of(data.centres, centre)
    for name in ("train", "val", "test"):
        members = data.splits[name]
        for octant in range(8):
            sub = data.splits[f"{name}_{octant}"]
            inside = set(members[octants[members] == octant].tolist())
            outside = members[octants[members] != octant]
            assert inside <= set(sub.tolist())  # the whole region
            extra = [i for i in sub if octants[i] != octant]
            assert set(extra) <= set(members.tolist())  # extras come from the same macro-split
            assert len(extra) == round(0.1 * len(outside))
            assert len(sub) == len(set(sub.tolist()))


def test_info_shows_a_scan_summary(scanned: tuple[Path, dict, str]) -> None:
    info = json.loads(run_cli("info", scanned[0], "--json").stdout)
    assert info["kind"] == "scan" and info["items"] == 210
    attributes = info["attributes"]
    assert attributes["kept_frames"] == 192 and attributes["dropped"] == {"arm-moving": 18}
    assert attributes["board"]["dictionary"] == "DICT_4X4_50"
    assert set(info["per_split"]) == {"", "train", "val", "test"}
    text = run_cli("info", scanned[0]).stdout
    assert "kept_frames" in text and "arm-moving" in text


def test_export_nerf_writes_nerfstudio_and_scannerf_files(capture: Path, scanned: tuple[Path, dict, str],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "nerf"
    result = json.loads(run_cli("export", "nerf", scanned[0], "--out", out, "--masks", capture / "masks",
                                   "--json").stdout)
    assert result["frames"] == 192
    transforms = json.loads((out / "transforms.json").read_text())
    truth = load_truth(capture)
    assert transforms["camera_model"] == "OPENCV"
    assert (transforms["w"], transforms["h"]) == (640, 480)
    np.testing.assert_allclose([transforms["fl_x"], transforms["cx"]], [truth["K"][0][0], truth["K"][0][2]])
    by_name = {f["name"]: f for f in truth["frames"]}
    for frame in transforms["frames"]:
        assert (out / frame["file_path"]).is_file() and (out / frame["mask_path"]).is_file()
        name = Path(frame["file_path"]).stem
        assert not by_name[name]["moving"]
        # OpenGL pose back to OpenCV, against the ground truth.
        pose = np.array(frame["transform_matrix"]) @ CV_TO_GL
        expected = np.array(by_name[name]["camera_to_world"])
        assert rotation_angle_deg(pose, expected) < 0.5
        assert np.linalg.norm(pose[:3, 3] - expected[:3, 3]) < 0.01 * truth["distance"]
    expected_files = {"train_all.json", "val_all.json", "test_all.json", "train_all_48.json", "train_all_24.json",
                      "train_all_9.json"} | {f"{s}_{o}.json" for s in ("train", "val", "test") for o in range(8)}
    assert expected_files <= {p.name for p in out.glob("*.json")}
    train_all = json.loads((out / "train_all.json").read_text())
    assert "camera_angle_x" in train_all and len(train_all["frames"]) == 96
    assert [f["file_path"] for f in train_all["frames"]] == ["./" + p for p in transforms["train_filenames"]]
    assert not set(transforms["train_filenames"]) & set(transforms["test_filenames"])
    # An existing dataset is not overwritten by accident; --overwrite replaces it whole.
    again = run_cli("export", "nerf", scanned[0], "--out", out, check=False)
    assert_clean_failure(again, str(out))
    run_cli("export", "nerf", scanned[0], "--out", out, "--overwrite", "-q")
    assert not (out / "masks").exists() and "mask_path" not in json.loads((out / "transforms.json").read_text())["frames"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nerf"]  # no temporary folders left


def test_plot_scan_writes_both_figures(scanned: tuple[Path, dict, str], tmp_path: Path) -> None:
    run_cli("plot", "scan", scanned[0], "--out", tmp_path / "fig", "-q")
    for name in ("cameras.png", "azimuth.png"):
        png = tmp_path / "fig" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_video_input_every_and_embedded_images(capture: Path, tmp_path: Path) -> None:
    """A video (MJPG .avi) of the first 40 frames, every 2nd frame, images embedded, then exported."""
    import cv2

    truth = load_truth(capture)
    video = tmp_path / "capture.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for frame in truth["frames"][:40]:
        writer.write(cv2.imread(str(capture / frame["image"])))
    writer.release()
    out = tmp_path / "video.h5"
    options = [o.replace("intrinsics.yml", str(capture / "intrinsics.yml")) for o in truth["scan_options"]]
    # The installed entry point, end to end.
    summary = json.loads(run_nrtool("scan", video, "--out", out, *options, "--every", "2", "--embed-images",
                                    "--no-splits", "--json").stdout)
    assert summary["frames"] == 20 and summary["splits"] == {}
    data = read_scan(out)
    assert data.source_kind == "video" and list(data.video_frame) == list(range(0, 40, 2))
    expected = np.array([truth["frames"][i]["camera_to_world"] for i in range(0, 40, 2)])
    assert max(rotation_angle_deg(a, b) for a, b in zip(expected, data.camera_to_world)) < 0.5
    with h5py.File(out, "r") as handle:
        assert handle["images"].shape == (20,) and bytes(handle["images"][0][:2]) == b"\xff\xd8"
    video.unlink()  # the export must use the embedded images
    run_cli("export", "nerf", out, "--out", tmp_path / "nerf", "-q")
    images = sorted((tmp_path / "nerf" / "images").iterdir())
    assert len(images) == data.kept.sum() and cv2.imread(str(images[0])).shape == (480, 640, 3)


def test_parallel_detection_matches_serial(capture: Path) -> None:
    from nrtool.scan.board import ChArUcoBoard
    from nrtool.scan.detection import detect_frames
    from nrtool.scan.frames import list_image_frames

    board = ChArUcoBoard.from_dict(load_truth(capture)["board"])
    frames = list_image_frames(capture / "images")[:24]
    serial = detect_frames(frames, board, len(frames), workers=1)
    parallel = detect_frames(frames, board, len(frames), workers=3)
    assert [d.frame.index for d in parallel] == list(range(24))
    for a, b in zip(serial, parallel):
        assert a.markers == b.markers > 0
        np.testing.assert_array_equal(a.corner_ids, b.corner_ids)
        np.testing.assert_array_equal(a.corners, b.corners)


def test_split_sizes_scale_and_fps_spreads_points() -> None:
    from nrtool.scan.splits import (
        SplitSizes,
        farthest_point_order,
        make_splits,
        octant_of,
    )

    sizes, warning = SplitSizes().fitted_to(2500)
    assert sizes == SplitSizes() and warning == ""
    sizes, warning = SplitSizes().fitted_to(200)
    assert (sizes.train, sizes.val, sizes.test, sizes.train_subsets) == (100, 50, 50, (50, 25, 10)) and "200" in warning
    # FPS on a line picks the ends, then the middle.
    line = np.linspace(0, 1, 101)[:, None]
    assert list(farthest_point_order(line, 3, first=0)) == [0, 100, 50]
    # Exactly as many kept frames as asked: every frame lands in exactly one macro-split.
    points = np.random.default_rng(1).normal(size=(40, 3))
    splits = make_splits(points, np.arange(100, 140), SplitSizes(20, 10, 10, (10, 4)), seed=3)
    assert sorted(np.concatenate([splits.sets[s] for s in ("train", "val", "test")]).tolist()) == list(range(100, 140))
    # A 4-view training subset and octant 4 keep separate names (train_all_4.json, train_4.json).
    assert len(splits.sets["train_all_4"]) == 4 and set(splits.sets["train_all_4"]) <= set(splits.sets["train_all_10"])
    assert {int(o) for o in octant_of(points[splits.sets["train_4"] - 100], splits.octant_centre)} >= {4}


# ---------------------------------------------------------------- real photos


@requires_charuco
def test_real_photos_reference_intrinsics_reproject_within_a_pixel(tmp_path: Path) -> None:
    from nrtool.scan.poses import project_world

    out = tmp_path / "real.h5"
    summary = json.loads(run_cli("scan", CHARUCO, "--out", out, *REAL_BOARD, "--intrinsics",
                                    CHARUCO / "reference_intrinsics.yml", "--no-splits", "--json").stdout)
    assert summary["frames"] == 5
    data = read_scan(out)
    assert data.names == ["img_00", "img_01", "img_02", "img_03", "occluded"]
    assert list(data.corner_count[:4]) == [24, 24, 24, 24]  # all four frames fully detected
    assert 6 <= data.corner_count[4] < 24  # the occluded view: partly
    corners_world = data.board.corners_world()
    for i in range(5):
        seen = np.isfinite(data.corners[i, :, 0])
        projected = project_world(corners_world[seen], data.camera_to_world[i], data.intrinsics)
        error = np.linalg.norm(projected - data.corners[i, seen], axis=1)
        assert error.max() < 1.0, (data.names[i], error.max())
        assert data.zenith[i] < 60 and data.centres[i, 2] > 0  # cameras above the board (z up)
    # Exported with the 5-coefficient lens (k3 included) and, without splits, no split files.
    run_cli("export", "nerf", out, "--out", tmp_path / "nerf", "-q")
    transforms = json.loads((tmp_path / "nerf" / "transforms.json").read_text())
    np.testing.assert_allclose([transforms[k] for k in ("k1", "k2", "p1", "p2", "k3")], data.intrinsics.distortion)
    assert len(transforms["frames"]) == 5 and "train_filenames" not in transforms
    # (hidden files, e.g. the marker of an nrtool output folder, are not dataset files)
    assert sorted(p.name for p in (tmp_path / "nerf").glob("*.json") if not p.name.startswith(".")) == ["transforms.json"]


@requires_charuco
def test_real_photos_calibrate_matches_opencv_reference(tmp_path: Path) -> None:
    from nrtool.scan.intrinsics import read_intrinsics

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):  # the four views OpenCV's reference calibration used
        shutil.copy(CHARUCO / f"img_0{i}.jpg", photos)
    summary = json.loads(run_cli("scan", photos, "--out", tmp_path / "cal.h5", *REAL_BOARD, "--calibrate",
                                    "--no-splits", "--json").stdout)
    reference = read_intrinsics(CHARUCO / "reference_intrinsics.yml")
    intrinsics = summary["intrinsics"]
    assert intrinsics["source"] == "calibrated" and summary["kept_frames"] == 4
    assert abs(intrinsics["fx"] / reference.fx - 1) < 0.02, (intrinsics["fx"], reference.fx)
    assert abs(intrinsics["fy"] / reference.fy - 1) < 0.02, (intrinsics["fy"], reference.fy)
    assert intrinsics["calibration_rms"] < 0.5


# ---------------------------------------------------------------- bad input


def test_no_board_in_any_frame(tmp_path: Path) -> None:
    import cv2

    images = tmp_path / "blank"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(images / f"f{i}.png"), rng.integers(0, 255, (120, 160), dtype=np.uint8))
    out = tmp_path / "s.h5"
    result = run_cli("scan", images, "--out", out, *REAL_BOARD, "--calibrate", "-q", check=False)
    assert_clean_failure(result, str(images), out)
    assert "0 ArUco markers" in result.stderr


@requires_charuco
def test_wrong_dictionary_says_zero_markers_and_suggests_dict(tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    board = ["--board", "5x7", "--square", "0.04", "--marker", "0.02", "--dict", "DICT_4X4_50"]
    result = run_cli("scan", CHARUCO, "--out", out, *board, "--intrinsics", CHARUCO / "reference_intrinsics.yml",
                        "-q", check=False)
    assert_clean_failure(result, str(CHARUCO), out)
    # The layout (--board, --legacy) plays no part before a marker is decoded: the hint names the
    # dictionary first, then a board out of view.
    assert "0 ArUco markers" in result.stderr and "--dict DICT_4X4_50" in result.stderr
    assert result.stderr.index("--dict DICT_4X4_50") < result.stderr.index("not in view")


@requires_charuco
def test_unreadable_image_is_skipped_with_its_reason(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        shutil.copy(CHARUCO / f"img_0{i}.jpg", photos)
    (photos / "img_02b.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    out = tmp_path / "s.h5"
    run_cli("scan", photos, "--out", out, *REAL_BOARD, "--intrinsics", CHARUCO / "reference_intrinsics.yml",
               "--no-splits", "-q")
    data = read_scan(out)
    assert data.names == ["img_00", "img_01", "img_02", "img_02b", "img_03"]  # natural order
    bad = data.names.index("img_02b")
    assert data.drop_reason[bad] == "unreadable" and "decodable" in data.drop_detail[bad]
    assert not data.kept[bad] and data.kept[[0, 1, 2, 4]].all()


def test_video_that_cannot_be_opened(tmp_path: Path) -> None:
    video = tmp_path / "capture.mp4"
    video.write_text("not a video\n")
    out = tmp_path / "s.h5"
    result = run_cli("scan", video, "--out", out, *REAL_BOARD, "--calibrate", "-q", check=False)
    assert_clean_failure(result, str(video), out)
    assert "cannot open" in result.stderr


def test_bad_options_and_files_fail_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    folder = tmp_path / "empty"
    folder.mkdir()
    cases = [
        (["scan", folder, "--out", out, *REAL_BOARD, "--calibrate"], "no images"),
        (["scan", folder, "--out", out, *REAL_BOARD], "exactly one of --intrinsics"),
        (["scan", folder, "--out", out, "--board", "5by7", "--square", "0.04", "--marker", "0.02", "--calibrate"], "COLSxROWS"),
        (["scan", folder, "--out", out, *REAL_BOARD[:-1], "DICT_9X9_1", "--calibrate"], "unknown ArUco dictionary"),
        (["scan", folder, "--out", out, *REAL_BOARD, "--intrinsics", tmp_path / "missing.yml"], "missing.yml"),
        (["export", "nerf", tmp_path / "missing.h5", "--out", tmp_path / "nerf"], "missing.h5"),
    ]
    for args, mentions in cases:
        assert_clean_failure(run_cli(*args, "-q", check=False), mentions, out, tmp_path / "nerf")
    # A scan artifact is refused where another kind is wanted, and vice versa.
    (tmp_path / "k.yml").write_text("%YAML:1.0\n---\nfoo: 1\n")
    result = run_cli("scan", folder, "--out", out, *REAL_BOARD, "--intrinsics", tmp_path / "k.yml", "-q", check=False)
    assert_clean_failure(result, "camera_matrix", out)


def test_wrong_legacy_flag_or_board_size_is_explained(capture: Path, tmp_path: Path) -> None:
    truth = load_truth(capture)
    options = [o.replace("intrinsics.yml", str(capture / "intrinsics.yml")) for o in truth["scan_options"]]
    out = tmp_path / "s.h5"
    for extra in (["--legacy"], ["--board", "7x8"]):  # the synthetic board is 8x8, current OpenCV pattern
        result = run_cli("scan", capture / "images", "--out", out, *options, *extra, "--every", "10", "-q",
                            check=False)
        assert_clean_failure(result, str(capture / "images"), out)
        assert "no ChArUco corners" in result.stderr and "--legacy" in result.stderr


@requires_charuco
def test_intrinsics_from_json_match_the_opencv_yaml(tmp_path: Path) -> None:
    from nrtool.scan.intrinsics import read_intrinsics

    reference = read_intrinsics(CHARUCO / "reference_intrinsics.yml")
    assert (reference.width, reference.height) == (640, 480) and abs(reference.fx - 452.51) < 0.01
    opencv_style = {"camera_matrix": reference.K.tolist(), "distortion_coefficients": reference.distortion.tolist(),
                    "image_width": 640, "image_height": 480}
    k1, k2, p1, p2, k3 = reference.distortion
    nerfstudio_style = {"fl_x": reference.fx, "fl_y": reference.fy, "cx": reference.cx, "cy": reference.cy,
                        "w": 640, "h": 480, "k1": k1, "k2": k2, "p1": p1, "p2": p2, "k3": k3}
    for i, data in enumerate((opencv_style, nerfstudio_style)):
        path = tmp_path / f"k{i}.json"
        path.write_text(json.dumps(data))
        loaded = read_intrinsics(path)
        np.testing.assert_allclose(loaded.K, reference.K)
        np.testing.assert_allclose(loaded.distortion, reference.distortion)
    broken = tmp_path / "broken.json"
    broken.write_text('{"camera_matrix": [1, 2, 3], "image_width": 640, "image_height": 480}')
    with pytest.raises(InputFileError, match="broken.json: camera_matrix"):
        read_intrinsics(broken)
