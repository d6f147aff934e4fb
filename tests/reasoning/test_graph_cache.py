"""The scene-graph cache in the Scene folder: hits, invalidation, corrupt files."""

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.reasoning import graph_cache
from sem3r.reasoning.graph_cache import (
    CACHE_FILE,
    load_or_build_scene_graph,
    scene_fingerprint,
)
from sem3r.reasoning.scene_graph import SceneGraphConfig, build_scene_graph
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def synth_scene():
    return generate_scene(SynthConfig(seed=0, num_views=3, height=60, width=80, num_points=0)).scene


@pytest.fixture
def folder(tmp_path, synth_scene):
    return synth_scene.save(tmp_path / "scene")


@pytest.fixture
def builds(monkeypatch):
    """Count the graph builds of :mod:`graph_cache`."""
    calls = []

    def counting(scene, config=None):
        calls.append(config)
        return build_scene_graph(scene, config)

    monkeypatch.setattr(graph_cache, "build_scene_graph", counting)
    return calls


def same_graph(a, b):
    assert [(o.id, o.label, o.first_view) for o in a.objects] == [(o.id, o.label, o.first_view) for o in b.objects]
    for x, y in zip(a.objects, b.objects):
        np.testing.assert_array_equal(x.points, y.points)
        np.testing.assert_array_equal(x.box_size, y.box_size)
        np.testing.assert_array_equal(x.box_rotation, y.box_rotation)
        np.testing.assert_array_equal(x.visible_pixels, y.visible_pixels)
        assert x.score == y.score
    np.testing.assert_array_equal(a.up, b.up)
    np.testing.assert_array_equal(a.cam_from_world, b.cam_from_world)
    assert (a.floor_area, a.floor_height) == (b.floor_area, b.floor_height)


def test_second_call_reads_the_cache(folder, builds):
    first = load_or_build_scene_graph(folder)
    assert len(builds) == 1 and (folder / CACHE_FILE).is_file()
    second = load_or_build_scene_graph(folder)
    assert len(builds) == 1
    same_graph(first, second)
    same_graph(first, build_scene_graph(Scene.load(folder)))


def test_saving_the_same_scene_again_keeps_the_cache(folder, builds):
    load_or_build_scene_graph(folder)
    Scene.load(folder).save(folder)  # new array file names, same content
    load_or_build_scene_graph(folder)
    load_or_build_scene_graph(folder)
    assert len(builds) == 1


def test_changed_masks_invalidate_the_cache(folder, builds):
    before = load_or_build_scene_graph(folder)
    scene = Scene.load(folder)
    gone = before.objects[0].id
    scene.instance_masks[scene.instance_masks == gone] = -1  # e.g. `sem3r segment` rewrote the masks
    scene.save(folder)
    after = load_or_build_scene_graph(folder)
    assert len(builds) == 2
    assert gone not in [o.id for o in after.objects]
    load_or_build_scene_graph(folder)
    assert len(builds) == 2


def test_changed_labels_and_config_invalidate_the_cache(folder, builds):
    load_or_build_scene_graph(folder)
    scene = Scene.load(folder)
    scene.instances.labels[0] = "sofa"
    scene.save(folder)
    assert load_or_build_scene_graph(folder).objects[0].label == "sofa"
    assert len(builds) == 2
    graph = load_or_build_scene_graph(folder, config=SceneGraphConfig(up="+x"))
    assert len(builds) == 3
    np.testing.assert_array_equal(graph.up, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("damage", [b"", b"not an npz file", b"PK\x03\x04 truncated zip"])
def test_corrupt_cache_is_rebuilt_silently(folder, builds, damage):
    good = load_or_build_scene_graph(folder)
    (folder / CACHE_FILE).write_bytes(damage)
    same_graph(good, load_or_build_scene_graph(folder))
    assert len(builds) == 2
    load_or_build_scene_graph(folder)  # rewritten, valid again
    assert len(builds) == 2


def test_cache_of_another_version_is_rebuilt(folder, builds):
    load_or_build_scene_graph(folder)
    with np.load(folder / CACHE_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["cache_version"] = np.array(99)
    np.savez(folder / CACHE_FILE, **arrays)
    load_or_build_scene_graph(folder)
    assert len(builds) == 2


def test_scene_in_memory_is_keyed_by_content(folder, builds, synth_scene):
    load_or_build_scene_graph(folder)
    load_or_build_scene_graph(folder, scene=synth_scene)  # same content as the folder: a hit
    assert len(builds) == 1
    edited = Scene.load(folder)
    edited.instance_masks[:] = -1
    edited.instance_masks[:, :10, :10] = 42
    graph = load_or_build_scene_graph(folder, scene=edited)
    assert len(builds) == 2 and [o.id for o in graph.objects] in ([], [42])


def test_fingerprint_follows_the_graph_inputs(synth_scene):
    base = scene_fingerprint(synth_scene)
    assert base == scene_fingerprint(synth_scene, SceneGraphConfig())
    assert base != scene_fingerprint(synth_scene, SceneGraphConfig(voxel_size=0.05))
    moved = Scene(**{f: getattr(synth_scene, f) for f in ("images", "intrinsics", "depth", "instance_masks",
                                                         "instances", "metadata")},
                  cam_from_world=synth_scene.cam_from_world + 0.01)
    assert scene_fingerprint(moved) != base
    recoloured = Scene(**{f: getattr(synth_scene, f) for f in ("intrinsics", "cam_from_world", "depth",
                                                              "instance_masks", "instances", "metadata")},
                       images=255 - synth_scene.images, semantic_masks=synth_scene.semantic_masks,
                       world_points=synth_scene.world_points, depth_conf=synth_scene.depth_conf,
                       point_conf=synth_scene.point_conf)
    assert scene_fingerprint(recoloured) == base  # the images are not a graph input
