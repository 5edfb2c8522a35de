"""Heat(dim=100) diagnostics: a plain training loop over PINN.losses with the ForwardLaplacian engine, printing the
loss terms and the relative L2 error (with the error's mean and standard deviation) every 250 steps.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/heat100_diagnostics.py 128,128,128 2000 1000 500
    # arguments: hidden widths, Adam steps, initial/boundary loss weight, interior points per step [, learning rate]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/heat100_diagnostics.py 64,64,64 1000 1 500 --hard
    # --hard: the initial condition as a hard constraint, u = |x|^2/200 + t n (the boundary stays a loss term)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/heat100_diagnostics.py 64,64,64 2000 10 500 --hard --boundary 4000
    # --boundary N: N boundary points per step instead of a quarter of the interior ones (they need only u: cheap)
"""
import sys, time, functools, torch
torch.set_num_threads(1)
from lightning_pde.data import CollocationDataModule
from lightning_pde.derivatives import ForwardLaplacian
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Heat
hard = "--hard" in sys.argv
sys.argv = [a for a in sys.argv if a != "--hard"]
n_boundary = None
if "--boundary" in sys.argv:
    i = sys.argv.index("--boundary"); n_boundary = int(sys.argv[i + 1]); del sys.argv[i:i + 2]
hidden = [int(h) for h in sys.argv[1].split(",")]
steps = int(sys.argv[2]); wi = float(sys.argv[3]); npde = int(sys.argv[4]); lr = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-3
torch.manual_seed(0)
pb = Heat(dim=100, n_pde=npde, n_initial=npde // 4, n_boundary=n_boundary or npde // 4)
m = PINN(pb, net=MLP(hidden=hidden, activation="tanh"), derivatives=ForwardLaplacian(), fused=False,
         hard_constraints=hard, loss_weights={"boundary": wi} if hard else {"initial": wi, "boundary": wi}, optimizer=functools.partial(torch.optim.Adam, lr=lr))
dm = CollocationDataModule(sampling="uniform", steps_per_epoch=100, seed=0, resample_every=1); dm.problem = pb
opt = torch.optim.Adam(m.parameters(), lr=lr)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / (steps + 1))
g = torch.Generator().manual_seed(123)
xe = pb.domain.sample(10000, generator=g).float()
ue = pb.exact(xe)
def err():
    with torch.no_grad():
        u = m(xe) if not isinstance(m(xe), dict) else m(xe)["u"]
    u = u.reshape(ue.shape)
    e = (u - ue); r2 = xe[:, :100].square().sum(1, keepdim=True)
    return (e.norm() / ue.norm()).item(), e.mean().item(), e.std().item()
t0 = time.time()
for s in range(steps):
    pts = dm.sample(s // 10)
    L = m.losses(pts)
    loss = sum(m.loss_weights[k] * v for k, v in L.items())
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if s % 250 == 0 or s == steps - 1:
        print(s, f"{time.time()-t0:.0f}s", {k: f"{v.item():.2e}" for k, v in L.items()}, "err rel/mean/std", err(), flush=True)
