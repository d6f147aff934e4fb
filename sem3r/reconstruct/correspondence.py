"""The 2D-to-3D correspondence record of a reconstructed scene (OVSeg3R section 3.1.1).

A reconstruction turns pixels into 3D points. OVSeg3R keeps the record of which pixel each point
came from, in both directions, and uses it three ways: to lift per-view 2D instance masks into
view-wise 3D annotations, to sample per-point 2D features from per-view feature maps (eq. 2), and
to test 2D instance boundaries between 3D neighbours (IBSp). :class:`Correspondence` is that record:

- point -> (view, pixel): ``view[i]`` and ``pixel[i]`` are where point ``i`` was reconstructed
  (its *representative* pixel when several pixels were merged into one point);
- (view, pixel) -> point: ``point_of_pixel[v, y, x]`` is the point a pixel became, -1 for none.

With ``voxel_size`` the valid pixels of all views are merged per voxel (the point is the mean of
its pixels' points, the representative pixel the one whose point lies nearest that mean), so one
point can come from pixels of several views: :meth:`Correspondence.observed` says which.

Points and pixels use the Scene's conventions: world frame, metres, pixel centres at integer
coordinates ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from sem3r.errors import Sem3RError
from sem3r.geometry.camera import project, transform_points
from sem3r.geometry.voxels import VoxelGrid, group_majority
from sem3r.scene import Scene

NOT_VISIBLE = -2
"""Label returned by :meth:`Correspondence.labels_in_views` where a view does not see the point."""


@dataclass
class CorrespondenceConfig:
    """How :func:`build_correspondence` turns a Scene's pixels into points.

    Attributes:
        source: which per-pixel points to use (see :meth:`sem3r.scene.Scene.points`).
        stride: keep every ``stride``-th pixel along both image axes (1 = all pixels).
        voxel_size: merge points per voxel of this size in metres (``None``: one point per pixel).
        conf_percentile: drop the lowest ``p`` percent of valid pixels by confidence (0-100).
        depth_abs_tol: absolute tolerance (m) of the depth test that decides whether a view sees a
            point it did not reconstruct (:meth:`Correspondence.labels_in_views`).
        depth_rel_tol: tolerance proportional to the depth for that test.
    """

    source: Literal["auto", "depth", "points"] = "auto"
    stride: int = 1
    voxel_size: float | None = None
    conf_percentile: float | None = None
    depth_abs_tol: float = 0.03
    depth_rel_tol: float = 0.03

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid setting."""
        if self.stride < 1:
            raise Sem3RError(f"stride must be at least 1, got {self.stride}")
        if self.voxel_size is not None and not self.voxel_size > 0:
            raise Sem3RError(f"voxel_size must be positive or None, got {self.voxel_size}")
        if self.conf_percentile is not None and not 0 <= self.conf_percentile < 100:
            raise Sem3RError(f"conf_percentile must be in [0, 100), got {self.conf_percentile}")
        if self.depth_abs_tol < 0 or self.depth_rel_tol < 0:
            raise Sem3RError("depth tolerances must be non-negative")


@dataclass
class Correspondence:
    """Bidirectional map between ``M`` 3D points and the pixels of ``N`` views of size ``H x W``.

    Attributes:
        points: ``(M, 3) float32`` world points.
        colors: ``(M, 3) uint8`` RGB of the points.
        view: ``(M,) int32`` view each point was reconstructed from (its representative pixel's).
        pixel: ``(M, 2) float32`` ``(x, y)`` of the representative pixel in ``view``.
        point_of_pixel: ``(N, H, W) int64`` point each pixel became, -1 for none.
        intrinsics: ``(N, 3, 3) float64`` of the views.
        cam_from_world: ``(N, 3, 4) float64`` of the views.
        view_depth: ``(N, H, W) float32`` camera z-depth of each pixel's reconstructed point, 0
            where the pixel has none (the z-buffer of :meth:`labels_in_views`).
        depth_abs_tol: absolute tolerance (m) of that z-buffer test.
        depth_rel_tol: relative tolerance of that test.
    """

    points: np.ndarray
    colors: np.ndarray
    view: np.ndarray
    pixel: np.ndarray
    point_of_pixel: np.ndarray
    intrinsics: np.ndarray
    cam_from_world: np.ndarray
    view_depth: np.ndarray
    depth_abs_tol: float = 0.03
    depth_rel_tol: float = 0.03

    def __post_init__(self) -> None:
        m = len(self.points)
        n, h, w = self.point_of_pixel.shape
        if self.points.shape != (m, 3) or self.colors.shape != (m, 3):
            raise Sem3RError(f"points and colors must be (M, 3), got {self.points.shape} and {self.colors.shape}")
        if self.view.shape != (m,) or self.pixel.shape != (m, 2):
            raise Sem3RError(f"view must be ({m},) and pixel ({m}, 2), got {self.view.shape} and {self.pixel.shape}")
        if not np.isfinite(self.points).all():
            raise Sem3RError("correspondence points contain NaN or inf")
        if m and (self.view.min() < 0 or self.view.max() >= n):
            missing = int(((self.view < 0) | (self.view >= n)).sum())
            raise Sem3RError(f"{missing} of {m} points have no view correspondence (view index outside [0, {n}))")
        inside = (self.pixel[:, 0] > -0.5) & (self.pixel[:, 0] < w - 0.5) & (self.pixel[:, 1] > -0.5) & (self.pixel[:, 1] < h - 0.5)
        if not inside.all():
            raise Sem3RError(f"{int((~inside).sum())} of {m} points have a pixel outside the {h}x{w} image")
        if self.point_of_pixel.max(initial=-1) >= m:
            raise Sem3RError(f"point_of_pixel refers to point {int(self.point_of_pixel.max())} of {m}")

    @property
    def num_points(self) -> int:
        """``M``."""
        return len(self.points)

    @property
    def num_views(self) -> int:
        """``N``."""
        return int(self.point_of_pixel.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.point_of_pixel.shape[1]), int(self.point_of_pixel.shape[2])

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(view, point, flat pixel index)`` of every pixel that became a point."""
        flat = self.point_of_pixel.reshape(-1)
        where = np.flatnonzero(flat >= 0)
        views = where // (self.image_size[0] * self.image_size[1])
        return views, flat[where], where

    def observed(self) -> sp.csr_matrix:
        """View-belonging mask: which views each point was reconstructed from.

        Returns:
            ``(N, M)`` sparse matrix of pixel counts: entry ``(v, i)`` is the number of pixels of view
            ``v`` that became point ``i`` (``> 0`` means the point belongs to view ``v``).
        """
        views, pts, _ = self._pairs()
        ones = np.ones(len(pts), np.int32)
        return sp.csr_matrix((ones, (views, pts)), shape=(self.num_views, self.num_points))

    def lift_view_masks(self, view_masks: np.ndarray) -> np.ndarray:
        """View-wise 3D annotations: each view's 2D labels carried to the points it reconstructed.

        Args:
            view_masks: ``(N, H, W) int`` per-view 2D instance ids (any ids, -1 = unlabelled; ids
                need not agree between views).

        Returns:
            ``(N, M) int32``: the label of point ``i`` in view ``v`` (the majority over the view's
            pixels that became the point; -1 counts as a label), -1 where view ``v`` did not
            reconstruct point ``i``.
        """
        masks = self._check_maps(view_masks, "view_masks")
        views, pts, flat = self._pairs()
        labels = masks.reshape(-1)[flat].astype(np.int64)
        out = np.full((self.num_views, self.num_points), -1, np.int32)
        group = views * self.num_points + pts
        winner_group, winner_label, _, _ = group_majority(group, labels)
        out.reshape(-1)[winner_group] = winner_label
        return out

    def point_labels(self, masks: np.ndarray) -> np.ndarray:
        """One label per point from per-pixel labels of all views (majority, -1 ignored).

        Used to carry a Scene's 3D-consistent ``instance_masks`` or ``semantic_masks`` to the points.

        Args:
            masks: ``(N, H, W) int`` labels, -1 = none.

        Returns:
            ``(M,) int32``, -1 for points none of whose pixels is labelled.
        """
        masks = self._check_maps(masks, "masks")
        _, pts, flat = self._pairs()
        labels = masks.reshape(-1)[flat].astype(np.int64)
        keep = labels >= 0
        out = np.full(self.num_points, -1, np.int32)
        winner, label, _, _ = group_majority(pts[keep], labels[keep])
        out[winner] = label
        return out

    def labels_in_views(self, view_masks: np.ndarray, point_index: np.ndarray, views: np.ndarray,
                        lifted: np.ndarray | None = None) -> np.ndarray:
        """The 2D label each view gives each point (IBSp's projection of an edge's endpoints).

        Where view ``v`` reconstructed point ``i``, the answer is the lifted label
        (:meth:`lift_view_masks`). Otherwise the point is projected into the view and takes the
        label of the nearest pixel if it lies inside the image, in front of the camera, and within
        ``depth_abs_tol + depth_rel_tol * z`` of that pixel's reconstructed depth (a z-buffer
        test: occluded points are not visible); else :data:`NOT_VISIBLE`.

        Args:
            view_masks: ``(N, H, W) int`` per-view 2D instance ids, -1 = unlabelled.
            point_index: ``(K,) int`` points.
            views: ``(K,) int`` the view to read each point in.
            lifted: the result of :meth:`lift_view_masks` for ``view_masks`` (computed if omitted).

        Returns:
            ``(K,) int64`` labels, :data:`NOT_VISIBLE` (-2) where the view does not see the point.
        """
        masks = self._check_maps(view_masks, "view_masks")
        point_index = np.asarray(point_index, np.int64).reshape(-1)
        views = np.asarray(views, np.int64).reshape(-1)
        if point_index.shape != views.shape:
            raise Sem3RError(f"point_index and views must have the same length, got {len(point_index)} and {len(views)}")
        if len(point_index) and (point_index.min() < 0 or point_index.max() >= self.num_points):
            raise Sem3RError(f"point indices must lie in [0, {self.num_points})")
        if len(views) and (views.min() < 0 or views.max() >= self.num_views):
            raise Sem3RError(f"view indices must lie in [0, {self.num_views})")
        lifted = self.lift_view_masks(masks) if lifted is None else lifted
        observed = self.observed()
        own = np.asarray(observed[views, point_index]).reshape(-1) > 0
        out = np.full(len(point_index), NOT_VISIBLE, np.int64)
        out[own] = lifted[views[own], point_index[own]]
        for v in np.unique(views[~own]):
            sel = np.flatnonzero(~own & (views == v))
            out[sel] = self._projected_labels(masks, int(v), point_index[sel])
        return out

    def labels_in_all_views(self, view_masks: np.ndarray, lifted: np.ndarray | None = None) -> np.ndarray:
        """The 2D label every view gives every point (:meth:`labels_in_views` for all pairs).

        Args:
            view_masks: ``(N, H, W) int`` per-view 2D instance ids, -1 = unlabelled.
            lifted: the result of :meth:`lift_view_masks` for ``view_masks`` (computed if omitted).

        Returns:
            ``(N, M) int32`` labels, :data:`NOT_VISIBLE` where a view does not see the point.
        """
        masks = self._check_maps(view_masks, "view_masks")
        lifted = self.lift_view_masks(masks) if lifted is None else lifted
        observed = self.observed()
        out = np.full((self.num_views, self.num_points), NOT_VISIBLE, np.int32)
        for v in range(self.num_views):
            own = np.zeros(self.num_points, bool)
            own[observed[v].indices] = True
            out[v, own] = lifted[v, own]
            rest = np.flatnonzero(~own)
            out[v, rest] = self._projected_labels(masks, v, rest)
        return out

    def _projected_labels(self, masks: np.ndarray, view: int, point_index: np.ndarray) -> np.ndarray:
        """Labels of points projected into ``view`` through the z-buffer test; NOT_VISIBLE where it fails."""
        h, w = self.image_size
        uv, z = project(self.points[point_index].astype(np.float64), self.intrinsics[view], self.cam_from_world[view])
        px = np.where(np.isfinite(uv), np.rint(uv), -1).astype(np.int64)
        inside = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        d = np.zeros(len(point_index), np.float64)
        d[inside] = self.view_depth[view][px[inside, 1], px[inside, 0]]
        seen = inside & (d > 0) & (np.abs(z - d) <= self.depth_abs_tol + self.depth_rel_tol * d)
        out = np.full(len(point_index), NOT_VISIBLE, np.int64)
        out[seen] = masks[view][px[seen, 1], px[seen, 0]]
        return out

    def sample(self, feature_maps: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Per-point 2D features by bilinear interpolation at the recorded pixel (OVSeg3R eq. 2).

        A feature map of any size ``h x w`` is taken to cover the whole image (pixel ``(x, y)``
        sits at feature coordinates ``((x + 0.5) w / W - 0.5, (y + 0.5) h / H - 0.5)``); samples
        near the border clamp to the edge.

        Args:
            feature_maps: ``(N, C, h, w)`` float features of every view.

        Returns:
            ``(M, C) float32`` tensor: each point's feature sampled in its representative view.
        """
        maps = torch.as_tensor(feature_maps, dtype=torch.float32)
        if maps.ndim != 4 or maps.shape[0] != self.num_views:
            raise Sem3RError(f"feature_maps must be ({self.num_views}, C, h, w), got {tuple(maps.shape)}")
        if not torch.isfinite(maps).all():
            raise Sem3RError("feature_maps contain NaN or inf")
        h, w = self.image_size
        grid = torch.as_tensor(self.pixel, dtype=torch.float32)
        grid = (grid + 0.5) / torch.tensor([w, h], dtype=torch.float32) * 2 - 1
        out = torch.zeros(self.num_points, maps.shape[1], dtype=torch.float32)
        views = torch.as_tensor(self.view, dtype=torch.int64)
        for v in torch.unique(views).tolist():
            sel = torch.nonzero(views == v).reshape(-1)
            g = grid[sel].reshape(1, 1, -1, 2)
            out[sel] = F.grid_sample(maps[v : v + 1], g, mode="bilinear", padding_mode="border",
                                     align_corners=False)[0, :, 0].T
        return out

    def to_pixels(self, values: np.ndarray, fill: int = -1) -> np.ndarray:
        """Carry per-point values back to every pixel that became the point.

        Args:
            values: ``(M,)`` per-point values (e.g. 3D instance ids).
            fill: value of pixels without a point.

        Returns:
            ``(N, H, W)`` array of ``values``' dtype.
        """
        values = np.asarray(values)
        if values.shape != (self.num_points,):
            raise Sem3RError(f"values must have shape ({self.num_points},), got {values.shape}")
        out = np.full(self.point_of_pixel.shape, fill, values.dtype)
        hit = self.point_of_pixel >= 0
        out[hit] = values[self.point_of_pixel[hit]]
        return out

    def _check_maps(self, maps: np.ndarray, name: str) -> np.ndarray:
        maps = np.asarray(maps)
        if maps.shape != self.point_of_pixel.shape:
            raise Sem3RError(f"{name} must have shape {self.point_of_pixel.shape} to match the views, got {maps.shape}")
        if not np.issubdtype(maps.dtype, np.integer):
            raise Sem3RError(f"{name} must hold integer ids, got {maps.dtype}")
        return maps


def build_correspondence(scene: Scene, config: CorrespondenceConfig | None = None) -> Correspondence:
    """The correspondence record of a reconstructed Scene.

    Args:
        scene: a Scene with depth or world points.
        config: pixel stride, voxel merging, confidence filtering, z-buffer tolerances.

    Returns:
        A :class:`Correspondence` over the Scene's valid pixels (or their voxels).

    Raises:
        Sem3RError: the Scene has no geometry or no valid pixel.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(seed=0, num_views=2, height=24, width=32, num_points=0)).scene
        >>> corr = build_correspondence(scene)
        >>> corr.num_points == int((scene.depth > 0).sum()), corr.point_of_pixel.shape
        (True, (2, 24, 32))
    """
    config = config or CorrespondenceConfig()
    config.validate()
    pts, valid = scene.points(config.source)
    conf = scene.confidence(config.source)
    if config.stride > 1:
        grid = np.zeros(valid.shape[1:], bool)
        grid[:: config.stride, :: config.stride] = True
        valid = valid & grid
    if conf is not None and config.conf_percentile is not None and valid.any():
        valid = valid & (conf >= np.percentile(conf[valid], config.conf_percentile))
    if not valid.any():
        raise Sem3RError("the scene has no valid reconstructed pixel; reconstruct it first")
    n, h, w = valid.shape
    flat = np.flatnonzero(valid.reshape(-1))
    xyz = pts.reshape(-1, 3)[flat].astype(np.float32)
    rgb = scene.images.reshape(-1, 3)[flat]
    pix_view = (flat // (h * w)).astype(np.int32)
    pix_xy = np.stack([flat % w, (flat // w) % h], 1).astype(np.float32)
    if config.voxel_size is None:
        point_of = np.arange(len(flat), dtype=np.int64)
        points, colors, rep = xyz, rgb, point_of
    else:
        grid = VoxelGrid.from_points(xyz, config.voxel_size)
        point_of = grid.inverse.astype(np.int64)
        points = grid.mean(xyz).astype(np.float32)
        colors = np.clip(np.rint(grid.mean(rgb)), 0, 255).astype(np.uint8)
        dist = np.linalg.norm(xyz - points[point_of], axis=1)
        order = np.lexsort((dist, point_of))
        rep = order[np.r_[True, point_of[order][1:] != point_of[order][:-1]]]
    point_of_pixel = np.full(n * h * w, -1, np.int64)
    point_of_pixel[flat] = point_of
    cam_xyz = np.zeros((n * h * w,), np.float32)
    for v in range(n):
        sel = pix_view == v
        cam_xyz[flat[sel]] = transform_points(scene.cam_from_world[v], xyz[sel].astype(np.float64))[:, 2]
    return Correspondence(
        points=points, colors=colors, view=pix_view[rep], pixel=pix_xy[rep],
        point_of_pixel=point_of_pixel.reshape(n, h, w), intrinsics=scene.intrinsics.copy(),
        cam_from_world=scene.cam_from_world.copy(), view_depth=cam_xyz.reshape(n, h, w),
        depth_abs_tol=config.depth_abs_tol, depth_rel_tol=config.depth_rel_tol,
    )


def correspond_points(points: np.ndarray, scene: Scene, colors: np.ndarray | None = None,
                      config: CorrespondenceConfig | None = None) -> Correspondence:
    """A correspondence record for points that did not come from the Scene's pixels (e.g. mesh vertices).

    Every point is projected into every view; a view sees it when it lands inside the image, in
    front of the camera, and passes the z-buffer test against the Scene's reconstructed depth. The
    point's representative view is the nearest view that sees it. ``point_of_pixel`` stays -1
    (no pixel *became* one of these points), so :meth:`Correspondence.labels_in_views` reads every
    label by projection.

    Args:
        points: ``(M, 3)`` world points.
        scene: a Scene with depth or world points.
        colors: ``(M, 3) uint8`` (default: the colour of the representative pixel).
        config: point source and z-buffer tolerances (stride and voxels do not apply).

    Returns:
        A :class:`Correspondence` over ``points``.

    Raises:
        Sem3RError: some points are seen by no view (the message says how many), or bad shapes.
    """
    config = config or CorrespondenceConfig()
    config.validate()
    points = np.asarray(points, np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or not len(points):
        raise Sem3RError(f"points must be (M, 3) with M >= 1, got {points.shape}")
    if not np.isfinite(points).all():
        raise Sem3RError("points contain NaN or inf")
    pts, valid = scene.points(config.source)
    n, h, w = valid.shape
    depth = np.zeros((n, h, w), np.float32)
    for v in range(n):
        depth[v] = transform_points(scene.cam_from_world[v], pts[v].reshape(-1, 3).astype(np.float64))[:, 2].reshape(h, w)
    depth[~valid] = 0
    best_z = np.full(len(points), np.inf)
    view = np.full(len(points), -1, np.int32)
    pixel = np.zeros((len(points), 2), np.float32)
    for v in range(n):
        uv, z = project(points.astype(np.float64), scene.intrinsics[v], scene.cam_from_world[v])
        px = np.where(np.isfinite(uv), np.rint(uv), -1).astype(np.int64)
        inside = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        d = np.zeros(len(points))
        d[inside] = depth[v][px[inside, 1], px[inside, 0]]
        better = inside & (d > 0) & (np.abs(z - d) <= config.depth_abs_tol + config.depth_rel_tol * d) & (z < best_z)
        best_z[better], view[better], pixel[better] = z[better], v, px[better]
    unseen = int((view < 0).sum())
    if unseen:
        raise Sem3RError(f"{unseen} of {len(points)} points have no view correspondence (no view sees them); "
                         "drop them or reconstruct more views")
    if colors is None:
        colors = scene.images[view, pixel[:, 1].astype(np.int64), pixel[:, 0].astype(np.int64)]
    return Correspondence(
        points=points, colors=np.asarray(colors, np.uint8), view=view, pixel=pixel,
        point_of_pixel=np.full((n, h, w), -1, np.int64), intrinsics=scene.intrinsics.copy(),
        cam_from_world=scene.cam_from_world.copy(), view_depth=depth,
        depth_abs_tol=config.depth_abs_tol, depth_rel_tol=config.depth_rel_tol,
    )
