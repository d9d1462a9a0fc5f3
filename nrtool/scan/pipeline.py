"""``nrtool scan`` as a library call: frames -> ChArUco detections -> (calibration) -> poses ->
filtering -> splits, returned as a :class:`~nrtool.artifacts.scan.ScanData`."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nrtool.artifacts.scan import ScanData
from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress
from nrtool.scan import filtering
from nrtool.scan.board import ChArUcoBoard
from nrtool.scan.detection import Detection, detect_frames
from nrtool.scan.filtering import FilterConfig
from nrtool.scan.frames import iter_video, list_image_frames, video_frame_count
from nrtool.scan.intrinsics import Intrinsics, calibrate
from nrtool.scan.poses import BoardGeometry, PoseResult, camera_angles, estimate_pose
from nrtool.scan.splits import SplitSizes, make_splits

#: Frames used by --calibrate at most (spread over the capture): calibrateCamera's cost grows
#: with the views, and 40 views from all around the hemisphere pin K down well.
CALIBRATION_FRAMES = 40


def detect_capture(source: str | os.PathLike[str], board: ChArUcoBoard, every: int = 1, workers: int | None = None,
                   progress: Progress | None = None, embed: bool = False) -> tuple[list[Detection], str]:
    """Detections of every frame of a folder of images or a video; also returns the source kind."""
    source = Path(source)
    if every < 1:
        raise NrtoolError("--every must be at least 1")
    if not source.exists():
        raise InputFileError(source, "no such file or folder")
    if source.is_dir():
        frames = list_image_frames(source)
        frames = frames[::every]
        return detect_frames(frames, board, len(frames), workers, progress, embed), "images"
    total = video_frame_count(source)  # also fails cleanly when the video cannot be opened
    estimate = (total + every - 1) // every if total else 0
    return detect_frames(iter_video(source, every), board, estimate, workers, progress, embed), "video"


def _check_detections(source: str | os.PathLike[str], detections: list[Detection], board: ChArUcoBoard) -> None:
    """Fail with one clear line when nothing in the capture can give a pose."""
    readable = [d for d in detections if not d.error]
    if not readable:
        first = detections[0]
        raise InputFileError(source, f"none of the {len(detections)} images could be read "
                                     f"(e.g. {first.frame.name}: {first.error})")
    if sum(d.markers for d in readable) == 0:
        legacy = "" if board.legacy else " and --legacy for boards printed with OpenCV < 4.6"
        raise InputFileError(source, f"0 ArUco markers of {board.dictionary} were found in {len(readable)} frames: "
                                     f"is the board in view? check --dict{legacy}")
    if all(len(d.corner_ids) == 0 for d in readable):
        raise InputFileError(source, f"ArUco markers were found but no ChArUco corners in {len(readable)} frames: "
                                     f"check --board (now {board.cols}x{board.rows}) and --legacy")


def _capture_size(detections: list[Detection]) -> tuple[int, int]:
    """The capture's image size: the most common one among the readable frames."""
    sizes = Counter((d.width, d.height) for d in detections if not d.error)
    return sizes.most_common(1)[0][0]


def run_scan(
    source: str | os.PathLike[str],
    board: ChArUcoBoard,
    intrinsics: Intrinsics | None,
    filter_config: FilterConfig = FilterConfig(),
    split_sizes: SplitSizes | None = SplitSizes(),
    seed: int = 0,
    every: int = 1,
    workers: int | None = None,
    embed_images: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> ScanData:
    """Process a capture. ``intrinsics=None`` calibrates them from the capture's own detections;
    ``split_sizes=None`` skips the splits (calibration-only runs)."""
    warn = warn or (lambda message: None)
    progress = progress or SilentProgress()
    detections, kind = detect_capture(source, board, every, workers, progress, embed_images)
    _check_detections(source, detections, board)
    width, height = _capture_size(detections)
    geometry = BoardGeometry(board)
    n = len(detections)
    reasons, details = [""] * n, [""] * n
    for i, d in enumerate(detections):
        if d.error:
            reasons[i], details[i] = filtering.UNREADABLE, d.error
        elif (d.width, d.height) != (width, height):
            reasons[i], details[i] = filtering.SIZE_MISMATCH, f"{d.width}x{d.height}, the capture is {width}x{height}"

    warnings: list[str] = []

    def warning(message: str) -> None:
        warnings.append(message)
        warn(message)

    if intrinsics is None:
        intrinsics = _calibrate(detections, reasons, geometry, filter_config.min_corners, width, height)
    elif (intrinsics.width, intrinsics.height) != (width, height):
        if abs(intrinsics.width / intrinsics.height - width / height) > 1e-3:
            where = intrinsics.source.removeprefix("file:")
            raise InputFileError(where, f"intrinsics are for {intrinsics.width}x{intrinsics.height} images, the capture "
                                        f"is {width}x{height} (another aspect ratio)")
        warning(f"intrinsics for {intrinsics.width}x{intrinsics.height} scaled to the capture's {width}x{height}")
        intrinsics = intrinsics.scaled_to(width, height)

    poses: list[PoseResult] = []
    for i, d in enumerate(detections):
        if reasons[i]:
            poses.append(PoseResult(None, float("nan")))
            continue
        pose = estimate_pose(d, geometry, intrinsics, filter_config.min_corners)
        if pose.reason:
            reasons[i], details[i] = pose.reason, pose.detail
        poses.append(pose)
    if all(p.camera_to_world is None for p in poses):
        counts = filtering.reason_counts(reasons)
        raise InputFileError(source, f"no frame gave a camera pose ({', '.join(f'{k}: {v}' for k, v in counts.items())})")

    camera_to_world = np.full((n, 4, 4), np.nan)
    errors = np.full(n, np.nan)
    for i, pose in enumerate(poses):
        if pose.camera_to_world is not None:
            camera_to_world[i] = pose.camera_to_world
            errors[i] = pose.reprojection_error
    azimuth, zenith = camera_angles(camera_to_world[:, :3, 3])
    kept, reasons, details, steps = filtering.filter_frames(reasons, details, errors, azimuth, filter_config)

    corners = np.full((n, board.corner_count, 2), np.nan, np.float32)
    for i, d in enumerate(detections):
        if len(d.corner_ids):
            corners[i, d.corner_ids] = d.corners
    data = ScanData(
        names=[d.frame.name for d in detections],
        frame_paths=[d.frame.path for d in detections],
        video_frame=np.array([d.frame.video_frame for d in detections], np.int64),
        intrinsics=intrinsics,
        board=board,
        camera_to_world=camera_to_world,
        reprojection_error=errors,
        markers=np.array([d.markers for d in detections], np.int32),
        corners=corners,
        azimuth=azimuth,
        zenith=zenith,
        azimuth_step=steps,
        kept=kept,
        drop_reason=reasons,
        drop_detail=details,
        filter_config=filter_config,
        source=str(Path(source).resolve()),
        source_kind=kind,
        every=every,
        seed=seed,
        images=[d.encoded or b"" for d in detections] if embed_images else None,
        warnings=warnings,
    )
    if split_sizes is not None:
        kept_index = np.flatnonzero(kept)
        sizes, message = split_sizes.fitted_to(len(kept_index))
        if message:
            warning(message)
        splits = make_splits(camera_to_world[kept_index, :3, 3], kept_index, sizes, seed)
        data.splits = splits.sets
        data.octant_centre = splits.octant_centre
        data.split_sizes = {**asdict(sizes), "train_subsets": list(sizes.train_subsets)}
    return data


def _calibrate(detections: list[Detection], reasons: list[str], geometry: BoardGeometry, min_corners: int,
               width: int, height: int) -> Intrinsics:
    """K and distortion from up to :data:`CALIBRATION_FRAMES` well-detected frames spread over the capture."""
    usable = [i for i, d in enumerate(detections) if not reasons[i] and not geometry.usable(d, min_corners)[0]]
    if len(usable) > CALIBRATION_FRAMES:
        usable = [usable[int(k)] for k in np.linspace(0, len(usable) - 1, CALIBRATION_FRAMES).round()]
    objects, pixels = [], []
    for i in usable:
        obj, pix = geometry.correspondences(detections[i])
        objects.append(obj)
        pixels.append(pix)
    return calibrate(objects, pixels, width, height)
