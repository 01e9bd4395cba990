import base64
import json
import time
from pathlib import Path

import boto3
import pytest

from infra.sign_webhook import sign
from tests.conftest import response_json, sample_body, sample_event

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


def test_the_signature_is_checked_on_the_raw_body_before_it_is_parsed(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="current-secret")
    garbage = sample_event("inbound_sms-sms", body='{"not json')
    assert response_json(invoke("InboundSmsFunction", garbage))["error"]["code"] == "invalid_signature"
    signed_garbage = sample_event("inbound_sms-sms", body='{"not json')
    signed_garbage["headers"].update({k.lower(): v for k, v in sign(b'{"not json', "current-secret").items()})
    response = invoke("InboundSmsFunction", signed_garbage)
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "malformed_request"


def test_a_base64_encoded_body_is_verified_on_its_decoded_bytes(invoke, db, configure):
    configure(SMS_WEBHOOK_SECRETS="current-secret")
    event = signed("inbound_sms-sms", "current-secret")
    event.update(body=base64.b64encode(event["body"].encode()).decode(), isBase64Encoded=True)
    assert invoke("InboundSmsFunction", event)["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1


@pytest.mark.parametrize("stamp", ["\u00b2", "1730469600\u00b2", "\u0661\u0667\u0663", "-1", "1e9", " ", "0x10"])
def test_a_malformed_timestamp_is_401_never_500(invoke, db, configure, stamp):
    configure(SMS_WEBHOOK_SECRETS="current-secret")
    response = invoke(
        "InboundSmsFunction", signed("inbound_sms-sms", "current-secret", **{"X-Signature-Timestamp": stamp})
    )
    assert response["statusCode"] == 401
    assert response_json(response)["error"]["field"] in ("X-Signature-Timestamp", "X-Signature")
    assert db.scalar("SELECT count(*) FROM messages") == 0


# Secrets from Secrets Manager (moto), as in AWS.


@pytest.fixture
def secrets_manager(configure):
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        yield client


def store_secret(client, configure, value: str, provider: str = "SMS") -> str:
    arn = client.create_secret(Name=f"{provider.lower()}-webhook-signing", SecretString=value)["ARN"]
    configure(**{f"{provider}_WEBHOOK_SECRET_ARN": arn, f"{provider}_WEBHOOK_SECRETS": None})
    return arn


def test_secrets_manager_current_and_previous_secrets_both_verify(invoke, db, configure, secrets_manager):
    store_secret(secrets_manager, configure, json.dumps({"current": "new-key", "previous": "old-key"}))
    first = signed("inbound_sms-sms", "new-key")
    assert invoke("InboundSmsFunction", first)["statusCode"] == 200
    second = sample_event("inbound_sms-sms", {**sample_body("inbound_sms-sms"), "messaging_provider_id": "second"})
    second["headers"].update({k.lower(): v for k, v in sign(second["body"].encode(), "old-key").items()})
    assert invoke("InboundSmsFunction", second)["statusCode"] == 200
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "not-a-key"))["statusCode"] == 401
    assert db.scalar("SELECT count(*) FROM messages") == 2


def test_a_rotated_secret_reaches_a_warm_function_after_the_refresh_interval(
    invoke, db, configure, secrets_manager, monkeypatch
):
    from messaging import signatures

    arn = store_secret(secrets_manager, configure, json.dumps({"current": "key-1"}))
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "key-1"))["statusCode"] == 200
    secrets_manager.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": "key-2", "previous": "key-1"}))
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "key-2"))["statusCode"] == 401  # still cached
    later = time.monotonic() + signatures.SECRET_REFRESH_SECONDS + 1
    monkeypatch.setattr(signatures.time, "monotonic", lambda: later)
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "key-2"))["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1  # the same provider id: a duplicate, not a new row


@pytest.mark.parametrize("value", ['{"current": "", "previous": null}', "{}", "   ", "[1, 2]"])
def test_a_secret_naming_no_key_fails_closed_with_503(invoke, db, configure, secrets_manager, value):
    store_secret(secrets_manager, configure, value)
    response = invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_an_unreadable_secret_at_cold_start_fails_closed_with_503(invoke, db, configure, secrets_manager):
    configure(SMS_WEBHOOK_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
    response = invoke("InboundSmsFunction", signed("inbound_sms-sms", "anything"))
    assert response["statusCode"] == 503
    assert response_json(response)["error"]["code"] == "service_unavailable"
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_secrets_manager_down_at_refresh_keeps_the_known_secrets(invoke, db, configure, secrets_manager, monkeypatch):
    from messaging import signatures

    arn = store_secret(secrets_manager, configure, json.dumps({"current": "key-1"}))
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "key-1"))["statusCode"] == 200
    secrets_manager.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    later = time.monotonic() + signatures.SECRET_REFRESH_SECONDS + 1
    monkeypatch.setattr(signatures.time, "monotonic", lambda: later)
    second = sample_event("inbound_sms-sms", {**sample_body("inbound_sms-sms"), "messaging_provider_id": "second"})
    second["headers"].update({k.lower(): v for k, v in sign(second["body"].encode(), "key-1").items()})
    assert invoke("InboundSmsFunction", second)["statusCode"] == 200
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "forged"))["statusCode"] == 401


def test_the_secret_arn_takes_precedence_over_listed_secrets(invoke, db, configure, secrets_manager):
    store_secret(secrets_manager, configure, "aws-key")
    configure(SMS_WEBHOOK_SECRETS="local-key")
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "local-key"))["statusCode"] == 401
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "aws-key"))["statusCode"] == 200


@pytest.mark.parametrize(
    ("environment", "warned"),
    [({}, True), ({"SMS_WEBHOOK_SECRETS": "k"}, False), ({"SMS_WEBHOOK_SECRET_ARN": "arn:aws:x"}, False)],
)
def test_unverified_webhooks_are_announced_once_at_cold_start(configure, caplog, environment, warned):
    from messaging import signatures

    configure(SMS_WEBHOOK_SECRETS=None, SMS_WEBHOOK_SECRET_ARN=None)
    configure(**environment)
    caplog.clear()
    signatures.announce("sms")
    warnings = [record for record in caplog.records if "verification is OFF" in record.getMessage()]
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert warnings[0].levelname == "WARNING"
        assert warnings[0].provider == "sms"


def test_both_inbound_functions_announce_at_import():
    for function in ("inbound_sms", "inbound_email"):
        source = (Path(__file__).resolve().parents[2] / "functions" / function / "app.py").read_text()
        provider = function.removeprefix("inbound_")
        assert f'\nsignatures.announce("{provider}")' in source


def test_a_named_stage_in_the_path_does_not_bypass_verification(invoke, db, configure):
    """With a non-default stage, rawPath starts with it; routing strips it, and so must the envelope checks."""
    configure(SMS_WEBHOOK_SECRETS="current-secret")
    event = sample_event("inbound_sms-sms")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/prod/api/webhooks/sms"
    event["requestContext"]["stage"] = "prod"
    assert response_json(invoke("InboundSmsFunction", event))["error"]["code"] == "invalid_signature"
    event["headers"].update({k.lower(): v for k, v in sign(event["body"].encode(), "current-secret").items()})
    assert invoke("InboundSmsFunction", event)["statusCode"] == 200
    assert db.scalar("SELECT count(*) FROM messages") == 1


# Fail closed by default: WEBHOOK_SIGNATURES (template parameter WebhookSignatures, default `required`).
ALL_WEBHOOK_ROUTES = [
    ("InboundSmsFunction", "inbound_sms-sms", "sms"),
    ("InboundSmsFunction", "inbound_sms-status", "sms"),
    ("InboundEmailFunction", "inbound_email-email", "email"),
    ("InboundEmailFunction", "inbound_email-events", "email"),
]
WRITTEN = ("messages", "conversations", "message_events", "provider_receipts", "mock_provider_deliveries")


def _written(db):
    return {table: db.scalar(f"SELECT count(*) FROM {table}") for table in WRITTEN}  # noqa: S608 - our names


@pytest.mark.parametrize(("function", "event", "provider"), ALL_WEBHOOK_ROUTES, ids=lambda value: str(value))
def test_required_signatures_without_a_secret_refuse_every_webhook_with_503(
    invoke, db, configure, function, event, provider
):
    configure(WEBHOOK_SIGNATURES="required", SMS_WEBHOOK_SECRETS=None, EMAIL_WEBHOOK_SECRETS=None)
    before = _written(db)
    for request in (sample_event(event), signed(event, "any-secret")):  # signed or not: nothing to check against
        response = invoke(function, request)
        assert response["statusCode"] == 503, response["body"]  # the provider retries until a secret is set
        assert int(response["headers"]["Retry-After"]) > 0
        error = response_json(response)["error"]
        assert error["code"] == "service_unavailable"
        assert f"no {provider} webhook signing secret is configured" in error["message"]
    assert _written(db) == before


def test_required_signatures_with_a_secret_verify_as_ever(invoke, db, configure):
    configure(WEBHOOK_SIGNATURES="required", SMS_WEBHOOK_SECRETS="current-secret")
    assert invoke("InboundSmsFunction", sample_event("inbound_sms-sms"))["statusCode"] == 401
    assert invoke("InboundSmsFunction", signed("inbound_sms-sms", "current-secret"))["statusCode"] == 200
    # The other provider has no secret: refused, whatever the first one has.
    assert invoke("InboundEmailFunction", sample_event("inbound_email-email"))["statusCode"] == 503
    assert db.scalar("SELECT count(*) FROM messages") == 1


@pytest.mark.parametrize(("function", "event", "provider"), ALL_WEBHOOK_ROUTES, ids=lambda value: str(value))
def test_optional_signatures_without_a_secret_accept_unsigned_webhooks(
    invoke, db, configure, function, event, provider
):
    configure(WEBHOOK_SIGNATURES="optional", SMS_WEBHOOK_SECRETS=None, EMAIL_WEBHOOK_SECRETS=None)
    assert invoke(function, sample_event(event))["statusCode"] == 200


def test_optional_signatures_still_check_a_configured_secret(invoke, db, configure):
    configure(WEBHOOK_SIGNATURES="optional", EMAIL_WEBHOOK_SECRETS="e-secret")
    assert invoke("InboundEmailFunction", sample_event("inbound_email-email"))["statusCode"] == 401
    assert invoke("InboundEmailFunction", signed("inbound_email-email", "e-secret"))["statusCode"] == 200


def test_the_template_requires_signatures_by_default_on_both_inbound_functions(invoke, db, configure, application):
    """What a deploy with every parameter left at its default gives the inbound functions: no secret ARN, and
    signatures required. Each then refuses an unsigned webhook."""
    for function, event in (("InboundSmsFunction", "inbound_sms-sms"), ("InboundEmailFunction", "inbound_email-email")):
        deployed = application.functions[function].resolved_environment(application.parameter_defaults)
        assert deployed["WEBHOOK_SIGNATURES"] == "required"
        assert not deployed.get("SMS_WEBHOOK_SECRET_ARN") and not deployed.get("EMAIL_WEBHOOK_SECRET_ARN")
        configure(
            WEBHOOK_SIGNATURES=deployed["WEBHOOK_SIGNATURES"], SMS_WEBHOOK_SECRETS=None, EMAIL_WEBHOOK_SECRETS=None
        )
        assert invoke(function, sample_event(event))["statusCode"] == 503
    assert db.scalar("SELECT count(*) FROM messages") == 0


def test_required_signatures_without_a_secret_are_announced_as_an_error_at_cold_start(configure, caplog):
    from messaging import signatures

    configure(WEBHOOK_SIGNATURES="required", SMS_WEBHOOK_SECRETS=None, SMS_WEBHOOK_SECRET_ARN=None)
    caplog.clear()
    signatures.announce("sms")
    errors = [record for record in caplog.records if "every webhook will be refused (503)" in record.getMessage()]
    assert [record.levelname for record in errors] == ["ERROR"]
    assert not [record for record in caplog.records if "verification is OFF" in record.getMessage()]
