"""EventQueue consumer: fans events out to customers' webhook endpoints and attempts deliveries.

Records run side by side (a slow endpoint costs its own timeout, not the batch's); a record fails (and
SQS redelivers it) only when the database or the queue could not be reached: an endpoint's failure is a
scheduled retry, recorded in the database, not a failed record.
"""

import asyncio
import threading

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config, event_queue
from messaging.observability import logger, metrics, tracer
from messaging.services import webhook_dispatch


class EventDispatchSettings(config.DatabaseSettings, config.WebhookDeliverySettings):
    """EventDispatchFunction: the database, EventQueue and its DLQ, retries, outbound HTTP."""


settings = config.FunctionSettings(EventDispatchSettings)  # cold start: fails naming a missing variable
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
# Records in flight at once: as many as the engine keeps connections (each record uses one at a time), so
# none waits for a connection or opens and closes an overflow one.
_slots = threading.BoundedSemaphore(settings.get().database_pool_size)


def dispatch(body: str) -> int:
    record = event_queue.parse_record(body)
    try:
        if record.event_id is not None:
            return webhook_dispatch.fan_out(record.event_id).attempted
        if record.delivery_id is not None:
            return webhook_dispatch.deliver(record.delivery_id).attempted
        raise ValueError(f"an event record names neither an event nor a delivery: {body}")
    except Exception:
        # The batch reports the record as failed and SQS redelivers it; say why here (the processor does not).
        logger.exception("event record failed; it will be redelivered", extra={"record": body})
        raise


def dispatch_in_slot(body: str) -> int:
    with _slots:
        return dispatch(body)


async def dispatch_record(record: SQSRecord) -> int:
    return await asyncio.to_thread(dispatch_in_slot, record.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return async_process_partial_response(
        event=event, record_handler=dispatch_record, processor=processor, context=context
    )
