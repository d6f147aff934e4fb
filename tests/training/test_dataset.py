"""SyntheticGeometryDataset: reference frame, scale normalisation, consistency, determinism, batching."""

import numpy as np
import pytest
import torch

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import unproject_depth
from sem3r.geometry.pose_encoding import extri_intri_to_pose_encoding
from sem3r.scene import Scene
from sem3r.training import GeometryBatchSampler, SyntheticGeometryDataset, collate_geometry, geometry_dataloader


@pytest.fixture(scope="module")
def dataset(synth_root):
    return SyntheticGeometryDataset(synth_root, min_views=2, max_views=5, seed=11, samples_per_epoch=6)


def _check_consistency(sample):
    """World points, depth, intrinsics and poses agree: X maps into each camera at depth z onto its pixel."""
    pts, depth, valid = sample["world_points"], sample["depth"], sample["valid_mask"]
    cams, K = sample["cam_from_world"], sample["intrinsics"]
    S, H, W = depth.shape
    cam_pts = torch.einsum("sij,shwj->shwi", cams[:, :, :3], pts) + cams[:, None, None, :, 3]
    assert torch.allclose(cam_pts[..., 2][valid], depth[valid], atol=1e-4)
    uv = torch.einsum("sij,shwj->shwi", K, cam_pts)[..., :2] / cam_pts[..., 2:3]
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    assert torch.allclose(uv[valid], torch.stack([u, v], -1).expand(S, H, W, 2)[valid], atol=2e-3)
    unprojected = unproject_depth(depth.numpy(), K.numpy(), cams.numpy())
    assert np.allclose(unprojected[valid.numpy()], pts[valid].numpy(), atol=1e-4)
    assert (pts[~valid] == 0).all() and (depth[~valid] == 0).all()


def test_sample_layout_reference_frame_and_normalisation(dataset):
    sample = dataset[(0, 2, 4)]
    assert sample["images"].shape == (4, 3, 56, 56) and sample["images"].dtype == torch.float32
    assert 0 <= sample["images"].min() and sample["images"].max() <= 1
    assert sample["depth"].shape == (4, 56, 56) and sample["world_points"].shape == (4, 56, 56, 3)
    assert sample["cam_from_world"].shape == (4, 3, 4) and sample["intrinsics"].shape == (4, 3, 3)
    assert sample["pose_enc"].shape == (4, 9) and sample["valid_mask"].dtype == torch.bool
    assert torch.equal(sample["cam_from_world"][0], torch.eye(3, 4))
    assert torch.allclose(sample["pose_enc"][0, :7], torch.tensor([0.0, 0, 0, 0, 0, 0, 1]))
    valid = sample["valid_mask"]
    assert valid.any()
    assert sample["world_points"][valid].norm(dim=-1).mean().item() == pytest.approx(1.0, abs=1e-5)
    expected = extri_intri_to_pose_encoding(sample["cam_from_world"], sample["intrinsics"], (56, 56))
    assert torch.allclose(sample["pose_enc"], expected)
    _check_consistency(sample)


def test_sample_matches_the_metric_scene_in_the_first_camera_frame(dataset, synth_root):
    sample = dataset[(1, 4, 3)]
    scene = Scene.load(synth_root / f"scene_{int(sample['scene_index']):04d}")
    views = sample["view_indices"].numpy()
    world = unproject_depth(scene.depth[views], scene.intrinsics[views], scene.cam_from_world[views])
    T0 = scene.cam_from_world[views[0]]
    in_first = world @ T0[:, :3].T + T0[:, 3]
    valid = sample["valid_mask"].numpy()
    scale = float(sample["scale"])
    assert np.allclose(sample["world_points"].numpy()[valid] * scale, in_first[valid], atol=1e-3)
    assert np.allclose(sample["depth"].numpy() * scale, scene.depth[views], atol=1e-4)
    assert np.allclose(sample["intrinsics"].numpy(), scene.intrinsics[views], atol=1e-4)


def test_resized_samples_stay_consistent(synth_root):
    ds = SyntheticGeometryDataset(synth_root, min_views=2, max_views=3, image_size=(28, 42), seed=0)
    sample = ds[(0, 0, 3)]
    assert sample["images"].shape == (3, 3, 28, 42) and sample["depth"].shape == (3, 28, 42)
    K = sample["intrinsics"][0]
    assert K[0, 0] / K[1, 1] == pytest.approx(42 / 56 / (28 / 56), rel=1e-5)  # non-square pixels
    _check_consistency(sample)


def test_instance_ids_follow_the_views_and_are_resized_like_depth(dataset, synth_root):
    sample = dataset[(0, 1, 3)]
    scene = Scene.load(synth_root / f"scene_{int(sample['scene_index']):04d}")
    views = sample["view_indices"].numpy()
    ids = sample["instance_ids"]
    assert ids.dtype == torch.int64 and ids.shape == (3, 56, 56)
    assert np.array_equal(ids.numpy(), scene.instance_masks[views])
    small = SyntheticGeometryDataset(synth_root, min_views=2, max_views=5, image_size=(28, 42), seed=11,
                                     samples_per_epoch=6)[(0, 1, 3)]
    # output pixel v of 28 rows reads source row floor((v + 0.5) * 2), column u of 42 floor((u + 0.5) * 4 / 3)
    sub_rows, rows = np.array([0, 1, 13, 27]), np.array([1, 3, 27, 55])
    sub_cols, cols = np.array([0, 3, 21, 41]), np.array([0, 4, 28, 55])
    assert np.array_equal(small["instance_ids"].numpy()[:, sub_rows][:, :, sub_cols],
                          scene.instance_masks[views][:, rows][:, :, cols])
    # ids and depth are read from the same source pixels
    same_pixel = small["depth"].numpy() * float(small["scale"])
    assert np.allclose(same_pixel[:, sub_rows][:, :, sub_cols], scene.depth[views][:, rows][:, :, cols], atol=1e-4)


def test_determinism_per_seed_epoch_and_index(synth_root, dataset):
    again = SyntheticGeometryDataset(synth_root, min_views=2, max_views=5, seed=11, samples_per_epoch=6)
    for key in [(0, 3, 3), (2, 5, 5)]:
        a, b = dataset[key], again[key]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(dataset[1]["view_indices"], again[1]["view_indices"])
    other_seed = SyntheticGeometryDataset(synth_root, min_views=2, max_views=5, seed=12, samples_per_epoch=6)
    picks = lambda ds, epoch: [ds[(epoch, i, 4)]["view_indices"].tolist() for i in range(6)]  # noqa: E731
    assert picks(dataset, 0) != picks(other_seed, 0)
    assert picks(dataset, 0) != picks(dataset, 1)


def test_int_index_draws_view_counts_in_range(dataset):
    counts = {dataset[i]["images"].shape[0] for i in range(6)}
    assert counts <= set(range(2, 6)) and len(counts) > 1
    assert [int(dataset[i]["scene_index"]) for i in range(6)] == [0, 1, 2, 0, 1, 2]


def test_batch_sampler_and_collate(dataset):
    sampler = GeometryBatchSampler(len(dataset), batch_size=4, min_views=2, max_views=5, seed=1)
    epoch0 = list(sampler)
    assert [len(b) for b in epoch0] == [4, 2]
    assert sorted(key[1] for b in epoch0 for key in b) == list(range(6))
    assert all(len({key[2] for key in b}) == 1 and {key[0] for key in b} == {0} for b in epoch0)
    sampler.set_epoch(0, start=1)
    assert list(sampler) == epoch0[1:]
    sampler.set_epoch(1)
    assert list(sampler) != epoch0 and list(sampler) == list(sampler)
    batch = collate_geometry([dataset[k] for k in epoch0[0]])
    S = epoch0[0][0][2]
    assert batch["images"].shape == (4, S, 3, 56, 56) and batch["pose_enc"].shape == (4, S, 9)
    with pytest.raises(Sem3RError, match="different view counts"):
        collate_geometry([dataset[(0, 0, 2)], dataset[(0, 1, 3)]])
    loader = geometry_dataloader(dataset, batch_size=3)
    shapes = [b["images"].shape[:2] for b in loader]
    assert len(shapes) == 2 and all(s[0] == 3 for s in shapes)


def test_dataset_errors(tmp_path, synth_root):
    with pytest.raises(Sem3RError):
        SyntheticGeometryDataset(tmp_path)
    with pytest.raises(Sem3RError, match="at least 6 views"):
        SyntheticGeometryDataset(synth_root, min_views=6, max_views=8)
    with pytest.raises(Sem3RError):
        SyntheticGeometryDataset(synth_root, min_views=3, max_views=2)
    ds = SyntheticGeometryDataset(synth_root, min_views=2, max_views=8)
    assert ds.max_views == 5 and len(ds) == 3
    with pytest.raises(Sem3RError):
        ds[(0, 0, 6)]
    with pytest.raises(IndexError):
        ds[3]
