"""Geometry: OpenCV cameras, poses, Sim(3)/Umeyama, ICP, pose encodings, normals, voxel grids.

Names are imported lazily from their submodules, so ``import sem3r.geometry`` stays cheap (the
quaternion and pose-encoding code imports torch only when it is used).
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "camera_centers": "camera",
    "invert_pose": "camera",
    "pixel_grid": "camera",
    "project": "camera",
    "scale_intrinsics": "camera",
    "to_homogeneous": "camera",
    "transform_points": "camera",
    "unproject_depth": "camera",
    "ICPResult": "icp",
    "icp": "icp",
    "knn": "knn",
    "estimate_normals": "normals",
    "felzenszwalb_segment": "felzenszwalb",
    "image_grid_edges": "felzenszwalb",
    "extri_intri_to_pose_encoding": "pose_encoding",
    "pose_encoding_to_extri_intri": "pose_encoding",
    "pairwise_relative_poses": "relative",
    "relative_pose": "relative",
    "Sim3": "transforms",
    "compose": "transforms",
    "matrix_from_quat": "transforms",
    "quat_from_matrix": "transforms",
    "random_rotation": "transforms",
    "rotation_angle": "transforms",
    "umeyama": "transforms",
    "VoxelGrid": "voxels",
    "group_majority": "voxels",
    "pack_voxel_keys": "voxels",
    "unpack_voxel_keys": "voxels",
    "voxel_downsample": "voxels",
    "voxel_keys": "voxels",
    "observed_by_views": "visibility",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.geometry", _SUBMODULE)
