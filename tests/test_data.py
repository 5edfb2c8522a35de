import pytest
import torch

from lightning_pde.data import CollocationDataModule
from lightning_pde.problems import Burgers


class FakeTrainer:
    def __init__(self, rank=0, world=1, epoch=0):
        self.global_rank, self.world_size, self.current_epoch = rank, world, epoch
        self.lightning_module = None


def shard(rank, world, epoch=0, **kwargs):
    dm = CollocationDataModule(problem=Burgers(n_pde=101, n_initial=10, n_boundary=10), **kwargs)
    dm.trainer = FakeTrainer(rank, world, epoch)
    dm.setup("fit")
    return dm.sample(epoch)


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_are_disjoint_and_cover_the_single_process_set(world):
    single = shard(0, 1)
    shards = [shard(rank, world) for rank in range(world)]
    for name, points in single.items():
        rows = torch.cat([s[name] for s in shards])
        assert len(rows) == len(points)
        # disjoint: no row appears in two shards; together: exactly the single-process set
        assert len({tuple(r) for r in rows.tolist()}) == len(points)
        assert {tuple(r) for r in rows.tolist()} == {tuple(r) for r in points.tolist()}


def test_points_on_device_dtype_and_resampling_schedule():
    dm = CollocationDataModule(problem=Burgers(n_pde=64), resample_every=2, steps_per_epoch=3)
    dm.trainer = FakeTrainer()
    dm.setup("fit")
    seen = []
    for epoch in range(5):
        dm.trainer.current_epoch = epoch
        batches = list(dm.train_dataloader())
        assert len(batches) == 3 and all(b is batches[0] for b in batches)
        seen.append(batches[0]["pde"])
    assert seen[0].dtype == torch.float32
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert torch.equal(seen[2], seen[3]) and not torch.equal(seen[3], seen[4])


def test_fixed_points_never_change():
    dm = CollocationDataModule(problem=Burgers(n_pde=64))
    dm.trainer = FakeTrainer()
    dm.setup("fit")
    first = next(iter(dm.train_dataloader()))["pde"]
    dm.trainer.current_epoch = 7
    assert torch.equal(first, next(iter(dm.train_dataloader()))["pde"])


def test_evaluation_grid_chunks():
    dm = CollocationDataModule(problem=Burgers(), eval_batch_size=10000)
    dm.trainer = FakeTrainer()
    dm.setup("validate")
    chunks = list(dm.val_dataloader())
    assert [len(c["points"]) for c in chunks] == [10000, 10000, 5600]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sampling": "grid"}, "sampling"), ({"steps_per_epoch": 0}, "steps_per_epoch"),
    ({"resample_every": -1}, "resample_every"), ({"n_points": {"pde": 0}}, "n_points"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CollocationDataModule(**kwargs)


def test_unknown_condition_in_n_points():
    dm = CollocationDataModule(problem=Burgers(), n_points={"interior": 5})
    with pytest.raises(ValueError, match=r"unknown condition\(s\) \['interior'\]; Burgers has"):
        dm.setup("fit")
