"""Run a list of config variants, several at once, and score each like benchmarks/quant.py (relative L2 as trained
and in the other precision, parameters, time per step, cost model): a sweep for a GPU machine's few minutes.

    .venv/bin/python benchmarks/sweep.py benchmarks/sweeps/session4.json --accelerator gpu --jobs 6 \\
        --timeout 400 --output /tmp/sweep.jsonl

The spec is a JSON list of runs, ``{"name": ..., "config": ..., "steps": ..., "set": [extra CLI arguments]}``,
run in its order, `--jobs` at a time, each in its own process, killed after `--timeout` seconds. Each finished run
is appended to `--output` as one JSON line at once, so a sweep cut off by a time limit keeps what finished. Runs at
once share the machine: their times per step are not comparable; their errors are.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from threading import Lock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quant import run_subprocess  # noqa: E402  (benchmarks/ is not a package)


def load_spec(path: Path) -> list[dict]:
    """The runs of a spec file, checked: each needs a name and a config that exists."""
    runs = json.loads(path.read_text())
    if not isinstance(runs, list):
        raise SystemExit(f"{path}: expected a JSON list of runs, got {type(runs).__name__}")
    for index, run in enumerate(runs):
        missing = {"name", "config", "steps"} - set(run)
        if missing:
            raise SystemExit(f"{path}: run {index} lacks {sorted(missing)}")
        if not (Path(__file__).resolve().parent.parent / run["config"]).is_file():
            raise SystemExit(f"{path}: run {run['name']!r}: config {run['config']!r} does not exist")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", type=Path)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument("--only", nargs="+", help="run only these names")
    parser.add_argument("--output", type=Path, required=True, help="JSON lines, appended")
    options = parser.parse_args()
    runs = [r for r in load_spec(options.spec) if not options.only or r["name"] in options.only]
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    lock, start = Lock(), time.perf_counter()

    def one(run: dict) -> dict:
        began = time.perf_counter()
        try:
            row = run_subprocess(run["config"], run["steps"], options.accelerator, threads, tuple(run.get("set", ())),
                                 options.timeout)
            row["status"] = "ok"
        except subprocess.TimeoutExpired:
            row = {"status": f"timeout after {options.timeout:.0f} s"}
        except BaseException as error:  # a failed run (SystemExit from run_subprocess) must not stop the others
            row = {"status": f"failed: {error}"}
        row.update(name=run["name"], config=run["config"], wall_seconds=time.perf_counter() - began,
                   accelerator=options.accelerator, jobs=options.jobs)
        with lock, options.output.open("a") as out:
            out.write(json.dumps(row) + "\n")
        return row

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        for future in as_completed([pool.submit(one, run) for run in runs]):
            row = future.result()
            other = row.get("rel_l2_float_inference", row.get("rel_l2_int8_ptq", float("nan")))
            error = f"rel_l2={row['rel_l2']:.3e} other={other:.3e} {row['seconds_per_step'] * 1e3:.0f} ms/step" \
                if row["status"] == "ok" else row["status"]
            print(f"[{time.perf_counter() - start:5.0f} s] {row['name']:28s} {error}", flush=True)


if __name__ == "__main__":
    main()
