"""Lightning callbacks, registered under the ``lightning_pde.callbacks`` entry-point group."""

from lightning_pde.callbacks.lbfgs import AdamThenLBFGS
from lightning_pde.callbacks.solution_plot import SolutionPlot, plot_solution
from lightning_pde.callbacks.solution_writer import SolutionWriter

__all__ = ["AdamThenLBFGS", "SolutionPlot", "SolutionWriter", "plot_solution"]
