"""Geometry losses for VGGT-style models, and the configurable :class:`GeometryLoss`.

VGGT's losses (also IGGT's geometry supervision), on targets normalised as in
:mod:`sem3r.training.dataset`:

* **camera** (:func:`camera_loss`): for each of the ``K`` refinement iterations of the camera head,
  ``L_k = w_T l(t_hat - t) + w_R l(q_hat - q) + w_F l(fov_hat - fov)`` on the ``absT_quaR_FoV``
  encoding, ``l`` the mean L1 (VGGT's default) or Huber loss over views and coordinates; then
  ``L = (1 / K) sum_k gamma^(K - 1 - k) L_k``, so later iterations weigh more (``gamma = 0.6``,
  ``w_T = w_R = 1``, ``w_F = 0.5``).
* **depth** and **point** (:func:`confidence_loss` + :func:`gradient_loss`): with the per-pixel
  error ``e = |pred - gt|_2`` (the absolute error for depth) and the predicted confidence
  ``c >= 1``, ``mean(c e - alpha log c)`` over valid pixels after dropping the largest
  ``1 - keep_quantile`` of these values (VGGT's ``valid_range = 0.98`` outlier filter), plus the
  multi-scale gradient term on the residual ``r = pred - gt``:
  ``mean(c |r(v, u+1) - r(v, u)|_1)`` and the same along ``v``, over neighbouring pairs of valid
  pixels, at strides ``1, 2, 4, ...``, averaged over scales. The gradient term vanishes for a
  constant offset and penalises shape errors (a ramp in the residual).

:class:`GeometryLoss` combines these with the G2VLM losses of :mod:`sem3r.training.g2vlm_losses`
(optimal-scale point loss, relative-pose camera loss, normal loss), each term weighted by
:class:`GeometryLossConfig`; ``GeometryLossConfig.preset("vggt")`` and ``preset("g2vlm")`` give the
two papers' recipes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.geometry.pose_encoding import pose_encoding_to_extri_intri
from sem3r.training.g2vlm_losses import normal_loss, optimal_scale, relative_camera_loss, scaled_point_loss


def _elementwise(diff: torch.Tensor, loss_type: str, huber_delta: float) -> torch.Tensor:
    if loss_type == "l1":
        return diff.abs()
    return F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=huber_delta)


def iteration_weights(num_iterations: int, gamma: float) -> list[float]:
    """Weights ``gamma^(K - 1 - k) / K`` of the ``K`` refinement iterations (the last has ``1 / K``).

    Example:
        >>> [round(w, 4) for w in iteration_weights(3, 0.5)]
        [0.0833, 0.1667, 0.3333]
    """
    return [gamma ** (num_iterations - 1 - k) / num_iterations for k in range(num_iterations)]


def camera_loss(
    pred_pose_enc_list: Sequence[torch.Tensor],
    gt_pose_enc: torch.Tensor,
    gamma: float = 0.6,
    loss_type: str = "l1",
    huber_delta: float = 1.0,
    weight_trans: float = 1.0,
    weight_rot: float = 1.0,
    weight_fov: float = 0.5,
) -> dict[str, torch.Tensor]:
    """VGGT's camera loss on ``absT_quaR_FoV`` encodings over all refinement iterations.

    Args:
        pred_pose_enc_list: ``K`` tensors ``(B, S, 9)``, first to last iteration.
        gt_pose_enc: ``(B, S, 9)`` ground truth (``[t, q_xyzw, fov_h, fov_w]``).
        gamma: decay of earlier iterations' weights.
        loss_type: ``"l1"`` or ``"huber"`` (elementwise, threshold ``huber_delta``).
        weight_trans, weight_rot, weight_fov: weights of the translation, quaternion and
            field-of-view terms.

    Returns:
        ``{"camera": total, "trans", "rot", "fov"}``: the components are iteration-weighted like
        the total and detached.

    Example:
        >>> gt = torch.tensor([[[0.0, 0, 0, 0, 0, 0, 1, 1.0, 1.0]]])
        >>> pred = gt.clone(); pred[..., 0] = 0.3
        >>> round(float(camera_loss([pred], gt)["camera"]), 6)  # 1.0 * mean(|0.3|, 0, 0)
        0.1
    """
    if loss_type not in ("l1", "huber"):
        raise Sem3RError(f"camera loss_type must be 'l1' or 'huber', got {loss_type!r}")
    gt = gt_pose_enc.float()
    parts = {"trans": 0.0, "rot": 0.0, "fov": 0.0}
    for weight, pred in zip(iteration_weights(len(pred_pose_enc_list), gamma), pred_pose_enc_list):
        err = _elementwise(pred.float() - gt, loss_type, huber_delta)
        parts["trans"] = parts["trans"] + weight * err[..., :3].mean()
        parts["rot"] = parts["rot"] + weight * err[..., 3:7].mean()
        parts["fov"] = parts["fov"] + weight * err[..., 7:].mean()
    total = weight_trans * parts["trans"] + weight_rot * parts["rot"] + weight_fov * parts["fov"]
    return {"camera": total, **{k: v.detach() for k, v in parts.items()}}


def confidence_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    conf: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 0.2,
    keep_quantile: float = 1.0,
) -> torch.Tensor:
    """Aleatoric-uncertainty regression ``mean(c |pred - gt|_2 - alpha log c)`` over valid pixels.

    Args:
        pred: ``(..., C)`` predictions (``C = 1`` for depth, 3 for points).
        gt: ``(..., C)`` targets.
        conf: ``(...)`` positive confidences (VGGT's heads give ``1 + exp(x)``).
        mask: ``(...)`` bool, valid pixels.
        alpha: weight of the ``-log c`` regulariser.
        keep_quantile: the fraction of valid pixels with the smallest loss that is averaged
            (``1.0`` keeps all; VGGT uses 0.98 to ignore annotation outliers).

    Returns:
        Scalar (0 without valid pixels, still connected to the graph).

    Example:
        >>> pred, gt = torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]])
        >>> float(confidence_loss(pred, gt, torch.ones(2), torch.ones(2, dtype=torch.bool)))  # plain L1
        2.0
    """
    err = torch.linalg.vector_norm(pred.float() - gt.float(), dim=-1)
    conf = conf.float()
    values = (conf * err - alpha * torch.log(conf))[mask]
    if values.numel() == 0:
        return 0.0 * (pred.sum() + conf.sum())
    keep = max(1, int(round(keep_quantile * values.numel())))
    if keep < values.numel():
        values = torch.topk(values, keep, largest=False, sorted=False).values
    return values.mean()


def gradient_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    mask: torch.Tensor,
    conf: torch.Tensor | None = None,
    scales: int = 3,
) -> torch.Tensor:
    """Multi-scale gradient loss on the residual ``r = pred - gt`` (VGGT's ``"grad"`` term).

    At stride ``2^k`` (``k < scales``) the image is subsampled and
    ``sum c |r(v, u+1) - r(v, u)|_1 + sum c |r(v+1, u) - r(v, u)|_1`` is divided by the number of
    neighbouring pairs that are both valid (``c`` the confidence of the first pixel of the pair,
    1 without ``conf``); the result is the mean over scales.

    Args:
        pred: ``(..., H, W, C)`` predictions.
        gt: ``(..., H, W, C)`` targets.
        mask: ``(..., H, W)`` bool, valid pixels.
        conf: ``(..., H, W)`` optional confidences.
        scales: number of strides.

    Returns:
        Scalar, 0 for ``pred = gt + constant``.

    Example:
        >>> gt = torch.zeros(1, 4, 4, 1)
        >>> ramp = torch.arange(4.0).repeat(4, 1)[None, ..., None]
        >>> ok = torch.ones(1, 4, 4, dtype=torch.bool)
        >>> float(gradient_loss(gt + 5.0, gt, ok)), float(gradient_loss(ramp, gt, ok, scales=1))
        (0.0, 0.5)
    """
    residual = pred.float() - gt.float()
    weight = torch.ones_like(mask, dtype=residual.dtype) if conf is None else conf.float()
    weight = weight * mask
    total = 0.0
    for k in range(scales):
        step = 2**k
        r = residual[..., ::step, ::step, :]
        w = weight[..., ::step, ::step]
        m = mask[..., ::step, ::step]
        dx = (r[..., :, 1:, :] - r[..., :, :-1, :]).abs().sum(-1)
        dy = (r[..., 1:, :, :] - r[..., :-1, :, :]).abs().sum(-1)
        mx = m[..., :, 1:] & m[..., :, :-1]
        my = m[..., 1:, :] & m[..., :-1, :]
        num = (w[..., :, :-1] * dx * mx).sum() + (w[..., :-1, :] * dy * my).sum()
        total = total + num / (mx.sum() + my.sum()).clamp_min(1)
    return total / scales


@dataclass
class GeometryLossConfig:
    """Weights and settings of :class:`GeometryLoss`; a term whose weight is 0 is not computed.

    VGGT terms: ``camera_weight`` (pose-encoding loss over refinement iterations), ``depth_weight``
    and ``point_weight`` (confidence-weighted regression plus ``gradient_weight`` times the
    gradient loss, on ``depth`` / ``world_points``). G2VLM terms: ``scaled_point_weight``
    (optimal-scale point loss), ``relative_camera_weight`` (``lambda_cam``, with
    ``relative_trans_weight = lambda_trans`` inside) and ``normal_weight`` (``lambda_normal``).

    ``loss_type`` names the recipe the weights came from (informational; ``preset`` sets it).

    Attributes:
        camera_gamma: decay of earlier camera-head iterations (both camera losses).
        camera_loss_type: ``"l1"`` or ``"huber"`` for the pose-encoding loss.
        camera_huber_delta: Huber threshold of the pose-encoding loss.
        weight_trans, weight_rot, weight_fov: components of the pose-encoding loss.
        conf_alpha: ``alpha`` of ``c e - alpha log c``.
        keep_quantile: fraction of valid pixels kept by the confidence losses.
        gradient_scales: strides of the gradient loss.
        point_scale_norm: ``"l1"`` (G2VLM) or ``"l2"`` for the optimal scale ``s*``.
        relative_huber_delta: Huber threshold of the relative translation loss.
        normal_max_edge_ratio: depth-discontinuity threshold of the ground-truth normals.

    Example:
        >>> cfg = GeometryLossConfig.preset("g2vlm", normal_weight=0.5)
        >>> cfg.loss_type, cfg.relative_camera_weight, cfg.normal_weight, cfg.point_weight
        ('g2vlm', 0.2, 0.5, 0.0)
    """

    loss_type: str = "vggt"
    camera_weight: float = 5.0
    depth_weight: float = 1.0
    point_weight: float = 1.0
    gradient_weight: float = 1.0
    scaled_point_weight: float = 0.0
    relative_camera_weight: float = 0.0
    normal_weight: float = 0.0
    camera_gamma: float = 0.6
    camera_loss_type: str = "l1"
    camera_huber_delta: float = 1.0
    weight_trans: float = 1.0
    weight_rot: float = 1.0
    weight_fov: float = 0.5
    conf_alpha: float = 0.2
    keep_quantile: float = 0.98
    gradient_scales: int = 3
    point_scale_norm: str = "l1"
    relative_trans_weight: float = 200.0
    relative_huber_delta: float = 0.1
    normal_max_edge_ratio: float = 0.1

    @classmethod
    def preset(cls, name: str, **overrides) -> "GeometryLossConfig":
        """The ``"vggt"`` or ``"g2vlm"`` recipe with ``overrides`` applied.

        ``"vggt"``: camera 5, depth 1, point 1 (VGGT's training weights). ``"g2vlm"``: scaled
        point 1, relative camera 0.2 (trans 200), normal 1 (G2VLM's weights), plus VGGT's depth
        loss with weight 1 so a model with a depth head trains it too (G2VLM predicts no separate
        depth map); the point confidence is not supervised by this recipe.
        """
        if name == "vggt":
            base = cls()
        elif name == "g2vlm":
            base = cls(loss_type="g2vlm", camera_weight=0.0, point_weight=0.0, scaled_point_weight=1.0,
                       relative_camera_weight=0.2, normal_weight=1.0)
        else:
            raise Sem3RError(f"unknown geometry loss preset {name!r} (expected 'vggt' or 'g2vlm')")
        cfg = cls(**{**asdict(base), **overrides})
        cfg.validate()
        return cfg

    @classmethod
    def from_dict(cls, doc: Mapping) -> "GeometryLossConfig":
        """Build from a JSON object; an optional ``"preset"`` key picks the base recipe."""
        doc = dict(doc)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - names - {"preset"})
        if unknown:
            raise Sem3RError(f"unknown loss config keys {unknown}")
        return cls.preset(doc.pop("preset", doc.get("loss_type", "vggt")), **doc)

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        weights = [f.name for f in fields(self) if f.name.endswith("_weight")]
        negative = [n for n in weights if getattr(self, n) < 0]
        if negative:
            raise Sem3RError(f"loss weights must be non-negative: {negative}")
        if self.camera_loss_type not in ("l1", "huber"):
            raise Sem3RError(f"camera_loss_type must be 'l1' or 'huber', got {self.camera_loss_type!r}")
        if self.point_scale_norm not in ("l1", "l2"):
            raise Sem3RError(f"point_scale_norm must be 'l1' or 'l2', got {self.point_scale_norm!r}")
        if not 0 < self.keep_quantile <= 1:
            raise Sem3RError(f"keep_quantile must be in (0, 1], got {self.keep_quantile}")
        if self.gradient_scales < 1:
            raise Sem3RError(f"gradient_scales must be at least 1, got {self.gradient_scales}")


class GeometryLoss:
    """Weighted sum of the geometry losses selected by a :class:`GeometryLossConfig`.

    Called as ``loss(predictions, batch)`` with the model's output dict (``pose_enc (B, S, 9)``,
    optional ``pose_enc_list`` (list of ``(B, S, 9)``), ``depth (B, S, H, W, 1)``,
    ``depth_conf (B, S, H, W)``, ``world_points (B, S, H, W, 3)``, ``world_points_conf (B, S, H, W)``)
    and a batch of :func:`sem3r.training.dataset.collate_geometry` (``depth (B, S, H, W)``,
    ``valid_mask (B, S, H, W)``, ``world_points (B, S, H, W, 3)``, ``cam_from_world (B, S, 3, 4)``,
    ``pose_enc (B, S, 9)``). Everything is computed in float32.

    Returns a dict: ``"loss"`` (the differentiable total) and detached scalars per term: ``camera``
    (+ ``camera_trans``, ``camera_rot``, ``camera_fov``), ``depth``, ``depth_grad``, ``point``,
    ``point_grad``, ``scaled_point``, ``point_scale`` (mean ``s*``), ``relative_camera``
    (+ ``relative_rot``, ``relative_trans``), ``normal``; only the enabled ones.
    """

    def __init__(self, config: GeometryLossConfig | None = None):
        self.config = config or GeometryLossConfig()
        self.config.validate()

    def __call__(self, predictions: Mapping[str, torch.Tensor],
                 batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.config
        mask = batch["valid_mask"].bool()
        gt_depth = batch["depth"].float()
        gt_points = batch["world_points"].float()
        pose_list = list(predictions.get("pose_enc_list") or [predictions["pose_enc"]])
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        if cfg.camera_weight > 0:
            cam = camera_loss(pose_list, batch["pose_enc"], cfg.camera_gamma, cfg.camera_loss_type,
                              cfg.camera_huber_delta, cfg.weight_trans, cfg.weight_rot, cfg.weight_fov)
            total = total + cfg.camera_weight * cam["camera"]
            terms.update(camera=cam["camera"], camera_trans=cam["trans"], camera_rot=cam["rot"], camera_fov=cam["fov"])
        for name, weight, pred, conf, gt in (
            ("depth", cfg.depth_weight, "depth", "depth_conf", gt_depth[..., None]),
            ("point", cfg.point_weight, "world_points", "world_points_conf", gt_points),
        ):
            if weight > 0:
                p, c = predictions[pred].float(), predictions[conf].float()
                main = confidence_loss(p, gt, c, mask, cfg.conf_alpha, cfg.keep_quantile)
                grad = gradient_loss(p, gt, mask, c, cfg.gradient_scales)
                total = total + weight * (main + cfg.gradient_weight * grad)
                terms.update({name: main, f"{name}_grad": grad})
        if cfg.scaled_point_weight > 0 or cfg.relative_camera_weight > 0:
            pred_points = predictions["world_points"].float()
            B = pred_points.shape[0]
            weights = mask.float() / gt_depth.clamp_min(1e-3)
            scale = optimal_scale(pred_points.reshape(B, -1, 3), gt_points.reshape(B, -1, 3),
                                  weights.reshape(B, -1), cfg.point_scale_norm)
            terms["point_scale"] = scale.mean()
            if cfg.scaled_point_weight > 0:
                point, _ = scaled_point_loss(pred_points, gt_points, gt_depth, mask, scale)
                total = total + cfg.scaled_point_weight * point
                terms["scaled_point"] = point
            if cfg.relative_camera_weight > 0:
                image_hw = tuple(gt_depth.shape[-2:])
                rel = {"camera": 0.0, "rot": 0.0, "trans": 0.0}
                for weight, enc in zip(iteration_weights(len(pose_list), cfg.camera_gamma), pose_list):
                    pred_cams, _ = pose_encoding_to_extri_intri(enc.float(), image_hw)
                    out = relative_camera_loss(pred_cams, batch["cam_from_world"], scale,
                                               cfg.relative_trans_weight, cfg.relative_huber_delta)
                    rel = {k: rel[k] + weight * out[k] for k in rel}
                total = total + cfg.relative_camera_weight * rel["camera"]
                terms.update(relative_camera=rel["camera"], relative_rot=rel["rot"], relative_trans=rel["trans"])
        if cfg.normal_weight > 0:
            normal = normal_loss(predictions["world_points"], gt_points, mask, gt_depth, cfg.normal_max_edge_ratio)
            total = total + cfg.normal_weight * normal
            terms["normal"] = normal
        if not terms:
            raise Sem3RError("every geometry loss weight is 0: nothing to train")
        return {"loss": total, **{k: torch.as_tensor(v).detach() for k, v in terms.items()}}
