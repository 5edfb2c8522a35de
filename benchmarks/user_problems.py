"""The problems a user writes for themselves, run as shipped: a domain with a hole and Neumann/Robin parts, and an
inverse problem that recovers a constant from observations.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/user_problems.py            # both rows (about 10 min, 1 thread)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/user_problems.py --only annulus

Each row is one whole ``lpde fit --config <config>`` process, timed from outside, then ``lpde test`` of its last
checkpoint (as benchmarks/readme_results.py measures the README's table). The inverse row also reports the trained
unknown against the truth. Writes ``benchmarks/results/user_problems.json`` (with provenance) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from provenance import stamp
from readme_results import RESULTS, Row, measure

ROWS = (
    Row("annulus", "PINN, Adam then float64 L-BFGS", "Poisson on an annulus, Neumann (hole) + Robin (outer), vs exact",
        "configs/pinn/annulus.yaml"),
    Row("burgers_inverse", "PINN, unknown log(nu), Adam then float64 L-BFGS",
        "Burgers nu = 0.01/pi from 2000 observations, vs Cole-Hopf", "configs/pinn/burgers_inverse.yaml"),
)
#: the true value of each inverse row's unknown, as the config's problem generates its observations
TRUTH = {"burgers_inverse": {"log_nu": math.log(0.01 / math.pi)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=[r.key for r in ROWS], help="measure only these rows")
    parser.add_argument("--output", default=str(RESULTS / "user_problems.json"), help="(default: %(default)s)")
    options = parser.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    report = {**stamp(threads), "results": []}
    print(f"{'config':36s} {'rel L2':>9s} {'fit s':>7s} {'steps':>6s}  unknowns (estimate, relative error)")
    for row in (r for r in ROWS if not options.only or r.key in options.only):
        result = measure(row, threads)
        truth = TRUTH.get(row.key, {})
        if "log_nu" in truth:  # the viscosity itself, which is what the claim is about
            result["nu_estimate"] = math.exp(result["unknowns"]["log_nu"])
            result["nu_true"] = math.exp(truth["log_nu"])
            result["nu_relative_error"] = abs(result["nu_estimate"] / result["nu_true"] - 1)
        report["results"].append(result)
        Path(options.output).parent.mkdir(parents=True, exist_ok=True)
        Path(options.output).write_text(json.dumps(report, indent=2))
        extra = (f"nu {result['nu_estimate']:.6f} (true {result['nu_true']:.6f}, {result['nu_relative_error']:.2%})"
                 if "nu_estimate" in result else "")
        print(f"{row.config:36s} {result['rel_l2']:9.2e} {result['fit_process_seconds']:7.0f} {result['steps']:6d}  "
              f"{extra}", flush=True)
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
