"""A crafted cursor is a 422 naming `cursor` and never leaves a pooled connection out of step with the
database, so that no later request, on any route, ever reads another request's rows. And, below the
cursor rules, the engine itself discards a connection left in doubt by any error that is not a clean
answer from the database."""

import base64
import json

import pytest
from sqlalchemy import text

from tests.conftest import response_json, sample_event

BIGINT_MAX = 2**63 - 1


def cursor_of(document) -> str:
    """A cursor as the API encodes one (urlsafe base64 of JSON, padding stripped), with any content."""
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_CURSORS = {
    # Instants that exist with their offset but not in UTC: converting them used to fail inside the driver,
    # after half of the statement had been sent.
    "year-1-east-of-utc": cursor_of(["0001-01-01T00:00:00+14:00", 1]),
    "year-9999-west-of-utc": cursor_of(["9999-12-31T23:59:59-14:00", 1]),
    "id-past-bigint": cursor_of(["2024-11-01T14:00:00+00:00", 2**63]),
    "id-far-past-bigint": cursor_of(["2024-11-01T14:00:00+00:00", 10**40]),
    "id-below-bigint": cursor_of(["2024-11-01T14:00:00+00:00", -(2**63) - 1]),
    "id-zero": cursor_of(["2024-11-01T14:00:00+00:00", 0]),
    "id-negative": cursor_of(["2024-11-01T14:00:00+00:00", -1]),
    "id-float": cursor_of(["2024-11-01T14:00:00+00:00", 1.5]),
    "id-true": cursor_of(["2024-11-01T14:00:00+00:00", True]),
    "id-text": cursor_of(["2024-11-01T14:00:00+00:00", "1"]),
    "id-null": cursor_of(["2024-11-01T14:00:00+00:00", None]),
    "instant-naive": cursor_of(["2024-11-01T14:00:00", 1]),
    "instant-number": cursor_of([1730469600, 1]),
    "instant-null": cursor_of([None, 1]),
    "instant-garbage": cursor_of(["not a time", 1]),
    "three-items": cursor_of(["2024-11-01T14:00:00+00:00", 1, 2]),
    "one-item": cursor_of(["2024-11-01T14:00:00+00:00"]),
    "object": cursor_of({"at": "2024-11-01T14:00:00+00:00", "id": 1}),
    "string": cursor_of("2024-11-01T14:00:00+00:00"),
    "number": cursor_of(1),
    "not-json": cursor_of(b"\xff\xfe not json"),
    "not-base64": "!!!!",
}

PAGED_ROUTES = {
    "conversations": ("conversations-list", "/api/conversations", {}),
    "messages": ("conversations-messages", "/api/conversations/1/messages", {"conversation_id": "1"}),
}


def get(path: str, query: dict[str, str] | None = None, path_parameters: dict[str, str] | None = None):
    """A GET event on any ConversationsFunction route."""
    event = sample_event("conversations-list")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in (query or {}).items())
    event["queryStringParameters"] = dict(query or {}) or None
    event["pathParameters"] = dict(path_parameters or {}) or None
    return event


def read(invoke, path, query=None, path_parameters=None):
    response = invoke("ConversationsFunction", get(path, query, path_parameters))
    assert response["statusCode"] == 200, (path, response)
    return response_json(response)


@pytest.fixture
def conversations(invoke, db):
    """Four conversations of three messages each; each message's body names its conversation and order."""
    for index in range(12):
        partner, order = index % 4, index // 4
        body = {
            "from": f"+1415555{partner:04d}",
            "to": "+12016661234",
            "type": "sms",
            "messaging_provider_id": f"safety-{index}",
            "body": f"partner {partner} message {order}",
            "attachments": None,
            "timestamp": f"2024-11-01T14:{index:02d}:00Z",
        }
        response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=body))
        assert response["statusCode"] == 200, response
    return db.rows("SELECT id FROM conversations ORDER BY id")


def every_read(invoke, conversation_ids, message_ids):
    """What every read route answers now, keyed by route and id."""
    answers = {"list": read(invoke, "/api/conversations")}
    for conversation_id in conversation_ids:
        ids = {"conversation_id": str(conversation_id)}
        answers[f"conversation {conversation_id}"] = read(invoke, f"/api/conversations/{conversation_id}", None, ids)
        answers[f"messages {conversation_id}"] = read(
            invoke, f"/api/conversations/{conversation_id}/messages", None, ids
        )
    for message_id in message_ids:
        answers[f"message {message_id}"] = read(
            invoke, f"/api/messages/{message_id}", None, {"message_id": str(message_id)}
        )
    return answers


def test_crafted_cursors_are_422_and_every_later_read_returns_its_own_rows(invoke, db, conversations):
    conversation_ids = [row["id"] for row in conversations]
    message_ids = [row["id"] for row in db.rows("SELECT id FROM messages ORDER BY id")]
    expected = every_read(invoke, conversation_ids, message_ids)
    # The expected answers are the right rows, not just stable ones.
    for conversation_id in conversation_ids:
        bodies = [item["body"] for item in expected[f"messages {conversation_id}"]["items"]]
        partner = bodies[0].split()[1]
        assert bodies == [f"partner {partner} message {order}" for order in range(3)]
        assert expected[f"conversation {conversation_id}"]["id"] == conversation_id

    refused = {}
    for name, cursor in CRAFTED_CURSORS.items():
        for route, (_, path, path_parameters) in PAGED_ROUTES.items():
            try:
                response = invoke("ConversationsFunction", get(path, {"cursor": cursor}, path_parameters))
                refused[(name, route)] = (response["statusCode"], response_json(response))
            except Exception as error:  # an unhandled error: Lambda would answer 500
                refused[(name, route)] = (500, repr(error))
            # After each crafted request, every route still answers with exactly its own rows, many times.
            for _ in range(2):
                assert every_read(invoke, conversation_ids, message_ids) == expected, (name, route)

    for (name, route), (status, document) in refused.items():
        assert status == 422, (name, route, document)
        assert document["error"]["code"] == "invalid_input"
        assert document["error"]["field"] == "cursor", (name, route, document)


def test_cursors_the_api_returns_still_page_through_every_row(invoke, db, conversations):
    seen, query = [], {"limit": "5"}
    while True:
        page = read(invoke, "/api/conversations/1/messages", query, {"conversation_id": "1"})
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        query = {"limit": "1", "cursor": page["next_cursor"]}
    assert seen == [row["id"] for row in db.rows("SELECT id FROM messages WHERE conversation_id = 1 ORDER BY id")]


@pytest.mark.parametrize(
    "position",
    [
        ["0001-01-01T00:00:00+00:00", 1],
        ["9999-12-31T23:59:59.999999+00:00", BIGINT_MAX],
        ["0001-01-01T00:00:00-14:00", BIGINT_MAX],
    ],
)
def test_extreme_but_valid_positions_are_accepted(invoke, db, conversations, position):
    for _, path, path_parameters in PAGED_ROUTES.values():
        page = read(invoke, path, {"cursor": cursor_of(position)}, path_parameters)
        assert page["next_cursor"] is None or page["items"]


class ExplodingParameter:
    """A parameter the driver cannot convert: pg8000 converts parameters only after it has sent the
    statement's Parse and Describe messages, so the failure strands the server's replies on the socket."""

    def __str__(self) -> str:
        raise RuntimeError("this parameter cannot be converted")


def test_an_error_mid_statement_that_is_not_the_databases_discards_the_connection(one_connection_engine):
    with one_connection_engine.connect() as connection:
        first_backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    with pytest.raises(RuntimeError), one_connection_engine.begin() as connection:
        connection.execute(text("SELECT CAST(:value AS text)"), {"value": ExplodingParameter()})

    # Every later statement on the pool reads its own rows.
    for _ in range(3):
        with one_connection_engine.begin() as connection:
            assert connection.execute(text("SELECT 41 + 1 AS answer")).scalar() == 42
            rows = connection.execute(text("SELECT n FROM generate_series(1, 3) AS n ORDER BY n")).scalars().all()
            assert rows == [1, 2, 3]
            backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert backend != first_backend  # the connection left in doubt was closed, not reused


def test_a_clean_database_error_keeps_the_connection(one_connection_engine):
    from sqlalchemy.exc import DBAPIError

    with one_connection_engine.connect() as connection:
        first_backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with pytest.raises(DBAPIError) as raised, one_connection_engine.begin() as connection:
        connection.execute(text("SELECT 1 / 0"))
    assert not raised.value.connection_invalidated
    with one_connection_engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first_backend
        assert connection.execute(text("SELECT 2")).scalar() == 2
