"""Second-order optimizers, registered under the ``lightning_pde.optimizers`` entry-point group: full-batch BFGS and
its self-scaled variants SSBFGS and SSBroyden (dense inverse-Hessian approximation, strong-Wolfe line search), and
Gauss-Newton (Levenberg-Marquardt on the residual vector). All are ``torch.optim.Optimizer`` subclasses driven by
``step(closure)`` like ``torch.optim.LBFGS``, and report ``optimizer.stats`` (docs/optimizers.md)."""

from lightning_pde.optimizers.gauss_newton import GaussNewton, levenberg_marquardt_step, residual_jacobian
from lightning_pde.optimizers.line_search import LineSearchResult, strong_wolfe
from lightning_pde.optimizers.quasi_newton import BFGS, SSBFGS, QuasiNewton, SecondOrderOptimizer, SSBroyden
from lightning_pde.optimizers.residuals import PINNResiduals

__all__ = [
           "BFGS",
           "SSBFGS",
           "GaussNewton",
           "LineSearchResult",
           "PINNResiduals",
           "QuasiNewton",
           "SSBroyden",
           "SecondOrderOptimizer",
           "levenberg_marquardt_step",
           "residual_jacobian",
           "strong_wolfe",
]
