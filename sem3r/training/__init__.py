"""Training: geometry losses (VGGT and G2VLM), synthetic multi-view datasets and a plain trainer.

Example:
    >>> from sem3r.training import GeometryLoss, GeometryLossConfig
    >>> GeometryLoss(GeometryLossConfig.preset("g2vlm")).config.normal_weight
    1.0
"""

from sem3r.training.dataset import (
    GeometryBatchSampler,
    SampleKey,
    SyntheticGeometryDataset,
    collate_geometry,
    geometry_dataloader,
)
from sem3r.training.g2vlm_losses import (
    normal_loss,
    normals_from_points,
    optimal_scale,
    relative_camera_loss,
    relative_poses,
    rotation_geodesic,
    scaled_point_loss,
)
from sem3r.training.geometry import GeometryTrainingConfig, train_geometry
from sem3r.training.losses import (
    GeometryLoss,
    GeometryLossConfig,
    camera_loss,
    confidence_loss,
    gradient_loss,
    iteration_weights,
)
from sem3r.training.trainer import TrainConfig, Trainer, checkpoint_paths, load_checkpoint, lr_factor

__all__ = [
    "GeometryBatchSampler", "GeometryLoss", "GeometryLossConfig", "GeometryTrainingConfig", "SampleKey",
    "SyntheticGeometryDataset", "TrainConfig", "Trainer", "camera_loss", "checkpoint_paths", "collate_geometry",
    "confidence_loss", "geometry_dataloader", "gradient_loss", "iteration_weights", "load_checkpoint", "lr_factor",
    "normal_loss", "normals_from_points", "optimal_scale", "relative_camera_loss", "relative_poses",
    "rotation_geodesic", "scaled_point_loss", "train_geometry",
]
