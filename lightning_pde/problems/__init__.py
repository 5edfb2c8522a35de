"""PDE problems: one file per family. To add one, subclass :class:`Problem` and register it under the
``lightning_pde.problems`` entry-point group (CONTRIBUTING.md)."""

from lightning_pde.problems.base import Condition, EvaluationGrid, Problem
from lightning_pde.problems.burgers import Burgers
from lightning_pde.problems.domain import Box
from lightning_pde.problems.poisson import Poisson2D

__all__ = ["Box", "Burgers", "Condition", "EvaluationGrid", "Poisson2D", "Problem"]
