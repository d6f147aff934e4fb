"""Synthetic scenes: determinism, content, layout rules, cameras and multi-view ground truth."""

from collections import Counter

import numpy as np
import pytest

from sem3r.data.synthetic import (
    CAMERA_PATHS,
    CATEGORIES,
    CATEGORY_SPLITS,
    CLASS_NAMES,
    NUM_STRUCTURE_CLASSES,
    WALL_FLAT_CATEGORIES,
    SynthConfig,
    generate_scene,
    load_ground_truth,
    save_ground_truth,
)
from sem3r.data.synthetic.categories import SPEC_BY_NAME
from sem3r.data.synthetic.layout import PLACEMENT_ORDER, rects_overlap, sample_layout
from sem3r.data.synthetic.mesh import build_mesh
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import camera_centers, project, unproject_depth
from sem3r.scene import Scene

SMALL = dict(num_views=4, height=72, width=96, num_points=30_000)


@pytest.fixture(scope="module")
def scenes():
    """One small scene per camera path."""
    return {path: generate_scene(SynthConfig(seed=seed, camera_path=path, **SMALL))
            for seed, path in enumerate(CAMERA_PATHS)}


@pytest.fixture(scope="module")
def layouts():
    return [sample_layout(np.random.default_rng([seed, 0])) for seed in range(30)]


def _arrays(syn):
    s = syn.scene
    return [s.images, s.depth, s.instance_masks, s.semantic_masks, s.intrinsics, s.cam_from_world,
            syn.cloud.xyz, syn.cloud.rgb, syn.cloud.instance_ids, syn.normals, syn.mesh.vertices, syn.mesh.faces]


# ------------------------------------------------------------------------------------ basics
def test_same_seed_is_bit_identical_and_other_seeds_differ():
    config = SynthConfig(seed=11, num_views=2, height=32, width=40, num_points=2000)
    a, b = generate_scene(config), generate_scene(SynthConfig(**config.to_dict()))
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert a.scene.metadata == b.scene.metadata
    c = generate_scene(SynthConfig(seed=12, num_views=2, height=32, width=40, num_points=2000))
    assert not np.array_equal(a.scene.images, c.scene.images)
    assert a.scene.metadata["objects"] != c.scene.metadata["objects"]


def test_room_does_not_depend_on_views_or_resolution():
    a = generate_scene(SynthConfig(seed=5, num_views=1, height=16, width=16, num_points=100))
    b = generate_scene(SynthConfig(seed=5, num_views=3, height=40, width=24, num_points=100, camera_path="walk"))
    assert np.array_equal(a.mesh.vertices, b.mesh.vertices)
    assert a.scene.metadata["objects"] == b.scene.metadata["objects"]


@pytest.mark.parametrize("bad", [
    dict(num_views=0), dict(height=4), dict(fov_deg=180.0), dict(camera_path="spiral"),
    dict(min_instances=3, max_instances=2), dict(categories=("unicorn",)), dict(camera_height=(1.0, 2.6)),
    dict(room_size_min=(9.0, 4.0, 2.5)),
])
def test_invalid_config_raises(bad):
    with pytest.raises(Sem3RError):
        generate_scene(SynthConfig(**{**SMALL, **bad}))


def test_class_lists():
    assert len(CATEGORIES) >= 15 and len(set(CATEGORIES)) == len(CATEGORIES)
    assert CLASS_NAMES[:NUM_STRUCTURE_CLASSES] == ("floor", "wall", "ceiling")
    assert CLASS_NAMES[NUM_STRUCTURE_CLASSES:] == CATEGORIES
    assert sorted(sum(CATEGORY_SPLITS.values(), [])) == sorted(CATEGORIES)
    assert sorted(PLACEMENT_ORDER) == sorted(CATEGORIES)
    assert all(len(v) for v in CATEGORY_SPLITS.values())


def test_metadata_and_labels(scenes):
    s = scenes["orbit"].scene
    md = s.metadata
    assert md["source"] == "synthetic" and md["metric"] is True and md["seed"] == 0
    assert md["class_names"] == list(CLASS_NAMES) and md["category_splits"] == CATEGORY_SPLITS
    assert s.depth.dtype == np.float32 and s.instance_masks.dtype == np.int32 and s.semantic_masks.dtype == np.int32
    assert s.images.dtype == np.uint8 and s.intrinsics.shape == (4, 3, 3) and s.cam_from_world.shape == (4, 3, 4)
    # a closed room: every pixel sees a surface
    assert (s.depth > 0).all() and (s.semantic_masks >= 0).all()
    structure = s.semantic_masks < NUM_STRUCTURE_CLASSES
    assert (s.instance_masks[structure] == -1).all() and (s.instance_masks[~structure] >= 0).all()


# ------------------------------------------------------------------------------------ content
def test_many_categories_and_repeated_instances(layouts):
    seen = Counter()
    most_repeated = 0
    for layout in layouts[:4]:
        counts = Counter(o.category for o in layout.objects)
        seen.update(counts.keys())
        most_repeated = max(most_repeated, max(counts.values()))
    assert len(seen) >= 15
    assert most_repeated >= 3
    for layout in layouts:
        assert [o.instance_id for o in layout.objects] == list(range(len(layout.objects)))
    assert set().union(*[{o.category for o in lay.objects} for lay in layouts]) == set(CATEGORIES)


def test_generated_scene_has_several_instances_of_a_category(scenes):
    table = scenes["orbit"].scene.instances
    assert max(Counter(table.labels).values()) >= 3
    visible = np.unique(scenes["orbit"].scene.instance_masks)
    assert len(visible[visible >= 0]) >= 5


def test_frequency_tiers_are_ordered(layouts):
    per_room = {tier: np.mean([sum(o.category in names for o in lay.objects) / len(names) for lay in layouts])
                for tier, names in CATEGORY_SPLITS.items()}
    assert per_room["head"] > per_room["common"] > per_room["tail"] > 0


def test_footprints_disjoint_and_inside_room(layouts):
    for layout in layouts:
        floor = [o for o in layout.objects if o.blocks_floor]
        for k, obj in enumerate(floor):
            corners = obj.footprint.corners()
            assert (corners > 0).all() and (corners < layout.size[:2]).all()
            assert not rects_overlap(obj.footprint, [o.footprint for o in floor[k + 1:]])
        mesh, _ = build_mesh(layout)
        inside = (mesh.vertices > -1e-9) & (mesh.vertices < layout.size + 1e-9)
        assert inside.all()


def test_wall_objects_are_flush_and_flat(layouts):
    checked = 0
    for layout in layouts[:10]:
        mesh, _ = build_mesh(layout)
        lx, ly, _ = layout.size
        for obj in layout.objects:
            if obj.category not in WALL_FLAT_CATEGORIES:
                continue
            v = mesh.vertices[np.unique(mesh.faces[mesh.face_instance_ids == obj.instance_id])]
            dist = np.stack([v[:, 1], lx - v[:, 0], ly - v[:, 1], v[:, 0]], 1)[:, obj.wall]
            assert dist.min() > -1e-9 and dist.max() <= 0.02 + 1e-9
            checked += 1
    assert checked >= 10


def test_small_objects_rest_on_their_support(layouts):
    for layout in layouts[:10]:
        for obj in layout.objects:
            spec = SPEC_BY_NAME[obj.category]
            if spec.placement in ("support", "cushion"):
                parent = layout.objects[obj.parent]
                assert parent.category in spec.supports
                tops = [s.z for s in parent.model.supports]
                assert np.isclose(obj.position[2] - parent.position[2], tops).any()
                rel = parent.rotation.T @ (obj.position - parent.position)
                assert (np.abs(rel[:2]) <= parent.model.half_extent + 1e-9).all()
            elif spec.placement != "wall_mounted":
                assert obj.position[2] == 0.0


# ------------------------------------------------------------------------------------ cameras
@pytest.mark.parametrize("path", CAMERA_PATHS)
def test_cameras_inside_room_and_outside_objects(path):
    for seed in range(3):
        syn = generate_scene(SynthConfig(seed=seed, camera_path=path, num_views=8, height=16, width=16, num_points=10))
        centres = camera_centers(syn.scene.cam_from_world)
        size = syn.layout.size
        assert ((centres[:, 2] >= 1.2) & (centres[:, 2] <= 1.8)).all()
        assert (centres[:, :2] >= 0.3).all() and (centres[:, :2] <= size[:2] - 0.3).all()
        for obj in syn.layout.objects:
            if obj.blocks_floor:
                fp = obj.footprint
                local = np.abs((centres[:, :2] - fp.center) @ fp.axes().T) - fp.half
                assert (np.linalg.norm(np.maximum(local, 0), axis=1) >= 0.3).all()


def test_random_large_has_wide_baselines(scenes):
    centres = camera_centers(scenes["random_large"].scene.cam_from_world)
    walk = camera_centers(scenes["walk"].scene.cam_from_world)
    step_large = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    step_walk = np.linalg.norm(np.diff(walk, axis=0), axis=1)
    assert np.median(step_large) > 1.0 and np.median(step_large) > 2 * np.median(step_walk)


def _depth_at(scene, j, points):
    """Project world ``points (P, 3)`` into view j.

    Returns ``uv (P, 2)``, the points' depth ``z (P,)`` in view j, view j's rendered depth at
    ``uv`` and ``inside`` (in the image). The rendered depth at the sub-pixel position comes
    from bilinear interpolation of *inverse* depth, which is exact on a plane (1/z is affine in
    the image), so comparing it with ``z`` is precise to float32 rounding except across depth
    edges, where it rejects the point.
    """
    h, w = scene.height, scene.width
    uv, z = project(points, scene.intrinsics[j], scene.cam_from_world[j])
    inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    uv = np.where(inside[:, None], uv, 0.0)
    u0 = np.minimum(np.floor(uv[:, 0]).astype(int), w - 2)
    v0 = np.minimum(np.floor(uv[:, 1]).astype(int), h - 2)
    fu, fv = uv[:, 0] - u0, uv[:, 1] - v0
    inv = 1.0 / scene.depth[j].astype(np.float64)
    inv_z = (inv[v0, u0] * (1 - fu) * (1 - fv) + inv[v0, u0 + 1] * fu * (1 - fv)
             + inv[v0 + 1, u0] * (1 - fu) * fv + inv[v0 + 1, u0 + 1] * fu * fv)
    return uv, z, 1.0 / inv_z, inside


def _label_found_nearby(labels, uv, expected, radius=2):
    """Whether ``expected (P,)`` occurs within ``radius`` pixels of the rounded ``uv (P, 2)``."""
    near = np.rint(uv).astype(int)
    padded = np.pad(labels, radius, mode="edge")
    found = np.zeros(len(near), bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            found |= padded[near[:, 1] + radius + dy, near[:, 0] + radius + dx] == expected
    return found


def _covisible(scene, i, j, tol=0.002):
    """View i's points ``X (HW, 3)``, their ``uv`` and rendered depth in view j, ``inside`` and
    ``covisible`` (view j's surface at the same depth within ``tol`` m)."""
    X = unproject_depth(scene.depth[i], scene.intrinsics[i], scene.cam_from_world[i]).reshape(-1, 3).astype(np.float64)
    uv, z, z_j, inside = _depth_at(scene, j, X)
    return X, uv, z_j, inside, inside & (np.abs(z_j - z) < tol)


@pytest.mark.parametrize("path", CAMERA_PATHS)
def test_consecutive_views_overlap(scenes, path):
    scene = scenes[path].scene
    for i in range(scene.num_views - 1):
        covisible = _covisible(scene, i, i + 1, tol=0.01)[4]
        assert covisible.mean() > 0.1


@pytest.mark.parametrize("path", CAMERA_PATHS)
def test_multiview_consistency(scenes, path):
    """Unproject view i with its own camera, project into view j: where j sees the same surface,
    the 3D points coincide and the instance ids agree.

    Geometry: where all four pixels around the projection in view j show the same mesh face as
    the source pixel (``face_ids``), view j's depth, interpolated as inverse depth (exact on a
    plane), unprojects to the same 3D point to within 0.1 mm (float32 depth rounding).
    Labels: for pixels co-visible in both views (depth agreement within 2 mm), the nearest pixel of
    view j carries the same instance and semantic ids for at least 99% of them; the rest sit at
    silhouettes and contact lines, so the id they should carry is found within 2 pixels.
    """
    syn = scenes[path]
    scene, faces = syn.scene, syn.face_ids
    labels = scene.instance_masks.astype(np.int64) * 1000 + scene.semantic_masks
    h, w = scene.height, scene.width
    for i in range(scene.num_views):
        for j in range(scene.num_views):
            if i == j:
                continue
            X, uv, z_j, inside, covisible = _covisible(scene, i, j)
            u0 = np.minimum(np.floor(uv[:, 0]).astype(int), w - 2)
            v0 = np.minimum(np.floor(uv[:, 1]).astype(int), h - 2)
            f_i = faces[i].reshape(-1)
            same_face = inside.copy()
            for dv in (0, 1):
                for du in (0, 1):
                    same_face &= faces[j][v0 + dv, u0 + du] == f_i
            K, pose = scene.intrinsics[j], scene.cam_from_world[j]
            cam = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * z_j, (uv[:, 1] - K[1, 2]) / K[1, 1] * z_j, z_j], 1)
            X_j = (cam - pose[:, 3]) @ pose[:, :3]
            err = np.linalg.norm(X_j - X, axis=1)[same_face]
            assert same_face.sum() > 0.05 * h * w
            assert err.max() < 1e-4

            near = np.rint(uv[covisible]).astype(int)
            l_i = labels[i].reshape(-1)[covisible]
            assert (labels[j][near[:, 1], near[:, 0]] == l_i).mean() >= 0.99
            assert _label_found_nearby(labels[j], uv[covisible], l_i).all()


# ------------------------------------------------------------------------------------ ground truth
def test_depth_lies_on_structure_planes(scenes):
    for syn in scenes.values():
        s = syn.scene
        lx, ly, lz = syn.layout.size
        pts = unproject_depth(s.depth, s.intrinsics, s.cam_from_world)
        floor, ceiling = pts[s.semantic_masks == 0], pts[s.semantic_masks == 2]
        assert len(floor) > 100
        np.testing.assert_allclose(floor[:, 2], 0.0, atol=1e-3)
        np.testing.assert_allclose(ceiling[:, 2], lz, atol=1e-3)
        walls = pts[s.semantic_masks == 1]
        to_wall = np.min(np.abs(np.stack([walls[:, 0], walls[:, 0] - lx, walls[:, 1], walls[:, 1] - ly], 1)), axis=1)
        assert len(walls) > 100 and to_wall.max() < 1e-3


def test_ground_truth_cloud_matches_rendered_masks(scenes):
    for syn in scenes.values():
        s, cloud = syn.scene, syn.cloud
        assert cloud.xyz.dtype == np.float32 and cloud.rgb.dtype == np.uint8 and (cloud.view_ids == -1).all()
        np.testing.assert_allclose(np.linalg.norm(syn.normals, axis=1), 1.0, atol=1e-5)
        labels = s.instance_masks.astype(np.int64) * 1000 + s.semantic_masks
        expected = cloud.instance_ids.astype(np.int64) * 1000 + cloud.semantic_ids
        checked = 0
        for v in range(s.num_views):
            uv, z, z_v, inside = _depth_at(s, v, cloud.xyz.astype(np.float64))
            visible = inside & (np.abs(z_v - z) < 0.001)
            near = np.rint(uv[visible]).astype(int)
            assert (labels[v][near[:, 1], near[:, 0]] == expected[visible]).mean() > 0.98
            assert _label_found_nearby(labels[v], uv[visible], expected[visible]).all()
            checked += visible.sum()
        assert checked > 1000


def _containing_face(mesh, points):
    """Index of a mesh face containing each point (brute force; -1 if none)."""
    tri = mesh.triangles
    n = mesh.face_normals()
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    gram = np.stack([np.einsum("ij,ij->i", e1, e1), np.einsum("ij,ij->i", e1, e2), np.einsum("ij,ij->i", e2, e2)], 1)
    det = gram[:, 0] * gram[:, 2] - gram[:, 1] ** 2
    out = np.full(len(points), -1)
    for k, p in enumerate(points):
        d = p - tri[:, 0]
        off_plane = np.abs(np.einsum("ij,ij->i", d, n))
        b1, b2 = np.einsum("ij,ij->i", d, e1), np.einsum("ij,ij->i", d, e2)
        u = (gram[:, 2] * b1 - gram[:, 1] * b2) / det
        v = (gram[:, 0] * b2 - gram[:, 1] * b1) / det
        hit = np.flatnonzero((off_plane < 1e-5) & (u >= -1e-6) & (v >= -1e-6) & (u + v <= 1 + 1e-6))
        out[k] = hit[0] if len(hit) else -1
    return out


def test_colours_come_from_the_surface_texture(scenes):
    """Re-shading the unprojected pixels and the cloud points reproduces images and cloud rgb:
    a surface point has one colour, whichever view (or the cloud) shows it."""
    syn = scenes["walk"]
    s = syn.scene
    _, paint = build_mesh(syn.layout)
    pts = unproject_depth(s.depth, s.intrinsics, s.cam_from_world).reshape(-1, 3).astype(np.float64)
    rgb = paint.shade(pts, syn.face_ids.reshape(-1))
    assert (rgb == s.images.reshape(-1, 3)).all(axis=1).mean() > 0.97
    assert np.abs(rgb.astype(int) - s.images.reshape(-1, 3)).mean() < 1.0
    pick = np.random.default_rng(0).choice(len(syn.cloud), 300, replace=False)
    xyz = syn.cloud.xyz[pick].astype(np.float64)
    faces = _containing_face(syn.mesh, xyz)
    assert (faces >= 0).all()
    assert np.array_equal(syn.mesh.face_instance_ids[faces], syn.cloud.instance_ids[pick])
    assert (paint.shade(xyz, faces) == syn.cloud.rgb[pick]).all(axis=1).mean() > 0.95


def test_structure_is_textured_for_feature_matching(scenes):
    """Every 8x8 block of floor, wall or ceiling pixels has visible contrast (SIFT needs it)."""
    for syn in scenes.values():
        s = syn.scene
        grey = s.images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        n, h, w = grey.shape
        blocks = grey[:, : h // 8 * 8, : w // 8 * 8].reshape(n, h // 8, 8, w // 8, 8)
        sem = s.semantic_masks[:, : h // 8 * 8, : w // 8 * 8].reshape(n, h // 8, 8, w // 8, 8)
        structural = (sem < NUM_STRUCTURE_CLASSES).all(axis=(2, 4)) & (sem == sem[:, :, :1, :, :1]).all(axis=(2, 4))
        assert structural.sum() > 10
        assert (blocks.std(axis=(2, 4))[structural] >= 4.0).mean() >= 0.98


def test_instance_table_from_mesh(scenes):
    syn = scenes["orbit"]
    table, cloud = syn.scene.instances, syn.cloud
    objects = syn.scene.metadata["objects"]
    k = len(objects)
    assert np.array_equal(table.ids, np.arange(k)) and table.labels == [o["category"] for o in objects]
    assert np.array_equal(table.semantic_ids, [CLASS_NAMES.index(o["category"]) for o in objects])
    assert (table.scores == 1).all()
    assert np.array_equal(table.point_counts, np.bincount(cloud.instance_ids[cloud.instance_ids >= 0], minlength=k))
    for row in range(k):
        pts = cloud.xyz[cloud.instance_ids == row]
        assert (pts >= table.box_min[row] - 1e-5).all() and (pts <= table.box_max[row] + 1e-5).all()
        c = table.centroids[row]
        assert (c >= table.box_min[row] - 1e-5).all() and (c <= table.box_max[row] + 1e-5).all()


def test_scene_and_ground_truth_round_trip(scenes, tmp_path):
    syn = scenes["random_large"]
    syn.scene.save(tmp_path / "scene")
    save_ground_truth(syn, tmp_path / "scene")
    back = Scene.load(tmp_path / "scene")
    for name in ("images", "depth", "instance_masks", "semantic_masks", "intrinsics", "cam_from_world"):
        assert np.array_equal(getattr(back, name), getattr(syn.scene, name))
    assert back.metadata == syn.scene.metadata and back.instances.labels == syn.scene.instances.labels
    assert np.array_equal(back.instances.box_min, syn.scene.instances.box_min)
    gt = load_ground_truth(tmp_path / "scene")
    for a, b in ((gt.cloud.xyz, syn.cloud.xyz), (gt.cloud.rgb, syn.cloud.rgb), (gt.normals, syn.normals),
                 (gt.cloud.instance_ids, syn.cloud.instance_ids), (gt.cloud.semantic_ids, syn.cloud.semantic_ids),
                 (gt.mesh.vertices, syn.mesh.vertices), (gt.mesh.faces, syn.mesh.faces),
                 (gt.mesh.face_instance_ids, syn.mesh.face_instance_ids),
                 (gt.mesh.face_semantic_ids, syn.mesh.face_semantic_ids)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with pytest.raises(Sem3RError):
        load_ground_truth(tmp_path)
