"""`python -m infra.local_runner` (what `make run` does): the whole service on http://127.0.0.1:8080."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from infra.local_runner import template
from infra.local_runner.apigw import LambdaContext
from infra.local_runner.environment import prepare
from infra.local_runner.server import Gateway, serve
from infra.local_runner.sqs import EventSourceMapping

log = logging.getLogger("local_runner")


def _scheduled_event(function_name: str) -> dict[str, object]:
    return {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "resources": [f"arn:aws:scheduler:local:000000000000:schedule/default/{function_name}"],
        "detail": {},
    }


def _run_schedule(gateway: Gateway, schedule: template.Schedule, interval: float, stop: threading.Event) -> None:
    function = gateway.application.functions[schedule.function]
    while not stop.wait(interval):
        try:
            result = gateway.handler(function.name)(_scheduled_event(function.name), LambdaContext(function.name))
            log.info("%s: %s", function.name, result)
        except Exception:
            log.exception("%s failed; it runs again in %.0fs", function.name, interval)


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOCAL_RUNNER_LOG_LEVEL", "INFO"), format="%(asctime)s %(message)s")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    application = template.load()
    environment = prepare(application)
    gateway = Gateway(application)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    for source in application.sqs_sources:
        function = application.functions[source.function]
        mapping = EventSourceMapping(
            environment.sqs_client,
            environment.queue_urls[source.queue],
            gateway.handler(function.name),
            source,
            function,
            visibility_timeout=application.queues[source.queue].visibility_timeout,
        )
        workers.append(threading.Thread(target=mapping.run, args=(stop,), name=f"esm-{function.name}", daemon=True))
    interval_override = os.environ.get("SWEEP_INTERVAL_SECONDS")
    for schedule in application.schedules:
        interval = float(interval_override) if interval_override else schedule.rate_seconds
        workers.append(
            threading.Thread(
                target=_run_schedule,
                args=(gateway, schedule, interval, stop),
                name=f"schedule-{schedule.function}",
                daemon=True,
            )
        )

    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080"))
    base = f"http://{host}:{port}"
    # The API's own URL, which AWS gives MockReceiptFunction from the template: mock receipts come back here.
    # Set before any execution environment starts, so every one of them inherits it.
    os.environ.setdefault("API_BASE_URL", base)
    from messaging import runtime

    runtime.reset()
    for worker in workers:
        worker.start()
    log.info(
        "serving %d routes on %s (Swagger UI: %s/swagger, OpenAPI: %s/openapi.json)",
        len(application.routes),
        base,
        base,
        base,
    )
    log.info("database: %s", environment.database_url.split("@")[-1])
    log.info("SQS: %s", ", ".join(f"{name} {url}" for name, url in environment.queue_urls.items()))
    try:
        serve(gateway, host, port)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal that stopped it once it has shut down
    finally:
        log.info("stopping")
        stop.set()
        for worker in workers:
            worker.join(timeout=5)
        gateway.stop()
        environment.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
