"""The package layers (README, "Architecture"): no package imports one above it, and the import
graph between packages has no cycle -- counting imports inside functions too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nrtool"

#: Bottom to top. A package may import packages of its own layer or below, never above.
LAYERS: list[set[str]] = [
    {"errors", "progress", "device", "config", "distributed"},
    {"artifacts", "checkpoints", "figures", "training", "backends"},
    {"nn", "io", "geometry", "inr", "body", "plots"},
    {"inr2vec", "probegen", "heads", "baselines", "garments", "drape", "scan", "nerf", "netspace"},
    {"synth"},
    {"cli", "__main__"},
]
#: Imported but not a layer of its own: the package root (``__version__``).
ROOT = "(root)"


def _layer(package: str) -> int:
    for level, members in enumerate(LAYERS):
        if package in members:
            return level
    raise AssertionError(f"nrtool.{package} has no layer: add it to LAYERS (and to the README's Architecture)")


def package_imports() -> dict[str, dict[str, list[str]]]:
    """``{package: {imported package: ["file:line", ...]}}`` over every import statement."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                pieces = module.split(".")
                if pieces[0] != "nrtool":
                    continue
                target = pieces[1] if len(pieces) > 1 else ROOT
                if target != source:
                    graph[source][target].append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return graph


def test_every_package_has_a_layer_and_imports_none_above_it() -> None:
    graph = package_imports()
    wrong = []
    for source, targets in graph.items():
        for target, where in targets.items():
            if target != ROOT and _layer(target) > _layer(source):
                wrong.append(f"{source} -> {target} ({where[0]})")
    assert not wrong, "imports of a higher layer:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle_between_packages() -> None:
    graph = {s: set(t) - {ROOT} for s, t in package_imports().items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_artifacts_is_a_leaf() -> None:
    # distributed: which torchrun rank writes (it imports nothing of nrtool but errors).
    targets = set(package_imports().get("artifacts", {})) - {ROOT}
    assert targets <= {"errors", "distributed"}, f"nrtool.artifacts imports {sorted(targets)}"
    assert set(package_imports().get("distributed", {})) - {ROOT} <= {"errors"}
