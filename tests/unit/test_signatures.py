import json
import shlex
import time
from pathlib import Path

import pytest

from infra.sign_webhook import main, sign
from messaging.errors import Unauthorized
from messaging.http_errors import status_of
from messaging.signatures import WebhookVerifier, secrets_from_secret_string, signature, signature_headers

ROOT = Path(__file__).resolve().parents[2]

BODY = b'{"from": "+18045551234"}'
NOW = 1_730_469_600


def verifier(*secrets, tolerance=300):
    return WebhookVerifier(tuple(secrets), tolerance)


def test_a_valid_signature_passes():
    verifier("current").verify(signature_headers("current", BODY, NOW), BODY, now=NOW + 10)


def test_header_names_are_case_insensitive():
    headers = {name.lower(): value for name, value in signature_headers("current", BODY, NOW).items()}
    verifier("current").verify(headers, BODY, now=NOW)


def test_the_previous_secret_still_verifies_during_rotation():
    verifier("new", "old").verify(signature_headers("old", BODY, NOW), BODY, now=NOW)


def test_several_offered_signatures_one_matching_passes():
    headers = {"X-Signature-Timestamp": str(NOW), "X-Signature": f"v1={'0' * 64},v1={signature('k', NOW, BODY)}"}
    verifier("k").verify(headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("headers", "field", "message"),
    [
        ({}, "X-Signature", "not signed"),
        ({"X-Signature-Timestamp": str(NOW)}, "X-Signature", "not signed"),
        ({"X-Signature-Timestamp": "yesterday", "X-Signature": "v1=00"}, "X-Signature-Timestamp", "Unix seconds"),
        ({"X-Signature-Timestamp": str(NOW), "X-Signature": "v1=" + "0" * 64}, "X-Signature", "does not match"),
        ({"X-Signature-Timestamp": str(NOW), "X-Signature": "sha1=abc"}, "X-Signature", "malformed"),
    ],
)
def test_missing_or_malformed_signatures_are_refused(headers, field, message):
    with pytest.raises(Unauthorized, match=message) as refused:
        verifier("k").verify(headers, BODY, now=NOW)
    assert refused.value.field == field
    assert status_of(refused.value) == 401


def test_a_wrong_secret_is_refused():
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(signature_headers("guess", BODY, NOW), BODY, now=NOW)


def test_a_tampered_body_is_refused():
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(signature_headers("k", BODY, NOW), BODY.replace(b"+1804", b"+1999"), now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 10**6])
def test_old_and_future_timestamps_are_refused(skew):
    with pytest.raises(Unauthorized, match="expired"):
        verifier("k").verify(signature_headers("k", BODY, NOW), BODY, now=NOW - skew)


def test_a_signature_cannot_be_moved_to_another_timestamp():
    headers = signature_headers("k", BODY, NOW)
    headers["X-Signature-Timestamp"] = str(NOW + 1)
    with pytest.raises(Unauthorized, match="does not match"):
        verifier("k").verify(headers, BODY, now=NOW)


def test_signature_headers_default_to_now():
    headers = signature_headers("k", BODY)
    assert abs(int(headers["X-Signature-Timestamp"]) - time.time()) < 5
    verifier("k").verify(headers, BODY)


@pytest.mark.parametrize("stamp", ["\u00b2", "\u0661\u0667\u0663\u0660", "+1730469600", "-5", "1730469600.5", "9" * 13])
def test_timestamps_must_be_ascii_unix_seconds(stamp):
    headers = {"X-Signature-Timestamp": stamp, "X-Signature": f"v1={signature('k', stamp, BODY)}"}
    with pytest.raises(Unauthorized, match="Unix seconds"):
        verifier("k").verify(headers, BODY, now=NOW)


def test_upper_case_hex_and_spaces_around_values_are_accepted():
    headers = {"X-Signature-Timestamp": f" {NOW} ", "X-Signature": f" v1={signature('k', NOW, BODY).upper()} "}
    verifier("k").verify(headers, BODY, now=NOW)


def test_more_than_four_offered_signatures_are_refused():
    wrong = ",".join(f"v1={index:064x}" for index in range(4))
    headers = {"X-Signature-Timestamp": str(NOW), "X-Signature": f"{wrong},v1={signature('k', NOW, BODY)}"}
    with pytest.raises(Unauthorized, match="more than 4"):
        verifier("k").verify(headers, BODY, now=NOW)


def test_the_tolerance_window_is_inclusive_and_configurable():
    headers = signature_headers("k", BODY, NOW)
    verifier("k", tolerance=60).verify(headers, BODY, now=NOW + 60)
    verifier("k", tolerance=60).verify(headers, BODY, now=NOW - 60)
    with pytest.raises(Unauthorized, match="expired"):
        verifier("k", tolerance=60).verify(headers, BODY, now=NOW + 61)


def test_an_empty_secret_list_accepts_nothing():
    with pytest.raises(Unauthorized):
        verifier().verify(signature_headers("", BODY, NOW), BODY, now=NOW)


@pytest.mark.parametrize(
    ("value", "secrets"),
    [
        ('{"current": "new", "previous": "old"}', ["new", "old"]),
        ('{"current": "new"}', ["new"]),
        ('{"current": "new", "previous": ""}', ["new"]),
        ('{"previous": "old"}', ["old"]),
        ("plain-secret", ["plain-secret"]),
        ('"json-string"', ["json-string"]),
        ('{"current": ""}', []),
        ("[1, 2]", []),
        ("  ", []),
    ],
)
def test_secrets_manager_values(value, secrets):
    assert secrets_from_secret_string(value) == secrets


def test_sign_matches_the_verifier():
    body = json.dumps({"from": "+18045551234"}).encode()
    verifier("k").verify(sign(body, "k", NOW), body, now=NOW)


@pytest.mark.parametrize("source", ["event", "raw"])
def test_the_cli_prints_a_curl_command_that_carries_a_valid_signature(tmp_path, capsys, source):
    event_path = ROOT / "events" / "inbound_email-email.json"
    if source == "event":
        path, route = event_path, "/api/webhooks/email"
        body = json.loads(event_path.read_text())["body"].encode()
    else:
        body = json.dumps({"from": "+18045551234", "to": "+12016661234"}).encode()
        path, route = tmp_path / "body.json", "/api/webhooks/sms"
        path.write_bytes(body + b"\n")
    assert main([str(path), "--secret", "k", "--timestamp", str(NOW), "--url", "http://localhost:9"]) == 0
    command = shlex.split(capsys.readouterr().out)
    assert command[:5] == ["curl", "-s", "-X", "POST", f"http://localhost:9{route}"]
    headers = dict(command[index + 1].split(": ", 1) for index, part in enumerate(command) if part == "-H")
    assert headers["Content-Type"] == "application/json"
    sent = command[command.index("--data-binary") + 1].encode()
    assert sent == body
    verifier("k").verify(headers, sent, now=NOW)


def test_the_cli_can_print_only_the_headers(capsys):
    event_path = ROOT / "events" / "inbound_sms-sms.json"
    assert main([str(event_path), "--secret", "k", "--timestamp", str(NOW), "--headers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    headers = dict(line.split(": ", 1) for line in lines)
    assert set(headers) == {"X-Signature-Timestamp", "X-Signature"}
    verifier("k").verify(headers, json.loads(event_path.read_text())["body"].encode(), now=NOW)


def test_the_cli_reads_the_secret_from_the_environment(monkeypatch, capsys, tmp_path):
    path = tmp_path / "body.json"
    path.write_bytes(b'{"a": 1}')
    monkeypatch.setenv("WEBHOOK_SECRET", "from-env")
    assert main([str(path), "--timestamp", str(NOW), "--headers"]) == 0
    headers = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    verifier("from-env").verify(headers, b'{"a": 1}', now=NOW)
    monkeypatch.delenv("WEBHOOK_SECRET")
    with pytest.raises(SystemExit):
        main([str(path)])


@pytest.mark.parametrize(
    "offered",
    ["{valid},junk", "junk,{valid}", "{valid},", "{valid},v2={zeros}", "{valid}, t=1730469600"],
)
def test_a_valid_signature_beside_a_malformed_element_is_refused_as_ambiguous(offered):
    """API Gateway joins a repeated X-Signature with commas: a junk copy must not be outvoted."""
    value = offered.format(valid=f"v1={signature('k', NOW, BODY)}", zeros="0" * 64)
    headers = {"X-Signature-Timestamp": str(NOW), "X-Signature": value}
    with pytest.raises(Unauthorized, match="ambiguous") as refused:
        verifier("k").verify(headers, BODY, now=NOW)
    assert refused.value.field == "X-Signature"


def test_a_repeated_timestamp_header_is_refused():
    headers = {"X-Signature-Timestamp": f"{NOW},{NOW}", "X-Signature": f"v1={signature('k', NOW, BODY)}"}
    with pytest.raises(Unauthorized, match="Unix seconds"):
        verifier("k").verify(headers, BODY, now=NOW)
