"""The mock providers' delivery ledger (`mock_provider_deliveries`): one row per accepted send."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

_RECORD_DELIVERY = text(
    """
    INSERT INTO mock_provider_deliveries (
        provider, idempotency_token, provider_message_id, from_address, to_address, message_type, body, attachments
    ) VALUES (
        :provider, :token, :provider_message_id, :from_address, :to_address, :message_type, :body, :attachments
    )
    ON CONFLICT (provider, idempotency_token) DO UPDATE
        SET replay_count = mock_provider_deliveries.replay_count + 1, last_replayed_at = now()
    RETURNING provider_message_id, (xmax = 0) AS inserted
    """
).bindparams(bindparam("attachments", type_=JSONB))


@dataclass(frozen=True)
class Delivery:
    provider_message_id: str
    replayed: bool  # the token was already accepted: the original provider message id is returned


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
) -> Delivery:
    """Record an accepted send once per (provider, idempotency token); a replay only bumps its count."""
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
        },
    ).one()
    return Delivery(provider_message_id=row.provider_message_id, replayed=not row.inserted)
