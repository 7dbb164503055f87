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


def _ldam_reference(labels: torch.Tensor, counts: list[int]) -> list[int]:
    """The LDAM/RoBal code's draw, written out independently: np.random.seed(0), then shuffle each class's
    indices in class order and keep the first n_c; sorted."""
    import numpy as np

    np.random.seed(0)
    kept = []
    for c, n in enumerate(counts):
        members = np.where(labels.numpy() == c)[0]
        np.random.shuffle(members)
        kept.append(members[:n])
    return np.sort(np.concatenate(kept)).tolist()


@pytest.fixture
def ldam_reference():
    return _ldam_reference
