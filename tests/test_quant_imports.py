"""The number formats (lightning_pde.quant) do not know the layers (lightning_pde.nn): layers declare how they are
quantized (``quantize_with``, ``is_quantized``), so quant never imports nn, at module level or inside a function,
and no chain of imports through the package leads from a quant or nn module back to itself. Each module also
imports on its own, in a fresh interpreter state, whichever of the two packages comes first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_pde"
WATCHED = ("lightning_pde.quant", "lightning_pde.nn")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The lightning_pde modules `path` imports anywhere in its source (function bodies included), each with the
    packages whose ``__init__`` that import runs (the root package excepted: every module is inside it)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
    # a module's own packages are being initialised already when it runs (it is imported through them)
    return {t for t in found if t in known and t != name and not name.startswith(t + ".")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, set(known)) for name, path in known.items()}


def watched(name: str) -> bool:
    return any(name == w or name.startswith(w + ".") for w in WATCHED)


def test_the_number_formats_do_not_import_the_layers():
    edges = graph()
    offending = {name: sorted(t for t in targets if t.startswith("lightning_pde.nn"))
                 for name, targets in edges.items() if name.startswith("lightning_pde.quant")}
    assert not {k: v for k, v in offending.items() if v}


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    """Every import chain from a quant or nn module back to itself, as text."""
    cycles = []
    for start in filter(watched, edges):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return sorted(set(cycles))


def test_no_import_cycle_through_quant_or_nn():
    cycles = find_cycles(graph())
    assert not cycles, "\n".join(cycles)


def test_the_check_finds_the_cycle_that_was_there():
    # quant.base used to import nn.tt_linear inside convert_layers; nn.tt_linear imports nn.mlp, which imports
    # quant.base
    edges = graph()
    edges["lightning_pde.quant.base"] = edges["lightning_pde.quant.base"] | {"lightning_pde.nn.tt_linear"}
    assert any(c.startswith("lightning_pde.quant.base -> lightning_pde.nn.tt_linear") for c in find_cycles(edges))


SCRIPT = """
import sys
import torch, tensorly  # third-party imports once; every lightning_pde import below starts from nothing
orders = {orders!r}
for order in orders:
    for name in [n for n in list(sys.modules) if n == "lightning_pde" or n.startswith("lightning_pde.")]:
        del sys.modules[name]
    for module in order:
        __import__(module)
print("imported", len(orders), "orders")
"""


def test_each_module_imports_first_in_a_fresh_state_in_either_order():
    names = sorted(n for n in modules() if watched(n))
    quant = [n for n in names if n.startswith("lightning_pde.quant")]
    nn = [n for n in names if n.startswith("lightning_pde.nn")]
    orders = [[n] for n in names] + [quant + nn, nn + quant, quant[::-1] + nn[::-1], nn[::-1] + quant[::-1]]
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(orders=orders)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"imported {len(orders)} orders" in out.stdout
