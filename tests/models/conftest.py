"""The model tests run tiny batches in the test process itself.

On a 2-core machine shared with the rest of the suite, torch's intra-op threads only wait on each
other for batches this small (30 steps took 16 s on two threads against 3 s on one under load), so
these tests use one thread; training itself runs in Ray workers, which set their own.
"""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
