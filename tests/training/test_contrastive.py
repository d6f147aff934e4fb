"""IGGT's multi-view contrastive loss and its instance-balanced pixel sampling."""

import math

import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.training import (
    ContrastiveLossConfig,
    instance_contrastive_loss,
    sample_instance_pixels,
)

ALL = ContrastiveLossConfig(num_samples=64, min_pixels=1)  # more samples than pixels: every labelled pixel


def _tiny_example():
    """Two views of 1 x 3 pixels; ids 0, 0, 1, 1 and two unlabelled pixels; 2-dim features."""
    features = torch.tensor([
        [[1.0, 0.0], [0.6, 0.8], [0.3, -0.2]],     # view 0: id 0, id 0, unlabelled
        [[0.0, 1.0], [-1.0, 0.0], [0.9, 0.1]],     # view 1: id 1, id 1, unlabelled
    ]).reshape(1, 2, 1, 3, 2)
    ids = torch.tensor([[0, 0, -1], [1, 1, -1]]).reshape(1, 2, 1, 3)
    return features, ids


def test_hand_computed_loss():
    features, ids = _tiny_example()
    # same pairs: d^2(a, b) = 0.4^2 + 0.8^2 = 0.8, d^2(c, d) = 2, each counted both ways
    pull = (0.8 + 2.0) / 2
    # different pairs (8 ordered): only b-c is closer than the margin, d^2 = 0.6^2 + 0.2^2 = 0.4
    push = 2 * (1 - math.sqrt(0.4)) ** 2 / 8
    loss, stats = instance_contrastive_loss(5.0 * features, ids, ALL)  # scaled: re-normalised inside
    assert stats["pull"].item() == pytest.approx(pull, abs=1e-5)
    assert stats["push"].item() == pytest.approx(push, abs=1e-5)
    assert loss.item() == pytest.approx(pull + push, abs=1e-5)
    assert stats["instances"].item() == 2
    assert stats["same_distance"].item() == pytest.approx((math.sqrt(0.8) + math.sqrt(2.0)) / 2, abs=1e-5)
    weighted = ContrastiveLossConfig(num_samples=64, min_pixels=1, pull_weight=2.0, push_weight=3.0)
    assert instance_contrastive_loss(features, ids, weighted)[0].item() == pytest.approx(2 * pull + 3 * push, abs=1e-5)
    narrow = ContrastiveLossConfig(num_samples=64, min_pixels=1, margin=0.5)  # b-c at 0.63 > 0.5: no push
    assert instance_contrastive_loss(features, ids, narrow)[1]["push"].item() == pytest.approx(0.0, abs=1e-7)


def test_unlabelled_pixels_are_ignored():
    features, ids = _tiny_example()
    loss = instance_contrastive_loss(features, ids, ALL, torch.Generator().manual_seed(0))[0]
    for value in ([-0.5, 7.0], [float("nan"), 1.0]):  # only the id -1 pixels change
        changed = features.clone()
        changed[:, :, :, 2] = torch.tensor(value)
        assert torch.equal(instance_contrastive_loss(changed, ids, ALL, torch.Generator().manual_seed(0))[0], loss)
    for bad_ids in (torch.full_like(ids, -1), torch.where(ids >= 0, 4, -1)):  # no labels / one instance
        f = features.clone().requires_grad_(True)
        zero, stats = instance_contrastive_loss(f, bad_ids, ALL)
        zero.backward()
        assert zero.item() == 0.0 and f.grad is not None and not f.grad.any()
        assert stats["instances"].item() == 0.0


def test_zero_for_identical_features_per_instance_beyond_the_margin():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(-1, 3, (2, 3, 6, 7), generator=g)
    codes = torch.eye(8)[[0, 3, 5]]  # orthonormal: different instances at distance sqrt(2) > 1
    features = torch.where((ids >= 0)[..., None], codes[ids.clamp_min(0)], torch.randn(2, 3, 6, 7, 8, generator=g))
    loss, stats = instance_contrastive_loss(features, ids, ContrastiveLossConfig(num_samples=50), g)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert stats["different_distance"].item() == pytest.approx(math.sqrt(2), abs=1e-5)
    assert stats["instances"].item() == 3


def test_a_gradient_step_pulls_same_ids_together_and_pushes_others_apart():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(-1, 4, (2, 3, 5, 5), generator=g)
    features = torch.randn(2, 3, 5, 5, 8, generator=g).requires_grad_(True)
    cfg = ContrastiveLossConfig(num_samples=100, min_pixels=1)
    loss, before = instance_contrastive_loss(features, ids, cfg)
    loss.backward()
    with torch.no_grad():
        features -= 0.5 * features.grad
    after_loss, after = instance_contrastive_loss(features, ids, cfg)
    assert after_loss.item() < loss.item()
    assert after["same_distance"] < before["same_distance"]
    assert after["different_distance"] > before["different_distance"]
    assert after["push"] < before["push"] and after["pull"] < before["pull"]


def test_invariant_to_relabelling_ids():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(-1, 5, (2, 2, 8, 8), generator=g)
    features = torch.randn(2, 2, 8, 8, 8, generator=g)
    relabel = torch.tensor([17, 3, 250, 0, 9])
    other = torch.where(ids >= 0, relabel[ids.clamp_min(0)], -1)
    cfg = ContrastiveLossConfig(num_samples=40)
    a = instance_contrastive_loss(features, ids, cfg, torch.Generator().manual_seed(5))
    b = instance_contrastive_loss(features, other, cfg, torch.Generator().manual_seed(5))
    assert torch.allclose(a[0], b[0]) and all(torch.allclose(a[1][k], b[1][k]) for k in a[1])


def test_deterministic_with_a_seeded_generator():
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(-1, 6, (2, 3, 8, 8), generator=g)
    features = torch.randn(2, 3, 8, 8, 8, generator=g)
    cfg = ContrastiveLossConfig(num_samples=30)
    runs = [instance_contrastive_loss(features, ids, cfg, torch.Generator().manual_seed(s))[0] for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    first = sample_instance_pixels(ids.flatten(1), 30, generator=torch.Generator().manual_seed(7))[0]
    again = sample_instance_pixels(ids.flatten(1), 30, generator=torch.Generator().manual_seed(7))[0]
    assert torch.equal(first, again)


def test_sampling_is_balanced_over_instances_and_skips_tiny_and_unlabelled_pixels():
    row = torch.cat([torch.zeros(1000), torch.ones(50), torch.full((3,), 2), torch.full((500,), -1)]).long()
    ids = row.expand(400, -1)  # 400 independent draws in one call
    index, valid = sample_instance_pixels(ids, 20, min_pixels=4, generator=torch.Generator().manual_seed(0))
    assert valid.all()
    drawn = ids.gather(1, index)
    assert (drawn >= 0).all() and not (drawn == 2).any()  # unlabelled and the 3-pixel instance never drawn
    assert len({tuple(sorted(r)) for r in index[:5].tolist()}) == 5  # draws differ between rows
    assert all(len(set(r)) == 20 for r in index.tolist())  # without replacement
    small = (drawn == 1).float().mean().item()
    assert 0.4 < small < 0.6  # each instance gets about half (uniform pixel sampling: 50/1050 = 5%)
    few, ok = sample_instance_pixels(ids[:1], 1200, min_pixels=4)  # fewer eligible pixels than asked
    assert ok.sum().item() == 1050 and (ids[0, few[ok]] >= 0).all()


def test_bad_input_raises():
    features, ids = _tiny_example()
    with pytest.raises(Sem3RError, match="instance_ids"):
        instance_contrastive_loss(features, ids[:, :1], ALL)
    with pytest.raises(Sem3RError, match="integer"):
        instance_contrastive_loss(features, ids.float(), ALL)
    with pytest.raises(Sem3RError, match="margin"):
        ContrastiveLossConfig.from_dict({"margin": 3.0})
    with pytest.raises(Sem3RError, match="unknown contrastive loss config keys"):
        ContrastiveLossConfig.from_dict({"samples": 3})
    with pytest.raises(Sem3RError, match="num_samples"):
        ContrastiveLossConfig.from_dict({"num_samples": 1})
