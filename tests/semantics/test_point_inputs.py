"""Segmenter inputs: 2D detection classes, their feature maps, sampled point features, caching."""

import numpy as np
import pytest
import torch

from sem3r.data.synthetic import CLASS_NAMES, SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reconstruct.correspondence import CorrespondenceConfig
from sem3r.scene import Scene
from sem3r.semantics.point_inputs import (
    PointInputsConfig,
    detection_classes,
    detection_feature_maps,
    prepare_point_inputs,
    scene_annotations,
)
from sem3r.semantics.text import HashTextEncoder
from sem3r.training.segmenter3d import load_point_inputs, save_point_inputs


@pytest.fixture(scope="module")
def syn():
    return generate_scene(SynthConfig(seed=5, num_views=3, height=48, width=64, num_points=0, camera_path="random_large"))


def test_detection_classes_majority_and_vocabulary():
    images = np.zeros((1, 2, 4, 3), np.uint8)
    sem = np.array([[[0, 0, 1, 1], [0, 2, 1, 2]]], np.int32)            # floor floor a a / floor b a b
    scene = Scene(images=images, intrinsics=np.eye(3)[None], cam_from_world=np.eye(3, 4)[None], semantic_masks=sem,
                  metadata={"class_names": ["floor", "cup", "book"]})
    masks = np.array([[[0, 0, 1, 1], [0, 1, 1, -1]]], np.int32)
    out = detection_classes(scene, masks, ["book", "cup"])
    # id 0: floor x3 -> not in the vocabulary; id 1: cup x3, book x1 -> cup = vocabulary index 1
    assert out.tolist() == [[-1, 1]]
    no_sem = Scene(images=images, intrinsics=np.eye(3)[None], cam_from_world=np.eye(3, 4)[None])
    assert detection_classes(no_sem, masks, ["cup"]).tolist() == [[-1, -1]]


def test_feature_maps_are_class_embeddings():
    text = np.eye(3, 4, dtype=np.float32)
    masks = np.array([[[0, 0, 1, 1], [-1, -1, 1, 1]]], np.int32)
    classes = np.array([[2, -1]])
    maps = detection_feature_maps(masks, classes, text, stride=1)
    assert maps.shape == (1, 4, 2, 4)
    assert torch.equal(maps[0, :, 0, 0], torch.tensor([0.0, 0, 1, 0]))   # class 2's embedding
    assert torch.equal(maps[0, :, 0, 2], torch.zeros(4))                  # unknown class
    assert torch.equal(maps[0, :, 1, 0], torch.zeros(4))                  # no 2D instance
    pooled = detection_feature_maps(masks, classes, text, stride=2)
    assert pooled.shape == (1, 4, 1, 2)
    assert torch.allclose(pooled[0, 2, 0], torch.tensor([0.5, 0.0]))     # half of the first 2x2 block is class 2


def test_prepare_point_inputs_on_a_synthetic_room(syn):
    scene = syn.scene
    vocab = list(CLASS_NAMES)
    text = HashTextEncoder(dim=16).encode(vocab)
    masks, classes = scene_annotations(scene, vocab, "gt", seed=0)
    config = PointInputsConfig(correspondence=CorrespondenceConfig(voxel_size=0.05), feature_stride=1)
    inputs = prepare_point_inputs(scene, masks, classes, text, config)
    corr = inputs.correspondence
    p = corr.num_points
    assert inputs.features.shape == (p, 16) and inputs.normals.shape == (p, 3) and inputs.superpoints.shape == (p,)
    np.testing.assert_allclose(np.linalg.norm(inputs.normals, axis=1), 1.0, atol=1e-4)
    # a point whose representative pixel lies inside a classified 2D instance (all 4 neighbours too)
    # samples exactly that class's text embedding
    v, x, y = corr.view, corr.pixel[:, 0].astype(int), corr.pixel[:, 1].astype(int)
    cls_map = np.where(masks >= 0, np.take_along_axis(classes[:, None, :].repeat(masks.shape[1], 1),
                                                      np.maximum(masks, 0), axis=2), -1)
    own = cls_map[v, y, x]
    pad = np.pad(cls_map, ((0, 0), (1, 1), (1, 1)), constant_values=-2)
    same = np.ones(p, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        same &= pad[v, y + dy, x + dx] == own
    interior = same & (own >= 0)
    assert interior.sum() > 50
    np.testing.assert_allclose(inputs.features[interior], text[own[interior]], atol=1e-5)
    # view-wise annotations: each view's 2D ids on the points it reconstructed
    assert inputs.view_labels.shape == (3, p)
    assert set(np.unique(inputs.view_labels[0])) <= set(np.unique(masks[0])) | {-1}


def test_point_inputs_round_trip(tmp_path, syn):
    scene = syn.scene
    text = HashTextEncoder(dim=8).encode(list(CLASS_NAMES))
    masks, classes = scene_annotations(scene, list(CLASS_NAMES), "gt")
    inputs = prepare_point_inputs(scene, masks, classes, text, PointInputsConfig(
        correspondence=CorrespondenceConfig(voxel_size=0.08)))
    back = load_point_inputs(save_point_inputs(tmp_path / "x.npz", inputs))
    for name in ("colors", "normals", "features", "superpoints", "view_labels", "view_classes"):
        assert np.array_equal(getattr(back, name), getattr(inputs, name)), name
    assert np.array_equal(back.correspondence.point_of_pixel, inputs.correspondence.point_of_pixel)
    assert back.correspondence.depth_abs_tol == inputs.correspondence.depth_abs_tol


def test_bad_input(syn):
    text = HashTextEncoder(dim=8).encode(["chair"])
    with pytest.raises(Sem3RError, match="2D masks must have shape"):
        prepare_point_inputs(syn.scene, np.zeros((1, 2, 2), np.int32), np.zeros((1, 1), np.int64), text)
    with pytest.raises(Sem3RError, match="feature_stride"):
        PointInputsConfig(feature_stride=0).validate()
    with pytest.raises(Sem3RError, match="unknown point inputs config keys"):
        PointInputsConfig.from_dict({"voxel": 1})
