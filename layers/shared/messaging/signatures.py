"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<raw body>", checked in constant time.

Headers a provider sends:
    X-Signature-Timestamp: 1730469600                 (Unix seconds)
    X-Signature: v1=<hex digest>[,v1=<hex digest>]    (one per secret the provider signs with)

A request is accepted when its timestamp is within the tolerance window (either side of now) and one of
its signatures matches one of our active secrets (two may be active while a secret is rotated).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from messaging.config import Settings, get_settings
from messaging.errors import Unauthorized
from messaging.observability import logger

TIMESTAMP_HEADER = "x-signature-timestamp"
SIGNATURE_HEADER = "x-signature"
SCHEME = "v1"


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers a provider adds to a webhook (used by infra/sign_webhook.py and the tests)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"X-Signature-Timestamp": str(stamp), "X-Signature": f"{SCHEME}={signature(secret, stamp, body)}"}


@dataclass(frozen=True)
class WebhookVerifier:
    secrets: tuple[str, ...]
    tolerance_seconds: int

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        lowered = {name.lower(): value for name, value in headers.items()}
        stamp = lowered.get(TIMESTAMP_HEADER, "").strip()
        offered = lowered.get(SIGNATURE_HEADER, "")
        if not stamp or not offered:
            raise Unauthorized("the webhook is not signed", field="X-Signature")
        if not stamp.isdigit() or len(stamp) > 12:
            raise Unauthorized("X-Signature-Timestamp must be Unix seconds", field="X-Signature-Timestamp")
        current = time.time() if now is None else now
        if abs(current - int(stamp)) > self.tolerance_seconds:
            raise Unauthorized("the webhook signature has expired", field="X-Signature-Timestamp")
        candidates = [
            value.strip()[len(SCHEME) + 1 :] for value in offered.split(",") if value.strip().startswith(f"{SCHEME}=")
        ]
        expected = [signature(secret, stamp, body) for secret in self.secrets]
        matched = False
        for candidate in candidates[:4]:
            for digest in expected:
                matched |= hmac.compare_digest(candidate.encode(), digest.encode())
        if not matched:
            raise Unauthorized("the webhook signature does not match", field="X-Signature")


def _secrets_from_secret_string(value: str) -> list[str]:
    """A Secrets Manager value: {"current": "...", "previous": "..."} or a plain string."""
    try:
        document = json.loads(value)
    except ValueError:
        return [value]
    if isinstance(document, dict):
        return [str(document[key]) for key in ("current", "previous") if document.get(key)]
    return [value]


def _configured_secrets(provider: str, settings: Settings) -> list[str]:
    listed = settings.sms_webhook_secrets if provider == "sms" else settings.email_webhook_secrets
    secret_arn = settings.sms_webhook_secret_arn if provider == "sms" else settings.email_webhook_secret_arn
    secrets = [secret.strip() for secret in listed.split(",") if secret.strip()]
    if secret_arn:
        from aws_lambda_powertools.utilities.parameters import get_secret

        value = get_secret(secret_arn, max_age=300)
        secrets.extend(_secrets_from_secret_string(value if isinstance(value, str) else value.decode()))
    return secrets


_verifiers: dict[str, WebhookVerifier | None] = {}
_lock = threading.Lock()


def verifier_for(provider: str) -> WebhookVerifier | None:
    """The verifier of a provider's webhooks (built once per execution environment); None when unsigned."""
    if provider not in _verifiers:
        with _lock:
            if provider not in _verifiers:
                settings = get_settings()
                secrets = _configured_secrets(provider, settings)
                if not secrets:
                    logger.warning(
                        "webhook signature verification is OFF: no signing secret configured",
                        extra={"provider": provider},
                    )
                _verifiers[provider] = (
                    WebhookVerifier(tuple(secrets[:2]), settings.webhook_tolerance_seconds) if secrets else None
                )
    return _verifiers[provider]


def reset_verifiers() -> None:
    with _lock:
        _verifiers.clear()
