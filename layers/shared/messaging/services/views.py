"""Rows to API documents: the one place that knows how stored columns map to the contract."""

from __future__ import annotations

from sqlalchemy import RowMapping

from messaging.models import ConversationOut, MessageOut


def message_view(row: RowMapping) -> MessageOut:
    return MessageOut.model_validate(
        {
            "id": row["id"],
            "conversation_id": row["conversation_id"],
            "direction": row["direction"],
            "type": row["type"],
            "from": row["from_address"],
            "to": row["to_address"],
            "body": row["body"],
            "attachments": row["attachments"],
            "timestamp": row["message_timestamp"],
            "status": row["status"],
            "provider": row["provider"],
            "provider_message_id": row["provider_message_id"],
            "attempts": row["attempts"],
            "next_attempt_at": row["next_attempt_at"],
            "last_error": row["last_error"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    )


def conversation_view(row: RowMapping) -> ConversationOut:
    return ConversationOut(
        id=row["id"],
        participants=[row["participant_a"], row["participant_b"]],
        message_count=row["message_count"],
        last_message_at=row["last_message_at"],
        last_message_preview=row["last_message_preview"],
        created_at=row["created_at"],
    )
