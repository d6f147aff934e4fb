"""G2VLM's text side: the prompt templates, the ids they become, and a character tokenizer for small models.

The official prompts (G2VLM facts, section 2), with Qwen2's special tokens:

* reconstruction: ``<|im_start|>`` followed by the ids of ``Reconstruct the 3D scene.`` (no template);
* chat: system text ``<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n``,
  then the image segments, then the user text ``QUESTION<|im_end|>\\n<|im_start|>assistant``; decoding
  starts from the last id of ``<|im_start|>assistant\\n`` (the newline) and stops at ``<|im_end|>``.

Tokenizers are read from the checkpoint folder through transformers (``AutoTokenizer``), so the official
Qwen2 tokenizer and the character tokenizer Sem3R writes for the models it trains
(:func:`write_char_tokenizer`) load the same way.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from sem3r.errors import Sem3RError, require

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
SYSTEM_TEXT = f"{IM_START}system\nYou are a helpful assistant.{IM_END}\n{IM_START}user\n"
USER_SUFFIX = f"{IM_END}\n{IM_START}assistant"
START_TEMPLATE = f"{IM_START}assistant\n"
RECON_TEXT = "Reconstruct the 3D scene."
SPECIAL_TOKENS = (IM_START, IM_END, VISION_START, VISION_END, "<|endoftext|>", "<unk>")


@dataclass
class ChatIds:
    """Token ids of one chat turn: ``system (n_s,)``, ``user (n_u,)`` and the first decode input ``start``."""

    system: list[int]
    user: list[int]
    start: int


def encode(tokenizer, text: str) -> list[int]:
    """Ids of ``text`` without any added bos / eos."""
    return list(tokenizer.encode(text, add_special_tokens=False))


def special_id(tokenizer, token: str) -> int:
    """The id of a special token; an error naming it when the tokenizer lacks it."""
    ids = encode(tokenizer, token)
    if len(ids) != 1:
        raise Sem3RError(f"the tokenizer has no single token for {token}")
    return int(ids[0])


def chat_ids(tokenizer, question: str) -> ChatIds:
    """The ids G2VLM's chat path feeds for ``question``.

    Raises:
        Sem3RError: an empty or blank question.
    """
    if not str(question).strip():
        raise Sem3RError("the question is empty")
    return ChatIds(encode(tokenizer, SYSTEM_TEXT), encode(tokenizer, str(question).strip() + USER_SUFFIX),
                   encode(tokenizer, START_TEMPLATE)[-1])


def recon_ids(tokenizer) -> list[int]:
    """``<|im_start|>`` + the ids of ``Reconstruct the 3D scene.``."""
    return [special_id(tokenizer, IM_START)] + encode(tokenizer, RECON_TEXT)


def load_tokenizer(folder: str | Path):
    """The tokenizer saved in a checkpoint folder, through transformers' ``AutoTokenizer``."""
    transformers = require("transformers", "vlm", "G2VLM's tokenizer")
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise Sem3RError(f"no usable tokenizer in '{folder}': {' '.join(str(exc).split())[:160]}") from None


def write_char_tokenizer(folder: str | Path) -> int:
    """Write a character-level tokenizer (printable ASCII + G2VLM's specials) to ``folder``.

    Used by the small models Sem3R trains: every character is one token, so numbers are spelled digit
    by digit and any question can be encoded. Files: ``tokenizer.json`` and ``tokenizer_config.json``.

    Returns:
        The vocabulary size.
    """
    from sem3r.io import write_json_atomic

    tokenizers = require("tokenizers", "vlm", "the G2VLM character tokenizer")
    chars = [c for c in string.printable if c not in "\t\r\x0b\x0c"]
    vocab = {c: i for i, c in enumerate(chars)}
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), behavior="isolated")
    tok.decoder = tokenizers.decoders.Fuse()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    write_json_atomic(folder / "tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast",
                                                         "eos_token": IM_END, "unk_token": "<unk>",
                                                         "model_max_length": 4096})
    return len(vocab)


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def format_answer(answer: float | str) -> str:
    """The reply text a model is trained to give: numbers with two decimals, choices as written."""
    return f"{float(answer):.2f}" if isinstance(answer, (int, float)) else str(answer)


def parse_number(reply: str) -> float | None:
    """The first number in a reply, or ``None``.

    Example:
        >>> parse_number("about 1.25 m"), parse_number("none")
        (1.25, None)
    """
    m = _NUMBER.search(reply)
    return float(m.group()) if m else None
