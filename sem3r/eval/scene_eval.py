"""Evaluate a predicted :class:`~sem3r.scene.Scene` against a ground-truth Scene in one call.

:func:`evaluate_scene` runs every metric family the two scenes allow and returns one flat dict whose
keys are ``"<family>/<metric>"``:

=============  ==========================================================  ===========================
family         runs when                                                   protocol
=============  ==========================================================  ===========================
``depth``      both scenes have depth                                      :mod:`sem3r.eval.depth`,
                                                                           median scale alignment
``camera``     always (at least two views)                                 :mod:`sem3r.eval.camera`
``pointcloud`` the prediction has per-pixel points (depth or world points)  :mod:`sem3r.eval.pointcloud`
               and a reference cloud exists
``tracking``   both scenes have instance masks                             :mod:`sem3r.eval.tracking`
``semantic2d`` both scenes have semantic masks                             :mod:`sem3r.eval.semantic`
``instance3d`` point cloud evaluated, prediction has instance masks,       :mod:`sem3r.eval.instance_ap`
               reference cloud has instance ids
``semantic3d`` point cloud evaluated, prediction has semantic masks,       :mod:`sem3r.eval.semantic`
               reference cloud has semantic ids                            (voxel mIoU)
=============  ==========================================================  ===========================

Choices made here:

* **Reference cloud**: ``gt_cloud`` when given, otherwise the ground-truth Scene's fused cloud
  (voxel-averaged at ``reference_voxel_size``, labels by per-voxel majority). A given ``gt_cloud``
  (e.g. sampled on a whole mesh) is restricted to the points the ground-truth views observed
  (:func:`sem3r.geometry.visibility.observed_by_views`, a z-buffer test against the ground-truth
  depth, also requiring the instance and semantic ids the views show at the point's pixel when the
  Scene has those masks) when the ground-truth Scene has depth: surfaces no input view saw cannot
  be reconstructed and are not counted against completeness or recall.
* **Point cloud**: when the ground-truth Scene has per-pixel points (depth), the reference of the
  point-cloud family is those points (the DUSt3R / VGGT protocol: same views, same pixels). A
  seeded subset of at most ``max_points`` pixel positions is drawn once; the predicted cloud is the
  subset's pixels valid in the prediction, the reference its pixels valid in the ground truth, and
  the Umeyama correspondences its pixels valid in both. Without ground-truth depth the predicted
  pixels and the reference cloud are subsampled independently and the alignment starts from the
  centroid / scale fallback. The resulting similarity (``sim3+icp``) also maps
  the predicted points into the ground-truth frame for the 3D semantic families.
* **Class ids**: when both scenes carry ``metadata['class_names']``, predicted class ids are mapped
  to ground-truth ids by name (a name the ground truth lacks becomes -1, i.e. wrong); otherwise
  ids are compared as they are.
* **3D instance AP**: with ``gt.metadata['category_splits']`` (split name -> class names, as the
  synthetic generator writes) the head / common / tail breakdown is added. Every reference point takes the predicted instance id of the nearest aligned
  predicted pixel point within ``label_radius`` (-1 beyond it). A predicted instance's class and
  score come from ``pred.instances`` when its row has a class, otherwise the class is the majority
  transferred semantic label of its points and the score is 1.
* **3D semantic mIoU**: all aligned valid predicted pixels with their semantic labels against the
  reference cloud's labels, voxelised at ``voxel_size``.

:func:`format_metrics_table` renders such a dict as a markdown table.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from sem3r.errors import Sem3RError
from sem3r.eval.camera import camera_metrics
from sem3r.eval.depth import depth_metrics
from sem3r.eval.instance_ap import instance_ap
from sem3r.eval.pointcloud import align_point_clouds, pointcloud_metrics
from sem3r.eval.semantic import semantic_metrics_2d, semantic_miou_3d
from sem3r.eval.tracking import tracking_metrics
from sem3r.geometry.knn import knn
from sem3r.geometry.visibility import observed_by_views
from sem3r.geometry.voxels import VoxelGrid
from sem3r.scene import PointCloud, Scene


def _prefixed(family: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{family}/{k}": float(v) for k, v in values.items()}


def _class_map(pred_names: list[str], gt_names: list[str]) -> np.ndarray | None:
    """Predicted class id -> ground-truth class id by name (-1 when absent); ``None`` = identity."""
    if not pred_names or not gt_names:
        return None
    index = {name: i for i, name in enumerate(gt_names)}
    return np.array([index.get(name, -1) for name in pred_names], dtype=np.int64)


def _map_classes(ids: np.ndarray, mapping: np.ndarray | None) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if mapping is None:
        return ids
    inside = (ids >= 0) & (ids < len(mapping))
    return np.where(inside, mapping[np.clip(ids, 0, len(mapping) - 1)], -1)


def _subsample(n: int, max_points: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= max_points else np.sort(rng.choice(n, max_points, replace=False))


def _has_points(scene: Scene) -> bool:
    return scene.depth is not None or scene.world_points is not None


def _check_compatible(pred: Scene, gt: Scene) -> None:
    if pred.num_views != gt.num_views:
        raise Sem3RError(f"the predicted scene has {pred.num_views} views, the ground truth {gt.num_views}")
    if (pred.height, pred.width) != (gt.height, gt.width):
        raise Sem3RError(
            f"predicted images are {pred.height}x{pred.width}, ground-truth images {gt.height}x{gt.width} (H x W)"
        )


def _instance_table_rows(pred: Scene, ids: np.ndarray, class_map: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth class (-1 when unknown) and score of predicted instance ``ids`` from ``pred.instances``."""
    table = pred.instances
    row_of = {int(i): r for r, i in enumerate(table.ids)}
    rows = np.array([row_of.get(int(i), -1) for i in ids], dtype=np.int64)
    known = rows >= 0
    classes = np.full(len(ids), -1, dtype=np.int64)
    scores = np.ones(len(ids), dtype=np.float64)
    classes[known] = _map_classes(table.semantic_ids[rows[known]], class_map)
    scores[known] = table.scores[rows[known]]
    return classes, scores


def _instance_ap_3d(
    pred: Scene,
    point_instance: np.ndarray,
    point_semantic: np.ndarray,
    reference: PointCloud,
    class_names: list[str],
    class_map: np.ndarray | None,
    min_region_size: int,
    splits: dict[str, str] | None,
) -> dict[str, float]:
    """AP of predicted instance ids transferred onto the reference points ``(M,)``."""
    labelled = point_instance >= 0
    ids, compact = np.unique(point_instance[labelled], return_inverse=True)
    per_point = np.full(len(point_instance), -1, dtype=np.int64)
    per_point[labelled] = compact
    classes, scores = _instance_table_rows(pred, ids, class_map)
    if len(ids):
        grid = VoxelGrid(keys=ids, inverse=compact, counts=np.bincount(compact, minlength=len(ids)), voxel_size=1.0)
        classes = np.where(classes >= 0, classes, grid.majority(point_semantic[labelled]))
    return instance_ap(
        per_point, classes, scores, reference.instance_ids, reference.semantic_ids, class_names, splits, min_region_size
    )


def evaluate_scene(
    pred: Scene,
    gt: Scene,
    gt_cloud: PointCloud | None = None,
    *,
    voxel_size: float = 0.05,
    reference_voxel_size: float = 0.01,
    label_radius: float = 0.05,
    icp_threshold: float | None = 0.1,
    max_points: int = 100_000,
    min_region_size: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric the two scenes allow (table and choices in the module docstring).

    Args:
        pred: the predicted Scene (any world frame and scale).
        gt: the ground-truth Scene with the same views (count and image size).
        gt_cloud: the labelled ground-truth point cloud (default: ``gt``'s fused cloud).
        voxel_size: voxel edge of the 3D semantic mIoU (ground-truth units).
        reference_voxel_size: voxel edge used to fuse ``gt`` when ``gt_cloud`` is not given.
        label_radius: farthest predicted point a reference point takes its instance label from.
        icp_threshold: ICP correspondence distance of the point-cloud alignment.
        max_points: subsample size of each cloud for alignment and point-cloud metrics.
        min_region_size: minimum instance size (points) of the 3D instance AP.
        seed: seed of the subsampling.

    Returns:
        ``{"<family>/<metric>": value}``.

    Raises:
        Sem3RError: the scenes differ in view count or image size.
    """
    _check_compatible(pred, gt)
    out: dict[str, float] = {}
    if pred.depth is not None and gt.depth is not None:
        out.update(_prefixed("depth", depth_metrics(pred.depth, gt.depth, alignment="median")))
    if gt.num_views >= 2:
        out.update(_prefixed("camera", camera_metrics(pred.cam_from_world, gt.cam_from_world)))
    if pred.instance_masks is not None and gt.instance_masks is not None:
        out.update(_prefixed("tracking", tracking_metrics(pred.instance_masks, gt.instance_masks)))
    class_names = gt.class_names
    class_map = _class_map(pred.class_names, class_names)
    if pred.semantic_masks is not None and gt.semantic_masks is not None:
        mapped = _map_classes(pred.semantic_masks, class_map)
        num_classes = len(class_names) if class_names else None
        out.update(_prefixed("semantic2d", semantic_metrics_2d(mapped, gt.semantic_masks, num_classes)))

    reference = gt_cloud
    if reference is not None and gt.depth is not None:
        label_pairs = [
            (ids, masks)
            for ids, masks in ((reference.instance_ids, gt.instance_masks), (reference.semantic_ids, gt.semantic_masks))
            if masks is not None
        ]
        seen = observed_by_views(reference.xyz, gt.depth, gt.intrinsics, gt.cam_from_world, labels=label_pairs)
        reference = PointCloud(*(getattr(reference, f.name)[seen] for f in fields(PointCloud)))
    if reference is None and _has_points(gt):
        reference = gt.fused_point_cloud(voxel_size=reference_voxel_size)
    if reference is None or len(reference) < 3 or not _has_points(pred):
        return out
    rng = np.random.default_rng(seed)
    pred_points, pred_valid = pred.points()
    pred_xyz = pred_points[pred_valid].astype(np.float64)
    if len(pred_xyz) < 3:
        return out
    correspondences = None
    if _has_points(gt):
        gt_points, gt_valid = gt.points()
        pick = np.zeros(pred_valid.size, dtype=bool)
        pick[_subsample(pred_valid.size, max_points, rng)] = True
        pick = pick.reshape(pred_valid.shape)
        pred_sub, ref_sub = pred_points[pick & pred_valid], gt_points[pick & gt_valid]
        both = pick & pred_valid & gt_valid
        if both.sum() >= 3:
            correspondences = (pred_points[both], gt_points[both])
    else:
        pred_sub = pred_xyz[_subsample(len(pred_xyz), max_points, rng)]
        ref_sub = reference.xyz[_subsample(len(reference), max_points, rng)]
    pred_sub, ref_sub = pred_sub.astype(np.float64), ref_sub.astype(np.float64)
    if len(pred_sub) < 3 or len(ref_sub) < 3:
        return out
    ref_xyz = reference.xyz.astype(np.float64)
    transform = align_point_clouds(pred_sub, ref_sub, "sim3+icp", correspondences, icp_threshold)
    pc = pointcloud_metrics(transform.apply(pred_sub), ref_sub, align="none")
    pc["scale"] = transform.scale
    out.update(_prefixed("pointcloud", pc))

    aligned = transform.apply(pred_xyz)
    semantic = np.full(len(aligned), -1, dtype=np.int64)
    if pred.semantic_masks is not None:
        semantic = _map_classes(pred.semantic_masks[pred_valid], class_map)
    top_class = max(int(reference.semantic_ids.max(initial=-1)), int(semantic.max(initial=-1)))
    names = class_names or [str(i) for i in range(top_class + 1)]
    if pred.instance_masks is not None and (reference.instance_ids >= 0).any() and names:
        _, nearest = knn(aligned, ref_xyz, 1, max_distance=label_radius)
        nearest = nearest[:, 0]
        hit = nearest < len(aligned)
        instance = np.full(len(ref_xyz), -1, dtype=np.int64)
        instance[hit] = pred.instance_masks[pred_valid][nearest[hit]]
        transferred = np.full(len(ref_xyz), -1, dtype=np.int64)
        transferred[hit] = semantic[nearest[hit]]
        splits = {c: split for split, cs in gt.metadata.get("category_splits", {}).items() for c in cs}
        ap = _instance_ap_3d(pred, instance, transferred, reference, names, class_map, min_region_size, splits or None)
        out.update(_prefixed("instance3d", ap))
    if pred.semantic_masks is not None and (reference.semantic_ids >= 0).any():
        num_classes = len(class_names) if class_names else None
        miou = semantic_miou_3d(aligned, semantic, ref_xyz, reference.semantic_ids, voxel_size, num_classes)
        out.update(_prefixed("semantic3d", miou))
    return out


def object_metrics(pred: Scene, gt: Scene, corr=None, voxel_size: float = 0.02) -> dict[str, float]:
    """Class-agnostic instance AP of ``pred``'s instances against ``gt``'s on the views' own pixels.

    The valid pixels are merged into ``voxel_size`` voxels (or ``corr``'s points when given); every
    voxel takes the majority instance of its pixels in each Scene. Every object is one class, so no
    class label is needed: it measures the segmentation alone (ScanNet protocol of
    :func:`~sem3r.eval.instance_ap.instance_ap`, instances under 100 voxels ignored; prediction
    scores from ``pred``'s instance table).

    Args:
        pred: the segmented Scene (``instance_masks``), same views as ``gt``.
        gt: the ground-truth Scene (``instance_masks``).
        corr: a :class:`~sem3r.reconstruct.correspondence.Correspondence` of ``pred``'s views to reuse.
        voxel_size: voxel edge (m) when ``corr`` is not given.

    Returns:
        ``ap``, ``ap50``, ``ap25``, ``predicted`` and ``ground_truth`` (instance counts).
    """
    from sem3r.reconstruct.correspondence import CorrespondenceConfig, build_correspondence

    _check_compatible(pred, gt)
    corr = corr or build_correspondence(pred, CorrespondenceConfig(voxel_size=voxel_size))
    ids, truth = corr.point_labels(pred.instance_masks), corr.point_labels(gt.instance_masks)
    uniq, rows = np.unique(ids[ids >= 0], return_inverse=True)
    per_point = np.full(len(ids), -1, np.int64)
    per_point[ids >= 0] = rows
    score_of = dict(zip(pred.instances.ids.tolist(), pred.instances.scores.tolist()))
    scores = np.array([score_of.get(int(i), 1.0) for i in uniq])
    ap = instance_ap(per_point, np.zeros(len(uniq), np.int64), scores, truth, np.where(truth >= 0, 0, -1),
                     ["object"], min_region_size=100)
    return {"ap": ap["ap"], "ap50": ap["ap50"], "ap25": ap["ap25"], "predicted": float(len(uniq)),
            "ground_truth": float(len(np.unique(truth[truth >= 0])))}


def format_metrics_table(metrics: dict[str, float]) -> str:
    """Render ``{"family/metric": value}`` as a markdown table ``| metric | value |``.

    Counts (keys starting with ``num_`` after the family) print as integers, NaN as ``nan``, every
    other value with 4 decimals; rows keep the dict's order.

    Example:
        >>> print(format_metrics_table({"depth/abs_rel": 0.05, "depth/num_valid": 12.0}))
        | metric | value |
        |---|---|
        | depth/abs_rel | 0.0500 |
        | depth/num_valid | 12 |
    """
    lines = ["| metric | value |", "|---|---|"]
    for key, value in metrics.items():
        value = float(value)
        if np.isnan(value):
            text = "nan"
        elif key.rsplit("/", 1)[-1].startswith("num_") and value.is_integer():
            text = str(int(value))
        else:
            text = f"{value:.4f}"
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)
