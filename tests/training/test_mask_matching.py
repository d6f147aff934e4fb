"""Pairwise mask/class costs, Hungarian matching with the seed constraint, and the set loss."""

import itertools
import math

import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.training.mask_matching import (
    MatchingConfig,
    hungarian_set_loss,
    match_view,
    matching_cost,
    pairwise_bce_cost,
    pairwise_class_cost,
    pairwise_dice_cost,
    sigmoid_focal_loss,
)

LN3 = math.log(3.0)


def _tiny():
    """Two queries (p = [.5, .5] and [.75, .25]) and two soft targets over two superpoints."""
    logits = torch.tensor([[0.0, 0.0], [LN3, -LN3]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    return logits, targets


def test_pairwise_bce_cost_hand_values():
    logits, targets = _tiny()
    ln2, ln43, ln4 = math.log(2), math.log(4 / 3), math.log(4)
    expected = [[ln2, ln2], [ln43, (0.5 * ln43 + 0.5 * ln4 + ln4) / 2]]
    assert pairwise_bce_cost(logits, targets).flatten().tolist() == pytest.approx(np.ravel(expected), abs=1e-6)


def test_pairwise_dice_cost_hand_values():
    logits, targets = _tiny()
    # 1 - (2 p.t + 1) / (sum p + sum t + 1)
    expected = [[1 - 2 / 3, 1 - 2.5 / 3.5], [1 - 2.5 / 3, 1 - 2.25 / 3.5]]
    assert pairwise_dice_cost(logits, targets).flatten().tolist() == pytest.approx(np.ravel(expected), abs=1e-6)


def test_pairwise_class_cost_and_focal_loss_hand_values():
    ln2 = math.log(2)
    cost = pairwise_class_cost(torch.tensor([[0.0, LN3]]), torch.tensor([1, 0]))
    # p = 0.75 for class 1: 0.25 * 0.25^2 * ln(4/3) - 0.75 * 0.75^2 * ln 4; p = 0.5 for class 0
    assert cost.tolist()[0] == pytest.approx([0.25 * 0.0625 * math.log(4 / 3) - 0.75 * 0.5625 * math.log(4),
                                              0.25 * 0.25 * ln2 - 0.75 * 0.25 * ln2], abs=1e-6)
    focal = sigmoid_focal_loss(torch.tensor([LN3, LN3]), torch.tensor([1.0, 0.0]))
    assert focal.tolist() == pytest.approx([0.25 * 0.0625 * math.log(4 / 3), 0.75 * 0.5625 * math.log(4)], abs=1e-6)


def test_matching_cost_weights_the_three_terms():
    logits, targets = _tiny()
    class_logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    classes = torch.tensor([1, 0])
    cfg = MatchingConfig(class_weight=2.0, bce_weight=3.0, dice_weight=4.0)
    expected = (2 * pairwise_class_cost(class_logits, classes) + 3 * pairwise_bce_cost(logits, targets)
                + 4 * pairwise_dice_cost(logits, targets))
    assert torch.allclose(matching_cost(logits, class_logits, targets, classes, cfg), expected)


def test_hungarian_recovers_known_permutation():
    targets = torch.tensor([[1.0, 1, 0, 0, 0], [0, 0, 1, 1, 1]])
    mask_logits = torch.stack([torch.tensor([3.0, -2, 1, -1, 2]),      # noise
                               10 * (2 * targets[1] - 1),              # target 1
                               10 * (2 * targets[0] - 1)])             # target 0
    classes = torch.tensor([0, 1])
    q, g = match_view(mask_logits, torch.zeros(3, 2), targets, classes)
    assert q.tolist() == [1, 2] and g.tolist() == [1, 0]
    assert q.dtype == np.int64 and g.dtype == np.int64


def test_hungarian_is_optimal_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    mask_logits, class_logits = 3 * torch.randn(4, 6, generator=gen), torch.randn(4, 3, generator=gen)
    targets, classes = torch.rand(3, 6, generator=gen), torch.tensor([2, 0, 2])
    cost = matching_cost(mask_logits, class_logits, targets, classes, MatchingConfig()).double().numpy()
    best = min(sum(cost[qi, gi] for gi, qi in enumerate(perm)) for perm in itertools.permutations(range(4), 3))
    q, g = match_view(mask_logits, class_logits, targets, classes)
    assert len(q) == 3 and cost[q, g].sum() == pytest.approx(best, abs=1e-9)


def test_seed_constraint_forbids_and_drops_pairs():
    targets = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])
    mask_logits = torch.stack([torch.zeros(4), 10 * (2 * targets[1] - 1), 10 * (2 * targets[0] - 1)])
    classes = torch.tensor([0, 0])
    allowed = torch.tensor([[True, True], [True, True], [False, True]])  # query 2 may not take its best target
    q, g = match_view(mask_logits, torch.zeros(3, 1), targets, classes, allowed)
    assert q.tolist() == [0, 1] and g.tolist() == [0, 1]
    only_forbidden = torch.tensor([[False, True], [False, True], [False, False]])  # nobody may take target 0
    q, g = match_view(mask_logits, torch.zeros(3, 1), targets, classes, only_forbidden)
    assert q.tolist() == [1] and g.tolist() == [1]
    q, g = match_view(mask_logits, torch.zeros(3, 1), targets, classes, torch.zeros(3, 2, dtype=torch.bool))
    assert len(q) == 0 and len(g) == 0


def test_set_loss_hand_values():
    mask_logits, class_logits = torch.tensor([[LN3, -LN3]]), torch.tensor([[LN3, 0.0]])
    targets, classes = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    out = hungarian_set_loss(mask_logits, class_logits, targets, classes,
                             config=MatchingConfig(class_weight=2.0, bce_weight=3.0, dice_weight=4.0))
    bce = math.log(4 / 3)                                  # both superpoints: p = 0.75 on the right side
    dice = 1 - (2 * 0.75 + 1) / (1.0 + 1 + 1)
    focal = 0.25 * 0.0625 * math.log(4 / 3) + 0.75 * 0.25 * math.log(2)   # class 0 positive, class 1 negative
    assert out["loss_mask"].item() == pytest.approx(bce, abs=1e-6)
    assert out["loss_dice"].item() == pytest.approx(dice, abs=1e-6)
    assert out["loss_class"].item() == pytest.approx(focal, abs=1e-6)
    assert out["loss"].item() == pytest.approx(2 * focal + 3 * bce + 4 * dice, abs=1e-5)
    assert int(out["matched"]) == 1


def test_set_loss_normalises_by_matched_and_pushes_unmatched_to_no_object():
    targets, classes = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    mask_logits = torch.tensor([[5.0, -5.0], [0.0, 0.0]], requires_grad=True)
    class_logits = torch.tensor([[-5.0, 5.0], [1.0, 1.0]], requires_grad=True)
    out = hungarian_set_loss(mask_logits, class_logits, targets, classes)
    out["loss"].backward()
    assert int(out["matched"]) == 1
    assert not mask_logits.grad[1].any()                    # unmatched: no mask loss
    assert (class_logits.grad[1] > 0).all()                 # unmatched: pushed towards no object
    expected = (sigmoid_focal_loss(class_logits[0], torch.tensor([0.0, 1.0]))
                + sigmoid_focal_loss(class_logits[1], torch.zeros(2))).sum()
    assert out["loss_class"].item() == pytest.approx(expected.item(), rel=1e-6)
    none = hungarian_set_loss(mask_logits, class_logits, targets, classes, torch.zeros(2, 1, dtype=torch.bool))
    expected_none = sigmoid_focal_loss(class_logits, torch.zeros(2, 2)).sum()     # divided by max(0, 1)
    assert none["loss_class"].item() == pytest.approx(expected_none.item(), rel=1e-6)
    assert int(none["matched"]) == 0 and none["loss_mask"].item() == 0.0


def test_empty_sets():
    q, g = match_view(torch.zeros(0, 3), torch.zeros(0, 2), torch.ones(2, 3), torch.tensor([0, 1]))
    assert len(q) == 0 and len(g) == 0
    out = hungarian_set_loss(torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))
    assert int(out["matched"]) == 0 and out["loss_class"].item() > 0


@pytest.mark.parametrize("args, message", [
    ((torch.zeros(2, 3), torch.zeros(3, 2), torch.ones(1, 3), torch.tensor([0])), "disagree"),
    ((torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(1, 4), torch.tensor([0])), "target_masks"),
    ((torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(1, 3), torch.tensor([0, 1])), "target_classes"),
    ((torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(1, 3), torch.tensor([2])), "class ids"),
    ((torch.full((2, 3), float("nan")), torch.zeros(2, 2), torch.ones(1, 3), torch.tensor([0])), "not finite"),
])
def test_bad_input(args, message):
    with pytest.raises(Sem3RError, match=message):
        match_view(*args)


def test_bad_allowed_mask_and_config():
    with pytest.raises(Sem3RError, match="allowed"):
        match_view(torch.zeros(2, 3), torch.zeros(2, 2), torch.ones(1, 3), torch.tensor([0]), torch.ones(1, 2) > 0)
    with pytest.raises(Sem3RError, match="focal_alpha"):
        MatchingConfig(focal_alpha=1.5).validate()
