"""The shape of the code: no import circles among app/ modules, and light modules stay light.

Read statically from the source (every ``import``, including those inside functions), so the
checks cost milliseconds and see imports that a test run would never execute.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in APP.rglob("*.py")}


def _imported(node: ast.AST, package: str) -> list[str]:
    """Full names an import statement names (``from a import b`` gives ``a.b`` and ``a``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module] + [f"{module}.{a.name}" for a in node.names]


def _type_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: imports for annotations, never executed, so no dependency."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _walk(tree: ast.AST, at_import: bool):
    """Every node, or (``at_import``) those that run when the module is imported: not the
    bodies of functions. Type-only imports are never walked."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if _type_only(node):
            continue
        yield node
        if at_import and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


@cache
def _graph(at_import: bool = False) -> dict[str, frozenset[str]]:
    """app module -> the app modules it imports (a ``from pkg import name`` counts the submodule
    when ``name`` is one, else the package); ``at_import``: only what importing it loads,
    packages above each module included."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _walk(ast.parse(path.read_text()), at_import):
            names = _imported(node, package)
            if isinstance(node, ast.ImportFrom) and any(n in mods for n in names[1:]):
                names = names[1:]
            deps.update(n for n in names if n in mods and n != name)
        if at_import:
            deps.update(p for d in list(deps) + [name] for p in _parents(d) if p in mods and p != name)
        graph[name] = frozenset(deps)
    return graph


def _third_party(name: str) -> set[str]:
    """Top-level packages outside app/ that importing ``name`` loads."""
    tree = ast.parse(_modules()[name].read_text())
    return {n.split(".")[0] for node in _walk(tree, True) for n in _imported(node, "") if not n.startswith("app")}


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return found


def _loaded_by(start: str) -> set[str]:
    """The app modules that ``import start`` loads."""
    seen, todo = set(), [start, *_parents(start)]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_graph(at_import=True)[name])
    return seen


def test_the_cycle_finder_sees_a_circle() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_circles_among_app_modules() -> None:
    assert _cycles(_graph()) == []


def test_the_import_reader_sees_what_runs_at_import() -> None:
    tree = ast.parse("import os\nfrom app.sim import market\ndef f():\n    import matplotlib\n"
                     "if TYPE_CHECKING:\n    from app.config import AppConfig\n")
    assert {n for node in _walk(tree, True) for n in _imported(node, "")} == {"os", "app.sim", "app.sim.market"}
    assert "matplotlib" in {n for node in _walk(tree, False) for n in _imported(node, "")}


def test_collection_does_not_load_the_config_schema_or_plotting() -> None:
    reached = _loaded_by("app.collect.collect")
    assert "app.config" not in reached
    assert not {m for m in reached if m.startswith("app.report")}
    assert not {m for m in reached if "matplotlib" in _third_party(m)}


def test_the_config_schema_does_not_load_plotting() -> None:
    reached = _loaded_by("app.config")
    assert not {m for m in reached if "matplotlib" in _third_party(m)}


def test_training_does_not_build_a_simulated_market() -> None:
    train = {m for m in _modules() if m.startswith("app.train")}
    assert not {m for m in train if any(d.startswith("app.sim") for d in _graph()[m])}


#: package -> the other app packages it may import (docs/architecture.md); every package may also
#: import the shared leaves.
LEAVES = {"errors", "contracts", "run_folder", "stage_registry", "progress", "console", "console_text", "storage", "typed",
          "arrow_numpy"}  # fmt: skip
ALLOWED: dict[str, set[str]] = {
    "errors": set(), "contracts": set(), "run_folder": set(), "stage_registry": set(), "progress": set(),
    "console": {"kis"}, "console_text": set(), "storage": set(), "typed": set(), "arrow_numpy": set(), "ray_runtime": {"storage"}, "job_env": {"kis"},
    "krx": set(), "kis": set(), "models": set(), "sim": {"krx"},
    "collect": {"kis", "krx", "sim", "ray_runtime"},
    "features": {"collect"},
    "evaluate": {"collect", "features", "kis", "krx", "sim"},
    "predict": {"collect", "features", "evaluate", "krx", "models"},
    "train": {"features", "evaluate", "models", "predict", "ray_runtime"},
    "tune": {"train", "features", "evaluate", "models", "predict", "ray_runtime"},
    "report": {"evaluate"},
    "machine": {"config", "collect", "kis", "krx", "models", "ray_runtime"},
    "config": {"collect", "features", "evaluate", "models", "predict", "report", "sim", "storage", "train", "tune"},
    "stages": {"config", "machine", "report", "ray_runtime"},
}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def _disallowed(graph: dict[str, frozenset[str]]) -> list[str]:
    out = []
    for module, deps in graph.items():
        pkg = _package(module)
        if pkg in ("main", "app"):
            continue  # the entry point may import everything
        allowed = ALLOWED[pkg] | LEAVES | {pkg}
        out += [f"{module} -> {d}" for d in sorted(deps) if _package(d) not in allowed]
    return out


def test_the_import_table_check_sees_an_upward_import() -> None:
    assert _disallowed({"app.kis.client": frozenset({"app.collect.store"})}) == ["app.kis.client -> app.collect.store"]
    assert _disallowed({"app.train.fit": frozenset({"app.models.factory", "app.errors"})}) == []


def test_packages_import_only_what_the_architecture_allows() -> None:
    assert set(ALLOWED) | {"main", "app"} >= {_package(m) for m in _modules()}
    assert _disallowed(_graph()) == []
