"""The direction of imports (README, "Architecture"): walks the source with ast.

Every import counts, at module level or inside a function (a lazy import is still a
dependency). The floors, bottom to top:

    backoffice/core (+ backoffice.models)  imports no app
    catalog                                 imports core
    orders                                  imports catalog, core
    payments                                imports orders, catalog, core
    backoffice (ops, admin, urls, tasks, commands)  the top: imports everything

A module may import only its own floor or floors below it; no app imports another app's
admin; and no two modules import each other, directly or round a loop.
"""

import ast
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backoffice", "catalog", "orders", "payments")
APPS = ("catalog", "orders", "payments")
FLOORS = {"core": 0, "catalog": 1, "orders": 2, "payments": 3, "backoffice": 4}


def _modules() -> dict[str, Path]:
    mods = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> dict[str, int]:
    """The project modules `name` imports, each with the line of its first import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name and _is_real(target, name):
                found.setdefault(target, node.lineno)
    return found


def _is_real(target: str, source: str) -> bool:
    # `from catalog.services import feed` names both the package and the module: the
    # package's own (empty) __init__ is not a dependency worth a loop.
    return not source.startswith(target + ".")


def _graph_with_lines() -> dict[str, dict[str, int]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _graph() -> dict[str, set[str]]:
    return {name: set(targets) for name, targets in _graph_with_lines().items()}


def _is_core(name: str) -> bool:
    return name.startswith("backoffice.core") or name == "backoffice.models"


def _app(name: str) -> str:
    return name.split(".")[0]


def _floor(name: str) -> int:
    return FLOORS["core"] if _is_core(name) else FLOORS[_app(name)]


def _is_admin(name: str) -> bool:
    return name.rpartition(".")[2].startswith("admin") and not _is_core(name)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        for target in targets:
            if _floor(target) > _floor(source):
                where = "core" if _is_core(source) else _app(source)
                above = "core" if _is_core(target) else _app(target)
                bad.append(f"{where} imports {above}, a floor above it: {source} -> {target}")
            if _app(source) in APPS and _is_admin(target) and _app(target) != _app(source):
                bad.append(f"app imports another app's admin: {source} -> {target}")
    return sorted(bad)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected group of modules (Tarjan), each as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        # Iterative, so a deep package does not hit the recursion limit.
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == current:
                        break
                if len(group) > 1:
                    groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_loop_in(group, graph) for group in groups)


def _loop_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest loop through the group's first module (breadth-first)."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph.get(node, set()) & group):
            if child == start:
                return paths[node] + [start]
            if child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    return [start, start]  # unreachable for a real group


def _describe(loop: list[str], lines: dict[str, dict[str, int]]) -> str:
    steps = [f"{a} -> {b} (line {lines.get(a, {}).get(b, '?')})" for a, b in pairwise(loop)]
    return "import cycle:\n    " + "\n    ".join(steps)


def test_the_walk_sees_the_imports():
    graph = _graph()
    assert "backoffice.core.runs" in graph["catalog.services.sync"]
    assert "catalog.models" in graph["backoffice.ops.api"]


def test_the_walk_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def later():\n    from catalog.models import Product\n")
    mods = {"catalog.models": Path("x"), "orders.lazy": source}
    assert _imports("orders.lazy", source, mods) == {"catalog.models": 2}


def test_the_rules_catch_an_upward_import():
    graph = {
        "backoffice.core.http": {"catalog.models"},
        "orders.services.x": {"backoffice.ops.api"},
        "orders.admin": {"catalog.admin"},
        "catalog.services.y": {"orders.models"},
        "orders.services.z": {"payments.models"},
        "payments.services.w": {"orders.models", "catalog.models", "backoffice.core.http"},
    }
    bad = layer_violations(graph)
    assert len(bad) == 5
    assert "catalog imports orders, a floor above it: catalog.services.y -> orders.models" in bad


def test_the_rules_catch_a_cycle():
    graph = {
        "a.one": {"a.two"},
        "a.two": {"a.three"},
        "a.three": {"a.one", "a.four"},
        "a.four": set(),
        "b.x": {"b.y"},
        "b.y": {"b.x"},
    }
    assert import_cycles(graph) == [["a.one", "a.two", "a.three", "a.one"], ["b.x", "b.y", "b.x"]]


def test_no_upward_import_and_no_foreign_admin():
    assert layer_violations(_graph()) == []


def test_no_import_cycle():
    lines = _graph_with_lines()
    loops = import_cycles({name: set(targets) for name, targets in lines.items()})
    assert not loops, "\n".join(_describe(loop, lines) for loop in loops)
