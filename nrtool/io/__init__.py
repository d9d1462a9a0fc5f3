"""Readers and writers for the files nrtool consumes: shapes (meshes, point clouds, voxels)."""

from nrtool.io.shapes import (
    ARRAY_EXTENSIONS,
    LIST_EXTENSIONS,
    MESH_EXTENSIONS,
    POINT_CLOUD_EXTENSIONS,
    SPLIT_NAMES,
    SUPPORTED_EXTENSIONS,
    VOXEL_EXTENSIONS,
    Shape,
    ShapeSource,
    binvox_voxel_to_world,
    discover_inputs,
    load_binvox,
    load_shape,
    save_binvox,
    save_mesh,
    save_points_ply,
)

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
    "save_points_ply",
]
