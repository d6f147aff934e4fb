"""G2VLM as an LMM: the chat path, its input checks, ``make_lmm("g2vlm:...")`` and ``sem3r ask --lmm g2vlm:``."""

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from sem3r.cli import main
from sem3r.errors import Sem3RError
from sem3r.models.g2vlm.preprocess import dino_images, vit_pixel_values
from sem3r.reasoning.g2vlm_chat import chat_ids, load_tokenizer
from sem3r.reasoning.g2vlm_lmm import G2VLMLMM, G2VLMLMMConfig
from sem3r.reasoning.lmm import LMM, make_lmm
from sem3r.scene import Scene


@pytest.fixture(scope="module")
def views():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (28, 42, 3), dtype=np.uint8) for _ in range(2)]


@pytest.fixture(scope="module")
def lmm(tiny_g2vlm):
    return make_lmm(f"g2vlm:{tiny_g2vlm[0]}", device="cpu", max_new_tokens=6)


def test_chat_is_the_models_greedy_chat_path(lmm, tiny_g2vlm, views):
    assert isinstance(lmm, G2VLMLMM) and isinstance(lmm, LMM)
    reply = lmm.chat("how far is the chair from the table?", views)
    assert isinstance(reply, str)
    assert lmm.chat("how far is the chair from the table?", views) == reply  # greedy: deterministic

    folder, model = tiny_g2vlm
    tok = load_tokenizer(folder)
    ids = chat_ids(tok, "how far is the chair from the table?")
    pixel_values, grid_thw = vit_pixel_values(np.stack(views), 56, model.config.vit)
    with torch.inference_mode():
        _, cache = model.prefill(torch.tensor(ids.system), torch.tensor(ids.user), dino_images(np.stack(views), 42),
                                 pixel_values, grid_thw)
        tokens = model.generate(cache, ids.start, 6)
    assert reply == tok.decode(tokens, skip_special_tokens=True).strip()


def test_views_of_different_sizes(lmm, views):
    other = np.random.default_rng(1).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    assert isinstance(lmm.chat("what is in the room?", [views[0], other]), str)


def test_bad_inputs_are_one_line_errors(lmm, views):
    with pytest.raises(Sem3RError, match="needs at least one image"):
        lmm.chat("how big is the room?", [])
    with pytest.raises(Sem3RError, match="question is empty"):
        lmm.chat("   \n", views)
    with pytest.raises(Sem3RError, match="must be uint8"):
        lmm.chat("how big is the room?", [views[0].astype(np.float32)])
    short = G2VLMLMM.from_components(G2VLMLMMConfig("tiny", max_new_tokens=6, max_context=200), lmm.model, lmm.tokenizer)
    counts = short.token_counts("x" * 300, views)
    assert counts["question"] == 300 + len("\nassistant") + 2  # characters; <|im_end|>, <|im_start|> one token each
    with pytest.raises(Sem3RError) as info:
        short.chat("x" * 300, views)
    message = str(info.value)
    assert "too long" in message and f"= {counts['total']} > max_context 200" in message
    assert f"{counts['images']} image" in message and "\n" not in message
    assert isinstance(short.chat("x", views), str)  # a short question fits


def test_make_lmm_options_and_context_from_the_checkpoint(tiny_g2vlm, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_g2vlm[0], folder)
    doc = json.loads((folder / "text_config.json").read_text())
    doc["max_position_embeddings"] = 4096
    (folder / "text_config.json").write_text(json.dumps(doc))
    lmm = make_lmm(f"g2vlm:{folder}", device="cpu", width=28, vit_size=28)
    assert lmm.max_context == 4096 and lmm.width == 28 and lmm.vit_size == 28
    assert lmm.config.max_new_tokens == 64
    with pytest.raises(Sem3RError, match="unknown option.*max_tokens.*expected device, dino_windows"):
        make_lmm(f"g2vlm:{folder}", max_tokens=3)
    with pytest.raises(Sem3RError, match="names no checkpoint"):
        make_lmm("g2vlm:")
    with pytest.raises(Sem3RError, match="does not exist"):
        make_lmm(f"g2vlm:{tmp_path / 'missing'}")
    with pytest.raises(Sem3RError, match="multiple of 14"):
        make_lmm(f"g2vlm:{folder}", width=50)


def test_cli_ask_with_g2vlm(tiny_g2vlm, tmp_path, capsys, views):
    scene = Scene(images=np.stack(views), intrinsics=np.tile(np.eye(3), (2, 1, 1)),
                  cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)))
    scene_dir = scene.save(tmp_path / "scene")
    spec = f"g2vlm:{tiny_g2vlm[0]}"
    code = main(["ask", str(scene_dir), "how many chairs are there?", "--lmm", spec, "--device", "cpu",
                 "--max-new-tokens", "4", "--max-views", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.splitlines()[-1].startswith("answered by G2VLM") and "from 1 of 2 views" in captured.out

    cases = [
        (["ask", str(scene_dir), "  ", "--lmm", spec], "question is empty"),
        (["ask", str(tmp_path / "nowhere"), "how big?", "--lmm", spec], "nowhere"),
        (["ask", str(scene_dir), "how big?", "--lmm", f"g2vlm:{tmp_path / 'missing'}"], "does not exist"),
        (["ask", str(scene_dir), "how big?", "--lmm", spec, "--max-views", "0"], "at least 1"),
        (["ask", str(scene_dir), "how big?", "--max-views", "2"], "apply to --lmm g2vlm:PATH only"),
    ]
    for args, needle in cases:
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
