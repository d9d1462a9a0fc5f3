"""Say what a file is when it is not the array file a body/motion option wanted.

Given ``walk.obj`` as ``--pose``, numpy's loader reports "pickled data", which sends the user
looking for a pickle problem; :func:`sniff` names what the file actually is (a mesh, an image,
an HDF5 file, a pickle, text, ...) from its first bytes, then from its extension, so that the
caller can say that and what it expected in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ZIP_MAGIC", "NPY_MAGIC", "sniff", "is_numpy_file"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip (``.npz``) with members / an empty one
NPY_MAGIC = b"\x93NUMPY"

# First bytes -> what the file is. Checked in order; the first match wins.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"ply\n", "a PLY mesh"),
    (b"ply\r\n", "a PLY mesh"),
    (b"glTF", "a binary glTF (.glb) scene"),
    (b"Kaydara FBX Binary", "an FBX scene"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
    (b"HIERARCHY", "a BVH motion-capture file (rotations of its own skeleton, not SMPL parameters)"),
)
# Extension -> what the file is, when the first bytes did not say (binary STL, C3D, ...).
_EXTENSIONS: dict[str, str] = {
    ".obj": "a Wavefront OBJ mesh", ".ply": "a PLY mesh", ".stl": "an STL mesh", ".off": "an OFF mesh",
    ".glb": "a binary glTF (.glb) scene", ".gltf": "a glTF scene", ".fbx": "an FBX scene",
    ".png": "a PNG image", ".jpg": "a JPEG image", ".jpeg": "a JPEG image", ".exr": "an EXR image",
    ".h5": "an HDF5 file", ".hdf5": "an HDF5 file", ".pkl": "a Python pickle", ".pickle": "a Python pickle",
    ".joblib": "a joblib pickle", ".pt": "a PyTorch checkpoint", ".pth": "a PyTorch checkpoint",
    ".json": "a JSON file", ".csv": "a CSV text file", ".txt": "a text file",
    ".bvh": "a BVH motion-capture file (rotations of its own skeleton, not SMPL parameters)",
    ".c3d": "a C3D motion-capture file (marker positions, not SMPL parameters)",
}  # fmt: skip


def _text_kind(head: bytes) -> str | None:
    """What a text file is (OBJ, OFF, ASCII STL, JSON, plain text), or None for binary data."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The last character of the 4 KiB window may be cut in the middle: retry without it.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if any(line.startswith(("v ", "vn ", "vt ", "f ")) for line in lines):
        return "a Wavefront OBJ mesh"
    if first.startswith(("OFF", "COFF", "NOFF")):
        return "an OFF mesh"
    if first.startswith("solid"):
        return "an ASCII STL mesh"
    if first.startswith(("{", "[")):
        return "a JSON file"
    return "a text file"


def sniff(path: str | os.PathLike[str]) -> str:
    """What ``path`` is, in a few words ("a Wavefront OBJ mesh", "an HDF5 file", ...).

    Reads at most 4 KiB. Zip (``.npz``) and ``.npy`` files are "a zip archive" / "a NumPy
    .npy array"; an unreadable file is described by its extension, or as "an unrecognised file".
    """
    p = Path(path)
    try:
        with open(p, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        head = b""
    if head.startswith(ZIP_MAGIC):
        return "a zip archive"
    if head.startswith(NPY_MAGIC):
        return "a NumPy .npy array"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2..5 opcode
        return "a Python pickle"
    ext = p.suffix.lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    return _text_kind(head) or "an unrecognised binary file"


def is_numpy_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like an ``.npz`` (zip) or ``.npy`` file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    return head.startswith(ZIP_MAGIC) or head.startswith(NPY_MAGIC)
