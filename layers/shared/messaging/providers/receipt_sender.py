"""What MockReceiptFunction does for the mock providers: POST a scheduled receipt to the API's status
webhook over HTTP, signed like the provider's other webhooks, exactly as a real provider calls back."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from messaging import config, signatures
from messaging.config import StatusWebhookSettings
from messaging.enums import Provider

STATUS_WEBHOOK_PATHS = {Provider.SMS: "/api/webhooks/sms/status", Provider.EMAIL: "/api/webhooks/email/events"}
TIMEOUT_SECONDS = 10


class ReceiptNotAccepted(Exception):
    """The API did not take the receipt (any answer but 2xx, or no answer): SQS delivers it again, and after
    the queue's maxReceiveCount it waits in ProviderReceiptDLQ."""


@dataclass(frozen=True)
class ScheduledReceipt:
    provider: Provider
    body: bytes  # the receipt exactly as the status webhook takes it

    @classmethod
    def parse(cls, record_body: str) -> ScheduledReceipt:
        document: dict[str, Any] = json.loads(record_body)
        provider = Provider(document["provider"])
        return cls(provider, json.dumps(document["receipt"], separators=(",", ":")).encode())


def post(receipt: ScheduledReceipt) -> int:
    """POST the receipt; returns the HTTP status (2xx) or raises ReceiptNotAccepted."""
    base_url = config.current(StatusWebhookSettings).api_base_url
    if not base_url:
        raise RuntimeError("API_BASE_URL is not configured: MockReceiptFunction cannot reach the status webhook")
    headers = {"Content-Type": "application/json", "User-Agent": f"{receipt.provider}-receipts"}
    verifier = signatures.verifier_for("email" if receipt.provider == Provider.EMAIL else "sms")
    if verifier is not None:
        headers.update(signatures.signature_headers(verifier.secrets[0], receipt.body))
    request = urllib.request.Request(  # noqa: S310 - the API's own https (AWS) or loopback (local) URL
        base_url.rstrip("/") + STATUS_WEBHOOK_PATHS[receipt.provider], data=receipt.body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        raise ReceiptNotAccepted(f"the status webhook answered {error.code}: {error.read()[:500]!r}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise ReceiptNotAccepted(f"the status webhook did not answer: {error}") from None
