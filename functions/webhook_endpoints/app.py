"""Customer webhook endpoints: register, list, change, delete; their delivery attempts; retry a delivery."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config
from messaging.http import BODY_ERRORS, READ_ERRORS, Cursor, Id, Limit, MessagingApi, documented, json_response
from messaging.models import Page
from messaging.observability import logger, metrics, tracer
from messaging.pagination import DEFAULT_LIMIT
from messaging.services import webhook_endpoints
from messaging.webhook_models import (
    WebhookDeliveryOut,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPatch,
)


class WebhookEndpointsSettings(config.ApiSettings, config.WebhookTargetSettings):
    """WebhookEndpointsFunction: the API's settings (EventQueue included: a manual retry enqueues the
    delivery) and which webhook targets are allowed."""


settings = config.FunctionSettings(WebhookEndpointsSettings)  # cold start: fails naming a missing variable
app = MessagingApi()


@app.post(
    "/api/webhook-endpoints",
    summary="Register an endpoint; the answer holds its signing secret, shown only this once",
    responses=documented(201, WebhookEndpointCreated, "Registered", BODY_ERRORS),
)
@tracer.capture_method
def create_endpoint(payload: Annotated[WebhookEndpointIn, Body()]):
    created = webhook_endpoints.create_endpoint(payload)
    return json_response(201, created, {"Location": f"/api/webhook-endpoints/{created.id}"})


@app.get(
    "/api/webhook-endpoints",
    summary="List endpoints, oldest first",
    responses=documented(200, Page[WebhookEndpointOut], "A page of endpoints", (422, 503)),
)
@tracer.capture_method
def list_endpoints(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, webhook_endpoints.list_endpoints(limit, cursor))


@app.get(
    "/api/webhook-endpoints/<endpoint_id>",
    summary="One endpoint",
    responses=documented(200, WebhookEndpointOut, "The endpoint", READ_ERRORS),
)
@tracer.capture_method
def get_endpoint(endpoint_id: Id):
    return json_response(200, webhook_endpoints.get_endpoint(endpoint_id))


@app.patch(
    "/api/webhook-endpoints/<endpoint_id>",
    summary="Change an endpoint's url, events or enabled (enabling clears an automatic disable)",
    responses=documented(200, WebhookEndpointOut, "The endpoint", (*BODY_ERRORS, 404)),
)
@tracer.capture_method
def update_endpoint(endpoint_id: Id, payload: Annotated[WebhookEndpointPatch, Body()]):
    return json_response(200, webhook_endpoints.update_endpoint(endpoint_id, payload))


@app.delete(
    "/api/webhook-endpoints/<endpoint_id>",
    summary="Delete an endpoint with its deliveries",
    responses={
        **{code: answer for code, answer in documented(200, None, "", READ_ERRORS).items() if code != 200},
        204: {"description": "Deleted"},
    },
)
@tracer.capture_method
def delete_endpoint(endpoint_id: Id):
    webhook_endpoints.delete_endpoint(endpoint_id)
    return Response(status_code=204)


@app.get(
    "/api/webhook-endpoints/<endpoint_id>/deliveries",
    summary="The endpoint's deliveries, newest first, each with every attempt (status code, error, duration)",
    responses=documented(200, Page[WebhookDeliveryOut], "A page of deliveries", READ_ERRORS),
)
@tracer.capture_method
def list_deliveries(endpoint_id: Id, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None):
    return json_response(200, webhook_endpoints.list_deliveries(endpoint_id, limit, cursor))


@app.post(
    "/api/webhook-deliveries/<delivery_id>/retry",
    summary="Deliver that event to that endpoint again now",
    responses=documented(202, WebhookDeliveryOut, "Scheduled now", (404, 409, 503)),
)
@tracer.capture_method
def retry_delivery(delivery_id: Id):
    return json_response(202, webhook_endpoints.retry_delivery(delivery_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
