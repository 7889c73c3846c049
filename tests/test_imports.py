"""The import graph of the three packages: no cycle, and discover's folders import one way."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("discover", "inner_loop", "outer_loop")
# Each layer may import only from itself and the layers after it.
LAYERS = ("discover.cli", "discover.sweep", "discover.report", "discover.distill", "discover.training", "discover.files",
          "discover.theorem", "outer_loop", "inner_loop")


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its file (in functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import sub` imports the submodule; `from pkg import name`, the package.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(name: str) -> int | None:
    for i, prefix in enumerate(LAYERS):
        if name == prefix or name.startswith(prefix + "."):
            return i
    return None


def test_the_three_packages_have_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "discover.cli.main" in graph  # the walk sees the modules
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_discovers_folders_import_one_way_and_nothing_imports_cli():
    wrong = [f"{a} imports {b}" for a, targets in import_graph().items() for b in targets
             if layer(a) is not None and layer(b) is not None and layer(b) < layer(a)]
    assert wrong == []
    entry_point = "discover.__main__"  # `python -m discover`, beside the console script
    assert not [a for a, targets in import_graph().items()
                if layer(a) != 0 and a != entry_point and any(layer(b) == 0 for b in targets)]


def test_the_cycle_finder_finds_a_cycle_and_a_backward_import():
    # The checks above must be able to fail: a made-up graph with a cycle, and a made-up edge.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer("discover.theorem.mdp") > layer("discover.files.drift_file") > layer("discover.cli.main")


@pytest.mark.parametrize("source,expected", [
    ("from discover.sweep import loop, WANDB_MODES", {"discover.sweep", "discover.sweep.loop"}),
    ("from . import config", {"discover.sweep.config"}),
    ("from .run_folder import RunFolder", {"discover.sweep.run_folder"}),
    ("def f():\n    import discover.cli.main", {"discover.cli.main"}),
])
def test_imports_are_read_in_every_form_and_place(tmp_path, source, expected):
    path = tmp_path / "loop.py"
    path.write_text(source)
    known = {"discover.sweep", "discover.sweep.loop", "discover.sweep.config", "discover.sweep.run_folder",
             "discover.cli.main"}
    assert imports_of("discover.sweep.loop2", path, known) == expected
