import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reasoning.qa import FAMILIES, QAConfig, QAEngine, Query, ask
from sem3r.reasoning.scene_graph import SceneGraph, SceneObject, ground_basis


def make_obj(oid, label, points, visible=(10, 0), box_size=None):
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    vis = np.asarray(visible, np.int64)
    size = np.ptp(pts, axis=0) if box_size is None else np.asarray(box_size, np.float64)
    return SceneObject(id=oid, label=label, score=1.0, points=pts.astype(np.float32), centroid=pts.mean(axis=0),
                       box_center=pts.mean(axis=0), box_size=size, box_rotation=np.eye(3), visible_pixels=vis,
                       first_view=int(np.argmax(vis > 0)) if vis.any() else -1)


def segment(a, b, n=11):
    """``n`` points from ``a`` to ``b`` ``(n, 3)``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) * np.asarray(a, float) + t * np.asarray(b, float)


def make_graph(objects, up=(0.0, 0.0, 1.0), cams=None, floor=12.5):
    up = np.asarray(up, np.float64)
    cams = np.eye(3, 4)[None] if cams is None else np.asarray(cams, np.float64)
    return SceneGraph(objects, up, ground_basis(up), 0.0, floor, cams, np.repeat(np.eye(3)[None], len(cams), 0))


R1 = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # camera 1 looks along world -x
C1 = np.array([4.0, 0.0, 3.0])
CAMS = np.stack([np.eye(3, 4), np.concatenate([R1, (-R1 @ C1)[:, None]], axis=1)])


@pytest.fixture
def room():
    objects = [
        make_obj(0, "tv", segment([0, 0, 0], [0, 0, 1]), visible=(0, 50)),
        make_obj(1, "chair", segment([3, 0, 0], [3, 1, 0]), visible=(5, 5)),
        make_obj(2, "chair", segment([1, 2, 0], [2, 2, 0]), visible=(40, 0)),
        make_obj(5, "chair", segment([-2, 0, 0], [-2, 0, 1]), visible=(100, 10)),
        make_obj(3, "lamp", segment([0, 1.2, 0], [0, 1.2, 2]), visible=(0, 3), box_size=(0.3, 0.2, 2.0)),
        make_obj(4, "table", segment([0, 0, 2.5], [0, 0, 3.5]), visible=(1, 1), box_size=(1.2, 0.5, 0.8)),
        make_obj(6, "trash_bin", segment([5, 5, 0], [5, 5, 0.5]), visible=(0, 7)),
        make_obj(7, "box", segment([6, 6, 0], [6, 6, 0.3]), visible=(2, 0)),
    ]
    return make_graph(objects, cams=CAMS)


def test_count_and_plural_matching(room):
    engine = QAEngine(room)
    for ref in ("chair", "Chairs", " CHAIR "):
        ans = engine.answer(Query("count", (ref,)))
        assert (ans.kind, ans.value, ans.unit) == ("number", 3.0, "count")
        assert sorted(ans.objects) == [1, 2, 5]
    assert engine.answer(Query("count", ("trash bins",))).value == 1.0
    assert engine.answer(Query("count", ("Trash-Bin",))).value == 1.0
    assert engine.answer(Query("count", ("boxes",))).value == 1.0
    assert engine.answer(Query("count", ("chair#2",))).value == 1.0


def test_abs_distance_exact_and_min_over_pairs(room):
    engine = QAEngine(room)
    ans = engine.answer(Query("abs_distance", ("tv", "table")))
    assert ans.kind == "number" and ans.unit == "m"
    assert ans.value == pytest.approx(1.5)  # tv top (0,0,1) to table bottom (0,0,2.5)
    assert set(ans.objects) == {0, 4}
    # tv to chairs: chair#1 at 3.0, chair#2 at sqrt(1 + 4), chair#5 at 2.0 -> minimum 2.0 with chair#5
    ans = engine.answer(Query("abs_distance", ("chair", "tv")))
    assert ans.value == pytest.approx(2.0) and ans.objects == (5, 0)
    assert "minimum over 3 instance pairs" in ans.explanation
    # chairs among themselves: chair#1 (3,0..1,0) and chair#2 (1..2,2,0): sqrt(1 + 1)
    assert engine.answer(Query("abs_distance", ("chair", "chair"))).value == pytest.approx(np.sqrt(2.0))
    assert engine.answer(Query("abs_distance", ("chair#2", "tv"))).value == pytest.approx(np.sqrt(5.0))
    assert engine.answer(Query("abs_distance", ("tv", "tv"))).kind == "error"


def test_min_distance_pruning_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c"]
    objects = [make_obj(i, labels[i % 3], rng.normal(rng.uniform(-5, 5, 3), 0.3, (40, 3))) for i in range(15)]
    graph = make_graph(objects)
    engine = QAEngine(graph)
    for first, second in (("a", "b"), ("b", "c"), ("a", "a")):
        expect = min(graph.distance(x, y) for x in graph.by_label(first) for y in graph.by_label(second) if x.id != y.id)
        assert engine.answer(Query("abs_distance", (first, second))).value == pytest.approx(expect, abs=1e-6)


def test_subsampled_distance_is_close_upper_bound():
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 40), np.linspace(0, 1, 40), [0.0]), -1).reshape(-1, 3)
    graph = make_graph([make_obj(0, "rug", grid), make_obj(1, "mat", grid + [0.0, 0.0, 0.5])])
    value = QAEngine(graph, config=QAConfig(max_points=64, seed=1)).answer(Query("abs_distance", ("rug", "mat"))).value
    assert 0.5 <= value < 0.5 + 1e-6  # the KD-tree of the other object holds all its points
    with pytest.raises(Sem3RError, match="max_points"):
        QAEngine(graph, config=QAConfig(max_points=0))


def test_object_size_room_size_and_ambiguity_rule(room):
    engine = QAEngine(room)
    ans = engine.answer(Query("object_size", ("table",)))
    assert (ans.value, ans.unit) == (pytest.approx(120.0), "cm")
    ans = engine.answer(Query("room_size"))
    assert (ans.value, ans.unit) == (12.5, "m2")
    ans = engine.answer(Query("object_size", ("chair",)))  # chair#5 has 110 visible pixels, the most
    assert ans.objects == (5,) and ans.value == pytest.approx(100.0)
    assert "3 chairs; using chair#5, the most visible" in ans.explanation
    ans = engine.answer(Query("object_size", ("chair#1",)))
    assert ans.objects == (1,) and "most visible" not in ans.explanation


def test_rel_distance_picks_closest_choice(room):
    engine = QAEngine(room)
    ans = engine.answer(Query("rel_distance", ("tv",), choices=("table", "lamp", "trash_bin")))
    assert ans.kind == "choice" and ans.value == "lamp"  # lamp 1.2 m, table 1.5 m, trash bin sqrt(50) m
    assert "lamp 1.20 m" in ans.explanation and "table 1.50 m" in ans.explanation
    ans = engine.answer(Query("rel_distance", ("trash_bin",), choices=("chair", "tv", "box")))
    assert ans.value == "box" and ans.objects == (6, 7)
    ans = engine.answer(Query("rel_distance", ("tv",), choices=("chair", "trash_bin")))
    assert ans.value == "chair" and ans.objects == (0, 5)


def direction_graph(query_points, up=(0.0, 0.0, 1.0), forward=(2.0, 0.0, 0.0)):
    objects = [make_obj(0, "sofa", [[0, 0, 0]]), make_obj(1, "tv", [forward])]
    objects += [make_obj(10 + k, f"q{k}", [p]) for k, p in enumerate(query_points)]
    return QAEngine(make_graph(objects, up=up))


POINTS = [(0, 1, 0), (0, -1, 0), (-1, 0.2, 0), (1, 1, 0), (1, -1, 0), (-1, 1, 0), (-1, -1, 0), (0.5, 0.3, 0),
          (-1, 1.1, 0), (-1, 0.84, 0)]


def directions(engine, choices=()):
    return [engine.answer(Query("rel_direction", ("sofa", "tv", f"q{k}"), choices=choices)).value
            for k in range(len(POINTS))]


def test_rel_direction_left_right_back_and_quadrants():
    engine = direction_graph(POINTS)
    # standing at the origin facing +x with +z up: +y is on the left
    got = directions(engine)
    assert got[:3] == ["left", "right", "back"]
    assert got[8:] == ["left", "back"]  # 132 deg is still left, 140 deg is back (boundary 135 deg)
    quads = ("front-left", "front-right", "back-left", "back-right")
    assert directions(engine, quads)[3:7] == list(quads)
    assert [directions(engine, ("left", "right"))[k] for k in (0, 1, 2, 7)] == ["left", "right", "left", "left"]
    ans = engine.answer(Query("rel_direction", ("sofa", "tv", "q0"), choices=("up", "down")))
    assert ans.kind == "error" and "up" in ans.explanation


def test_rel_direction_mirrored_layout_flips_left_right():
    flip = {"left": "right", "right": "left", "back": "back", "front-left": "front-right", "front-right": "front-left",
            "back-left": "back-right", "back-right": "back-left"}
    quads = ("front-left", "front-right", "back-left", "back-right")
    engine, mirrored = direction_graph(POINTS), direction_graph([(x, -y, z) for x, y, z in POINTS])
    for choices in ((), quads):
        assert directions(mirrored, choices) == [flip[d] for d in directions(engine, choices)]


def test_rel_direction_other_up_vector():
    # up = -y (an OpenCV-like world): facing +x, left = up x forward = (-y) x (+x) = +z
    engine = direction_graph([(0, 0, 1), (0, 0, -1), (0, 5, 1)], up=(0.0, -1.0, 0.0))
    got = [engine.answer(Query("rel_direction", ("sofa", "tv", f"q{k}"))).value for k in range(3)]
    assert got == ["left", "right", "left"]  # the height along up (q2's y) does not matter


def test_object_depth_and_camera_distance(room):
    engine = QAEngine(room)
    ans = engine.answer(Query("object_depth", ("table",), views=(0,)))
    assert (ans.value, ans.unit) == (pytest.approx(3.0), "m")
    assert engine.answer(Query("object_depth", ("table",), views=(1,))).value == pytest.approx(4.0)
    assert engine.answer(Query("object_camera_distance", ("table",), views=(0,))).value == pytest.approx(2.5)
    assert engine.answer(Query("object_camera_distance", ("table",), views=(1,))).value == pytest.approx(4.0)
    ans = engine.answer(Query("object_depth", ("table",), views=(7,)))
    assert ans.kind == "error" and "view 7" in ans.explanation


def test_camera_motion(room):
    ans = QAEngine(room).answer(Query("camera_motion", views=(0, 1)))
    assert (ans.value, ans.unit) == (pytest.approx(5.0), "m")
    assert "90.0 deg" in ans.explanation
    assert QAEngine(room).answer(Query("camera_motion", views=(1, 1))).value == pytest.approx(0.0)


def test_appearance_order(room):
    ans = QAEngine(room).answer(Query("appearance_order", choices=("lamp", "table", "chair", "tv")))
    # first views: lamp 1, table 0, chair min(0, 0, 0) = 0, tv 1; ties keep the given order
    assert ans.kind == "choice" and ans.value == "table, chair, lamp, tv"


def test_unknown_names_and_bad_ids(room):
    engine = QAEngine(room)
    ans = engine.answer(Query("count", ("sofa",)))
    assert ans.kind == "error" and ans.value is None
    assert ans.explanation == "no object called 'sofa'; known: box, chair, lamp, table, trash_bin, tv"
    assert engine.answer(Query("abs_distance", ("tv", "unicorn"))).kind == "error"
    ans = engine.answer(Query("object_size", ("table#2",)))
    assert ans.kind == "error" and "is a 'chair'" in ans.explanation
    assert engine.answer(Query("object_size", ("chair#99",))).kind == "error"
    assert engine.answer(Query("abs_distance", ("tv",))).kind == "error"
    with pytest.raises(Sem3RError, match="known: box"):
        engine.resolve("sofa")
    with pytest.raises(Sem3RError, match="SceneGraph"):
        QAEngine("not a graph")


def test_lmm_routing_and_cannot_answer(room):
    prompts = []

    def stub(prompt):
        prompts.append(prompt)
        return "blue"

    ans = QAEngine(room, lmm=stub).answer("what colour is the sofa?")
    assert (ans.kind, ans.value, ans.explanation) == ("choice", "blue", "answered by the LMM")
    assert "what colour is the sofa?" in prompts[0]
    assert all(label in prompts[0] for label in ("tv#0", "chair#5", "trash_bin#6"))
    QAEngine(room, lmm=stub).answer(Query("colour", ("tv",)))
    assert len(prompts) == 2 and "colour" in prompts[1]
    ans = QAEngine(room).answer("what colour is the sofa?")
    assert ans.kind == "unknown" and ans.explanation.startswith("cannot answer")
    assert all(f in ans.explanation for f in FAMILIES)


def test_plain_english_through_engine(room):
    engine = QAEngine(room)
    assert engine.answer("How many chairs are there?").value == 3.0
    assert engine.answer("how far is the tv from the table?").value == pytest.approx(1.5)
    assert engine.answer("how many sofas are there?").explanation.startswith("no object called 'sofa")


def test_ask_counts_synthetic_chairs():
    syn = generate_scene(SynthConfig(seed=0, num_views=6, height=96, width=128, num_points=0))
    scene = syn.scene
    present = set(np.unique(scene.instance_masks[scene.instance_masks >= 0]).tolist())
    expect = sum(1 for i, label in zip(scene.instances.ids.tolist(), scene.instances.labels)
                 if label == "chair" and i in present)
    ans = ask(scene, "how many chairs are there?")
    assert expect > 1 and ans.value == float(expect)
