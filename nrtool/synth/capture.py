"""A synthetic ScanNeRF turntable capture with ground truth (``nrtool synth capture``).

The scene: a ChArUco board (rendered by ``CharucoBoard.generateImage``; white on black for an
``inverted`` board) lying on a grey turntable disc, with a box standing on its centre. The
camera follows the scan station's trajectory: it starts at a zenith of ~20 deg and at each of
``steps`` zenith steps the base turns ``turns`` x 360 deg while frames are taken; between steps
the base stops and the arm lowers the camera, and the frames taken then (``descent_frames`` per
transition) are the ones ``nrtool scan`` must drop.
Everything is expressed in the board's world frame (:mod:`nrtool.scan.board`), where the turning
base makes the camera circle the object.

Rendering is exact for the planar board (a homography per frame) and for the convex box
(back-face culling suffices), supersampled 2x; the light is fixed relative to the camera (it is
fixed in the room, and so is the arm's azimuth), then slight blur and sensor noise are added.

Writes ``images/frame_NNNNN.jpg``, ``masks/frame_NNNNN.png`` (object = 255), ``intrinsics.yml``
(OpenCV YAML, what ``nrtool scan --intrinsics`` reads), ``board.png`` and ``ground_truth.json``
(board spec, command-line hints, per-frame camera-to-world (OpenCV convention), azimuth,
zenith, zenith step and whether the arm was moving).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nrtool.artifacts.core import atomic_folder, atomic_write_bytes
from nrtool.config import Config
from nrtool.errors import NrtoolError
from nrtool.io.images import write_image
from nrtool.scan.board import ChArUcoBoard
from nrtool.scan.intrinsics import Intrinsics, write_intrinsics
from nrtool.scan.poses import look_at

#: Rendering supersampling factor (anti-aliased edges make sub-pixel corners realistic).
SUPERSAMPLE = 2


@dataclass(frozen=True)
class CaptureConfig(Config):
    """The synthetic station. Defaults: a ~2.2k-frame capture at 960x720 (the real station films
    ~9000 frames at 1440x1080, i.e. ``frames_per_turn`` ~280)."""

    width: int = 960
    height: int = 720
    focal: float = 0.85  # fx = fy = focal * width
    board: ChArUcoBoard = field(default_factory=lambda: ChArUcoBoard(8, 8, 0.05, 0.037, "DICT_4X4_50"))
    distance: float = 0.7  # camera to board centre, metres
    zenith_start: float = 20.0
    zenith_end: float = 75.0
    steps: int = 16
    turns: float = 2.0
    frames_per_turn: int = 66
    descent_frames: int = 8
    box: tuple[float, float, float] = (0.10, 0.08, 0.14)  # object size x, y, height (metres)
    noise: float = 2.0  # sensor noise std, grey levels
    blur: float = 0.6  # Gaussian blur sigma, pixels
    seed: int = 0

    WHAT = "capture"
    VALIDATE_ON_INIT = True

    def validate(self) -> None:
        if self.width < 64 or self.height < 64:
            raise NrtoolError("--size must be at least 64x64")
        if self.steps < 1 or self.frames_per_turn < 4 or self.descent_frames < 0 or self.turns <= 0:
            raise NrtoolError("need --steps >= 1, --frames-per-turn >= 4, --descent-frames >= 0")
        if not 0 < self.zenith_start <= self.zenith_end < 89:
            raise NrtoolError("zenith range must satisfy 0 < start <= end < 89 degrees")
        if self.distance <= 0:
            raise NrtoolError("--distance must be positive")

    def intrinsics(self) -> Intrinsics:
        f = self.focal * self.width
        K = np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1]], float)
        return Intrinsics(K, np.zeros(5), self.width, self.height, "synthetic")


@dataclass(frozen=True)
class TrajectoryFrame:
    azimuth: float  # degrees, of the camera in the board frame
    zenith: float
    step: int  # zenith step (for a descent frame: the step it leaves)
    moving: bool  # taken while the arm moved


def trajectory(config: CaptureConfig) -> list[TrajectoryFrame]:
    """The station's camera path in the board frame, frame by frame.

    The base turns by ``360 / (frames_per_turn - 0.5)`` per frame, so the second turn falls
    half a frame between the first turn's views instead of repeating them. When a step ends the
    base stops where its last frame was taken; the descent frames share that azimuth.
    """
    zeniths = np.linspace(config.zenith_start, config.zenith_end, config.steps)
    delta = 360.0 / (config.frames_per_turn - 0.5)
    per_step = int(round(config.turns * config.frames_per_turn))
    frames: list[TrajectoryFrame] = []
    azimuth = 0.0
    for step, zenith in enumerate(zeniths):
        for k in range(per_step):
            if k or step:
                azimuth = (azimuth + delta) % 360.0
            frames.append(TrajectoryFrame(azimuth, float(zenith), step, False))
        if step + 1 < len(zeniths):
            for z in np.linspace(zenith, zeniths[step + 1], config.descent_frames + 2)[1:-1]:
                frames.append(TrajectoryFrame(azimuth, float(z), step, True))
    return frames


class _Scene:
    """Textures and geometry shared by all frames."""

    def __init__(self, config: CaptureConfig) -> None:
        import cv2

        self.config = config
        board = config.board
        pixels_per_square = 64
        self.ppm = pixels_per_square / board.square  # texture pixels per metre
        board_image = board.render(pixels_per_square)
        radius = 0.75 * float(np.hypot(*board.size))  # turntable disc
        side = int(np.ceil(2 * radius * self.ppm)) | 1
        texture = np.full((side, side), 0, np.uint8)
        alpha = np.zeros((side, side), np.uint8)
        centre = (side - 1) // 2
        cv2.circle(alpha, (centre, centre), int(radius * self.ppm), 255, -1, lineType=cv2.LINE_AA)
        yy, xx = np.mgrid[0:side, 0:side]
        # A dark, slightly mottled turntable, so the plane has texture around the board.
        texture[:] = (70 + 12 * np.sin(xx / 37.0) * np.cos(yy / 53.0)).astype(np.uint8)
        h, w = board_image.shape
        top, left = centre - h // 2, centre - w // 2
        texture[top:top + h, left:left + w] = board_image
        # Board image pixel u covers board x in [u, u + 1] / ppm from the board's corner, so its
        # centre is x = (u + 0.5) / ppm: the board centre (world origin) sits at these texture
        # coordinates (pixel centres at integers, as warpPerspective has them).
        self.texture_centre = (left + w / 2 - 0.5, top + h / 2 - 0.5)
        self.texture = texture
        self.alpha = alpha
        sx, sy, sz = config.box
        base = np.array([[-sx, -sy], [sx, -sy], [sx, sy], [-sx, sy]]) / 2
        turn = np.radians(25.0)  # not axis-aligned with the board
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        base = base @ rotation.T
        self.box_vertices = np.concatenate([np.c_[base, np.zeros(4)], np.c_[base, np.full(4, sz)]])
        # Faces as outward-facing vertex loops (the bottom is hidden by the board).
        self.box_faces = [[4, 5, 6, 7], [0, 1, 5, 4], [1, 2, 6, 5], [2, 3, 7, 6], [3, 0, 4, 7]]
        self.box_colour = np.array([40.0, 110.0, 200.0])  # BGR, an orange box
        # The lens falloff, a per-pixel constant of every frame (at the output size).
        yy, xx = np.mgrid[0:config.height, 0:config.width].astype(np.float32)
        w2, h2 = config.width / 2, config.height / 2
        self.vignette = 1.0 - 0.25 * ((xx - w2) ** 2 + (yy - h2) ** 2) / (w2**2 + h2**2)


def _wall(K: np.ndarray, pose: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width) grey of the studio behind the turntable, far away: it depends on the
    direction a pixel looks in (brighter upwards), so every view sees the same room (a NeRF
    can explain it as a background at infinity)."""
    u = (np.arange(width, dtype=np.float32) - K[0, 2]) / K[0, 0]
    v = (np.arange(height, dtype=np.float32) - K[1, 2]) / K[1, 1]
    R = pose[:3, :3].astype(np.float32)
    # World z of the unnormalised direction R @ (u, v, 1), and its length.
    z = R[2, 0] * u[None, :] + R[2, 1] * v[:, None] + R[2, 2]
    length = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2 + 1)
    elevation = np.degrees(np.arcsin(np.clip(z / length, -1, 1)))
    return (165 + 45 * np.clip(elevation / 30.0, -1, 1)).astype(np.float32)


def _render(scene: _Scene, pose: np.ndarray, light_azimuth: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(BGR image, object mask) of one frame."""
    import cv2

    config = scene.config
    ss = SUPERSAMPLE
    K = config.intrinsics().K.copy()
    # Supersampled pixel x_ss covers [ss*x - (ss-1)/2 ...]: centres map as x_ss = ss*x + (ss-1)/2.
    K[:2] *= ss
    K[0, 2] += (ss - 1) / 2
    K[1, 2] += (ss - 1) / 2
    width, height = config.width * ss, config.height * ss
    world_to_camera = np.linalg.inv(pose)
    R, t = world_to_camera[:3, :3], world_to_camera[:3, 3]
    # Texture pixel (u, v) -> world (x, y, 0) -> image: one homography.
    cu, cv = scene.texture_centre
    texture_to_world = np.array([[1 / scene.ppm, 0, -cu / scene.ppm], [0, -1 / scene.ppm, cv / scene.ppm], [0, 0, 1]])
    homography = K @ np.column_stack([R[:, 0], R[:, 1], t]) @ texture_to_world
    plane = cv2.warpPerspective(scene.texture, homography, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(scene.alpha, homography, (width, height), flags=cv2.INTER_LINEAR)
    a = alpha.astype(np.float32) / 255.0
    light = np.array([np.cos(np.radians(light_azimuth)), np.sin(np.radians(light_azimuth)), 1.5])
    light /= np.linalg.norm(light)
    plane_shade = 0.55 + 0.45 * light[2]
    image = _wall(K, pose, width, height) * (1 - a) + plane.astype(np.float32) * plane_shade * a
    image = np.repeat(image[:, :, None], 3, axis=2)
    mask = np.zeros((height, width), np.uint8)
    centre = pose[:3, 3]
    rvec = cv2.Rodrigues(R)[0]
    projected, _ = cv2.projectPoints(scene.box_vertices, rvec, t, K, None)
    projected = projected.reshape(-1, 2)
    for face in scene.box_faces:
        corners = scene.box_vertices[face]
        normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        normal /= np.linalg.norm(normal)
        if normal @ (centre - corners.mean(axis=0)) <= 0:
            continue  # faces away from the camera: a convex solid needs no other visibility test
        shade = 0.35 + 0.65 * max(0.0, float(normal @ light))
        polygon = np.round(projected[face] * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillConvexPoly(image, polygon, (scene.box_colour * shade).tolist(), lineType=cv2.LINE_AA, shift=4)
        cv2.fillConvexPoly(mask, polygon, 255, lineType=cv2.LINE_8, shift=4)
    # Down to the output size, lens falloff (vignetting), blur and noise.
    image = cv2.resize(image, (config.width, config.height), interpolation=cv2.INTER_AREA)
    image *= scene.vignette[:, :, None]
    mask = cv2.resize(mask, (config.width, config.height), interpolation=cv2.INTER_AREA)
    if config.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), config.blur)
    if config.noise > 0:
        image += rng.normal(0.0, config.noise, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), np.where(mask >= 128, 255, 0).astype(np.uint8)


def make_capture(out: str | os.PathLike[str], config: CaptureConfig = CaptureConfig(), workers: int | None = None,
                 on_frame: Callable[[], None] | None = None) -> dict:
    """Render the capture into ``out`` (created); returns the ground truth written to
    ``ground_truth.json``. ``on_frame`` is called after each frame (progress)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NrtoolError(f"{out}: already exists and is not empty")
    if not out.parent.is_dir():
        raise NrtoolError(f"{out}: parent folder {out.parent} does not exist")
    # Built under a temporary name beside `out`, renamed when complete: no half-written capture.
    with atomic_folder(out) as tmp:
        truth = _write_capture(tmp, config, workers, on_frame)
    return truth


def _write_capture(out: Path, config: CaptureConfig, workers: int | None, on_frame: Callable[[], None] | None) -> dict:
    import cv2

    from nrtool.scan.detection import available_cores

    (out / "images").mkdir()
    (out / "masks").mkdir()
    scene = _Scene(config)
    frames = trajectory(config)
    poses = [look_at(f.azimuth, f.zenith, config.distance) for f in frames]

    def render(index: int) -> None:
        rng = np.random.default_rng([config.seed, index])
        # The lamp stands still in the room, as does the arm: relative to the turning board the
        # light keeps a fixed azimuth offset from the camera.
        image, mask = _render(scene, poses[index], frames[index].azimuth + 40.0, rng)
        write_image(out / "images" / f"frame_{index:05d}.jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        write_image(out / "masks" / f"frame_{index:05d}.png", mask)

    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers or available_cores()) as pool:
            for _ in pool.map(render, range(len(frames))):
                if on_frame is not None:
                    on_frame()  # from this thread: progress bars are not thread-safe
    finally:
        cv2.setNumThreads(previous)
    intrinsics = config.intrinsics()
    write_intrinsics(out / "intrinsics.yml", intrinsics, note="nrtool synth capture (exact, no distortion)")
    write_image(out / "board.png", config.board.render(100, margin_squares=0.5))
    board = config.board
    truth = {
        "board": board.to_dict(),
        "scan_options": ["--board", f"{board.cols}x{board.rows}", "--square", f"{board.square:g}", "--marker",
                         f"{board.marker:g}", "--dict", board.dictionary, "--intrinsics", "intrinsics.yml",
                         *(["--legacy"] if board.legacy else []), *(["--inverted"] if board.inverted else [])],
        "width": config.width,
        "height": config.height,
        "K": intrinsics.K.tolist(),
        "distance": config.distance,
        "camera_convention": "OpenCV camera-to-world (x right, y down, z forward); world = board frame, z up",
        "frames": [
            {"name": f"frame_{i:05d}", "image": f"images/frame_{i:05d}.jpg", "mask": f"masks/frame_{i:05d}.png",
             "camera_to_world": poses[i].tolist(), "azimuth": f.azimuth, "zenith": f.zenith, "step": f.step,
             "moving": f.moving}
            for i, f in enumerate(frames)
        ],
    }
    atomic_write_bytes(out / "ground_truth.json", (json.dumps(truth, indent=1) + "\n").encode())
    return truth
