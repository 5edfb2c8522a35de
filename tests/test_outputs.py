"""`make demo` writes only under its own output directory, and redraws the README's picture only when asked.

(That a short run of every shipped config leaves the source tree alone is tests/test_shipped_configs.py.)"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml

from lightning_pde import demo

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_writes_under_its_own_directory_and_copies_the_picture_only_when_asked(tmp_path, monkeypatch,
                                                                                       capsys):
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
