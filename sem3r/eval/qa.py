"""Spatial question answering scores: MRA (VSI-Bench), exact match and refined exact match.

Mean Relative Accuracy (:func:`mean_relative_accuracy`, VSI-Bench, used by G2VLM for numerical
answers such as distances, sizes and counts):

* relative error ``r = |pred - gt| / |gt|``;
* for each confidence threshold ``theta`` in ``C = {0.50, 0.55, ..., 0.95}`` the answer is accurate
  when ``r < 1 - theta`` (strict);
* ``MRA = (1 / 10) sum_theta 1[r < 1 - theta]``, averaged over questions for arrays.

To make the strict boundary exact in decimal, ``r`` and the tolerances ``1 - theta`` are rounded to
9 decimals before comparing (so ``pred = 1.45, gt = 1`` has ``r = 0.45`` and is *not* accurate at
``theta = 0.55``). When ``gt = 0``, ``r = 0`` if ``pred = 0`` and ``r = inf`` otherwise.

Exact match (:func:`exact_match`, "EM" of SQA3D / ScanQA): the answer counts when it equals one of
the reference answers after stripping leading and trailing whitespace; nothing else is changed.

Refined exact match (:func:`refined_exact_match`, "EM-R"): both sides are normalised by
:func:`normalize_answer` before comparing, in this order:

1. lower-case;
2. punctuation replaced by a space (every character of ``string.punctuation`` except a ``.`` or
   ``,`` between two digits: ``1.5`` is kept and the thousands separator of ``1,000`` is dropped,
   giving ``1000``);
3. number words ``zero`` ... ``twenty``, ``thirty`` ... ``ninety``, ``hundred`` are written as digits
   word by word (``"two"`` -> ``"2"``; compounds are not combined);
4. the articles ``a``, ``an``, ``the`` removed;
5. whitespace collapsed to single spaces and stripped.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

from sem3r.errors import Sem3RError

MRA_THRESHOLDS = np.round(np.arange(0.50, 0.951, 0.05), 2)
"""The ten VSI-Bench confidence thresholds ``0.50, 0.55, ..., 0.95``."""

_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_TENS = "thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(_TENS, start=3)})
_NUMBER_WORDS["hundred"] = "100"
_ARTICLES = {"a", "an", "the"}
_DIGIT_SEPARATOR = re.compile(r"(?<=\d)[.,](?=\d)")
_PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")


def mean_relative_accuracy(pred, gt) -> float:
    """VSI-Bench MRA of numeric answers (see the module docstring).

    Args:
        pred: a number or an array ``(Q,)`` of predicted values.
        gt: ground-truth values of the same shape.

    Returns:
        MRA in ``[0, 1]``, averaged over the ``Q`` questions.

    Example:
        >>> mean_relative_accuracy(1.2, 1.0)   # r = 0.2 < 0.5, 0.45, ..., 0.25 but not < 0.2
        0.6
    """
    p = np.atleast_1d(np.asarray(pred, dtype=np.float64))
    g = np.atleast_1d(np.asarray(gt, dtype=np.float64))
    if p.shape != g.shape:
        raise Sem3RError(f"MRA needs predictions and ground truth of the same shape, got {p.shape} and {g.shape}")
    if not p.size:
        raise Sem3RError("MRA needs at least one answer")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise Sem3RError("MRA inputs contain NaN or infinite values")
    diff = np.abs(p - g)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(g != 0, diff / np.abs(g), np.where(diff == 0, 0.0, np.inf))
    rel = np.round(rel, 9)
    tolerance = np.round(1.0 - MRA_THRESHOLDS, 9)
    return float(np.mean(rel[..., None] < tolerance))


def _as_answer_lists(pred, gt) -> tuple[list[str], list[list[str]]]:
    if isinstance(pred, str):
        return [pred], [[gt] if isinstance(gt, str) else list(gt)]
    preds = list(pred)
    if isinstance(gt, str) or len(preds) != len(gt):
        raise Sem3RError("a list of predictions needs a list of references of the same length")
    if not preds:
        raise Sem3RError("exact match needs at least one answer")
    return preds, [[g] if isinstance(g, str) else list(g) for g in gt]


def _match_rate(pred, gt, normalise) -> float:
    preds, refs = _as_answer_lists(pred, gt)
    hits = [normalise(p) in {normalise(r) for r in rs} for p, rs in zip(preds, refs)]
    return float(np.mean(hits))


def exact_match(pred: str | Sequence[str], gt: str | Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Exact-match accuracy (whitespace-stripped string equality).

    Args:
        pred: one answer, or a list of ``Q`` answers.
        gt: for one answer, a reference string or a list of acceptable references; for a list of
            answers, a list of ``Q`` such entries.

    Returns:
        The fraction of answers equal to one of their references.

    Example:
        >>> exact_match(["Two", "chair"], ["two", ["chair", "stool"]])
        0.5
    """
    return _match_rate(pred, gt, str.strip)


def normalize_answer(text: str) -> str:
    """The normalisation of refined exact match (see the module docstring).

    Example:
        >>> normalize_answer("  The TWO chairs, 1,000 mm!")
        '2 chairs 1000 mm'
    """
    text = _DIGIT_SEPARATOR.sub(lambda m: "" if m.group(0) == "," else "\0", text.lower())
    text = _PUNCTUATION.sub(" ", text).replace("\0", ".")
    words = [_NUMBER_WORDS.get(w, w) for w in text.split()]
    return " ".join(w for w in words if w not in _ARTICLES)


def refined_exact_match(pred: str | Sequence[str], gt: str | Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Refined exact match: exact match after :func:`normalize_answer` on both sides.

    Args and return value as in :func:`exact_match`.

    Example:
        >>> refined_exact_match("There are two.", "there are 2")
        1.0
    """
    return _match_rate(pred, gt, normalize_answer)
