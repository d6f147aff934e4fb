"""ROSS3D checkpoint loading: config.json, vocabulary rows from the tensors, training-only keys skipped, strict check."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from sem3r.errors import Sem3RError
from sem3r.models.ross3d import Ross3D, Ross3DConfig
from sem3r.reasoning.ross3d_loading import load_ross3d


def write_tiny_ross3d(folder, seed: int = 0, extra: dict | None = None, drop: str | None = None):
    """Save a tiny ROSS3D folder (config.json, model.safetensors, character tokenizer); returns the saved model."""
    from safetensors.torch import save_file

    from sem3r.reasoning.g2vlm_chat import write_char_tokenizer

    write_char_tokenizer(folder)
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    cfg = Ross3DConfig.small(im_start_id=vocab["<|im_start|>"], im_end_id=vocab["<|im_end|>"])
    torch.manual_seed(seed)
    model = Ross3D(cfg).eval()
    cfg.save(folder)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if drop is None or not k.startswith(drop)}
    save_file(state | (extra or {}), str(folder / "model.safetensors"))
    return model


def test_reload_is_bit_identical_and_training_keys_are_skipped(tmp_path):
    extra = {"model.mm_inv_projector.x.weight": torch.ones(2, 2), "model.mm_pixel_decoder.pixel_decoder.w": torch.ones(3)}
    saved = write_tiny_ross3d(tmp_path, extra=extra)
    model, tok = load_ross3d(tmp_path, device="cpu")
    a, b = saved.state_dict(), model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert model.config.vocab_size == 300 and model.config.embed_vocab_size == 320
    assert tok.convert_tokens_to_ids("<|im_end|>") == model.config.im_end_id


def test_missing_vision_tower_is_named(tmp_path):
    write_tiny_ross3d(tmp_path, drop="model.vision_tower.")
    with pytest.raises(Sem3RError, match=r"missing keys \(model\.vision_tower\.") as err:
        load_ross3d(tmp_path, device="cpu")
    assert "\n" not in str(err.value)


def test_missing_config_and_folder_are_one_line(tmp_path):
    write_tiny_ross3d(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(Sem3RError, match="config.json is missing"):
        load_ross3d(tmp_path, device="cpu")
    with pytest.raises(Sem3RError, match="ROSS3D checkpoint folder .* does not exist"):
        load_ross3d(tmp_path / "nope", device="cpu")
