import numpy as np
import plyfile
import pytest

from sem3r.errors import Sem3RError
from sem3r.scene import PointCloud
from sem3r.viz.ply import export_ply, read_ply


def _header(path):
    data = path.read_bytes()
    return data[: data.index(b"end_header")].decode("ascii")


def _assert_same(a: PointCloud, b: PointCloud):
    for name in ("xyz", "rgb", "instance_ids", "semantic_ids", "view_ids"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_is_exact(scene, tmp_path, binary):
    cloud = scene.fused_point_cloud()
    cloud.xyz[0] = [1e-7, -123.456789, 3.0e4]
    path = export_ply(cloud, tmp_path / "cloud.ply", binary=binary)
    assert path == tmp_path / "cloud.ply"
    _assert_same(cloud, read_ply(path))
    header = _header(path)
    assert ("binary_little_endian" if binary else "ascii") in header
    for prop in ("float x", "float y", "float z", "uchar red", "uchar green", "uchar blue", "int instance_id", "int semantic_id"):
        assert f"property {prop}" in header
    assert f"element vertex {len(cloud)}" in header
    assert [p.name for p in tmp_path.iterdir()] == ["cloud.ply"]


def test_normals_are_written(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    normals = np.random.default_rng(0).normal(size=(len(cloud), 3)).astype(np.float32)
    path = export_ply(cloud, tmp_path / "n.ply", normals=normals)
    assert "property float nx" in _header(path)
    v = plyfile.PlyData.read(str(path))["vertex"].data
    np.testing.assert_array_equal(np.stack([v["nx"], v["ny"], v["nz"]], -1), normals)
    _assert_same(cloud, read_ply(path))
    with pytest.raises(Sem3RError, match="normals"):
        export_ply(cloud, tmp_path / "bad.ply", normals=normals[:-1])


def test_overwrite_replaces_the_file(scene, tmp_path):
    cloud = scene.fused_point_cloud()
    path = tmp_path / "c.ply"
    export_ply(cloud, path)
    small = PointCloud(*(getattr(cloud, f)[:5] for f in ("xyz", "rgb", "instance_ids", "semantic_ids", "view_ids")))
    export_ply(small, path)
    assert len(read_ply(path)) == 5


def test_foreign_ply_without_colours_or_ids(tmp_path):
    vertex = np.array([(0.0, 1.0, 2.0), (3.0, 4.0, 5.0)], dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    path = tmp_path / "plain.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")]).write(str(path))
    cloud = read_ply(path)
    assert cloud.xyz.dtype == np.float32 and cloud.xyz.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert (cloud.rgb == 128).all() and (cloud.instance_ids == -1).all() and (cloud.view_ids == -1).all()


def test_read_errors_are_sem3r_errors(tmp_path):
    with pytest.raises(Sem3RError, match="does not exist"):
        read_ply(tmp_path / "missing.ply")
    junk = tmp_path / "junk.ply"
    junk.write_bytes(b"not a ply file at all\n")
    with pytest.raises(Sem3RError, match="junk.ply"):
        read_ply(junk)
