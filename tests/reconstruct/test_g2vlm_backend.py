"""The ``g2vlm`` geometry backend and G2VLM checkpoint loading (tiny model, CPU)."""

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from sem3r.cli import main
from sem3r.data.synthetic import SynthConfig, generate_scene
from sem3r.errors import Sem3RError
from sem3r.geometry.camera import invert_pose
from sem3r.reasoning.g2vlm_chat import recon_ids
from sem3r.reconstruct import reconstruct
from sem3r.reconstruct.g2vlm import (
    G2VLMGeometry,
    estimate_intrinsics,
    g2vlm_weight_files,
    load_g2vlm,
    resolve_g2vlm_folder,
)
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SynthConfig(seed=0, num_views=2, height=28, width=42, num_points=0)).scene


@pytest.fixture
def copy(tiny_g2vlm, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_g2vlm[0], folder)
    return folder


def _edit_json(path, **changes):
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def _assert_same_model(model, reference, tokenizer):
    ref = reference.state_dict()
    state = model.state_dict()
    assert state.keys() == ref.keys()
    for k, v in ref.items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k
    images = torch.rand(2, 3, 28, 42, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor(recon_ids(tokenizer))
    with torch.inference_mode():
        a, b = reference.reconstruct(images, ids), model.reconstruct(images, ids)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_reload_is_bit_identical(tiny_g2vlm):
    folder, reference = tiny_g2vlm
    model, tokenizer = load_g2vlm(folder, device="cpu")
    assert tokenizer is not None and not model.training
    assert model.config == reference.config
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    _assert_same_model(model, reference, tokenizer)


def test_sharded_and_torch_weights_load(tiny_g2vlm, copy):
    from safetensors.torch import save_file

    reference = tiny_g2vlm[1]
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    (copy / "model.safetensors").unlink()
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(copy / shard))
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    assert [p.name for p in g2vlm_weight_files(copy)] == sorted(shards)
    model, tokenizer = load_g2vlm(copy, device="cpu")
    _assert_same_model(model, reference, tokenizer)

    (copy / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(Sem3RError, match="missing shard.*model-00002-of-00002.safetensors"):
        load_g2vlm(copy, device="cpu")

    for p in copy.glob("model*"):
        p.unlink()
    torch.save({f"module.{k}": v for k, v in state.items()}, copy / "g2vlm.pt")
    model, tokenizer = load_g2vlm(copy, device="cpu")
    _assert_same_model(model, reference, tokenizer)


def test_extra_official_keys_are_dropped(tiny_g2vlm, copy):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny_g2vlm[1].state_dict().items()}
    state["vit_pos_embed.pos_embed"] = torch.zeros(1, 4, 128)
    state["latent_pos_embed.pos_embed"] = torch.zeros(1, 4, 128)
    state["conf_head.proj.weight"] = torch.zeros(3, 3)
    state["conf_decoder.blocks.0.norm.weight"] = torch.zeros(3)
    state["Pi3Loss.point_loss.segformer.w"] = torch.zeros(2)
    save_file(state, str(copy / "model.safetensors"))
    model, tokenizer = load_g2vlm(copy, device="cpu")
    _assert_same_model(model, tiny_g2vlm[1], tokenizer)
    # any other unknown name is still an error
    state["vit_pos_embed.extra"] = torch.zeros(2)
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(Sem3RError, match=r"1 unexpected keys \(vit_pos_embed.extra\)"):
        load_g2vlm(copy, device="cpu")


def test_bf16_load_keeps_heads_in_fp32(tiny_g2vlm):
    model, _ = load_g2vlm(tiny_g2vlm[0], device="cpu", dtype="bfloat16")
    for name, p in model.named_parameters():
        head = name.startswith(("point_head.", "global_point_head.", "camera_head."))
        assert p.dtype == (torch.float32 if head else torch.bfloat16), name
    assert model.image_mean.dtype == torch.float32
    with pytest.raises(Sem3RError, match="unknown dtype 'float8'"):
        load_g2vlm(tiny_g2vlm[0], device="cpu", dtype="float8")


def test_missing_config_file_is_named(copy):
    (copy / "dino_config.json").unlink()
    with pytest.raises(Sem3RError, match="dino_config.json is missing"):
        load_g2vlm(copy, device="cpu")


def test_configs_that_disagree_with_the_weights_name_the_keys(copy):
    _edit_json(copy / "text_config.json", hidden_size=256, num_attention_heads=8)
    _edit_json(copy / "vit_config.json", hidden_size=256)
    with pytest.raises(Sem3RError) as info:
        load_g2vlm(copy, device="cpu")
    message = str(info.value)
    assert "does not match the model configuration" in message and "wrong shapes" in message
    vocab = json.loads((copy / "text_config.json").read_text())["vocab_size"]
    assert f"language_model.model.embed_tokens.weight ({vocab}, 128) != ({vocab}, 256)" in message
    assert "\n" not in message


def test_folder_without_weights_or_tokenizer(copy, tiny_g2vlm):
    (copy / "model.safetensors").unlink()
    with pytest.raises(Sem3RError, match="no G2VLM weights in"):
        load_g2vlm(copy, device="cpu")
    shutil.copy(tiny_g2vlm[0] / "model.safetensors", copy / "model.safetensors")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (copy / name).unlink()
    model, tokenizer = load_g2vlm(copy, device="cpu")
    assert tokenizer is None
    with pytest.raises(Sem3RError, match="has no tokenizer files"):
        G2VLMGeometry(model, tokenizer, str(copy))


def test_paths_and_hub_ids_fail_fast_in_one_line(tmp_path, monkeypatch):
    with pytest.raises(Sem3RError, match="does not exist"):
        resolve_g2vlm_folder(tmp_path / "nothing")
    with pytest.raises(Sem3RError, match="is a file"):
        (tmp_path / "w.safetensors").write_bytes(b"")
        resolve_g2vlm_folder(tmp_path / "w.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Sem3RError, match="offline .* not in the local hub cache; pass a local checkpoint folder"):
        resolve_g2vlm_folder("sem3r-test/no-such-g2vlm")
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)
    with pytest.raises(Sem3RError, match=r"sem3r\[hub\]"):
        resolve_g2vlm_folder("sem3r-test/no-such-g2vlm")


def test_backend_gives_a_consistent_scene(tiny_g2vlm, scene):
    folder, model = tiny_g2vlm
    before = scene.images.copy()
    out = reconstruct(scene, "g2vlm", checkpoint=str(folder), device="cpu", world_frame="model")
    n, h, w = scene.images.shape[:3]
    assert out.intrinsics.shape == (n, 3, 3) and out.cam_from_world.shape == (n, 3, 4)
    assert out.depth.shape == (n, h, w) and out.world_points.shape == (n, h, w, 3)
    assert np.isfinite(out.intrinsics).all() and np.isfinite(out.cam_from_world).all()
    assert np.isfinite(out.depth).all() and (out.depth > 0).all() and np.isfinite(out.world_points).all()
    assert out.depth_conf is None and out.point_conf is None
    assert out.metadata["geometry"] == "g2vlm" and out.metadata["metric"] is False
    assert out.metadata["scale"] == "arbitrary" and out.metadata["geometry_config"]["checkpoint"] == str(folder)
    assert np.array_equal(scene.images, before) and np.array_equal(out.images, before)
    assert out.instance_masks is not None  # the input's masks are kept (same image size)

    # the cameras are the inverse of the model's own camera-to-world poses; points = R local + t
    geo = G2VLMGeometry(model, load_g2vlm(folder, device="cpu")[1])
    pred = geo.predict(scene.images)
    assert pred["local_points"].shape[1:3] == (h, w)  # width 42 from the config: model size == scene size
    assert np.allclose(out.cam_from_world, invert_pose(pred["camera_poses"])[:, :3], atol=1e-6)
    assert np.allclose(out.depth, pred["local_points"][..., 2], rtol=1e-6)
    assert np.allclose(out.world_points, pred["points"], atol=1e-5)

    first = reconstruct(scene, "g2vlm", checkpoint=str(folder), device="cpu")  # default: first camera's frame
    assert np.allclose(first.cam_from_world[0], np.eye(3, 4), atol=1e-6)
    assert np.allclose(first.depth, out.depth)


def test_backend_resizes_to_the_scene_size(tiny_g2vlm, scene):
    out = reconstruct(scene, "g2vlm", checkpoint=str(tiny_g2vlm[0]), device="cpu", width=28, resample="nearest")
    assert out.metadata["g2vlm"]["model_size"] == [14, 28]  # height 28 * 28 / 42 rounded to 14
    assert out.depth.shape == scene.depth.shape and np.isfinite(out.world_points).all()
    out = reconstruct(scene, "g2vlm", checkpoint=str(tiny_g2vlm[0]), device="cpu", width=84)  # shrunk, antialiased
    assert out.metadata["g2vlm"]["model_size"] == [56, 84] and out.depth.shape == scene.depth.shape
    with pytest.raises(Sem3RError, match="2 views, more than G2VLM's max_frames=1"):
        reconstruct(scene, "g2vlm", checkpoint=str(tiny_g2vlm[0]), device="cpu", max_frames=1)
    with pytest.raises(Sem3RError, match="multiple of 14"):
        reconstruct(scene, "g2vlm", checkpoint=str(tiny_g2vlm[0]), width=30)


def test_estimate_intrinsics_recovers_a_pinhole():
    rng = np.random.default_rng(0)
    S, h, w = 2, 14, 21
    fx, fy, cx, cy = 61.5, 47.25, 19.3, 12.1
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = rng.uniform(0.5, 4.0, (S, h, w))
    pts = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z], axis=-1)
    K, ok = estimate_intrinsics(pts, principal_point="fit")
    assert ok.all()
    assert np.allclose(K, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], atol=1e-9)
    # the same maps describing an image twice the size: intrinsics in that image's pixels
    K2, _ = estimate_intrinsics(pts, (2 * h, 2 * w), principal_point="fit")
    assert np.allclose(K2[0], [[2 * fx, 0, 2 * cx + 0.5], [0, 2 * fy, 2 * cy + 0.5], [0, 0, 1]], atol=1e-9)
    # principal point at the centre: only the focal lengths are fitted
    centred = np.stack([(u - (w - 1) / 2) / fx * z, (v - (h - 1) / 2) / fy * z, z], axis=-1)
    pts_invalid = centred.copy()
    pts_invalid[:, 0, 0] = np.nan
    pts_invalid[:, 1, 1, 2] = -1.0  # behind the camera: ignored
    Kc, ok = estimate_intrinsics(pts_invalid)
    assert ok.all() and np.allclose(Kc[:, 0, 0], fx) and np.allclose(Kc[:, 1, 1], fy)
    assert np.allclose(Kc[:, 0, 2], (w - 1) / 2) and np.allclose(Kc[:, 1, 2], (h - 1) / 2)
    # degenerate views (no valid pixel, mirrored rays) get the default guess
    bad = centred.copy()
    bad[0, ..., 2] = 0.0
    bad[1, ..., 0] *= -1
    Kb, ok = estimate_intrinsics(bad)
    assert not ok.any() and np.allclose(Kb[:, 0, 0], 1.2 * w) and np.isfinite(Kb).all()


def test_cli_reconstruct_with_g2vlm(tiny_g2vlm, tmp_path, capsys):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (28, 42, 3), dtype=np.uint8)).save(photos / name)
    Image.fromarray(rng.integers(0, 255, (50, 40, 3), dtype=np.uint8)).save(photos / "c.png")  # another size
    out = tmp_path / "scene"
    code = main(["reconstruct", str(photos), "--out", str(out), "--backend", "g2vlm", "--checkpoint", str(tiny_g2vlm[0]),
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    scene = Scene.load(out)
    assert scene.images.shape == (3, 28, 42, 3) and scene.depth.shape == (3, 28, 42)  # the first image's size
    assert scene.metadata["geometry"] == "g2vlm" and scene.image_names == ["a.png", "b.png", "c.png"]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text_config.json").write_text("{}")
    cases = [(str(tmp_path / "missing"), "does not exist"), (str(bad), "vit_config.json is missing"),
             (str(tiny_g2vlm[0]), "multiple of 14")]
    for checkpoint, needle in cases:
        extra = ["--resolution", "30"] if needle == "multiple of 14" else []
        code = main(["reconstruct", str(photos), "--out", str(tmp_path / "o"), "--backend", "g2vlm",
                     "--checkpoint", checkpoint, "--device", "cpu", *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err, (checkpoint, err)
    assert not (tmp_path / "o").exists()
