"""Reads and small writes of the API's own state: conversations (filtered, archived, read), messages
(one, a conversation's, or found across conversations), the suppression list, and health."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.domain import ConversationFilters, MessageFilters
from messaging.enums import Direction, MessageStatus, MessageType
from messaging.http import BODY_ERRORS, READ_ERRORS, Cursor, Id, Limit, MessagingApi, documented, json_response
from messaging.models import (
    ConversationChange,
    ConversationOut,
    Health,
    MessageEventOut,
    MessageOut,
    Page,
    QueryInstant,
    ReadHorizon,
    SearchText,
    SuppressedAddress,
    SuppressionIn,
    SuppressionOut,
)
from messaging.observability import logger, metrics, tracer
from messaging.pagination import DEFAULT_LIMIT
from messaging.services import conversations, queries, suppressions

settings = config.FunctionSettings(config.ApiSettings)  # cold start: fails naming a missing variable
app = MessagingApi()

WRITE_ERRORS = (*BODY_ERRORS, 404)
# A 204 has no document: only the error documents of a read, and the bare success.
LIFTED_RESPONSES = {
    **{code: response for code, response in documented(200, None, "", READ_ERRORS).items() if code != 200},
    204: {"description": "Lifted"},
}


@app.get(
    "/api/conversations",
    summary="List conversations, most recent activity first",
    responses=documented(200, Page[ConversationOut], "A page of conversations", (422, 503)),
)
@tracer.capture_method
def list_conversations(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    participant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=700,
            description="Conversations with this address: a phone in any formatting (encode '+' as %2B) or an "
            "email, plain or [a@b.com](mailto:a@b.com), any case; normalized like stored addresses.",
        ),
    ] = None,
    channel: Annotated[
        MessageType | None, Query(description="Conversations holding at least one message of this type.")
    ] = None,
    archived: Annotated[bool | None, Query(description="true: only archived; false: only not archived.")] = None,
):
    filters = ConversationFilters(
        participant=None if participant is None else queries.participant_address(participant),
        channel=None if channel is None else channel.value,
        archived=archived,
    )
    return json_response(200, queries.list_conversations(limit, cursor, filters))


@app.get(
    "/api/conversations/<conversation_id>",
    summary="One conversation",
    responses=documented(200, ConversationOut, "The conversation", READ_ERRORS),
)
@tracer.capture_method
def get_conversation(conversation_id: Id):
    return json_response(200, queries.get_conversation(conversation_id))


@app.patch(
    "/api/conversations/<conversation_id>",
    summary="Archive or unarchive a conversation (a new inbound message un-archives it)",
    responses=documented(200, ConversationOut, "The conversation", WRITE_ERRORS),
)
@tracer.capture_method
def change_conversation(conversation_id: Id, change: Annotated[ConversationChange, Body()]):
    return json_response(200, conversations.set_archived(conversation_id, change.archived))


@app.post(
    "/api/conversations/<conversation_id>/read",
    summary="Mark the conversation read, up to now or through one of its messages",
    responses=documented(200, ConversationOut, "The conversation with its unread_count", WRITE_ERRORS),
)
@tracer.capture_method
def mark_read(conversation_id: Id, horizon: Annotated[ReadHorizon, Body()]):
    return json_response(200, conversations.mark_read(conversation_id, horizon.through_message_id))


@app.get(
    "/api/conversations/<conversation_id>/messages",
    summary="Messages of a conversation, chronological",
    responses=documented(200, Page[MessageOut], "A page of messages", READ_ERRORS),
)
@tracer.capture_method
def list_messages(conversation_id: Id, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, queries.list_messages(conversation_id, limit, cursor))


@app.get(
    "/api/messages",
    summary="Find messages across conversations, chronological; full-text search with q",
    responses=documented(200, Page[MessageOut], "A page of messages", (422, 503)),
)
@tracer.capture_method
def find_messages(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    conversation_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only this conversation's")] = None,
    status: Annotated[MessageStatus | None, Query(description="Only messages with this status")] = None,
    direction: Annotated[Direction | None, Query(description="inbound or outbound")] = None,
    type: Annotated[MessageType | None, Query(description="sms, mms or email")] = None,  # noqa: A002 - the API's name
    since: Annotated[
        QueryInstant | None,
        Query(description="Timestamp at or after this instant (ISO-8601 with Z or an offset; encode '+' as %2B)"),
    ] = None,
    until: Annotated[QueryInstant | None, Query(description="Timestamp before this instant (exclusive)")] = None,
    q: Annotated[
        SearchText | None,
        Query(
            min_length=1,
            max_length=200,
            description="Full-text search of bodies (email HTML reduced to its text): whole words, any case, "
            "no stemming (PostgreSQL 'simple' configuration); web-search syntax: \"a phrase\", or, -word. "
            "Words are matched whole: no prefix matching.",
        ),
    ] = None,
):
    filters = MessageFilters(
        conversation_id=conversation_id,
        status=None if status is None else status.value,
        direction=None if direction is None else direction.value,
        type=None if type is None else type.value,
        since=since,
        until=until,
        q=q,
    )
    return json_response(200, queries.find_messages(filters, limit, cursor))


@app.get(
    "/api/messages/<message_id>",
    summary="One message with its delivery status",
    responses=documented(200, MessageOut, "The message", READ_ERRORS),
)
@tracer.capture_method
def get_message(message_id: Id):
    return json_response(200, queries.get_message(message_id))


@app.get(
    "/api/messages/<message_id>/events",
    summary="A message's history, oldest first",
    responses=documented(200, Page[MessageEventOut], "A page of events", READ_ERRORS),
)
@tracer.capture_method
def list_message_events(message_id: Id, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, queries.list_message_events(message_id, limit, cursor))


@app.get(
    "/api/suppressions",
    summary="Suppressed recipients, newest first",
    responses=documented(200, Page[SuppressionOut], "A page of suppressions", (422, 503)),
)
@tracer.capture_method
def list_suppressions(
    address: Annotated[SuppressedAddress | None, Query(description="Only this address's entries")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
):
    return json_response(200, suppressions.list_suppressions(address, limit, cursor))


@app.post(
    "/api/suppressions",
    summary="Suppress a recipient (for one sender, or for every sender)",
    responses=documented(201, SuppressionOut, "Suppressed (an existing entry is returned as it is)", BODY_ERRORS),
)
@tracer.capture_method
def add_suppression(payload: Annotated[SuppressionIn, Body()]):
    return json_response(201, suppressions.add_suppression(payload))


@app.delete(
    "/api/suppressions/<suppression_id>",
    summary="Lift a suppression",
    responses=LIFTED_RESPONSES,
)
@tracer.capture_method
def lift_suppression(suppression_id: Id):
    suppressions.lift_suppression(suppression_id)
    return Response(status_code=204, body="")


@app.get(
    "/health",
    summary="Liveness and database reachability",
    responses={
        200: {"description": "Healthy", "content": {"application/json": {"model": Health}}},
        503: {"description": "Database unavailable", "content": {"application/json": {"model": Health}}},
    },
)
def health():
    reachable = queries.database_reachable()
    document = Health(status="ok" if reachable else "degraded", database="ok" if reachable else "unreachable")
    return json_response(200 if reachable else 503, document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
