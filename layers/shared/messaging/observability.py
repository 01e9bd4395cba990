"""Logger, Tracer and Metrics, created once and shared by every function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.tracing.tracer import Tracer

from messaging.powertools_adapter.tracing import tracing_disabled

SERVICE = "unified-messaging"
NAMESPACE = "UnifiedMessaging"

F = TypeVar("F", bound=Callable[..., Any])


class LazyTracer:
    """Powertools' Tracer, built only where tracing is on.

    Building a Tracer loads the X-Ray SDK and botocore (about 150 modules, a third of a handler's cold start)
    even when tracing is disabled. Whether tracing is on is known at import time, by Powertools' own rule
    (POWERTOOLS_TRACE_DISABLED, or not running in Lambda, or under `sam local`), so where it is off the
    decorators return the function untouched and nothing of X-Ray is imported; where it is on, this is
    exactly Powertools' Tracer.
    """

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Tracer | None = None
        self.enabled = not tracing_disabled()

    @property
    def tracer(self) -> Tracer:
        if self._tracer is None:
            self._tracer = Tracer(service=self._service)
        return self._tracer

    def capture_lambda_handler(self, handler: F) -> F:
        if not self.enabled:
            return handler
        traced: F = self.tracer.capture_lambda_handler(handler)  # type: ignore[assignment]
        return traced

    def capture_method(self, method: F) -> F:
        return self.tracer.capture_method(method) if self.enabled else method


logger = Logger(service=SERVICE)
tracer = LazyTracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
