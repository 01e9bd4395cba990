"""Prepares what the functions expect to find: a migrated database, the queues, and their environment."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from infra.local_runner import postgres, template
from infra.local_runner.sqs import create_queues, start_embedded_sqs

log = logging.getLogger("local_runner")

LOCAL_DATABASE = "messaging"
LOCAL_DEFAULTS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@dataclass
class LocalEnvironment:
    application: template.Application
    database_url: str
    sqs_client: Any
    queue_urls: dict[str, str]
    _stoppables: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for stoppable in reversed(self._stoppables):
            try:
                stoppable.stop()
            except Exception:  # noqa: BLE001 - closing down: report and carry on
                log.warning("could not stop %r", stoppable, exc_info=True)
        self._stoppables.clear()


def _database_url() -> str:
    given = os.environ.get("DATABASE_URL")
    if given:
        return given
    server = postgres.embedded_server_url("postgres")
    postgres.ensure_database(server, LOCAL_DATABASE)
    return postgres.with_database(server, LOCAL_DATABASE)


def function_environment(application: template.Application, queue_urls: dict[str, str]) -> dict[str, str]:
    """Every function's template environment with its references resolved locally (unresolvable ones dropped).
    os.environ gets the union; each function sees only its own part (template.FunctionEnvironment)."""
    references = {**application.parameter_defaults, **queue_urls}
    resolved: dict[str, str] = {}
    for function in application.functions.values():
        resolved.update(function.resolved_environment(references))
    return resolved


def prepare(application: template.Application) -> LocalEnvironment:
    """Database (given or embedded, migrated), SQS (given or embedded, queues created) and os.environ."""
    for name, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Locally, customer webhook endpoints are on this machine (a receiver on localhost): allow them, loudly.
    os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    if os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] == "true":
        log.warning("WEBHOOK_ALLOW_PRIVATE_TARGETS=true: webhook endpoints may be loopback and private addresses")
    # The template requires signed webhooks (a deploy without secrets fails closed); locally a provider with
    # no secret in the environment (SMS_WEBHOOK_SECRETS, EMAIL_WEBHOOK_SECRETS) may post unsigned: say so.
    os.environ.setdefault("WEBHOOK_SIGNATURES", "optional")
    if os.environ["WEBHOOK_SIGNATURES"] == "optional":
        log.warning(
            "WEBHOOK_SIGNATURES=optional: webhooks of a provider with no signing secret configured are accepted "
            "unsigned (WEBHOOK_SIGNATURES=required refuses them, as the template does in AWS)"
        )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the embedded SQS server's access log
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    stoppables: list[Any] = []
    database_url = _database_url()
    os.environ["DATABASE_URL"] = database_url

    endpoint = os.environ.get("SQS_ENDPOINT_URL")
    if not endpoint:
        sqs_server, endpoint = start_embedded_sqs()
        stoppables.append(sqs_server)
        os.environ["SQS_ENDPOINT_URL"] = endpoint
    import boto3

    sqs_client = boto3.client("sqs", endpoint_url=endpoint, region_name=os.environ["AWS_DEFAULT_REGION"])
    queue_urls = create_queues(sqs_client, application)
    for name, value in function_environment(application, queue_urls).items():
        os.environ.setdefault(name, value)

    from messaging import runtime
    from messaging.db.engine import get_engine
    from messaging.db.migrate import upgrade

    runtime.reset()  # whatever was read before the environment above was complete
    upgrade(get_engine())
    return LocalEnvironment(application, database_url, sqs_client, queue_urls, stoppables)
