"""Embedded SQS (moto's threaded server) and Lambda's SQS event source mapping (invoking through the runner's
execution environments)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from infra.local_runner.apigw import LambdaContext
from infra.local_runner.template import Application, Function, SqsSource

log = logging.getLogger("local_runner.sqs")

Handler = Callable[[dict[str, Any], Any], Any]


def start_embedded_sqs(host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start moto's SQS in a thread; return the server (call .stop()) and its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def queue_arn(sqs_client: Any, queue_url: str) -> str:
    attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def create_queues(sqs_client: Any, application: Application, prefix: str = "") -> dict[str, str]:
    """Create the template's queues (dead-letter queues first, then their redrive policies); idempotent."""
    urls: dict[str, str] = {}
    ordered = sorted(application.queues.values(), key=lambda queue: queue.dead_letter_queue is not None)
    for queue in ordered:
        attributes = {"VisibilityTimeout": str(queue.visibility_timeout)}
        if queue.dead_letter_queue is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queue_arn(sqs_client, urls[queue.dead_letter_queue]),
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        url = sqs_client.create_queue(QueueName=f"{prefix}{queue.name}")["QueueUrl"]
        sqs_client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[queue.name] = url
    return urls


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    converted = {}
    for name, value in attributes.items():
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
    return converted


class EventSourceMapping:
    """What Lambda's SQS event source mapping does: poll, invoke with a batch, delete what succeeded.

    Records the handler reports in `batchItemFailures` (or every record, when it raises) stay in the queue
    and come back after the visibility timeout; the queue's redrive policy moves them to the DLQ after
    maxReceiveCount receives.
    """

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        source: SqsSource,
        function: Function,
        visibility_timeout: int,
    ) -> None:
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.queue_arn = queue_arn(sqs_client, queue_url)
        self.region = self.queue_arn.split(":")[3]
        self.handler = handler
        self.source = source
        self.function = function
        self.visibility_timeout = visibility_timeout

    def poll_once(self, wait_seconds: int = 0) -> int:
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        context = LambdaContext(function_name=self.function.name, timeout_seconds=self.function.timeout)
        try:
            result = self.handler(event, context)
        except Exception:
            log.exception("%s failed on a batch of %d; every record will be retried", self.function.name, len(messages))
            return len(messages)
        failed = self._failed_ids(result, messages)
        done = [message for message in messages if message["MessageId"] not in failed]
        self._delete(done)
        if failed:
            log.info("%s: %d of %d records failed and stay queued", self.function.name, len(failed), len(messages))
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.poll_once(wait_seconds=1) == 0 and self.source.batching_window_seconds:
                    stop.wait(min(self.source.batching_window_seconds, 1.0))
            except Exception:
                log.exception("polling %s failed; retrying shortly", self.queue_url)
                stop.wait(1.0)

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.source.batch_size),
            VisibilityTimeout=self.visibility_timeout,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        now_ms = str(int(time.time() * 1000))
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", now_ms),
                "SenderId": attributes.get("SenderId", "local"),
                "ApproximateFirstReceiveTimestamp": attributes.get("ApproximateFirstReceiveTimestamp", now_ms),
            },
            "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def _failed_ids(self, result: Any, messages: list[dict[str, Any]]) -> set[str]:
        if not self.source.report_batch_item_failures or not isinstance(result, dict):
            return set()
        failures = result.get("batchItemFailures") or []
        known = {message["MessageId"] for message in messages}
        failed = {str(failure.get("itemIdentifier")) for failure in failures}
        if failed - known:
            # Lambda treats an unknown or empty identifier as a failure of the whole batch.
            return known
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(chunk)],
            )
