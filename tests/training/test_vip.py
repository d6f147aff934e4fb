"""OVSeg3R's View-wise Instance Partition: view-wise targets, query partition, truncation and the loss."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.training.mask_matching import (
    MatchingConfig,
    hungarian_set_loss,
    matching_cost,
    sigmoid_focal_loss,
)
from sem3r.training.vip import (
    ViewTargets,
    VIPLossConfig,
    build_view_targets,
    vip_loss,
    vip_partition,
)

L = 20.0  # a "certain" logit


def _two_views(target_views=(0, 1), view1_targets=1):
    """Four superpoints; view 0 sees 0-1, view 1 sees 2-3. Query A is seeded on 0, B on 2.

    View 0 annotates superpoints {0, 1} (class 0); view 1 annotates {2, 3} (class 1), and with
    ``view1_targets=2`` also {2} alone (class 0).
    """
    vis = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])
    masks, classes, views = [], [], []
    if 0 in target_views:
        masks.append([1.0, 1, 0, 0]), classes.append(0), views.append(0)
    if 1 in target_views:
        masks.append([0.0, 0, 1, 1]), classes.append(1), views.append(1)
        if view1_targets == 2:
            masks.append([0.0, 0, 1, 0]), classes.append(0), views.append(1)
    targets = ViewTargets(vis, torch.tensor(masks).reshape(-1, 4), torch.tensor(classes), torch.tensor(views),
                          torch.arange(len(views)))
    gen = torch.Generator().manual_seed(0)
    outputs = {"mask_logits": torch.randn(2, 4, generator=gen).requires_grad_(True),
               "class_logits": torch.randn(2, 2, generator=gen).requires_grad_(True),
               "query_superpoints": torch.tensor([0, 2])}
    return outputs, targets


def _grads(outputs, targets, config):
    for key in ("mask_logits", "class_logits"):
        outputs[key].grad = None
    vip_loss(outputs, targets, config)["loss"].backward()
    return outputs["mask_logits"].grad.clone(), outputs["class_logits"].grad.clone()


def test_prediction_outside_a_view_is_not_penalised_by_it():
    outputs, targets = _two_views(target_views=(1,))  # the view-1 loss only
    mask_grad, class_grad = _grads(outputs, targets, VIPLossConfig())
    assert not mask_grad[0].any() and not class_grad[0].any()      # query A: seed only in view 0
    assert mask_grad[1].abs().sum() > 0 and class_grad[1].abs().sum() > 0
    mask_grad, class_grad = _grads(outputs, targets, VIPLossConfig(vip=False))
    assert (class_grad[0] > 0).all()                                # A is pushed to no object in view 1
    # without the seed constraint and with two view-1 targets, A is matched and pushed empty on view 0's part
    outputs, targets = _two_views(target_views=(0, 1), view1_targets=2)
    view1 = ViewTargets(targets.superpoint_visibility, targets.masks[1:], targets.classes[1:], targets.views[1:],
                        targets.instance_ids[1:])
    mask_grad, _ = _grads(outputs, view1, VIPLossConfig(vip=False, seed_constraint=False))
    assert (mask_grad[0, :2] > 0).all()
    mask_grad, class_grad = _grads(outputs, view1, VIPLossConfig(seed_constraint=False))
    assert not mask_grad[0].any() and not class_grad[0].any()


def test_truncation_ignores_superpoints_outside_the_view():
    outputs, targets = _two_views()
    for config, invariant in ((VIPLossConfig(), True), (VIPLossConfig(vip=False), False)):
        base = vip_loss(outputs, targets, config)["loss"].item()
        changed = dict(outputs, mask_logits=outputs["mask_logits"].detach().clone())
        changed["mask_logits"][0, 2:] = torch.tensor([7.0, -9.0])  # A, on superpoints view 0 does not see
        assert (vip_loss(changed, targets, config)["loss"].item() == base) == invariant
    mask_grad, _ = _grads(outputs, targets, VIPLossConfig())
    assert not mask_grad[0, 2:].any() and not mask_grad[1, :2].any()
    assert mask_grad[0, :2].abs().min() > 0 and mask_grad[1, 2:].abs().min() > 0


def test_vip_partition_and_threshold():
    vis = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.6, 1.0]])
    seeds = torch.tensor([1, 0, 2, 1])
    assert vip_partition(seeds, vis).tolist() == [[True, True, False, True], [True, False, True, True]]
    assert vip_partition(seeds, vis, min_visible=0.5).tolist() == [[False, True, False, False],
                                                                   [True, False, True, True]]


def _points_scene():
    """12 points, 2 per superpoint; objects {0, 1} (class 1), {2, 3} (class 2), {4, 5} (class 0).

    View 0 sees superpoints 0, 1 and one point of 2; view 1 sees 2-5. Each seen point is labelled
    with its object's 2D id in that view.
    """
    superpoints = np.repeat(np.arange(6), 2)
    obj = superpoints // 2
    seen = np.zeros((2, 12), dtype=bool)
    seen[0, :5] = True
    seen[1, 4:] = True
    labels = np.full((2, 12), -1, dtype=np.int32)
    labels[0, :5] = obj[:5]                 # view 0: id 0 = object 0, id 1 = object 1
    labels[1, 4:] = obj[4:] - 1             # view 1: id 0 = object 1, id 1 = object 2
    return build_view_targets(labels, seen, superpoints, 6, [{0: 1, 1: 2}, {0: 2, 1: 0}], num_classes=3), obj


def test_perfect_predictions_have_near_zero_loss():
    targets, _ = _points_scene()
    objects = torch.tensor([[1.0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1], [0] * 6, [0] * 6])
    classes = torch.tensor([1, 2, 0, -1, -1])  # the last two queries predict no object
    outputs = {"mask_logits": L * (2 * objects - 1),
               "class_logits": torch.where(torch.arange(3) == classes[:, None], L, -L),
               "query_superpoints": torch.tensor([0, 2, 5, 1, 3])}
    perfect = vip_loss(outputs, targets)
    assert perfect["loss"].item() < 1e-4
    assert int(perfect["matched"]) == 4 and int(perfect["views"]) == 2
    gen = torch.Generator().manual_seed(3)
    noisy = dict(outputs, mask_logits=torch.randn(5, 6, generator=gen), class_logits=torch.randn(5, 3, generator=gen))
    assert vip_loss(noisy, targets)["loss"].item() > 1.0
    wrong_class = dict(outputs, class_logits=outputs["class_logits"].roll(1, dims=1))
    assert vip_loss(wrong_class, targets)["loss_class"].item() > 1.0


def test_build_view_targets_hand_values():
    superpoints = np.array([0, 0, 1, 1, 2, 2])
    seen = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=bool)
    labels = np.array([[0, -1, 1, -1, -1, -1], [-1, -1, 0, 0, 1, -1]], dtype=np.int32)
    targets = build_view_targets(labels, seen, superpoints, 3, [{0: 2, 1: 0}, {0: 1, 1: -1}])
    assert targets.superpoint_visibility.tolist() == [[1.0, 0.5, 0.0], [0.0, 1.0, 1.0]]
    # view 0, id 0: 1 of sp 0's 2 seen points; id 1: the one seen point of sp 1 (its unseen twin does not count)
    # view 1, id 0: both points of sp 1; id 1 has no class and is dropped
    assert targets.masks.tolist() == [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    assert targets.classes.tolist() == [2, 0, 1]
    assert targets.views.tolist() == [0, 0, 1] and targets.instance_ids.tolist() == [0, 1, 0]
    table = np.array([[2, 0], [1, 4]])
    with_class = build_view_targets(labels, seen, superpoints, 3, table)
    assert with_class.masks[3].tolist() == [0.0, 0.0, 0.5] and with_class.classes.tolist() == [2, 0, 1, 4]
    assert torch.equal(with_class.masks[:3], targets.masks)


def test_scene_level_mode_is_plain_hungarian_set_loss():
    gen = torch.Generator().manual_seed(1)
    masks = torch.tensor([[1.0, 1, 0, 0, 0], [0, 0, 1, 1, 0.5]])
    classes = torch.tensor([2, 0])
    targets = ViewTargets.scene_level(masks, classes)
    outputs = {"mask_logits": 2 * torch.randn(4, 5, generator=gen), "class_logits": torch.randn(4, 3, generator=gen),
               "query_superpoints": torch.tensor([0, 3, 1, 4])}
    free = VIPLossConfig(seed_constraint=False)
    cost = matching_cost(outputs["mask_logits"], outputs["class_logits"], masks, classes, free).double().numpy()
    perm = min(itertools.permutations(range(4), 2), key=lambda p: cost[p[0], 0] + cost[p[1], 1])
    q, g = torch.tensor(perm), torch.arange(2)
    x, t = outputs["mask_logits"][q], masks[g]
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).sum() / 2
    p = x.sigmoid()
    dice = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).sum() / 2
    onehot = torch.zeros(4, 3)
    onehot[q, classes] = 1
    focal = sigmoid_focal_loss(outputs["class_logits"], onehot).sum() / 2
    expected = 2 * focal + 5 * bce + 5 * dice
    for vip in (True, False):
        out = vip_loss(outputs, targets, VIPLossConfig(vip=vip, seed_constraint=False))
        assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
        assert out["loss_dice"].item() == pytest.approx(dice.item(), rel=1e-5)
    # with the seed constraint: the set loss with pairs allowed where the seed lies in the target
    allowed = masks[:, outputs["query_superpoints"]].T >= 0.5
    constrained = hungarian_set_loss(outputs["mask_logits"], outputs["class_logits"], masks, classes, allowed)
    assert vip_loss(outputs, targets)["loss"].item() == pytest.approx(constrained["loss"].item(), rel=1e-6)


def test_seed_constraint_in_the_loss():
    masks = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])
    targets = ViewTargets.scene_level(masks, torch.tensor([0, 0]))
    outputs = {"mask_logits": L * (2 * masks.flip(0) - 1),                # query 0 draws target 1, query 1 target 0
               "class_logits": torch.full((2, 1), L), "query_superpoints": torch.tensor([0, 3])}
    free = vip_loss(outputs, targets, VIPLossConfig(seed_constraint=False))
    assert free["loss"].item() < 1e-4 and int(free["matched"]) == 2
    constrained = vip_loss(outputs, targets)  # the seeds force the wrong pairs
    assert int(constrained["matched"]) == 2 and constrained["loss_dice"].item() == pytest.approx(1 - 1 / 5)
    outside = vip_loss(dict(outputs, query_superpoints=torch.tensor([0, 1])), targets)  # no seed in target 1
    assert int(outside["matched"]) == 1


def test_deep_supervision_matches_each_layer_separately():
    outputs, targets = _two_views()
    last = vip_loss(outputs, targets)["loss"].item()
    permuted = {"mask_logits": outputs["mask_logits"].flip(0), "class_logits": outputs["class_logits"].flip(0)}
    same = dict(outputs, aux=[{"mask_logits": outputs["mask_logits"], "class_logits": outputs["class_logits"]}])
    assert vip_loss(same, targets)["loss"].item() == pytest.approx(2 * last, rel=1e-6)
    assert vip_loss(same, targets, VIPLossConfig(aux_weight=0.5))["loss"].item() == pytest.approx(1.5 * last, rel=1e-6)
    assert vip_loss(same, targets)["loss_mask"].item() == pytest.approx(vip_loss(outputs, targets)["loss_mask"].item())
    swapped = vip_loss(dict(outputs, aux=[permuted]), targets)["loss"].item()
    assert swapped != pytest.approx(2 * last, rel=1e-3)  # the aux queries' seeds differ from their content


def test_views_without_queries_or_targets_contribute_nothing():
    outputs, targets = _two_views()
    only_a = dict(outputs, mask_logits=outputs["mask_logits"][:1], class_logits=outputs["class_logits"][:1],
                  query_superpoints=torch.tensor([0]))
    out = vip_loss(only_a, targets)
    assert int(out["views"]) == 1  # view 1 has targets but no query
    view0 = ViewTargets(targets.superpoint_visibility, targets.masks[:1], targets.classes[:1], targets.views[:1],
                        targets.instance_ids[:1])
    assert out["loss"].item() == pytest.approx(vip_loss(only_a, view0)["loss"].item())
    faint = ViewTargets(torch.tensor([[1.0, 0.2, 0, 0], [0, 0, 1, 1]]), torch.tensor([[0.0, 1, 0, 0]]),
                        torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))  # a target only on a faint superpoint
    assert int(vip_loss(outputs, faint)["views"]) == 1
    assert int(vip_loss(outputs, faint, VIPLossConfig(min_visible=0.5))["views"]) == 0  # empty once truncated
    nothing = ViewTargets(targets.superpoint_visibility, torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64),
                          torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.int64))  # an all-zero mask
    assert int(vip_loss(outputs, nothing, VIPLossConfig(vip=False))["views"]) == 0
    out = vip_loss(outputs, nothing)
    out["loss"].backward()
    assert out["loss"].item() == 0.0 and int(out["views"]) == 0
    assert outputs["mask_logits"].grad is not None and not outputs["mask_logits"].grad.any()


def test_max_views_subsamples_with_the_generator():
    outputs, targets = _two_views()
    config = VIPLossConfig(max_views=1)
    with pytest.raises(Sem3RError, match="generator"):
        vip_loss(outputs, targets, config)
    runs = [vip_loss(outputs, targets, config, np.random.default_rng(seed)) for seed in (5, 5)]
    assert int(runs[0]["views"]) == 1 and runs[0]["loss"].item() == runs[1]["loss"].item()
    per_view = {vip_loss(outputs, targets, config, np.random.default_rng(seed))["loss"].item() for seed in range(20)}
    assert len(per_view) == 2  # both views get drawn
    assert vip_loss(outputs, targets)["loss"].item() == pytest.approx(sum(per_view) / 2, rel=1e-6)


def test_bad_input():
    outputs, targets = _two_views()
    with pytest.raises(Sem3RError, match="mask_logits"):
        vip_loss(dict(outputs, mask_logits=torch.zeros(2, 5)), targets)
    with pytest.raises(Sem3RError, match="aux"):
        vip_loss(dict(outputs, aux=[{"mask_logits": torch.zeros(2, 4), "class_logits": torch.zeros(2, 3)}]), targets)
    with pytest.raises(Sem3RError, match="out of range"):
        vip_loss(dict(outputs, class_logits=torch.zeros(2, 1)), targets)
    with pytest.raises(Sem3RError, match="query_superpoints"):
        vip_loss(dict(outputs, query_superpoints=torch.tensor([0, 4])), targets)
    with pytest.raises(Sem3RError, match="lack"):
        vip_loss({"mask_logits": outputs["mask_logits"]}, targets)
    with pytest.raises(Sem3RError, match="min_visible"):
        vip_loss(outputs, targets, VIPLossConfig(min_visible=1.5))
    with pytest.raises(Sem3RError, match="unknown"):
        VIPLossConfig.from_dict({"vip_weight": 1})
    with pytest.raises(Sem3RError, match="target masks"):
        ViewTargets(torch.ones(2, 4), torch.ones(1, 3), torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(Sem3RError, match=r"\[0, 1\]"):
        ViewTargets(torch.ones(2, 4), 2 * torch.ones(1, 4), torch.tensor([0]), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(Sem3RError, match="views"):
        ViewTargets(torch.ones(2, 4), torch.ones(1, 4), torch.tensor([0]), torch.tensor([2]), torch.tensor([0]))


def test_build_view_targets_bad_input():
    superpoints, seen = np.array([0, 0, 1]), np.ones((2, 3), dtype=bool)
    labels = np.array([[0, 0, 1], [0, -1, -1]], dtype=np.int32)
    classes = [{0: 1, 1: 2}, {0: 0}]
    with pytest.raises(Sem3RError, match="seen"):
        build_view_targets(labels, seen[:, :2], superpoints, 2, classes)
    with pytest.raises(Sem3RError, match="superpoint ids"):
        build_view_targets(labels, seen, np.array([0, 0, 2]), 2, classes)
    with pytest.raises(Sem3RError, match="view_classes must be -1 or in"):
        build_view_targets(labels, seen, superpoints, 2, classes, num_classes=2)
    with pytest.raises(Sem3RError, match="no entry"):
        build_view_targets(labels, seen, superpoints, 2, np.array([[1], [0]]))
    with pytest.raises(Sem3RError, match="not seen in view 1"):
        build_view_targets(labels, np.array([[1, 1, 1], [0, 1, 1]], dtype=bool), superpoints, 2, classes)
    with pytest.raises(Sem3RError, match="views"):
        build_view_targets(labels, seen, superpoints, 2, [{0: 1}])


def test_matching_config_is_shared():
    assert isinstance(VIPLossConfig(), MatchingConfig)
    cfg = VIPLossConfig.from_dict(VIPLossConfig(vip=False, max_views=3).to_dict())
    assert cfg.vip is False and cfg.max_views == 3
