import os

# One thread: two spinning OpenMP threads on the 2 shared CI cores can collapse 10-35x.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet_lightning(monkeypatch):
    # Lightning prints advertising tips when optional packages are missing; keep test logs readable.
    monkeypatch.setenv("PL_DISABLE_TIPS", "1")
    yield
