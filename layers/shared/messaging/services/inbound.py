"""Receiving: store an inbound SMS/MMS or email in its conversation, once per provider message id."""

from __future__ import annotations

from messaging.db import repository
from messaging.db.engine import transaction
from messaging.domain import NewMessage
from messaging.models import InboundAccepted, InboundEmail, InboundSms, MessageStatus, Provider
from messaging.observability import logger, metrics
from messaging.segments import with_segments
from messaging.services.keywords import keyword_of, receive_keyword


def receive_sms(payload: InboundSms) -> InboundAccepted:
    message = with_segments(_new_message(payload, payload.type, Provider.SMS, payload.messaging_provider_id))
    keyword = keyword_of(message.body)
    if keyword is not None:
        return receive_keyword(message, keyword)
    return _receive(message)


def receive_email(payload: InboundEmail) -> InboundAccepted:
    return _receive(_new_message(payload, "email", Provider.EMAIL, payload.xillio_id))


def _new_message(
    payload: InboundSms | InboundEmail, message_type: str, provider: Provider, provider_message_id: str
) -> NewMessage:
    return NewMessage(
        direction="inbound",
        type=message_type,
        from_address=payload.from_,
        to_address=payload.to,
        body=payload.body,
        attachments=payload.attachment_list,
        timestamp=payload.timestamp,
        status=MessageStatus.RECEIVED,
        provider=provider,
        provider_message_id=provider_message_id,
    )


def _receive(message: NewMessage) -> InboundAccepted:
    with transaction() as connection:
        stored = repository.store_message(connection, message, whole_transaction=True)
        if not stored.created:
            # A provider retry: answer with the original ids and leave the store exactly as it was.
            connection.rollback()
    logger.append_keys(message_id=stored.id, conversation_id=stored.conversation_id)
    if stored.created:
        metrics.add_metric(name="MessagesReceived", unit="Count", value=1)
        logger.info("inbound message stored", extra={"type": message.type, "provider": message.provider})
    else:
        metrics.add_metric(name="DuplicateWebhooks", unit="Count", value=1)
        logger.info("duplicate webhook ignored", extra={"provider": message.provider})
    return InboundAccepted(id=stored.id, conversation_id=stored.conversation_id, duplicate=not stored.created)
