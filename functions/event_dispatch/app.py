"""EventQueue consumer: fans events out to customers' webhook endpoints and attempts deliveries.

Records run side by side, up to EVENT_DISPATCH_CONCURRENCY at once (by default the whole batch): a record
holds a database connection only for its short transactions (read what to send; record an attempt), never
across an HTTP attempt, so a slow endpoint costs its own timeout, not the batch's. A record fails (and SQS
redelivers it) only when the database or the queue could not be reached, or the record cannot be read: an
endpoint's failure is a scheduled retry, recorded in the database, not a failed record.
"""

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

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
# Records in flight at once: not tied to the database pool (a record waits for a connection only while
# another record runs a short transaction, at most DATABASE_TIMEOUT_SECONDS), never to an endpoint.
_records = ThreadPoolExecutor(max_workers=settings.get().event_dispatch_concurrency, thread_name_prefix="record")


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


async def dispatch_record(record: SQSRecord) -> int:
    # In the invocation's context (its settings, its log keys), as asyncio.to_thread would run it.
    invocation = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_records, invocation.run, dispatch, record.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return async_process_partial_response(
        event=event, record_handler=dispatch_record, processor=processor, context=context
    )
