"""Training: geometry losses (VGGT and G2VLM), IGGT's contrastive loss, synthetic multi-view datasets
and a plain trainer.

Example:
    >>> from sem3r.training import GeometryLoss, GeometryLossConfig
    >>> GeometryLoss(GeometryLossConfig.preset("g2vlm")).config.normal_weight
    1.0
"""

from sem3r.training.contrastive import (
    ContrastiveLossConfig,
    instance_contrastive_loss,
    sample_instance_pixels,
)
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
from sem3r.training.iggt import (
    IGGTLoss,
    IGGTLossConfig,
    IGGTTrainingConfig,
    load_backbone_weights,
    train_iggt,
)
from sem3r.training.losses import (
    GeometryLoss,
    GeometryLossConfig,
    camera_loss,
    confidence_loss,
    gradient_loss,
    iteration_weights,
)
from sem3r.training.run_config import TrainingRunConfig, fit_and_export
from sem3r.training.trainer import (
    TrainConfig,
    Trainer,
    checkpoint_paths,
    load_checkpoint,
    lr_factor,
)

__all__ = [
    "ContrastiveLossConfig", "GeometryBatchSampler", "GeometryLoss", "GeometryLossConfig", "GeometryTrainingConfig",
    "IGGTLoss", "IGGTLossConfig", "IGGTTrainingConfig", "SampleKey", "SyntheticGeometryDataset", "TrainConfig",
    "Trainer", "TrainingRunConfig", "camera_loss", "checkpoint_paths", "collate_geometry", "confidence_loss",
    "fit_and_export", "geometry_dataloader", "gradient_loss", "instance_contrastive_loss", "iteration_weights",
    "load_backbone_weights", "load_checkpoint", "lr_factor", "normal_loss", "normals_from_points", "optimal_scale",
    "relative_camera_loss", "relative_poses", "rotation_geodesic", "sample_instance_pixels", "scaled_point_loss",
    "train_geometry", "train_iggt",
]
