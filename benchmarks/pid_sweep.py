"""PIDDM settings sweep on Poisson fields n=16 (or Darcy fields 32 x 32 with --data darcy): trains the one-step student from a teacher checkpoint in
process (teacher Heun-18 pairs made once per teacher file and kept in lightning-pde's reference cache, see
CONTRIBUTING.md) and scores 500 samples like benchmarks/pid.py.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid_sweep.py --teacher TEACHER.ckpt --lam 3 --steps 1000 --lam-warmup 500
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid_sweep.py --teacher TEACHER.ckpt --lam 10 --steps 600 --parametrization pid

TEACHER.ckpt is the checkpoint that `lpde fit --config configs/pid/poisson_teacher.yaml` (darcy_teacher.yaml) prints
at its end.
Appends one JSON line per run to benchmarks/results/pid_sweep.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def solve_scores(student, data, lam: float, count: int = 20) -> dict:
    """Darcy forward (K given: relative L2 of p against the solver) and inverse (p given: K pixel accuracy) problems
    by PIDDM.solve at weight `lam`, on the first `count` validation fields."""
    from lightning_pde.data.darcy import solve_darcy

    fields = data.val[:count]
    mask_k, mask_p = torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1)
    mask_k[:, 0], mask_p[:, 1] = 1.0, 1.0
    forward = student.solve(fields, mask_k, steps=300, lam=lam, generator=torch.Generator().manual_seed(0))
    exact = torch.from_numpy(solve_darcy(fields[:, 0].double().numpy())).float()
    inverse = student.solve(fields, mask_p, steps=300, lam=lam, generator=torch.Generator().manual_seed(0))
    threshold = (data.k_low + data.k_high) / 2
    return {"forward_relative_l2_p": float(((forward[:, 1] - exact).flatten(1).norm(dim=1)
                                            / exact.flatten(1).norm(dim=1)).mean()),
            "inverse_k_accuracy": float(((inverse[:, 0] >= threshold) == (fields[:, 0] >= threshold)).float().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True,
                        help="teacher checkpoint (the path `lpde fit --config configs/pid/poisson_teacher.yaml` prints)")
    parser.add_argument("--lam", type=float, default=3.0)
    parser.add_argument("--lam-warmup", type=int, default=0, help="steps of the linear ramp of lam")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam, cosine decay to 0 over --steps")
    parser.add_argument("--parametrization", default="denoiser", choices=["denoiser", "pid"])
    parser.add_argument("--n-pairs", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--solve-lams", default="", help="Darcy only: after training, score the forward and "
                        "inverse problems (20 validation fields, 300 Adam steps) at these comma-separated lam values")
    parser.add_argument("--data", default="poisson", choices=["poisson", "darcy"],
                        help="Poisson fields n=16 or Darcy fields 32 x 32 (the teacher's data)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "pid_sweep.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from lightning_pde.data import DarcyFlow, PoissonFields
    from lightning_pde.metrics import SlicedWassersteinDistance
    from lightning_pde.metrics.field_residual import FIELD_PDES
    from lightning_pde.modules.pid import distance
    from lightning_pde.modules.piddm import PIDDM
    from lightning_pde.reference.cache import cached_array

    data = PoissonFields(n=16, n_train=4000, n_val=500) if args.data == "poisson" else DarcyFlow(n=32, n_val=500)
    data.setup()
    reference, relative_residual = data.val, FIELD_PDES[args.data]
    student = PIDDM(teacher=args.teacher, lam=args.lam, residual=args.data,
                    lam_warmup=args.lam_warmup, parametrization=args.parametrization, n_pairs=args.n_pairs,
                    teacher_steps=18)

    def make_pairs() -> dict:
        student.make_pairs()  # the same noise stream as training through the CLI (seed 0, rank 0)
        return {"z": student.pairs[0].detach().cpu().numpy(), "target": student.pairs[1].detach().cpu().numpy()}

    # The pairs take minutes. Cached per user, size-capped and read without unpickling (a file in a shared
    # temporary directory, read with torch.load, would run whatever another user planted there), keyed by the
    # teacher file's contents.
    digest = hashlib.sha256(Path(args.teacher).read_bytes()).hexdigest()
    pairs = cached_array("pid_sweep_pairs", {"teacher_sha256": digest, "n_pairs": args.n_pairs, "teacher_steps": 18},
                         make_pairs)
    student.pairs = (torch.from_numpy(pairs["z"]), torch.from_numpy(pairs["target"]))
    optimizer = torch.optim.Adam(student.backbone.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    picks = torch.Generator().manual_seed(0)
    z, target = student.pairs
    student.backbone.train()
    start = time.perf_counter()
    for step in range(args.steps):
        pick = torch.randint(len(z), (args.batch_size,), generator=picks)
        x = student.generate(z[pick])
        distill, physics = distance("l2", x, target[pick]).mean(), student.physics_loss(x)
        loss = distill + student.physics_weight(step) * physics
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == args.steps - 1:
            print(f"step {step} distill {distill.item():.4g} physics {physics.item():.4g}", flush=True)
    seconds = time.perf_counter() - start
    student.backbone.eval()
    samples = student.sample(500, generator=torch.Generator().manual_seed(7))
    swd = SlicedWassersteinDistance(n_projections=512)
    swd.update(samples, reference)
    var = reference.var(0).mean()
    row = {**vars(args), "residual": float(relative_residual(samples.double()).mean()), "swd": float(swd.compute()),
           "mmse": float(((samples.mean(0) - reference.mean(0)) ** 2).mean() / var),
           "smse": float(((samples.std(0) - reference.std(0)) ** 2).mean() / var), "train_seconds": seconds}
    for lam in [float(v) for v in args.solve_lams.split(",") if v]:
        row[f"solve_lam_{lam:g}"] = solve_scores(student, data, lam)
    print(json.dumps(row))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "a") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
