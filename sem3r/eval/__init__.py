"""Evaluation metrics, one module per family, each with its exact protocol in the module docstring.

=====================  ===========================================================================
module                 metrics
=====================  ===========================================================================
``depth``              AbsRel, delta < 1.25, inlier ratio (1.03), RMSE after scene scale alignment
``camera``             RRA / RTA at thresholds, AUC@30 (VGGT) from relative poses
``pointcloud``         accuracy, completeness, Chamfer, normal consistency after Sim(3) + ICP
``tracking``           T-mIoU and T-SR of instance spatial tracking (IGGT)
``semantic``           2D mIoU / mAcc from a confusion matrix; voxel 3D mIoU (IGGT)
``instance_ap``        ScanNet-protocol 3D instance AP, AP50, AP25, head / common / tail
``qa``                 MRA (VSI-Bench), exact match, refined exact match
``superpoints``        under-segmentation error, boundary recall / precision, instance recovery
``scene_eval``         everything two Scenes allow, a markdown table, class-agnostic object AP
=====================  ===========================================================================
"""

from sem3r.eval.camera import camera_metrics, pose_auc
from sem3r.eval.depth import depth_metrics
from sem3r.eval.instance_ap import (
    AP_THRESHOLDS,
    InstanceAPEvaluator,
    average_precision,
    instance_ap,
)
from sem3r.eval.pointcloud import align_point_clouds, pointcloud_metrics
from sem3r.eval.qa import (
    MRA_THRESHOLDS,
    exact_match,
    mean_relative_accuracy,
    normalize_answer,
    refined_exact_match,
)
from sem3r.eval.scene_eval import evaluate_scene, format_metrics_table, object_metrics
from sem3r.eval.semantic import (
    confusion_matrix,
    metrics_from_confusion,
    semantic_metrics_2d,
    semantic_miou_3d,
)
from sem3r.eval.superpoints import instance_recovery, superpoint_metrics
from sem3r.eval.tracking import tracking_metrics

__all__ = [
    "AP_THRESHOLDS",
    "MRA_THRESHOLDS",
    "InstanceAPEvaluator",
    "align_point_clouds",
    "average_precision",
    "camera_metrics",
    "confusion_matrix",
    "depth_metrics",
    "evaluate_scene",
    "exact_match",
    "format_metrics_table",
    "instance_ap",
    "instance_recovery",
    "mean_relative_accuracy",
    "metrics_from_confusion",
    "normalize_answer",
    "object_metrics",
    "pointcloud_metrics",
    "pose_auc",
    "refined_exact_match",
    "semantic_metrics_2d",
    "semantic_miou_3d",
    "superpoint_metrics",
    "tracking_metrics",
]
