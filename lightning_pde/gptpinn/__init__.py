"""Building blocks of GPT-PINN (Chen & Koohy, arXiv 2303.14878) and S2GPT-PINN (arXiv 2506.15687): the neuron
recipe and its training, the reduced fields and residual of a neuron bank with its chain-rule Jacobian, the batched
online solvers and the empirical interpolation (EIM) steps."""

from lightning_pde.gptpinn.bank import (
           ExactNeuron,
           ReducedFields,
           batched_conditions,
           field_keys,
           training_grid,
)
from lightning_pde.gptpinn.eim import eim_step
from lightning_pde.gptpinn.solvers import SOLVERS, solve_batched

__all__ = [
           "SOLVERS",
           "ExactNeuron",
           "ReducedFields",
           "batched_conditions",
           "eim_step",
           "field_keys",
           "solve_batched",
           "training_grid",
]
