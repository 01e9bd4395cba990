"""Providers behind one interface, chosen by message type."""

from __future__ import annotations

from messaging import config, runtime
from messaging.config import ProviderMockSettings
from messaging.providers.base import (
    Accepted,
    Lookup,
    MessagingProvider,
    OutboundEnvelope,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
)
from messaging.providers.mock import (
    EMAIL_RECEIPT_OUTCOMES,
    SMS_RECEIPT_OUTCOMES,
    FaultPlan,
    MockProvider,
    ReceiptPlan,
)

__all__ = [
    "Accepted",
    "Lookup",
    "MessagingProvider",
    "OutboundEnvelope",
    "ProviderError",
    "ProviderRejected",
    "ProviderTimeout",
    "provider_for",
]


def _build(kind: str) -> MessagingProvider:
    settings = config.current(ProviderMockSettings)
    seed = settings.mock_provider_seed
    if kind == "email":
        return MockProvider(
            "mock-email",
            FaultPlan.parse(settings.mock_email_faults, "MOCK_EMAIL_FAULTS"),
            seed=None if seed is None else seed + 1,
            retry_after_seconds=settings.mock_retry_after_seconds,
            receipts=ReceiptPlan.parse(settings.mock_email_receipts, "MOCK_EMAIL_RECEIPTS", EMAIL_RECEIPT_OUTCOMES),
        )
    return MockProvider(
        "mock-sms",
        FaultPlan.parse(settings.mock_sms_faults, "MOCK_SMS_FAULTS"),
        seed=seed,
        retry_after_seconds=settings.mock_retry_after_seconds,
        receipts=ReceiptPlan.parse(settings.mock_sms_receipts, "MOCK_SMS_RECEIPTS", SMS_RECEIPT_OUTCOMES),
    )


def provider_for(message_type: str) -> MessagingProvider:
    """The provider of a message type: SMS and MMS go to the SMS provider, email to the email provider."""
    kind = "email" if message_type == "email" else "sms"
    # Kept per execution environment: a mock's fault script and random stream run across invocations.
    return runtime.once(("provider", kind), lambda: _build(kind))
