"""Instance embeddings, labels, queries and semantic maps: hand-computed values, fake encoders, a tiny CLIP."""


import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.semantics.instance_semantics import (
    CropConfig,
    LabelSceneConfig,
    MaskPoolConfig,
    class_text_embeddings,
    crop_boxes,
    crop_embeddings,
    label_instances,
    label_scene,
    mask_pool,
    query_instances,
    semantic_maps,
    semantic_points,
)
from sem3r.semantics.text import HashTextEncoder


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class FakeEncoder:
    """Text features from a table ``text -> vector`` (or a hash of the text); dense features given."""

    def __init__(self, table=None, dim=8, dense=None):
        self.table, self.dim, self.dense = table or {}, dim, dense
        self.hash = HashTextEncoder(dim, seed=4)
        self.crops = []

    def text_features(self, texts):
        return np.stack([_unit(np.asarray(self.table[t], np.float64)) if t in self.table else self.hash.encode([t])[0]
                         for t in texts]).astype(np.float32)

    def dense_features(self, images):
        return self.dense

    def crop_features(self, crops):
        self.crops.extend(crops)
        return np.stack([_unit(np.append(c.reshape(-1, 3).mean(axis=0), 1.0)) for c in crops]).astype(np.float32)


# ------------------------------------------------------------------------------------ mask pooling
def test_mask_pool_is_the_mean_of_pixel_features_over_all_views():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((3, 6, 7, 5)).astype(np.float32)
    masks = rng.integers(-1, 4, (3, 6, 7)).astype(np.int32)
    masks[2][masks[2] == 3] = 0  # id 3 is absent from view 2
    ids = np.array([3, 0, 2])
    raw = mask_pool(features, masks, ids, MaskPoolConfig(normalize=False))
    for row, i in enumerate(ids):
        np.testing.assert_allclose(raw[row], features[masks == i].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(mask_pool(features, masks, ids), _unit(raw), atol=1e-5)
    by_view = mask_pool(features, masks, ids, MaskPoolConfig(weighting="view", normalize=False))
    for row, i in enumerate(ids):
        means = [features[v][masks[v] == i].mean(axis=0) for v in range(3) if (masks[v] == i).any()]
        np.testing.assert_allclose(by_view[row], np.mean(means, axis=0), atol=1e-5)
    assert np.abs(by_view - raw).max() > 1e-3  # the two weightings differ


def test_mask_pool_reads_coarse_features_at_each_pixel_cell():
    features = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)  # cells (0,0)=[0,1] (0,1)=[2,3] (1,0)=[4,5] (1,1)=[6,7]
    masks = np.full((1, 4, 4), -1, np.int32)
    masks[0, :2, :] = 5       # 2 px in cell (0,0) and 2 px in cell (0,1) per row
    masks[0, 3, 3] = 9        # a single pixel, smaller than a cell
    masks[0, 2, 0:3] = 7      # 2 px in cell (1,0), 1 px in cell (1,1)
    got = mask_pool(features, masks, np.array([5, 9, 7]), MaskPoolConfig(normalize=False))
    np.testing.assert_allclose(got, [[1, 2], [6, 7], [(2 * 4 + 6) / 3, (2 * 5 + 7) / 3]], atol=1e-6)


def test_mask_pool_bad_input():
    f = np.zeros((2, 3, 3, 4), np.float32)
    m = np.zeros((2, 3, 3), np.int32)
    with pytest.raises(Sem3RError, match="3 instance masks for 2 views"):
        mask_pool(f, np.zeros((3, 3, 3), np.int32), np.array([0]))
    bad = f.copy()
    bad[1, 0, 0, 2] = np.nan
    with pytest.raises(Sem3RError, match="NaN or inf in view 1"):
        mask_pool(bad, m, np.array([0]))
    with pytest.raises(Sem3RError, match="instance id 4 has no pixel"):
        mask_pool(f + 1, m, np.array([0, 4]))
    with pytest.raises(Sem3RError, match="duplicates"):
        mask_pool(f + 1, m, np.array([0, 0]))
    with pytest.raises(Sem3RError, match="non-negative"):
        mask_pool(f + 1, m, np.array([-1]))
    with pytest.raises(Sem3RError, match="is zero"):
        mask_pool(f, m, np.array([0]))
    with pytest.raises(Sem3RError, match="weighting"):
        mask_pool(f + 1, m, np.array([0]), MaskPoolConfig(weighting="area"))


# ------------------------------------------------------------------------------------------- crops
def test_crop_boxes_top_views_and_scales():
    masks = np.full((3, 10, 10), -1, np.int32)
    masks[0, 4:6, 4:6] = 1      # 4 px
    masks[1, 0:3, 0:4] = 1      # 12 px: the best view
    masks[2, 8:10, 9] = 1       # 2 px
    masks[2, 5, 5] = 2
    boxes = crop_boxes(masks, np.array([2, 1]), CropConfig(scales=(1.0, 2.0), top_views=2))
    assert boxes.tolist() == [
        [0, 2, 5, 6, 5, 6], [0, 2, 4, 7, 4, 7],  # 1 px box doubled about (5.5, 5.5), rounded outwards
        [1, 1, 0, 3, 0, 4], [1, 1, 0, 5, 0, 6],  # 3x4 box doubled about (1.5, 2), clipped at 0
        [1, 0, 4, 6, 4, 6], [1, 0, 3, 7, 3, 7],  # second best view
    ]
    with pytest.raises(Sem3RError, match="scales"):
        crop_boxes(masks, np.array([1]), CropConfig(scales=(0.5,)))
    with pytest.raises(Sem3RError, match="instance id 3 has no pixel"):
        crop_boxes(masks, np.array([3]))


def test_crop_embeddings_average_crops_over_scales_and_views():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
    masks = np.full((2, 12, 12), -1, np.int32)
    masks[0, 2:5, 3:8] = 0
    masks[1, 6:9, 6:8] = 0
    masks[1, 0:2, 0:2] = 1
    enc = FakeEncoder()
    config = CropConfig(scales=(1.0, 1.5), top_views=5)
    got = crop_embeddings(images, masks, np.array([0, 1]), enc, config)
    assert got.shape == (2, 4) and len(enc.crops) == (2 + 1) * 2
    boxes = crop_boxes(masks, np.array([0, 1]), config)
    crop_vec = enc.crop_features([images[v, y0:y1, x0:x1] for _, v, y0, y1, x0, x1 in boxes])
    np.testing.assert_allclose(got[0], _unit(crop_vec[boxes[:, 0] == 0].mean(axis=0)), atol=1e-6)
    np.testing.assert_allclose(got[1], _unit(crop_vec[boxes[:, 0] == 1].mean(axis=0)), atol=1e-6)
    with pytest.raises(Sem3RError, match="do not match the images"):
        crop_embeddings(images, masks[:, :10], np.array([0]), enc)


# ------------------------------------------------------------------------------- labels and queries
def test_label_instances_with_known_text_vectors():
    vocab = ["chair", "table", "lamp"]
    basis = np.eye(8)
    table = {t.format(name): basis[i] for i, name in enumerate(vocab) for t in ("a photo of a {}.", "a {} in a room.")}
    enc = FakeEncoder(table)
    emb = np.array([basis[2] + 0.1 * basis[0], basis[0], basis[1] + 0.2 * basis[5], 3 * basis[2]])
    labels, scores, probs = label_instances(emb, vocab, enc)
    assert labels == ["lamp", "chair", "table", "lamp"]
    assert probs.shape == (4, 3) and scores.shape == (4,)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(scores, probs.max(axis=1))
    cos = _unit(emb[0]) @ basis[:3].T  # hand softmax with logit scale 100
    np.testing.assert_allclose(probs[0], np.exp(100 * cos) / np.exp(100 * cos).sum(), rtol=1e-5, atol=1e-7)
    # template ensemble: the class vector is the normalised mean of its prompt vectors
    enc2 = FakeEncoder({"a photo of a chair.": basis[0], "a chair in a room.": basis[1]})
    np.testing.assert_allclose(class_text_embeddings(["chair"], enc2)[0], _unit(basis[0] + basis[1]), atol=1e-6)
    with pytest.raises(Sem3RError, match="empty"):
        label_instances(emb, [], enc)
    with pytest.raises(Sem3RError, match="dimension 5"):
        label_instances(np.ones((2, 5)), vocab, enc)
    with pytest.raises(Sem3RError, match="templates"):
        label_instances(emb, vocab, enc, templates=("no slot",))


def test_query_returns_the_matching_instance_first():
    rng = np.random.default_rng(2)
    emb = _unit(rng.standard_normal((6, 8)))
    ids = np.array([10, 11, 12, 13, 14, 15])
    enc = FakeEncoder({"the red chair": emb[3]})
    ranked = query_instances(emb, "the red chair", enc, ids)
    assert ranked[0][0] == 13 and ranked[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [i for i, _ in ranked] == ids[np.argsort(-(emb @ emb[3]))].tolist()
    assert np.all(np.diff([s for _, s in ranked]) <= 0)
    assert len(query_instances(emb, "the red chair", enc, ids, top_k=2)) == 2
    with pytest.raises(Sem3RError, match="5 instance ids for 6"):
        query_instances(emb, "the red chair", enc, ids[:5])
    with pytest.raises(Sem3RError, match="non-empty string"):
        query_instances(emb, "  ", enc, ids)


# ---------------------------------------------------------------------------------- semantic maps
def test_semantic_maps_and_points_hand_checked():
    masks = np.array([[[0, 0, -1], [2, 5, 5]], [[5, 2, 7], [-1, 0, 0]]], np.int32)
    ids = np.array([5, 0, 2, 7])
    labels = ["lamp", "chair", "", "chair"]
    vocab = ["chair", "table", "lamp"]
    expected = np.array([[[0, 0, -1], [-1, 2, 2]], [[2, -1, 0], [-1, 0, 0]]], np.int32)
    got = semantic_maps(masks, ids, labels, vocab)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(semantic_points(np.array([7, 9, -1, 5]), ids, labels, vocab), [0, -1, -1, 2])
    with pytest.raises(Sem3RError, match="label 'sofa' is not in the vocabulary"):
        semantic_maps(masks, ids, ["sofa", "chair", "", "chair"], vocab)
    with pytest.raises(Sem3RError, match="3 labels for 4"):
        semantic_maps(masks, ids, labels[:3], vocab)
    with pytest.raises(Sem3RError, match="integer"):
        semantic_maps(masks.astype(np.float32), ids, labels, vocab)


# ------------------------------------------------------------------------------------------- scene
@pytest.fixture(scope="module")
def syn():
    return generate_scene(SynthConfig(seed=3, num_views=2, height=40, width=48, num_points=0))


def test_label_scene_recovers_labels_from_class_aligned_features(syn):
    scene = syn.scene
    names = scene.class_names
    text = class_text_embeddings(names, FakeEncoder(dim=32))
    dense = np.where((scene.semantic_masks >= 0)[..., None], text[np.maximum(scene.semantic_masks, 0)], 1.0)
    enc = FakeEncoder(dim=32, dense=dense.astype(np.float32))
    out = label_scene(scene, names, enc)
    table = out.instances
    gt = {int(i): int(s) for i, s in zip(scene.instances.ids, scene.instances.semantic_ids)}
    seen = np.unique(scene.instance_masks[scene.instance_masks >= 0])
    rows = [table.row(int(i)) for i in seen]
    assert [table.semantic_ids[r] for r in rows] == [gt[int(i)] for i in seen]
    assert [table.labels[r] for r in rows] == [names[gt[int(i)]] for i in seen]
    labelled = scene.instance_masks >= 0
    np.testing.assert_array_equal(out.semantic_masks[labelled], scene.semantic_masks[labelled])
    assert (out.semantic_masks[~labelled] == -1).all()
    assert out.class_names == names and scene.instances.labels is not table.labels


def test_label_scene_end_to_end_with_tiny_clip(syn, tmp_path, tiny_vlm_saver):
    transformers = pytest.importorskip("transformers")
    tiny_vlm_saver(transformers, tmp_path)
    from sem3r.semantics.vlm import make_image_encoder

    enc = make_image_encoder(str(tmp_path))
    scene = syn.scene
    before = scene.semantic_masks.copy()
    vocab = ["chair", "table", "red chair"]
    seen = np.unique(scene.instance_masks[scene.instance_masks >= 0])
    for method in ("pool", "crops"):
        out = label_scene(scene, vocab, enc, LabelSceneConfig(method=method, crops=CropConfig(top_views=2)))
        assert out.class_names == vocab
        rows = [out.instances.row(int(i)) for i in seen]
        assert all(out.instances.labels[r] in vocab for r in rows)
        assert all(vocab[out.instances.semantic_ids[r]] == out.instances.labels[r] for r in rows)
        scores = out.instances.scores[rows]
        assert ((scores >= 1 / 3 - 1e-6) & (scores <= 1)).all()
        assert out.semantic_masks.shape == scene.instance_masks.shape
        assert set(np.unique(out.semantic_masks)) <= {-1, 0, 1, 2}
    np.testing.assert_array_equal(scene.semantic_masks, before)  # the input scene is not modified
    with pytest.raises(Sem3RError, match="empty"):
        label_scene(scene, [], enc)


def test_tiny_clip_pooling_is_the_mask_mean_and_a_query_finds_its_instance(tmp_path, tiny_vlm_saver):
    transformers = pytest.importorskip("transformers")
    from sem3r.semantics.vlm import make_image_encoder

    tiny_vlm_saver(transformers, tmp_path)
    enc = make_image_encoder(str(tmp_path))
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    dense = enc.dense_features(images)                                  # (2, g, g, D) at the patch grid
    g = dense.shape[1]
    masks = np.full((2, 16, 16), -1, np.int32)
    masks[0, :8, :8] = 3                                                # exactly patch-aligned blocks
    masks[1, 8:, :] = 3
    masks[0, 8:, 8:] = 5
    pooled = mask_pool(dense, masks, np.array([3, 5]), MaskPoolConfig(normalize=False))
    cell = 16 // g
    cells = [dense[v, y // cell, x // cell] for v, y, x in zip(*np.nonzero(masks == 3))]
    np.testing.assert_allclose(pooled[0], np.mean(cells, axis=0), atol=1e-5)
    # a query ranks first the instance whose embedding is the query's own text embedding
    query = enc.text_features(["the red chair"])[0]
    others = _unit(np.random.default_rng(1).normal(size=(3, enc.dim)))
    embeddings = np.concatenate([others[:2], query[None], others[2:]])
    ranked = query_instances(embeddings, "the red chair", enc, np.array([10, 11, 12, 13]))
    assert ranked[0][0] == 12 and ranked[0][1] == pytest.approx(1.0, abs=1e-5)
