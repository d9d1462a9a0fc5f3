"""ScanNeRF capture processing: ChArUco camera poses, frame filtering, benchmark splits, export.

One module per job: :mod:`board` (the printed board and the world frame it defines),
:mod:`intrinsics` (camera matrix from a file or a calibration), :mod:`frames` (reading images or
a video), :mod:`detection` (ChArUco corners, in parallel), :mod:`poses` (solvePnP per frame),
:mod:`filtering` (which frames to keep, and why the others are dropped), :mod:`splits` (farthest
point sampling and octant sub-splits), :mod:`pipeline` (the whole ``nrtool scan``),
:mod:`export` (nerfstudio / NeRF-synthetic files) and :mod:`plots`.

OpenCV (``cv2``) is imported inside functions so that importing this package stays cheap.
"""
