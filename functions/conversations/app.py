"""Conversations, their messages, one message, the suppression list, and health."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging.http import BODY_ERRORS, READ_ERRORS, MessagingApi, documented, json_response
from messaging.models import ConversationOut, Health, MessageOut, Page, SuppressedAddress, SuppressionIn, SuppressionOut
from messaging.observability import logger, metrics, tracer
from messaging.pagination import DEFAULT_LIMIT, MAX_LIMIT
from messaging.services import queries, suppressions

app = MessagingApi()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="Opaque cursor from a page's next_cursor")]
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
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
def list_conversations(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, queries.list_conversations(limit, cursor))


@app.get(
    "/api/conversations/<conversation_id>",
    summary="One conversation",
    responses=documented(200, ConversationOut, "The conversation", READ_ERRORS),
)
@tracer.capture_method
def get_conversation(conversation_id: Id):
    return json_response(200, queries.get_conversation(conversation_id))


@app.get(
    "/api/conversations/<conversation_id>/messages",
    summary="Messages of a conversation, chronological",
    responses=documented(200, Page[MessageOut], "A page of messages", READ_ERRORS),
)
@tracer.capture_method
def list_messages(conversation_id: Id, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, queries.list_messages(conversation_id, limit, cursor))


@app.get(
    "/api/messages/<message_id>",
    summary="One message with its delivery status",
    responses=documented(200, MessageOut, "The message", READ_ERRORS),
)
@tracer.capture_method
def get_message(message_id: Id):
    return json_response(200, queries.get_message(message_id))


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
        503: {"description": "Database unreachable", "content": {"application/json": {"model": Health}}},
    },
)
def health():
    reachable = queries.database_reachable()
    document = Health(status="ok" if reachable else "degraded", database="ok" if reachable else "unreachable")
    return json_response(200 if reachable else 503, document)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
