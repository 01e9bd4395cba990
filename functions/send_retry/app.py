"""SendRetryQueue consumer: retries provider sends, reporting partial batch failures."""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from messaging import config, queue
from messaging.observability import logger, metrics, tracer
from messaging.services import retries


class SendRetrySettings(
    config.DatabaseSettings,
    config.RetryPolicySettings,
    config.RetryQueueSettings,
    config.DeadLetterQueueSettings,
    config.ProviderMockSettings,
    config.EventQueueSettings,
    config.ThrottleSettings,
):
    """SendRetryFunction: retries sends, postpones early records, dead-letters sends that fail for good."""


settings = config.FunctionSettings(SendRetrySettings)  # cold start: fails naming a missing variable
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def retry_record(record: SQSRecord, lambda_context: LambdaContext) -> str:
    retry = queue.parse_retry_body(record.body)
    logger.append_keys(message_id=retry.message_id, sqs_message_id=record.message_id)
    return retries.retry_send(
        retry.message_id,
        receipt_handle=record.receipt_handle,
        source=retry.source,
        remaining_seconds=lambda_context.get_remaining_time_in_millis() / 1000,
    )


def in_due_order(records: list[dict]) -> list[dict]:
    """The batch's records by their messages' due times: each may be held until its instant, so working
    through them in that order keeps an earlier-due one from waiting behind a later one. Records that do
    not parse keep their place at the front (they fail at once)."""
    ids: dict[int, int] = {}
    for index, record in enumerate(records):
        try:
            ids[index] = queue.parse_retry_body(record["body"]).message_id
        except (ValueError, KeyError, TypeError):
            ids[index] = 0
    rank = {message_id: position for position, message_id in enumerate(retries.in_due_order(sorted(set(ids.values()))))}
    return [records[index] for index in sorted(ids, key=lambda index: rank.get(ids[index], -1))]


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@settings.bind
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if len(event.get("Records", [])) > 1:
        event = {**event, "Records": in_due_order(event["Records"])}
    return process_partial_response(event=event, record_handler=retry_record, processor=processor, context=context)
