"""Small hand-built scenes for the viz tests: two cameras, a few hundred labelled points."""

import numpy as np
import pytest

from sem3r.scene import Scene

H, W = 12, 16
K = np.array([[20.0, 0.0, 7.5], [0.0, 20.0, 5.5], [0.0, 0.0, 1.0]])
SECOND_CENTER = np.array([0.5, 0.0, 0.0])


def make_scene() -> Scene:
    """View 0: identity camera; view 1: same orientation, centre at ``SECOND_CENTER``."""
    rng = np.random.default_rng(3)
    poses = np.tile(np.eye(3, 4), (2, 1, 1))
    poses[1, :, 3] = -SECOND_CENTER
    depth = (2.0 + 0.3 * rng.random((2, H, W))).astype(np.float32)
    inst = np.full((2, H, W), -1, np.int32)
    inst[:, :6, :8] = 4
    inst[:, 6:, 8:] = 11
    inst[:, :6, 8:] = 7
    sem = np.full((2, H, W), -1, np.int32)
    sem[inst == 4] = 0
    sem[inst == 11] = 2
    sem[inst == 7] = 2
    scene = Scene(
        images=rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8),
        intrinsics=np.tile(K, (2, 1, 1)),
        cam_from_world=poses,
        depth=depth,
        instance_masks=inst,
        semantic_masks=sem,
        metadata={"class_names": ["chair", "table", "lamp"], "name": "test room"},
    )
    scene.update_instances(voxel_size=None)
    scene.instances.labels = ["chair", "</script><b>lamp", "lamp"]
    return scene


@pytest.fixture
def scene() -> Scene:
    return make_scene()
