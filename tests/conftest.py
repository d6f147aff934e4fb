"""Settings shared by every test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """The tests' tensors are tiny: one thread is fastest and leaves the other core to other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_tiny_g2vlm(folder, seed: int = 0):
    """Save a tiny G2VLM checkpoint folder (configs, ``model.safetensors``, character tokenizer).

    The text config's special ids come from the tokenizer; geometry width 42 and ViT size 56 keep
    every test pass small. Returns the model (eval mode) that was saved.
    """
    from safetensors.torch import save_file

    from sem3r.training.g2vlm import new_small_model

    torch.manual_seed(seed)
    model, _ = new_small_model(folder, image_width=42, vit_image_size=56)
    model.eval()
    model.config.save_folder(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return model


@pytest.fixture(scope="session")
def tiny_g2vlm(tmp_path_factory):
    """``(folder, model)``: a tiny G2VLM checkpoint folder and the model saved in it (do not modify either)."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_g2vlm")
    return folder, write_tiny_g2vlm(folder)


def write_tiny_ross3d(folder, seed: int = 0, extra: dict | None = None, drop: str | None = None):
    """Save a tiny ROSS3D checkpoint folder (``config.json``, ``model.safetensors``, character tokenizer).

    ``Ross3DConfig.small()`` with ``<|im_start|>`` / ``<|im_end|>`` ids from the tokenizer; ``extra`` tensors are
    added to the file, keys starting with ``drop`` left out. Returns the model (eval mode) that was saved.
    """
    import json

    from safetensors.torch import save_file

    from sem3r.models.ross3d import Ross3D, Ross3DConfig
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


@pytest.fixture(scope="session")
def tiny_ross3d(tmp_path_factory):
    """``(folder, model)``: a tiny ROSS3D checkpoint folder and the model saved in it (do not modify either)."""
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny_ross3d")
    return folder, write_tiny_ross3d(folder)


@pytest.fixture
def ross3d_writer():
    """:func:`write_tiny_ross3d`, for tests that write their own (modified) folders."""
    return write_tiny_ross3d
