"""Mock SMS/MMS and email providers with reproducible injected faults and a PostgreSQL delivery ledger.

Faults come from a spec such as ``429=0.2,500=0.1,timeout=0.05`` (probability per call of each outcome)
and/or a script of outcomes consumed first, in order: ``429,500,ok`` (then the probabilities apply).
Outcomes: ``ok``, ``timeout`` (delivered, but the caller never hears back) and any HTTP status.
Every accepted send is recorded once in ``mock_provider_deliveries``, keyed by the idempotency token;
a replay returns the original provider message id and only bumps the replay count.

Like real providers, the mocks report delivery later: on first acceptance an outcome is drawn from
``MOCK_SMS_RECEIPTS``/``MOCK_EMAIL_RECEIPTS`` (``delivered=0.9,undelivered=0.1``; ``off``: no receipts),
recorded in the ledger, and its receipt is put on ProviderReceiptQueue with ``MOCK_RECEIPT_DELAY_SECONDS``
of delay; MockReceiptFunction then POSTs it to the status webhook. ``lookup`` answers from the ledger.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from messaging import config, queue
from messaging.config import ProviderReceiptSettings
from messaging.db import mock_ledger
from messaging.db.engine import DATABASE_UNAVAILABLE_ERRORS, transaction
from messaging.enums import RECEIPT_OUTCOME_STATUS
from messaging.providers.base import (
    Accepted,
    Lookup,
    OutboundEnvelope,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
)

SMS_RECEIPT_OUTCOMES = ("delivered", "undelivered")
EMAIL_RECEIPT_OUTCOMES = ("delivered", "bounce", "dropped", "spamreport")
# What the mocks say when a message did not arrive (as Twilio's 30003 "unreachable handset" would).
_OUTCOME_DETAIL = {
    "undelivered": "30003",
    "bounce": "550 5.1.1 mailbox unavailable",
    "dropped": "address on the provider's suppression list",
}

_OUTCOME_NAMES = {"ok", "timeout"}


def _outcome(token: str, spec_name: str) -> str:
    outcome = token.strip().lower()
    if outcome in _OUTCOME_NAMES or (outcome.isdigit() and 400 <= int(outcome) <= 599):
        return outcome
    raise ValueError(f"{spec_name}: unknown outcome {token!r} (use ok, timeout or an HTTP status 400-599)")


@dataclass
class FaultPlan:
    probabilities: list[tuple[str, float]] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)

    @classmethod
    def parse(cls, spec: str, spec_name: str = "faults") -> FaultPlan:
        plan = cls()
        for token in filter(None, (part.strip() for part in spec.split(","))):
            if "=" in token:
                name, _, probability = token.partition("=")
                try:
                    value = float(probability)
                except ValueError:
                    raise ValueError(f"{spec_name}: {token!r} needs a probability between 0 and 1") from None
                if not 0 <= value <= 1:
                    raise ValueError(f"{spec_name}: {token!r} needs a probability between 0 and 1")
                plan.probabilities.append((_outcome(name, spec_name), value))
            else:
                plan.script.append(_outcome(token, spec_name))
        if sum(probability for _, probability in plan.probabilities) > 1:
            raise ValueError(f"{spec_name}: the probabilities add up to more than 1")
        return plan

    def next_outcome(self, rng: random.Random) -> str:
        if self.script:
            return self.script.popleft()
        roll = rng.random()
        for outcome, probability in self.probabilities:
            if roll < probability:
                return outcome
            roll -= probability
        return "ok"


@dataclass
class ReceiptPlan:
    """Probabilities of each receipt outcome (they add up to 1), or none at all (`off`)."""

    probabilities: list[tuple[str, float]] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str, spec_name: str, outcomes: tuple[str, ...]) -> ReceiptPlan:
        if spec.strip().lower() == "off":
            return cls()
        plan = cls()
        for token in filter(None, (part.strip() for part in spec.split(","))):
            name, separator, probability = token.partition("=")
            name = name.strip().lower()
            if name not in outcomes:
                raise ValueError(f"{spec_name}: unknown outcome {name!r} (use {', '.join(outcomes)}, or off)")
            try:
                value = float(probability) if separator else -1.0
            except ValueError:
                value = -1.0
            if not 0 <= value <= 1:
                raise ValueError(f"{spec_name}: {token!r} needs a probability between 0 and 1")
            plan.probabilities.append((name, value))
        if not plan.probabilities or abs(sum(value for _, value in plan.probabilities) - 1) > 1e-9:
            raise ValueError(f"{spec_name}: the probabilities must add up to 1 (or say off)")
        return plan

    def next_outcome(self, rng: random.Random) -> str | None:
        if not self.probabilities:
            return None
        roll = rng.random()
        for outcome, probability in self.probabilities:
            if roll < probability:
                return outcome
            roll -= probability
        return self.probabilities[-1][0]


class MockProvider:
    def __init__(
        self,
        name: str,
        faults: FaultPlan,
        *,
        seed: int | None = None,
        retry_after_seconds: float = 1.0,
        receipts: ReceiptPlan | None = None,
    ) -> None:
        self.name = name
        self.faults = faults
        self.receipts = receipts or ReceiptPlan()
        self.retry_after_seconds = retry_after_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def send(self, envelope: OutboundEnvelope) -> Accepted:
        with self._lock:
            outcome = self.faults.next_outcome(self._rng)
        if outcome == "429":
            raise ProviderError(429, "too many requests", retry_after_seconds=self.retry_after_seconds)
        if outcome.isdigit():
            status = int(outcome)
            error_type = ProviderRejected if status < 500 else ProviderError
            raise error_type(status, "injected fault")
        accepted = self._record(envelope)
        if outcome == "timeout":
            raise ProviderTimeout()
        return accepted

    def lookup(self, idempotency_token: str) -> Lookup:
        try:
            with transaction() as connection:
                delivery = mock_ledger.find_delivery(connection, provider=self.name, token=idempotency_token)
        except DATABASE_UNAVAILABLE_ERRORS as error:
            # The ledger is this provider's own store: its being unavailable is the provider failing to answer.
            raise ProviderError(503, "the provider's ledger is unavailable") from error
        if delivery is None:
            return Lookup(accepted=False)
        status = RECEIPT_OUTCOME_STATUS.get(delivery.receipt_outcome or "")
        return Lookup(
            accepted=True,
            provider_message_id=delivery.provider_message_id,
            delivery_status=None if status is None else status.value,
            detail=delivery.receipt_detail,
        )

    def _record(self, envelope: OutboundEnvelope) -> Accepted:
        with self._lock:
            receipt_outcome = self.receipts.next_outcome(self._rng)
        # The provider is an external system: its ledger commits on its own, whatever our transaction does.
        with transaction() as connection:
            delivery = mock_ledger.record_delivery(
                connection,
                provider=self.name,
                token=envelope.idempotency_token,
                provider_message_id=f"{self.name}-{uuid.uuid4().hex}",
                from_address=envelope.from_address,
                to_address=envelope.to_address,
                message_type=envelope.type,
                body=envelope.body,
                attachments=list(envelope.attachments),
                receipt_outcome=receipt_outcome,
                receipt_detail=_OUTCOME_DETAIL.get(receipt_outcome or ""),
            )
        if not delivery.replayed and delivery.receipt_outcome is not None:
            self._schedule_receipt(delivery, envelope.client_reference)
        return Accepted(provider_message_id=delivery.provider_message_id, replayed=delivery.replayed)

    def _schedule_receipt(self, delivery: mock_ledger.Delivery, client_reference: str) -> None:
        # If SQS cannot take it (a provider's own outage), our reconciliation still learns the outcome by lookup.
        body = {"provider": self.name, "receipt": self._receipt_body(delivery, client_reference)}
        delay = config.current(ProviderReceiptSettings).mock_receipt_delay_seconds
        queue.best_effort(
            lambda: queue.schedule_provider_receipt(body, delay),
            "mock provider could not schedule its receipt",
            provider=self.name,
        )

    def _receipt_body(self, delivery: mock_ledger.Delivery, client_reference: str) -> Any:
        """The receipt exactly as this provider's status webhook takes it (DESIGN.md §2), echoing the client
        reference the send gave (as Vonage's DLR echoes client-ref and SendGrid's events their custom_args)."""
        timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        outcome, detail = delivery.receipt_outcome, delivery.receipt_detail
        if self.name == "mock-email":
            event: dict[str, Any] = {
                "event_id": f"evt-{uuid.uuid4().hex}",
                "xillio_id": delivery.provider_message_id,
                "event": outcome,
                "timestamp": timestamp,
                "client_reference": client_reference,
            }
            if detail:
                event["reason"] = detail
            return [event]
        receipt: dict[str, Any] = {
            "messaging_provider_id": delivery.provider_message_id,
            "status": outcome,
            "timestamp": timestamp,
            "client_reference": client_reference,
        }
        if detail:
            receipt["error_code"] = detail
        return receipt
