"""Procedural indoor scenes with full ground truth, rendered by Sem3R's own CPU rasteriser.

A box room (floor, four walls, ceiling) is furnished with objects of :data:`CATEGORIES` built from
boxes, frusta and spheres (several instances per category, matching sets, small objects on tables
and shelves, flat paintings/posters/whiteboards/clocks on walls), painted with solid procedural
textures under fixed Lambertian lights, and rendered along a camera path into RGB, metric depth,
3D-consistent instance ids and semantic ids. The labelled mesh and an area-sampled labelled point
cloud are the geometric ground truth.

Conventions: world frame in metres with ``+z`` up and the floor at ``z = 0``; OpenCV cameras;
semantic ids index :data:`CLASS_NAMES` (``floor, wall, ceiling`` first, then the categories);
structure has instance id -1; objects have instance ids ``0..K-1``.

Example:
    >>> from sem3r.data.synthetic import SynthConfig, generate_scene
    >>> syn = generate_scene(SynthConfig(seed=0, num_views=2, height=24, width=32, num_points=500))
    >>> syn.scene.instance_masks.shape, syn.scene.metadata["source"]
    ((2, 24, 32), 'synthetic')
"""

from sem3r.data.synthetic.cameras import CAMERA_PATHS, camera_path, intrinsics_from_fov, look_at
from sem3r.data.synthetic.categories import (
    CATEGORIES,
    CATEGORY_SPLITS,
    CLASS_NAMES,
    NUM_STRUCTURE_CLASSES,
    STRUCTURE_CLASSES,
    WALL_FLAT_CATEGORIES,
)
from sem3r.data.synthetic.dataset import GroundTruth, load_ground_truth, save_ground_truth, write_dataset
from sem3r.data.synthetic.generator import (
    GENERATOR_VERSION,
    RenderedViews,
    SynthConfig,
    SyntheticScene,
    generate_scene,
    render_views,
)
from sem3r.data.synthetic.mesh import SceneMesh
from sem3r.data.synthetic.rasterizer import Raster, rasterize

__all__ = [
    "CAMERA_PATHS", "CATEGORIES", "CATEGORY_SPLITS", "CLASS_NAMES", "GENERATOR_VERSION", "GroundTruth",
    "NUM_STRUCTURE_CLASSES", "Raster", "RenderedViews", "STRUCTURE_CLASSES", "SceneMesh", "SynthConfig",
    "SyntheticScene", "WALL_FLAT_CATEGORIES", "camera_path", "generate_scene", "intrinsics_from_fov",
    "load_ground_truth", "look_at", "rasterize", "render_views", "save_ground_truth", "write_dataset",
]
