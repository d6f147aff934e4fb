"""Geometric object proposals: a convex object on a floor is one proposal, two touching boxes are two."""

import dataclasses

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.instances import segment
from sem3r.instances.proposals import ProposalConfig, geometric_proposals, group_objects
from sem3r.instances.structure import detect_structure
from sem3r.superpoints.graph import edges_from_neighbours, knn_neighbours

STEP = 0.02


def _face(lo, hi, axis, value, normal):
    """Grid points of an axis-aligned rectangle at ``coord[axis] = value`` with a constant normal."""
    free = [i for i in range(3) if i != axis]
    a = np.arange(lo[0], hi[0] + 1e-9, STEP)
    b = np.arange(lo[1], hi[1] + 1e-9, STEP)
    aa, bb = np.meshgrid(a, b)
    pts = np.zeros((aa.size, 3))
    pts[:, free[0]], pts[:, free[1]], pts[:, axis] = aa.ravel(), bb.ravel(), value
    return pts, np.tile(normal, (len(pts), 1))


def box(x0, y0, sx, sy, h):
    """Visible faces of a box standing on the floor: top and the four sides (outward normals)."""
    faces = [_face((x0, y0), (x0 + sx, y0 + sy), 2, h, [0, 0, 1.0]),
             _face((y0, STEP), (y0 + sy, h - STEP), 0, x0, [-1.0, 0, 0]),
             _face((y0, STEP), (y0 + sy, h - STEP), 0, x0 + sx, [1.0, 0, 0]),
             _face((x0 + STEP, STEP), (x0 + sx - STEP, h - STEP), 1, y0, [0, -1.0, 0]),
             _face((x0 + STEP, STEP), (x0 + sx - STEP, h - STEP), 1, y0 + sy, [0, 1.0, 0])]
    return np.concatenate([f[0] for f in faces]), np.concatenate([f[1] for f in faces])


def scene_cloud(boxes):
    """Floor (minus the boxes' footprints) plus the boxes; returns points, normals, object id (-1 floor)."""
    floor, fn = _face((0, 0), (3, 3), 2, 0.0, [0, 0, 1.0])
    under = np.zeros(len(floor), bool)
    parts, ids = [], []
    for k, (x0, y0, sx, sy, h) in enumerate(boxes):
        under |= (floor[:, 0] > x0) & (floor[:, 0] < x0 + sx) & (floor[:, 1] > y0) & (floor[:, 1] < y0 + sy)
        parts.append(box(x0, y0, sx, sy, h))
        ids.append(np.full(len(parts[-1][0]), k))
    pts = np.concatenate([floor[~under]] + [p for p, _ in parts])
    nrm = np.concatenate([fn[~under]] + [n for _, n in parts])
    return pts, nrm, np.concatenate([np.full(int((~under).sum()), -1)] + ids)


CAMS = np.array([[[1.0, 0, 0, -1.5], [0, 0, -1, 2.0], [0, 1, 0, 1.0]]])  # at (1.5, -1, 2), level, looking +y


def proposals(boxes, **options):
    pts, nrm, ids = scene_cloud(boxes)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    _, inst, scores, _ = group_objects(pts, nrm, edges, structure, ProposalConfig(**options))
    return inst, scores, ids, structure


def _matches(inst, ids, k):
    """The proposal covering object ``k`` and its IoU."""
    best = np.bincount(inst[(ids == k) & (inst >= 0)]).argmax()
    inter = ((inst == best) & (ids == k)).sum()
    return best, inter / ((inst == best) | (ids == k)).sum()


def test_convex_object_on_a_floor_is_one_proposal():
    inst, scores, ids, structure = proposals([(1.0, 1.0, 0.5, 0.4, 0.6)])
    assert structure.up_source == "floor"
    assert len(scores) == 1
    assert _matches(inst, ids, 0)[1] > 0.95
    assert (inst[ids == -1] == -1).all()  # the floor is structure, never an instance


def test_two_touching_boxes_are_two_proposals():
    inst, scores, ids, _ = proposals([(1.0, 1.0, 0.5, 0.5, 0.8), (1.5, 1.0, 0.5, 0.5, 0.45)])
    (a, iou_a), (b, iou_b) = _matches(inst, ids, 0), _matches(inst, ids, 1)
    assert a != b and iou_a > 0.9 and iou_b > 0.9
    assert len(scores) == 2


def test_concave_join_is_the_cut_not_a_tolerance_artefact():
    # with every join counted as mergeable the touching boxes become one: the test above can fail
    inst, scores, ids, _ = proposals([(1.0, 1.0, 0.5, 0.5, 0.8), (1.5, 1.0, 0.5, 0.5, 0.45)],
                                     convex_tolerance=-2.0)
    assert len(scores) == 1


def test_small_fragments_are_filtered():
    inst, scores, ids, _ = proposals([(1.0, 1.0, 0.5, 0.4, 0.6), (2.2, 2.2, 0.04, 0.04, 0.04)], min_points=40)
    assert len(scores) == 1


@pytest.fixture(scope="module")
def room():
    return generate_scene(SynthConfig(seed=0, num_views=3, height=96, width=128, num_points=0)).scene


def _bare(scene):
    return dataclasses.replace(scene, instance_masks=None, semantic_masks=None)


def test_geometric_method_writes_structure_and_up(room):
    out = segment(_bare(room), "geometric")
    assert out.metadata["up"] == pytest.approx([0, 0, 1], abs=1e-3)
    assert out.metadata["structure"]["up_source"] == "floor"
    assert out.metadata["class_names"] == ["floor", "wall", "ceiling"]
    # structure pixels carry a structure class and no instance, as in the synthetic ground truth
    struct = out.semantic_masks >= 0
    assert (out.instance_masks[struct] == -1).all()
    gt_struct = (room.semantic_masks >= 0) & (room.semantic_masks < 3) & (room.depth > 0)
    assert (struct & gt_struct).sum() / gt_struct.sum() > 0.9  # flat objects carved out of walls are not structure
    assert 5 <= len(out.instances) <= 60


def test_flat_object_on_a_wall_is_found_by_its_colour():
    # a wall with a 0.6 x 0.4 m poster flush on it: no geometry tells them apart, the colour does
    pts, nrm, ids = scene_cloud([(1.0, 1.0, 0.5, 0.4, 0.6)])
    wall, wn = _face((0, 0), (3, 2.4), 1, 3.0, [0, -1.0, 0])
    poster = (np.abs(wall[:, 0] - 2.0) < 0.3) & (np.abs(wall[:, 2] - 1.5) < 0.2)
    rng = np.random.default_rng(0)
    colors = np.r_[np.full((len(pts), 3), 120), rng.normal([180, 170, 160], 8, (len(wall), 3))]
    colors[len(pts):][poster] = rng.normal([40, 120, 60], 8, (int(poster.sum()), 3))
    pts, nrm = np.r_[pts, wall], np.r_[nrm, wn]
    structure = detect_structure(pts, nrm, CAMS)
    assert "wall" in structure.kinds
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    _, inst, scores, flat = group_objects(pts, nrm, edges, structure, ProposalConfig(), colors=np.clip(colors, 0, 255))
    assert flat.sum() == 1 and len(scores) == 2
    k = np.flatnonzero(flat)[0]
    on_wall = np.r_[np.zeros(len(ids), bool), poster]
    assert ((inst == k) & on_wall).sum() / ((inst == k) | on_wall).sum() > 0.8
    # without colours, the poster is part of the wall
    _, inst, scores, flat = group_objects(pts, nrm, edges, structure, ProposalConfig())
    assert not flat.any() and len(scores) == 1


def test_all_structure_scene_gives_zero_proposals():
    empty_room = generate_scene(SynthConfig(seed=0, num_views=2, height=64, width=80, num_points=0, categories=())).scene
    out = segment(_bare(empty_room), "geometric")
    assert len(out.instances) == 0 and (out.instance_masks == -1).all()
    assert "no object proposals" in out.metadata["structure"]["note"]


def test_no_geometry_is_a_clear_error(room):
    with pytest.raises(Sem3RError, match="no valid reconstructed pixel"):
        geometric_proposals(dataclasses.replace(room, depth=np.zeros_like(room.depth)))


def _stick(x0, y0, s, z0, z1):
    """The four sides of a vertical square stick ``s`` wide from height ``z0`` to ``z1`` (a table leg)."""
    faces = [_face((y0, z0), (y0 + s, z1), 0, x0, [-1.0, 0, 0]), _face((y0, z0), (y0 + s, z1), 0, x0 + s, [1.0, 0, 0]),
             _face((x0, z0), (x0 + s, z1), 1, y0, [0, -1.0, 0]), _face((x0, z0), (x0 + s, z1), 1, y0 + s, [0, 1.0, 0])]
    return np.concatenate([f[0] for f in faces]), np.concatenate([f[1] for f in faces])


def table_cloud(broken: bool):
    """A floor, a table top (1.0 x 0.6 m slab at 0.72-0.76 m) and four legs that stop 6 cm under it
    (hidden joins: the legs and the top never touch in the point graph); with ``broken`` one leg has
    a 6 cm hole halfway up, as missing depth leaves on a thin leg."""
    floor, fn = _face((0, 0), (3, 3), 2, 0.0, [0, 0, 1.0])
    top = [_face((1.0, 1.0), (2.0, 1.6), 2, 0.76, [0, 0, 1.0]),
           _face((1.0, 0.72), (2.0, 0.76), 1, 1.0, [0, -1.0, 0]), _face((1.0, 0.72), (2.0, 0.76), 1, 1.6, [0, 1.0, 0]),
           _face((1.0, 0.72), (1.6, 0.76), 0, 1.0, [-1.0, 0, 0]), _face((1.0, 0.72), (1.6, 0.76), 0, 2.0, [1.0, 0, 0])]
    parts = [(floor, fn, -1)] + [(p, n, 0) for p, n in top]
    for k, (x, y) in enumerate([(1.04, 1.04), (1.9, 1.04), (1.04, 1.5), (1.9, 1.5)]):
        if broken and k == 0:
            parts += [(*_stick(x, y, 0.06, 0.02, 0.32), 0), (*_stick(x, y, 0.06, 0.38, 0.66), 0)]
        else:
            parts.append((*_stick(x, y, 0.06, 0.02, 0.66), 0))
    pts = np.concatenate([p for p, _, _ in parts])
    nrm = np.concatenate([n for _, n, _ in parts])
    return pts, nrm, np.concatenate([np.full(len(p), k) for p, _, k in parts])


@pytest.mark.parametrize("broken", [False, True])
def test_table_legs_join_the_top_they_carry(broken):
    pts, nrm, ids = table_cloud(broken)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    _, inst, scores, _ = group_objects(pts, nrm, edges, structure, ProposalConfig(min_points=10))
    assert len(scores) == 1
    assert _matches(inst, ids, 0)[1] > 0.95


def test_a_speck_of_noise_under_a_table_is_no_leg():
    from sem3r.instances.proposals import _merge_legs
    from sem3r.instances.structure import ground_basis

    # the table (legs and top, component 0) and one noise point 3 cm under its top (component 1):
    # a single point passes the aspect test; joined, it would grow the table's box
    pts, nrm, ids = table_cloud(False)
    structure = detect_structure(pts, nrm, CAMS)
    on = ids == 0
    speck = np.array([[1.5, 1.3, 0.69]])
    ground = np.r_[pts[on], speck] @ ground_basis(structure.up)
    sp_ids = np.r_[np.zeros(int(on.sum()), np.int64), [1]]
    component = np.array([0, 1])
    assert _merge_legs(ground, sp_ids, component, structure, ProposalConfig()).tolist() == [0, 1]
    assert _merge_legs(ground, sp_ids, component, structure, ProposalConfig(leg_min_height=0)).tolist() == [0, 0]


@pytest.mark.parametrize("options, expected", [({"leg_rounds": 1, "leg_floating": False}, 3), ({"leg_rounds": 1}, 2),
                                              ({"leg_floating": False}, 3)])
def test_a_broken_leg_needs_the_repeated_and_floating_leg_test(options, expected):
    # floor-standing legs only, both halves of the broken leg stay apart; one round, the lower half
    # does not reach the table yet (the test above can fail)
    pts, nrm, ids = table_cloud(True)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    _, inst, scores, _ = group_objects(pts, nrm, edges, structure, ProposalConfig(min_points=10, **options))
    assert len(scores) == expected



def test_points_without_a_proposal_go_back_to_the_object_their_2d_mask_is_mostly():
    from sem3r.instances.proposals import _claim_by_masks

    # 5: mostly object 0; 7: all without a proposal; 9: mostly flat object 1 (a rug's border)
    instances = np.array([0, 0, 0, -1, -1, -1, -1, 1, 1, -1, -1])
    point_ids = np.array([5, 5, 5, 5, 7, 7, 7, 9, 9, 9, -1])
    out = _claim_by_masks(instances, point_ids, 0.5)
    assert out.tolist() == [0, 0, 0, 0, -1, -1, -1, 1, 1, 1, -1]
    assert _claim_by_masks(instances, point_ids, 0.9)[3] == -1  # 3 of 4 < 0.9
    assert _claim_by_masks(instances, point_ids, 0.7)[9] == -1  # 2 of 3 < 0.7


def test_patches_of_one_surface_merge_across_a_step_within_the_depth_noise():
    # a table top with a 2 cm step, as disparity quantisation leaves on a far surface: flat with the
    # scene's noise band at 4 m (2 mm/m^2 -> 3.2 cm), two pieces without it (the test can fail)
    floor, fn = _face((0, 0), (3, 3), 2, 0.0, [0, 0, 1.0])
    top, tn = _face((1.0, 1.0), (1.6, 1.4), 2, 0.6, [0, 0, 1.0])  # a bare table top, no sides to join through
    right = top[:, 0] >= 1.3  # a 2 cm step, then rising 10 degrees: its own superpoint, a concave join
    top[right, 2] += 0.02 + (top[right, 0] - 1.3) * np.tan(np.deg2rad(10))
    tn[right] = [-np.sin(np.deg2rad(10)), 0, np.cos(np.deg2rad(10))]
    pts, nrm = np.r_[floor, top], np.r_[fn, tn]
    structure = detect_structure(pts, nrm, CAMS)
    floor = structure.kinds.index("floor")
    structure.planes[floor] = dataclasses.replace(structure.planes[floor], noise=0.002)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    ranges = np.full(len(pts), 4.0)
    counts = []
    for bands in (1.0, 0.0):
        _, inst, scores, _ = group_objects(pts, nrm, edges, structure, ProposalConfig(flat_noise_bands=bands,
                                                                                      min_points=10), ranges=ranges)
        counts.append(len(scores))
    assert counts == [1, 2]


def test_a_back_panel_in_the_wall_noise_band_is_relief_and_joins_its_cabinet():
    # a wall at y = 2 seen from 4 m with 2 cm depth noise (band 6 cm); a cabinet's back panel 2 cm in
    # front of it: every panel point lies inside the band, their neighbourhood mean does not
    from sem3r.instances.proposals import _join_loose, separate_relief
    from sem3r.instances.structure import Structure
    from sem3r.geometry.planes import Plane

    rng = np.random.default_rng(0)
    wall, _ = _face((0, 0), (3, 2), 1, 2.0, [0, -1.0, 0])
    panel = (wall[:, 0] > 1.0) & (wall[:, 0] < 1.8) & (wall[:, 2] > 0.2) & (wall[:, 2] < 1.0)
    wall[:, 1] += rng.normal(0, 0.02, len(wall)) - 0.02 * panel
    front, _ = _face((1.0, 0.2), (1.8, 1.0), 1, 1.6, [0, -1.0, 0])  # the cabinet's front and two sides
    left, _ = _face((1.6, 0.2), (1.98, 1.0), 0, 1.0, [-1.0, 0, 0])
    right, _ = _face((1.6, 0.2), (1.98, 1.0), 0, 1.8, [1.0, 0, 0])
    pts = np.r_[wall, front, left, right]
    n = len(wall)
    plane = Plane(np.array([0, -1.0, 0]), 2.0, np.arange(n), 0.01, 0.06 / 16, 0.12)
    labels = np.r_[np.ones(n), -np.ones(len(pts) - n)].astype(np.int8)
    structure = Structure(np.array([0, 0, 1.0]), "given", labels, [plane], ["wall"], None, 0.0)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    ranges = np.full(len(pts), 4.0)
    assert np.all(np.abs(plane.signed_distance(wall[panel]).mean()) < plane.band(ranges[:1]))
    relief = separate_relief(pts, edges, structure, ProposalConfig(), ranges)
    assert relief[:n][panel].mean() > 0.8 and relief[:n][~panel].mean() < 0.05
    assert not separate_relief(pts, edges, structure, ProposalConfig(relief_sigmas=0), ranges).any()
    instances = np.r_[np.full(n, -1), np.zeros(len(pts) - n, np.int64)]
    out = _join_loose(instances, relief, edges, pts, 0.02, 0.8)
    assert (out[:n][panel] == 0).mean() > 0.8 and (out[:n][~panel] == 0).mean() < 0.05
    # a relief patch outside the cabinet's outline (a door beside it) stays structure
    door = np.zeros(len(pts), bool)
    door[:n] = (wall[:, 0] > 1.82) & (wall[:, 0] < 2.6)
    assert (_join_loose(instances, door, edges, pts, 0.02, 0.8)[door] == -1).all()


def test_a_dropped_fragment_inside_an_object_joins_it_one_outside_does_not():
    from sem3r.instances.proposals import _join_loose

    # an object's side face (x = 0, y, z in [0, 0.4]); a speck cut off its foot (inside its box) and a
    # noise speck on the floor beside it (outside), both touching it in the graph
    g = np.linspace(0, 0.4, 21)
    face = np.c_[np.zeros(21 * 21), np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)]
    foot = np.c_[np.zeros(3), [0.1, 0.12, 0.14], [0.0, 0.0, 0.0]]
    beside = np.c_[[-0.1, -0.12, -0.14], [0.2, 0.2, 0.2], [0.0, 0.0, 0.0]]
    pts = np.r_[face, foot, beside]
    edges = edges_from_neighbours(knn_neighbours(pts, 4)[1])
    n = len(face)
    edges = np.r_[edges, [[n, 5], [n + 3, 10 * 21]]]  # each speck touches the face
    instances = np.r_[np.zeros(n, np.int64), -np.ones(6, np.int64)]
    loose = instances < 0
    out = _join_loose(instances, loose, edges, pts, 0.02, 0.8)
    assert out[n:n + 3].tolist() == [0, 0, 0] and out[n + 3:].tolist() == [-1, -1, -1]
    assert (_join_loose(instances, np.zeros_like(loose), edges, pts, 0.02, 0.8)[n:] == -1).all()


def test_a_fragment_whose_2d_segment_spreads_beyond_it_ranks_below_a_whole_object():
    from sem3r.instances.proposals import mask_ownership

    # proposal 0: a table holding 8 of its segment's 10 points; 1: a fragment of the table holding the
    # other 2 (and its own 2-point segment); 2: a book holding its whole segment; 3: no lifted id
    instances = np.array([0] * 8 + [1] * 4 + [2] * 3 + [3] * 2)
    point_ids = np.array([7] * 8 + [7, 7, 9, 9] + [5] * 3 + [-1, -1])
    own = mask_ownership(instances, point_ids, 4)
    np.testing.assert_allclose(own, [0.8, (0.2 + 0.2 + 1 + 1) / 4, 1.0, 1.0])
    # end to end: a table whose 2D segment also covers twice as many floor points scores a third
    pts, nrm, ids = table_cloud(False)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    config = ProposalConfig(min_points=10, mask_claim=0.0)
    _, inst, plain, _ = group_objects(pts, nrm, edges, structure, config)
    assert len(plain) == 1
    point_ids = np.where(inst >= 0, 0, -1)
    point_ids[np.flatnonzero(ids == -1)[:2 * int((inst >= 0).sum())]] = 0
    _, inst2, scored, _ = group_objects(pts, nrm, edges, structure, config, point_ids=point_ids)
    _, _, unscored, _ = group_objects(pts, nrm, edges, structure, dataclasses.replace(config, mask_score=False),
                                      point_ids=point_ids)
    assert (inst2 == inst).all()
    np.testing.assert_allclose(unscored, plain)
    np.testing.assert_allclose(scored, plain / 3, rtol=1e-5)


@pytest.mark.parametrize("colours, split, expected", [((120, 120), 30.0, 1), ((200, 60), 30.0, 2), ((200, 60), 0.0, 1)])
def test_a_weakly_convex_crease_between_two_colours_splits(colours, split, expected):
    # a ridge of two 0.4 m patches sloping 12 degrees down either side (normals 24 degrees apart:
    # convexity 2 sin 12 = 0.42, weak, not flat) above a floor; two colours split it, one does not
    theta = np.deg2rad(12)
    g = np.linspace(0.02, 0.4, 20)
    u, v = (a.ravel() for a in np.meshgrid(g, np.linspace(1.0, 1.4, 21)))
    left = np.c_[1.0 - u * np.cos(theta), v, 0.6 - u * np.sin(theta)]
    right = np.c_[1.0 + u * np.cos(theta), v, 0.6 - u * np.sin(theta)]
    floor, fn = _face((0, 0), (2, 2.5), 2, 0.0, [0, 0, 1.0])
    pts = np.r_[floor, left, right]
    nrm = np.r_[fn, np.tile([-np.sin(theta), 0, np.cos(theta)], (len(left), 1)),
                np.tile([np.sin(theta), 0, np.cos(theta)], (len(right), 1))]
    colors = np.r_[np.full((len(floor), 3), 90), np.full((len(left), 3), colours[0]),
                   np.full((len(right), 3), colours[1])].astype(np.uint8)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    config = ProposalConfig(min_points=10, colour_split=split, flat_kinds=(), min_score=0.0)  # split joins score low
    _, inst, scores, _ = group_objects(pts, nrm, edges, structure, config, colors=colors)
    assert len(scores) == expected
    n = len(floor)
    assert (inst[n:] >= 0).all() and len(np.unique(inst[n:])) == expected


@pytest.mark.parametrize("colours, expected", [((120, 120), 1), ((200, 60), 2)])
def test_two_level_tops_side_by_side_split_by_colour(colours, expected):
    # two 0.4 m squares at one height, touching (a pillow's top level with its sofa's back): a flat
    # join; two colours split it, one does not
    floor, fn = _face((0, 0), (2, 2.5), 2, 0.0, [0, 0, 1.0])
    left, ln = _face((0.6, 1.0), (1.0, 1.4), 2, 0.6, [0, 0, 1.0])
    right, _ = _face((1.02, 1.0), (1.42, 1.4), 2, 0.6, [0, 0, 1.0])
    rn = np.tile([np.sin(np.deg2rad(10)), 0, np.cos(np.deg2rad(10))], (len(right), 1))  # noise: its own superpoint
    pts, nrm = np.r_[floor, left, right], np.r_[fn, ln, rn]
    colors = np.r_[np.full((len(floor), 3), 90), np.full((len(left), 3), colours[0]),
                   np.full((len(right), 3), colours[1])].astype(np.uint8)
    structure = detect_structure(pts, nrm, CAMS)
    edges = edges_from_neighbours(knn_neighbours(pts, 10)[1])
    config = ProposalConfig(min_points=10, flat_kinds=(), min_score=0.0)
    _, inst, scores, _ = group_objects(pts, nrm, edges, structure, config, colors=colors)
    n = len(floor)
    assert (inst[n:] >= 0).all() and len(np.unique(inst[n:])) == expected
    assert len(np.unique(group_objects(pts, nrm, edges, structure, dataclasses.replace(config, colour_split=0),
                                       colors=colors)[1][n:])) == 1


@pytest.mark.parametrize("book_colour, expected", [(150, [0, 0]), (30, [0, 1])])
def test_a_part_inside_a_shelf_joins_it_unless_its_colour_differs(book_colour, expected):
    from sem3r.instances.proposals import _merge_contained

    rng = np.random.default_rng(0)
    shelf = rng.uniform(0, 1, (200, 3)) * [0.8, 0.3, 1.8]  # superpoint 0: the shelf's frame
    part = rng.uniform(0, 1, (30, 3)) * [0.2, 0.2, 0.25] + [0.3, 0.05, 0.9]  # superpoint 1: inside it
    ground = np.r_[shelf, part]
    sp_ids = np.r_[np.zeros(200, np.int64), np.ones(30, np.int64)]
    colors = np.r_[np.full((200, 3), 150), np.full((30, 3), book_colour)].astype(np.uint8)
    out = _merge_contained(ground, sp_ids, np.array([0, 1]), np.array([0]), np.array([1]), ProposalConfig(), colors)
    assert out.tolist() == expected
    # without colours (or colour_split 0) the enclosed part always joins
    assert _merge_contained(ground, sp_ids, np.array([0, 1]), np.array([0]), np.array([1]), ProposalConfig()).tolist() == [0, 0]
    assert _merge_contained(ground, sp_ids, np.array([0, 1]), np.array([0]), np.array([1]),
                            ProposalConfig(colour_split=0), colors).tolist() == [0, 0]


def test_flat_pieces_with_one_lifted_id_are_one_object():
    from sem3r.instances.proposals import _merge_flat_by_mask

    # proposals 0 (geometric) and 1, 2, 3 (flat); 1 and 2 are one 2D segment (id 4), 3 another (id 6)
    instances = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, -1])
    point_ids = np.array([4, 4, 4, 4, 4, 4, 4, 6, 6, 4])
    scores = np.array([0.9, 0.55, 0.6, 0.5], np.float32)
    flat = np.array([False, True, True, True])
    out, new_scores, new_flat = _merge_flat_by_mask(instances, point_ids, scores, flat, 0.5)
    assert out.tolist() == [0, 0, 1, 1, 1, 1, 1, 2, 2, -1]  # the geometric proposal 0 is never merged
    assert new_scores.tolist() == pytest.approx([0.9, 0.6, 0.5]) and new_flat.tolist() == [False, True, True]
