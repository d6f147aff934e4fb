from dataclasses import dataclass

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.eval.tracking import tracking_metrics
from sem3r.geometry.camera import unproject_depth
from sem3r.instances.mask_sources import (
    MASK_SOURCES,
    GTMaskConfig,
    OversegmentConfig,
    assign_masks,
    get_mask_source,
    gt_masks,
    make_mask_config,
    register_mask_source,
    unregister_mask_source,
    view_masks,
)
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def room():
    return generate_scene(SynthConfig(seed=0, num_views=2, height=96, width=128, num_points=0)).scene


def _under_segmentation_error(segments, gt):
    """Corrected under-segmentation error (Neubert & Protzel): for every segment and every GT region
    it overlaps, the smaller of the part inside and the part outside, summed, over the pixel count.
    Unlabelled GT pixels (-1: walls, floor, ...) form one more region."""
    s = segments.reshape(-1).astype(np.int64)
    g = gt.reshape(-1).astype(np.int64) + 1
    keys, inside = np.unique(s * (g.max() + 1) + g, return_counts=True)
    outside = np.bincount(s)[keys // (g.max() + 1)] - inside
    return np.minimum(inside, outside).sum() / s.size


def test_builtin_sources_are_registered_and_unknown_names_list_them():
    assert list(MASK_SOURCES)[:3] == ["gt", "oversegment", "sam"]
    assert get_mask_source("gt").load()[1] is GTMaskConfig
    with pytest.raises(Sem3RError, match="known mask sources: gt, oversegment, sam"):
        get_mask_source("nope")
    with pytest.raises(Sem3RError, match="no option"):
        make_mask_config("gt", nope=1)


def test_registered_source_is_used_and_its_output_checked(room):
    @dataclass
    class HalvesConfig:
        bad_shape: bool = False

    def halves(scene, config):
        out = np.zeros((scene.num_views, scene.height, scene.width), np.int64)
        out[:, :, scene.width // 2 :] = 1
        return out[:, :-1] if config.bad_shape else out

    register_mask_source("halves", halves, HalvesConfig)
    try:
        masks = view_masks(room, "halves")
        assert masks.dtype == np.int32 and masks[:, :, -1].min() == 1 and masks[:, :, 0].max() == 0
        with pytest.raises(Sem3RError, match="returned"):
            view_masks(room, "halves", bad_shape=True)
        with pytest.raises(Sem3RError, match="already registered"):
            register_mask_source("halves", halves, HalvesConfig)
    finally:
        unregister_mask_source("halves")
    assert "halves" not in MASK_SOURCES


def test_gt_source_keeps_each_partition_and_permutes_ids_per_view(room):
    gt = room.instance_masks
    masks = view_masks(room, "gt", seed=3)
    np.testing.assert_array_equal(masks < 0, gt < 0)
    for view, mine in zip(gt, masks):
        labelled = view >= 0
        pairs = np.unique(np.stack([view[labelled], mine[labelled]], axis=1), axis=0)
        k = len(np.unique(view[labelled]))
        assert len(pairs) == k == len(np.unique(pairs[:, 1]))  # a bijection between the id sets
        assert sorted(pairs[:, 1].tolist()) == list(range(k))  # ids 0 .. k-1
    np.testing.assert_array_equal(masks, view_masks(room, "gt", seed=3))
    assert not np.array_equal(masks, view_masks(room, "gt", seed=4))
    # Cross-view identity is gone: taken as 3D-consistent ids they track badly.
    assert tracking_metrics(masks, gt)["t_miou"] < 0.5


def test_gt_source_needs_ground_truth():
    scene = Scene(images=np.zeros((1, 4, 4, 3), np.uint8), intrinsics=np.eye(3)[None], cam_from_world=np.eye(3, 4)[None])
    with pytest.raises(Sem3RError, match="instance_masks"):
        gt_masks(scene, GTMaskConfig())


def _step_scene(step):
    """A uniformly grey wall at 2 m with a 12 x 12 pixel square standing ``step`` metres in front."""
    h = w = 32
    depth = np.full((1, h, w), 2.0, np.float32)
    depth[0, 10:22, 8:20] = 2.0 - step
    K = np.array([[[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]]])
    return Scene(images=np.full((1, h, w, 3), 128, np.uint8), intrinsics=K, cam_from_world=np.eye(3, 4)[None], depth=depth)


def test_oversegment_never_crosses_a_depth_step_of_a_few_centimetres():
    scene = _step_scene(0.04)
    front = scene.depth[0] < 2.0
    segments = view_masks(scene, "oversegment", min_size=200)[0]  # min_size would merge everything it could
    for s in np.unique(segments):
        assert front[segments == s].all() or not front[segments == s].any()
    # Colour alone (uniform here) cannot see the step: one segment straddles it.
    colour_only = view_masks(scene, "oversegment", min_size=200, depth_weight=0, normal_weight=0, depth_cut=None)[0]
    assert len(np.unique(colour_only)) == 1


def test_oversegment_follows_instance_boundaries_on_a_synthetic_room(room):
    masks = view_masks(room, "oversegment")
    assert masks.min() == 0
    for view in masks:
        assert np.array_equal(np.unique(view), np.arange(view.max() + 1))  # every pixel, ids 0 .. L-1
    use = [_under_segmentation_error(m, g) for m, g in zip(masks, room.instance_masks)]
    colour = view_masks(room, "oversegment", depth_weight=0, normal_weight=0, depth_cut=None)
    use_colour = [_under_segmentation_error(m, g) for m, g in zip(colour, room.instance_masks)]
    # Measured 0.011 / 0.015 with geometry vs 0.057 / 0.042 from colour alone (k and min_size scaled
    # to 96 x 128: ~250 segments per view).
    assert max(use) < 0.025
    assert all(u * 2.5 < c for u, c in zip(use, use_colour))
    np.testing.assert_array_equal(masks, view_masks(room, "oversegment"))  # deterministic


def test_oversegment_reads_world_points_like_depth_and_survives_holes(room):
    depth = room.depth.copy()
    depth[:, :10, :12] = 0  # a hole without geometry
    depth[:, 40:60:3, 50:90:4] = 0  # scattered missing pixels
    with_depth = room.select_views(slice(None))
    with_depth.depth = depth
    points = unproject_depth(depth, room.intrinsics, room.cam_from_world)
    points[depth <= 0] = np.nan
    with_points = room.select_views(slice(None))
    with_points.depth, with_points.world_points = None, points
    a, b = view_masks(with_depth, "oversegment"), view_masks(with_points, "oversegment")
    np.testing.assert_array_equal(a, b)
    hole = depth == 0
    assert (a[~hole] >= 0).all()  # every pixel with geometry is labelled
    for v in range(room.num_views):  # every labelled segment holds pixels with geometry
        ids = np.unique(a[v][a[v] >= 0])
        assert np.array_equal(np.unique(a[v][~hole[v]]), ids) and np.array_equal(ids, np.arange(len(ids)))
    assert (a[:, 40:60:3, 50:90:4] >= 0).all()  # scattered holes join their neighbours


def _quadrant_scene(scattered=0.0, square_hole=True, seed=0):
    """Four flat colour quadrants on a tilted wall 2-2.3 m away, a black 12 x 12 square inside the red
    one; the square has no depth (``square_hole``) and ``scattered`` of all pixels lose their depth."""
    h, w = 48, 64
    img = np.zeros((1, h, w, 3), np.uint8)
    img[0, :24, :32], img[0, :24, 32:] = (200, 40, 40), (40, 200, 40)
    img[0, 24:, :32], img[0, 24:, 32:] = (40, 40, 200), (200, 200, 40)
    img[0, 6:18, 8:20] = (10, 10, 10)
    depth = np.repeat(2.0 + 0.005 * np.arange(w, dtype=np.float32)[None, None], h, axis=1)
    if square_hole:
        depth[0, 6:18, 8:20] = 0
    depth[0][np.random.default_rng(seed).random((h, w)) < scattered] = 0
    K = np.array([[[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]]])
    return Scene(images=img, intrinsics=K, cam_from_world=np.eye(3, 4)[None], depth=depth)


def test_oversegment_invalid_depth_never_creates_a_segment():
    square = np.zeros((48, 64), bool)
    square[6:18, 8:20] = True
    crisp = {"sigma": 0.0}  # unblurred colours: the expected partition is exactly the quadrants
    full = view_masks(_quadrant_scene(square_hole=False), "oversegment", **crisp)[0]
    assert len(np.unique(full)) == 5  # four quadrants and the black square
    big = view_masks(_quadrant_scene(), "oversegment", **crisp)[0]
    holes = _quadrant_scene(scattered=0.15)
    holey = view_masks(holes, "oversegment", **crisp)[0]
    # the large hole of its own colour is a segment without geometry: unlabelled, in both
    assert (big[square] == -1).all() and (holey[square] == -1).all()
    assert (big[~square] >= 0).all() and (holey[~square] >= 0).all()
    # the scattered holes (15 % of the pixels) add no segment and take their neighbours' ids
    assert len(np.unique(holey)) == len(np.unique(big)) == 5
    np.testing.assert_array_equal(holey, big)
    np.testing.assert_array_equal(big[~square], full[~square] - (full[~square] > full[square][0]))
    # With the default blur the 2-pixel colour ramps between the regions become segments of their
    # own, thin enough for the scattered holes to cut some in pieces (measured 29 segments against
    # 25); no hole makes a segment of its own (each would add one: ~460 here).
    blurred_big = view_masks(_quadrant_scene(), "oversegment")[0]
    blurred_holey = view_masks(holes, "oversegment")[0]
    assert len(np.unique(blurred_holey)) <= 1.25 * len(np.unique(blurred_big))
    assert (blurred_holey[square] == -1).all() and (blurred_holey[~square] >= 0).all()
    with_depth = holes.depth[0] > 0
    for s in np.unique(blurred_holey[blurred_holey >= 0]):
        assert (blurred_holey == s).sum() >= 16 and with_depth[blurred_holey == s].sum() >= 8


def _shadowed_step_scene(step=0.12):
    """:func:`_step_scene` with a Kinect-like shadow: a 3-pixel band without depth left of the square
    and a 1-pixel ring without depth around it, so no edge joins the two depths directly."""
    scene = _step_scene(step)
    depth = scene.depth.copy()
    depth[0, 9:23, 7:21] = np.where(np.pad(np.ones((12, 12), bool), 1), depth[0, 9:23, 7:21], 0)
    depth[0, 10:22, 5:8] = 0
    scene.depth = depth
    return scene


def test_oversegment_holes_never_bridge_a_depth_discontinuity():
    scene = _shadowed_step_scene()
    depth = scene.depth[0]
    front, back = (depth > 0) & (depth < 2.0), depth >= 2.0
    segments = view_masks(scene, "oversegment")[0]
    for s in np.unique(segments[segments >= 0]):
        assert not (front[segments == s].any() and back[segments == s].any())
    assert (segments >= 0).all()  # the shadow joined one side: nothing unlabelled
    assert len(np.unique(segments)) == 2


def _quantised_wall_scene(step=0.15, seed=0):
    """A uniformly grey wall slanting from 2 to 2.6 m with a box ``step`` m in front (rows 12-31,
    columns 20-43), its depth noisy (1.4e-3 z^2) and quantised in steps of 2.85e-3 z^2 like a Kinect
    v1's; 1 cm pixels at 2.4 m, about twice a Kinect's."""
    h, w = 48, 64
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    depth = 2.0 + 0.5 * u / w + 0.1 * v / h
    depth[12:32, 20:44] -= step
    rng = np.random.default_rng(seed)
    depth = depth + rng.normal(0.0, 1.4e-3 * depth**2)
    inverse_step = 2.85e-3
    depth = 1.0 / (np.round(1.0 / depth / inverse_step) * inverse_step)
    img = np.clip(128 + rng.normal(0, 2, (1, h, w, 3)), 0, 255).astype(np.uint8)
    K = np.array([[[240.0, 0, 31.5], [0, 240.0, 23.5], [0, 0, 1]]])
    return Scene(images=img, intrinsics=K, cam_from_world=np.eye(3, 4)[None], depth=depth[None].astype(np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oversegment_sees_through_depth_quantisation_and_still_cuts_real_steps(seed):
    scene = _quantised_wall_scene(seed=seed)
    box = np.zeros((48, 64), bool)
    box[12:32, 20:44] = True
    segments = view_masks(scene, "oversegment")[0]
    for s in np.unique(segments):  # the 15 cm step is cut, although the normals of single pixels are noise
        assert box[segments == s].all() or not box[segments == s].any()
    # Treating the staircase as geometry (no noise allowance, normals of single pixels) shatters the
    # wall: measured 51 - 61 segments against 16 - 20.
    raw = view_masks(scene, "oversegment", depth_noise=0.0, normal_sigma=0.0)[0]
    assert len(np.unique(raw)) > 2.5 * len(np.unique(segments))


def test_estimated_depth_noise_is_zero_on_exact_depth_and_about_a_disparity_step_on_kinect_depth(room):
    from sem3r.geometry.camera import camera_centers
    from sem3r.geometry.felzenszwalb import image_grid_edges
    from sem3r.instances.mask_sources import _grid_normals, _plane_offsets, estimate_depth_noise

    def estimate(scene):
        points, valid = scene.points()
        edges = image_grid_edges(scene.height, scene.width, 8)
        normals = _grid_normals(points[0], valid[0])
        return estimate_depth_noise(*_plane_offsets(points[0], normals, valid[0], camera_centers(scene.cam_from_world)[0], edges))

    assert estimate(room) < 1e-4
    assert 2e-3 < estimate(_quantised_wall_scene()) < 1.5e-2


def test_oversegment_scale_follows_the_image_size():
    config = OversegmentConfig()
    assert config.scale_for(256, 320) == (0.5, 32)  # the reference size: the former constants
    k, min_size = config.scale_for(480, 640)
    assert k == pytest.approx(0.5 * 480 * 640 / (256 * 320)) and min_size == 120
    assert config.scale_for(48, 64)[1] == 16  # never below 16 pixels
    assert OversegmentConfig(min_size=7).scale_for(480, 640)[1] == 7  # an explicit size wins
    assert OversegmentConfig(reference_pixels=None).scale_for(480, 640)[0] == 0.5
    # The same view rendered 4 times larger does not give many more segments (measured 250 at
    # 96 x 128, 191 at 384 x 512); with a fixed k = 0.5 and min_size = 32 it gives 83 and 520.
    counts = []
    for h, w in ((96, 128), (384, 512)):
        scene = generate_scene(SynthConfig(seed=0, num_views=1, height=h, width=w, num_points=0)).scene
        counts.append(len(np.unique(view_masks(scene, "oversegment"))))
    assert counts[1] < 1.5 * counts[0]


def test_oversegment_without_geometry_uses_colour():
    img = np.zeros((1, 8, 10, 3), np.uint8)
    img[0, :, 6:] = (200, 30, 30)
    scene = Scene(images=img, intrinsics=np.eye(3)[None], cam_from_world=np.eye(3, 4)[None])
    masks = view_masks(scene, "oversegment", min_size=4, sigma=0.0)
    np.testing.assert_array_equal(masks[0], np.broadcast_to((np.arange(10) >= 6).astype(np.int32), (8, 10)))


@pytest.mark.parametrize("option", [{"k": -1.0}, {"depth_cut": 0.0}, {"connectivity": 6}, {"sigma": -1.0}, {"depth_noise": -1.0},
                                    {"normal_sigma": -1.0}, {"min_size": -1}, {"min_fraction": 1.0}, {"reference_pixels": 0}])
def test_oversegment_rejects_bad_options(option):
    with pytest.raises(Sem3RError):
        make_mask_config("oversegment", OversegmentConfig(), **option)


def test_assign_masks_greedy_by_score_without_overlap():
    m = np.zeros((4, 2, 5), bool)
    m[0, :, :3] = True  # score 0.9: 6 px
    m[1, :, 1:] = True  # score 0.8: 8 px, 4 left after mask 0
    m[2, :, :3] = True  # score 0.7: duplicate of mask 0, nothing left
    m[3, 0, 4] = True  # score 0.95: 1 px
    out = assign_masks(m, np.array([0.9, 0.8, 0.7, 0.95]), min_area=2, min_keep_fraction=0.5)
    # mask 3 is too small (1 < 2); then 0 -> label 0, 1 keeps 4/8 >= 0.5 -> label 1; 2 has nothing left.
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 1], [0, 0, 0, 1, 1]])
    strict = assign_masks(m, np.array([0.9, 0.8, 0.7, 0.95]), min_area=2, min_keep_fraction=0.6)
    np.testing.assert_array_equal(strict, [[0, 0, 0, -1, -1], [0, 0, 0, -1, -1]])
    with pytest.raises(Sem3RError):
        assign_masks(m, np.ones(3))


def _tiny_sam(path):
    """A randomly initialised SAM small enough for CPU tests, with a processor resizing to 64 px."""
    transformers = pytest.importorskip("transformers", reason="the sam source needs transformers (sem3r[vlm])")
    import torch

    config = transformers.SamConfig(
        vision_config={"hidden_size": 32, "output_channels": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 8, "window_size": 4, "global_attn_indexes": (1,),
                       "num_pos_feats": 8, "mlp_dim": 64},
        prompt_encoder_config={"hidden_size": 16, "image_size": 64, "patch_size": 8, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": 16, "mlp_dim": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "iou_head_hidden_dim": 16},
    )
    torch.manual_seed(0)
    transformers.SamModel(config).eval().save_pretrained(path)
    image_processor = transformers.SamImageProcessor(
        size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16},
    )
    transformers.SamProcessor(image_processor=image_processor).save_pretrained(path)
    return str(path)


def test_sam_source_runs_a_saved_model_through_the_real_code_path(tmp_path):
    model = _tiny_sam(tmp_path / "sam")
    scene = generate_scene(SynthConfig(seed=2, num_views=1, height=40, width=48, num_points=0)).scene
    options = {"model": model, "points_per_side": 4, "points_per_batch": 10, "pred_iou_threshold": -1e9,
               "stability_threshold": 0.0, "min_area": 1, "min_keep_fraction": 0.0, "device": "cpu"}
    masks = view_masks(scene, "sam", **options)
    assert masks.shape == (1, 40, 48) and masks.dtype == np.int32
    ids = np.unique(masks[masks >= 0])
    assert len(ids) >= 2 and np.array_equal(ids, np.arange(len(ids)))  # greedy labels 0 .. K-1
    np.testing.assert_array_equal(masks, view_masks(scene, "sam", **options))
    # Thresholds above anything the model predicts leave every pixel unlabelled.
    none = view_masks(scene, "sam", **{**options, "pred_iou_threshold": 1e9})
    assert (none == -1).all()


def test_sam_source_reports_a_model_it_cannot_load(tmp_path):
    pytest.importorskip("transformers", reason="the sam source needs transformers (sem3r[vlm])")
    scene = generate_scene(SynthConfig(seed=2, num_views=1, height=16, width=16, num_points=0)).scene
    with pytest.raises(Sem3RError, match="cannot load the SAM model"):
        view_masks(scene, "sam", model=str(tmp_path / "missing"), device="cpu")


def test_gt_source_errors_emulate_a_real_2d_segmenter():
    from sem3r.data.synthetic import SynthConfig, generate_scene
    from sem3r.instances.mask_sources import GTMaskConfig, gt_masks

    scene = generate_scene(SynthConfig(seed=4, num_views=3, height=48, width=64, num_points=0)).scene
    gt = scene.instance_masks
    perfect = gt_masks(scene, GTMaskConfig(seed=1))
    assert np.array_equal(perfect >= 0, gt >= 0)
    # every view misses everything
    assert (gt_masks(scene, GTMaskConfig(miss_rate=1.0)) == -1).all()
    # small objects are dropped: what survives covers at least min_area pixels per view
    small = gt_masks(scene, GTMaskConfig(min_area=60))
    for v in range(3):
        ids, counts = np.unique(small[v][small[v] >= 0], return_counts=True)
        assert (counts >= 60).all()
        gt_ids, gt_counts = np.unique(gt[v][gt[v] >= 0], return_counts=True)
        assert len(ids) == int((gt_counts >= 60).sum())
    # merging everything that touches: each merged mask is a union of whole ground-truth objects,
    # and touching objects share a mask
    merged = gt_masks(scene, GTMaskConfig(merge_rate=1.0))
    assert np.array_equal(merged >= 0, gt >= 0)
    for v in range(3):
        labelled = gt[v] >= 0
        pairs = np.unique(np.stack([gt[v][labelled], merged[v][labelled]], 1), axis=0)
        assert len(np.unique(pairs[:, 0])) == len(pairs)                 # an object is never split
        right = (gt[v][:, :-1] >= 0) & (gt[v][:, 1:] >= 0)
        assert (merged[v][:, :-1][right] == merged[v][:, 1:][right]).all()
    with pytest.raises(Sem3RError, match="miss_rate"):
        gt_masks(scene, GTMaskConfig(miss_rate=2.0))
