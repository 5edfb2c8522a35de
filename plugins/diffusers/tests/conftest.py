import os

# One thread: two spinning OpenMP threads on 2 shared cores can collapse 10-35x.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
