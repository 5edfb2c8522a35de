"""A picture of the solution at the end of fit: prediction, reference, absolute error, and the loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor

from lightning_pde.validation import nonempty_str, positive_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.tri import Triangulation

#: scattered points without a domain that can tell inside from outside: a Delaunay triangle whose longest edge is
#: more than this many times the median longest edge spans a hole or a re-entrant corner (in uniformly drawn
#: points, triangles away from the boundary stayed below 3 times the median in 50 000 points)
MAX_EDGE_RATIO = 4.0


class SolutionPlot(Callback):
    """Write a PNG of prediction, reference and |error| on the problem's evaluation grid, and the training loss
    against the step, when fit ends (rank 0 only).

    Problems with two inputs are drawn as images over a tensor-product grid, or as filled contours over the Delaunay
    triangulation of scattered evaluation points (``evaluation_grid().shape == ()``), with the triangles outside the
    domain left empty so that holes stay holes; others as prediction-against-reference scatter. A system (several
    outputs) gets one row of panels per output, titled with the output's name and its relative L2 error.

    Args:
        filename: PNG path; relative paths are under ``trainer.log_dir`` (or the working directory).
        log_every_n_steps: how often the loss curve records the training loss.
    """

    def __init__(self, filename: str = "solution.png", log_every_n_steps: int = 10) -> None:
        filename = nonempty_str("SolutionPlot", "filename", filename)
        log_every_n_steps = positive_int("SolutionPlot", "log_every_n_steps", log_every_n_steps)
        self.filename, self.log_every_n_steps = filename, log_every_n_steps
        self.loss_history: list[tuple[int, float]] = []
        self.path: Path | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step % self.log_every_n_steps == 0 and outputs is not None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.loss_history.append((trainer.global_step, float(loss)))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir is a broadcast under DDP: every rank must ask for it, before rank 0 goes on alone (asked
        # on rank 0 only, it waits forever for ranks that have left)
        log_dir = trainer.log_dir
        problem = getattr(pl_module, "problem", None)
        if not trainer.is_global_zero or problem is None or not problem.has_reference:
            return
        path = Path(self.filename)
        if not path.is_absolute():
            path = Path(log_dir or ".") / path
        self.path = plot_solution(pl_module, problem, path, self.loss_history)
        rank_zero_info(f"SolutionPlot: wrote {self.path}")

    def state_dict(self) -> dict[str, Any]:
        return {"loss_history": self.loss_history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss_history = [tuple(item) for item in state_dict["loss_history"]]


def plot_solution(module: pl.LightningModule, problem: Any, path: Path,
                  loss_history: list[tuple[int, float]] | None = None) -> Path:
    """Draw `module`'s solution of `problem` against its reference into `path` (PNG) and return the path."""
    import matplotlib.pyplot as plt

    fig = solution_figure(module, problem, loss_history)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return path


def triangulate(points: Tensor, domain: Any = None, max_edge_ratio: float = MAX_EDGE_RATIO) -> Triangulation:
    """Delaunay triangulation of scattered 2-D points (N, 2), x = first column, y = second, with the triangles that
    lie outside the domain masked, so that holes and re-entrant corners stay empty in a contour plot.

    A triangle is outside when the domain's ``contains`` says its centroid is; for a domain without ``contains``, when
    its longest edge exceeds `max_edge_ratio` times the median longest edge (the typical spacing of the points).
    """
    import matplotlib.tri as mtri

    xy = points.detach().cpu().double().numpy()
    # Triangulate in coordinates scaled to the unit square: on a long space-time strip (x in [-1, 1], t in [0, 10])
    # raw Delaunay triangles would be slivers along the long side, and edge lengths would compare unlike units.
    lower, upper = xy.min(axis=0), xy.max(axis=0)
    scaled = (xy - lower) / np.where(upper > lower, upper - lower, 1.0)
    triangles = mtri.Triangulation(scaled[:, 0], scaled[:, 1]).triangles
    if callable(getattr(domain, "contains", None)):
        centroids = torch.from_numpy(xy[triangles].mean(axis=1))
        mask = ~torch.as_tensor(domain.contains(centroids)).cpu().numpy().astype(bool)
    else:
        corners = scaled[triangles]  # (n_triangles, 3, 2)
        longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max(axis=1)
        mask = longest > max_edge_ratio * np.median(longest)
    return mtri.Triangulation(xy[:, 0], xy[:, 1], triangles, mask=mask)


def solution_figure(module: pl.LightningModule, problem: Any,
                    loss_history: list[tuple[int, float]] | None = None) -> Figure:
    """The figure :func:`plot_solution` saves: one row of prediction, reference and |error| panels per output, and
    the loss curve (when given) in a last column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = problem.evaluation_grid()
    with torch.no_grad():
        points = grid.points.to(device=module.device, dtype=module.dtype)
        prediction = torch.cat([module(chunk) for chunk in points.split(32768)]).double().cpu()
    reference = grid.values
    error = (prediction - reference).abs()
    rel_l2 = float(torch.linalg.norm(prediction - reference) / torch.linalg.norm(reference))

    if len(grid.shape) == 2 and problem.n_inputs == 2:
        kind, triangulation = "image", None
    elif problem.n_inputs == 2 and len(grid.points) >= 3:
        kind, triangulation = "contour", triangulate(grid.points, getattr(problem, "domain", None))
    else:
        kind, triangulation = "scatter", None

    rows, columns = problem.n_outputs, 4 if loss_history else 3
    fig = plt.figure(figsize=(4.2 * columns, 3.6 * rows), layout="constrained")
    layout = fig.add_gridspec(rows, columns)
    for k, output in enumerate(problem.output_names):
        axes = [fig.add_subplot(layout[k, j]) for j in range(3)]
        if rows == 1:
            titles = ("prediction", "reference", "|error|")
        else:
            difference = prediction[:, k] - reference[:, k]
            output_l2 = float(torch.linalg.norm(difference) / torch.linalg.norm(reference[:, k]))
            titles = (f"{output}: prediction, rel. L2 {output_l2:.2e}", f"{output}: reference", f"{output}: |error|")
        if kind == "image":
            _image_row(fig, axes, titles, problem, grid.shape, prediction[:, k], reference[:, k], error[:, k])
        elif kind == "contour":
            _contour_row(fig, axes, titles, problem, triangulation, prediction[:, k], reference[:, k], error[:, k])
        else:
            _scatter_row(axes, titles, output if rows > 1 else "", prediction[:, k], reference[:, k], error[:, k])
    if loss_history:
        ax = fig.add_subplot(layout[:, 3])
        steps, losses = zip(*loss_history)
        ax.semilogy(steps, losses)
        ax.set_xlabel("step")
        ax.set_title("training loss")
    fig.suptitle(f"{problem!r}: relative L2 error {rel_l2:.2e}")
    return fig


def _image_row(fig: Figure, axes: list, titles: tuple[str, ...], problem: Any, shape: tuple[int, ...],
               prediction: Tensor, reference: Tensor, error: Tensor) -> None:
    names = problem.input_names
    extent = [float(problem.domain.lower[0]), float(problem.domain.upper[0]),
              float(problem.domain.lower[1]), float(problem.domain.upper[1])]
    vmin, vmax = float(reference.min()), float(reference.max())
    for ax, values, title, limits, cmap in ((axes[0], prediction, titles[0], (vmin, vmax), "viridis"),
                                            (axes[1], reference, titles[1], (vmin, vmax), "viridis"),
                                            (axes[2], error, titles[2], (None, None), "magma")):
        # The grid is 'ij' ordered (first input down the rows); show the first input along the vertical axis
        # of the transposed image so that the second input (often t) runs left to right.
        image = ax.imshow(values.reshape(shape).numpy(), origin="lower", aspect="auto",
                          extent=[extent[2], extent[3], extent[0], extent[1]], cmap=cmap, vmin=limits[0],
                          vmax=limits[1])
        ax.set_xlabel(names[1])
        ax.set_ylabel(names[0])
        ax.set_title(title)
        fig.colorbar(image, ax=ax)


def _contour_row(fig: Figure, axes: list, titles: tuple[str, ...], problem: Any, triangulation: Triangulation,
                 prediction: Tensor, reference: Tensor, error: Tensor) -> None:
    import matplotlib.tri as mtri
    from matplotlib.ticker import MaxNLocator

    names = problem.input_names
    # As for grids, time (the last input of a space-time problem) runs left to right; a spatial domain is drawn
    # with its first input across and true proportions, so that disks look round.
    time_across = names[-1] == "t"
    if time_across:
        triangulation = mtri.Triangulation(triangulation.y, triangulation.x, triangulation.triangles,
                                           mask=triangulation.mask)
    vmin, vmax = float(reference.min()), float(reference.max())
    finite_error = error[torch.isfinite(error)]
    emax = float(finite_error.max()) if len(finite_error) else 1.0
    for ax, values, title, (low, high), cmap in ((axes[0], prediction, titles[0], (vmin, vmax), "viridis"),
                                                 (axes[1], reference, titles[1], (vmin, vmax), "viridis"),
                                                 (axes[2], error, titles[2], (0.0, emax), "magma")):
        if not high > low:  # a constant field: contour levels must increase
            pad = 1e-12 + 1e-6 * abs(low)
            low, high = low - pad, high + pad
        values = values.numpy()
        panel = triangulation
        invalid = ~np.isfinite(values)
        if invalid.any():
            # tricontourf refuses NaN anywhere (a diverged network): leave the triangles that touch one empty
            mask = invalid[triangulation.triangles].any(axis=1)
            if triangulation.mask is not None:
                mask |= triangulation.mask
            panel = mtri.Triangulation(triangulation.x, triangulation.y, triangulation.triangles, mask=mask)
            values = np.where(invalid, 0.0, values)
        ax.set_xlabel(names[1] if time_across else names[0])
        ax.set_ylabel(names[0] if time_across else names[1])
        if not time_across:
            ax.set_aspect("equal", adjustable="box")
        ax.set_title(title)
        if panel.mask is not None and panel.mask.all():
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
            continue
        # round level values, so that the colour bar's ticks (at levels) are readable numbers
        levels = MaxNLocator(nbins=40).tick_values(low, high)
        contours = ax.tricontourf(panel, values, levels=levels, cmap=cmap, extend="both")
        fig.colorbar(contours, ax=ax)


def _scatter_row(axes: list, titles: tuple[str, ...], output: str, prediction: Tensor, reference: Tensor,
                 error: Tensor) -> None:
    label = f"{output} " if output else ""
    axes[0].scatter(reference, prediction, s=2)
    axes[0].set_xlabel(f"{label}reference")
    axes[0].set_ylabel(f"{label}prediction")
    if output:
        axes[0].set_title(titles[0])
    axes[1].hist(reference.numpy(), bins=50)
    axes[1].set_title(f"{label}reference values")
    axes[2].hist(error.numpy(), bins=50, log=True)
    axes[2].set_title(titles[2])
