"""Shared fixtures of the semantics tests."""

import pytest

WORDS = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "photo", "of", "the", "red", "chair", "table", "."]


def save_tiny_vlm(transformers, path, siglip=False):
    """Save a tiny random CLIP (or SigLIP) with a word-level tokenizer and an image processor to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    torch.manual_seed(0)
    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                                     bos_token="<bos>", eos_token="<eos>", model_max_length=16)
    text = {"vocab_size": len(WORDS), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16, "eos_token_id": 3, "pad_token_id": 0}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 8, "patch_size": 4}
    if siglip:
        config = transformers.SiglipConfig(text_config={**text, "projection_size": 32}, vision_config=vision)
        model = transformers.SiglipModel(config).eval()
        processor = transformers.SiglipImageProcessor(size={"height": 8, "width": 8})
    else:
        config = transformers.CLIPConfig(text_config={**text, "bos_token_id": 2}, vision_config=vision, projection_dim=24)
        model = transformers.CLIPModel(config).eval()
        processor = transformers.CLIPImageProcessor(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor.save_pretrained(path)
    return model


@pytest.fixture(scope="session")
def tiny_vlm_saver():
    """``save_tiny_vlm(transformers, path, siglip=False)``: writes a tiny random CLIP or SigLIP, offline."""
    return save_tiny_vlm
