"""Opt-out keywords on inbound SMS/MMS (CTIA; Twilio Advanced Opt-Out): STOP and its synonyms opt the
sender out of messages from the number it wrote to, START and its synonyms opt it back in, HELP asks for
help. Each is answered through the send path, into the same conversation.

The keyword message, the suppression change with its event, and the reply are stored in one transaction,
so a provider's retry of the webhook (a duplicate, rolled back) never applies a keyword twice, and a crash
after the commit leaves a `queued` reply that the sweep sends.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from messaging import config
from messaging.config import KeywordReplySettings, RetryPolicySettings
from messaging.db import repository
from messaging.db import suppressions as store
from messaging.db.engine import transaction
from messaging.domain import NewMessage, StoredMessage
from messaging.enums import Direction, EventSource, MessageStatus, Provider, SuppressionSource
from messaging.models import InboundAccepted
from messaging.observability import logger, metrics
from messaging.segments import with_segments
from messaging.services.suppressions import opted_in, suppress


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"), Keyword.STOP),
    **dict.fromkeys(("START", "UNSTOP", "YES", "OPTIN"), Keyword.START),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}

# Whitespace, punctuation and symbols around the word are ignored (" Stop. ", "STOP!"); inside they are not.
_SURROUNDING = re.compile(r"^[\W_]+|[\W_]+$")


def keyword_of(body: str) -> Keyword | None:
    """The keyword a whole body is, case-insensitively, or None ("STOP please" is not a keyword)."""
    return KEYWORDS.get(_SURROUNDING.sub("", body).upper())


def _reply_text(keyword: Keyword) -> str:
    settings = config.current(KeywordReplySettings)
    return {
        Keyword.STOP: settings.stop_reply_text,
        Keyword.START: settings.start_reply_text,
        Keyword.HELP: settings.help_reply_text,
    }[keyword]


def _reply(inbound: NewMessage, keyword: Keyword) -> NewMessage:
    now = datetime.now(UTC)
    return with_segments(
        NewMessage(
            direction=Direction.OUTBOUND,
            type="sms",
            from_address=inbound.to_address,
            to_address=inbound.from_address,
            body=_reply_text(keyword),
            attachments=[],
            timestamp=now,
            status=MessageStatus.QUEUED,
            provider=Provider.SMS,
            next_attempt_at=now + timedelta(seconds=config.current(RetryPolicySettings).send_lease_seconds),
        )
    )


def receive_keyword(inbound: NewMessage, keyword: Keyword) -> InboundAccepted:
    """Store the keyword message, apply it and store its reply; then send the reply."""
    # The send path is imported here, not at cold start: an inbound function sends only to answer a keyword.
    from messaging.services import outbound

    subscriber, number = inbound.from_address, inbound.to_address
    reply = _reply(inbound, keyword)
    reply_stored: StoredMessage | None = None
    with transaction() as connection:
        # The send path's lock order: the sender's slot, then the recipient, then the conversation.
        slot = outbound.reserve_slot(connection, number)
        if slot is not None:
            reply = replace(reply, next_attempt_at=slot)
        store.lock_address(connection, subscriber, exclusive=True)
        stored = repository.store_message(connection, inbound)
        if not stored.created:
            connection.rollback()  # a provider retry: the keyword was applied the first time
            return InboundAccepted(id=stored.id, conversation_id=stored.conversation_id, duplicate=True)
        context = {"message_id": stored.id, "conversation_id": stored.conversation_id}
        if keyword is Keyword.STOP:
            suppression = suppress(
                connection,
                subscriber,
                number,
                SuppressionSource.KEYWORD,
                EventSource.KEYWORD,
                reason=f"texted {inbound.body.strip()[:40]}",
                **context,
            )
            # The confirmation is the one message that still goes out: it is recorded as such.
            reply_stored = repository.store_message(connection, reply)
            store.set_confirmation(connection, suppression.id, reply_stored.id)
        else:
            if keyword is Keyword.START:
                lifted = store.lift_for_sender(connection, subscriber, number)
                if lifted is not None:
                    opted_in(connection, lifted, EventSource.KEYWORD, **context)
            if store.blocking_suppression(connection, subscriber, number) is None:
                reply_stored = repository.store_message(connection, reply)
            else:
                logger.info("keyword reply not sent: the subscriber is still suppressed", extra=context)
    metrics.add_metric(name="KeywordsReceived", unit="Count", value=1)
    logger.info("keyword applied", extra={"keyword": keyword.value, **context})
    if reply_stored is not None:
        outbound.dispatch(outbound.StoredOutbound(reply, reply_stored, throttled=slot is not None))
    return InboundAccepted(id=stored.id, conversation_id=stored.conversation_id, duplicate=False)
