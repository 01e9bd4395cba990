"""The history table refuses rows the contract does not allow, and its enums match the code's."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from messaging.enums import EventSource, EventType


def _insert(connection, event_type: str, source: str) -> None:
    connection.execute(
        text("INSERT INTO message_events (type, source) VALUES (:type, :source)"),
        {"type": event_type, "source": source},
    )


def test_every_event_type_and_source_of_the_code_is_storable(admin_engine, db):
    """The CHECK constraints of migration 0003 and the enums must list the same values."""
    with admin_engine.begin() as connection:
        for event_type in EventType:
            _insert(connection, event_type.value, EventSource.API.value)
        for source in EventSource:
            _insert(connection, EventType.SENT.value, source.value)
    assert db.scalar("SELECT count(*) FROM message_events") == len(EventType) + len(EventSource)


@pytest.mark.parametrize(("event_type", "source"), [("message.exploded", "api"), ("message.sent", "carrier-pigeon")])
def test_an_unknown_type_or_source_is_refused(admin_engine, db, event_type, source):
    with pytest.raises(DBAPIError, match="ck_message_events_(type|source)"), admin_engine.begin() as connection:
        _insert(connection, event_type, source)
    assert db.scalar("SELECT count(*) FROM message_events") == 0
