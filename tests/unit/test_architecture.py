"""The layering rules, checked on the source itself: services work with domain objects through db/ and never
touch SQLAlchemy; every SQL statement lives in db/ (or a migration); production code never relies on
`assert` (python -O removes it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "shared" / "messaging"
SERVICES = sorted((PACKAGE / "services").glob("*.py"))
PRODUCTION = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))
# Where SQL may be written: the data layer and the schema's migrations.
SQL_HOMES = (PACKAGE / "db", PACKAGE / "migrations")

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
