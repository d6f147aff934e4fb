"""Camera head: iterative refinement of the ``absT_quaR_FoV`` pose encoding from the camera tokens.

It reads the camera token (index 0) of every frame from the aggregator's last layer, LayerNorms it
(``token_norm``) and refines a 9-number pose encoding ``[t (3), q_xyzw (4), fov_h, fov_w]`` over
``num_iterations`` steps. Each step

1. embeds the current estimate (a learned empty pose at the first step, else the detached previous
   raw estimate) with ``embed_pose`` and turns it into adaLN parameters
   ``shift, scale, gate = poseLN_modulation(embedding)`` (SiLU then Linear);
2. modulates the tokens: ``x = gate * (norm(tokens) * (1 + scale) + shift) + tokens`` with an
   affine-free LayerNorm (eps 1e-6);
3. runs the ``trunk`` (plain transformer blocks attending across the S frames of a scene, no
   positional encoding) and ``trunk_norm``;
4. predicts a delta with ``pose_branch`` (MLP, hidden width C / 2) and accumulates it.

The returned encodings are activated per part: translation and quaternion linear, fields of view
ReLU. The accumulation and the detached feedback use the raw (pre-activation) estimate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sem3r.models.vggt.layers import Block, Mlp

POSE_ENCODING_DIM = 9


def activate_pose(raw: torch.Tensor) -> torch.Tensor:
    """Output activation of the ``absT_quaR_FoV`` encoding: identity on ``t`` and ``q``, ReLU on the FoVs.

    Args:
        raw: ``(..., 9)``.

    Returns:
        ``(..., 9)``.

    Example:
        >>> activate_pose(torch.tensor([-1.0, 0, 0, -1, 0, 0, 1, -0.5, 0.5])).tolist()
        [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.5]
    """
    return torch.cat((raw[..., :7], F.relu(raw[..., 7:])), dim=-1)


class CameraHead(nn.Module):
    """Predict per-frame pose encodings from the aggregator's camera tokens.

    Args:
        dim_in: channels of the aggregated tokens (2 x aggregator dim; 2048 for VGGT-1B).
        trunk_depth: transformer blocks in the trunk (4).
        num_heads: attention heads of the trunk (16).
        mlp_ratio: MLP width multiple of the trunk (4).
        init_values: LayerScale initial gain of the trunk (0.01).
        num_iterations: default number of refinement steps (4).

    Example:
        >>> head = CameraHead(dim_in=32, trunk_depth=1, num_heads=2)
        >>> poses = head([torch.randn(2, 3, 7, 32)])
        >>> len(poses), tuple(poses[-1].shape)
        (4, (2, 3, 9))
    """

    def __init__(
        self,
        dim_in: int = 2048,
        trunk_depth: int = 4,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        init_values: float = 0.01,
        num_iterations: int = 4,
    ) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.trunk = nn.Sequential(
            *(Block(dim_in, num_heads, mlp_ratio, init_values=init_values) for _ in range(trunk_depth))
        )
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_ENCODING_DIM))
        self.embed_pose = nn.Linear(POSE_ENCODING_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_ENCODING_DIM)

    def forward(
        self, aggregated_tokens_list: list[torch.Tensor], num_iterations: int | None = None
    ) -> list[torch.Tensor]:
        """Refine the pose encodings.

        Args:
            aggregated_tokens_list: aggregator layers; only the last, ``(B, S, P, dim_in)``, is read.
            num_iterations: refinement steps (default: the constructor's).

        Returns:
            One activated ``(B, S, 9)`` encoding per step; the last is the prediction.
        """
        camera_tokens = self.token_norm(aggregated_tokens_list[-1][:, :, 0])
        B, S, _ = camera_tokens.shape
        raw = None
        predictions = []
        for _ in range(num_iterations or self.num_iterations):
            current = self.empty_pose_tokens.expand(B, S, -1) if raw is None else raw.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(current)).chunk(3, dim=-1)
            x = gate * (self.adaln_norm(camera_tokens) * (1 + scale) + shift) + camera_tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            raw = delta if raw is None else raw + delta
            predictions.append(activate_pose(raw))
        return predictions
