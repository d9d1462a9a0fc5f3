"""``nrtool scan`` as a library call: frames -> ChArUco detections -> (calibration) -> poses ->
filtering -> splits, returned as a :class:`~nrtool.scan.artifact.ScanData`."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from nrtool.errors import InputFileError, NrtoolError
from nrtool.progress import Progress, SilentProgress
from nrtool.scan import filtering
from nrtool.scan.artifact import ScanData
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
    """Fail with one clear line when nothing in the capture can give a pose; the hint lists the
    likely causes, most likely first."""
    readable = [d for d in detections if not d.error]
    if not readable:
        first = detections[0]
        raise InputFileError(source, f"none of the {len(detections)} images could be read "
                                     f"(e.g. {first.frame.name}: {first.error})")
    if sum(d.markers for d in readable) == 0:
        looked = ("a white-on-black print only (--inverted)" if board.inverted
                  else "black-on-white and white-on-black prints")
        raise InputFileError(source, f"0 ArUco markers of {board.dictionary} were found in {len(readable)} frames, "
                                     f"looking for {looked}; likely causes, most likely first: "
                                     f"{'; '.join(_no_marker_causes(board))}")
    if all(len(d.corner_ids) == 0 for d in readable):
        raise InputFileError(source, f"ArUco markers were found but no ChArUco corners in {len(readable)} frames; "
                                     f"likely causes, most likely first: {'; '.join(_no_corner_causes(board))}")


def _no_marker_causes(board: ChArUcoBoard) -> list[str]:
    """Why no marker of the dictionary shows up (the board layout plays no part yet)."""
    causes = [f"another ArUco dictionary than --dict {board.dictionary}"]
    if board.inverted:
        causes.append("a board printed black on white (drop --inverted)")
    causes.append("the board not in view, or too small, blurred or over-exposed in the frames")
    return causes


def _no_corner_causes(board: ChArUcoBoard) -> list[str]:
    """Why markers decode but no chessboard corner is placed: the layout does not match."""
    causes = [f"another board geometry than --board {board.cols}x{board.rows} (squares, not inner corners; "
              "columns and rows swapped?)"]
    if board.legacy:
        causes.append("not a legacy print (drop --legacy)")
    elif board.rows % 2 == 0:  # OpenCV < 4.6 laid out boards with an even row count differently
        causes.append("a board printed with OpenCV < 4.6 (add --legacy)")
    causes.append(f"another marker/square ratio than --marker {board.marker:g} / --square {board.square:g}")
    causes.append("too little of the board in view (a corner needs its two neighbouring markers)")
    return causes


def _note_inverted(detections: list[Detection], board: ChArUcoBoard, warning: Callable[[str], None]) -> ChArUcoBoard:
    """The board as the capture showed it: found white on black in most frames that show it
    (by the automatic second pass) means an inverted print, which the artifact then records."""
    if board.inverted:
        return board
    seen = [d for d in detections if not d.error and len(d.corner_ids)]
    inverted = sum(d.inverted for d in seen)
    if not inverted:
        return board
    if 2 * inverted <= len(seen):  # a few odd frames: the board is an ordinary print
        warning(f"{inverted} of {len(seen)} frames showing the board found it only in the inverted image "
                "(white on black)")
        return board
    warning(f"the board is printed white on black (inverted): found so in {inverted} of {len(seen)} frames showing it; "
            "pass --inverted to skip the black-on-white pass")
    return replace(board, inverted=True)


def _sized_to_capture(intrinsics: Intrinsics, width: int, height: int, warning: Callable[[str], None]) -> Intrinsics:
    """A bare camera matrix (a file without the image size) taken as made for the capture's
    frames; a principal point outside them means it was made for another size."""
    where = intrinsics.source.removeprefix("file:")
    if not (0 < intrinsics.cx < width and 0 < intrinsics.cy < height):
        raise InputFileError(where, f"principal point ({intrinsics.cx:g}, {intrinsics.cy:g}) lies outside the "
                                    f"capture's {width}x{height} frames: the matrix is for another image size "
                                    "(give the size, e.g. as OpenCV YAML with image_width/image_height)")
    if abs(intrinsics.cx / width - 0.5) > 0.2 or abs(intrinsics.cy / height - 0.5) > 0.2:
        warning(f"{where}: principal point ({intrinsics.cx:g}, {intrinsics.cy:g}) is far from the centre of the "
                f"{width}x{height} frames: is the matrix for another image size?")
    return intrinsics.with_size(width, height)


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

    board = _note_inverted(detections, board, warning)
    if intrinsics is None:
        intrinsics = _calibrate(detections, reasons, geometry, filter_config.min_corners, width, height)
    elif not intrinsics.has_size:
        intrinsics = _sized_to_capture(intrinsics, width, height, warning)
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
