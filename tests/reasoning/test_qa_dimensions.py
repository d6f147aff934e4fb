"""Object-size questions that name a side: height along up, width and length across and along."""

import numpy as np
import pytest

from sem3r.reasoning.qa import QAEngine, Query
from sem3r.reasoning.qa_parser import parse_question
from sem3r.reasoning.scene_graph import (
    SceneGraph,
    SceneObject,
    ground_basis,
    oriented_box,
)

# z-up world -> y-up world (a right-handed rotation taking +z to +y)
Z_TO_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def box_object(oid, label, size, center, yaw_deg, world_from_zup=None, seed=0):
    """A solid box ``size = (x, y, z)`` metres (z vertical), turned by ``yaw_deg`` about the vertical."""
    rng = np.random.default_rng(seed)
    world_from_zup = np.eye(3) if world_from_zup is None else world_from_zup
    size = np.asarray(size, float)
    corners = ((np.arange(8)[:, None] >> np.arange(3)) & 1) - 0.5
    local = np.concatenate([(rng.random((3000, 3)) - 0.5), corners]) * size
    a = np.radians(yaw_deg)
    yaw = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    pts = (local @ yaw.T + center) @ world_from_zup.T
    up = world_from_zup @ np.array([0.0, 0.0, 1.0])
    c, s, r = oriented_box(pts, ground_basis(up), 0.0)
    return SceneObject(oid, label, 1.0, pts.astype(np.float32), pts.mean(0), c, s, r, np.array([100]), 0)


def graph_of(objects, up):
    up = np.asarray(up, float)
    return SceneGraph(objects, up, ground_basis(up), 0.0, 12.0, np.eye(3, 4)[None], np.eye(3)[None])


@pytest.fixture(params=["z-up", "y-up"])
def engine(request):
    world = np.eye(3) if request.param == "z-up" else Z_TO_Y
    objs = [box_object(3, "table", (1.5, 0.6, 0.75), (1.0, 2.0, 0.375), 30.0, world),
            box_object(8, "bookshelf", (0.8, 0.3, 1.8), (-2.0, 0.5, 0.9), -70.0, world, seed=1)]
    return QAEngine(graph_of(objs, world @ np.array([0.0, 0.0, 1.0])))


@pytest.mark.parametrize("question", ["how tall is the table?", "What is the height of the table",
                                      "how high is the table in centimeters?"])
def test_height_is_the_vertical_extent(engine, question):
    ans = engine.answer(question)
    assert (ans.kind, ans.unit) == ("number", "cm")
    assert ans.value == pytest.approx(75.0, abs=0.5)  # the old engine answered the longest side, 150
    assert "height 75 cm" in ans.explanation and "longest" not in ans.explanation


@pytest.mark.parametrize("question", ["how wide is the table?", "what is the width of the table?"])
def test_width_is_the_shorter_horizontal_side(engine, question):
    ans = engine.answer(question)
    assert ans.value == pytest.approx(60.0, abs=0.5)
    assert "width 60 cm" in ans.explanation


@pytest.mark.parametrize("question", ["how long is the bookshelf?", "what is the length of the bookshelf"])
def test_length_is_the_longer_horizontal_side_even_when_height_is_longest(engine, question):
    ans = engine.answer(question)
    assert ans.value == pytest.approx(80.0, abs=0.5)  # not the 180 cm height
    assert "length 80 cm" in ans.explanation


def test_longest_stays_the_default(engine):
    assert engine.answer("how big is the bookshelf?").value == pytest.approx(180.0, abs=0.5)
    vsi = "What is the length of the longest dimension (length, width, or height) of the table, measured in centimeters?"
    ans = engine.answer(vsi)
    assert ans.value == pytest.approx(150.0, abs=0.5)
    assert "longest 150 cm" in ans.explanation
    assert engine.answer(Query("object_size", ("table",), dimension="height")).value == pytest.approx(75.0, abs=0.5)


def test_unknown_dimension_is_an_error_answer(engine):
    ans = engine.answer(Query("object_size", ("table",), dimension="depth"))
    assert ans.kind == "error" and "dimension" in ans.explanation


def test_width_of_upright_and_thin_objects_is_across_their_face(engine):
    ans = engine.answer("how wide is the bookshelf?")  # 0.8 x 0.3 x 1.8: upright
    assert ans.value == pytest.approx(80.0, abs=0.5)
    assert "width 80 cm" in ans.explanation and "30 cm deep" in ans.explanation
    window = SceneObject(4, "window", 1.0, np.zeros((4, 3), np.float32), np.zeros(3), np.zeros(3),
                         np.array([1.5, 0.06, 1.1]), np.eye(3), np.array([5]), 0)
    ans = QAEngine(graph_of([window], [0.0, 0.0, 1.0])).answer("how wide is the window?")
    assert ans.value == pytest.approx(150.0) and "6 cm deep" in ans.explanation


def test_width_and_length_of_a_hand_made_box_in_any_order():
    # a SceneObject whose box_size does not list the longer horizontal side first
    obj = SceneObject(1, "rug", 1.0, np.zeros((4, 3), np.float32), np.zeros(3), np.zeros(3),
                      np.array([0.4, 2.0, 0.01]), np.eye(3), np.array([5]), 0)
    engine = QAEngine(graph_of([obj], [0.0, 0.0, 1.0]))
    assert engine.answer(Query("object_size", ("rug",), dimension="length")).value == pytest.approx(200.0)
    assert engine.answer(Query("object_size", ("rug",), dimension="width")).value == pytest.approx(40.0)
    assert engine.answer(Query("object_size", ("rug",), dimension="height")).value == pytest.approx(1.0)


@pytest.mark.parametrize("text, dimension", [
    ("How tall is the table?", "height"), ("how high is the table", "height"),
    ("what is the height of the table?", "height"), ("how wide is the table?", "width"),
    ("What is the width of the table?", "width"), ("how long is the table?", "length"),
    ("what is the length of the table?", "length"), ("how big is the table?", "longest"),
    ("what is the size of the table?", "longest"), ("what is the longest dimension of the table?", "longest"),
])
def test_parser_names_the_dimension(text, dimension):
    q = parse_question(text, ["table"])
    assert (q.family, q.objects, q.dimension) == ("object_size", ("table",), dimension)
