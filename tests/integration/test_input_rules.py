"""Input rules of the HTTP contract (issue 9, items 6-10): webhook signatures fail closed, what a field may
hold (phones, emails, timestamps, `type` on email sends), one Content-Type rule, errors that name the field,
and unknown query parameters refused on every route of every function."""

import json
import re
import time

import pytest

from infra.local_runner.apigw import http_api_event
from infra.sign_webhook import sign
from tests.conftest import response_json, sample_body, sample_event

SMS = sample_body("inbound_sms-sms")
EMAIL = sample_body("inbound_email-email")
SEND_SMS = sample_body("send_message-sms")
SEND_EMAIL = sample_body("send_message-email")
FUNCTION_OF_SAMPLE = {
    "inbound_sms-sms": "InboundSmsFunction",
    "inbound_email-email": "InboundEmailFunction",
    "send_message-sms": "SendMessageFunction",
    "send_message-email": "SendMessageFunction",
    "inbound_sms-status": "InboundSmsFunction",
    "inbound_email-events": "InboundEmailFunction",
    "conversations-archive": "ConversationsFunction",
    "conversations-suppress": "ConversationsFunction",
}


def post(invoke, name, body, headers=None):
    event = sample_event(name, body)
    if headers is not None:
        event["headers"] = headers
    return invoke(FUNCTION_OF_SAMPLE[name], event)


def error_of(response, status):
    assert response["statusCode"] == status, response
    document = response_json(response)
    assert set(document) == {"error"} and set(document["error"]) == {"code", "message", "field"}
    return document["error"]


# Item 6: fail closed.


@pytest.mark.parametrize("listed", [" , ", ",", " "])
def test_a_secret_list_that_names_no_secret_refuses_every_webhook(invoke, db, configure, listed):
    configure(SMS_WEBHOOK_SECRETS=listed, EMAIL_WEBHOOK_SECRETS=listed)
    for name in ("inbound_sms-sms", "inbound_email-email"):
        response = post(invoke, name, SMS if name == "inbound_sms-sms" else EMAIL)
        assert error_of(response, 503)["code"] == "service_unavailable"
        assert response["headers"]["Retry-After"]
    assert db.counts()["messages"] == 0


@pytest.mark.parametrize("order", ["valid-then-junk", "junk-then-valid"])
def test_two_signature_headers_are_refused_as_ambiguous(invoke, db, configure, order):
    """API Gateway joins a repeated header with commas; the runner does the same (see test_hostile_input)."""
    configure(SMS_WEBHOOK_SECRETS="sms-secret")
    body = json.dumps(SMS)
    signed = sign(body.encode(), "sms-secret")
    values = [signed["X-Signature"], "junk"]
    if order == "junk-then-valid":
        values.reverse()
    headers = {
        "content-type": "application/json",
        "x-signature-timestamp": signed["X-Signature-Timestamp"],
        "x-signature": ",".join(values),
    }
    error = error_of(post(invoke, "inbound_sms-sms", SMS, headers), 401)
    assert error["field"] == "X-Signature" and "ambiguous" in error["message"]
    assert db.counts()["messages"] == 0
    headers["x-signature"] = signed["X-Signature"]
    assert post(invoke, "inbound_sms-sms", SMS, headers)["statusCode"] == 200


def test_one_header_name_in_two_cases_is_joined_not_decided_by_the_last(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="sms-secret")
    signed = sign(json.dumps(SMS).encode(), "sms-secret")
    headers = {
        "content-type": "application/json",
        "x-signature-timestamp": signed["X-Signature-Timestamp"],
        "X-Signature": "junk",
        "x-signature": signed["X-Signature"],
    }
    assert error_of(post(invoke, "inbound_sms-sms", SMS, headers), 401)["field"] == "X-Signature"


# Item 7: "type": "email" on email sends.


def test_an_email_send_may_say_its_type_is_email(invoke, db, queues):
    response = post(invoke, "send_message-email", {**SEND_EMAIL, "type": "email"})
    assert response["statusCode"] == 202, response["body"]
    assert response_json(response)["type"] == "email"


@pytest.mark.parametrize("value", ["sms", "Email", "", None, 1])
def test_any_other_type_on_an_email_send_is_422_naming_type(invoke, db, value):
    error = error_of(post(invoke, "send_message-email", {**SEND_EMAIL, "type": value}), 422)
    assert error["field"] == "type"
    assert db.counts()["messages"] == 0


# Item 8: possible numbers on webhooks, valid numbers on sends.


@pytest.mark.parametrize("number", ["+15551234567", "+19876543210"])
def test_webhooks_accept_possible_numbers_the_library_does_not_list_as_assigned(invoke, db, number):
    response = post(invoke, "inbound_sms-sms", {**SMS, "from": number})
    assert response["statusCode"] == 200, response["body"]
    stored = db.scalar("SELECT from_address FROM messages")
    assert stored == number


def test_a_send_to_an_unassigned_number_is_422_saying_why(invoke, db):
    error = error_of(post(invoke, "send_message-sms", {**SEND_SMS, "to": "+15551234567"}), 422)
    assert error["field"] == "to"
    assert "assigns no such number" in error["message"]


# Item 9: refuse, never silently convert.


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+1201666ABCD", "letters"),
        ("+1 201 666 1234 ext. 55", "extension"),
        ("+12016661234;ext=7", "extension"),
        ("+12016661234,,55", "extension"),
        ("++12016661234", "more than one '+'"),
        ("+1201\u202e6661234", "invisible"),
        ("+1201\u200b6661234", "invisible"),
        ("+1201\u00ad6661234", "invisible"),
    ],
)
def test_phone_numbers_that_would_be_converted_are_refused(invoke, db, number, reason):
    for name, body in (("inbound_sms-sms", SMS), ("send_message-sms", SEND_SMS)):
        error = error_of(post(invoke, name, {**body, "from": number}), 422)
        assert error["field"] == "from" and reason in error["message"]
    assert db.counts()["messages"] == 0


def test_a_phone_number_over_32_characters_as_sent_is_422_naming_the_field(invoke, db):
    formatted = "+1 (415) 201 - 0123  .  .  .  .  ."  # 34 characters: a valid number, formatted at length
    for name, body in (("inbound_sms-sms", SMS), ("send_message-sms", SEND_SMS)):
        error = error_of(post(invoke, name, {**body, "to": formatted}), 422)
        assert error["field"] == "to" and "32 characters" in error["message"], error
        accepted = post(invoke, name, {**body, "to": formatted[:32]})
        assert accepted["statusCode"] in (200, 202), accepted["body"]
    assert db.counts()["messages"] == 2


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("[a@b.com](mailto:c@d.com)", "ambiguous"),
        ("[contact us](mailto:c@d.com)", "ambiguous"),
        ("a" * 65 + "@example.com", "longer than 64 bytes"),
        ("\u00e4" * 33 + "@example.com", "longer than 64 bytes"),
        ("a\u200d@example.com", "invisible"),
        ("a@\uff45xample.com", "compatibility characters"),  # fullwidth e: stored as a@example.com before
        ("\ufb01@example.com", "compatibility characters"),
        ("a@example\u3002com", "not as written"),
    ],
)
def test_email_addresses_that_would_be_converted_are_refused(invoke, db, address, reason):
    error = error_of(post(invoke, "inbound_email-email", {**EMAIL, "to": address}), 422)
    assert error["field"] == "to" and reason in error["message"]
    assert db.counts()["messages"] == 0


@pytest.mark.parametrize(
    ("address", "stored"),
    [("who@b\u00fccher.de", "who@b\u00fccher.de"), ("who@xn--bcher-kva.de", "who@b\u00fccher.de")],
)
def test_an_internationalized_domain_is_stored_as_written(invoke, db, address, stored):
    response = post(invoke, "inbound_email-email", {**EMAIL, "to": address})
    assert response["statusCode"] == 200, response["body"]
    assert db.scalar("SELECT to_address FROM messages") == stored


def test_a_markdown_link_whose_text_is_its_target_is_stored_bare(invoke, db):
    response = post(invoke, "inbound_email-email", {**EMAIL, "to": "[Who@Example.com](mailto:who@example.com)"})
    assert response["statusCode"] == 200, response["body"]
    assert db.scalar("SELECT to_address FROM messages") == "who@example.com"


@pytest.mark.parametrize(
    "timestamp",
    ["2024-11-01T14:00:00", "2024-11-01", 1730469600, 1730469600.5, "1730469600", "2024-11-01T14:00:00 Z"],
)
def test_timestamps_need_a_time_and_a_zone(invoke, db, timestamp):
    for name, body in (("inbound_sms-sms", SMS), ("inbound_email-email", EMAIL), ("send_message-sms", SEND_SMS)):
        error = error_of(post(invoke, name, {**body, "timestamp": timestamp}), 422)
        assert error["field"] == "timestamp"
        assert "'Z' or an offset" in error["message"]
    assert db.counts()["messages"] == 0


@pytest.mark.parametrize("timestamp", ["2024-11-01T14:00:00Z", "2024-11-01T15:00:00+01:00", "2024-11-01T14:00Z"])
def test_timestamps_with_a_zone_are_accepted(invoke, db, timestamp):
    response = post(invoke, "inbound_sms-sms", {**SMS, "timestamp": timestamp})
    assert response["statusCode"] == 200, response["body"]


# Item 10: one Content-Type rule, errors name the field, unknown query parameters.


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "APPLICATION/JSON", "Application/Json; charset=UTF-8", "application/json;charset=utf-8"],
)
def test_application_json_in_any_case_with_parameters_is_accepted_on_every_body_route(invoke, db, queues, content_type):
    for name, body in (("inbound_sms-sms", SMS), ("inbound_email-email", EMAIL), ("send_message-email", SEND_EMAIL)):
        response = post(invoke, name, body, {"content-type": content_type})
        assert response["statusCode"] in (200, 202), response["body"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json-patch+json", "application/merge-patch+json", "text/json", "application/json; charset=latin-1"],
)
def test_other_media_types_are_415_in_the_error_shape(invoke, db, content_type):
    for name, body in (("inbound_sms-sms", SMS), ("send_message-sms", SEND_SMS)):
        error = error_of(post(invoke, name, body, {"content-type": content_type}), 415)
        assert error == {"code": "unsupported_media_type", "message": error["message"], "field": "Content-Type"}
    assert db.counts()["messages"] == 0


def test_powertools_own_media_type_refusal_is_in_the_error_shape(invoke, db):
    """A backstop: if the resolver itself ever refuses a media type, the answer keeps the one shape."""
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType

    from messaging.http import MessagingApi

    app = MessagingApi()
    response = app._unsupported_media_type(RequestUnsupportedContentType("x", errors=[]))
    assert response.status_code == 415
    assert json.loads(response.body)["error"]["field"] == "Content-Type"


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("send_message-sms", {"type": "sms", "body": "  "}, "body"),
        ("send_message-sms", {"type": "mms", "body": "", "attachments": []}, "body"),
        ("send_message-sms", {"to": SEND_SMS["from"]}, "to"),
        ("inbound_sms-sms", {"body": ""}, "body"),
        ("inbound_email-email", {"body": "", "attachments": []}, "body"),
        ("inbound_email-email", {"to": EMAIL["from"]}, "to"),
    ],
)
def test_rules_over_several_fields_name_the_field_at_fault(invoke, db, name, changes, field):
    body = {**(SMS if name == "inbound_sms-sms" else EMAIL if name == "inbound_email-email" else SEND_SMS), **changes}
    error = error_of(post(invoke, name, body), 422)
    assert error["field"] == field, error


def _every_route_event(route, query):
    path = re.sub(r"\{\w+\}", "1", route.path)
    body = {
        "/api/webhooks/sms": SMS,
        "/api/webhooks/email": EMAIL,
        "/api/messages/sms": SEND_SMS,
        "/api/messages/email": SEND_EMAIL,
        "/api/webhook-endpoints": {"url": "http://127.0.0.1:9/hook", "events": ["message.received"]},
        "/api/webhook-endpoints/{endpoint_id}": {"enabled": True},
        "/api/webhooks/sms/status": {
            "messaging_provider_id": "x",
            "status": "delivered",
            "timestamp": SMS["timestamp"],
        },
        "/api/webhooks/email/events": [
            {"event_id": "e", "xillio_id": "x", "event": "delivered", "timestamp": SMS["timestamp"]}
        ],
        "/api/suppressions": {"address": "+18045551234"},
    }.get(route.path)
    if body is None and route.method in ("POST", "PATCH", "PUT"):
        body = {}  # a well-formed JSON body: the query check comes after the body's envelope checks
    path_parameters = dict.fromkeys(re.findall(r"\{(\w+)\}", route.path), "1")
    return http_api_event(
        route.method,
        path,
        route_key=route.route_key,
        body=json.dumps(body) if body is not None else None,
        headers={"content-type": "application/json"},
        query=query,
        path_parameters=path_parameters or None,
    )


def test_an_unknown_query_parameter_is_422_naming_it_on_every_route_of_every_function(invoke, db, application):
    routes = application.routes
    assert len(routes) >= 9
    for route in routes:
        for parameter in ("sort", "expand", "page"):
            response = invoke(route.function, _every_route_event(route, f"{parameter}=x"))
            error = error_of(response, 422)
            assert error["field"] == parameter, (route, error)
            assert f"'{parameter}'" in error["message"]
    assert db.counts()["messages"] == 0


def test_declared_query_parameters_still_work(invoke, db):
    post(invoke, "inbound_sms-sms", SMS)
    event = sample_event("conversations-list")
    event["queryStringParameters"] = {"limit": "1"}
    event["rawQueryString"] = "limit=1"
    response = invoke("ConversationsFunction", event)
    assert response["statusCode"] == 200, response["body"]
    assert len(response_json(response)["items"]) == 1


def test_a_signed_webhook_still_passes(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="sms-secret")
    body = json.dumps(SMS).encode()
    headers = {"content-type": "application/json", **{k.lower(): v for k, v in sign(body, "sms-secret").items()}}
    assert post(invoke, "inbound_sms-sms", SMS, headers)["statusCode"] == 200
    assert int(headers["x-signature-timestamp"]) <= time.time() + 1


RECEIPT = sample_body("inbound_sms-status")


@pytest.mark.parametrize("error_code", ["", "   ", "30\x0708", "30\n08", "\u200b"])
def test_a_blank_or_unprintable_receipt_error_code_is_422_naming_error_code(invoke, db, error_code):
    receipts_before = db.scalar("SELECT count(*) FROM provider_receipts")
    event = sample_event("inbound_sms-status", {**RECEIPT, "status": "undelivered", "error_code": error_code})
    error = error_of(invoke("InboundSmsFunction", event), 422)
    assert error["field"] == "error_code", error
    assert "error_code" in error["message"]
    assert db.scalar("SELECT count(*) FROM provider_receipts") == receipts_before
    assert db.counts()["messages"] == 0


def test_a_printable_receipt_error_code_is_accepted(invoke, db):
    event = sample_event("inbound_sms-status", {**RECEIPT, "status": "undelivered", "error_code": "30008"})
    response = invoke("InboundSmsFunction", event)
    assert response["statusCode"] == 200, response["body"]


# Unknown fields: what the README's input limits say, route by route.


@pytest.mark.parametrize("name", ["inbound_sms-sms", "inbound_email-email"])
def test_an_inbound_message_webhook_ignores_a_field_it_does_not_know(invoke, db, name):
    response = post(invoke, name, {**sample_body(name), "carrier_note": "providers add fields"})
    assert response["statusCode"] == 200, response["body"]
    assert db.counts()["messages"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "inbound_sms-status",
        "inbound_email-events",
        "send_message-sms",
        "send_message-email",
        "conversations-archive",
        "conversations-suppress",
    ],
)
def test_receipts_events_sends_and_other_bodies_refuse_a_field_they_do_not_know(invoke, db, queues, name):
    body = sample_body(name)
    if isinstance(body, list):  # an email event batch: the field is in its first event
        body = [{**body[0], "carrier_note": "x"}, *body[1:]]
        expected = "0.carrier_note"
    else:
        body = {**body, "carrier_note": "x"}
        expected = "carrier_note"
    before = db.counts()
    error = error_of(post(invoke, name, body), 422)
    assert error["field"] == expected and "unknown field" in error["message"], error
    assert db.counts() == before
