"""The service's connections send each statement in one round trip (messaging.db.wire), and stay in step
with the server whatever fails: the server's own errors, values the driver cannot send, a failed begin."""

import io

import pg8000.core
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from messaging.db import wire


@pytest.fixture
def round_trips(monkeypatch):
    """Counts the driver's socket flushes: each is one round trip to the server."""
    flushes = []
    original = pg8000.core._flush

    def counting(sock):
        flushes.append(1)
        return original(sock)

    monkeypatch.setattr(pg8000.core, "_flush", counting)
    monkeypatch.setattr(wire, "_flush", counting)
    return flushes


@pytest.fixture
def scratch_table(one_connection_engine):
    with one_connection_engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS wire_test (id int PRIMARY KEY, note text)"))
        connection.execute(text("TRUNCATE wire_test"))
    yield one_connection_engine
    with one_connection_engine.begin() as connection:
        connection.execute(text("DROP TABLE wire_test"))


def backend_pid(engine):
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()


def test_a_transaction_of_one_statement_is_two_round_trips(scratch_table, round_trips):
    with scratch_table.connect() as connection:
        connection.exec_driver_sql("SELECT 1")  # connected and checked out before counting
        connection.rollback()
        round_trips.clear()
        connection.execute(text("INSERT INTO wire_test VALUES (:id, :note)"), {"id": 1, "note": "one"})
        connection.commit()
    # begin travels with the insert; the commit is the second. pg8000 alone makes seven.
    assert len(round_trips) == 2
    with scratch_table.connect() as connection:
        round_trips.clear()
        rows = connection.execute(text("SELECT note FROM wire_test WHERE id = :id"), {"id": 1}).scalars().all()
        assert len(round_trips) == 1
    assert rows == ["one"]


def rows_of(engine):
    with engine.begin() as connection:
        return connection.execute(text("SELECT id, note FROM wire_test ORDER BY id")).all()


ALONE = text("INSERT INTO wire_test VALUES (:id, :note)").execution_options(own_transaction=True)


def test_a_statement_that_is_its_whole_transaction_is_one_round_trip_committed_as_it_completes(
    scratch_table, round_trips
):
    with scratch_table.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
        round_trips.clear()
        connection.execute(ALONE, {"id": 1, "note": "one"})
        connection.rollback()  # nothing left to undo: PostgreSQL committed it as it completed
        connection.commit()
    # No begin, no commit: the statement alone, in one round trip.
    assert len(round_trips) == 1
    assert rows_of(scratch_table) == [(1, "one")]


def test_a_failing_statement_that_is_its_whole_transaction_writes_nothing_and_the_connection_serves_on(
    scratch_table,
):
    with scratch_table.begin() as connection:
        connection.execute(ALONE, {"id": 1, "note": "one"})
    with pytest.raises(IntegrityError), scratch_table.begin() as connection:
        connection.execute(ALONE, {"id": 1, "note": "again"})
    # The next transaction, of two statements, is one: the begin is sent again after the failure.
    with pytest.raises(IntegrityError), scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (2, 'two')"))
        connection.execute(text("INSERT INTO wire_test VALUES (1, 'duplicate')"))
    assert rows_of(scratch_table) == [(1, "one")]


def test_inside_a_transaction_already_begun_the_statement_stays_part_of_it(scratch_table):
    with pytest.raises(IntegrityError), scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (5, 'first')"))
        connection.execute(ALONE, {"id": 6, "note": "second"})
        connection.execute(text("INSERT INTO wire_test VALUES (5, 'duplicate')"))
    assert rows_of(scratch_table) == []


def test_a_statement_that_fails_before_it_is_sent_leaves_the_next_transaction_whole(scratch_table):
    with pytest.raises(UnicodeEncodeError), scratch_table.begin() as connection:
        connection.execute(ALONE, {"id": 1, "note": "lone surrogate \ud800"})
    # Had the flag outlived the failed statement, the first insert below would commit on its own.
    with pytest.raises(IntegrityError), scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (3, 'three')"))
        connection.execute(text("INSERT INTO wire_test VALUES (3, 'duplicate')"))
    assert rows_of(scratch_table) == []


def test_statements_of_a_transaction_share_it(scratch_table):
    with scratch_table.begin() as connection:
        first = connection.exec_driver_sql("SELECT txid_current()").scalar()  # parameterless: a simple query
        second = connection.execute(text("SELECT txid_current() + :zero"), {"zero": 0}).scalar()
        connection.execute(text("INSERT INTO wire_test VALUES (:id, 'x')"), {"id": 2})
    assert first == second
    with scratch_table.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM wire_test")).scalar() == 1


def test_the_servers_error_leaves_the_connection_in_step_and_the_transaction_rolled_back(scratch_table):
    pid = backend_pid(scratch_table)
    with scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (1, 'kept')"))
    with pytest.raises(IntegrityError), scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (:id, 'second')"), {"id": 3})
        connection.execute(text("INSERT INTO wire_test VALUES (:id, 'duplicate')"), {"id": 1})
    # The first error of a transaction, on the statement that carried the begin:
    with pytest.raises(DBAPIError), scratch_table.begin() as connection:
        connection.execute(text("SELECT CAST(:value AS int)"), {"value": "not a number"})
    with pytest.raises(DBAPIError), scratch_table.begin() as connection:
        connection.execute(text("SELECT no_such_column FROM wire_test WHERE id = :id"), {"id": 1})
    with scratch_table.begin() as connection:
        assert connection.execute(text("SELECT id, note FROM wire_test ORDER BY id")).all() == [(1, "kept")]
        assert connection.execute(text("SELECT CAST(:a AS int) + :b"), {"a": 40, "b": 2}).scalar() == 42
    assert backend_pid(scratch_table) == pid  # a clean error: the same connection serves on


@pytest.mark.parametrize("value", ["lone surrogate \ud800", 10**40], ids=["unencodable", "beyond-bigint"])
def test_after_a_value_that_cannot_be_stored_every_read_returns_its_own_rows(scratch_table, value):
    with scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (1, 'kept')"))
    with pytest.raises((DBAPIError, UnicodeEncodeError)), scratch_table.begin() as connection:
        connection.execute(text("INSERT INTO wire_test VALUES (:id, 'new')"), {"id": 2})
        connection.execute(text("INSERT INTO wire_test VALUES (CAST(:value AS int), 'bad')"), {"value": value})
    for _ in range(3):
        with scratch_table.begin() as connection:
            assert connection.execute(text("SELECT id FROM wire_test ORDER BY id")).scalars().all() == [1]
            numbers = connection.execute(text("SELECT n FROM generate_series(1, :n) AS n"), {"n": 3}).scalars()
            assert numbers.all() == [1, 2, 3]


def test_an_unencodable_value_fails_with_nothing_written_so_the_raw_connection_serves_on(scratch_table):
    with scratch_table.connect() as connection:
        raw = connection.connection.driver_connection
        assert isinstance(raw, wire.PipelinedConnection)
        cursor = raw.cursor()
        with pytest.raises(UnicodeEncodeError):
            cursor.execute("SELECT CAST(%s AS text)", ("\udfff",))
        raw.rollback()
        cursor.execute("SELECT CAST(%s AS text), 1 + %s", ("fine", 1))
        assert list(cursor.fetchall()) == [["fine", 2]]
        raw.rollback()


def test_copy_from_a_stream_still_works_with_the_begin_sent_first(scratch_table):
    with scratch_table.connect() as connection:
        raw = connection.connection.driver_connection
        assert isinstance(raw, wire.PipelinedConnection)
        cursor = raw.cursor()
        cursor.execute(
            "COPY wire_test (id, note) FROM STDIN WITH (FORMAT csv)", stream=io.BytesIO(b"7,seven\n8,eight\n")
        )
        raw.commit()
    with scratch_table.begin() as connection:
        assert connection.execute(text("SELECT note FROM wire_test ORDER BY id")).scalars().all() == ["seven", "eight"]


def prepared_statements(connection):
    return connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()


def test_a_statement_is_prepared_once_per_connection_and_then_only_bound(scratch_table, round_trips):
    insert = text("INSERT INTO wire_test VALUES (:id, :note)")
    with scratch_table.connect() as connection:
        connection.execute(insert, {"id": 1, "note": "one"})
        connection.commit()
        assert any("INSERT INTO wire_test" in statement for statement in prepared_statements(connection))
        round_trips.clear()
        connection.execute(insert, {"id": 2, "note": "two"})
        connection.commit()
        assert len(round_trips) == 2  # bind+execute (with the begin), then the commit
        # A rolled-back transaction keeps the statement (named statements are not transactional).
        connection.execute(insert, {"id": 3, "note": "rolled back"})
        connection.rollback()
        connection.execute(insert, {"id": 4, "note": "four"})
        connection.commit()
        # The server's error on a prepared statement leaves it usable.
        with pytest.raises(IntegrityError):
            connection.execute(insert, {"id": 4, "note": "duplicate"})
        connection.rollback()
        connection.execute(insert, {"id": 5, "note": "five"})
        connection.commit()
        rows = connection.execute(text("SELECT id, note FROM wire_test WHERE id > :id ORDER BY id"), {"id": 0}).all()
    assert rows == [(1, "one"), (2, "two"), (4, "four"), (5, "five")]


def test_no_statement_is_prepared_when_turned_off(configure, database_url):
    from messaging.db import engine

    configure(DATABASE_PREPARED_STATEMENTS="false", DATABASE_POOL_SIZE=1)
    with engine.get_engine().connect() as connection:
        assert connection.execute(text("SELECT CAST(:n AS int) + 1"), {"n": 41}).scalar() == 42
        assert connection.execute(text("SELECT CAST(:n AS int) + 1"), {"n": 1}).scalar() == 2
        assert prepared_statements(connection) == []


def test_an_inbound_webhook_is_one_round_trip_to_the_database(invoke, db, round_trips):
    """Its store is the whole of its transaction: begin, statement and commit travel as one."""
    from tests.conftest import sample_body, sample_event

    def webhook(provider_id):
        body = {**sample_body("inbound_sms-sms"), "messaging_provider_id": provider_id}
        return invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=body))

    assert webhook("warm-up")["statusCode"] == 200  # connected (a connection's setup is its own)
    round_trips.clear()
    assert webhook("counted")["statusCode"] == 200
    assert len(round_trips) == 1
    assert db.scalar("SELECT count(*) FROM messages") == 2


def test_a_page_read_is_one_round_trip_to_the_database(invoke, db, round_trips):
    """A read of one statement is a transaction of its own: no begin, no commit to send."""
    from tests.conftest import sample_event

    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
    assert invoke("ConversationsFunction", sample_event("conversations-messages"))["statusCode"] == 200  # warm
    round_trips.clear()
    page = invoke("ConversationsFunction", sample_event("conversations-messages"))
    assert page["statusCode"] == 200
    assert len(round_trips) == 1
