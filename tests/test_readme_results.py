"""The README's results are copied from benchmarks/results/readme_results.json by benchmarks/readme_results.py,
never typed: its generated blocks must equal what the script renders from the kept JSON."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling provenance.py
spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
readme_results = importlib.util.module_from_spec(spec)
sys.modules["readme_results"] = readme_results  # dataclasses look their module up there
spec.loader.exec_module(readme_results)


def report(**changes):
    row = {"key": "burgers", "method": "PINN", "problem": "Burgers", "config": "configs/pinn/burgers.yaml",
           "command": "lpde fit --config configs/pinn/burgers.yaml", "fit_process_seconds": 123.4, "rel_l2": 3.1e-3,
           "residual": 1e-3, "steps": 2100}
    base = {"commit": "0123456789abcdef", "dirty": False, "date": "2026-12-03T10:00:00", "threads": 1,
            "machine": {"cpus": 2, "cpu": "test cpu"}, "results": [row], "peers": []}
    return {**base, **changes}


@pytest.mark.parametrize("block", sorted(readme_results.BLOCKS))
def test_readme_blocks_are_the_kept_json_rendered(block):
    kept = json.loads(readme_results.OUTPUT.read_text())
    text = (ROOT / "README.md").read_text()
    begin, end = readme_results.markers(block)
    assert begin in text and end in text, f"README.md lacks the generated {block} block"
    shown = text.split(begin, 1)[1].split(end, 1)[0]
    assert shown == "\n" + readme_results.BLOCKS[block](kept), (
        "README.md differs from benchmarks/results/readme_results.json: run "
        "`python benchmarks/readme_results.py --update-readme`")


def test_kept_json_records_commit_machine_threads_and_date():
    kept = json.loads(readme_results.OUTPUT.read_text())
    assert len(kept["commit"]) == 40 and kept["threads"] >= 1 and kept["machine"]["cpus"] >= 1
    assert kept["date"] and kept["results"], "no measured rows"
    for row in kept["results"]:
        assert (ROOT / row["config"]).is_file(), row["config"]
        assert 0 < row["rel_l2"] < 1 and row["fit_process_seconds"] > 0 and row["steps"] > 0


def test_update_readme_replaces_only_the_generated_blocks(tmp_path):
    blocks = "".join(f"{b}\nold {name}\n{e}\n" for name in readme_results.BLOCKS
                     for b, e in [readme_results.markers(name)])
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{blocks}tail\n")
    readme_results.update_readme(report(), readme)
    text = readme.read_text()
    assert text.startswith("# title\n") and text.endswith("tail\n") and "old " not in text
    assert "| PINN | Burgers | 3.10e-03 | 123 s | 2100 | `lpde fit --config configs/pinn/burgers.yaml` |" in text
    assert "commit `0123456789`" in text


def test_update_readme_refuses_a_readme_without_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        readme_results.update_readme(report(), readme)


def test_peer_summary_quotes_whole_process_ratios_of_every_kept_run(tmp_path):
    def run(seconds, error, load=0.001):
        return {"steps": 4000, "process_seconds": seconds, "final_rel_l2": error, "background_load_during_run": load}

    peers = {"date": "2026-11-27", "threads": 1, "runs": {"burgers": {
        "lightning-pde": run(60.0, 0.1), "lightning-pde-compiled": run(50.0, 0.1),
        "deepxde": run(75.0, 0.13), "pina": run(125.0, 0.23)}}}
    (tmp_path / "peers_a.json").write_text(json.dumps(peers))
    noisy = {**peers, "runs": {"burgers": {**peers["runs"]["burgers"], "deepxde": run(100.0, 0.13, load=0.5)}}}
    (tmp_path / "peers_b.json").write_text(json.dumps(noisy))
    rows = readme_results.peer_summary(tmp_path)
    assert [r["file"] for r in rows] == ["benchmarks/results/peers_a.json", "benchmarks/results/peers_b.json"]
    assert rows[0]["ours"] == "lightning-pde-compiled"  # the fastest of our variants in that run
    assert rows[0]["deepxde_over_ours"] == pytest.approx(1.5) and rows[0]["pina_over_ours"] == pytest.approx(2.5)
    shown = readme_results.render_peers(report(peers=rows))
    assert "1 quiet run(s): DeepXDE's whole process takes 1.50x" in shown  # the loaded run is listed, not summarised
    assert "| `benchmarks/results/peers_b.json` |" in shown and "| 0.50 |" in shown
