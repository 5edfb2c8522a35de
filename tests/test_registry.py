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


def _fake_dist(tmp_path, monkeypatch, name, module_source, requires=()):
    module = name.replace("-", "_")
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = tmp_path / f"{module}-0.5.0.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.5.0\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(meta)
    (info / "entry_points.txt").write_text(f"[lightning_pde.problems]\n{module}_problem = {module}:P\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}_problem"


def test_plugin_requiring_another_core_version_is_reported_incompatible(tmp_path, monkeypatch, fresh_registry):
    name = _fake_dist(tmp_path, monkeypatch, "future-plugin",
                      "from lightning_pde.problems import Poisson2D\nclass P(Poisson2D): pass\n",
                      requires=["lightning-pde>=99.0", "numpy"])
    entry = next(e for e in registry.entries("problems") if e.name == name)
    assert not entry.ok and "requires lightning-pde>=99.0" in entry.error and "is installed" in entry.error
    with pytest.raises(registry.PluginError, match=r"future-plugin failed to load: incompatible: requires"):
        registry.get("problems", name)
    assert registry.get("problems", "Burgers") is Burgers  # the others still load


def test_plugin_declaring_another_api_version_is_reported_incompatible(tmp_path, monkeypatch, fresh_registry):
    import lightning_pde
    name = _fake_dist(tmp_path, monkeypatch, "old-api-plugin",
                      "from lightning_pde.problems import Poisson2D\nLPDE_PLUGIN_API = 0\nclass P(Poisson2D): pass\n",
                      requires=["lightning-pde"])
    entry = next(e for e in registry.entries("problems") if e.name == name)
    assert not entry.ok and f"plugin API 0, this lightning-pde provides {lightning_pde.PLUGIN_API_VERSION}" in entry.error


def test_plugin_with_matching_api_and_requirement_loads(tmp_path, monkeypatch, fresh_registry):
    import lightning_pde
    name = _fake_dist(tmp_path, monkeypatch, "good-api-plugin",
                      "from lightning_pde.problems import Poisson2D\n"
                      f"LPDE_PLUGIN_API = {lightning_pde.PLUGIN_API_VERSION}\nclass P(Poisson2D): pass\n",
                      requires=[f"lightning-pde>={lightning_pde.__version__}", "lightning-pde<99; python_version<'3'"])
    assert registry.get("problems", name).__name__ == "P"


def test_requirement_error_reads_specifiers():
    assert registry.requirement_error(["lightning-pde>=0.1,<0.2"], "0.1.5") is None
    assert "lightning-pde<0.2,>=0.1" in registry.requirement_error(["lightning-pde>=0.1,<0.2"], "0.2.0")
    assert registry.requirement_error(["Lightning_PDE==1.0"], "0.1.0") is not None  # names compare canonicalised
    assert registry.requirement_error(["lightning-pde>=9"], None) is None  # uninstalled source tree admits all
    assert registry.requirement_error(None, "0.1.0") is None
