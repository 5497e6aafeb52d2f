"""The direction of imports (README, architecture): walks the source with ast.

core (backoffice/core, backoffice/models) imports no app and nothing of ops; an app
(catalog, orders, payments) imports nothing of ops; no app imports another app's admin.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backoffice", "catalog", "orders", "payments")
APPS = ("catalog", "orders", "payments")


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


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
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
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _is_core(name: str) -> bool:
    return name.startswith("backoffice.core") or name == "backoffice.models"


def _app(name: str) -> str:
    return name.split(".")[0]


def _is_admin(name: str) -> bool:
    return name.rpartition(".")[2].startswith("admin") and not _is_core(name)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in graph.items():
        for target in targets:
            if _is_core(source) and not _is_core(target):
                bad.append(f"core imports upward: {source} -> {target}")
            if _app(source) in APPS and target.startswith("backoffice.ops"):
                bad.append(f"app imports ops: {source} -> {target}")
            if _app(source) in APPS and _is_admin(target) and _app(target) != _app(source):
                bad.append(f"app imports another app's admin: {source} -> {target}")
    return sorted(bad)


def test_the_walk_sees_the_imports():
    graph = _graph()
    assert "backoffice.core.runs" in graph["catalog.services.sync"]
    assert "catalog.models" in graph["backoffice.ops.api"]


def test_the_rules_catch_an_upward_import():
    graph = {
        "backoffice.core.http": {"catalog.models"},
        "orders.services.x": {"backoffice.ops.api"},
        "orders.admin": {"catalog.admin"},
    }
    assert len(layer_violations(graph)) == 3


def test_no_upward_import_and_no_foreign_admin():
    assert layer_violations(_graph()) == []
