"""Geometry backends behind one function: ``reconstruct(scene, backend, config, **options) -> Scene``.

========================  ====================================================================
name                      what it does
========================  ====================================================================
``feedforward``           the geometry transformer: cameras, depth and points from images
``rgbd``                  sensor depth and known poses, validated, with confidences
``oracle``                the ground truth of a synthetic scene
``colmap``                SIFT + matching + incremental structure from motion (pycolmap, CPU)
``g2vlm``                 G2VLM's geometry expert: cameras, depth and points from images
========================  ====================================================================

Names are imported lazily from their submodules, so ``import sem3r.reconstruct`` stays cheap and a
backend's dependencies (torch models, pycolmap) load only when it is used.

Example:
    >>> from sem3r.reconstruct import BACKENDS, reconstruct
    >>> sorted(BACKENDS)
    ['colmap', 'feedforward', 'g2vlm', 'oracle', 'rgbd']
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "BACKENDS": "registry",
    "Backend": "registry",
    "get_backend": "registry",
    "make_config": "registry",
    "reconstruct": "registry",
    "register_backend": "registry",
    "unregister_backend": "registry",
    "derive_scene": "common",
    "NOT_VISIBLE": "correspondence",
    "Correspondence": "correspondence",
    "CorrespondenceConfig": "correspondence",
    "build_correspondence": "correspondence",
    "correspond_points": "correspondence",
    "valid_depth_points": "common",
    "RGBDConfig": "rgbd",
    "depth_discontinuities": "rgbd",
    "reconstruct_rgbd": "rgbd",
    "OracleConfig": "oracle",
    "ground_truth_views": "oracle",
    "reconstruct_oracle": "oracle",
    "MATCHERS": "colmap",
    "ColmapConfig": "colmap",
    "ColmapResult": "colmap",
    "reconstruct_colmap": "colmap",
    "run_colmap": "colmap",
    "FeedforwardConfig": "feedforward",
    "Sem3RGeometry": "feedforward",
    "reconstruct_feedforward": "feedforward",
    "G2VLMGeometry": "g2vlm",
    "G2VLMReconstructConfig": "g2vlm",
    "estimate_intrinsics": "g2vlm",
    "load_g2vlm": "g2vlm",
    "reconstruct_g2vlm": "g2vlm",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.reconstruct", _SUBMODULE)
