"""The provider interface: what a real SMS/MMS or email provider client must implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundEnvelope:
    idempotency_token: str  # our message id: a replay must not deliver twice
    # Our message id again, as the reference the provider echoes in every receipt of this message (Vonage's
    # client-ref, SendGrid's custom_args, Twilio's per-message StatusCallback URL): a receipt then finds its
    # message even when our send never heard the provider's answer, so never recorded its provider id.
    client_reference: str
    type: str
    from_address: str
    to_address: str
    body: str
    attachments: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    provider_message_id: str
    replayed: bool


@dataclass(frozen=True)
class Lookup:
    """What the provider says of an idempotency token: whether it accepted the send, under which provider
    message id, and the delivery verdict once it has one (`delivered`/`undelivered`, with its detail)."""

    accepted: bool
    provider_message_id: str | None = None
    delivery_status: str | None = None
    detail: str | None = None


class ProviderError(Exception):
    """A request the provider did not accept: a send (retryable: 429, any 5xx, and timeouts), or a lookup that
    could not be made (the provider unreachable, failing or not answering in time)."""

    def __init__(self, status_code: int, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(f"{status_code} {message}")
        self.status_code = status_code
        self.message = message
        self.retry_after_seconds = retry_after_seconds

    @property
    def retryable(self) -> bool:
        return self.status_code == 429 or self.status_code >= 500

    @property
    def throttled(self) -> bool:
        return self.status_code == 429

    def describe(self) -> str:
        return f"HTTP {self.status_code}: {self.message}"


class ProviderTimeout(ProviderError):
    """No answer in time: the provider may or may not have accepted the send."""

    def __init__(self, message: str = "provider did not answer in time") -> None:
        super().__init__(504, message)

    def describe(self) -> str:
        return f"timeout: {self.message}"


class ProviderRejected(ProviderError):
    """A 4xx other than 429: the request itself is wrong and retrying cannot help."""


class MessagingProvider(Protocol):
    name: str

    def send(self, envelope: OutboundEnvelope) -> Accepted: ...

    def lookup(self, idempotency_token: str) -> Lookup:
        """Ask what became of a send (real providers: Twilio's message fetch, SendGrid's activity API). Raises
        ProviderError when the provider cannot be asked (unreachable, failing, or not answering in time)."""
        ...
