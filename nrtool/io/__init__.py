"""Readers and writers for the files nrtool consumes, and how inputs are found and named.

:mod:`~nrtool.io.shapes` reads meshes, point clouds and voxel arrays; :mod:`~nrtool.io.binvox`
reads and writes ``.binvox``; :mod:`~nrtool.io.writers` writes meshes and clouds;
:mod:`~nrtool.io.discovery` turns files, folders and lists into named sources;
:mod:`~nrtool.io.naming` holds item naming and split rules; :mod:`~nrtool.io.images` writes
images. Import from this package: the module layout may change.
"""

from nrtool.io.binvox import binvox_voxel_to_world, load_binvox, save_binvox
from nrtool.io.discovery import ShapeSource, discover_inputs
from nrtool.io.shapes import (
    ARRAY_EXTENSIONS,
    LIST_EXTENSIONS,
    MESH_EXTENSIONS,
    POINT_CLOUD_EXTENSIONS,
    SPLIT_NAMES,
    SUPPORTED_EXTENSIONS,
    VOXEL_EXTENSIONS,
    Shape,
    load_shape,
)
from nrtool.io.writers import save_mesh, save_obj_parts, save_points_ply

__all__ = [
    "ARRAY_EXTENSIONS",
    "LIST_EXTENSIONS",
    "MESH_EXTENSIONS",
    "POINT_CLOUD_EXTENSIONS",
    "SPLIT_NAMES",
    "SUPPORTED_EXTENSIONS",
    "VOXEL_EXTENSIONS",
    "Shape",
    "ShapeSource",
    "binvox_voxel_to_world",
    "discover_inputs",
    "load_binvox",
    "load_shape",
    "save_binvox",
    "save_mesh",
    "save_obj_parts",
    "save_points_ply",
]
