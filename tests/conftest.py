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
