"""The ``colmap`` backend: classical structure from motion with pycolmap on the CPU.

Pipeline (:func:`run_colmap`), in a temporary workspace that is deleted afterwards:

1. the views are written as lossless PNGs named ``00000.png, 00001.png, ...`` (the name is the
   view's index, so COLMAP's images map back to the Scene's views by name);
2. SIFT features (at most ``max_num_features`` per image);
3. matching of every pair (``matcher="exhaustive"``, the right choice for the tens of views Sem3R
   works with) or of each view with its ``sequential_overlap`` successors (``"sequential"``, for
   long ordered videos), each pair geometrically verified;
4. incremental mapping; COLMAP may build several models when the views fall apart into groups that
   share no matches, and the one with the most registered views is taken.

Cameras. When the intrinsics are known (``intrinsics="known"``, or ``"auto"`` and
``metadata['intrinsics_known']`` is True), they are given to COLMAP as ``PINHOLE`` cameras (one
camera shared by all views when the matrices are equal, one per view otherwise) and kept fixed
unless ``refine_intrinsics``. Otherwise COLMAP estimates a ``camera_model`` (default ``SIMPLE_RADIAL``:
one focal length, principal point at the centre, one radial distortion term) shared by all views
(``single_camera``), starting from a focal length of 1.2 times the longer image side. The Scene's
intrinsics are the pinhole part of COLMAP's cameras, with the principal point moved to the OpenCV
convention (COLMAP puts the top-left pixel's centre at ``(0.5, 0.5)``, Sem3R at ``(0, 0)``);
distortion parameters are reported in ``metadata['sfm']['cameras']``, and the images are not
undistorted.

Unregistered views. The result keeps all views, in the input order, so that masks and names stay
aligned with the input. ``metadata['registered']`` (a list of bools) says which views COLMAP
registered; the others get the identity ``cam_from_world`` as a placeholder (a Scene cannot hold NaN
poses) and must be skipped, e.g. ``scene.select_views(np.flatnonzero(scene.metadata['registered']))``.
Fewer than ``min_registered`` registered views raise :class:`~sem3r.errors.Sem3RError`. The lower
level :func:`run_colmap` returns NaN poses for unregistered views.

Output. Poses are in COLMAP's world frame and scale (arbitrary: ``metadata['metric'] = False``).
No dense depth is computed (``depth`` is None, ``metadata['dense'] = False``): COLMAP's dense
stereo needs CUDA; use the ``feedforward`` backend, or fuse sensor depth, for dense geometry. Dense
fields and the instance table of the input are dropped (they belong to another frame); images,
names and 2D masks are kept. The triangulated points are kept as the Scene's sparse point cloud
(``sparse_points (P, 3) float32`` and ``sparse_colors (P, 3) uint8``, same frame): the PLY, GLB,
HTML, COLMAP and nerfstudio exports use them, while the stages that need per-pixel geometry
(segmentation, BEV, the scene graph) say that a dense backend is needed
(:meth:`~sem3r.scene.Scene.require_dense_geometry`). :func:`run_colmap` also returns their
reprojection errors.

Determinism. ``seed`` seeds COLMAP's global random generator and every RANSAC and mapper stage.
Feature extraction and matching give the same result for any ``num_threads``; the incremental
mapper's multi-threaded stages do not (repeated runs differ slightly), so with ``deterministic``
(the default) the mapper runs on one thread and the same input gives bit-identical output.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from sem3r.data.readers.colmap import CAMERA_MODELS, ColmapCamera
from sem3r.data.readers.common import one_line
from sem3r.errors import Sem3RError, require
from sem3r.reconstruct.common import derive_scene
from sem3r.scene import InstanceTable, Scene

MATCHERS = ("exhaustive", "sequential")
"""Values of :attr:`ColmapConfig.matcher`."""

INTRINSICS_MODES = ("auto", "known", "estimate")
"""Values of :attr:`ColmapConfig.intrinsics`."""

_QUIET_LOG_LEVEL = 3  # glog FATAL: COLMAP's INFO/WARNING/ERROR lines stay silent; failures are raised by us


@dataclass
class ColmapConfig:
    """Options of the ``colmap`` backend (see the module docstring).

    Attributes:
        max_num_features: SIFT features per image at most.
        max_image_size: images are downscaled for extraction so their longer side is at most this.
        matcher: ``"exhaustive"`` (all pairs) or ``"sequential"`` (each view with its successors).
        sequential_overlap: successors matched per view by the sequential matcher.
        camera_model: COLMAP camera model estimated when the intrinsics are not known (a key of
            :data:`~sem3r.data.readers.colmap.CAMERA_MODELS`).
        single_camera: with unknown intrinsics, all views share one camera (same device and zoom).
        intrinsics: ``"known"`` passes the Scene's intrinsics to COLMAP, ``"estimate"`` lets
            COLMAP estimate ``camera_model``, ``"auto"`` passes them when
            ``metadata['intrinsics_known']`` is True (a missing key counts as unknown).
        refine_intrinsics: let bundle adjustment refine the focal length and distortion; ``None``:
            only when they are estimated (known intrinsics stay fixed).
        init_min_num_inliers: verified matches the initial pair needs (COLMAP's default).
        abs_pose_min_num_inliers: 2D-3D inliers a view needs to be registered (COLMAP's default).
        min_registered: fewer registered views raise :class:`~sem3r.errors.Sem3RError`.
        num_threads: CPU threads of extraction and matching (and of mapping unless
            ``deterministic``); -1: all.
        deterministic: run the mapper on one thread so that results are reproducible.
        seed: seed of every random stage.
        progress: show a progress bar over the stages.
        verbose: let COLMAP print its log.
    """

    max_num_features: int = 8192
    max_image_size: int = 3200
    matcher: str = "exhaustive"
    sequential_overlap: int = 10
    camera_model: str = "SIMPLE_RADIAL"
    single_camera: bool = True
    intrinsics: str = "auto"
    refine_intrinsics: bool | None = None
    init_min_num_inliers: int = 100
    abs_pose_min_num_inliers: int = 30
    min_registered: int = 2
    num_threads: int = -1
    deterministic: bool = True
    seed: int = 0
    progress: bool = True
    verbose: bool = False

    def validate(self) -> None:
        """Raise :class:`Sem3RError` naming the first invalid option."""
        if self.matcher not in MATCHERS:
            raise Sem3RError(f"unknown matcher '{self.matcher}' (expected one of {', '.join(MATCHERS)})")
        if self.intrinsics not in INTRINSICS_MODES:
            raise Sem3RError(f"intrinsics must be one of {', '.join(INTRINSICS_MODES)}, got '{self.intrinsics}'")
        if self.camera_model not in CAMERA_MODELS:
            raise Sem3RError(f"unknown COLMAP camera model '{self.camera_model}' (known: {', '.join(CAMERA_MODELS)})")
        for name in ("max_num_features", "max_image_size", "sequential_overlap", "init_min_num_inliers", "abs_pose_min_num_inliers"):
            if getattr(self, name) < 1:
                raise Sem3RError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.min_registered < 2:
            raise Sem3RError(f"min_registered must be at least 2 (a model has two views or more), got {self.min_registered}")
        if self.num_threads == 0 or self.num_threads < -1:
            raise Sem3RError(f"num_threads must be -1 (all) or positive, got {self.num_threads}")
        if self.seed < 0:
            raise Sem3RError(f"seed must be non-negative, got {self.seed}")


@dataclass
class ColmapResult:
    """What :func:`run_colmap` recovered, for ``N`` input views and ``P`` sparse points.

    Attributes:
        cam_from_world: ``(N, 3, 4) float64`` OpenCV world -> camera poses in COLMAP's frame and
            scale; NaN rows for views that were not registered.
        intrinsics: ``(N, 3, 3) float64`` pinhole ``K`` of each view's COLMAP camera, OpenCV pixel
            convention (distortion is in ``cameras``).
        registered: ``(N,) bool`` views in the reconstruction.
        points_xyz: ``(P, 3) float64`` triangulated points, same frame, sorted by COLMAP point id.
        points_rgb: ``(P, 3) uint8`` their colours.
        points_error: ``(P,) float64`` their mean reprojection errors in pixels.
        cameras: ``N`` :class:`~sem3r.data.readers.colmap.ColmapCamera`, COLMAP's model and
            parameters (COLMAP's pixel convention) of each view.
        num_models: models COLMAP built (the largest is returned).
        num_verified_pairs: view pairs with geometrically verified (inlier) matches.
    """

    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    registered: np.ndarray
    points_xyz: np.ndarray
    points_rgb: np.ndarray
    points_error: np.ndarray
    cameras: list[ColmapCamera]
    num_models: int
    num_verified_pairs: int


def _check_inputs(images: np.ndarray, intrinsics: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise Sem3RError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    n = len(images)
    if n < 2:
        raise Sem3RError(f"structure from motion needs at least 2 views, got {n}")
    if intrinsics is None:
        return images, None
    K = np.asarray(intrinsics, np.float64)
    K = np.broadcast_to(K, (n, 3, 3)).copy() if K.shape == (3, 3) else K
    if K.shape != (n, 3, 3):
        raise Sem3RError(f"intrinsics must be (3, 3) or ({n}, 3, 3), got {K.shape}")
    if not np.isfinite(K).all() or (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any():
        raise Sem3RError("intrinsics must be finite with positive focal lengths")
    return images, K


@contextlib.contextmanager
def _colmap_log(pycolmap, verbose: bool) -> Iterator[None]:
    """Silence COLMAP's log (unless ``verbose``) and restore the level afterwards."""
    level = pycolmap.logging.minloglevel
    if not verbose:
        pycolmap.logging.minloglevel = _QUIET_LOG_LEVEL
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = level


@contextlib.contextmanager
def _stage(bar: tqdm, name: str) -> Iterator[None]:
    """One step of the pipeline: named on the progress bar, COLMAP's exceptions turned into one-line errors."""
    bar.set_postfix_str(name)
    try:
        yield
    except Sem3RError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        raise Sem3RError(f"COLMAP failed during {name}: {one_line(exc)}") from None
    bar.update()


def _colmap_params(K: np.ndarray) -> list[float]:
    """PINHOLE ``fx, fy, cx, cy`` in COLMAP's pixel convention (principal point plus 0.5)."""
    return [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]


def _import_views(
    pycolmap, database: Path, image_dir: Path, names: list[str], K: np.ndarray | None, config: ColmapConfig
) -> list[ColmapCamera]:
    """Create the database with one shared camera or one per view, extract SIFT; returns each view's initial camera."""
    reader = pycolmap.ImageReaderOptions()
    shared = config.single_camera if K is None else bool(np.allclose(K, K[0]))
    if K is None:
        reader.camera_model = config.camera_model
    else:
        reader.camera_model = "PINHOLE"
        reader.camera_params = ",".join(repr(float(v)) for v in _colmap_params(K[0]))
    mode = pycolmap.CameraMode.SINGLE if shared else pycolmap.CameraMode.PER_IMAGE
    pycolmap.Database.open(database).close()
    pycolmap.import_images(database, image_dir, camera_mode=mode, image_names=names, options=reader)
    cameras: list[ColmapCamera] = [None] * len(names)
    with pycolmap.Database.open(database) as db:
        for image in db.read_all_images():
            i = names.index(image.name)
            camera = db.read_camera(image.camera_id)
            if K is not None and not shared:
                camera.params = _colmap_params(K[i])
                db.update_camera(camera)
            cameras[i] = _camera(camera)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = config.num_threads
    extraction.max_image_size = config.max_image_size
    extraction.use_gpu = False
    extraction.sift.max_num_features = config.max_num_features
    pycolmap.extract_features(database, image_dir, image_names=names, camera_mode=mode, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu)
    return cameras


def _match(pycolmap, database: Path, config: ColmapConfig) -> int:
    """Match and verify view pairs; returns the number of verified pairs."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    matching.use_gpu = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = config.seed
    if config.matcher == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification, device=pycolmap.Device.cpu)
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = config.sequential_overlap
        pairing.loop_detection = False
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                  verification_options=verification, device=pycolmap.Device.cpu)
    with pycolmap.Database.open(database) as db:
        _, inliers = db.read_two_view_geometry_num_inliers()
    return int(np.count_nonzero(np.asarray(inliers) > 0))


def _mapping_options(pycolmap, config: ColmapConfig, known: bool):
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = 1 if config.deterministic else config.num_threads
    options.random_seed = config.seed
    options.mapper.random_seed = config.seed
    options.triangulation.random_seed = config.seed
    options.min_model_size = config.min_registered
    options.mapper.init_min_num_inliers = config.init_min_num_inliers
    options.mapper.abs_pose_min_num_inliers = config.abs_pose_min_num_inliers
    refine = (not known) if config.refine_intrinsics is None else config.refine_intrinsics
    options.ba_refine_focal_length = refine
    options.ba_refine_extra_params = refine
    options.ba_refine_principal_point = False
    options.mapper.abs_pose_refine_focal_length = refine
    options.mapper.abs_pose_refine_extra_params = refine
    return options


def _camera(pycolmap_camera) -> ColmapCamera:
    c = pycolmap_camera
    return ColmapCamera(int(c.camera_id), c.model.name, int(c.width), int(c.height), np.array(c.params, np.float64))


def _collect(reconstruction, names: list[str], initial: list[ColmapCamera], num_models: int, num_pairs: int) -> ColmapResult:
    """Map COLMAP's images back to the views (by name) and gather poses, cameras and points.

    A view's camera is the reconstruction's (refined) camera when the reconstruction holds it,
    else the camera the view was imported with (an unregistered view with its own camera).
    """
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    poses = np.full((n, 3, 4), np.nan)
    registered = np.zeros(n, bool)
    for image in reconstruction.images.values():
        if image.has_pose:
            i = index[image.name]
            poses[i] = np.asarray(image.cam_from_world().matrix(), np.float64)
            registered[i] = True
    refined = {int(i): _camera(c) for i, c in reconstruction.cameras.items()}
    cameras = [refined.get(c.camera_id, c) for c in initial]
    ids = sorted(reconstruction.points3D)
    points = [reconstruction.points3D[i] for i in ids]
    return ColmapResult(
        cam_from_world=poses,
        intrinsics=np.stack([c.intrinsics() for c in cameras]),
        registered=registered,
        points_xyz=np.array([p.xyz for p in points], np.float64).reshape(-1, 3),
        points_rgb=np.array([p.color for p in points], np.uint8).reshape(-1, 3),
        points_error=np.array([p.error for p in points], np.float64),
        cameras=cameras,
        num_models=num_models,
        num_verified_pairs=num_pairs,
    )


def run_colmap(images: np.ndarray, intrinsics: np.ndarray | None = None, config: ColmapConfig | None = None) -> ColmapResult:
    """Sparse structure from motion of ``N`` views with pycolmap (see the module docstring).

    Args:
        images: ``(N, H, W, 3) uint8``, ``N >= 2``.
        intrinsics: ``(N, 3, 3)`` or ``(3, 3)`` known OpenCV intrinsics (kept fixed unless
            ``config.refine_intrinsics``), or ``None`` to let COLMAP estimate ``config.camera_model``.
        config: options (default :class:`ColmapConfig`).

    Returns:
        The :class:`ColmapResult` of the model with the most registered views.

    Raises:
        MissingDependencyError: pycolmap is not installed (``pip install 'sem3r[sfm]'``).
        Sem3RError: bad input, a COLMAP failure, or fewer than ``config.min_registered``
            registered views (the message says how many pairs matched and what to try).

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=6, camera_path="walk", num_points=0)).scene
        >>> result = run_colmap(scene.images, scene.intrinsics, ColmapConfig(progress=False))  # doctest: +SKIP
        >>> int(result.registered.sum()), result.points_xyz.shape[1]  # doctest: +SKIP
        (6, 3)
    """
    config = config or ColmapConfig()
    config.validate()
    images, K = _check_inputs(images, intrinsics)
    pycolmap = require("pycolmap", "sfm", "the colmap backend")
    n = len(images)
    names = [f"{i:05d}.png" for i in range(n)]
    with (
        tempfile.TemporaryDirectory(prefix="sem3r-colmap-") as tmp,
        _colmap_log(pycolmap, config.verbose),
        tqdm(total=4, desc="colmap", unit="stage", disable=not config.progress, leave=False) as bar,
    ):
        workspace = Path(tmp)
        image_dir = workspace / "images"
        image_dir.mkdir()
        database = workspace / "database.db"
        pycolmap.set_random_seed(config.seed)
        with _stage(bar, "writing images"):
            for name, image in zip(names, images):
                Image.fromarray(image).save(image_dir / name)
        with _stage(bar, "feature extraction"):
            initial = _import_views(pycolmap, database, image_dir, names, K, config)
        with _stage(bar, "matching"):
            num_pairs = _match(pycolmap, database, config)
        with _stage(bar, "mapping"):
            options = _mapping_options(pycolmap, config, K is not None)
            models = pycolmap.incremental_mapping(database, image_dir, workspace / "sparse", options=options)
        best = max(models.values(), key=lambda r: r.num_reg_images(), default=None)
        count = 0 if best is None else int(best.num_reg_images())
        if count < config.min_registered:
            raise Sem3RError(
                f"COLMAP registered {count} of {n} views (at least {config.min_registered} needed); {num_pairs} of "
                f"{n * (n - 1) // 2} view pairs had verified matches: use views with more overlap and texture, a higher "
                "resolution, or the 'feedforward' backend"
            )
        return _collect(best, names, initial, len(models), num_pairs)


def reconstruct_colmap(scene: Scene, config: ColmapConfig) -> Scene:
    """Backend function: cameras of the Scene's views by structure from motion (see the module docstring).

    Args:
        scene: ``N >= 2`` views; with ``config.intrinsics="auto"``,
            ``metadata['intrinsics_known']`` decides whether its intrinsics are passed to COLMAP.
        config: backend options.

    Returns:
        A new Scene with COLMAP's ``intrinsics (N, 3, 3)`` and ``cam_from_world (N, 3, 4)``
        (identity for unregistered views), no dense fields, ``sparse_points (P, 3)`` and
        ``sparse_colors (P, 3)`` (COLMAP's triangulated points), ``metadata['registered']`` (``N``
        bools), ``metadata['metric'] = False``, ``metadata['dense'] = False`` and
        ``metadata['sfm']`` (cameras, counts, reprojection error; the key ``colmap`` stays the
        reader's description of an input COLMAP model).

    Raises:
        MissingDependencyError: pycolmap is missing.
        Sem3RError: see :func:`run_colmap`.

    Example:
        >>> from sem3r.data.synthetic import SynthConfig, generate_scene
        >>> scene = generate_scene(SynthConfig(num_views=6, camera_path="walk", num_points=0)).scene
        >>> out = reconstruct_colmap(scene, ColmapConfig(progress=False))  # doctest: +SKIP
        >>> sum(out.metadata["registered"]), out.depth is None  # doctest: +SKIP
        (6, True)
    """
    known = config.intrinsics == "known" or (config.intrinsics == "auto" and scene.metadata.get("intrinsics_known") is True)
    result = run_colmap(scene.images, scene.intrinsics if known else None, config)
    poses = np.where(result.registered[:, None, None], result.cam_from_world, np.eye(3, 4))
    used = {c.camera_id: c for c in result.cameras}
    metadata = {
        "metric": False,
        "dense": False,
        "registered": result.registered.tolist(),
        "sfm": {
            "method": "colmap",
            "note": "sparse structure from motion: arbitrary frame and scale, no dense depth; unregistered views have "
            "placeholder identity poses (see 'registered')",
            "num_registered": int(result.registered.sum()),
            "num_points": len(result.points_xyz),
            "mean_reprojection_error": float(result.points_error.mean()) if len(result.points_error) else None,
            "num_models": result.num_models,
            "num_verified_pairs": result.num_verified_pairs,
            "intrinsics_given": known,
            "camera_ids": [c.camera_id for c in result.cameras],
            "cameras": {
                str(i): {"model": c.model, "width": c.width, "height": c.height, "params": c.params.tolist()} for i, c in used.items()
            },
        },
    }
    return derive_scene(
        scene,
        metadata,
        intrinsics=result.intrinsics,
        cam_from_world=poses,
        depth=None,
        depth_conf=None,
        world_points=None,
        point_conf=None,
        instances=InstanceTable(),
        sparse_points=result.points_xyz.astype(np.float32),
        sparse_colors=result.points_rgb,
    )
