import json

import pytest

from infra.sign_webhook import sign
from tests.conftest import response_json, sample_event

WEBHOOKS = [("InboundSmsFunction", "inbound_sms-sms", "SMS"), ("InboundEmailFunction", "inbound_email-email", "EMAIL")]


def signed(name, secret, **header_changes):
    event = sample_event(name)
    event["headers"] = {**event["headers"], **{k.lower(): v for k, v in sign(event["body"].encode(), secret).items()}}
    event["headers"].update({k.lower(): v for k, v in header_changes.items()})
    return event


@pytest.fixture(params=WEBHOOKS, ids=lambda webhook: webhook[2].lower())
def webhook(request, configure):
    function, event, prefix = request.param
    configure(**{f"{prefix}_WEBHOOK_SECRETS": "current-secret,previous-secret"})
    return function, event


def test_signed_webhooks_are_stored(invoke, db, webhook):
    function, event = webhook
    response = invoke(function, signed(event, "current-secret"))
    assert response["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1


def test_the_previous_secret_is_accepted_during_rotation(invoke, db, webhook):
    function, event = webhook
    assert invoke(function, signed(event, "previous-secret"))["statusCode"] == 200


@pytest.mark.parametrize(
    "forge",
    [
        lambda event: event["headers"].pop("x-signature"),
        lambda event: event["headers"].update({"x-signature": "v1=" + "0" * 64}),
        lambda event: event["headers"].update({"x-signature-timestamp": "1000000000"}),
        lambda event: event.update({"body": event["body"].replace('"message-', '"forged-')}),
    ],
    ids=["unsigned", "forged", "replayed-old", "tampered"],
)
def test_forged_replayed_or_tampered_webhooks_get_401_and_store_nothing(invoke, db, webhook, forge):
    function, event = webhook
    request = signed(event, "current-secret")
    forge(request)
    response = invoke(function, request)
    assert response["statusCode"] == 401
    assert response_json(response)["error"]["code"] == "invalid_signature"
    assert db.counts() == {"messages": 0, "conversations": 0, "mock_provider_deliveries": 0}


def test_a_wrong_secret_is_refused(invoke, db, webhook):
    function, event = webhook
    assert invoke(function, signed(event, "attacker-secret"))["statusCode"] == 401
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_without_a_secret_verification_is_off(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS=None)
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 200


def test_secrets_of_one_provider_do_not_sign_the_other(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="sms-only", EMAIL_WEBHOOK_SECRETS="email-only")
    assert invoke("InboundEmailFunction", signed("inbound_email-email", "sms-only"))["statusCode"] == 401


def test_a_resent_signed_webhook_is_a_duplicate(invoke, db, webhook):
    function, event = webhook
    request = signed(event, "current-secret")
    first = response_json(invoke(function, json.loads(json.dumps(request))))
    again = response_json(invoke(function, request))
    assert again == {**first, "duplicate": True}
    assert db.scalar("SELECT count(*) FROM messages") == 1
