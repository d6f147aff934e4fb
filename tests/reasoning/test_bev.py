import dataclasses

import numpy as np
import pytest
from PIL import Image

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reasoning import BEVConfig, render_bev, resolve_up, save_bev
from sem3r.scene import InstanceTable, PointCloud
from sem3r.viz.colors import instance_colors

Z = np.array([0.0, 0.0, 1.0])
Y = np.array([0.0, 1.0, 0.0])


def _cloud(xyz, rgb, ids) -> PointCloud:
    ids = np.asarray(ids, np.int32)
    return PointCloud(np.asarray(xyz, np.float32), np.asarray(rgb, np.uint8), ids, ids, np.zeros(len(ids), np.int32))


@pytest.fixture(scope="module")
def syn():
    return generate_scene(SynthConfig(seed=0, num_views=4, height=64, width=80, num_points=0))


def test_highest_point_wins_and_empty_pixels_are_black():
    xyz = [[0, 0, 0], [0, 0, 1], [1, 1, 0.5], [-1, -1, 0]]
    rgb = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]]
    cloud = _cloud(xyz, rgb, [1, 2, 3, -1])
    bev = render_bev(cloud, BEVConfig(resolution=8, margin=0.0, ceiling_clip=None), up=Z, forward=Y)
    # Extent [-1, 1]^2 over 8 pixels: 0.25 m pixels, pixel (0, 0) centred at (-0.875, 0.875) on the floor z=0.
    np.testing.assert_allclose(bev.world_from_pixel, [[0.25, 0, -0.875], [0, -0.25, 0.875], [0, 0, 0]], atol=1e-12)
    assert bev.pixel_size == pytest.approx(0.25) and bev.floor == pytest.approx(0.0)
    np.testing.assert_allclose(bev.pixel_of(np.array([[0.125, 0.125, 7.0]])), [[4.0, 3.0]])
    assert bev.valid.sum() == 3
    u, v = np.rint(bev.pixel_of(np.array(xyz[:1]))[0]).astype(int)
    assert bev.image[v, u].tolist() == [0, 255, 0]
    assert bev.instance_ids[v, u] == 2 and bev.height[v, u] == pytest.approx(1.0)
    # (1, -1) is the bottom-right corner: no point there.
    assert not bev.valid[7, 7] and bev.image[7, 7].tolist() == [0, 0, 0]
    assert bev.height[7, 7] == 0 and bev.instance_ids[7, 7] == -1
    assert bev.image[~bev.valid].max() == 0


def test_zbuffer_matches_per_pixel_maximum():
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-2, 2, (3000, 3))
    cloud = _cloud(xyz, rng.integers(0, 256, (3000, 3)), rng.integers(-1, 50, 3000))
    bev = render_bev(cloud, BEVConfig(resolution=16, ceiling_clip=None), up=Z, forward=Y)
    uv = np.rint(bev.pixel_of(xyz)).astype(int)
    flat = uv[:, 1] * 16 + uv[:, 0]
    best = np.full(256, -np.inf)
    np.maximum.at(best, flat, xyz[:, 2])
    np.testing.assert_allclose(bev.height.ravel(), best - bev.floor, atol=1e-5)
    top = np.flatnonzero(xyz[:, 2] == best[flat])
    np.testing.assert_array_equal(bev.image.reshape(-1, 3)[flat[top]], cloud.rgb[top])
    np.testing.assert_array_equal(bev.instance_ids.ravel()[flat[top]], cloud.instance_ids[top])


def test_ceiling_is_detected_and_clipped():
    rng = np.random.default_rng(1)
    floor = np.c_[rng.uniform(0, 4, (2000, 2)), np.zeros(2000)]
    ceiling = np.c_[rng.uniform(0, 4, (2000, 2)), np.full(2000, 2.5)]
    table = np.c_[rng.uniform(1, 2, (300, 2)), np.full(300, 0.8)]
    ids = np.r_[np.full(4000, -1), np.full(300, 7)]
    cloud = _cloud(np.r_[floor, ceiling, table], np.full((4300, 3), 200), ids)
    auto = render_bev(cloud, BEVConfig(resolution=16), up=Z, forward=Y)
    assert auto.height.max() == pytest.approx(0.8, abs=1e-5)
    assert (auto.instance_ids == 7).sum() >= 9
    kept = render_bev(cloud, BEVConfig(resolution=16, ceiling_clip=None), up=Z, forward=Y)
    np.testing.assert_allclose(kept.height[kept.valid], 2.5, atol=1e-5)
    clipped = render_bev(cloud, BEVConfig(resolution=16, ceiling_clip=0.5), up=Z, forward=Y)
    assert clipped.height.max() == 0.0
    # Without a ceiling the auto rule keeps the top of the table.
    no_ceiling = _cloud(np.r_[floor, table], np.full((2300, 3), 200), ids[2000:])
    assert render_bev(no_ceiling, BEVConfig(resolution=16), up=Z, forward=Y).height.max() == pytest.approx(0.8)


def test_synthetic_scene_ids_and_footprint(syn):
    scene, res = syn.scene, 48
    bev = render_bev(scene, BEVConfig(resolution=res, up="z"))
    lx, ly = scene.metadata["room_size"][:2]
    gx, gy = np.meshgrid(np.linspace(0.05, lx - 0.05, 100), np.linspace(0.05, ly - 0.05, 100))
    floor_uv = np.rint(bev.pixel_of(np.c_[gx.ravel(), gy.ravel(), np.zeros(gx.size)])).astype(int)
    assert ((floor_uv >= 0) & (floor_uv < res)).all()
    footprint = np.zeros((res, res), bool)
    footprint[floor_uv[:, 1], floor_uv[:, 0]] = True
    assert bev.valid[footprint].mean() > 0.7
    assert (bev.valid & ~footprint).sum() < 0.05 * bev.valid.sum()  # only the walls' outer edge
    assert bev.image[~bev.valid].max() == 0 and (bev.instance_ids[~bev.valid] == -1).all()
    table = scene.instances
    centre_uv = np.rint(bev.pixel_of(table.centroids)).astype(int)
    ids, counts = np.unique(bev.instance_ids[bev.instance_ids >= 0], return_counts=True)
    visible = ids[counts >= 3]
    assert len(visible) >= 10
    for instance_id in visible:
        u, v = centre_uv[table.row(instance_id)]
        window = bev.instance_ids[max(v - 2, 0): v + 3, max(u - 2, 0): u + 3]
        assert (window == instance_id).any(), f"instance {instance_id} not near its centroid pixel"


def test_auto_up_rules(syn):
    scene = syn.scene
    np.testing.assert_allclose(resolve_up(scene), Z)
    bare = dataclasses.replace(scene, metadata={})
    assert np.degrees(np.arccos(resolve_up(bare) @ Z)) < 20.0
    np.testing.assert_allclose(resolve_up(dataclasses.replace(scene, metadata={"up": "-y"})), [0, -1, 0])
    np.testing.assert_allclose(resolve_up(None, [0, 0, 3]), Z)


def test_rigid_motion_covariance(syn):
    scene = syn.scene
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    tilt = np.array([[1, 0, 0], [0, np.cos(0.4), -np.sin(0.4)], [0, np.sin(0.4), np.cos(0.4)]])
    rot = tilt @ rot
    shift = np.array([3.0, -1.5, 0.7])
    cam_r, cam_t = scene.cam_from_world[:, :, :3], scene.cam_from_world[:, :, 3]
    new_r = cam_r @ rot.T
    new_t = cam_t - np.einsum("nij,j->ni", new_r, shift)
    table = dataclasses.replace(scene.instances, centroids=scene.instances.centroids @ rot.T + shift)
    moved = dataclasses.replace(scene, cam_from_world=np.concatenate([new_r, new_t[..., None]], axis=2),
                                instances=table, metadata={})
    config = BEVConfig(resolution=64, markers=True, marker_radius=2)
    a = render_bev(scene, config, up=Z)
    b = render_bev(moved, config, up=rot @ Z)
    assert (a.valid != b.valid).mean() < 0.005
    assert (a.image != b.image).any(axis=-1).mean() < 0.005
    assert (a.instance_ids != b.instance_ids).mean() < 0.005
    both = a.valid & b.valid
    assert np.median(np.abs(a.height[both] - b.height[both])) < 1e-4
    assert a.markers == b.markers and len(a.markers) == len(scene.instances)


def test_markers_have_instance_colours_at_centroids(syn):
    scene, res = syn.scene, 128
    plain = render_bev(scene, BEVConfig(resolution=res, up="z"))
    # Keep instances whose markers (disc + label to the right) cannot overlap.
    uv = plain.pixel_of(scene.instances.centroids)
    chosen: list[int] = []
    for row in np.argsort(scene.instances.ids):
        if all(np.abs(uv[row] - uv[other]).max() > 30 for other in chosen) and ((uv[row] > 3) & (uv[row] < res - 20)).all():
            chosen.append(int(row))
    assert len(chosen) >= 3
    t = scene.instances
    subset = InstanceTable(t.ids[chosen], [t.labels[i] for i in chosen], t.semantic_ids[chosen], t.scores[chosen],
                           t.box_min[chosen], t.box_max[chosen], t.centroids[chosen], t.point_counts[chosen])
    marked = render_bev(dataclasses.replace(scene, instances=subset), BEVConfig(resolution=res, up="z", markers=True, marker_radius=3))
    assert [m[0] for m in marked.markers] == subset.ids.tolist()
    for instance_id, u, v in marked.markers:
        colour = instance_colors(np.array([instance_id]))[0].tolist()
        assert marked.image[v, u].tolist() == colour
        assert marked.image[v + 2, u].tolist() == colour and marked.image[v, u - 2].tolist() == colour
        label = marked.image[v - 5: v + 6, u + 5: u + 20]
        assert (label == 255).all(axis=-1).any(), "id label missing"
    np.testing.assert_array_equal(marked.valid, plain.valid)
    np.testing.assert_array_equal(marked.instance_ids, plain.instance_ids)


def test_save_bev_writes_image_and_mask(tmp_path):
    cloud = _cloud([[0, 0, 0], [1, 1, 1]], [[10, 20, 30], [40, 50, 60]], [0, 1])
    bev = render_bev(cloud, BEVConfig(resolution=8), up="z")
    image_path, mask_path = save_bev(bev, tmp_path / "out" / "bev.png")
    assert mask_path.name == "bev_mask.png"
    np.testing.assert_array_equal(np.asarray(Image.open(image_path)), bev.image)
    np.testing.assert_array_equal(np.asarray(Image.open(mask_path)), bev.valid.astype(np.uint8) * 255)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bev.png", "bev_mask.png"]


def test_bad_input(syn):
    cloud = _cloud([[0, 0, 0]], [[1, 2, 3]], [0])
    no_geometry = dataclasses.replace(syn.scene, depth=None, world_points=None)
    with pytest.raises(Sem3RError, match="no geometry"):
        render_bev(no_geometry)
    with pytest.raises(Sem3RError, match="empty"):
        render_bev(_cloud(np.zeros((0, 3)), np.zeros((0, 3)), []), up="z")
    with pytest.raises(Sem3RError, match="resolution"):
        render_bev(cloud, BEVConfig(resolution=4), up="z")
    with pytest.raises(Sem3RError, match="NaN"):
        render_bev(_cloud([[0, np.nan, 0]], [[1, 2, 3]], [0]), up="z")
    with pytest.raises(Sem3RError, match="needs a Scene"):
        render_bev(cloud)
    with pytest.raises(Sem3RError, match="unknown up axis"):
        render_bev(cloud, up="w")
    with pytest.raises(Sem3RError, match="non-zero"):
        render_bev(cloud, up=np.zeros(3))
    with pytest.raises(Sem3RError, match="parallel"):
        render_bev(cloud, up="z", forward=Z)
    with pytest.raises(Sem3RError, match="ceiling_clip"):
        render_bev(cloud, BEVConfig(ceiling_clip=-1.0), up="z")
    with pytest.raises(Sem3RError, match="Scene or a PointCloud"):
        render_bev(np.zeros((3, 3)))
