"""A crafted cursor is a 422 naming `cursor`, on every route that takes one, and never leaves a pooled
connection out of step with the database, so that no later request, on any route, ever reads another
request's rows. And, below the cursor rules, the engine itself discards a connection left in doubt by any
error that is not a clean answer from the database."""

import base64
import json
import re

import pytest
from sqlalchemy import text

from infra.local_runner.apigw import http_api_event
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

# Every route that takes a cursor, by function. The test below also asks every GET route of the template
# whether it accepts `cursor`, so a new paged route cannot be left out of this regression.
PAGED_ROUTES = {
    ("ConversationsFunction", "/api/conversations"),
    ("ConversationsFunction", "/api/conversations/{conversation_id}/messages"),
    ("ConversationsFunction", "/api/messages"),
    ("ConversationsFunction", "/api/messages/{message_id}/events"),
    ("ConversationsFunction", "/api/suppressions"),
    ("WebhookEndpointsFunction", "/api/webhook-endpoints"),
    ("WebhookEndpointsFunction", "/api/webhook-endpoints/{endpoint_id}/deliveries"),
}


def get(invoke, function: str, route: str, ids: dict[str, int] | None = None, query: str = ""):
    """GET a route of the template, its {placeholders} filled from `ids`."""
    path_parameters = {name: str(value) for name, value in (ids or {}).items()}
    return invoke(
        function,
        http_api_event(
            "GET",
            route.format(**path_parameters),
            route_key=f"GET {route}",
            query=query,
            path_parameters=path_parameters or None,
        ),
    )


def read(invoke, function: str, route: str, ids: dict[str, int] | None = None, query: str = ""):
    response = get(invoke, function, route, ids, query)
    assert response["statusCode"] == 200, (route, ids, response)
    return response_json(response)


def first_ids(route: str) -> dict[str, int]:
    """Ids for a route's placeholders: rows the `stored` fixture made."""
    return {name: 1 for name in re.findall(r"\{(\w+)\}", route)}


@pytest.fixture
def stored(invoke, db, configure):
    """Rows behind every paged route: four conversations of three messages each (each body names its
    conversation and order), their events, three suppressions, two webhook endpoints with deliveries.
    One pooled connection, so a connection left out of step would serve the very next request."""
    configure(DATABASE_POOL_SIZE=1, WEBHOOK_ALLOW_PRIVATE_TARGETS="true")
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
    for number in ("+14155550101", "+14155550102", "+14155550103"):
        response = invoke("ConversationsFunction", sample_event("conversations-suppress", payload={"address": number}))
        assert response["statusCode"] == 201, response
    endpoints = []
    for index in range(2):
        created = {"url": f"http://127.0.0.1:9/hook-{index}", "events": ["message.received"]}
        response = invoke("WebhookEndpointsFunction", sample_event("webhook_endpoints-create", payload=created))
        assert response["statusCode"] == 201, response
        endpoints.append(response_json(response)["id"])
    # Deliveries as the dispatcher records them: the first endpoint three events, the second two.
    events = [row["id"] for row in db.rows("SELECT id FROM message_events ORDER BY id LIMIT 5")]
    deliveries = {endpoints[0]: events[:3], endpoints[1]: events[3:]}
    for endpoint_id, event_ids in deliveries.items():
        for event_id in event_ids:
            db.execute(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, payload, retry_until)"
                " VALUES (:event_id, :endpoint_id, '{}', now() + interval '1 day')",
                event_id=event_id,
                endpoint_id=endpoint_id,
            )
    return {
        "conversations": [row["id"] for row in db.rows("SELECT id FROM conversations ORDER BY id")],
        "messages": [row["id"] for row in db.rows("SELECT id FROM messages ORDER BY id")],
        "endpoints": endpoints,
        "deliveries": deliveries,
    }


def every_read(invoke, stored) -> dict[str, object]:
    """What every read route answers now, for every stored id, keyed by route and id."""
    conversations, endpoints = "ConversationsFunction", "WebhookEndpointsFunction"
    answers: dict[str, object] = {
        "conversations": read(invoke, conversations, "/api/conversations"),
        "find": read(invoke, conversations, "/api/messages"),
        "suppressions": read(invoke, conversations, "/api/suppressions"),
        "endpoints": read(invoke, endpoints, "/api/webhook-endpoints"),
    }
    for conversation_id in stored["conversations"]:
        ids = {"conversation_id": conversation_id}
        answers[f"conversation {conversation_id}"] = read(
            invoke, conversations, "/api/conversations/{conversation_id}", ids
        )
        answers[f"messages {conversation_id}"] = read(
            invoke, conversations, "/api/conversations/{conversation_id}/messages", ids
        )
    for message_id in stored["messages"]:
        ids = {"message_id": message_id}
        answers[f"message {message_id}"] = read(invoke, conversations, "/api/messages/{message_id}", ids)
        answers[f"events {message_id}"] = read(invoke, conversations, "/api/messages/{message_id}/events", ids)
    for endpoint_id in stored["endpoints"]:
        ids = {"endpoint_id": endpoint_id}
        answers[f"endpoint {endpoint_id}"] = read(invoke, endpoints, "/api/webhook-endpoints/{endpoint_id}", ids)
        answers[f"deliveries {endpoint_id}"] = read(
            invoke, endpoints, "/api/webhook-endpoints/{endpoint_id}/deliveries", ids
        )
    return answers


def assert_the_right_rows(answers, stored, db) -> None:
    """The expected answers are the right rows, not just stable ones."""
    for conversation_id in stored["conversations"]:
        assert answers[f"conversation {conversation_id}"]["id"] == conversation_id
        bodies = [item["body"] for item in answers[f"messages {conversation_id}"]["items"]]
        partner = bodies[0].split()[1]
        assert bodies == [f"partner {partner} message {order}" for order in range(3)]
    assert [item["id"] for item in answers["find"]["items"]] == stored["messages"]
    for message_id in stored["messages"]:
        assert answers[f"message {message_id}"]["id"] == message_id
        events = answers[f"events {message_id}"]["items"]
        assert [event["type"] for event in events] == ["message.received"], events
        assert [event["id"] for event in events] == [
            row["id"] for row in db.rows("SELECT id FROM message_events WHERE message_id = :id", id=message_id)
        ]
    assert [item["address"] for item in answers["suppressions"]["items"]] == [
        "+14155550103",
        "+14155550102",
        "+14155550101",
    ]
    assert [item["id"] for item in answers["endpoints"]["items"]] == stored["endpoints"]
    for endpoint_id, event_ids in stored["deliveries"].items():
        assert answers[f"endpoint {endpoint_id}"]["id"] == endpoint_id
        deliveries = answers[f"deliveries {endpoint_id}"]["items"]
        assert [item["event_id"] for item in deliveries] == event_ids[::-1]  # newest first


def test_every_route_that_takes_a_cursor_is_covered(invoke, application):
    accepting = set()
    for route in application.routes:
        if route.method != "GET":
            continue
        response = get(invoke, route.function, route.path, first_ids(route.path), f"cursor={CRAFTED_CURSORS['number']}")
        message = response_json(response)["error"]["message"] if response["statusCode"] >= 400 else ""
        if not message.startswith("unknown query parameter"):
            accepting.add((route.function, route.path))
    assert accepting == PAGED_ROUTES


def test_crafted_cursors_are_422_and_every_later_read_returns_its_own_rows(invoke, db, stored):
    expected = every_read(invoke, stored)
    assert_the_right_rows(expected, stored, db)

    # One row of each kind, other than the first, which the crafted requests name.
    sample = {kind: stored[kind][1:2] for kind in ("conversations", "messages", "endpoints")}
    refused = {}
    for name, cursor in CRAFTED_CURSORS.items():
        for function, route in sorted(PAGED_ROUTES):
            try:
                response = get(invoke, function, route, first_ids(route), f"cursor={cursor}")
                refused[(name, route)] = (response["statusCode"], response_json(response))
            except Exception as error:  # an unhandled error: Lambda would answer 500
                refused[(name, route)] = (500, repr(error))
            # The very next requests, one on every read route, answer with exactly their own rows (a
            # connection out of step would hand each request the previous one's replies, from then on).
            answers = every_read(invoke, sample)
            assert answers == {key: expected[key] for key in answers}, (name, route)
        assert every_read(invoke, stored) == expected, name

    for (name, route), (status, document) in refused.items():
        assert status == 422, (name, route, document)
        assert document["error"]["code"] == "invalid_input"
        assert document["error"]["field"] == "cursor", (name, route, document)


def test_cursors_the_api_returns_still_page_through_every_row(invoke, db, stored):
    for function, route in sorted(PAGED_ROUTES):
        whole = read(invoke, function, route, first_ids(route), "limit=200")
        assert whole["items"] and whole["next_cursor"] is None, route
        seen, query = [], "limit=1"
        while True:
            page = read(invoke, function, route, first_ids(route), query)
            seen.extend(page["items"])
            if page["next_cursor"] is None:
                break
            query = f"limit=1&cursor={page['next_cursor']}"
        assert seen == whole["items"], route


@pytest.mark.parametrize(
    "position",
    [
        ["0001-01-01T00:00:00+00:00", 1],
        ["9999-12-31T23:59:59.999999+00:00", BIGINT_MAX],
        ["0001-01-01T00:00:00-14:00", BIGINT_MAX],
    ],
)
def test_extreme_but_valid_positions_are_accepted(invoke, db, stored, position):
    for function, route in sorted(PAGED_ROUTES):
        page = read(invoke, function, route, first_ids(route), f"cursor={cursor_of(position)}")
        assert page["next_cursor"] is None or page["items"]


POINT_OID = 600  # a type the service never reads, so only this test's statement meets the reader below


def test_an_error_mid_statement_that_is_not_the_databases_discards_the_connection(one_connection_engine):
    """A reader of result values that fails on the first of 500 rows: the driver stops reading there, and
    the other 499 rows, the statement's completion and its ReadyForQuery are left unread on the socket.
    Reused, the connection would hand them to the next statement as its answer. The engine must close it."""
    calls: list[str] = []

    def exploding_reader(value: str) -> object:
        calls.append(value)
        raise RuntimeError("this result value cannot be read")

    with one_connection_engine.connect() as connection:
        first_backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        connection.connection.dbapi_connection.register_in_adapter(POINT_OID, exploding_reader)

    with pytest.raises(RuntimeError, match="cannot be read"), one_connection_engine.begin() as connection:
        connection.execute(text("SELECT point(n, n) FROM generate_series(1, 500) AS n"))
    assert len(calls) == 1  # the error came mid-reply: 499 rows were still unread

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
