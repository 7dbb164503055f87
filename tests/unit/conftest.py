"""Unit tests use tiny tensors: one intra-op thread is faster than several on a shared 2-core machine
(thread spin-waiting under load made a 0.5 s AutoAttack call take 10 s)."""
import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
