"""The layers of docs/architecture.md as contracts: import-linter (.importlinter), no import cycle between
any two modules (imports inside functions included), and no module using another module's private names."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("marketeq", "gui")


def run_here(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's packages."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


def test_import_linter_contracts_are_kept():
    done = run_here("from importlinter.cli import lint_imports\n"
                    "raise SystemExit(lint_imports(config_filename='.importlinter', no_cache=True, "
                    "no_logo=True))")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_no_module_is_in_an_import_cycle():
    # Strongly connected components of the module graph (every import statement grimp finds): any component
    # of more than one module is a cycle.
    done = run_here("""
import json, grimp, numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
graph = grimp.build_graph("marketeq", "gui", cache_dir=None)
modules = sorted(graph.modules)
index = {m: i for i, m in enumerate(modules)}
edges = [(index[a], index[b]) for a in modules
         for b in graph.find_modules_directly_imported_by(a) if b in index]
rows, cols = zip(*edges)
matrix = coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(modules), len(modules)))
n, labels = connected_components(matrix, directed=True, connection="strong")
cycles = [[modules[i] for i in np.flatnonzero(labels == c)] for c in range(n)]
print(json.dumps({"modules": len(modules), "edges": len(edges), "cycles": [c for c in cycles if len(c) > 1]}))
""")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["modules"] > 50 and found["edges"] > 200, found  # the graph was really built
    assert found["cycles"] == [], found["cycles"]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_uses(source: str, here: str) -> list[str]:
    """``from other import _name`` and ``other_module._name`` in the source of module ``here``."""
    tree = ast.parse(source)
    modules: set[str] = set()  # local names bound to one of our modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            for alias in node.names:
                if _private(alias.name) and node.module != here:
                    found.append(f"{here}:{node.lineno} from {node.module} import {alias.name}")
                modules.add(alias.asname or alias.name)  # may be a submodule: checked below
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in modules:
                found.append(f"{here}:{node.lineno} {root.id}...{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    sources = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    assert len(sources) > 50
    found = [use for path in sources
             for use in private_uses(path.read_text(encoding="utf-8"), _module_name(path))]
    assert found == []


def test_the_private_name_check_finds_what_it_should():
    source = ("from marketeq.scenario import _Shown\nimport marketeq.cli as cli\ncli.common._hidden\n"
              "from marketeq.api import solve\nself._mine\n")
    assert len(private_uses(source, "marketeq.example")) == 2
    assert private_uses("from marketeq.example import _own\n", "marketeq.example") == []
