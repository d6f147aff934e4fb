"""ROSS3D's prompt layout (conversation template ``qwen_1_5`` as the official evaluation builds it; facts section 5).

The official evaluation assembles the ids piece by piece (not through a chat template string)::

    <|im_start|> system \\n You are a helpful assistant. <|im_end|> \\n
    <|im_start|> user \\n  {text before <image>}  [IMAGE]  \\n  {text after <image>}  <|im_end|> \\n
    <|im_start|> assistant \\n

Each ``{text}`` piece is tokenised on its own; ``[IMAGE]`` is the placeholder id -200, which the model replaces by
all visual tokens (:meth:`~sem3r.models.ross3d.model.Ross3D.embed_prompt`). The questions start with
``<image>`` (ScanQA: ``"<image> {q} Answer the question simply."``), so the image directly follows
``user\\n``. The training-time spatial instruction is not used by the evaluation and is not added here.

The tokenizer stays outside: :func:`chat_ids` takes an ``encode(text) -> ids`` callable (no special tokens
added) and the two special ids.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from sem3r.errors import Sem3RError

IMAGE_TOKEN_INDEX = -200
IMAGE_TOKEN = "<image>"
SYSTEM_MESSAGE = "You are a helpful assistant."


def chat_ids(encode: Callable[[str], Sequence[int]], question: str, im_start_id: int, im_end_id: int,
             answer: str | None = None, system: str = SYSTEM_MESSAGE,
             image_token_index: int = IMAGE_TOKEN_INDEX) -> list[int]:
    """The official prompt ids for one question (and, for training / grounding, its answer).

    Args:
        encode: text -> ids without special tokens (``tokenizer(text).input_ids`` for Qwen2).
        question: user text; each ``<image>`` becomes ``image_token_index`` followed by ``\\n``.
        im_start_id, im_end_id: ``<|im_start|>`` / ``<|im_end|>``.
        answer: ``None`` ends with the open assistant header (generation); a string closes the turn.
        system: system message.

    Returns:
        The ids (plain Python ints; -200 marks the image).

    Example:
        >>> enc = lambda s: [ord(c) for c in s]
        >>> ids = chat_ids(enc, "<image> hi", 1, 2, system="S")
        >>> ids[:6], ids[13:22]
        ([1, 115, 121, 115, 116, 101], [115, 101, 114, 10, -200, 10, 32, 104, 105])
    """
    nl = list(encode("\n"))
    ids = [im_start_id, *encode("system"), *nl, *encode(system), im_end_id, *nl]
    ids += [im_start_id, *encode("user"), *nl]
    pieces = question.split(IMAGE_TOKEN)
    for i, text in enumerate(pieces):
        ids += list(encode(text)) if text else []
        if i < len(pieces) - 1:
            ids += [image_token_index, *nl]
    ids += [im_end_id, *nl, im_start_id, *encode("assistant"), *nl]
    if answer is not None:
        ids += [*encode(answer), im_end_id, *nl]
    return [int(i) for i in ids]


def split_at_image(input_ids: torch.Tensor, image_token_index: int = IMAGE_TOKEN_INDEX) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(L,)`` ids -> (text ids without the placeholder, ``(L - 1,)``) and the placeholder's position (or ``None``).

    Raises:
        Sem3RError: more than one placeholder (the official model takes one video per prompt).
    """
    where = torch.nonzero(input_ids == image_token_index).flatten()
    if len(where) > 1:
        raise Sem3RError(f"a ROSS3D prompt holds at most one image placeholder, got {len(where)}")
    if len(where) == 0:
        return input_ids, None
    return torch.cat((input_ids[:where[0]], input_ids[where[0] + 1:])), where[0]
