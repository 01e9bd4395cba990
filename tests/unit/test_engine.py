import pg8000.dbapi
import pg8000.legacy
import pytest

from messaging.db.engine import _cache_paramstyle_conversion, sqlalchemy_url, url_from_secret

STATEMENTS = [
    "SELECT 1",
    "INSERT INTO t (a, b) VALUES (%s, %s)",
    "SELECT '%%s literal', %s, \"quoted %s\" FROM t WHERE a LIKE '%%x' -- %s comment\n AND b = %s",
    "SELECT $$ %s $$, %s",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_cached_placeholder_conversion_equals_pg8000s_own(statement):
    _cache_paramstyle_conversion()
    arguments = ("x", "y", "z")
    assert pg8000.legacy.convert_paramstyle("format", statement, arguments) == pg8000.dbapi.convert_paramstyle(
        "format", statement, arguments
    )


def test_other_paramstyles_are_passed_through():
    _cache_paramstyle_conversion()
    assert pg8000.legacy.convert_paramstyle("named", "SELECT :a", {"a": 1}) == ("SELECT $1", (1,))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+pg8000://u:p@db:5432/app"),
        ("postgres://u@db/app", "postgresql+pg8000://u@db/app"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",
            "postgresql+pg8000://postgres:@/postgres?unix_sock=%2Ftmp%2Fpg%2F.s.PGSQL.5432",
        ),
    ],
)
def test_database_urls_become_pg8000_urls(given, expected):
    assert sqlalchemy_url(given) == expected


def test_other_schemes_are_refused():
    with pytest.raises(ValueError, match="postgresql"):
        sqlalchemy_url("mysql://u@db/app")


def test_rds_secrets_become_urls_with_escaped_credentials():
    secret = '{"username": "app", "password": "p@ss/w:rd", "host": "proxy.example", "port": 5432, "dbname": "m"}'
    assert url_from_secret(secret) == "postgresql+pg8000://app:p%40ss%2Fw%3Ard@proxy.example:5432/m"
