"""Felzenszwalb-Huttenlocher with anchored nodes: non-anchored nodes join one component, never bridge two."""

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.geometry.felzenszwalb import felzenszwalb_segment


def _chain(n):
    return np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)


def test_a_non_anchored_node_joins_one_side_but_does_not_bridge_two_anchored_components():
    # 0 - 1 - 2 | 3 (no anchor) | 4 - 5 - 6, all edges free: plain FH merges everything.
    edges, weights = _chain(7), np.zeros(6)
    assert felzenszwalb_segment(7, edges, weights, k=1.0).tolist() == [0] * 7
    anchored = np.array([True, True, True, False, True, True, True])
    labels = felzenszwalb_segment(7, edges, weights, k=1.0, anchored=anchored).tolist()
    assert labels[:3] == [0, 0, 0] and labels[4:] == [1, 1, 1] and labels[3] in (0, 1)
    # An edge between two anchored nodes still merges them.
    extra = np.concatenate([edges, [[2, 4]]])
    assert felzenszwalb_segment(7, extra, np.zeros(7), k=1.0, anchored=anchored).tolist() == [0] * 7


def test_non_anchored_nodes_merge_among_themselves_and_anchored_none_is_plain_fh():
    edges, weights = _chain(5), np.array([0.0, 0.0, 5.0, 0.0])
    nothing = np.zeros(5, bool)
    assert felzenszwalb_segment(5, edges, weights, k=1.0, anchored=nothing).tolist() == [0, 0, 0, 1, 1]
    everything = np.ones(5, bool)
    np.testing.assert_array_equal(felzenszwalb_segment(5, edges, weights, k=1.0, anchored=everything),
                                  felzenszwalb_segment(5, edges, weights, k=1.0))


def test_min_size_absorbs_a_small_component_through_a_non_anchored_node_but_never_joins_two_large_ones():
    # 0 1 | 2 (no anchor) | 3 4 5 6 7 8: heavy edges around node 2
    edges = _chain(9)
    weights = np.array([0.0, 9.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    anchored = np.array([True, True, False, True, True, True, True, True, True])
    assert felzenszwalb_segment(9, edges, weights, k=0.0, anchored=anchored).tolist() == [0, 0, 1, 2, 2, 2, 2, 2, 2]
    # min_size 4: the pair {0, 1} (with node 2) is small and is absorbed through node 2 by the large side
    assert felzenszwalb_segment(9, edges, weights, k=0.0, min_size=4, anchored=anchored).tolist() == [0] * 9
    # k = 60 pays for the heavy edges: plain FH bridges both sides through node 2; with anchors node 2
    # joins one side, and min_size 2 (nothing small is left) does not bridge either.
    assert felzenszwalb_segment(9, edges, weights, k=60.0, min_size=2).tolist() == [0] * 9
    labels = felzenszwalb_segment(9, edges, weights, k=60.0, min_size=2, anchored=anchored).tolist()
    assert labels[0] == labels[1] != labels[3] and labels[2] in (labels[0], labels[3])


def test_anchored_must_match_the_nodes():
    with pytest.raises(Sem3RError, match="anchored"):
        felzenszwalb_segment(3, _chain(3), np.zeros(2), k=1.0, anchored=np.ones(2, bool))

