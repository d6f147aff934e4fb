import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.reconstruct import BACKENDS, RGBDConfig, get_backend, make_config, reconstruct, register_backend, unregister_backend
from sem3r.reconstruct.common import derive_scene


@dataclass
class EchoConfig:
    metric: bool = True


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SynthConfig(seed=1, num_views=2, height=24, width=32, num_points=0)).scene


@pytest.fixture
def temporary_backends():
    names = []

    def add(name, fn, config_cls, **kw):
        register_backend(name, fn, config_cls, **kw)
        names.append(name)

    yield add
    for name in names:
        if name in BACKENDS:
            unregister_backend(name)


def test_builtin_backends_are_registered():
    assert list(BACKENDS)[:4] == ["feedforward", "rgbd", "oracle", "colmap"]


def test_unknown_backend_lists_the_known_ones(scene):
    with pytest.raises(Sem3RError, match="unknown geometry backend 'nerf'; known backends: feedforward, rgbd, oracle, colmap"):
        reconstruct(scene, "nerf")


def test_importing_the_package_imports_no_backend_module():
    code = (
        "import sys, sem3r.reconstruct as r; r.BACKENDS; r.reconstruct; "
        "print(sorted(m for m in sys.modules if m.startswith('sem3r.reconstruct.') and m != 'sem3r.reconstruct.registry'), "
        "'pycolmap' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]", "False"]


def test_missing_backend_module_is_a_clear_error(scene, temporary_backends):
    temporary_backends("later", "sem3r.reconstruct.not_written_yet:run", "sem3r.reconstruct.not_written_yet:Config")
    with pytest.raises(Sem3RError, match=r"backend 'later' is not available: its module 'sem3r.reconstruct.not_written_yet' is not part"):
        reconstruct(scene, "later")


def test_missing_dependency_of_a_backend_module_is_named(scene, temporary_backends, tmp_path, monkeypatch):
    (tmp_path / "needs_dep_backend.py").write_text("import a_package_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    temporary_backends("needs_dep", "needs_dep_backend:run", "needs_dep_backend:Config")
    with pytest.raises(Sem3RError, match="backend 'needs_dep' needs the package 'a_package_nobody_installed'"):
        reconstruct(scene, "needs_dep")


def test_missing_attribute_is_named(scene, temporary_backends):
    temporary_backends("typo", "sem3r.reconstruct.rgbd:reconstruct_rgbdd", "sem3r.reconstruct.rgbd:RGBDConfig")
    with pytest.raises(Sem3RError, match="module 'sem3r.reconstruct.rgbd' has no 'reconstruct_rgbdd'"):
        reconstruct(scene, "typo")


def test_duplicate_registration_needs_replace(temporary_backends):
    with pytest.raises(Sem3RError, match="already registered"):
        register_backend("rgbd", lambda s, c: s, EchoConfig)
    temporary_backends("echo", lambda s, c: s, EchoConfig)
    temporary_backends("echo", lambda s, c: s, EchoConfig, replace=True)
    assert get_backend("echo").config_cls is EchoConfig


def test_options_build_and_validate_the_config():
    assert make_config("rgbd", max_depth=2.0) == RGBDConfig(max_depth=2.0)
    assert make_config("rgbd", RGBDConfig(min_depth=0.1), max_depth=2.0) == RGBDConfig(min_depth=0.1, max_depth=2.0)
    with pytest.raises(Sem3RError, match=r"backend 'rgbd' has no option\(s\) max_dept \(it takes: min_depth, max_depth"):
        make_config("rgbd", max_dept=2.0)
    with pytest.raises(Sem3RError, match="backend 'rgbd' takes a RGBDConfig config, got EchoConfig"):
        make_config("rgbd", EchoConfig())
    with pytest.raises(Sem3RError, match="min_depth .* must be below max_depth"):
        make_config("rgbd", min_depth=3.0, max_depth=2.0)


def test_result_is_new_and_records_the_backend(scene):
    before = scene.metadata.copy()
    out = reconstruct(scene, "rgbd", max_depth=5.0)
    assert out is not scene and scene.depth_conf is None and scene.metadata == before
    assert out.metadata["geometry"] == "rgbd" and out.metadata["metric"] is True
    assert out.metadata["geometry_config"]["max_depth"] == 5.0
    assert not np.shares_memory(out.images, scene.images)


def test_backend_contract_is_enforced(scene, temporary_backends):
    temporary_backends("same", lambda s, c: s, EchoConfig)
    with pytest.raises(TypeError, match="must return a new Scene"):
        reconstruct(scene, "same")
    unset = scene.select_views([0])
    unset.metadata.pop("metric")
    temporary_backends("unset", lambda s, c: unset, EchoConfig)
    with pytest.raises(TypeError, match=r"did not set metadata\['metric'\]"):
        reconstruct(scene, "unset")
    temporary_backends("plugin", lambda s, c: derive_scene(s, {"metric": c.metric}), EchoConfig)
    assert reconstruct(scene, "plugin", metric=False).metadata["metric"] is False


def test_reconstruct_needs_a_scene():
    with pytest.raises(Sem3RError, match="reconstruct needs a Scene, got ndarray"):
        reconstruct(np.zeros((2, 4, 4, 3), np.uint8), "rgbd")
