import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helper modules (toy_problem, ...)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny problems run fastest on one thread; pytest-xdist's other worker has the other core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
