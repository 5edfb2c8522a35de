"""A run writes only under its log directory: a short run of every shipped config, started from the checkout,
creates or modifies no file in the source tree (git-ignored ones included), and leaves its checkpoint and pictures
under ``--trainer.default_root_dir``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightning_pde.cli import main
from shipped_configs import CONFIGS, NEEDS_TEACHER, ROOT, name, tiny_args

#: not the project's files: the interpreter's bytecode, the environment and git's own
SKIP = {".git", ".venv", "__pycache__"}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file under `root` but SKIP, by relative path."""
    files = {}
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d not in SKIP]
        for file in names:
            path = Path(directory, file)
            stat = path.lstat()
            files[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return files


def changes(before: dict, after: dict) -> list[str]:
    return sorted([f"new {path}" for path in after.keys() - before.keys()]
                  + [f"modified {path}" for path in before.keys() & after.keys() if before[path] != after[path]]
                  + [f"deleted {path}" for path in before.keys() - after.keys()])


def fit(config: Path, root: Path, teacher: Path | None = None) -> None:
    code = main(["fit", "--config", str(config), *tiny_args(config, teacher), "--trainer.enable_progress_bar=false",
                 "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={root}"])
    assert code in (0, None), f"lpde fit --config {name(config)} exited with {code}"


@pytest.fixture(scope="module")
def poisson_teacher(tmp_path_factory) -> Path:
    """A tiny teacher checkpoint for the Poisson students (trained outside the tree)."""
    root = tmp_path_factory.mktemp("teacher")
    fit(ROOT / "configs" / "pid" / "poisson_teacher.yaml", root)
    (checkpoint,) = root.rglob("last.ckpt")
    return checkpoint


@pytest.mark.parametrize("config", CONFIGS, ids=name)
def test_a_short_run_writes_nothing_into_the_source_tree(config, tmp_path, monkeypatch, request):
    teacher = request.getfixturevalue("poisson_teacher") if config.stem in NEEDS_TEACHER else None
    monkeypatch.chdir(ROOT)  # where a user runs the README's commands
    before = snapshot(ROOT)
    fit(config, tmp_path / "runs", teacher)
    assert changes(before, snapshot(ROOT)) == [], f"{name(config)} wrote into the source tree"
    written = [path.relative_to(tmp_path) for path in (tmp_path / "runs").rglob("*") if path.is_file()]
    assert any(path.suffix == ".ckpt" for path in written), f"{name(config)} left no checkpoint: {written}"


def test_the_demo_writes_under_its_own_directory_and_copies_the_picture_only_when_asked(tmp_path, monkeypatch,
                                                                                       capsys):
    import shutil
    import sys

    import yaml

    from lightning_pde import demo

    config = yaml.safe_load((ROOT / "configs" / "pinn" / "poisson2d.yaml").read_text())
    config["model"]["init_args"]["problem"]["init_args"] = {"n_pde": 16, "n_boundary": 8}
    config["data"]["init_args"]["steps_per_epoch"] = 1
    config["trainer"].update(max_steps=2, check_val_every_n_epoch=1)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["demo", "--config", str(tmp_path / "tiny.yaml")])
    demo.main()
    assert not list(cwd.iterdir()), "make demo wrote into the working directory"
    (outputs,) = [line.split(":", 1)[1].strip() for line in capsys.readouterr().out.splitlines()
                  if line.strip().startswith("outputs:")]
    assert (Path(outputs) / "lightning_logs").is_dir()
    shutil.rmtree(outputs)
    monkeypatch.setattr(sys, "argv", ["demo", "--config", str(tmp_path / "tiny.yaml"), "--output",
                                      str(tmp_path / "out"), "--save-picture", str(tmp_path / "copy.png")])
    demo.main()
    assert (tmp_path / "copy.png").read_bytes() == next((tmp_path / "out").rglob("solution.png")).read_bytes()
