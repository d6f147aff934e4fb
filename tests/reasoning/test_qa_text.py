"""The wording of answers: headlines, unlabelled objects, no repeated names, left / right."""

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.reasoning.qa import Answer, QAEngine, Query
from sem3r.reasoning.scene_graph import SceneGraph, SceneObject, ground_basis


def obj(oid, label, pts, visible=10):
    pts = np.asarray(pts, np.float64)
    return SceneObject(oid, label, 1.0, pts.astype(np.float32), pts.mean(0), pts.mean(0), np.ptp(pts, 0),
                       np.eye(3), np.array([visible]), 0)


@pytest.fixture
def engine():
    up = np.array([0.0, 0.0, 1.0])
    objs = [obj(2, "table", [[0, 0, 0], [1, 0, 0.7]]), obj(3, "table", [[5, 0, 0], [6, 0, 0.7]], visible=3),
            obj(5, "", [[0, 2, 0], [0.2, 2.2, 0.3]]), obj(7, "", [[1.2, 0, 0], [1.3, 0.1, 0.2]]),
            obj(9, "lamp", [[0, -3, 0], [0.1, -2.9, 1.5]])]
    graph = SceneGraph(objs, up, ground_basis(up), 0.0, 40.0, np.eye(3, 4)[None], np.eye(3)[None])
    return QAEngine(graph)


def test_count_headline_has_no_unit_word(engine):
    ans = engine.answer("how many tables are there?")
    assert ans.headline() == "2"  # was "2 count"
    assert ans.explanation == "2 tables in the scene (ids 2, 3)."
    assert ans.to_dict()["value"] == 2 and isinstance(ans.to_dict()["value"], int)


def test_headlines():
    assert Answer("number", 1.634, "m").headline() == "1.63 m"
    assert Answer("choice", "lamp", "").headline() == "lamp"
    assert Answer("unknown", None).headline() == "cannot answer"
    assert Answer("number", float("inf"), "m").to_dict()["value"] is None


def test_count_of_one_unlabelled_object(engine):
    ans = engine.answer(Query("count", ("#5",)))
    assert ans.explanation == "1 unlabelled object in the scene (id 5)."  # was "1  in the scene (ids 5)."


def test_closest_choice_names_an_unlabelled_target(engine):
    ans = engine.answer(Query("rel_distance", ("#5",), choices=("table", "lamp")))
    assert "distances to #5:" in ans.explanation  # was "distances to :"
    assert ans.explanation.endswith("table (table#2) is closest.")


def test_closest_choice_does_not_repeat_an_exact_reference(engine):
    ans = engine.answer("which is closest to table#2? #7, lamp#9")
    assert ans.value == "#7"
    assert "distances to table#2:" in ans.explanation
    assert ans.explanation.endswith("; #7 is closest.")  # was "#7 (#7) is closest."
    assert "(#7)" not in ans.explanation


def test_relative_direction_says_right_and_behind_with_positive_distances(engine):
    ans = engine.answer(Query("rel_direction", ("table#2", "table#3", "lamp"), choices=("left", "right")))
    assert ans.value == "right"
    assert "to the right" in ans.explanation and "-" not in ans.explanation.split("(")[0].split("facing")[1]


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_question_is_an_error(engine, blank):
    with pytest.raises(Sem3RError, match="the question is empty"):
        engine.answer(blank)


def test_size_explanation_keeps_the_ambiguity_note(engine):
    ans = engine.answer("how wide is the table?")
    assert ans.explanation.startswith("2 tables; using table#2, the most visible. table#2 box is ")
    assert ans.explanation.endswith("; width 100 cm, the longer horizontal side as it is a thin vertical slab (0 cm deep).")


def test_generic_object_names_count_every_instance(engine):
    """'how many objects' counts all instances, labelled or not."""
    answer = engine.answer("how many objects are there?")
    assert answer.value == 5 and answer.objects == (2, 3, 5, 7, 9)
    assert answer.explanation == "5 objects in the scene (ids 2, 3, 5, 7, 9)."
    assert engine.answer("how many things are in the room?").value == 5
    assert engine.answer("how many tables are there?").value == 2
