import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.eval.qa import MRA_THRESHOLDS, exact_match, mean_relative_accuracy, normalize_answer, refined_exact_match


def test_thresholds():
    np.testing.assert_allclose(MRA_THRESHOLDS, np.arange(10) * 0.05 + 0.5)


@pytest.mark.parametrize(
    "pred, expected",
    [
        (1.0, 1.0),
        (1.5, 0.0),  # r = 0.50: not < 1 - 0.50
        (1.45, 0.1),  # r = 0.45: only theta = 0.50
        (0.55, 0.1),  # under-estimates count the same
        (1.05, 0.9),  # r = 0.05: every theta but 0.95
        (1.049, 1.0),
        (1.2, 0.6),  # r = 0.20: theta 0.50 .. 0.75
        (3.0, 0.0),
    ],
)
def test_mra_at_threshold_boundaries(pred, expected):
    assert mean_relative_accuracy(pred, 1.0) == pytest.approx(expected)


def test_mra_arrays_negative_and_zero_ground_truth():
    assert mean_relative_accuracy([1.0, 1.5, 14.5], [1.0, 1.0, 10.0]) == pytest.approx((1.0 + 0.0 + 0.1) / 3)
    assert mean_relative_accuracy(-1.2, -1.0) == pytest.approx(0.6)
    assert mean_relative_accuracy([0.0, 0.1], [0.0, 0.0]) == pytest.approx(0.5)
    with pytest.raises(Sem3RError):
        mean_relative_accuracy([1.0, 2.0], [1.0])
    with pytest.raises(Sem3RError):
        mean_relative_accuracy([np.nan], [1.0])


def test_exact_match():
    assert exact_match(" chair ", "chair") == 1.0
    assert exact_match("Chair", "chair") == 0.0
    assert exact_match("stool", ["chair", "stool"]) == 1.0
    assert exact_match(["a", "b", "c"], ["a", ["x", "b"], "d"]) == pytest.approx(2 / 3)
    with pytest.raises(Sem3RError):
        exact_match(["a", "b"], ["a"])


def test_normalize_answer():
    assert normalize_answer("The Chair!") == "chair"
    assert normalize_answer("  an   apple, a pear ") == "apple pear"
    assert normalize_answer("Two tables") == "2 tables"
    assert normalize_answer("1.5 m") == "1.5 m"
    assert normalize_answer("1,000 mm.") == "1000 mm"
    assert normalize_answer("left-side") == "left side"
    assert normalize_answer("twenty one") == "20 1"


def test_refined_exact_match():
    assert refined_exact_match("There are TWO.", "there are 2") == 1.0
    assert refined_exact_match("the brown chair", "brown chair") == 1.0
    assert refined_exact_match("chairs", "chair") == 0.0
    assert refined_exact_match(["Three", "a lamp"], [["3", "three"], "lamps"]) == pytest.approx(0.5)
