"""Where and how a benchmark result was measured, recorded in every JSON a benchmark writes.

A figure in README.md or RESULTS.md is only as good as what can be said of it later: the commit it measured
(and whether the tree had uncommitted changes), the machine, the thread count, the date and the versions.
Benchmarks are run as scripts (``python benchmarks/x.py``), so they import this as ``from provenance import stamp``.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # no git on the machine
        return ""


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def stamp(threads: int | None = None) -> dict:
    """``{"commit", "dirty", "date", "machine", "threads", "versions"}`` for the JSON being written.

    Args:
        threads: the thread count the measurement ran with (default: ``torch.get_num_threads()``).
    """
    import torch

    return {"commit": _git("rev-parse", "HEAD") or None,
            "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "threads": torch.get_num_threads() if threads is None else threads,
            "versions": {name: _version(name) for name in ("torch", "pytorch-lightning", "lightning-pde")}}
