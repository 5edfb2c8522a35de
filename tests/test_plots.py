"""SolutionPlot on irregular 2-D domains and systems, and UnknownsPlot for inverse problems."""

import csv
import math

import matplotlib
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from matplotlib.contour import ContourSet
from matplotlib.image import AxesImage
from torch import nn

from lightning_pde.callbacks.solution_plot import SolutionPlot, plot_solution, solution_figure, triangulate
from lightning_pde.callbacks.unknowns_plot import UnknownsPlot
from lightning_pde.data import CollocationDataModule
from lightning_pde.modules import PINN
from lightning_pde.nn import MLP
from lightning_pde.problems import Poisson2D
from lightning_pde.problems.base import Condition, Problem

matplotlib.use("Agg")
CENTER, RADIUS = (0.5, 0.5), 0.25
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class SquareMinusDisk:
    """[0, 1]^2 minus the disk of radius RADIUS at CENTER, with only what a plot and a PINN ask of a domain."""

    dim = 2
    lower = torch.zeros(2, dtype=torch.float64)
    upper = torch.ones(2, dtype=torch.float64)

    def contains(self, points):
        return ((points - torch.tensor(CENTER, dtype=points.dtype)) ** 2).sum(1) > RADIUS**2

    def sample(self, n, generator=None, method="uniform"):
        # rejection in one vectorised draw: 2n candidates keep about 1.6n, so one round is almost always enough
        points = torch.empty(0, 2, dtype=torch.float64)
        while len(points) < n:
            candidates = torch.rand(2 * n, 2, generator=generator, dtype=torch.float64)
            points = torch.cat([points, candidates[self.contains(candidates)]])
        return points[:n]


class HoleLaplace(Problem):
    """Laplace's equation on the square with a hole, u = x^2 - y^2 on the outer and inner boundaries."""

    input_names = ("x", "y")
    n_evaluation = 3000
    domain = SquareMinusDisk()

    def exact(self, x):
        return (x[:, :1] ** 2 - x[:, 1:2] ** 2)

    def conditions(self):
        def outer(n, generator, method):
            points = torch.rand(n, 2, generator=generator, dtype=torch.float64)
            side = torch.arange(n) % 4
            points[side == 0, 0], points[side == 1, 0] = 0.0, 1.0
            points[side == 2, 1], points[side == 3, 1] = 0.0, 1.0
            return points

        return {"pde": Condition("pde", self.domain.sample, lambda f: f.laplacian("u"), 64),
                "boundary": Condition("boundary", outer, lambda f: f["u"] - f["x"] ** 2 + f["y"] ** 2, 32)}


class HoleSystem(HoleLaplace):
    """Three outputs on the same domain, each with its own exact field."""

    output_names = ("u", "v", "p")

    def exact(self, x):
        return torch.stack([x[:, 0] ** 2 - x[:, 1] ** 2, x[:, 0] * x[:, 1], torch.sin(3 * x[:, 0]) + x[:, 1]], 1)


class ExactPlusBias(pl.LightningModule):
    """A stand-in for a trained network: the exact solution plus a known bias per output."""

    def __init__(self, problem, bias):
        super().__init__()
        self.problem = problem
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))

    def forward(self, x):
        return self.problem.exact(x) + self.bias


def unmasked(triangulation):
    return triangulation.triangles[~triangulation.mask]


def areas(points, triangles):
    a, b, c = (points[triangles[:, i]] for i in range(3))
    return 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def distance_to_center(points, triangles):
    return np.linalg.norm(points[triangles].mean(axis=1) - np.array(CENTER), axis=1)


@pytest.mark.parametrize("with_contains", [True, False], ids=["contains", "edge-length"])
def test_triangulation_of_a_square_minus_a_disk_leaves_the_hole_empty(with_contains):
    points = SquareMinusDisk().sample(3000, torch.Generator().manual_seed(0))
    triangulation = triangulate(points, SquareMinusDisk() if with_contains else None)
    xy = points.numpy()
    kept = unmasked(triangulation)
    assert triangulation.mask.any()
    if with_contains:  # the domain decides: no triangle left has its centroid in the hole
        assert distance_to_center(xy, kept).min() > RADIUS
    else:  # only spacing to go by: triangles that cut the hole's rim may stay, none reaches into it
        assert distance_to_center(xy, kept).min() > 0.9 * RADIUS
    # and the rest of the domain stays covered (random points fill the square up to a thin rim)
    assert abs(areas(xy, kept).sum() - (1 - math.pi * RADIUS**2)) < 0.03


def pixel(image, ax, x, y):
    """RGB of the rendered figure `image` (height, width, 4) at data point (x, y) of `ax`."""
    column, row = ax.transData.transform((x, y))
    return tuple(image[image.shape[0] - round(row), round(column), :3])


def test_scattered_square_minus_disk_is_drawn_as_contours_with_an_empty_hole(tmp_path):
    problem = HoleLaplace()
    module = ExactPlusBias(problem, [0.01])
    fig = solution_figure(module, problem, [(0, 1.0), (10, 0.1)])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert list(panels) == ["prediction", "reference", "|error|", "training loss"]
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())
    for title in ("prediction", "reference", "|error|"):
        ax = panels[title]
        assert any(isinstance(c, ContourSet) for c in ax.collections)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
        assert pixel(image, ax, *CENTER) == (255, 255, 255), f"{title}: the hole is painted"
        assert pixel(image, ax, 0.1, 0.1) != (255, 255, 255), f"{title}: the domain is blank"
    matplotlib.pyplot.close(fig)
    path = plot_solution(module, problem, tmp_path / "sub" / "hole.png", [(0, 1.0), (10, 0.1)])
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_a_system_gets_one_row_per_output_titled_with_its_relative_l2():
    problem = HoleSystem()
    bias = [0.01, 0.02, 0.05]
    module = ExactPlusBias(problem, bias)
    grid = problem.evaluation_grid()
    fig = solution_figure(module, problem, [(0, 1.0), (10, 0.1)])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    expected = []
    for k, name in enumerate(problem.output_names):
        reference = grid.values[:, k]
        rel_l2 = float(torch.linalg.norm(torch.full_like(reference, bias[k])) / torch.linalg.norm(reference))
        expected += [f"{name}: prediction, rel. L2 {rel_l2:.2e}", f"{name}: reference", f"{name}: |error|"]
    assert titles == expected + ["training loss"]
    matplotlib.pyplot.close(fig)


def test_a_grid_problem_keeps_its_image_panels():
    problem = Poisson2D()
    fig = solution_figure(ExactPlusBias(problem, [0.01]), problem, [(0, 1.0), (10, 0.1)])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert list(panels) == ["prediction", "reference", "|error|", "training loss"]
    for title in ("prediction", "reference", "|error|"):
        assert any(isinstance(image, AxesImage) for image in panels[title].images)
        assert (panels[title].get_xlabel(), panels[title].get_ylabel()) == ("x2", "x1")
    matplotlib.pyplot.close(fig)


def test_a_diverged_prediction_still_draws(tmp_path):
    problem = HoleLaplace()
    module = ExactPlusBias(problem, [float("nan")])
    assert plot_solution(module, problem, tmp_path / "nan.png").read_bytes()[:8] == PNG_MAGIC


def test_scattered_plot_of_ten_thousand_points_is_quick(tmp_path):
    import time

    problem = HoleLaplace()
    problem.n_evaluation = 10_000
    module = ExactPlusBias(problem, [0.01])
    problem.evaluation_grid()  # sampling is not the plot's cost
    start = time.perf_counter()
    plot_solution(module, problem, tmp_path / "big.png", [(0, 1.0), (10, 0.1)])
    # about 2 s on one free core; the margin is for a loaded CI machine
    assert time.perf_counter() - start < 20


def trainer(tmp_path, max_steps, callbacks, **kwargs):
    return pl.Trainer(max_steps=max_steps, inference_mode=False, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
                      callbacks=callbacks, accelerator="cpu", devices=1, **kwargs)


def test_solution_plot_draws_a_pinn_on_a_domain_with_a_hole_when_fit_ends(tmp_path):
    torch.manual_seed(0)
    plot = SolutionPlot(log_every_n_steps=1)
    trainer(tmp_path, 3, [plot]).fit(PINN(HoleLaplace(), MLP([8])),
                                     datamodule=CollocationDataModule(steps_per_epoch=3))
    assert plot.path == tmp_path / "solution.png"
    assert plot.path.read_bytes()[:8] == PNG_MAGIC
    assert [step for step, _ in plot.loss_history] == [1, 2, 3]


class Target(pl.LightningModule):
    """Gradient descent on sum_k (theta_k - target_k)^2, so that
    theta_k(step) = target_k + (theta_k(0) - target_k) (1 - 2 lr)^step and the history can be checked against it."""

    def __init__(self, initial, target, lr=0.1, true_unknowns=None):
        super().__init__()
        self.unknowns = nn.ParameterDict({k: nn.Parameter(torch.tensor(v, dtype=torch.float64))
                                          for k, v in initial.items()})
        self.target, self.lr = target, lr
        self.weight = nn.Parameter(torch.ones(()))  # something to train when there are no unknowns
        self.problem = type("Problem", (), {"true_unknowns": true_unknowns})() if true_unknowns is not None else None

    def training_step(self, batch, batch_idx):
        return self.weight**2 + sum((p - self.target[k]) ** 2 for k, p in self.unknowns.items())

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(100, 1), batch_size=1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_unknowns_plot_records_the_estimates_and_writes_png_and_csv(tmp_path):
    initial, target = {"nu": 0.5, "k": -1.0}, {"nu": 0.1, "k": 2.0}
    plot = UnknownsPlot(log_every_n_steps=4)
    trainer(tmp_path, 10, [plot]).fit(Target(initial, target, true_unknowns={"nu": 0.1}))
    assert plot.path == tmp_path / "unknowns.png" and plot.csv_path == tmp_path / "unknowns.csv"
    assert plot.path.read_bytes()[:8] == PNG_MAGIC
    with open(plot.csv_path) as file:
        rows = list(csv.DictReader(file))
    assert sorted(rows[0]) == ["k", "nu", "step"]
    # before the first step, every 4th step, and after the last
    assert [int(row["step"]) for row in rows] == [0, 4, 8, 10]
    for row in rows:
        for name in ("nu", "k"):
            expected = target[name] + (initial[name] - target[name]) * 0.8 ** int(row["step"])
            assert float(row[name]) == pytest.approx(expected, rel=1e-12)
    assert plot.history[-1] == (10, {name: float(rows[-1][name]) for name in ("nu", "k")})


def test_unknowns_plot_of_a_pinn_starts_at_the_problems_initial_value(tmp_path):
    class HoleWithUnknown(HoleLaplace):
        unknowns = {"c": 0.5}
        true_unknowns = {"c": 1.0}

        def conditions(self):
            conditions = super().conditions()
            pde = conditions["pde"]
            return {**conditions, "pde": Condition("pde", pde.sample, lambda f: f.unknown("c") * f.laplacian("u"),
                                                   pde.n_points)}

    torch.manual_seed(0)
    plot = UnknownsPlot(log_every_n_steps=1)
    module = PINN(HoleWithUnknown(), MLP([8]))
    trainer(tmp_path, 3, [plot]).fit(module, datamodule=CollocationDataModule(steps_per_epoch=3))
    assert [step for step, _ in plot.history] == [0, 1, 2, 3]
    assert plot.history[0][1] == {"c": 0.5}
    assert plot.history[-1][1]["c"] == float(module.unknowns["c"].detach()) != 0.5
    assert plot.csv_path.exists() and plot.path.exists()


def test_unknowns_plot_leaves_a_module_without_unknowns_alone(tmp_path):
    plot = UnknownsPlot()
    trainer(tmp_path, 2, [plot]).fit(Target({}, {}))
    assert plot.history == [] and plot.path is None and not (tmp_path / "unknowns.png").exists()


def test_unknowns_plot_rejects_bad_true_values_before_training(tmp_path):
    plot = UnknownsPlot()
    with pytest.raises(ValueError, match=r"true_unknowns\['nu'\] must be a finite number, got 'x'"):
        trainer(tmp_path, 2, [plot]).fit(Target({"nu": 0.5}, {"nu": 0.1}, true_unknowns={"nu": "x"}))
    assert plot.history == []


@pytest.mark.parametrize("cls", [SolutionPlot, UnknownsPlot])
@pytest.mark.parametrize("kwargs, message", [
    ({"filename": ""}, "filename must be a non-empty string, got ''"),
    ({"filename": None}, "filename must be a non-empty string, got None"),
    ({"log_every_n_steps": 0}, "log_every_n_steps must be an integer >= 1, got 0"),
    ({"log_every_n_steps": 2.5}, "log_every_n_steps must be an integer >= 1, got 2.5"),
    ({"log_every_n_steps": True}, "log_every_n_steps must be an integer >= 1, got True"),
])
def test_bad_arguments_are_named(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {message}".replace("(", r"\(")):
        cls(**kwargs)


def test_unknowns_plot_needs_two_file_names():
    with pytest.raises(ValueError, match="UnknownsPlot: csv_filename must be a non-empty string"):
        UnknownsPlot(csv_filename="")
    with pytest.raises(ValueError, match="filename and csv_filename must differ"):
        UnknownsPlot(filename="history", csv_filename="history")


class OtherRank:
    """What the callbacks see of a trainer on a rank other than 0; counts the log_dir broadcasts it joins."""

    is_global_zero = False

    def __init__(self, log_dir):
        self._log_dir, self.log_dir_calls = log_dir, 0

    @property
    def log_dir(self):
        self.log_dir_calls += 1
        return self._log_dir


def test_other_ranks_join_the_log_dir_broadcast_and_write_nothing(tmp_path):
    rank = OtherRank(str(tmp_path))
    solution, unknowns = SolutionPlot(), UnknownsPlot()
    unknowns.history = [(0, {"nu": 0.5}), (10, {"nu": 0.2})]
    solution.on_fit_end(rank, ExactPlusBias(HoleLaplace(), [0.0]))
    unknowns.on_fit_end(rank, Target({"nu": 0.5}, {"nu": 0.1}))
    assert rank.log_dir_calls == 2
    assert solution.path is None and unknowns.path is None and not list(tmp_path.iterdir())


def test_unknowns_history_survives_a_checkpoint():
    plot = UnknownsPlot()
    plot.history = [(0, {"nu": 0.5}), (10, {"nu": 0.2})]
    restored = UnknownsPlot()
    restored.load_state_dict(plot.state_dict())
    assert restored.history == plot.history


def test_a_plate_with_two_holes_from_lightning_pde_geometry_keeps_both_holes_empty():
    from lightning_pde.geometry import Disk, Rectangle

    holes = [((0.5, 0.5), 0.2), ((1.5, 0.5), 0.2)]
    plate = Rectangle([0.0, 0.0], [2.0, 1.0]) - Disk(*holes[0]) - Disk(*holes[1])
    points = plate.sample(4000, torch.Generator().manual_seed(0))
    triangulation = triangulate(points, plate)
    xy = points.numpy()
    kept = unmasked(triangulation)
    centroids = xy[kept].mean(axis=1)
    for center, radius in holes:
        assert np.linalg.norm(centroids - np.array(center), axis=1).min() > radius
    assert abs(areas(xy, kept).sum() - (2 - 2 * math.pi * 0.2**2)) < 0.05


def test_a_space_time_problem_is_drawn_with_time_across():
    from lightning_pde.geometry import Disk, Rectangle

    class SpaceTimeHole(HoleLaplace):
        input_names = ("x", "t")
        # an off-centre hole, so that a drawing with the axes swapped would put it elsewhere
        domain = Rectangle([0.0, 0.0], [1.0, 1.0]) - Disk([0.3, 0.7], 0.2)

    problem = SpaceTimeHole()
    fig = solution_figure(ExactPlusBias(problem, [0.01]), problem)
    ax = next(ax for ax in fig.axes if ax.get_title() == "reference")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t", "x")
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())
    assert pixel(image, ax, 0.7, 0.3) == (255, 255, 255)  # (t, x) of the hole's centre
    assert pixel(image, ax, 0.3, 0.7) != (255, 255, 255)
    matplotlib.pyplot.close(fig)
