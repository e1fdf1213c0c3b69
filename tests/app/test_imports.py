"""The package's import graph, read from the source with `ast`: layers without cycles, serving apart from training."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each import statement (at any depth: in functions too) as (the module it loads, the names it takes);
    relative imports resolved."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.append((base, [alias.name for alias in node.names]))
    return found


def _imported(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules `path` imports: `from a.b import c` imports `a.b.c` when that is a module, else `a.b`."""
    found = set()
    for module, names in _imports(path):
        found.add(module)
        found.update(f"{module}.{n}" for n in names if f"{module}.{n}" in modules)
    return found


def _graph() -> dict[str, set[str]]:
    """App module -> the app modules it imports (a package's own parents, imported implicitly, left out)."""
    modules = _modules("app")
    return {name: {m for m in _imported(path, modules) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycle_among_app_modules():
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_serving_never_imports_training_benchmarks_or_tests():
    modules = _modules("app")
    offenders = {
        name: sorted(m for m in _imported(path, modules) if m.split(".")[0] in ("training", "benchmarks", "tests"))
        for name, path in modules.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_every_app_import_names_a_module_of_this_tree():
    """A stale path (`app.gate` after the move) must fail here, not resolve through an installed copy."""
    modules = _modules("app")
    stale = set()
    for folder in ("app", "training", "tests", "benchmarks"):
        for path in _modules(folder).values():
            for module, _ in _imports(path):
                if module.split(".")[0] == "app" and module not in modules:
                    stale.add(f"{path.relative_to(ROOT)}: {module}")
    assert sorted(stale) == []


def test_the_settings_import_without_torch():
    """Reading the settings (every entry point does) must not pay for torch's import (seconds)."""
    code = "import sys, app.settings; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0
