"""Hypothesis fuzzing of every registered problem's constructor and of the CLI's arguments: any value is either
accepted or refused with one clear error naming the owner and the argument; nothing crashes deep inside torch."""

import inspect
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_pde import registry
from lightning_pde.cli import main
from lightning_pde.diffusion import GaussianMixtureDenoiser
from lightning_pde.problems import Poisson2D

#: values a user could plausibly type or a config could produce, good and bad
ANY_VALUE = st.one_of(
    st.integers(min_value=-3, max_value=40),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0, 1, -1, 0.0, 1e-300, 1e300, True, False, None, "", "abc", "3", [1], (2, 3), {"a": 1}]),
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)


def problem_classes():
    registry.reset()
    return sorted(registry.available("problems"))


@pytest.mark.parametrize("name", problem_classes())
def test_problem_constructors_accept_or_refuse_clearly(name):
    cls = registry.get("problems", name)
    parameters = [p for p in inspect.signature(cls).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert parameters, f"{name} has no constructor arguments to fuzz"

    @FUZZ
    @given(argument=st.sampled_from([p.name for p in parameters]), value=ANY_VALUE)
    def check(argument, value):
        try:
            problem = cls(**{argument: value})
        except ValueError as error:
            message = str(error)
            assert message.startswith(f"{name}:") and argument in message, message
            return
        # Accepted: the problem must then be usable - every condition samples finite points in its domain.
        generator = torch.Generator().manual_seed(0)
        for condition in problem.conditions().values():
            n = min(8, condition.n_points) if condition.n_values else 8  # observations: at most as many as given
            points, values = condition.split(condition.sample(n, generator, "uniform"))
            assert points.shape == (n, problem.n_inputs) and torch.isfinite(points).all()
            assert values is None or (values.shape == (n, condition.n_values) and torch.isfinite(values).all())

    check()


BASE = ["fit", "--model=PINN", "--model.problem=Burgers", "--model.net=MLP", "--model.net.hidden=[4]",
        "--model.problem.n_pde=16", "--model.problem.n_initial=8", "--model.problem.n_boundary=8",
        "--data=CollocationDataModule", "--data.steps_per_epoch=1", "--trainer.max_steps=1",
        "--trainer.limit_val_batches=0", "--trainer.logger=false", "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
CLI_ARGUMENTS = ["--model.problem.nu", "--model.problem.n_pde", "--model.net.hidden", "--model.net.activation",
                 "--model.loss_weights", "--model.normalize_inputs", "--data.sampling", "--data.resample_every",
                 "--data.steps_per_epoch", "--data.seed", "--trainer.max_steps"]
#: hostile values first: hypothesis tries the start of a sampled_from list before the rest
CLI_VALUE = st.one_of(
    st.sampled_from(["-3", "nan", "0", "[4, abc]", "{pde: nan}", "-1.5", "inf", "abc", "", "[]", "[0]", "[-2, 3]",
                     "{pde: -1}", "{nope: 1}", "true", "null", "1e-3", "sin", "sobol"]),
    st.integers(min_value=-5, max_value=5).map(str))


@pytest.mark.parametrize("argument", CLI_ARGUMENTS)
def test_cli_arguments_accept_or_refuse_in_one_line(argument, tmp_path_factory, capsys):
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
              derandomize=True)
    @given(value=CLI_VALUE)
    def check(value):
        root = tmp_path_factory.mktemp("cli")
        try:
            status = main([*BASE, f"--trainer.default_root_dir={root}", f"{argument}={value}"])
        except SystemExit as exit_info:  # jsonargparse's own usage errors
            status = exit_info.code
        err = capsys.readouterr().err
        assert status in (0, 2), (argument, value, status, err[-2000:])
        assert "Traceback" not in err, (argument, value, err[-3000:])
        if status == 2:
            assert "error:" in err, (argument, value, err[-2000:])

    check()


#: valid values for the required arguments of classes fuzzed one argument at a time
REQUIRED = {"TTLinear": lambda: {"in_shape": [4, 4], "out_shape": [2, 2]},
            "PINN": lambda: {"problem": Poisson2D(n_pde=8, n_boundary=4)},
            # a student has no default teacher (no file that depends on the working directory)
            "PIDStudent": lambda: {"teacher": GaussianMixtureDenoiser()},
            # any denoiser D(x, sigma) as a teacher: the exact mixture denoiser, on 2-D samples
            "DenoiserTeacher": lambda: {"denoiser": GaussianMixtureDenoiser().denoise, "data_shape": [2]}}
#: classes not fuzzed here, with the reason (each has its own tests of bad arguments)
NOT_FUZZED = {"PIDDM": "needs a teacher of (a, u) fields, i.e. a trained EDM checkpoint (tests/test_pid.py)",
              "DiffusersTeacher": "needs a diffusers UNet2DModel (plugins/diffusers/tests checks its bad arguments)"}


def other_classes():
    registry.reset()
    found = []
    for kind in ("nets", "derivatives", "callbacks", "modules", "quantizers", "precision"):
        for name in registry.available(kind):
            required = [p.name for p in inspect.signature(registry.get(kind, name)).parameters.values()
                        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if (not required or name in REQUIRED) and name not in NOT_FUZZED:
                found.append((kind, name))
    return found


@pytest.mark.parametrize(("kind", "name"), other_classes())
def test_other_plugin_constructors_accept_or_refuse_clearly(kind, name):
    """Networks, engines, callbacks, modules, quantizers and precision plugins: a bad argument is a ValueError
    naming the class and the argument."""
    cls = registry.get(kind, name)
    parameters = [p.name for p in inspect.signature(cls).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not parameters:
        pytest.skip(f"{name} takes no arguments")

    base = REQUIRED.get(name, dict)()

    @FUZZ
    @given(argument=st.sampled_from(parameters), value=ANY_VALUE)
    def check(argument, value):
        try:
            cls(**{**base, argument: value})
        except ValueError as error:
            # the owner is the class or the base class that checks the argument (TTMLP's hidden is MLP's)
            message = str(error)
            assert re.match(r"^\w+: ", message) and argument in message, message

    check()
