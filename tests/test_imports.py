"""Imports flow one way (DESIGN.md, Layout): no cycle, and no import of a higher layer from a lower one."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "electra_tf")

# layers <- networks <- models <- pretrained <- training <- cli/export/evaluation/finetune/research/convert.
RANKS = {"layers": 0, "networks": 1, "models": 2, "pretrained": 3, "training": 4,
         "cli": 5, "export": 5, "evaluation": 5, "finetune": 5, "research": 5, "convert": 5}
# Beside the stack: anything may import them; they import only each other.
BESIDE = {"config", "data", "paths", "seeds", "exit_codes"}


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _modules():
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                found[_module_name(path)] = path
    return found


def _imports(path, modules):
    """The package modules a file imports, at any depth of the file (function-level imports included)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "electra_tf")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "electra_tf":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in modules else node.module)
    return out


def _part(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "electra_tf"


def _graph():
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def test_every_part_of_the_package_has_a_place():
    parts = {_part(m) for m in _modules()} - {"electra_tf"}
    assert parts <= set(RANKS) | BESIDE, sorted(parts - set(RANKS) - BESIDE)


def test_no_upward_import():
    bad = []
    for module, imports in _graph().items():
        source = _part(module)
        if source == "electra_tf":
            continue  # the package's facade re-exports the public API
        for target in imports:
            dest = _part(target)
            if dest == "electra_tf" and target == "electra_tf":
                bad.append(f"{module} -> {target} (the facade)")
            elif source in BESIDE and dest not in BESIDE:
                bad.append(f"{module} -> {target} ({source} stands beside the stack)")
            elif source in RANKS and dest in RANKS and RANKS[dest] > RANKS[source]:
                bad.append(f"{module} -> {target} ({source} is below {dest})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    graph = _graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("layer", ["layers"])
def test_layers_use_only_keras_and_tensorflow(layer):
    for module, imports in _graph().items():
        if _part(module) == layer:
            assert all(_part(t) == layer for t in imports), (module, imports)
