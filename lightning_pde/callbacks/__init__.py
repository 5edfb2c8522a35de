"""Lightning callbacks, registered under the ``lightning_pde.callbacks`` entry-point group."""

from lightning_pde.callbacks.causal_weighting import CausalWeighting
from lightning_pde.callbacks.gradient_norm_weighting import GradientNormWeighting
from lightning_pde.callbacks.lbfgs import AdamThenLBFGS
from lightning_pde.callbacks.residual_refinement import ResidualAdaptiveRefinement
from lightning_pde.callbacks.solution_plot import SolutionPlot, plot_solution
from lightning_pde.callbacks.solution_writer import SolutionWriter
from lightning_pde.callbacks.unknowns_plot import UnknownsPlot

__all__ = ["AdamThenLBFGS", "CausalWeighting", "GradientNormWeighting", "ResidualAdaptiveRefinement", "SolutionPlot",
           "SolutionWriter", "UnknownsPlot", "plot_solution"]
