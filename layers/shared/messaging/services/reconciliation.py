"""Reconciliation (run by the sweep): settle what receipts alone did not, by asking the provider.

- Held receipts whose message is now known are applied (the race of a receipt written while our own `sent`
  update was, each blind to the other's uncommitted row).
- A `sent` message without a receipt for longer than RECEIPT_TIMEOUT_SECONDS is looked up; when the
  provider has a verdict, the message takes it and the history records it with source `reconciliation`.
  When it has none (accepted, no verdict yet; or no record of the send at all), that finding is recorded
  too (`message.unconfirmed` in the history, status_detail) and the next lookup waits twice as long (at
  most RECEIPT_LOOKUP_MAX_FACTOR timeouts); after MAX_RECEIPT_LOOKUPS such findings the message stays
  `sent` and is no longer looked up. A lookup that cannot be made is tried again when due again.
- Held receipts no message claimed within HELD_RECEIPT_RETENTION_SECONDS name messages we never sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging import config
from messaging.config import ReconciliationSettings, SweepSettings
from messaging.db import receipts as receipts_db
from messaging.db import repository
from messaging.db.engine import transaction
from messaging.observability import logger, metrics
from messaging.providers import Lookup, ProviderError, provider_for
from messaging.services.receipts import suppress_for_held_events


@dataclass(frozen=True)
class ReconciliationReport:
    held_receipts_applied: int
    looked_up: int
    settled_by_lookup: int
    unconfirmed_by_lookup: int
    stale_held_receipts_purged: int


def reconcile() -> ReconciliationReport:
    sweep, reconciliation = config.current(SweepSettings), config.current(ReconciliationSettings)
    applied = 0
    while applied < sweep.sweep_batch_size:
        with transaction() as connection:
            held = receipts_db.apply_one_held_receipt(connection)
            if held is None:
                break
            suppress_for_held_events(connection, held.message_id, held.to_address, held.email_events)
        applied += 1
    with transaction() as connection:
        purged = receipts_db.purge_stale_held_receipts(connection, reconciliation.held_receipt_retention_seconds)
    with transaction() as connection:
        awaiting = repository.claim_awaiting_receipt(
            connection, reconciliation.receipt_timeout_seconds, sweep.sweep_batch_size
        )
    settled = unconfirmed = 0
    for message in awaiting:
        try:
            found = provider_for(message.type).lookup(str(message.id))
        except ProviderError:
            logger.warning("lookup failed; asked again when due again", extra={"message_id": message.id}, exc_info=True)
            continue
        if found.delivery_status is None:
            unconfirmed += _record_finding(message.id, found)
            continue
        with transaction() as connection:
            moved = repository.record_lookup_verdict(
                connection, message.id, found.delivery_status, found.detail, found.provider_message_id
            )
        if moved is not None:
            settled += 1
            logger.info("settled by lookup", extra={"message_id": message.id, "status": moved.status})
    if applied or settled:
        metrics.add_metric(name="ReconciledMessages", unit="Count", value=applied + settled)
    return ReconciliationReport(
        held_receipts_applied=applied,
        looked_up=len(awaiting),
        settled_by_lookup=settled,
        unconfirmed_by_lookup=unconfirmed,
        stale_held_receipts_purged=purged,
    )


def _record_finding(message_id: int, found: Lookup) -> int:
    """A lookup without a verdict: recorded in the history and status_detail, and counted for the backoff."""
    finding = (
        "the provider accepted the send and has no delivery verdict yet"
        if found.accepted
        else "the provider has no record of this send"
    )
    with transaction() as connection:
        lookups = repository.record_lookup_finding(connection, message_id, finding)
    if lookups is None:
        return 0  # a receipt settled it meanwhile
    if lookups >= repository.MAX_RECEIPT_LOOKUPS:
        metrics.add_metric(name="ReceiptLookupsExhausted", unit="Count", value=1)
    logger.info(
        "no verdict from the provider", extra={"message_id": message_id, "finding": finding, "lookups": lookups}
    )
    return 1
