"""The package's shape, as the style guide and ganzoo/README's layer map ask for it: packages by layer, a
lower layer never importing a higher one (imports inside functions included: a lazy import only hides the
dependency), no import cycle, ``__init__.py`` files that only re-export, no module over 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ganzoo"
MAX_LINES = 600
# Lowest first; a package imports only packages on floors below its own (protocols and data share one).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",), ("protocols", "data"), ("zoo",), ("evaluate",), ("training",), ("sweep",), ("checks",), ("report",),
    ("cli",),
)
FLOOR = {package: floor for floor, packages in enumerate(LAYERS) for package in packages}
# ganzoo itself (the public API) gathers core, data, zoo, evaluate and training for users; inside the package
# only the command line may import it, so it sits just below the command line.
TOP = {"ganzoo": FLOOR["cli"] - 0.5, "ganzoo.__main__": FLOOR["cli"] + 1}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The ganzoo modules ``name`` imports at run time, anywhere in it (typing-only blocks aside).
    ``from ganzoo.core import rundir`` imports the module ganzoo.core.rundir; ``from ganzoo import VARIANTS``
    the package itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [node.module])])
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                if target in known:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def floor_of(module: str) -> tuple[float, str]:
    """(floor, package) of a ganzoo module: its layer package's, or the public API's."""
    if module in TOP:
        return TOP[module], module
    package = module.split(".")[1]
    if package not in FLOOR:
        raise AssertionError(f"{module} is in no layer: put it in one of {', '.join(FLOOR)}, or add a layer")
    return FLOOR[package], package


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that does not run down the layers: to a higher floor, or across to another package
    on the same floor."""
    found = []
    for module, targets in sorted(graph.items()):
        floor, package = floor_of(module)
        for target in sorted(targets):
            target_floor, target_package = floor_of(target)
            if target_package != package and target_floor >= floor:
                found.append(f"{module} imports {target} ({package} is on floor {floor}, {target_package} on {target_floor})")
    return found


def project_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_no_import_cycle_among_ganzoos_modules():
    assert cycles(project_graph()) == []


def test_no_import_runs_up_a_layer():
    assert upward(project_graph()) == []


def test_ganzoo_holds_packages_and_its_entry_modules_only():
    top = sorted(p.name for p in PACKAGE.iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "__main__.py"]
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(FLOOR), "each package is a layer of LAYERS"
    assert not any(p.name in ("utils", "util", "helpers", "misc") for p in PACKAGE.rglob("*") if p.is_dir())


def _only_reexports(tree: ast.Module) -> list[str]:
    """The statements of an ``__init__.py`` other than its docstring, imports and ``__all__``."""
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body
    allowed = (ast.Import, ast.ImportFrom)
    return [ast.unparse(node).splitlines()[0] for node in body if not isinstance(node, allowed)
            and not (isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"])]


@pytest.mark.parametrize("init", sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("__init__.py")
                                        if p.parent != PACKAGE))
def test_a_packages_init_only_re_exports(init):
    assert _only_reexports(ast.parse((PACKAGE.parent / init).read_text())) == []


def test_ganzoos_own_init_adds_only_the_old_paths_and_its_version():
    """ganzoo/__init__.py: the public API's imports, plus what keeps 0.2's module paths working."""
    extra = _only_reexports(ast.parse((PACKAGE / "__init__.py").read_text()))
    assert extra == ["deprecations.install()", "__version__ = '0.3.1'", "def __getattr__(name: str) -> object:"]


def test_the_checkers_find_a_cycle_an_upward_import_and_read_lazy_imports(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    lazy = tmp_path / "m.py"
    lazy.write_text("def f():\n    from ganzoo.core import rundir\n\nif TYPE_CHECKING:\n    from ganzoo.core import config\n")
    known = {"ganzoo", "ganzoo.core", "ganzoo.core.rundir", "ganzoo.core.config"}
    assert imports("ganzoo.data.m", lazy, known) == {"ganzoo.core.rundir"}
    assert upward({"ganzoo.data.m": {"ganzoo.core.rundir"}}) == []
    assert upward({"ganzoo.core.config": {"ganzoo.evaluate.features"}}) == [
        "ganzoo.core.config imports ganzoo.evaluate.features (core is on floor 0, evaluate on 3)"]
    assert upward({"ganzoo.data.loading": {"ganzoo.protocols.budget"}}) != []  # across one floor
    assert upward({"ganzoo.training.engine": {"ganzoo"}}) != []  # the public API, from inside a layer
    assert upward({"ganzoo.cli.main": {"ganzoo", "ganzoo.report.document"}}) == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_600_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concern"
