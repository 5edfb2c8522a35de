"""The documentation runs and points only at things the repository has.

- Every ```python block in README.md and docs/*.md runs as written, on its own, in a fresh interpreter whose working
  directory is an empty temporary one. Blocks that show a real training budget are shrunk by the visible
  substitutions in SHRINK, and nothing else is changed.
- Every `lpde` command in a ```bash block names configs that exist and parses (`--print_config`), and every
  benchmark command names a script that exists and options that script defines.
- Every relative link and every path written in README.md, CONTRIBUTING.md and docs/*.md resolves to a file in the
  repository, and no file of the project refers to a document outside it (DESIGN.md, STYLE.md, ../shared/...).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = [*RUNNABLE, ROOT / "CONTRIBUTING.md"]

#: (document, text as written, text the test runs instead): blocks that show a real training budget run a few
#: steps. Every entry must match its block, so the table cannot silently go stale.
SHRINK = [
    ("README.md", "AdamThenLBFGS(switch_step=2000, lbfgs_iterations=8000)",
     "AdamThenLBFGS(switch_step=2, lbfgs_iterations=2, iterations_per_step=1)"),
    ("README.md", "Burgers(nu=0.01 / 3.141592653589793)",
     "Burgers(nu=0.01 / 3.141592653589793, n_pde=64, n_initial=16, n_boundary=16)"),
]


def blocks(doc: Path, language: str) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced block of `language` in `doc`."""
    found, current, start = [], None, 0
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        fence = re.match(r"\s*```(\S*)", line)
        if fence and current is None:
            current, start, lang = [], number, fence.group(1)
        elif fence:
            if lang == language:
                found.append((start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return found


def cases(language: str) -> list:
    return [pytest.param(doc, text, id=f"{doc.relative_to(ROOT)}:{line}")
            for doc in RUNNABLE for line, text in blocks(doc, language)]


def shrink(doc: Path, text: str) -> str:
    for name, written, runs in SHRINK:
        if doc.relative_to(ROOT).as_posix() == name and written in text:
            text = text.replace(written, runs)
    return text


def test_every_shrink_substitution_matches_its_block():
    for name, written, _ in SHRINK:
        assert any(written in text for _, text in blocks(ROOT / name, "python")), \
            f"SHRINK: {written!r} is no longer in a python block of {name}"


@pytest.mark.parametrize("doc, text", cases("python"))
def test_python_block_runs_as_written(doc, text, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(shrink(doc, text))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PL_DISABLE_TIPS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, f"{doc.name} block failed:\n{result.stderr[-4000:]}"


# -- commands -----------------------------------------------------------------------------------------------------

def commands(text: str) -> list[list[str]]:
    """The shell commands of a bash block as argument lists: comments dropped, continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    return [shlex.split(line, comments=True) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def lpde_arguments(argv: list[str]) -> list[str] | None:
    """The arguments after `lpde` (`.venv/bin/lpde`, `python -m lightning_pde`, `torchrun ... -m lightning_pde`),
    or None for another command."""
    for i, token in enumerate(argv):
        if Path(token).name == "lpde":
            return argv[i + 1:]
        if token == "-m" and argv[i + 1:i + 2] == ["lightning_pde"]:
            return argv[i + 2:]
    return None


def lpde_cases() -> list:
    """Every documented `lpde` command. A block of bare overrides (every line starts with ``--``) is checked as one
    command: the first `lpde` command of the block before it, followed by all the overrides in order."""
    found = {}
    for doc in RUNNABLE:
        base = None
        for line, text in blocks(doc, "bash"):
            argvs = commands(text)
            if argvs and all(argv[0].startswith("--") for argv in argvs):
                assert base is not None, f"{doc.name}:{line}: overrides with no lpde command before them"
                runs = [base + [token for argv in argvs for token in argv]]
            else:
                runs = [args for args in map(lpde_arguments, argvs) if args]
                base = runs[0] if runs else base
            for args in runs:
                found.setdefault(tuple(args), pytest.param(args, id=f"{doc.relative_to(ROOT)}:{line}:"
                                                                    + " ".join(args)[:80]))
    return list(found.values())


@pytest.mark.parametrize("args", lpde_cases())
def test_lpde_command_names_existing_configs_and_parses(args, monkeypatch):
    from lightning_pde.cli import main

    configs = [value for flag, value in itertools.pairwise(args) if flag == "--config"]
    configs += [arg.split("=", 1)[1] for arg in args if arg.startswith("--config=")]
    for config in configs:
        assert (ROOT / config).is_file(), f"lpde {' '.join(args)}: no config {config}"
    if args[0] == "plugins":
        return
    monkeypatch.chdir(ROOT)  # the documented commands are run from the checkout
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main([*args, *([] if "--print_config" in args else ["--print_config"])])
        except SystemExit as exit_info:
            code = exit_info.code
    assert code in (0, None), f"lpde {' '.join(args)} does not parse:\n{out.getvalue()[-3000:]}"


def script_cases() -> list:
    found = []
    for doc in RUNNABLE:
        for line, text in blocks(doc, "bash"):
            for argv in commands(text):
                scripts = [i for i, token in enumerate(argv) if token.startswith("benchmarks/")]
                if scripts:
                    found.append(pytest.param(argv[scripts[0]:], id=f"{doc.relative_to(ROOT)}:{line}:"
                                                                     + " ".join(argv[scripts[0]:])[:60]))
    return found


@pytest.mark.parametrize("argv", script_cases())
def test_benchmark_command_names_a_script_and_its_options(argv):
    script = ROOT / argv[0]
    assert script.is_file(), f"no script {argv[0]}"
    source = script.read_text()
    for option in (arg.split("=", 1)[0] for arg in argv[1:] if arg.startswith("--")):
        assert re.search(rf"""["']{re.escape(option)}["']""", source), f"{argv[0]} has no option {option}"


# -- references ----------------------------------------------------------------------------------------------------

#: the repository's top-level folders
TOP_LEVEL = ("lightning_pde", "configs", "docs", "benchmarks", "tests", "plugins", ".ci")
#: a path written in running text: starts at a top-level folder of the repository
PATH = re.compile(r"(?<![\w/.-])((?:" + "|".join(re.escape(n) for n in TOP_LEVEL) + r")/[^\s`'\"()\[\]]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: a document named on its own (`DESIGN.md`, `RESULTS.md`)
DOCUMENT = re.compile(r"(?<![\w/.-])([A-Z][A-Za-z_]*\.md)\b")
#: files a walk-through tells the reader to create (CONTRIBUTING.md, "Add a problem")
TO_BE_WRITTEN = {"lightning_pde/problems/diffusion.py", "configs/pinn/diffusion1d.yaml"}


def expand(path: str) -> list[str]:
    """Brace alternatives as the shell expands them: configs/{a,b}_x.yaml -> configs/a_x.yaml, configs/b_x.yaml."""
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def prose(doc: Path) -> str:
    """`doc` without its fenced blocks (commands are checked above; layout trees are relative to their folder)."""
    return re.sub(r"^\s*```.*?^\s*```", "", doc.read_text(), flags=re.DOTALL | re.MULTILINE)


def unresolved(doc: Path) -> list[str]:
    text = prose(doc)
    bad = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        if not (doc.parent / target.split("#")[0]).exists():
            bad.append(f"link {target}")
    for written in PATH.findall(text):
        written = written.split("::")[0].rstrip(".,:;")  # tests/test_x.py::test_name is the file
        if re.search(r"[<>*]|\.\.\.|version_N", written) or written in TO_BE_WRITTEN:
            continue  # a pattern or a placeholder, not a path
        for path in expand(written):
            if not (ROOT / path).exists():
                bad.append(f"path {path}")
    for name in DOCUMENT.findall(text):
        if not list(ROOT.glob(f"**/{name}")) or name in ("DESIGN.md", "STYLE.md"):
            bad.append(f"document {name}")
    if "../shared" in text or "shared/notes" in text:
        bad.append("../shared (outside the repository)")
    return bad


@pytest.mark.parametrize("doc", LINKED, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_reference_in_the_documentation_resolves_in_the_repository(doc):
    bad = unresolved(doc)
    assert not bad, f"{doc.name} refers to what the repository does not have:\n" + "\n".join(bad)


def test_no_project_file_points_to_a_document_outside_the_repository():
    # DESIGN.md and STYLE.md were the maintainers' own notes, never shipped: docs/design.md and docs/style.md are
    # the project's; ../shared/notes was a research folder next to the checkout
    outside = re.compile(r"(?<![\w/])(DESIGN\.md|STYLE\.md)|(?<![\w/])(shared/)?notes/[\w-]+\.md|\.\./shared")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = []
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".yaml", ".toml", ".sh", ".sbatch", ".cfg", ".txt"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if outside.search(line) and path.resolve() != Path(__file__).resolve():
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not offenders, "documents outside the repository:\n" + "\n".join(offenders)
