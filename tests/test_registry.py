import subprocess
import sys
import textwrap

import pytest

from lightning_pde import registry
from lightning_pde.problems import Burgers, Poisson2D


@pytest.fixture
def fresh_registry():
    registry.reset()
    yield registry
    registry.reset()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch, fresh_registry):
    """A distribution on sys.path with a good, a broken and a clashing entry point."""
    (tmp_path / "fake_lpde_plugin.py").write_text(textwrap.dedent("""
        from lightning_pde.problems import Poisson2D

        class GoodProblem(Poisson2D):
            pass

        class OtherBurgers(Poisson2D):
            pass
    """))
    info = tmp_path / "fake_lpde_plugin-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-lpde-plugin\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [lightning_pde.problems]
        GoodProblem = fake_lpde_plugin:GoodProblem
        Broken = fake_lpde_plugin_missing_module:Thing
        Burgers = fake_lpde_plugin:OtherBurgers
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_are_registered_through_entry_points(fresh_registry):
    assert registry.get("problems", "Burgers") is Burgers
    assert registry.get("problems", "Poisson2D") is Poisson2D
    assert {"PINN", "CollocationDataModule"} <= set(registry.available("modules"))
    assert "MLP" in registry.available("nets")
    assert "Autograd" in registry.available("derivatives")
    assert {"AdamThenLBFGS", "SolutionPlot", "SolutionWriter"} <= set(registry.available("callbacks"))
    entry = next(e for e in registry.entries("problems") if e.name == "Burgers")
    assert entry.distribution == "lightning-pde" and entry.version


def test_unknown_name_lists_what_is_available(fresh_registry):
    with pytest.raises(registry.PluginError, match=r"unknown problem 'Nope'; available: .*Burgers.*Poisson2D"):
        registry.get("problems", "Nope")
    with pytest.raises(registry.PluginError, match="unknown plugin kind"):
        registry.get("widgets", "x")


def test_broken_plugin_is_reported_and_others_still_load(fake_distribution):
    broken = next(e for e in registry.entries("problems") if e.name == "Broken")
    assert not broken.ok and "ModuleNotFoundError" in broken.error and broken.distribution == "fake-lpde-plugin"
    assert registry.get("problems", "GoodProblem").__name__ == "GoodProblem"
    assert registry.get("problems", "Poisson2D") is Poisson2D
    with pytest.raises(registry.PluginError, match="Broken.*fake-lpde-plugin failed to load.*ModuleNotFoundError"):
        registry.get("problems", "Broken")


def test_duplicate_name_names_both_distributions(fake_distribution):
    with pytest.raises(registry.PluginError, match=r"'Burgers' is registered by more than one distribution: "
                                                     r".*lightning-pde.*fake-lpde-plugin|.*fake-lpde-plugin.*lightning-pde"):
        registry.get("problems", "Burgers")


def test_groups_are_loaded_once_and_lazily(fresh_registry, monkeypatch):
    calls = []
    original = registry._entry_points
    monkeypatch.setattr(registry, "_entry_points", lambda group: calls.append(group) or original(group))
    assert calls == []
    registry.get("problems", "Burgers")
    registry.get("problems", "Poisson2D")
    registry.available("problems")
    assert calls == ["lightning_pde.problems"]


def test_lpde_plugins_lists_entries_and_broken_ones(fake_distribution):
    env = {"PYTHONPATH": str(fake_distribution)}
    import os

    out = subprocess.run([sys.executable, "-m", "lightning_pde", "plugins"], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Burgers" in out.stdout and "lightning-pde" in out.stdout
    assert "GoodProblem" in out.stdout and "fake-lpde-plugin 1.2.3" in out.stdout
    assert "BROKEN: ModuleNotFoundError" in out.stdout
