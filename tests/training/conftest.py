"""Shared fixtures of the training tests: a tiny synthetic dataset and a stand-in geometry model."""

import pytest
import torch
from torch import nn

from sem3r.data.synthetic import SynthConfig, write_dataset

SIZE = 56


class TinyGeometryModel(nn.Module):
    """Stand-in for VGGT with its output contract: a few convolutions and a pooled camera MLP.

    ``images (B, S, 3, H, W)`` -> ``pose_enc (B, S, 9)``, ``pose_enc_list`` (two iterations),
    ``depth (B, S, H, W, 1)``, ``depth_conf (B, S, H, W)``, ``world_points (B, S, H, W, 3)``,
    ``world_points_conf (B, S, H, W)``. Dropout makes the forward pass consume the torch RNG.
    """

    def __init__(self, width: int = 8, dropout: float = 0.1):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout),
                                   nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.dense = nn.Conv2d(width, 6, 1)
        self.camera = nn.Linear(width, 9)
        self.refine = nn.Linear(width + 9, 9)

    def forward(self, images):
        B, S, _, H, W = images.shape
        feat = self.trunk(images.flatten(0, 1))
        dense = self.dense(feat).permute(0, 2, 3, 1).reshape(B, S, H, W, 6)
        pooled = feat.mean(dim=(2, 3)).reshape(B, S, -1)
        pose0 = self.camera(pooled) + torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1.0])
        pose1 = pose0 + self.refine(torch.cat([pooled, pose0], -1))
        return {
            "pose_enc": pose1,
            "pose_enc_list": [pose0, pose1],
            "depth": torch.exp(dense[..., :1]),
            "depth_conf": 1 + torch.exp(dense[..., 1]),
            "world_points": dense[..., 2:5],
            "world_points_conf": 1 + torch.exp(dense[..., 5]),
        }


class TinyIGGTModel(TinyGeometryModel):
    """:class:`TinyGeometryModel` plus IGGT's ``instance_features (B, S, H, W, 8)``, unit length along the last axis."""

    def __init__(self, width: int = 8, dropout: float = 0.1, feature_dim: int = 8):
        super().__init__(width, dropout)
        self.instance = nn.Sequential(nn.Conv2d(3 + width, 16, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, feature_dim, 3, padding=1))

    def forward(self, images):
        out = super().forward(images)
        B, S, _, H, W = images.shape
        x = images.flatten(0, 1)
        feat = self.instance(torch.cat([x, self.trunk(x)], 1)).permute(0, 2, 3, 1).reshape(B, S, H, W, -1)
        out["instance_features"] = nn.functional.normalize(feat, dim=-1)
        return out


@pytest.fixture
def make_model():
    """``make_model(seed, instance_head=False)``: a :class:`TinyGeometryModel` (a :class:`TinyIGGTModel`
    with ``instance_head``) initialised from torch seed ``seed``."""

    def make(seed: int, instance_head: bool = False) -> TinyGeometryModel:
        torch.manual_seed(seed)
        return TinyIGGTModel() if instance_head else TinyGeometryModel()

    return make


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """Three scenes of five 56 x 56 views."""
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, 3, SynthConfig(seed=7, num_views=5, height=SIZE, width=SIZE, num_points=200), progress=False)
    return root
