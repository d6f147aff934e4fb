"""ROSS3D checkpoint loading: config.json, vocabulary rows from the tensors, training-only keys skipped, strict check."""

import pytest
import torch

pytest.importorskip("transformers")

from sem3r.errors import Sem3RError
from sem3r.reasoning.ross3d_loading import load_ross3d


def test_reload_is_bit_identical_and_training_keys_are_skipped(tmp_path, ross3d_writer):
    extra = {"model.mm_inv_projector.x.weight": torch.ones(2, 2), "model.mm_pixel_decoder.pixel_decoder.w": torch.ones(3)}
    saved = ross3d_writer(tmp_path, extra=extra)
    model, tok = load_ross3d(tmp_path, device="cpu")
    a, b = saved.state_dict(), model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.config.vocab_size == 300 and model.config.embed_vocab_size == 320
    assert tok.convert_tokens_to_ids("<|im_end|>") == model.config.im_end_id


def test_missing_vision_tower_is_named(tmp_path, ross3d_writer):
    ross3d_writer(tmp_path, drop="model.vision_tower.")
    with pytest.raises(Sem3RError, match=r"missing keys \(model\.vision_tower\.") as err:
        load_ross3d(tmp_path, device="cpu")
    assert "\n" not in str(err.value)


def test_missing_config_and_folder_are_one_line(tmp_path, ross3d_writer):
    ross3d_writer(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(Sem3RError, match="config.json is missing"):
        load_ross3d(tmp_path, device="cpu")
    with pytest.raises(Sem3RError, match="ROSS3D checkpoint folder .* does not exist"):
        load_ross3d(tmp_path / "nope", device="cpu")


def test_sharded_safetensors(tmp_path, ross3d_writer):
    import json

    from safetensors.torch import load_file, save_file

    saved = ross3d_writer(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    names = sorted(state)
    half = {k: state[k] for k in names[: len(names) // 2]}
    save_file(half, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in names if k not in half}, str(tmp_path / "model-00002-of-00002.safetensors"))
    weight_map = {k: f"model-0000{1 if k in half else 2}-of-00002.safetensors" for k in names}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    model, _ = load_ross3d(tmp_path, device="cpu", dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    assert torch.equal(model.lm_head.weight, saved.lm_head.weight.to(torch.bfloat16))
