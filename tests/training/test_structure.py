"""training/ is steps you run and shared pieces they use: no step imports another step; no import cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "training"


def training_imports(source: str) -> set[str]:
    """The training modules a module's source imports (at its top or inside a function), by module name."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("training.")}
        elif isinstance(node, ast.ImportFrom):
            module = "training." * bool(node.level) + (node.module or "")  # relative: inside training/
            if module == "training" or (node.level and not node.module):
                found |= {a.name for a in node.names}  # from training import qa
            elif module.startswith("training."):
                found.add(module.split(".")[1])
    return found


def is_step(source: str) -> bool:
    """A step is run as `python -m training.<step>`: it has an `if __name__ == "__main__":` block."""
    return any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in ast.parse(source).body)


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module -> the modules it imports) as a path, or [] when there is none."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return []


def _modules() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"}


def test_every_step_the_makefile_runs_is_a_step():
    run = set(re.findall(r"-m training\.(\w+)", (ROOT / "Makefile").read_text(encoding="utf-8")))
    steps = {name for name, source in _modules().items() if is_step(source)}
    assert run and run <= steps, run - steps


def test_no_step_imports_another_step():
    modules = _modules()
    steps = {name for name, source in modules.items() if is_step(source)}
    crossings = {name: sorted(training_imports(source) & steps - {name}) for name, source in modules.items()}
    crossed = {name: found for name, found in crossings.items() if found}
    assert not crossed, "move what steps share into a module of its own"


def test_training_has_no_import_cycle():
    graph = {name: training_imports(source) for name, source in _modules().items()}
    assert find_cycle(graph) == []


def test_the_checks_see_every_kind_of_import_and_cycle():
    source = """
import training.qa
from training import config, metrics as m
from training.sft_data import fold_of
from .documents import passages
from . import wikipage
def later():
    from training.gate_report import write_report
if __name__ == "__main__":
    later()
"""
    assert training_imports(source) == {"qa", "config", "metrics", "sft_data", "documents", "wikipage", "gate_report"}
    assert is_step(source) and not is_step("def main(): pass")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
