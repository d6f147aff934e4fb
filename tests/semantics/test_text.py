import os
import subprocess
import sys

import numpy as np
import pytest

from sem3r.errors import Sem3RError
from sem3r.semantics import (
    TEXT_ENCODERS,
    HashTextEncoder,
    TextEncoder,
    make_text_encoder,
    normalize_class_name,
    validate_class_names,
)

NAMES = [
    "wall", "floor", "ceiling", "chair", "table", "sofa", "bed", "cabinet", "shelf", "desk", "lamp",
    "painting", "poster", "whiteboard", "window", "door", "plant", "monitor", "keyboard", "book",
    "box", "pillow", "trash bin", "sink", "toilet", "bathtub", "curtain", "mirror", "refrigerator",
]


def test_hash_encoder_unit_norm_and_nearly_orthogonal():
    assert len(NAMES) == 29
    enc = HashTextEncoder(dim=64)
    e = enc.encode(NAMES)
    assert e.shape == (29, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    cos = e @ e.T
    off_diagonal = cos[~np.eye(29, dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.5
    assert isinstance(enc, TextEncoder)


def test_hash_encoder_is_deterministic_and_seeded():
    a, b = HashTextEncoder(dim=64, seed=0), HashTextEncoder(dim=64, seed=0)
    np.testing.assert_array_equal(a.encode(NAMES), b.encode(NAMES))
    np.testing.assert_array_equal(a.encode(["chair", "lamp"]), a.encode(NAMES)[[3, 10]])  # independent of the batch
    other = HashTextEncoder(dim=64, seed=1).encode(["chair"])[0]
    assert abs(float(other @ a.encode(["chair"])[0])) < 0.5


def test_hash_encoder_same_in_another_process():
    code = "from sem3r.semantics import HashTextEncoder; print(HashTextEncoder(16, 3).encode(['Trash_Bin']).tobytes().hex())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == HashTextEncoder(16, 3).encode(["trash bin"]).tobytes().hex()


def test_name_normalisation():
    enc = HashTextEncoder()
    e = enc.encode(["Trash_Bin", "trash bin", " TRASH-bin ", "trash  __ bin", "trashbin"])
    for row in e[1:4]:
        np.testing.assert_array_equal(row, e[0])
    assert abs(float(e[0] @ e[4])) < 0.5
    assert normalize_class_name("  Coffee_Table-Top ") == "coffee table top"


def test_validate_class_names():
    assert validate_class_names(["  chair", "coffee table ", "lamp"]) == ["chair", "coffee table", "lamp"]
    with pytest.raises(Sem3RError, match="empty"):
        validate_class_names([])
    with pytest.raises(Sem3RError, match="class name 1 is empty"):
        validate_class_names(["chair", "   "])
    with pytest.raises(Sem3RError, match="duplicate class name 'Trash_Bin'"):
        validate_class_names(["trash bin", "chair", "Trash_Bin"])
    with pytest.raises(Sem3RError, match="string"):
        validate_class_names(["chair", 3])
    with pytest.raises(Sem3RError, match="single string"):
        validate_class_names("chair")


def test_registry_and_make_text_encoder():
    assert {"hash", "clip", "siglip"} <= set(TEXT_ENCODERS)
    enc = make_text_encoder("hash", dim=32, seed=2)
    np.testing.assert_array_equal(enc.encode(["sofa"]), HashTextEncoder(32, 2).encode(["sofa"]))
    with pytest.raises(Sem3RError, match="unknown text encoder 'nonsense'"):
        make_text_encoder("nonsense")
    with pytest.raises(Sem3RError, match="has no option"):
        make_text_encoder("hash", width=3)
    with pytest.raises(Sem3RError, match="dim must be a positive int"):
        make_text_encoder("hash", dim=0)


def test_missing_model_directory_raises(tmp_path):
    pytest.importorskip("transformers")
    missing = tmp_path / "no-such-model"
    with pytest.raises(Sem3RError, match="does not exist") as info:
        make_text_encoder(str(missing))
    assert str(missing) in str(info.value)
    with pytest.raises(Sem3RError, match=f"cannot load text encoder '{tmp_path}'") as info:
        make_text_encoder(tmp_path)  # exists, but holds no model
    assert "\n" not in str(info.value)


WORDS = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "photo", "of", "this", "is", "chair", "table", "trash", "bin", "."]


def _tiny_tokenizer(transformers):
    """A word-level tokenizer ``<bos> words <eos>`` built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>",
                                                bos_token="<bos>", eos_token="<eos>", model_max_length=16)


def _text_config() -> dict:
    return {"vocab_size": len(WORDS), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 2, "eos_token_id": 3,
            "pad_token_id": 0}


def _vision_config() -> dict:
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 8, "patch_size": 4}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.CLIPConfig(text_config=_text_config(), vision_config=_vision_config(), projection_dim=24)
    model = transformers.CLIPModel(config).eval()
    path = tmp_path_factory.mktemp("tiny_clip")
    model.save_pretrained(path)
    _tiny_tokenizer(transformers).save_pretrained(path)
    return path, model


def _reference(model, tokenizer, prompts, **padding):
    import torch

    tokens = tokenizer(prompts, return_tensors="pt", **padding)
    with torch.no_grad():
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    features = out if isinstance(out, torch.Tensor) else out.pooler_output
    return torch.nn.functional.normalize(features, dim=1).numpy()


def test_clip_text_encoder_matches_the_model(tiny_clip):
    path, model = tiny_clip
    names = ["chair", "trash bin", "table"]
    enc = make_text_encoder(str(path))
    assert isinstance(enc, TextEncoder) and enc.dim == 24 and not enc.is_siglip
    e = enc.encode(names)
    assert e.shape == (3, 24) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    expected = _reference(model, enc.tokenizer, [f"a photo of a {n}." for n in names], padding=True)
    np.testing.assert_allclose(e, expected, atol=1e-5)
    one_at_a_time = make_text_encoder("clip", model=str(path), batch_size=1).encode(names)
    np.testing.assert_allclose(one_at_a_time, e, atol=1e-5)  # padding does not change an embedding
    bare = make_text_encoder(str(path), prompt_template="{}").encode(names)
    assert np.abs(bare - e).max() > 1e-3  # the template is used


def test_siglip_text_encoder_pads_to_max_length(tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    text = {k: v for k, v in _text_config().items() if k != "bos_token_id"}
    config = transformers.SiglipConfig(text_config={**text, "projection_size": 32}, vision_config=_vision_config())
    model = transformers.SiglipModel(config).eval()
    model.save_pretrained(tmp_path)
    _tiny_tokenizer(transformers).save_pretrained(tmp_path)
    enc = make_text_encoder("siglip", model=str(tmp_path))
    assert enc.is_siglip
    names = ["chair", "trash bin"]
    e = enc.encode(names)
    prompts = [f"This is a photo of {n}." for n in names]
    expected = _reference(model, enc.tokenizer, prompts, padding="max_length", max_length=16)
    np.testing.assert_allclose(e, expected, atol=1e-5)
    assert np.abs(e - _reference(model, enc.tokenizer, prompts, padding=True)).max() > 1e-3
