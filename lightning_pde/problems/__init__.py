"""PDE problems: one file per family. To add one, subclass :class:`Problem` and register it under the
``lightning_pde.problems`` entry-point group (CONTRIBUTING.md)."""

from lightning_pde.problems.allen_cahn import AllenCahn
from lightning_pde.problems.annulus import AnnulusPoisson
from lightning_pde.problems.base import Condition, EvaluationGrid, PointData, Problem
from lightning_pde.problems.burgers import Burgers
from lightning_pde.problems.burgers_inverse import BurgersInverse
from lightning_pde.problems.domain import Ball, BallTime, Box
from lightning_pde.problems.heat import Heat
from lightning_pde.problems.helmholtz import Helmholtz
from lightning_pde.problems.hjb import HJB
from lightning_pde.problems.klein_gordon import KleinGordon
from lightning_pde.problems.lid_driven_cavity import LidDrivenCavity
from lightning_pde.problems.poisson import Poisson2D
from lightning_pde.problems.poisson_holes import PoissonHoles
from lightning_pde.problems.poisson_inverse import PoissonInverse
from lightning_pde.problems.wave import Wave1D

__all__ = ["AllenCahn", "AnnulusPoisson", "Ball", "BallTime", "Box", "Burgers", "BurgersInverse", "Condition",
           "EvaluationGrid", "HJB", "Heat", "Helmholtz", "KleinGordon", "LidDrivenCavity", "PointData", "Poisson2D",
           "PoissonHoles", "PoissonInverse", "Problem", "Wave1D"]
