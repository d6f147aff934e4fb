import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.scene import Scene
from sem3r.viz import export_scene, read_ply


def small_scene(depth=True):
    rng = np.random.default_rng(0)
    K = np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
    return Scene(
        images=rng.integers(0, 255, (2, 12, 16, 3), dtype=np.uint8),
        intrinsics=np.tile(K, (2, 1, 1)),
        cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)),
        depth=rng.uniform(1, 2, (2, 12, 16)).astype(np.float32) if depth else None,
        instance_masks=np.tile(np.repeat(np.arange(4, dtype=np.int32), 4), (2, 12, 1)),
    )


def test_export_scene_writes_all_formats_from_one_cloud(tmp_path):
    scene = small_scene()
    paths = export_scene(scene, tmp_path, voxel_size=None)
    assert [p.name for p in paths] == ["scene.ply", "scene.glb", "viewer.html"]
    cloud = read_ply(tmp_path / "scene.ply")
    assert len(cloud) == 2 * 12 * 16
    assert np.array_equal(np.sort(cloud.instance_ids), np.sort(scene.instance_masks.reshape(-1)))
    voxelised = read_ply(export_scene(scene, tmp_path / "v", formats=("ply",), voxel_size=0.5)[0])
    assert len(voxelised) == len(scene.fused_point_cloud(voxel_size=0.5)) < len(cloud)


def test_export_scene_errors(tmp_path):
    with pytest.raises(Sem3RError, match="unknown export format"):
        export_scene(small_scene(), tmp_path, formats=("obj",))
    with pytest.raises(Sem3RError, match="no depth"):
        export_scene(small_scene(depth=False), tmp_path)
