import pytest
import torch
from safetensors.torch import save_file

from sem3r.errors import Sem3RError
from sem3r.reconstruct.checkpoint import load_state_dict_strict, read_state_dict, resolve_checkpoint


def tiny():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_pt_and_safetensors_round_trip_with_module_prefix(tmp_path):
    model = tiny()
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "a.pt")
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    for path in (tmp_path / "a.pt", resolve_checkpoint(tmp_path)):
        other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        load_state_dict_strict(other, read_state_dict(path))
        x = torch.randn(5, 3)
        assert torch.equal(other(x), model(x))


def test_mismatch_names_the_keys_on_one_line(tmp_path):
    state = tiny().state_dict()
    state["0.weight"] = torch.zeros(7, 3)
    state["extra.bias"] = torch.zeros(1)
    del state["2.bias"]
    with pytest.raises(Sem3RError) as info:
        load_state_dict_strict(tiny(), state)
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing keys (2.bias)" in message and "1 unexpected keys (extra.bias)" in message
    assert "0.weight (7, 3) != (4, 3)" in message


class Evil:
    pass


def test_pickled_objects_are_refused_and_paths_checked(tmp_path):
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Sem3RError, match="cannot read checkpoint"):
        read_state_dict(tmp_path / "evil.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(Sem3RError, match="cannot read checkpoint"):
        read_state_dict(tmp_path / "junk.safetensors")
    with pytest.raises(Sem3RError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(Sem3RError, match="no checkpoint in"):
        resolve_checkpoint(tmp_path / "empty_dir")


def test_hub_id_without_network_says_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Sem3RError, match="local checkpoint path"):
        resolve_checkpoint("facebook/VGGT-1B")
