"""Mock SMS/MMS and email providers with reproducible injected faults and a PostgreSQL delivery ledger.

Faults come from a spec such as ``429=0.2,500=0.1,timeout=0.05`` (probability per call of each outcome)
and/or a script of outcomes consumed first, in order: ``429,500,ok`` (then the probabilities apply).
Outcomes: ``ok``, ``timeout`` (delivered, but the caller never hears back) and any HTTP status.
Every accepted send is recorded once in ``mock_provider_deliveries``, keyed by the idempotency token;
a replay returns the original provider message id and only bumps the replay count.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field

from messaging.db import mock_ledger
from messaging.db.engine import transaction
from messaging.providers.base import Accepted, OutboundEnvelope, ProviderError, ProviderRejected, ProviderTimeout

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


class MockProvider:
    def __init__(
        self, name: str, faults: FaultPlan, *, seed: int | None = None, retry_after_seconds: float = 1.0
    ) -> None:
        self.name = name
        self.faults = faults
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

    def _record(self, envelope: OutboundEnvelope) -> Accepted:
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
            )
        return Accepted(provider_message_id=delivery.provider_message_id, replayed=delivery.replayed)
