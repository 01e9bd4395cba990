"""The README's ten-line webhook receiver, run as written, accepts what the dispatcher signs and refuses a
forgery: the documentation a customer copies is proven against the service's own wire format."""

import json
import re
from datetime import UTC, datetime

import pytest

from messaging.domain import WebhookDelivery
from messaging.services.webhook_dispatch import sign
from messaging.services.webhook_endpoints import new_secret
from tests.conftest import ROOT

flask = pytest.importorskip("flask")  # the receiver's own dependency (installed here through moto)


def readme_receiver(secret: str):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("A receiver in ten lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README's receiver is not a python block after 'A receiver in ten lines'"
    source = code.group(1)
    assert 'Webhook("whsec_...")' in source
    namespace: dict = {"__name__": "readme_receiver"}
    exec(compile(source.replace("whsec_...", secret), "README.md", "exec"), namespace)  # noqa: S102 - our README
    return namespace["app"]


def delivery(secret: str) -> WebhookDelivery:
    document = {"type": "message.received", "timestamp": "2026-11-25T10:00:00Z", "data": {"id": 7}}
    return WebhookDelivery(
        id=1,
        event_id=42,
        event_type="message.received",
        endpoint_id=1,
        url="https://example.com/messaging",
        secret=secret,
        endpoint_enabled=True,
        status="pending",
        payload=json.dumps(document),
        attempts=0,
        next_attempt_at=None,
        retry_until=datetime.now(UTC),
        last_status_code=None,
        last_error=None,
        created_at=datetime.now(UTC),
        completed_at=None,
    )


def test_the_readme_receiver_accepts_a_signed_delivery_and_refuses_a_forged_one(capsys):
    secret = new_secret()
    client = readme_receiver(secret).test_client()
    sent = delivery(secret)
    headers = sign(sent, datetime.now(UTC))

    accepted = client.post("/messaging", data=sent.payload, headers=headers)
    assert accepted.status_code == 204
    assert capsys.readouterr().out.split() == ["evt_42", "message.received", "7"]

    forged = client.post("/messaging", data=sent.payload.replace('"id": 7', '"id": 8'), headers=headers)
    assert forged.status_code == 400
    other_secret = client.post("/messaging", data=sent.payload, headers=sign(delivery(new_secret()), datetime.now(UTC)))
    assert other_secret.status_code == 400
