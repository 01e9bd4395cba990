"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<raw body>", checked in constant time.

Headers a provider sends:
    X-Signature-Timestamp: 1730469600                 (Unix seconds)
    X-Signature: v1=<hex digest>[,v1=<hex digest>]    (one per secret the provider signs with)

A request is accepted when its timestamp is within the tolerance window (either side of now) and one of
its signatures matches one of our active secrets (two may be active while a secret is rotated). Every
element of X-Signature must be a well-formed `v1=<hex digest>`: API Gateway joins a repeated header with
commas, so a second header of junk beside a valid one is refused as ambiguous, whichever comes first.

Where the secrets come from, per provider:
- `SMS_WEBHOOK_SECRET_ARN` / `EMAIL_WEBHOOK_SECRET_ARN` (AWS): a Secrets Manager secret whose value is
  `{"current": "...", "previous": "..."}` (`previous` optional) or a plain string. It is read on first use
  and again every `SECRET_REFRESH_SECONDS`, so a rotation reaches warm execution environments without a
  deploy. When it names no usable secret, or cannot be read at cold start, webhooks are refused with a 503
  (fail closed; the provider retries) - never accepted unverified.
- `SMS_WEBHOOK_SECRETS` / `EMAIL_WEBHOOK_SECRETS` (local): comma-separated, current first. Set but
  holding no secret (`" , "`): webhooks are refused with a 503, like a secret that names none.
- Neither: no secret is configured. Then `WEBHOOK_SIGNATURES` decides (`endpoint_verifier`): `required`
  (the default, and the template's) refuses every webhook with a 503 saying no secret is configured (our
  misconfiguration, not the provider's fault: it retries, so nothing it sent meanwhile is lost);
  `optional` (the local runner's) accepts them unverified. `announce` logs which, once, at cold start.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from messaging import config, runtime
from messaging.config import WebhookPolicySettings, WebhookSignatureSettings
from messaging.errors import ServiceUnavailable, Unauthorized
from messaging.observability import logger

TIMESTAMP_HEADER = "x-signature-timestamp"
SIGNATURE_HEADER = "x-signature"
SCHEME = "v1"
MAX_ACTIVE_SECRETS = 2
MAX_OFFERED_SIGNATURES = 4
SECRET_REFRESH_SECONDS = 300.0

# ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() may refuse or read differently.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
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
        """Return when `body` is signed by one of our secrets within the window; raise Unauthorized otherwise."""
        lowered = {name.lower(): value for name, value in headers.items()}
        stamp = lowered.get(TIMESTAMP_HEADER, "").strip()
        offered = lowered.get(SIGNATURE_HEADER, "")
        if not stamp or not offered.strip():
            raise Unauthorized("the webhook is not signed", field="X-Signature")
        if not _UNIX_SECONDS.fullmatch(stamp):
            raise Unauthorized("X-Signature-Timestamp must be Unix seconds", field="X-Signature-Timestamp")
        current = time.time() if now is None else now
        if abs(current - int(stamp)) > self.tolerance_seconds:
            raise Unauthorized("the webhook signature has expired", field="X-Signature-Timestamp")
        candidates = _offered_digests(offered)
        expected = [signature(secret, stamp, body).encode() for secret in self.secrets]
        matched = False
        # Every candidate is compared with every secret, in constant time, with no early exit.
        for candidate in candidates:
            for digest in expected:
                matched |= hmac.compare_digest(candidate, digest)
        if not matched:
            raise Unauthorized("the webhook signature does not match", field="X-Signature")


def _offered_digests(offered: str) -> list[bytes]:
    """The digests of an X-Signature value; Unauthorized unless every element is `v1=<64 hex digits>`.

    The value may be two headers joined by API Gateway: accepting the valid element and ignoring the rest
    would let whoever adds a header decide what the request says, so any malformed element refuses all."""
    parts = [part.strip() for part in offered.split(",")]
    if len(parts) > MAX_OFFERED_SIGNATURES:
        raise Unauthorized(f"X-Signature offers more than {MAX_OFFERED_SIGNATURES} signatures", field="X-Signature")
    digests = []
    for part in parts:
        scheme, _, digest = part.partition("=")
        if scheme != SCHEME or not _HEX_DIGEST.fullmatch(digest.lower()):
            raise Unauthorized(
                f"X-Signature is malformed or ambiguous: every comma-separated element (a repeated header "
                f"counts) must be {SCHEME}=<64 hex digits>",
                field="X-Signature",
            )
        digests.append(digest.lower().encode())
    return digests


def secrets_from_secret_string(value: str) -> list[str]:
    """A Secrets Manager value: {"current": "...", "previous": "..."} or a plain string; current first."""
    try:
        document = json.loads(value)
    except ValueError:
        document = value
    if isinstance(document, dict):
        return [str(document[key]).strip() for key in ("current", "previous") if str(document.get(key) or "").strip()]
    if isinstance(document, str):
        return [document.strip()] if document.strip() else []
    return []


def _secret_list(provider: str, settings: WebhookSignatureSettings) -> str:
    """The environment's list as configured ("" when unset: settings_from drops empty variables)."""
    return settings.sms_webhook_secrets if provider == "sms" else settings.email_webhook_secrets


def _listed_secrets(provider: str, settings: WebhookSignatureSettings) -> list[str]:
    return [secret.strip() for secret in _secret_list(provider, settings).split(",") if secret.strip()]


def _secret_arn(provider: str, settings: WebhookSignatureSettings) -> str | None:
    return settings.sms_webhook_secret_arn if provider == "sms" else settings.email_webhook_secret_arn


def _read_secret(secret_arn: str) -> list[str]:
    from aws_lambda_powertools.utilities.parameters import get_secret

    value = get_secret(secret_arn, force_fetch=True)
    if isinstance(value, bytes):
        value = value.decode()
    return secrets_from_secret_string(value if isinstance(value, str) else "")


@dataclass(frozen=True)
class _Cached:
    verifier: WebhookVerifier | None
    refresh_at: float  # time.monotonic(); infinite for secrets from the environment


_lock = threading.Lock()


def _cache() -> dict[str, _Cached]:
    """The verifiers built so far in this execution environment, by provider."""
    return runtime.once("webhook verifiers", dict)


def _signatures_required() -> bool:
    return config.current(WebhookPolicySettings).webhook_signatures == "required"


def announce(provider: str) -> None:
    """At cold start: say once when this provider's webhooks will not be verified, or all be refused."""
    settings = config.current(WebhookSignatureSettings)
    if _secret_arn(provider, settings):
        return
    if _secret_list(provider, settings) and not _listed_secrets(provider, settings):
        logger.error(
            "the webhook secret list names no secret: every webhook will be refused (503)",
            extra={"provider": provider},
        )
    elif not _listed_secrets(provider, settings):
        if _signatures_required():
            logger.error(
                "webhook signatures are required (WEBHOOK_SIGNATURES=required) but no signing secret is "
                "configured: every webhook will be refused (503)",
                extra={"provider": provider},
            )
        else:
            logger.warning(
                "webhook signature verification is OFF: no signing secret configured (WEBHOOK_SIGNATURES=optional)",
                extra={"provider": provider},
            )


def endpoint_verifier(provider: str) -> WebhookVerifier | None:
    """The verifier a webhook endpoint checks requests with: `verifier_for`, under the policy. None (accept
    unverified) only where signatures are optional and no secret is configured; where they are required and
    none is, every request is refused, signed or not: there is nothing to check it against. Refused as
    unavailable (503), like a secret list that names no secret: the fault is the deploy's, and a provider
    retries a 503 (it gives up on a 401), so what it sends before the secret is set is not lost."""
    verifier = verifier_for(provider)
    if verifier is None and _signatures_required():
        raise ServiceUnavailable(
            f"webhook signatures are required, but no {provider} webhook signing secret is configured: "
            "every webhook is refused until one is; retry later"
        )
    return verifier


def verifier_for(provider: str) -> WebhookVerifier | None:
    """The verifier of a provider's secrets; None when no secret is configured (the signer, MockReceipt-
    Function, then sends unsigned; the webhook endpoints go through `endpoint_verifier`, which decides).

    Raises ServiceUnavailable when a configured secret list or Secrets Manager secret names no secret, or
    the Secrets Manager secret cannot be read: configured means verified, never open by accident.
    """
    cached = _cache().get(provider)
    if cached is not None and time.monotonic() < cached.refresh_at:
        return cached.verifier
    with _lock:
        cached = _cache().get(provider)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return cached.verifier
        settings = config.current(WebhookSignatureSettings)
        secret_arn = _secret_arn(provider, settings)
        if not secret_arn:
            secrets = _listed_secrets(provider, settings)
            if _secret_list(provider, settings) and not secrets:
                logger.error("the webhook secret list names no secret", extra={"provider": provider})
                raise ServiceUnavailable("webhook verification is unavailable; retry later")
            verifier = WebhookVerifier(tuple(secrets[:MAX_ACTIVE_SECRETS]), settings.webhook_tolerance_seconds)
            _cache()[provider] = _Cached(verifier if secrets else None, math.inf)
            return _cache()[provider].verifier
        try:
            secrets = _read_secret(secret_arn)
        except Exception:
            if cached is not None and cached.verifier is not None:
                # Secrets Manager is unreachable: keep verifying with the secrets we have, try again soon.
                logger.warning("could not refresh the webhook signing secret", extra={"provider": provider})
                _cache()[provider] = _Cached(cached.verifier, time.monotonic() + 30)
                return cached.verifier
            logger.exception("could not read the webhook signing secret", extra={"provider": provider})
            raise ServiceUnavailable("webhook verification is unavailable; retry later") from None
        if not secrets:
            logger.error("the webhook signing secret names no secret", extra={"provider": provider})
            raise ServiceUnavailable("webhook verification is unavailable; retry later")
        verifier = WebhookVerifier(tuple(secrets[:MAX_ACTIVE_SECRETS]), settings.webhook_tolerance_seconds)
        _cache()[provider] = _Cached(verifier, time.monotonic() + SECRET_REFRESH_SECONDS)
        return verifier
