"""The mock providers' delivery ledger (`mock_provider_deliveries`): one row per accepted send."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

_RECORD_DELIVERY = text(
    """
    INSERT INTO mock_provider_deliveries (
        provider, idempotency_token, provider_message_id, from_address, to_address, message_type, body, attachments,
        receipt_outcome, receipt_detail
    ) VALUES (
        :provider, :token, :provider_message_id, :from_address, :to_address, :message_type, :body, :attachments,
        :receipt_outcome, :receipt_detail
    )
    ON CONFLICT (provider, idempotency_token) DO UPDATE
        SET replay_count = mock_provider_deliveries.replay_count + 1, last_replayed_at = now()
    RETURNING provider_message_id, (xmax = 0) AS inserted, receipt_outcome, receipt_detail
    """
).bindparams(bindparam("attachments", type_=JSONB))


@dataclass(frozen=True)
class Delivery:
    provider_message_id: str
    replayed: bool  # the token was already accepted: the original provider message id is returned
    receipt_outcome: str | None = None  # what its receipt announces (decided once, when first accepted)
    receipt_detail: str | None = None


def record_delivery(
    connection: Connection,
    *,
    provider: str,
    token: str,
    provider_message_id: str,
    from_address: str,
    to_address: str,
    message_type: str,
    body: str,
    attachments: list[str],
    receipt_outcome: str | None = None,
    receipt_detail: str | None = None,
) -> Delivery:
    """Record an accepted send once per (provider, idempotency token) with the outcome its receipt will
    announce; a replay only bumps its count."""
    row = connection.execute(
        _RECORD_DELIVERY,
        {
            "provider": provider,
            "token": token,
            "provider_message_id": provider_message_id,
            "from_address": from_address,
            "to_address": to_address,
            "message_type": message_type,
            "body": body,
            "attachments": attachments,
            "receipt_outcome": receipt_outcome,
            "receipt_detail": receipt_detail,
        },
    ).one()
    return Delivery(
        provider_message_id=row.provider_message_id,
        replayed=not row.inserted,
        receipt_outcome=row.receipt_outcome,
        receipt_detail=row.receipt_detail,
    )


_FIND_DELIVERY = text(
    "SELECT provider_message_id, receipt_outcome, receipt_detail FROM mock_provider_deliveries "
    "WHERE provider = :provider AND idempotency_token = :token"
)


def find_delivery(connection: Connection, *, provider: str, token: str) -> Delivery | None:
    """The accepted send of an idempotency token, if the provider accepted one (the mocks' `lookup`)."""
    row = connection.execute(_FIND_DELIVERY, {"provider": provider, "token": token}).first()
    if row is None:
        return None
    return Delivery(
        provider_message_id=row.provider_message_id,
        replayed=False,
        receipt_outcome=row.receipt_outcome,
        receipt_detail=row.receipt_detail,
    )
