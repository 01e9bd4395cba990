"""Database outages on the inbound and query paths: a clear 503 with Retry-After (never a 500), nothing
half-written, and the service recovers by itself. (The send path's outages are in test_outbound.py.)"""

import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from tests.conftest import response_json, sample_event

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/unreachable"
EMPTY = {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}
INBOUND = [("InboundSmsFunction", "inbound_sms-sms"), ("InboundEmailFunction", "inbound_email-email")]
READS = [
    ("ConversationsFunction", "conversations-list"),
    ("ConversationsFunction", "conversations-get"),
    ("ConversationsFunction", "conversations-messages"),
    ("ConversationsFunction", "conversations-message"),
]
STORE_STATEMENT = "INSERT INTO messages"


def assert_unavailable(response):
    assert response["statusCode"] == 503, response
    assert int(response["headers"]["Retry-After"]) > 0
    assert response_json(response) == {
        "error": {"code": "service_unavailable", "message": response_json(response)["error"]["message"], "field": None}
    }


@pytest.fixture
def point_database_at(configure, database_url):
    """Point the service at another database URL (1 s timeouts); the real one is restored afterwards."""

    def point(url: str) -> None:
        configure(DATABASE_URL=url, DATABASE_TIMEOUT_SECONDS=1)

    yield point
    configure(DATABASE_URL=database_url)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung database, a black-holed proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/hung"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture
def refusing_role(admin_engine) -> Iterator[str]:
    """A role the server refuses with 53300 (too many connections), as under a connection storm."""
    role = f"outage_no_slots_{os.getpid()}"
    with admin_engine.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        connection.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    yield role
    with admin_engine.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))


@pytest.mark.parametrize(("function", "event_name"), INBOUND + READS)
def test_unreachable_database_is_503_with_retry_after(invoke, db, point_database_at, function, event_name):
    point_database_at(UNREACHABLE)
    assert_unavailable(invoke(function, sample_event(event_name)))


@pytest.mark.parametrize(("function", "event_name"), INBOUND + READS[:1])
def test_a_database_that_never_answers_is_503_within_the_timeout(
    invoke, db, point_database_at, silent_server, function, event_name
):
    point_database_at(silent_server)
    started = time.monotonic()
    assert_unavailable(invoke(function, sample_event(event_name)))
    assert time.monotonic() - started < 5
    assert db.counts() == EMPTY


@pytest.mark.parametrize("refusal", ["unknown-database", "too-many-connections"])
@pytest.mark.parametrize(("function", "event_name"), INBOUND[:1] + READS[:1])
def test_a_server_refusing_the_connection_is_503(
    invoke, db, database_url, point_database_at, refusing_role, refusal, function, event_name
):
    url = make_url(database_url)  # works for host:port and for socket (?host=/dir) URLs alike
    if refusal == "unknown-database":
        url = url.set(database=f"no_such_database_{os.getpid()}")
    else:
        url = url.set(username=refusing_role, password=None)
    point_database_at(url.render_as_string(hide_password=False))
    assert_unavailable(invoke(function, sample_event(event_name)))
    assert db.counts() == EMPTY


def test_health_reports_an_unreachable_database(invoke, db, point_database_at):
    point_database_at(UNREACHABLE)
    response = invoke("ConversationsFunction", sample_event("conversations-health"))
    assert response["statusCode"] == 503
    assert response_json(response) == {"status": "degraded", "database": "unreachable"}


def test_health_reports_a_database_that_never_answers(invoke, db, point_database_at, silent_server):
    point_database_at(silent_server)
    response = invoke("ConversationsFunction", sample_event("conversations-health"))
    assert response["statusCode"] == 503
    assert response_json(response) == {"status": "degraded", "database": "unreachable"}


def test_health_does_not_report_a_defect_as_an_unreachable_database(invoke, db, monkeypatch):
    from messaging.db import repository

    def defect(_connection):
        raise KeyError("a bug")

    monkeypatch.setattr(repository, "ping", defect)
    with pytest.raises(KeyError):
        invoke("ConversationsFunction", sample_event("conversations-health"))


@pytest.fixture
def terminate_backend(admin_engine):
    """Listen on the service's engine and terminate its backend (pg_terminate_backend from another
    connection) before or after the first statement matching a fragment."""
    from messaging.db.engine import get_engine

    engine = get_engine()
    installed: list[tuple[str, object]] = []
    observed: dict[str, int] = {}

    def kill(connection) -> None:
        # The backend's pid as the server announced it at connect (BackendKeyData): asking it with a query
        # would open a transaction of the test's own on the service's connection.
        backend = struct.unpack("!i", connection.connection.driver_connection._backend_key_data[:4])[0]
        with admin_engine.begin() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

    def install(fragment: str, moment: str) -> None:
        def listener(connection, cursor, statement, parameters, context, executemany, *result) -> None:
            if fragment not in statement or observed.get("killed"):
                return
            observed["killed"] = 1
            if moment == "after_cursor_execute":
                # The statement ran: what of it do other connections see (what it has committed)?
                with admin_engine.begin() as admin:
                    observed["committed_messages"] = admin.execute(text("SELECT count(*) FROM messages")).scalar()
            kill(connection)

        event.listen(engine, moment, listener)
        installed.append((moment, listener))

    yield install, observed
    for moment, listener in installed:
        event.remove(engine, moment, listener)


@pytest.mark.parametrize(("function", "event_name"), INBOUND)
def test_connection_lost_before_the_write_leaves_nothing(invoke, db, terminate_backend, function, event_name):
    install, _ = terminate_backend
    install(STORE_STATEMENT, "before_cursor_execute")
    assert_unavailable(invoke(function, sample_event(event_name)))
    assert db.counts() == EMPTY


@pytest.mark.parametrize(("function", "event_name"), INBOUND)
def test_connection_lost_right_after_the_store_keeps_the_message_once(
    invoke, db, terminate_backend, function, event_name
):
    """An inbound webhook's store is one statement that is its own transaction, committed as it completes:
    there is no moment between the write and the commit for a lost connection to cut. Lost right after,
    the message is stored whole, and the provider's retry answers it as a duplicate."""
    install, observed = terminate_backend
    install(STORE_STATEMENT, "after_cursor_execute")
    first = invoke(function, sample_event(event_name))
    assert observed["committed_messages"] == 1  # committed as the statement completed, before the cut
    assert first["statusCode"] == 200
    assert db.counts()["messages"] == 1
    retried = invoke(function, sample_event(event_name))
    if retried["statusCode"] == 503:  # the pooled connection that was cut is found dead at its next use
        retried = invoke(function, sample_event(event_name))
    assert retried["statusCode"] == 200
    assert response_json(retried) == {**response_json(first), "duplicate": True}
    assert db.rows("SELECT message_count, last_message_id FROM conversations") == [
        {"message_count": 1, "last_message_id": response_json(first)["id"]}
    ]


@pytest.mark.parametrize(("function", "event_name"), READS)
def test_connection_lost_during_a_read_is_503(invoke, db, terminate_backend, function, event_name):
    install, _ = terminate_backend
    install("FROM", "before_cursor_execute")
    assert_unavailable(invoke(function, sample_event(event_name)))


def wait_for_the_database_to_settle(db) -> None:
    """Until no statement of the service is still running (a store the stall held up finishes after its
    client has given up on it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
        "AND query LIKE '%INSERT INTO messages%' AND pid <> pg_backend_pid()"
    ):
        time.sleep(0.1)


def test_a_stalled_database_is_503_in_time_and_the_retry_stores_the_webhook_once(invoke, db, admin_engine, configure):
    """The database stops answering (here: a lock held elsewhere): the webhook times out with a 503. Its
    store, one statement that is its own transaction, may still complete once the database moves (the
    server finishes what it was sent): the provider's retry then finds it, and the message exists once."""

    configure(DATABASE_TIMEOUT_SECONDS=1)
    blocker = admin_engine.connect()
    transaction = blocker.begin()
    blocker.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
    try:
        started = time.monotonic()
        assert_unavailable(invoke("InboundSmsFunction", sample_event("inbound_sms-sms")))
        assert time.monotonic() - started < 5
    finally:
        transaction.rollback()
        blocker.close()
    wait_for_the_database_to_settle(db)
    configure(DATABASE_TIMEOUT_SECONDS=None)
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1
    assert db.scalar("SELECT message_count FROM conversations") == 1


def test_the_service_recovers_when_the_database_comes_back(invoke, db, point_database_at, database_url):
    point_database_at(UNREACHABLE)
    assert_unavailable(invoke("InboundSmsFunction", sample_event("inbound_sms-sms")))
    point_database_at(database_url)
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1


@pytest.fixture
def small_pool(configure):
    """The service's engine with two connections at most (pool of one, overflow of one) and 1 s timeouts."""
    from messaging.db import engine

    configure(DATABASE_POOL_SIZE=1, DATABASE_TIMEOUT_SECONDS=1)
    yield engine.get_engine()
    configure(DATABASE_POOL_SIZE=None, DATABASE_TIMEOUT_SECONDS=None)


@pytest.mark.parametrize(("function", "event_name"), INBOUND + READS)
def test_no_free_connection_in_the_pool_is_503_within_the_timeout(invoke, db, small_pool, function, event_name):
    """Every pooled connection is busy (here: held by the test) and none comes free in time."""
    held = [small_pool.connect(), small_pool.connect()]
    try:
        assert_unavailable(invoke(function, sample_event(event_name)))
    finally:
        for connection in held:
            connection.close()
    assert db.counts() == EMPTY
    assert invoke(function, sample_event(event_name))["statusCode"] in (200, 404)


def test_a_stalled_database_answers_every_request_503(invoke, concurrent_invoke, db, admin_engine, small_pool):
    """The database stalls (a lock held elsewhere) while 40 webhooks arrive at once, served by the runner's
    execution environments (worker processes, each with the 1 s timeouts of `small_pool`): every one is a
    503 in time. Once the database moves, the providers' retries store each message exactly once, whether
    its first store completed after its 503 or not. (A pool exhausted inside one environment is the test
    above.)"""
    from concurrent.futures import ThreadPoolExecutor

    def webhook(index: int) -> dict:
        body = {**json.loads(sample_event("inbound_sms-sms")["body"]), "messaging_provider_id": f"stall-{index}"}
        return sample_event("inbound_sms-sms", payload=body)

    blocker = admin_engine.connect()
    transaction = blocker.begin()
    blocker.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
    try:
        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(lambda index: concurrent_invoke("InboundSmsFunction", webhook(index)), range(40)))
    finally:
        transaction.rollback()
        blocker.close()
    for response in responses:
        assert_unavailable(response)
    wait_for_the_database_to_settle(db)
    retried = [invoke("InboundSmsFunction", webhook(index)) for index in range(40)]
    assert {response["statusCode"] for response in retried} == {200}
    assert len({response_json(response)["id"] for response in retried}) == 40
    assert db.scalar("SELECT count(*) FROM messages") == 40
    assert db.scalar("SELECT message_count FROM conversations") == 40
