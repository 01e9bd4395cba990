"""Cold start: importing each handler in a fresh interpreter, against importing only what it truly needs.

The floor of a function is the set of libraries its code path needs (Powertools' resolver or batch
utility, Logger/Tracer/Metrics, pydantic, SQLAlchemy, phonenumbers, email-validator, and boto3 only for
functions that touch SQS). Both are timed in the same run, alternating, several times; medians compared.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import ROOT, Figure, Report, median

HTTP_FLOOR = [
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.params",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk.core",
    "pydantic",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "phonenumbers",
    "email_validator",
]
SQS_FLOOR = [
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk.core",
    "pydantic",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "boto3",
]
READ_FLOOR = [name for name in HTTP_FLOOR if name not in ("phonenumbers", "email_validator")]
FLOORS = {
    "inbound_sms": HTTP_FLOOR,
    "inbound_email": HTTP_FLOOR,
    "conversations": READ_FLOOR,
    "send_message": [*HTTP_FLOOR, "boto3"],
    "send_retry": SQS_FLOOR,
    "retry_sweep": SQS_FLOOR,
}
NEVER_SQS = {"inbound_sms", "inbound_email", "conversations"}

_PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
{imports}
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "boto3": "boto3" in sys.modules, "alembic": "alembic" in sys.modules,
                  "pg8000": "pg8000" in sys.modules}}))
"""


def _probe(paths: list[str], imports: str) -> dict[str, float | bool]:
    code = _PROBE.format(paths=paths, imports=imports)
    environment = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench"}
    output = subprocess.run(  # noqa: S603 - our own probe
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment, cwd=ROOT
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(report: Report, repetitions: int = 7) -> None:
    layer = str(ROOT / "layers" / "shared")
    for function, floor in FLOORS.items():
        folder = str(ROOT / "functions" / function)
        handler_times, floor_times = [], []
        flags: dict[str, float | bool] = {}
        for _ in range(repetitions):
            flags = _probe([folder, layer], "import app")
            handler_times.append(float(flags["seconds"]) * 1000)
            floor_times.append(float(_probe([layer], "\n".join(f"import {name}" for name in floor))["seconds"]) * 1000)
        handler_ms, floor_ms = median(handler_times), median(floor_times)
        report.add(
            Figure(
                "cold start",
                f"{function}: import handler vs floor",
                handler_ms,
                "ms",
                floor_ms,
                "<=1.15x",
                handler_ms <= 1.15 * floor_ms,
            )
        )
        if function in NEVER_SQS:
            report.add(
                Figure(
                    "cold start",
                    f"{function}: boto3 imported at cold start",
                    float(flags["boto3"]),
                    "",
                    None,
                    "no",
                    not flags["boto3"],
                )
            )
        report.add(
            Figure(
                "cold start",
                f"{function}: alembic/pg8000 at cold start",
                float(bool(flags["alembic"])) + float(bool(flags["pg8000"])),
                "",
                None,
                "0",
                not flags["alembic"],
            )
        )
