"""Every third-party module the code imports is installed by a declared dependency.

A module that is on this machine but undeclared works here and fails on a clean install
(sympy did: README command 1 died at import). The packages are checked against
`[project].dependencies` and what those require in turn; the tests also against the `test`
extra. Imports inside functions count too.
"""

import ast
import importlib.metadata as metadata
import pathlib
import re
import sys
import tomllib


ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("discover", "inner_loop", "outer_loop")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def distribution_name(requirement: str) -> str:
    """`jax[cuda12]>=0.10` -> `jax` (normalised as importlib.metadata spells it)."""
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def with_requirements(names) -> set[str]:
    """`names` and every distribution they require, transitively (extras left out, as pip does)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [distribution_name(r) for r in requires if "extra ==" not in r]
    return seen


def top_level_imports(paths, root=ROOT) -> dict[str, str]:
    """`{top-level module: first file importing it (relative to root)}` for absolute imports."""
    found = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(root)))
    return found


def undeclared(paths, requirements, local, root=ROOT) -> list[str]:
    declared = with_requirements(distribution_name(r) for r in requirements)
    providers = metadata.packages_distributions()
    missing = []
    for module, where in sorted(top_level_imports(paths, root).items()):
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & declared:
            missing.append(f"`import {module}` ({where})")
    return missing


def package_files():
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def test_every_import_of_the_packages_is_a_declared_dependency():
    missing = undeclared(package_files(), PROJECT["dependencies"], set(PACKAGES))
    assert not missing, f"imported but installed by no dependency in pyproject.toml: {', '.join(missing)}"


def test_every_import_of_the_tests_is_declared_with_the_test_extra():
    tests = sorted((ROOT / "tests").glob("*.py"))
    local = set(PACKAGES) | {p.stem for p in tests} | {"tests"}
    requirements = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]
    missing = undeclared(tests, requirements, local)
    assert not missing, f"the tests import modules the test extra does not install: {', '.join(missing)}"


def test_the_check_names_a_module_no_dependency_installs(tmp_path):
    """The check can fail: without the line that declares sympy, an import of it (inside a
    function, from a submodule) is reported, and sympy's own requirement is followed."""
    source = tmp_path / "uses.py"
    source.write_text("import os\n\n\ndef f():\n    from sympy.printing import latex\n")
    assert "mpmath" in with_requirements(["sympy"])
    assert undeclared([source], PROJECT["dependencies"], set(), tmp_path) == []
    without = [r for r in PROJECT["dependencies"] if distribution_name(r) != "sympy"]
    assert undeclared([source], without, set(), tmp_path) == ["`import sympy` (uses.py)"]
