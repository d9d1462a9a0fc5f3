"""What `nrtool scan` and `export nerf` accept and refuse (issue 11): inverted ChArUco prints,
intrinsics in other tools' formats, image writes that fail, and copies instead of hard links.

Captures here are tiny (320x240, 16 frames) and rendered with known poses by `synth capture`:
an inverted board is the same board rendered as ``255 - image``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_clean_failure, run_cli

from nrtool.errors import InputFileError
from nrtool.scan.intrinsics import Intrinsics, read_intrinsics, write_intrinsics
from nrtool.scan.poses import rotation_angle_deg

SMALL = ["--size", "320x240", "--steps", "2", "--zenith", "25,60", "--frames-per-turn", "8", "--turns", "1",
         "--descent-frames", "0", "--distance", "0.5", "-q"]
BOARD = ["--board", "8x8", "--square", "0.05", "--marker", "0.037", "--dict", "DICT_4X4_50"]


def load_truth(capture: Path) -> dict:
    return json.loads((capture / "ground_truth.json").read_text())


def read_scan(path: Path):
    from nrtool.scan.artifact import load_scan

    return load_scan(path)


@pytest.fixture(scope="module")
def normal_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("normal") / "cap"
    run_cli("synth", "capture", "--out", out, *SMALL)
    return out


@pytest.fixture(scope="module")
def inverted_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same capture with the board printed white on black."""
    out = tmp_path_factory.mktemp("inverted") / "cap"
    run_cli("synth", "capture", "--out", out, *SMALL, "--inverted")
    return out


@pytest.fixture(scope="module")
def normal_scan(normal_capture: Path) -> Path:
    out = normal_capture.parent / "scan.h5"
    run_cli("scan", normal_capture / "images", "--out", out, *BOARD, "--intrinsics", normal_capture / "intrinsics.yml",
            "--no-splits", "-q")
    return out


def scan(capture: Path, out: Path, *extra: str, check: bool = True):
    return run_cli("scan", capture / "images", "--out", out, *BOARD, "--intrinsics", capture / "intrinsics.yml",
                   "--no-splits", *extra, check=check)


def pose_errors(capture: Path, scan_file: Path) -> tuple[float, float]:
    """(max rotation error in degrees, max position error / camera distance) against the truth."""
    truth = load_truth(capture)
    data = read_scan(scan_file)
    expected = np.array([f["camera_to_world"] for f in truth["frames"]])
    assert len(data) == len(expected) and np.isfinite(data.reprojection_error).all(), data.drop_detail
    rotation = max(rotation_angle_deg(a, b) for a, b in zip(expected, data.camera_to_world))
    position = float(np.max(np.linalg.norm(expected[:, :3, 3] - data.centres, axis=1)) / truth["distance"])
    return rotation, position


# ---------------------------------------------------------------- inverted boards


def test_synth_capture_renders_the_inverted_print(normal_capture: Path, inverted_capture: Path) -> None:
    import cv2

    truth = load_truth(inverted_capture)
    assert truth["board"]["inverted"] is True and "--inverted" in truth["scan_options"]
    board = cv2.imread(str(inverted_capture / "board.png"), cv2.IMREAD_GRAYSCALE)
    normal = cv2.imread(str(normal_capture / "board.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(board, 255 - normal)


def test_inverted_board_with_the_option_gives_the_true_poses(inverted_capture: Path) -> None:
    out = inverted_capture.parent / "explicit.h5"
    result = scan(inverted_capture, out, "--inverted", "--json")
    assert "inverted" not in result.stderr  # asked for: nothing to warn about
    rotation, position = pose_errors(inverted_capture, out)
    assert rotation < 0.5 and position < 0.01, (rotation, position)
    assert read_scan(out).board.inverted


def test_inverted_board_is_found_without_the_option(inverted_capture: Path) -> None:
    out = inverted_capture.parent / "auto.h5"
    result = scan(inverted_capture, out, "--json")
    assert "white on black" in result.stderr and "--inverted" in result.stderr
    rotation, position = pose_errors(inverted_capture, out)
    assert rotation < 0.5 and position < 0.01, (rotation, position)
    data = read_scan(out)
    assert data.board.inverted  # the artifact records the print it found
    assert any("white on black" in w for w in data.warnings)


def test_normal_board_is_unaffected_and_refused_as_inverted(normal_capture: Path, normal_scan: Path,
                                                           tmp_path: Path) -> None:
    rotation, position = pose_errors(normal_capture, normal_scan)
    assert rotation < 0.5 and position < 0.01, (rotation, position)
    data = read_scan(normal_scan)
    assert not data.board.inverted and not data.warnings
    out = tmp_path / "s.h5"
    result = scan(normal_capture, out, "--inverted", "-q", check=False)
    assert_clean_failure(result, str(normal_capture / "images"), out)
    assert "0 ArUco markers" in result.stderr and "drop --inverted" in result.stderr


def test_detect_either_print_on_a_rendered_board() -> None:
    """``ChArUcoBoard.render`` inverted (255 - image) in a small frame: found, and flagged inverted."""
    import cv2

    from nrtool.scan.board import ChArUcoBoard
    from nrtool.scan.detection import _Detectors, detect_either_print

    board = ChArUcoBoard(5, 7, 0.04, 0.02, "DICT_6X6_250")
    printed = board.render(40, margin_squares=0.5)
    frame = np.full((360, 300), 128, np.uint8)
    frame[10:10 + printed.shape[0], 10:10 + printed.shape[1]] = printed
    frame = cv2.GaussianBlur(frame, (0, 0), 0.7)
    detector = _Detectors(board).detector
    markers, ids, corners, inverted = detect_either_print(frame, detector)
    assert not inverted and len(ids) == board.corner_count
    markers_inv, ids_inv, corners_inv, inverted = detect_either_print(255 - frame, detector)
    assert inverted and markers_inv == markers and len(ids_inv) == board.corner_count
    order = np.argsort(ids), np.argsort(ids_inv)
    assert np.abs(corners[order[0]] - corners_inv[order[1]]).max() < 0.05  # the same corners, to sub-pixel
    # Told the board is inverted, an ordinary print is not found (no second pass the other way).
    assert len(detect_either_print(frame, detector, inverted=True)[1]) == 0


def test_no_markers_hint_lists_the_causes_in_order(tmp_path: Path) -> None:
    import cv2

    images = tmp_path / "noise"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(images / f"f{i}.png"), rng.integers(0, 255, (120, 160), dtype=np.uint8))
    out = tmp_path / "s.h5"
    result = run_cli("scan", images, "--out", out, *BOARD, "--calibrate", "-q", check=False)
    assert_clean_failure(result, str(images), out)
    line = result.stderr
    assert "0 ArUco markers" in line and "white-on-black" in line
    assert line.index("--dict DICT_4X4_50") < line.index("not in view")


def test_no_corners_hint_lists_the_causes_in_order(normal_capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    result = run_cli("scan", normal_capture / "images", "--out", out, "--board", "7x8", *BOARD[2:], "--intrinsics",
                     normal_capture / "intrinsics.yml", "--every", "4", "-q", check=False)
    assert_clean_failure(result, "no ChArUco corners", out)
    line = result.stderr
    positions = [line.index(s) for s in ("--board 7x8", "--legacy", "--marker 0.037", "in view")]
    assert positions == sorted(positions), line


# ---------------------------------------------------------------- intrinsics formats

K = np.array([[452.5, 0.0, 320.5], [0.0, 451.0, 240.25], [0.0, 0.0, 1.0]])
DIST = np.array([0.1, -0.2, 0.001, 0.002, 0.03])


def test_opencv_yaml_and_ros_camera_info(tmp_path: Path) -> None:
    path = tmp_path / "cal.yml"
    write_intrinsics(path, Intrinsics(K, DIST, 640, 480))
    loaded = read_intrinsics(path)
    np.testing.assert_allclose(loaded.K, K)
    np.testing.assert_allclose(loaded.distortion, DIST)
    assert (loaded.width, loaded.height) == (640, 480)
    ros = tmp_path / "camera_info.yaml"
    ros.write_text("image_width: 640\nimage_height: 480\ncamera_name: cam\ncamera_matrix:\n  rows: 3\n  cols: 3\n"
                   f"  data: {K.reshape(-1).tolist()}\ndistortion_model: plumb_bob\ndistortion_coefficients:\n"
                   f"  rows: 1\n  cols: 5\n  data: {DIST.tolist()}\n")
    loaded = read_intrinsics(ros)
    np.testing.assert_allclose(loaded.K, K)
    np.testing.assert_allclose(loaded.distortion, DIST)


@pytest.mark.parametrize("model, params, fx, fy, dist", [
    ("SIMPLE_PINHOLE", [452.5, 320.5, 240.25], 452.5, 452.5, [0, 0, 0, 0, 0]),
    ("PINHOLE", [452.5, 451.0, 320.5, 240.25], 452.5, 451.0, [0, 0, 0, 0, 0]),
    ("SIMPLE_RADIAL", [452.5, 320.5, 240.25, 0.1], 452.5, 452.5, [0.1, 0, 0, 0, 0]),
    ("RADIAL", [452.5, 320.5, 240.25, 0.1, -0.2], 452.5, 452.5, [0.1, -0.2, 0, 0, 0]),
    ("OPENCV", [452.5, 451.0, 320.5, 240.25, 0.1, -0.2, 0.001, 0.002], 452.5, 451.0, [0.1, -0.2, 0.001, 0.002, 0]),
    ("FULL_OPENCV", [452.5, 451.0, 320.5, 240.25, 0.1, -0.2, 0.001, 0.002, 0.03, 0.01, 0.02, 0.04], 452.5, 451.0,
     [0.1, -0.2, 0.001, 0.002, 0.03, 0.01, 0.02, 0.04]),
])
def test_colmap_cameras_txt(tmp_path: Path, model: str, params: list[float], fx: float, fy: float,
                            dist: list[float]) -> None:
    path = tmp_path / "cameras.txt"
    path.write_text("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                    f"# Number of cameras: 1\n1 {model} 640 480 {' '.join(map(str, params))}\n")
    loaded = read_intrinsics(path)
    np.testing.assert_allclose(loaded.K, [[fx, 0, 320.5], [0, fy, 240.25], [0, 0, 1]])
    np.testing.assert_allclose(loaded.distortion, dist)
    assert (loaded.width, loaded.height) == (640, 480)


def test_colmap_several_cameras_and_unsupported_models(tmp_path: Path) -> None:
    path = tmp_path / "cameras.txt"
    path.write_text("1 PINHOLE 640 480 452.5 451 320.5 240.25\n2 PINHOLE 640 480 452.5 451 320.5 240.25\n")
    assert read_intrinsics(path).fx == 452.5  # the same camera twice is one camera
    path.write_text("1 PINHOLE 640 480 452.5 451 320.5 240.25\n2 PINHOLE 1280 960 905 902 640 480\n")
    with pytest.raises(InputFileError, match=r"cameras.txt: 2 different cameras \(ids 1, 2\)"):
        read_intrinsics(path)
    path.write_text("1 OPENCV_FISHEYE 640 480 452.5 451 320.5 240.25 0.1 0 0 0\n")
    with pytest.raises(InputFileError, match="OPENCV_FISHEYE cannot be expressed"):
        read_intrinsics(path)
    path.write_text("1 PINHOLE 640 480 452.5 451 320.5\n")
    with pytest.raises(InputFileError, match="PINHOLE camera has 4 parameters"):
        read_intrinsics(path)
    binary = tmp_path / "cameras.bin"  # COLMAP's binary model: the hint says how to convert it
    binary.write_bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes())
    with pytest.raises(InputFileError, match="model_converter --output_type TXT"):
        read_intrinsics(binary)


def test_transforms_json_nerfstudio_instant_ngp_and_nerf_synthetic(tmp_path: Path) -> None:
    import cv2

    nerfstudio = {"camera_model": "OPENCV", "fl_x": 452.5, "fl_y": 451.0, "cx": 320.5, "cy": 240.25, "w": 640,
                  "h": 480, "k1": 0.1, "k2": -0.2, "p1": 0.001, "p2": 0.002, "k3": 0.03, "frames": []}
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps(nerfstudio))
    loaded = read_intrinsics(path)
    np.testing.assert_allclose(loaded.K, K)
    np.testing.assert_allclose(loaded.distortion, DIST)
    # instant-ngp: the field of view instead of the focal length.
    angle = 2 * np.arctan(640 / (2 * 452.5))
    path.write_text(json.dumps({"camera_angle_x": angle, "w": 640, "h": 480, "frames": []}))
    loaded = read_intrinsics(path)
    np.testing.assert_allclose([loaded.fx, loaded.fy, loaded.cx, loaded.cy], [452.5, 452.5, 320, 240])
    # NeRF-synthetic: no size in the file, and file paths without ".png": the first frame's size.
    (tmp_path / "train").mkdir()
    cv2.imwrite(str(tmp_path / "train" / "r_0.png"), np.zeros((200, 300, 3), np.uint8))
    path.write_text(json.dumps({"camera_angle_x": 0.69, "frames": [{"file_path": "./train/r_0"}]}))
    loaded = read_intrinsics(path)
    assert (loaded.width, loaded.height) == (300, 200)
    np.testing.assert_allclose(loaded.fx, 150 / np.tan(0.345))
    # nerfstudio's per-frame intrinsics: one camera repeated is fine, two are refused.
    frame = {k: nerfstudio[k] for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")}
    path.write_text(json.dumps({"frames": [{"file_path": "a.png", **frame}, {"file_path": "b.png", **frame}]}))
    np.testing.assert_allclose(read_intrinsics(path).K, K)
    path.write_text(json.dumps({"frames": [{"file_path": "a.png", **frame}, {**frame, "fl_x": 900.0}]}))
    with pytest.raises(InputFileError, match="2 different cameras"):
        read_intrinsics(path)
    for refused, message in (({**nerfstudio, "camera_model": "OPENCV_FISHEYE"}, "OPENCV_FISHEYE"),
                             ({**nerfstudio, "k4": 0.01}, "k4"),
                             ({"camera_angle_x": 0.69, "frames": []}, "no image size")):
        path.write_text(json.dumps(refused))
        with pytest.raises(InputFileError, match=message):
            read_intrinsics(path)


@pytest.mark.parametrize("name, text", [
    ("K.txt", "452.5 0 320.5\n0 451 240.25\n0 0 1\n"),
    ("K.csv", "452.5,0,320.5\n0,451,240.25\n0,0,1\n"),
    ("K.txt", "# from another tool\n[[452.5, 0, 320.5], [0, 451, 240.25], [0, 0, 1]]\n"),
])
def test_bare_matrix_as_text(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    loaded = read_intrinsics(path)
    np.testing.assert_allclose(loaded.K, K)
    assert not loaded.has_size and not loaded.distortion.any()


def test_bare_matrix_as_npy_and_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "K.npy"
    np.save(path, K)
    np.testing.assert_allclose(read_intrinsics(path).K, K)
    np.save(path, np.eye(4))
    with pytest.raises(InputFileError, match=r"shape \(4, 4\), not a 3x3"):
        read_intrinsics(path)
    np.save(path, np.array([{"K": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="K.npy: not a readable .npy"):  # never unpickled
        read_intrinsics(path)
    text = tmp_path / "P.txt"
    text.write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n")
    with pytest.raises(InputFileError, match="12 numbers; a bare camera matrix is 9"):
        read_intrinsics(text)


@pytest.mark.parametrize("name, content", [
    ("camera.toml", b"[camera]\nfx = 452.5\nfy = 451.0\ncx = 320.5\ncy = 240.25\nwidth = 640\nheight = 480\n"),
    ("camera.yml", b"[camera]\nfx = 452.5\n"),  # TOML under a YAML name: OpenCV's parser fails
    ("random.bin", np.random.default_rng(3).integers(0, 256, 512, dtype=np.uint8).tobytes()),
    ("random.yml", np.random.default_rng(4).integers(0, 256, 512, dtype=np.uint8).tobytes()),
    ("empty.txt", b""),
])
def test_other_files_are_refused_in_one_line(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError) as caught:
        read_intrinsics(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "COLMAP cameras.txt" in message and "transforms.json" in message and "OpenCV YAML" in message
    folder = tmp_path / "frames"
    folder.mkdir()
    out = tmp_path / "s.h5"
    result = run_cli("scan", folder, "--out", out, *BOARD, "--intrinsics", path, check=False)
    assert_clean_failure(result, str(path), out)
    assert "internal error" not in result.stderr and result.returncode == 2


def test_bare_matrix_takes_the_capture_size(normal_capture: Path, tmp_path: Path) -> None:
    truth = load_truth(normal_capture)
    matrix = tmp_path / "K.txt"
    np.savetxt(matrix, np.array(truth["K"]))
    out = tmp_path / "bare.h5"
    run_cli("scan", normal_capture / "images", "--out", out, *BOARD, "--intrinsics", matrix, "--no-splits", "-q")
    data = read_scan(out)
    assert (data.intrinsics.width, data.intrinsics.height) == (320, 240)
    rotation, position = pose_errors(normal_capture, out)
    assert rotation < 0.5 and position < 0.01
    # A matrix made for a larger image: its principal point lies outside these frames.
    np.savetxt(matrix, np.array([[900.0, 0, 720], [0, 900, 540], [0, 0, 1]]))
    result = run_cli("scan", normal_capture / "images", "--out", tmp_path / "big.h5", *BOARD, "--intrinsics", matrix,
                     "--no-splits", "-q", check=False)
    assert_clean_failure(result, "for another image size", tmp_path / "big.h5")


# ---------------------------------------------------------------- image writes, export copies


def test_write_image_raises_instead_of_returning_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    from nrtool.io.images import write_image

    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(InputFileError, match=r"x\.xyz: cannot encode the image as \.xyz \(could not find encoder"):
        write_image(tmp_path / "x.xyz", image)
    write_image(tmp_path / "ok.png", image)
    assert cv2.imread(str(tmp_path / "ok.png")) is not None
    monkeypatch.setattr(cv2, "imencode", lambda *args, **kwargs: (False, None))
    with pytest.raises(InputFileError, match="bad.png: cannot encode"):
        write_image(tmp_path / "bad.png", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]  # nothing half-written


def test_synth_capture_reports_a_failed_image_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.setattr(cv2, "imencode", lambda *args, **kwargs: (False, None))
    out = tmp_path / "cap"
    result = run_cli("synth", "capture", "--out", out, *SMALL, "--workers", "1", check=False)
    assert_clean_failure(result, "cannot encode the image as .jpg", out)
    assert list(tmp_path.iterdir()) == []  # the temporary folder went too


def test_export_from_video_reports_a_failed_image_write(normal_capture: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    video = tmp_path / "capture.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for frame in load_truth(normal_capture)["frames"]:
        writer.write(cv2.imread(str(normal_capture / frame["image"])))
    writer.release()
    scan_file = tmp_path / "video.h5"
    run_cli("scan", video, "--out", scan_file, *BOARD, "--intrinsics", normal_capture / "intrinsics.yml",
            "--no-splits", "-q")
    run_cli("export", "nerf", scan_file, "--out", tmp_path / "good", "-q")
    assert len(list((tmp_path / "good" / "images").glob("*.jpg"))) == 16
    monkeypatch.setattr(cv2, "imencode", lambda *args, **kwargs: (False, None))
    out = tmp_path / "nerf"
    result = run_cli("export", "nerf", scan_file, "--out", out, "-q", check=False)
    assert_clean_failure(result, "cannot encode the image as .jpg", out)


def test_export_copies_by_default_and_links_on_request(normal_scan: Path, tmp_path: Path) -> None:
    data = read_scan(normal_scan)
    source = Path(data.frame_paths[0])
    run_cli("export", "nerf", normal_scan, "--out", tmp_path / "copied", "-q")
    copied = tmp_path / "copied" / "images" / source.name
    assert copied.read_bytes() == source.read_bytes()
    assert copied.stat().st_ino != source.stat().st_ino
    run_cli("export", "nerf", normal_scan, "--out", tmp_path / "linked", "--link", "-q")
    linked = tmp_path / "linked" / "images" / source.name
    assert linked.stat().st_ino == source.stat().st_ino  # same file system here: a hard link
