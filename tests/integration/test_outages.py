"""Database outages: a clear 503 with Retry-After, and nothing half-written."""

import pytest
from sqlalchemy import event, text

from tests.conftest import response_json, sample_event

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/unreachable"


@pytest.fixture
def database_down(configure, database_url):
    from messaging.db import engine

    configure(DATABASE_URL=UNREACHABLE, DATABASE_TIMEOUT_SECONDS=1)
    engine.reset_engine()
    yield
    configure(DATABASE_URL=database_url)
    engine.reset_engine()


@pytest.mark.parametrize(
    ("function", "event_name"),
    [
        ("InboundSmsFunction", "inbound_sms-sms"),
        ("InboundEmailFunction", "inbound_email-email"),
        ("ConversationsFunction", "conversations-list"),
        ("ConversationsFunction", "conversations-messages"),
        ("ConversationsFunction", "conversations-message"),
    ],
)
def test_unreachable_database_is_503_with_retry_after(invoke, database_url, database_down, function, event_name):
    response = invoke(function, sample_event(event_name))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    assert response_json(response)["error"]["code"] == "service_unavailable"


def test_health_reports_an_unreachable_database(invoke, database_url, database_down):
    response = invoke("ConversationsFunction", sample_event("conversations-health"))
    assert response["statusCode"] == 503
    assert response_json(response) == {"status": "degraded", "database": "unreachable"}


def test_connection_lost_mid_transaction_leaves_nothing_half_written(invoke, db, admin_engine):
    from messaging.db.engine import get_engine

    engine = get_engine()

    def kill_before_message_insert(connection, cursor, statement, parameters, context, executemany):
        if "INSERT INTO messages" in statement:
            backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin_engine.begin() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

    event.listen(engine, "before_cursor_execute", kill_before_message_insert)
    try:
        response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    finally:
        event.remove(engine, "before_cursor_execute", kill_before_message_insert)
    assert response["statusCode"] == 503
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}

    retried = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    assert retried["statusCode"] == 200
    assert response_json(retried)["duplicate"] is False
    assert db.scalar("SELECT message_count FROM conversations") == 1


def test_the_service_recovers_when_the_database_comes_back(invoke, db, configure, database_url):
    from messaging.db import engine

    configure(DATABASE_URL=UNREACHABLE, DATABASE_TIMEOUT_SECONDS=1)
    engine.reset_engine()
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 503
    configure(DATABASE_URL=database_url)
    engine.reset_engine()
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200
