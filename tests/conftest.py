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
