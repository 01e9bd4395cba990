"""Shared fixtures: a real PostgreSQL per test worker, a clean store per test, handlers driven by events."""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Configuration every test shares; set before any messaging module reads it.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "UnifiedMessaging")
# template.yaml gives the send functions the retry queues' URLs (required at cold start). A test without the
# `queues` fixture (moto) gets queues behind a closed local port: an enqueue fails at once, as with SQS down.
os.environ.setdefault("SQS_ENDPOINT_URL", "http://127.0.0.1:9")
os.environ.setdefault("SEND_RETRY_QUEUE_URL", "http://127.0.0.1:9/000000000000/SendRetryQueue")
os.environ.setdefault("SEND_RETRY_DLQ_URL", "http://127.0.0.1:9/000000000000/SendRetryDLQ")
# MockReceiptFunction's API (a !Sub of the deployed API in the template; the runner sets its own URL).
os.environ.setdefault("API_BASE_URL", "http://127.0.0.1:9")
# As the local runner does: a provider with no signing secret may post unsigned (the template requires them;
# tests of signatures configure secrets, or WEBHOOK_SIGNATURES=required).
os.environ.setdefault("WEBHOOK_SIGNATURES", "optional")

from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from infra.local_runner import postgres, template  # noqa: E402
from infra.local_runner.apigw import LambdaContext  # noqa: E402

# Property tests check what holds, never how fast: no per-example deadline and no "too slow" health check
# (the machines are shared; speed is measured in bench/).
hypothesis_settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("project")

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TABLES = ("messages", "conversations", "mock_provider_deliveries")
# Emptied before each test too, but outside TABLES' counts (which tests compare whole).
OTHER_TABLES = ("suppressions", "sender_slots", "webhook_endpoints")


# A language (such as en-US) whose collation every database the tests create has by default; unset, the
# server's default. `make test` runs the suite both ways: managed servers often default to a collation that
# does not sort by code point (ICU en-US, or glibc's en_US.UTF-8), and the service must not depend on it.
DATABASE_COLLATION = os.environ.get("TEST_DATABASE_COLLATION") or None


def collations(language: str) -> tuple[postgres.Collation, postgres.Collation]:
    """The two kinds of collation a server may give `language`: ICU's and glibc's (en-US: en_US.UTF-8)."""
    return postgres.Collation("icu", language), postgres.Collation("libc", f"{language.replace('-', '_')}.UTF-8")


def _given_server_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


def _server_url() -> str:
    given = _given_server_url()
    if given:
        return given
    if DATABASE_COLLATION is None:
        return postgres.embedded_server_url("test-postgres")
    # The embedded PostgreSQL is built without ICU: its own server, started with glibc's locale compiled
    # under .local/locale (the machine need not have generated it).
    glibc = collations(DATABASE_COLLATION)[1]
    return postgres.embedded_server_url(f"test-postgres-{glibc.locale}", locales=[glibc.locale])


def create_test_database(server_url: str, name: str) -> str:
    """(Re)create a database for tests, with the collation of TEST_DATABASE_COLLATION; return its URL. On a
    server given by URL that is ICU's when the server has ICU, else glibc's; on the embedded one, glibc's."""
    from sqlalchemy.exc import DBAPIError

    if DATABASE_COLLATION is None:
        return postgres.recreate_database(server_url, name)
    icu, glibc = collations(DATABASE_COLLATION)
    if _given_server_url():
        try:
            return postgres.recreate_database(server_url, name, icu)
        except DBAPIError as error:
            if "ICU is not supported" not in str(error.orig):
                raise
    try:
        return postgres.recreate_database(server_url, name, glibc)
    except DBAPIError as error:
        if "locale" not in str(error.orig):
            raise
        raise pytest.UsageError(
            f"TEST_DATABASE_COLLATION={DATABASE_COLLATION}: the server has neither ICU nor the {glibc.locale} "
            f"locale; name one that has either with TEST_DATABASE_URL, or unset it to use the embedded "
            f"PostgreSQL. The server said: {error.orig}"
        ) from error


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    """A freshly created and migrated database for this test worker."""
    from messaging import runtime
    from messaging.db import engine as engine_module
    from messaging.db.migrate import upgrade

    server_url = _server_url()
    name = f"messaging_test_{worker_id}_{os.getpid()}"
    url = create_test_database(server_url, name)
    os.environ["DATABASE_URL"] = url
    runtime.reset()
    upgrade(engine_module.get_engine())
    yield url
    runtime.reset()
    postgres.drop_database(server_url, name)


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    return worker or "main"


@pytest.fixture(scope="session")
def admin_engine(database_url: str):
    from messaging.db.engine import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def clean_store(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touches the database starts from empty tables with ids starting at 1."""
    if "database_url" not in request.fixturenames and not request.node.get_closest_marker("db"):
        yield
        return
    engine = request.getfixturevalue("admin_engine")
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES + OTHER_TABLES)} RESTART IDENTITY CASCADE"))
    yield


@pytest.fixture
def db(database_url: str, admin_engine):
    """Run SQL against the test database: db.scalar("select count(*) from messages")."""

    class Db:
        def scalar(self, sql: str, **params: Any) -> Any:
            with admin_engine.begin() as connection:
                return connection.execute(text(sql), params).scalar()

        def execute(self, sql: str, **params: Any) -> None:
            with admin_engine.begin() as connection:
                connection.execute(text(sql), params)

        def rows(self, sql: str, **params: Any) -> list[Any]:
            with admin_engine.begin() as connection:
                return list(connection.execute(text(sql), params).mappings())

        def counts(self) -> dict[str, int]:
            return {table: self.scalar(f"SELECT count(*) FROM {table}") for table in TABLES}

    return Db()


@pytest.fixture(scope="session")
def application() -> template.Application:
    return template.load()


def sample_event(name: str, payload: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A copy of events/<name>.json, optionally with a new JSON payload as its body, or top-level changes
    (such as a raw "body" string or other "headers")."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    if payload is not None:
        event["body"] = json.dumps(payload)
    event.update(copy.deepcopy(changes))
    return event


def sample_body(name: str) -> dict[str, Any]:
    return json.loads(json.loads((EVENTS / f"{name}.json").read_text())["body"])


@pytest.fixture
def invoke(database_url: str, application: template.Application) -> Callable[..., dict[str, Any]]:
    """Call a function's handler in this process, as Lambda would, and return its response.

    The test process is one execution environment: one invocation at a time (Powertools keeps the
    current request on a class shared by the process). Tests that invoke concurrently use
    `concurrent_invoke`, whose environments are worker processes."""

    def call(function: str, event: dict[str, Any]) -> dict[str, Any]:
        spec = application.functions[function]
        context = LambdaContext(function_name=function, timeout_seconds=spec.timeout)
        if not _IN_PROCESS.acquire(blocking=False):
            raise RuntimeError("invoke is one invocation at a time: use concurrent_invoke from threads")
        try:
            return template.load_handler(spec)(event, context)
        finally:
            _IN_PROCESS.release()

    return call


_IN_PROCESS = threading.Lock()


@pytest.fixture
def concurrent_invoke(database_url: str, application: template.Application) -> Iterator[Callable[..., Any]]:
    """Invoke a function in the runner's execution environments (worker processes, up to 4 per function)
    from any number of threads. Each worker starts with this process's environment at that moment, so
    call `configure` first."""
    from infra.local_runner.sandbox import ExecutionEnvironments

    environments: dict[str, ExecutionEnvironments] = {}
    lock = threading.Lock()

    def call(function: str, event: dict[str, Any]) -> Any:
        spec = application.functions[function]
        with lock:
            if function not in environments:
                environments[function] = ExecutionEnvironments(spec, limit=4)
        return environments[function].invoke(event, LambdaContext(function_name=function, timeout_seconds=30))

    yield call
    for environment in environments.values():
        environment.stop()


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])
