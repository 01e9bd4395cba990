"""`make seed`'s in-process path (python -m infra.seed) against a database of its own: the demo data must
hold every message status, on every channel, and a second run must add nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from infra import seed
from infra.local_runner import postgres
from messaging.enums import MessageStatus, MessageType
from tests.conftest import _server_url, create_test_database
from tests.e2e.conftest import ROOT, RunnerDb

pytestmark = pytest.mark.e2e


class SeedDatabase(RunnerDb):
    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.url = database_url


@pytest.fixture(scope="module")
def seeded_database() -> Iterator[SeedDatabase]:
    server_url = _server_url()
    name = f"e2e_seed_{os.getpid()}"
    database = SeedDatabase(create_test_database(server_url, name))
    try:
        yield database
    finally:
        database.engine.dispose()
        postgres.drop_database(server_url, name)


def run_seed(database: SeedDatabase) -> subprocess.CompletedProcess[str]:
    """`make seed` as a developer runs it: its own process (it sets up queues and environment variables)."""
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("MOCK_", "SQS_", "SENDER_"))},
        "DATABASE_URL": database.url,
    }
    finished = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "infra.seed"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished


def test_the_seed_leaves_messages_in_every_status_on_every_channel_and_runs_again_harmlessly(seeded_database):
    run_seed(seeded_database)
    with seeded_database.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT type, status, count(*) FROM messages GROUP BY type, status").all()
    found = {(row[0], row[1]): row[2] for row in rows}
    assert {status for _, status in found} == {status.value for status in MessageStatus}, found
    assert {channel for channel, _ in found} == {channel.value for channel in MessageType}, found
    # Each channel's outbound outcomes, as the script, the receipts and the throttle leave them.
    for channel, statuses in {
        "sms": {"queued", "retrying", "sent", "delivered", "undelivered", "failed", "received"},
        "mms": {"delivered", "received"},
        "email": {"queued", "retrying", "sent", "delivered", "undelivered", "failed", "received"},
    }.items():
        assert statuses <= {status for (kind, status) in found if kind == channel}, (channel, found)
    # The bounce suppressed its recipient; the undelivered SMS carries the provider's reason.
    assert seeded_database.scalar("SELECT count(*) FROM suppressions WHERE address = 'dave@example.org'") == 1
    assert seeded_database.scalar("SELECT status_detail FROM messages WHERE to_address = '+14155550166'") == "30003"

    # The demo webhook endpoint (its deliveries come from a running server's dispatcher, not from the seed).
    demo_endpoints = "SELECT count(*) FROM webhook_endpoints WHERE url = :url AND enabled"
    assert seeded_database.scalar(demo_endpoints, url=seed.DEMO_WEBHOOK_URL) == 1

    before = seeded_database.counts()
    run_seed(seeded_database)
    assert seeded_database.counts() == before  # the endpoint too is registered once
