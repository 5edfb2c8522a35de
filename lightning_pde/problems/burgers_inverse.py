"""Burgers' equation as an inverse problem: recover the viscosity from observations of the solution."""

from __future__ import annotations

import math

import torch

from lightning_pde.problems.base import Condition, PointData
from lightning_pde.problems.burgers import Burgers
from lightning_pde.validation import integer_at_least, nonnegative_float, positive_float, positive_int


class BurgersInverse(Burgers):
    """u_t + u u_x = nu u_xx on [-1, 1] x [0, 1] (:class:`Burgers`) with nu unknown: it is trained with the network
    from `n_data` observations of the exact (Cole-Hopf) solution at seeded random points, optionally with Gaussian
    noise. The initial and boundary conditions are known.

    The unknown is log(nu), ``unknowns = {"log_nu": ...}`` (as Raissi et al. 2019 identify it): nu spans decades and
    must stay positive, and a step in log(nu) is a relative change, which first-order optimizers take evenly at
    every scale. It is logged as ``train/unknown_log_nu``; :attr:`estimated_nu` reads a trained module's value.

    Args:
        nu: the true viscosity, which generates the observations and the reference solution (not seen in training).
        nu_initial: the estimate training starts from, > 0.
        n_data: number of observations.
        noise: standard deviation of the Gaussian noise added to the observations (seeded), >= 0.
        data_seed: seed of the observation points and noise.
        n_pde, n_initial, n_boundary: as for :class:`Burgers`.
    """

    parameter_names = ()

    def __init__(self, nu: float = 0.01 / math.pi, nu_initial: float = 0.05, n_data: int = 2000, noise: float = 0.0,
                 data_seed: int = 1, n_pde: int = 4000, n_initial: int = 256, n_boundary: int = 256) -> None:
        super().__init__(nu=nu, n_pde=n_pde, n_initial=n_initial, n_boundary=n_boundary)
        self.nu_initial = positive_float("BurgersInverse", "nu_initial", nu_initial)
        self.n_data = positive_int("BurgersInverse", "n_data", n_data)
        self.noise = nonnegative_float("BurgersInverse", "noise", noise)
        self.data_seed = integer_at_least("BurgersInverse", "data_seed", data_seed, 0)
        self.unknowns = {"log_nu": math.log(self.nu_initial)}
        #: what the estimate should reach (plots draw it as a dashed line)
        self.true_unknowns = {"log_nu": math.log(self.nu)}
        self._observations: PointData | None = None

    @staticmethod
    def estimated_nu(module: torch.nn.Module) -> float:
        """The viscosity a trained module estimates, exp(log_nu)."""
        return math.exp(float(module.unknowns["log_nu"]))

    def observations(self) -> PointData:
        """The `n_data` observations (x, t) -> u, built once."""
        if self._observations is None:
            from lightning_pde.reference.burgers import cole_hopf_burgers_points

            generator = torch.Generator().manual_seed(self.data_seed)
            points = self.domain.sample(self.n_data, generator)
            exact = cole_hopf_burgers_points(points[:, 0].numpy(), points[:, 1].numpy(), self.nu)
            values = torch.as_tensor(exact, dtype=torch.float64)
            values = values + self.noise * torch.randn(self.n_data, generator=generator, dtype=torch.float64)
            self._observations = PointData(points, values)
        return self._observations

    def conditions(self) -> dict[str, Condition]:
        def pde(f):
            return f["u_t"] + f["u"] * f["u_x"] - torch.exp(f.unknown("log_nu")) * f["u_xx"]

        conditions = super().conditions()
        conditions["pde"] = Condition("pde", conditions["pde"].sample, pde, self.n_pde)
        conditions["data"] = self.observations()
        return conditions
