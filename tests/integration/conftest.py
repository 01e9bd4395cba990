"""Fixtures for the send path: configuration switches, moto SQS queues from template.yaml, a retry drain."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from infra.local_runner import template
from infra.local_runner.apigw import LambdaContext


def _refresh_configuration(changed: set[str] | None = None) -> None:
    """Make the service read its settings again. The mock providers (external systems, with a fault script
    that runs across calls) start over only when their own settings changed (None: everything changed)."""
    from messaging import runtime

    mocks_changed = changed is None or any(name.startswith("MOCK_") for name in changed)
    runtime.reset(keep=lambda key: not mocks_changed and isinstance(key, tuple) and key[0] == "provider")


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set environment variables for this test and make the service read them again."""

    def apply(**environment: Any) -> None:
        for name, value in environment.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        _refresh_configuration(set(environment))

    yield apply
    monkeypatch.undo()
    _refresh_configuration()


@pytest.fixture
def one_connection_engine(configure, database_url):
    """The service's engine with a single pooled connection, so every statement reuses it."""
    from messaging.db import engine

    configure(DATABASE_POOL_SIZE=1)
    yield engine.get_engine()
    configure(DATABASE_POOL_SIZE=None)


@dataclass
class Queues:
    client: Any
    retry_url: str
    dlq_url: str

    def messages(self, url: str) -> list[dict[str, Any]]:
        """Every message currently in a queue, delays and visibility ignored (moto reads them all)."""
        attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return [
            {
                "visible": int(attributes["ApproximateNumberOfMessages"]),
                "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
            }
        ]

    def depth(self, url: str) -> int:
        counts = self.messages(url)[0]
        return counts["visible"] + counts["in_flight"] + counts["delayed"]

    def receive_all(self, url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = self.client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=300
            ).get("Messages", [])
            if not batch:
                return received
            received.extend(batch)


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """moto's SQS as a server, so that worker processes (concurrent_invoke) reach the same queues."""
    from infra.local_runner.sqs import start_embedded_sqs

    server, endpoint = start_embedded_sqs()
    yield endpoint
    server.stop()


@pytest.fixture
def queues(configure: Callable[..., None], application: template.Application, sqs_endpoint: str) -> Iterator[Queues]:
    """SendRetryQueue and SendRetryDLQ in moto, shaped as template.yaml declares them, empty for each test."""
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=sqs_endpoint)
    for url in client.list_queues().get("QueueUrls", []):
        client.delete_queue(QueueUrl=url)
    retry = application.queues["SendRetryQueue"]
    dlq_url = client.create_queue(QueueName="SendRetryDLQ")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    retry_url = client.create_queue(
        QueueName="SendRetryQueue",
        Attributes={
            "VisibilityTimeout": str(retry.visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": retry.max_receive_count}),
        },
    )["QueueUrl"]
    configure(SEND_RETRY_QUEUE_URL=retry_url, SEND_RETRY_DLQ_URL=dlq_url, SQS_ENDPOINT_URL=sqs_endpoint)
    yield Queues(client, retry_url, dlq_url)


def sqs_event(records: list[dict[str, Any]], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:SendRetryQueue"):
    """A Lambda SQS event for received messages (or for {"body": ...} dicts built by a test)."""
    return {
        "Records": [
            {
                "messageId": record.get("MessageId", f"test-{index}"),
                "receiptHandle": record.get("ReceiptHandle", f"handle-{index}"),
                "body": record.get("Body", record.get("body")),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "test",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for index, record in enumerate(records)
        ]
    }


@pytest.fixture
def retry_consumer(invoke: Callable[..., dict[str, Any]]) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    def consume(records: list[dict[str, Any]]) -> dict[str, Any]:
        return invoke("SendRetryFunction", sqs_event(records))

    return consume


@pytest.fixture
def drain(queues: Queues, application: template.Application, database_url: str) -> Callable[..., int]:
    """Drive SendRetryFunction from the retry queue as Lambda's event source mapping does, until idle."""
    from infra.local_runner.sqs import EventSourceMapping

    function = application.functions["SendRetryFunction"]
    source = next(source for source in application.sqs_sources if source.function == "SendRetryFunction")
    mapping = EventSourceMapping(
        queues.client,
        queues.retry_url,
        template.load_handler(function),
        source,
        function,
        visibility_timeout=application.queues["SendRetryQueue"].visibility_timeout,
    )

    def run(max_rounds: int = 500, until: Callable[[], bool] | None = None, timeout: float = 120.0) -> int:
        """Poll until the queue has nothing visible, or, given `until`, until that holds (records still
        delayed or postponed are waited for, by long polls)."""
        delivered = 0
        if until is not None:
            deadline = time.monotonic() + timeout
            while not until():
                if time.monotonic() > deadline:
                    raise AssertionError(f"the retry queue did not get there in {timeout}s")
                delivered += mapping.poll_once(wait_seconds=1)
            return delivered
        for _ in range(max_rounds):
            batch = mapping.poll_once()
            delivered += batch
            if batch == 0:
                return delivered
        raise AssertionError("the retry queue did not drain")

    return run


def context(function: str) -> LambdaContext:
    return LambdaContext(function_name=function)
