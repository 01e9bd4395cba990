"""Finding things (issue 14): conversation filters, messages across conversations with full-text search,
archiving, exact unread counts and resending failed messages."""

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from infra.local_runner.apigw import http_api_event
from tests.conftest import response_json, sample_body, sample_event

CUSTOMER = "+18045551234"
BUSINESS = "+12016661234"
OTHER = "+14155550100"


def receive_sms(invoke, provider_id, body="hello", sender=CUSTOMER, to=BUSINESS, minute=0, kind="sms"):
    payload = {
        "from": sender,
        "to": to,
        "type": kind,
        "messaging_provider_id": provider_id,
        "body": body,
        "attachments": ["https://example.com/a.jpg"] if kind == "mms" else None,
        "timestamp": f"2024-11-01T14:{minute:02d}:00Z",
    }
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", payload=payload))
    assert response["statusCode"] == 200, response
    return response_json(response)


def receive_email(invoke, provider_id, body, sender="contact@gmail.com", to="user@usehatchapp.com", minute=0):
    payload = {
        "from": sender,
        "to": to,
        "xillio_id": provider_id,
        "body": body,
        "attachments": [],
        "timestamp": f"2024-11-01T14:{minute:02d}:00Z",
    }
    response = invoke("InboundEmailFunction", sample_event("inbound_email-email", payload=payload))
    assert response["statusCode"] == 200, response
    return response_json(response)


def call(invoke, method, path, query=None, body=None, headers=None, function="ConversationsFunction"):
    all_headers = {"content-type": "application/json", **(headers or {})} if body is not None else headers
    event = http_api_event(
        method,
        path,
        query=urlencode(query or {}),
        body=None if body is None else json.dumps(body),
        headers=all_headers,
    )
    return invoke(function, event)


def ok(response, status=200):
    assert response["statusCode"] == status, response
    return response_json(response)


def conversations(invoke, **query):
    return ok(call(invoke, "GET", "/api/conversations", query))


def found(invoke, **query):
    return ok(call(invoke, "GET", "/api/messages", query))


def ids(page):
    return [item["id"] for item in page["items"]]


def send(invoke, name="send_message-sms", headers=None, **changes):
    body = {**sample_body(name), **changes}
    event = sample_event(name, payload=body)
    if headers:
        event["headers"] = {**event["headers"], **headers}
    return invoke("SendMessageFunction", event)


# ------------------------------------------------------------------ conversations: filters


@pytest.fixture
def three_conversations(invoke):
    """1: customer/business over SMS then MMS; 2: other/business SMS only; 3: an email conversation."""
    first = receive_sms(invoke, "c1", sender=CUSTOMER, minute=1)["conversation_id"]
    receive_sms(invoke, "c2", sender=CUSTOMER, minute=2, kind="mms")
    second = receive_sms(invoke, "o1", sender=OTHER, minute=3)["conversation_id"]
    third = receive_email(invoke, "e1", "<p>hi</p>", minute=4)["conversation_id"]
    return first, second, third


@pytest.mark.parametrize(
    "written",
    ["+18045551234", "+1 804 555 1234", "+1 (804) 555-1234", "+1.804.555.1234", " 18045551234"],
)
def test_participant_filter_normalizes_phone_numbers_like_stored_addresses(invoke, three_conversations, written):
    first, _, _ = three_conversations
    assert ids(conversations(invoke, participant=written)) == [first]


@pytest.mark.parametrize(
    "written", ["contact@gmail.com", "Contact@GMAIL.com", "[contact@gmail.com](mailto:contact@gmail.com)"]
)
def test_participant_filter_normalizes_emails_like_stored_addresses(invoke, three_conversations, written):
    _, _, third = three_conversations
    assert ids(conversations(invoke, participant=written)) == [third]


def test_participant_filter_matches_either_side_of_the_pair_newest_first(invoke, three_conversations):
    first, second, _ = three_conversations
    page = conversations(invoke, participant=BUSINESS, limit=1)
    assert ids(page) == [second]
    assert ids(conversations(invoke, participant=BUSINESS, limit=1, cursor=page["next_cursor"])) == [first]


def test_participant_filter_accepts_a_possible_number_a_send_would_refuse(invoke):
    unassigned = "+15551234567"  # possible (a webhook stores it), not assigned (a send refuses it)
    conversation = receive_sms(invoke, "u1", sender=unassigned)["conversation_id"]
    assert ids(conversations(invoke, participant="+1 555 123 4567")) == [conversation]


@pytest.mark.parametrize("written", ["8045551234", "+1804555ABCD", "not an address", "a@b@c", "+1 804 555 1234 ext 5"])
def test_an_unreadable_participant_is_422_naming_it(invoke, three_conversations, written):
    response = call(invoke, "GET", "/api/conversations", {"participant": written})
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == "participant"


def test_channel_filter_matches_conversations_holding_a_message_of_that_type(invoke, three_conversations):
    first, second, third = three_conversations
    assert ids(conversations(invoke, channel="sms")) == [second, first]
    assert ids(conversations(invoke, channel="mms")) == [first]
    assert ids(conversations(invoke, channel="email")) == [third]
    assert ids(conversations(invoke, channel="mms", participant=OTHER)) == []
    assert ids(conversations(invoke, channel="sms", participant=OTHER)) == [second]


def test_channel_is_kept_when_an_outbound_message_adds_one(invoke, queues):
    conversation = response_json(send(invoke, "send_message-sms"))["conversation_id"]
    assert ids(conversations(invoke, channel="mms")) == []
    send(invoke, "send_message-mms")
    assert ids(conversations(invoke, channel="mms")) == [conversation]


def test_archive_hides_and_unarchive_shows_and_filters_combine(invoke, three_conversations):
    first, second, third = three_conversations
    archived = ok(call(invoke, "PATCH", f"/api/conversations/{first}", body={"archived": True}))
    assert archived["archived"] is True
    assert ids(conversations(invoke, archived="false")) == [third, second]
    assert ids(conversations(invoke, archived="true")) == [first]
    assert ids(conversations(invoke)) == [third, second, first]
    assert ids(conversations(invoke, archived="true", channel="mms")) == [first]
    assert ids(conversations(invoke, archived="false", channel="sms")) == [second]
    assert ids(conversations(invoke, archived="true", participant=BUSINESS)) == [first]
    assert ids(conversations(invoke, archived="false", participant=BUSINESS, channel="sms")) == [second]
    assert ok(call(invoke, "PATCH", f"/api/conversations/{first}", body={"archived": False}))["archived"] is False
    assert ids(conversations(invoke, archived="true")) == []


def test_a_new_inbound_message_unarchives_but_an_outbound_one_does_not(invoke, queues):
    conversation = receive_sms(invoke, "a1", sender="+18045551234", to="+12016661234")["conversation_id"]
    ok(call(invoke, "PATCH", f"/api/conversations/{conversation}", body={"archived": True}))
    send(invoke, "send_message-sms")  # the business replies: still archived
    assert ok(call(invoke, "GET", f"/api/conversations/{conversation}"))["archived"] is True
    receive_sms(invoke, "a2", minute=5)
    assert ok(call(invoke, "GET", f"/api/conversations/{conversation}"))["archived"] is False


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"archived": "true"}, 422, "archived"),
        ({"archived": 1}, 422, "archived"),
        ({}, 422, "archived"),
        ({"archived": True, "muted": True}, 422, "muted"),
    ],
)
def test_invalid_archive_requests_are_refused_and_change_nothing(invoke, three_conversations, body, status, field):
    response = call(invoke, "PATCH", "/api/conversations/1", body=body)
    assert response["statusCode"] == status
    assert response_json(response)["error"]["field"] == field
    assert ok(call(invoke, "GET", "/api/conversations/1"))["archived"] is False


def test_archiving_an_unknown_conversation_is_404(invoke, db):
    assert call(invoke, "PATCH", "/api/conversations/99", body={"archived": True})["statusCode"] == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [({"channel": "fax"}, "channel"), ({"archived": "maybe"}, "archived"), ({"direction": "inbound"}, "direction")],
)
def test_invalid_or_unknown_conversation_filters_are_422_naming_them(invoke, db, query, field):
    response = call(invoke, "GET", "/api/conversations", query)
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == field


# ------------------------------------------------------------------ messages across conversations


@pytest.fixture
def mixed_messages(invoke, queues, configure):
    """Inbound SMS/MMS/email and outbound sent/failed messages at known minutes."""
    receive_sms(invoke, "m1", body="Where is invoice 7781?", minute=1)
    receive_sms(invoke, "m2", body="photo attached", minute=2, kind="mms")
    receive_email(
        invoke,
        "m3",
        '<html><head><style>.invoice{color:red}</style></head><body><p class="invoice">Your <b>receipt</b> '
        'for order 42</p><a href="https://example.com/table">click</a><script>var hidden = 1;</script></body></html>',
        minute=3,
    )
    send(invoke, "send_message-sms", body="Invoice 7781 is paid", timestamp="2024-11-01T14:04:00Z")
    configure(MOCK_SMS_FAULTS="400")
    send(invoke, "send_message-sms", body="This one fails", timestamp="2024-11-01T14:05:00Z")
    configure(MOCK_SMS_FAULTS=None)
    return {"sms_in": 1, "mms_in": 2, "email_in": 3, "sent": 4, "failed": 5}


def test_messages_across_conversations_are_chronological_with_keyset_pages(invoke, mixed_messages):
    page = found(invoke, limit=2)
    assert ids(page) == [1, 2]
    page = found(invoke, limit=2, cursor=page["next_cursor"])
    assert ids(page) == [3, 4]
    page = found(invoke, limit=2, cursor=page["next_cursor"])
    assert ids(page) == [5]
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, [5]),
        ({"status": "received"}, [1, 2, 3]),
        ({"status": "sent"}, [4]),
        ({"direction": "inbound"}, [1, 2, 3]),
        ({"direction": "outbound"}, [4, 5]),
        ({"type": "sms"}, [1, 4, 5]),
        ({"type": "mms"}, [2]),
        ({"type": "email"}, [3]),
        ({"direction": "outbound", "type": "sms"}, [4, 5]),
        ({"direction": "inbound", "type": "sms"}, [1]),
        ({"status": "received", "type": "mms"}, [2]),
        ({"status": "failed", "direction": "inbound"}, []),
        ({"conversation_id": "1"}, [1, 2, 4, 5]),
        ({"conversation_id": "99"}, []),
        ({"conversation_id": "1", "direction": "outbound"}, [4, 5]),
        ({"since": "2024-11-01T14:02:00Z"}, [2, 3, 4, 5]),
        ({"until": "2024-11-01T14:02:00Z"}, [1]),
        ({"since": "2024-11-01T14:02:00Z", "until": "2024-11-01T14:04:00Z"}, [2, 3]),
        ({"since": "2024-11-01T15:02:00+01:00", "until": "2024-11-01T14:04:00.000Z"}, [2, 3]),
        ({"since": "2024-11-01T14:02:00Z", "type": "sms"}, [4, 5]),
        ({"until": "2024-11-01T14:05:00Z", "direction": "outbound"}, [4]),
        ({"q": "invoice"}, [1, 4]),
        ({"q": "INVOICE 7781"}, [1, 4]),
        ({"q": '"invoice 7781"'}, [1, 4]),
        ({"q": '"7781 invoice"'}, []),
        ({"q": "invoice -paid"}, [1]),
        ({"q": "paid or photo"}, [2, 4]),
        ({"q": "invoice", "direction": "outbound"}, [4]),
        ({"q": "invoice", "status": "received"}, [1]),
        ({"q": "invoice", "conversation_id": "1", "since": "2024-11-01T14:02:00Z"}, [4]),
        ({"q": "invoice", "type": "email"}, []),
        ({"q": "invoic"}, []),  # whole words only: no prefix matching
        ({"q": "receipt"}, [3]),  # a word inside tags' text
        ({"q": "click"}, [3]),
        ({"q": "order 42"}, [3]),
        ({"q": "html"}, []),  # a tag name
        ({"q": "href"}, []),  # an attribute name
        ({"q": "table"}, []),  # an attribute value
        ({"q": "hidden"}, []),  # script contents
        ({"q": "color"}, []),  # style contents
        ({"q": "!!!"}, []),
    ],
)
def test_message_filters_and_their_combinations(invoke, mixed_messages, query, expected):
    assert ids(found(invoke, **query)) == expected


def test_search_pages_are_stable_under_concurrent_inserts(invoke, mixed_messages, queues):
    page = found(invoke, q="invoice", limit=1)
    assert ids(page) == [1]
    receive_sms(invoke, "late", body="invoice early", minute=0)  # sorts before the cursor: not repeated
    receive_sms(invoke, "later", body="invoice later", minute=30)
    rest = found(invoke, q="invoice", limit=10, cursor=page["next_cursor"])
    assert ids(rest) == [4, 7]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"type": "fax"}, "type"),
        ({"since": "2024-11-01"}, "since"),
        ({"since": "2024-11-01T14:00:00"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2024-11-02T00:00:00Z", "until": "2024-11-01T00:00:00Z"}, "until"),
        ({"conversation_id": "0"}, "conversation_id"),
        ({"conversation_id": "x"}, "conversation_id"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "nul\x00byte"}, "q"),
        ({"participant": CUSTOMER}, "participant"),
        ({"page": "2"}, "page"),
    ],
)
def test_invalid_or_unknown_message_filters_are_422_naming_them(invoke, db, query, field):
    response = call(invoke, "GET", "/api/messages", query)
    assert response["statusCode"] == 422, response
    assert response_json(response)["error"]["field"] == field


# ------------------------------------------------------------------ unread counts


def unread(invoke, conversation_id):
    return ok(call(invoke, "GET", f"/api/conversations/{conversation_id}"))["unread_count"]


def test_inbound_messages_are_unread_until_read_and_outbound_never(invoke, queues):
    conversation = receive_sms(invoke, "u1", minute=1)["conversation_id"]
    receive_sms(invoke, "u2", minute=2)
    send(invoke, "send_message-sms", timestamp="2024-11-01T14:03:00Z")
    assert unread(invoke, conversation) == 2
    assert conversations(invoke)["items"][0]["unread_count"] == 2
    marked = ok(call(invoke, "POST", f"/api/conversations/{conversation}/read", body={}))
    assert marked["unread_count"] == 0
    receive_sms(invoke, "u3", minute=4)
    assert unread(invoke, conversation) == 1


def test_read_through_a_message_counts_the_inbound_messages_after_it(invoke, queues):
    conversation = receive_sms(invoke, "r1", minute=1)["conversation_id"]
    receive_sms(invoke, "r2", minute=2)
    send(invoke, "send_message-sms", timestamp="2024-11-01T14:03:00Z")  # message 3
    receive_sms(invoke, "r4", minute=4)
    through_first = ok(call(invoke, "POST", f"/api/conversations/{conversation}/read", body={"through_message_id": 1}))
    assert through_first["unread_count"] == 2
    assert (
        ok(call(invoke, "POST", f"/api/conversations/{conversation}/read", body={"through_message_id": 3}))[
            "unread_count"
        ]
        == 1
    )
    # The horizon never moves back: a stale client reading through message 1 un-reads nothing.
    assert (
        ok(call(invoke, "POST", f"/api/conversations/{conversation}/read", body={"through_message_id": 1}))[
            "unread_count"
        ]
        == 1
    )
    receive_sms(invoke, "r0", minute=0)  # arrives late, before the horizon in list order: already read
    assert unread(invoke, conversation) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"through_message_id": 3}, 422, "through_message_id"),  # another conversation's message
        ({"through_message_id": 999}, 422, "through_message_id"),
        ({"through_message_id": "1"}, 422, "through_message_id"),
        ({"through_message_id": 0}, 422, "through_message_id"),
        ({"everything": True}, 422, "everything"),
    ],
)
def test_invalid_read_requests_change_nothing(invoke, db, body, status, field):
    receive_sms(invoke, "x1", minute=1)
    receive_sms(invoke, "x2", minute=2)
    receive_sms(invoke, "y1", sender=OTHER, minute=3)
    response = call(invoke, "POST", "/api/conversations/1/read", body=body)
    assert response["statusCode"] == status
    assert response_json(response)["error"]["field"] == field
    assert unread(invoke, 1) == 2


def test_reading_an_unknown_conversation_is_404(invoke, db):
    assert call(invoke, "POST", "/api/conversations/5/read", body={})["statusCode"] == 404
    assert call(invoke, "POST", "/api/conversations/5/read", body={"through_message_id": 1})["statusCode"] == 404


def test_unread_counts_are_exact_under_concurrent_inbound_messages_and_reads(invoke, concurrent_invoke, db):
    """Concurrent requests run in the runner's execution environments (worker processes), as in Lambda."""
    conversation = receive_sms(invoke, "seed", minute=0)["conversation_id"]

    def inbound(index):
        receive_sms(concurrent_invoke, f"burst-{index}", minute=1 + index % 50)

    def read(index):
        body = {} if index % 2 else {"through_message_id": 1}
        ok(call(concurrent_invoke, "POST", f"/api/conversations/{conversation}/read", body=body))

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(inbound, index) for index in range(60)]
        futures += [pool.submit(read, index) for index in range(10)]
        for future in futures:
            future.result()
    stored = db.rows("SELECT read_through_at, read_through_id, unread_count FROM conversations")[0]
    exact = db.scalar(
        "SELECT count(*) FROM messages WHERE conversation_id = :c AND direction = 'inbound' "
        "AND (message_timestamp, id) > (:at, :id)",
        c=conversation,
        at=stored["read_through_at"],
        id=stored["read_through_id"],
    )
    assert stored["unread_count"] == exact
    ok(call(invoke, "POST", f"/api/conversations/{conversation}/read", body={}))
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda index: receive_sms(concurrent_invoke, f"after-{index}", minute=59), range(40)))
    assert unread(invoke, conversation) == 40


# ------------------------------------------------------------------ resend


def resend(invoke, message_id, headers=None, body=None):
    return call(
        invoke,
        "POST",
        f"/api/messages/{message_id}/resend",
        body={} if body is None else body,
        headers=headers,
        function="SendMessageFunction",
    )


@pytest.mark.parametrize("name", ["send_message-sms", "send_message-mms", "send_message-email"])
def test_resending_a_failed_message_sends_its_content_as_a_new_message(invoke, db, queues, configure, name):
    configure(MOCK_SMS_FAULTS="400", MOCK_EMAIL_FAULTS="400")
    failed = response_json(send(invoke, name))
    assert failed["status"] == "failed"
    configure(MOCK_SMS_FAULTS=None, MOCK_EMAIL_FAULTS=None)
    response = resend(invoke, failed["id"])
    again = ok(response, 202)
    assert response["headers"]["Location"] == f"/api/messages/{again['id']}"
    assert again["id"] != failed["id"]
    assert again["resent_from"] == failed["id"]
    assert again["status"] == "sent"
    for field in ("conversation_id", "type", "from", "to", "body", "attachments"):
        assert again[field] == failed[field]
    assert ok(call(invoke, "GET", f"/api/messages/{failed['id']}"))["status"] == "failed"
    assert ok(call(invoke, "GET", f"/api/messages/{again['id']}"))["resent_from"] == failed["id"]
    assert db.scalar("SELECT count(*) FROM mock_provider_deliveries") == 1


def test_resend_honours_idempotency_keys(invoke, db, queues, configure):
    configure(MOCK_SMS_FAULTS="400,400")
    first_failed = response_json(send(invoke))["id"]
    second_failed = response_json(send(invoke))["id"]
    configure(MOCK_SMS_FAULTS=None)
    first = resend(invoke, first_failed, headers={"idempotency-key": "again-1"})
    replay = resend(invoke, first_failed, headers={"idempotency-key": "again-1"})
    assert ok(replay, 202) == ok(first, 202)
    assert replay["headers"]["Idempotent-Replayed"] == "true"
    other = resend(invoke, second_failed, headers={"idempotency-key": "again-1"})
    assert other["statusCode"] == 422
    assert response_json(other)["error"]["field"] == "Idempotency-Key"
    assert db.scalar("SELECT count(*) FROM messages WHERE resent_from IS NOT NULL") == 1


def test_only_failed_outbound_messages_can_be_resent(invoke, db, queues):
    sent = response_json(send(invoke))["id"]
    inbound = receive_sms(invoke, "in-1")["id"]
    conflict = resend(invoke, sent)
    assert conflict["statusCode"] == 409
    assert response_json(conflict)["error"]["field"] == "id"
    refused = resend(invoke, inbound)
    assert refused["statusCode"] == 422
    assert response_json(refused)["error"]["field"] == "id"
    assert resend(invoke, 999)["statusCode"] == 404
    unknown_field = resend(invoke, sent, body={"body": "changed"})
    assert unknown_field["statusCode"] == 422
    assert db.scalar("SELECT count(*) FROM messages") == 2


# ------------------------------------------------------------------ migration of stored rows


def test_the_search_vector_backfill_reduces_stored_html_like_new_writes(db):
    from messaging.search_text import searchable_text

    assert searchable_text("email", '<p title="secret">Visible <i>words</i></p>') == "Visible words"
    assert searchable_text("sms", "<b>kept as written</b>") == "<b>kept as written</b>"


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("PATCH", "/api/conversations/1", "ConversationsFunction"),
        ("POST", "/api/conversations/1/read", "ConversationsFunction"),
        ("POST", "/api/messages/1/resend", "SendMessageFunction"),
    ],
)
def test_unknown_query_parameters_on_the_new_write_routes_are_422(invoke, db, method, path, function):
    body = {"archived": True} if method == "PATCH" else {}
    event = http_api_event(
        method, path, query="force=1", body=json.dumps(body), headers={"content-type": "application/json"}
    )
    response = invoke(function, event)
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["field"] == "force"


def test_openapi_documents_every_new_parameter():
    from infra.local_runner import openapi, template

    paths = openapi.combined_openapi(template.load())["paths"]

    def names(path, method):
        return {parameter["name"] for parameter in paths[path][method].get("parameters", [])}

    assert {"participant", "channel", "archived", "limit", "cursor"} <= names("/api/conversations", "get")
    expected = {"conversation_id", "status", "direction", "type", "since", "until", "q", "limit", "cursor"}
    assert expected <= names("/api/messages", "get")
    assert "requestBody" in paths["/api/conversations/{conversation_id}"]["patch"]
    assert "requestBody" in paths["/api/conversations/{conversation_id}/read"]["post"]
    assert "idempotency-key" in names("/api/messages/{message_id}/resend", "post")
