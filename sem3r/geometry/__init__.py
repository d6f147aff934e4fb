"""Geometry: OpenCV cameras, poses, Sim(3)/Umeyama, ICP, pose encodings, normals, voxel grids."""

from sem3r.geometry.camera import (
    camera_centers,
    invert_pose,
    pixel_grid,
    project,
    scale_intrinsics,
    to_homogeneous,
    transform_points,
    unproject_depth,
)
from sem3r.geometry.voxels import VoxelGrid, pack_voxel_keys, unpack_voxel_keys, voxel_downsample, voxel_keys

__all__ = [
    "camera_centers",
    "invert_pose",
    "pixel_grid",
    "project",
    "scale_intrinsics",
    "to_homogeneous",
    "transform_points",
    "unproject_depth",
    "VoxelGrid",
    "pack_voxel_keys",
    "unpack_voxel_keys",
    "voxel_downsample",
    "voxel_keys",
]
