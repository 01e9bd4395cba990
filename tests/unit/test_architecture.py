"""The layering rules, checked on the source itself: services work with domain objects through db/ and never
touch SQLAlchemy; every SQL statement lives in db/ (or a migration); production code never relies on
`assert` (python -O removes it); only the Powertools adapter reaches into Powertools' private attributes."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "shared" / "messaging"
SERVICES = sorted((PACKAGE / "services").glob("*.py"))
PRODUCTION = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))
# Where SQL may be written: the data layer and the schema's migrations.
SQL_HOMES = (PACKAGE / "db", PACKAGE / "migrations")
# Where Powertools' undocumented attributes may be used: the adapter, which names the version they are for.
POWERTOOLS_ADAPTER = PACKAGE / "powertools_adapter"
POWERTOOLS = "aws_lambda_powertools"

SQL_STATEMENT = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.DOTALL)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module an import statement names, wherever it stands (a function-level import included)."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


def sql_texts(tree: ast.Module) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STATEMENT.search(node.value)
    ]


def assert_lines(tree: ast.Module) -> list[int]:
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert)]


def _root(node: ast.expr) -> str | None:
    """The name an expression starts from: `Tracer` in `Tracer(service=s)._x.y`."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def powertools_objects(tree: ast.Module, elsewhere: dict[str, set[str]] | None = None) -> set[str]:
    """The names a module binds to Powertools: what it imports from aws_lambda_powertools, what it builds at
    module level by calling one of those (`logger = Logger(...)`), and what it imports of such objects built
    by another module (`elsewhere`: module name to those names, as `powertools_objects` found them there)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] == POWERTOOLS
            )
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            built = (elsewhere or {}).get(node.module, set())
            if node.module.split(".")[0] == POWERTOOLS:
                names.update(alias.asname or alias.name for alias in node.names)
            else:
                names.update(alias.asname or alias.name for alias in node.names if alias.name in built)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _root(node.value) in names:
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def private_accesses(tree: ast.Module, objects: set[str]) -> list[str]:
    """Every `x._name` (not a dunder) whose expression starts from one of `objects`, in line order."""
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (node.attr.startswith("__") and node.attr.endswith("__"))
        and _root(node) in objects
    ]
    return [f"{node.lineno}: {_root(node)}...{node.attr}" for node in sorted(found, key=lambda node: node.lineno)]


def test_the_checks_see_what_they_look_for():
    sample = ast.parse(
        "from sqlalchemy import Connection\n"
        "def f():\n"
        "    import sqlalchemy.exc\n"
        "    assert True\n"
        "    return 'UPDATE messages SET status = 1'\n"
    )
    assert imported_modules(sample) == {"sqlalchemy", "sqlalchemy.exc"}
    assert sql_texts(sample) == ["UPDATE messages SET status = 1"]
    assert assert_lines(sample) == [4]
    assert sql_texts(ast.parse("'Select the messages from a conversation; update its summary.'")) == []

    powertools = ast.parse(
        "import aws_lambda_powertools.logging as pt_logging\n"
        "from aws_lambda_powertools import Logger\n"
        "from aws_lambda_powertools.tracing.tracer import Tracer as T\n"
        "from messaging.observability import metrics, SERVICE\n"
        "logger = Logger(service='s')\n"
        "own = object()\n"
        "T._is_tracer_disabled()\n"
        "logger._logger.handlers\n"
        "pt_logging._private\n"
        "metrics._metrics\n"
        "own._fine, Logger.__name__, logger.info\n"
    )
    objects = powertools_objects(powertools, {"messaging.observability": {"metrics", "logger"}})
    assert objects == {"pt_logging", "Logger", "T", "logger", "metrics"}
    assert private_accesses(powertools, objects) == [
        "7: T..._is_tracer_disabled",
        "8: logger..._logger",
        "9: pt_logging..._private",
        "10: metrics..._metrics",
    ]


def test_there_are_services_to_check():
    assert len(SERVICES) > 5


@pytest.mark.parametrize("path", SERVICES, ids=_name)
def test_a_service_imports_nothing_from_sqlalchemy(path):
    found = sorted(module for module in imported_modules(_tree(path)) if module.split(".")[0] == "sqlalchemy")
    assert found == [], f"{_name(path)} imports {found}: take a messaging.db.engine.Transaction, call db/"


def _outside_the_data_layer(path: Path) -> bool:
    return not any(path.is_relative_to(home) for home in SQL_HOMES)


@pytest.mark.parametrize("path", [path for path in PRODUCTION if _outside_the_data_layer(path)], ids=_name)
def test_sql_is_written_only_in_the_data_layer(path):
    found = sql_texts(_tree(path))
    assert found == [], f"{_name(path)} holds SQL; move it to db/: {found[0][:80]!r}"


@pytest.mark.parametrize("path", PRODUCTION, ids=_name)
def test_production_code_does_not_rely_on_assert(path):
    lines = assert_lines(_tree(path))
    assert lines == [], f"{_name(path)} asserts on lines {lines}: check explicitly and raise a meaningful error"


@functools.cache
def _powertools_objects_built_by_each_module() -> dict[str, set[str]]:
    built: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = _tree(path)
        imported = powertools_objects(ast.Module(body=[n for n in tree.body if not isinstance(n, ast.Assign)]))
        built[_module_name(path)] = powertools_objects(tree) - imported
    return built


@pytest.mark.parametrize(
    "path", [path for path in PRODUCTION if not path.is_relative_to(POWERTOOLS_ADAPTER)], ids=_name
)
def test_only_the_powertools_adapter_uses_powertools_private_attributes(path):
    tree = _tree(path)
    found = private_accesses(tree, powertools_objects(tree, _powertools_objects_built_by_each_module()))
    assert found == [], f"{_name(path)} reaches into Powertools ({found}): add it to messaging.powertools_adapter"
