"""Sem3R: semantic 3D reconstruction and spatial understanding.

Give it a few photos (or an RGB-D sequence) of a room and it returns cameras, depth, a point cloud,
3D-consistent object instances with open-vocabulary labels, and answers to spatial questions.
Everything flows through one object, :class:`sem3r.scene.Scene`.
"""

from sem3r.errors import Sem3RError
from sem3r.scene import InstanceTable, PointCloud, Scene

__version__ = "0.1.0"
__all__ = ["Scene", "InstanceTable", "PointCloud", "Sem3RError", "__version__"]
