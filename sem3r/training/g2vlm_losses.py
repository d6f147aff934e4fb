"""G2VLM's visual-geometry losses (G2VLM section 3.2, after MoGe and pi^3).

``L_VG = L_points + lambda_cam L_cam + lambda_normal L_normal`` with

* **point loss** (eq. 3): ``(1 / 3M) sum_j (1 / z_j) |s* x_hat_j - x_j|_1`` over the ``M`` valid
  pixels, with the optimal scale ``s* = argmin_s sum_j (1 / z_j) |s x_hat_j - x_j|_1``
  (:func:`optimal_scale`). The L1 objective is convex and piecewise linear in ``s``: every
  coordinate contributes ``w_j |x_hat_jc| |s - x_jc / x_hat_jc|``, so the minimiser is exactly the
  *weighted median* of the ratios ``x_jc / x_hat_jc`` with weights ``w_j |x_hat_jc|``, found by one
  sort (no iterative solver; MoGe's ROE solver also fits a shift, which a scale-only fit does not
  need). ``s*`` is treated as a constant in the backward pass: at the minimiser the (sub)gradient
  of the objective in ``s`` vanishes, so this is the exact gradient of ``min_s L``.
* **camera loss** (eqs. 4-6): over all ordered pairs ``i != j`` the geodesic angle between the
  predicted and true relative rotations ``R_{i<-j} = R_i R_j^T`` plus ``lambda_trans`` times a
  Huber loss on the relative translations ``t_{i<-j} = t_i - R_{i<-j} t_j`` with the prediction
  multiplied by the point loss's ``s*`` (so both live in the ground truth's units).
* **normal loss** (eq. 7): normals of the predicted and true point maps from cross products of
  neighbouring pixels' differences; we minimise ``1 - cos`` of the angle instead of the angle
  itself, which has the same minimiser and, unlike ``arccos``, a bounded gradient at zero error.

All functions take torch tensors, are differentiable in the predictions and vectorised over the
batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def optimal_scale(pred: torch.Tensor, gt: torch.Tensor, weights: torch.Tensor, norm: str = "l1") -> torch.Tensor:
    """Per-sample scale ``s*`` minimising ``sum_j w_j ||s pred_j - gt_j||`` (no gradient).

    ``norm="l1"`` minimises the L1 norm (G2VLM eq. 3): the weighted median of the coordinate ratios
    ``gt / pred`` with weights ``w |pred|``. ``norm="l2"`` minimises the squared L2 norm in closed
    form, ``s* = sum w <pred, gt> / sum w |pred|^2``. A sample with no positive weight gets ``1``.

    Args:
        pred: ``(B, M, 3)`` predicted points.
        gt: ``(B, M, 3)`` target points.
        weights: ``(B, M)`` non-negative weights; ``0`` excludes a point.
        norm: ``"l1"`` or ``"l2"``.

    Returns:
        ``(B,)`` scales, detached.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]])
        >>> optimal_scale(2 * gt, gt, torch.ones(1, 2)).tolist()
        [0.5]
    """
    pred, gt, weights = pred.detach().float(), gt.detach().float(), weights.detach().float()
    if norm == "l2":
        num = (weights * (pred * gt).sum(-1)).sum(-1)
        den = (weights * (pred * pred).sum(-1)).sum(-1)
        return torch.where(den > _EPS, num / den.clamp_min(_EPS), torch.ones_like(den))
    if norm != "l1":
        raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
    w = (weights[..., None] * pred.abs()).flatten(1)
    usable = w > 0
    ratio = torch.where(usable, gt.flatten(1) / torch.where(usable, pred.flatten(1), 1.0), 0.0)
    ratio, order = ratio.sort(dim=-1)
    cum = torch.gather(w, -1, order).cumsum(-1)
    total = cum[:, -1:]
    first = (cum < 0.5 * total).sum(-1, keepdim=True).clamp_max(ratio.shape[-1] - 1)
    median = torch.gather(ratio, -1, first).squeeze(-1)
    return torch.where(total.squeeze(-1) > 0, median, torch.ones_like(median))


def scaled_point_loss(
    pred_points: torch.Tensor,
    gt_points: torch.Tensor,
    gt_depth: torch.Tensor,
    mask: torch.Tensor,
    scale: torch.Tensor | None = None,
    min_depth: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """G2VLM's point loss with the optimal scale (eq. 3).

    ``L = mean_b (1 / (3 M_b)) sum_j (1 / z_j) |s*_b x_hat_j - x_j|_1`` over the ``M_b`` valid
    pixels of sample ``b`` (all its views together), ``z`` the ground-truth depth clamped to
    ``min_depth``.

    Args:
        pred_points: ``(B, S, H, W, 3)`` predicted point maps.
        gt_points: ``(B, S, H, W, 3)`` ground-truth point maps in the same frame.
        gt_depth: ``(B, S, H, W)`` ground-truth depth of each pixel in its own view.
        mask: ``(B, S, H, W)`` bool, valid pixels.
        scale: ``(B,)`` scales to use; ``None`` solves for ``s*`` (:func:`optimal_scale`, L1).

    Returns:
        The scalar loss and the ``(B,)`` scales used.

    Example:
        >>> gt = torch.rand(1, 2, 4, 4, 3) + 0.5
        >>> loss, s = scaled_point_loss(3 * gt, gt, gt[..., 2], torch.ones(1, 2, 4, 4, dtype=torch.bool))
        >>> round(float(loss), 6), round(float(s), 6)
        (0.0, 0.333333)
    """
    B = pred_points.shape[0]
    weights = mask.float() / gt_depth.float().clamp_min(min_depth)
    if scale is None:
        scale = optimal_scale(pred_points.reshape(B, -1, 3), gt_points.reshape(B, -1, 3), weights.reshape(B, -1))
    residual = (scale.view(B, 1, 1, 1, 1) * pred_points.float() - gt_points.float()).abs().sum(-1)
    per_sample = (weights * residual).flatten(1).sum(-1) / (3 * mask.flatten(1).sum(-1).clamp_min(1))
    return per_sample.mean(), scale


def rotation_geodesic(R_a: torch.Tensor, R_b: torch.Tensor) -> torch.Tensor:
    """Angle in radians of ``R_a^T R_b`` for rotations ``(..., 3, 3)``, in ``[0, pi]``.

    Computed as ``atan2(|vee(M - M^T)| / 2, (tr M - 1) / 2)`` with ``M = R_a^T R_b`` (equal to
    ``arccos((tr M - 1) / 2)`` of G2VLM eq. 5, but accurate near 0 and pi and with a finite
    gradient at zero angle).

    Returns:
        ``(...)`` angles.

    Example:
        >>> Rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
        >>> round(float(rotation_geodesic(torch.eye(3), Rz)), 6) == round(torch.pi / 2, 6)
        True
    """
    M = R_a.transpose(-1, -2) @ R_b
    vee = torch.stack([M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]], -1)
    trace = M[..., 0, 0] + M[..., 1, 1] + M[..., 2, 2]
    return torch.atan2(0.5 * torch.linalg.vector_norm(vee, dim=-1), 0.5 * (trace - 1))


def relative_poses(cam_from_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative poses ``i <- j`` of every ordered pair of views.

    Args:
        cam_from_world: ``(B, S, 3, 4)``.

    Returns:
        ``R (B, S, S, 3, 3)`` with ``R[:, i, j] = R_i R_j^T`` and ``t (B, S, S, 3)`` with
        ``t[:, i, j] = t_i - R_i R_j^T t_j``: the map from camera ``j`` to camera ``i``
        coordinates. Invariant to any change of the world frame.
    """
    R, t = cam_from_world[..., :3], cam_from_world[..., 3]
    R_rel = R[:, :, None] @ R[:, None].transpose(-1, -2)
    t_rel = t[:, :, None] - (R_rel @ t[:, None, :, :, None]).squeeze(-1)
    return R_rel, t_rel


def relative_camera_loss(
    pred_cam_from_world: torch.Tensor,
    gt_cam_from_world: torch.Tensor,
    scale: torch.Tensor | None = None,
    trans_weight: float = 200.0,
    huber_delta: float = 0.1,
) -> dict[str, torch.Tensor]:
    """G2VLM's relative-pose camera loss (eqs. 4-6) over all ordered pairs ``i != j``.

    ``L = mean_{i != j} (angle(R_hat_ij, R_ij) + trans_weight * Huber_delta(s t_hat_ij - t_ij))``,
    the Huber loss averaged over the three coordinates. ``s`` is the point loss's ``s*``; with
    ``scale=None`` it is the least-squares scale of the relative translations
    ``sum <t_hat, t> / sum |t_hat|^2`` per sample (detached), so the loss is scale invariant either
    way. With one view there is no pair and the loss is 0.

    Args:
        pred_cam_from_world: ``(B, S, 3, 4)`` predicted extrinsics (rotations must be proper).
        gt_cam_from_world: ``(B, S, 3, 4)`` ground truth.
        scale: ``(B,)`` prediction-to-ground-truth scales, or ``None``.
        trans_weight: ``lambda_trans`` (G2VLM: 200).
        huber_delta: Huber threshold in ground-truth units (scene normalised to mean point
            distance 1).

    Returns:
        ``{"camera": total, "rot": mean angle (radians), "trans": mean Huber}`` scalars.

    Example:
        >>> cams = torch.eye(3, 4).repeat(1, 3, 1, 1)
        >>> cams[0, 1, 0, 3] = 1.0
        >>> float(relative_camera_loss(cams, cams)["camera"])
        0.0
    """
    B, S = pred_cam_from_world.shape[:2]
    R_hat, t_hat = relative_poses(pred_cam_from_world.float())
    R_gt, t_gt = relative_poses(gt_cam_from_world.float())
    pairs = ~torch.eye(S, dtype=torch.bool, device=R_hat.device)
    if scale is None:
        num = ((t_hat * t_gt).sum(-1) * pairs).flatten(1).sum(-1).detach()
        den = ((t_hat * t_hat).sum(-1) * pairs).flatten(1).sum(-1).detach()
        scale = torch.where(den > _EPS, num / den.clamp_min(_EPS), torch.ones_like(den))
    rot = rotation_geodesic(R_gt, R_hat)[:, pairs]
    trans = F.huber_loss(scale.view(B, 1, 1, 1) * t_hat, t_gt, reduction="none", delta=huber_delta).mean(-1)[:, pairs]
    if rot.numel() == 0:
        zero = 0.0 * pred_cam_from_world.sum()
        return {"camera": zero, "rot": zero.detach(), "trans": zero.detach()}
    rot, trans = rot.mean(), trans.mean()
    return {"camera": rot + trans_weight * trans, "rot": rot.detach(), "trans": trans.detach()}


def normals_from_points(points: torch.Tensor, mask: torch.Tensor, depth: torch.Tensor | None = None,
                        max_edge_ratio: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit normals of point maps from the right and down neighbours of each pixel.

    ``n(v, u) = normalize((P[v, u+1] - P[v, u]) x (P[v+1, u] - P[v, u]))``; with OpenCV cameras
    (x right, y down) a surface facing the camera gets a normal pointing away from it (``+z``).
    Predicted and true normals are computed alike, so only their agreement matters.

    Args:
        points: ``(..., H, W, 3)`` point maps.
        mask: ``(..., H, W)`` bool, valid pixels.
        depth: ``(..., H, W)`` optional depth; when given, a neighbour further than
            ``max_edge_ratio * depth`` from the pixel marks a depth discontinuity and the normal
            invalid.
        max_edge_ratio: see ``depth``.

    Returns:
        ``normals (..., H-1, W-1, 3)`` and ``valid (..., H-1, W-1)`` (all three pixels valid and,
        with ``depth``, no discontinuity).

    Example:
        >>> v, u = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
        >>> plane = torch.stack([u, v, torch.full_like(u, 2.0)], -1)
        >>> n, ok = normals_from_points(plane, torch.ones(3, 3, dtype=torch.bool))
        >>> n[0, 0].tolist(), bool(ok.all())
        ([0.0, 0.0, 1.0], True)
    """
    centre = points[..., :-1, :-1, :]
    dx = points[..., :-1, 1:, :] - centre
    dy = points[..., 1:, :-1, :] - centre
    normals = F.normalize(torch.cross(dx, dy, dim=-1), dim=-1, eps=_EPS)
    valid = mask[..., :-1, :-1] & mask[..., :-1, 1:] & mask[..., 1:, :-1]
    if depth is not None:
        limit = max_edge_ratio * depth[..., :-1, :-1]
        valid = valid & (dx.norm(dim=-1) <= limit) & (dy.norm(dim=-1) <= limit)
    return normals, valid


def normal_loss(pred_points: torch.Tensor, gt_points: torch.Tensor, mask: torch.Tensor,
                gt_depth: torch.Tensor | None = None, max_edge_ratio: float = 0.1) -> torch.Tensor:
    """G2VLM's normal loss (eq. 7) as ``mean (1 - cos(n_hat, n))`` over pixels with a valid GT normal.

    Args:
        pred_points: ``(B, S, H, W, 3)`` predicted point maps.
        gt_points: ``(B, S, H, W, 3)`` ground truth in the same frame.
        mask: ``(B, S, H, W)`` bool, valid pixels.
        gt_depth: ``(B, S, H, W)`` optional; excludes ground-truth depth discontinuities
            (:func:`normals_from_points`).

    Returns:
        Scalar loss (0 when no pixel has a valid normal).

    Example:
        >>> pts = torch.rand(1, 1, 5, 5, 3)
        >>> abs(round(float(normal_loss(2 * pts, pts, torch.ones(1, 1, 5, 5, dtype=torch.bool))), 6))
        0.0
    """
    n_gt, valid = normals_from_points(gt_points.float(), mask, gt_depth, max_edge_ratio)
    n_hat, _ = normals_from_points(pred_points.float(), mask)
    cos = (n_hat * n_gt).sum(-1)
    return ((1 - cos) * valid).sum() / valid.sum().clamp_min(1)
