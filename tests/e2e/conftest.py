"""A local runner in a subprocess, with its own database, for tests over HTTP."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from infra.local_runner import postgres
from messaging.db.engine import server_sqlstate
from tests.conftest import _server_url, create_test_database
from tests.e2e.client import call

ROOT = Path(__file__).resolve().parents[2]

# Fast retries so the tests need not wait for real backoff.
# Long enough for a receipt the runner's mocks schedule (MOCK_RECEIPT_DELAY_SECONDS, 1 by default) to be
# polled from its queue and posted.
RECEIPTS_SETTLE_SECONDS = 3.0
RUNNER_ENVIRONMENT = {
    "RETRY_BASE_SECONDS": "0.05",
    "RETRY_MAX_SECONDS": "0.2",
    "MOCK_RETRY_AFTER_SECONDS": "0",
    "SWEEP_INTERVAL_SECONDS": "2",
    "SWEEP_GRACE_SECONDS": "5",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOCAL_RUNNER_LOG_LEVEL": "WARNING",
}

DEADLOCK_DETECTED = "40P01"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Runner:
    """A `python -m infra.local_runner` subprocess serving a database of its own."""

    def __init__(self, name: str, environment: dict[str, str] | None = None) -> None:
        self.server_url = _server_url()
        self.database = f"e2e_{name}_{os.getpid()}"
        self.database_url = create_test_database(self.server_url, self.database)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ROOT / ".local" / f"{self.database}.log"
        self.log.parent.mkdir(exist_ok=True)
        # Not the test process's stand-ins (tests/conftest.py): the runner's own API_BASE_URL is where its mock
        # providers' receipts come back, and it has its own SQS; and its own WEBHOOK_SIGNATURES default, the
        # one `make run` has.
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MOCK_", "SEND_RETRY")) and key not in ("API_BASE_URL", "WEBHOOK_SIGNATURES")
        }
        self.environment = {
            **inherited,
            **RUNNER_ENVIRONMENT,
            **(environment or {}),
            "DATABASE_URL": self.database_url,
            "PORT": str(self.port),
        }
        self.environment.pop("SQS_ENDPOINT_URL", None)
        # The tests' unreachable stand-in (tests/conftest.py) would win over the runner's own address, and every
        # mock receipt would fail to reach the status webhook: the runner then sets its own URL.
        self.environment.pop("API_BASE_URL", None)
        self.start()

    def start(self) -> None:
        """Start the runner process (again, after `kill`: same database and port, fresh embedded SQS)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "infra.local_runner"], cwd=ROOT, env=self.environment, stdout=log, stderr=log
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """kill -9: no clean shutdown, whatever was in flight (including the embedded SQS) is lost."""
        self.process.kill()
        self.process.wait()

    def _wait_until_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the local runner exited: {self.log.read_text()[-3000:]}")
            try:
                # Patient: the first request pays the function's cold start (a new worker process).
                if call(self.url, "GET", "/health", timeout=max(2.0, deadline - time.monotonic())).status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the local runner did not become healthy: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        postgres.drop_database(self.server_url, self.database)


class RunnerDb:
    def __init__(self, database_url: str) -> None:
        from messaging.db.engine import sqlalchemy_url

        self.engine = create_engine(sqlalchemy_url(database_url))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.begin() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.begin() as connection:
            return list(connection.execute(text(sql), params).mappings())

    def tables(self) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'"
                )
            )
            return sorted(row.table_name for row in rows)

    def counts(self) -> dict[str, int]:
        return {table: self.scalar(f'SELECT count(*) FROM "{table}"') for table in self.tables()}

    def reset(self) -> None:
        # The mock providers post a receipt about a second after accepting a send (through the runner's queue
        # and MockReceiptFunction): one that arrived after the truncate would be held, and counted as the next
        # test's write. So the last test's sends are given time to be answered first.
        pending = self.scalar(
            "SELECT EXTRACT(EPOCH FROM max(updated_at) + make_interval(secs => :settle) - now()) FROM messages"
            " WHERE direction = 'outbound' AND status <> 'queued'",
            settle=RECEIPTS_SETTLE_SECONDS,
        )
        if pending is not None and pending > 0:
            time.sleep(float(pending))
        # The runner's own background work (the sweep, a late receipt, the event dispatcher) may write while
        # the truncate takes its locks table by table; PostgreSQL then aborts one of the two as a deadlock
        # victim. When that is the truncate, it is simply run again, as PostgreSQL advises for 40P01.
        for attempt in itertools.count(1):
            try:
                with self.engine.begin() as connection:
                    connection.execute(text(f"TRUNCATE {', '.join(self.tables())} RESTART IDENTITY CASCADE"))
                return
            except DBAPIError as error:
                if attempt >= 5 or server_sqlstate(error.orig) != DEADLOCK_DETECTED:
                    raise


@pytest.fixture(scope="session")
def runner() -> Iterator[Runner]:
    started = Runner("main")
    yield started
    started.stop()


@pytest.fixture(scope="session")
def runner_url(runner: Runner) -> str:
    return runner.url


@pytest.fixture(scope="session")
def runner_db_session(runner: Runner) -> Iterator[RunnerDb]:
    database = RunnerDb(runner.database_url)
    yield database
    database.engine.dispose()


@pytest.fixture
def runner_db(runner_db_session: RunnerDb) -> RunnerDb:
    """SQL access to the runner's database, emptied before each test."""
    runner_db_session.reset()
    return runner_db_session
