import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from sem3r.geometry.camera import camera_centers, project
from sem3r.scene import Scene
from sem3r.viz.colors import instance_colors, semantic_colors
from sem3r.viz.common import frustum_vertices, viewer_frame
from sem3r.viz.glb import export_glb

K = np.array([[20.0, 0.0, 7.5], [0.0, 20.0, 5.5], [0.0, 0.0, 1.0]])
SECOND_CENTER = np.array([0.5, 0.0, 0.0])  # the conftest scene's second camera


def _segments(loaded, i):
    return np.asarray(loaded.geometry[f"frustum_{i:04d}"].vertices).reshape(-1, 2, 3)


def _apex(segments):
    """The end point shared by four segments."""
    ends = np.round(segments.reshape(-1, 3), 5)
    uniq, counts = np.unique(ends, axis=0, return_counts=True)
    assert (counts == 4).sum() == 1
    return uniq[counts == 4][0]


def test_points_and_one_frustum_per_camera(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    path = export_glb(scene, tmp_path / "scene.glb", color_by="instance", frustum_scale=0.5)
    loaded = trimesh.load(path)
    assert sorted(loaded.geometry) == ["frustum_0000", "frustum_0001", "points"]
    points = loaded.geometry["points"]
    assert len(points.vertices) == len(cloud) == 2 * 12 * 16
    np.testing.assert_allclose(points.vertices, cloud.xyz, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(points.colors)[:, :3], instance_colors(cloud.instance_ids))

    first, second = _segments(loaded, 0), _segments(loaded, 1)
    assert first.shape == second.shape == (8, 2, 3)
    np.testing.assert_allclose(_apex(first), [0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(_apex(second), SECOND_CENTER, atol=1e-6)
    # Top-left image corner (-0.5, -0.5) at depth 0.5 with fx = fy = 20, cx = 7.5, cy = 5.5.
    corner = np.array([(-0.5 - 7.5) / 20 * 0.5, (-0.5 - 5.5) / 20 * 0.5, 0.5])
    assert np.isclose(first.reshape(-1, 3), corner, atol=1e-6).all(axis=1).any()
    assert np.isclose(second.reshape(-1, 3), corner + SECOND_CENTER, atol=1e-6).all(axis=1).any()
    assert [p.name for p in tmp_path.iterdir()] == ["scene.glb"]


def test_root_node_flips_opencv_to_gltf(scene, tmp_path):
    aligned = trimesh.load(export_glb(scene, tmp_path / "a.glb"))
    edge = aligned.graph.to_edgelist()
    root = [e for e in edge if e[1] == "sem3r_world"][0]
    np.testing.assert_allclose(np.asarray(root[2]["matrix"]), np.diag([1.0, -1.0, -1.0, 1.0]))
    points_world, _ = aligned.graph["points"]
    np.testing.assert_allclose(points_world, np.diag([1.0, -1.0, -1.0, 1.0]))
    raw = trimesh.load(export_glb(scene, tmp_path / "b.glb", align=False))
    np.testing.assert_allclose(raw.graph["points"][0], np.eye(4))


def test_rotated_cameras_apex_at_centres(tmp_path):
    rot = Rotation.from_euler("xyz", [[10, -30, 5], [80, 20, -45], [0, 0, 170]], degrees=True).as_matrix()
    poses = np.concatenate([rot, np.array([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2], [0.0, 0.0, 0.0]])[..., None]], axis=2)
    scene = Scene(images=np.zeros((3, 12, 16, 3), np.uint8), intrinsics=np.tile(K, (3, 1, 1)), cam_from_world=poses)
    loaded = trimesh.load(export_glb(scene, tmp_path / "cams.glb"))
    assert "points" not in loaded.geometry
    centres = camera_centers(poses)
    for i in range(3):
        np.testing.assert_allclose(_apex(_segments(loaded, i)), centres[i], atol=1e-5)
    frame = viewer_frame(poses)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(frame), 1.0)


def test_explicit_cloud_semantic_colours_and_subsampling(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    loaded = trimesh.load(export_glb(scene, tmp_path / "s.glb", cloud=cloud, color_by="semantic", max_points=50))
    points = loaded.geometry["points"]
    assert len(points.vertices) == 50
    rows = np.flatnonzero(np.isclose(cloud.xyz[:, None], np.asarray(points.vertices)[None], atol=1e-6).all(-1).any(1))
    assert len(rows) == 50
    np.testing.assert_array_equal(np.asarray(points.colors)[:, :3], semantic_colors(cloud.semantic_ids[rows]))


def test_frustum_base_projects_to_image_corners():
    rot = Rotation.from_euler("xyz", [[10, -30, 5], [80, 20, -45]], degrees=True).as_matrix()
    poses = np.concatenate([rot, np.array([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]])[..., None]], axis=2)
    verts = frustum_vertices(np.tile(K, (2, 1, 1)), poses, 12, 16, 0.7)
    assert verts.shape == (2, 5, 3)
    corners = [[-0.5, -0.5], [15.5, -0.5], [15.5, 11.5], [-0.5, 11.5]]
    for i in range(2):
        uv, z = project(verts[i, 1:], K, poses[i])
        np.testing.assert_allclose(uv, corners, atol=1e-9)
        np.testing.assert_allclose(z, 0.7, atol=1e-12)
