"""Building blocks of GPT-PINN (Chen & Koohy, arXiv 2303.14878) and S2GPT-PINN (arXiv 2506.15687): the reduced
fields of a neuron bank, the batched online solvers and the empirical interpolation (EIM) steps."""

from lightning_pde.gptpinn.bank import ExactNeuron, ReducedFields, batched_conditions, field_keys
from lightning_pde.gptpinn.eim import eim_step
from lightning_pde.gptpinn.solvers import SOLVERS, solve_batched

__all__ = ["ExactNeuron", "ReducedFields", "batched_conditions", "field_keys", "eim_step", "SOLVERS", "solve_batched"]
