"""Cold start: importing each handler in a fresh interpreter, against importing only what it truly needs.

The floor of a function is the set of libraries it cannot do without: pydantic, SQLAlchemy, the pg8000
driver and Powertools' resolver (or, for an SQS consumer, its batch utility). Logging and metrics come with
Powertools; tracing (the X-Ray SDK and botocore) is loaded only where tracing is on, and its extra cost is
reported separately. Address parsing, boto3 and the driver are loaded on first use by the handlers. Both
sides are timed in the same run, alternating, several times; medians compared, of wall time and of the
interpreter's CPU time (which a busy shared machine disturbs far less than wall time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.common import ROOT, STAND_IN_ENVIRONMENT, Figure, Report, median

COMMON_FLOOR = [
    # `import pydantic` alone loads almost nothing (its attributes are lazy): the floor loads what the
    # code uses, models with fields and validators.
    "pydantic.main",
    "pydantic.fields",
    "pydantic.functional_validators",
    "sqlalchemy",
    "sqlalchemy.dialects.postgresql",
    "pg8000",
]
HTTP_FLOOR = [
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.params",
    *COMMON_FLOOR,
]
SQS_FLOOR = ["aws_lambda_powertools.utilities.batch", *COMMON_FLOOR]
FLOORS = {
    "inbound_sms": HTTP_FLOOR,
    "inbound_email": HTTP_FLOOR,
    "conversations": HTTP_FLOOR,
    "send_message": HTTP_FLOOR,
    "webhook_endpoints": HTTP_FLOOR,
    "send_retry": SQS_FLOOR,
    "retry_sweep": SQS_FLOOR,
    "mock_receipt": SQS_FLOOR,
    "event_dispatch": SQS_FLOOR,
    # Invoked once per deploy, to run Alembic: Alembic is what it is for.
    "migrate": ["aws_lambda_powertools.logging", *COMMON_FLOOR, "alembic.command", "alembic.config"],
}
# What a function may load at cold start although the other functions must not: its floor.
ALLOWED_AT_COLD_START = {"migrate": {"alembic"}}
# Loaded on first use, not at cold start, by design: address parsing, the SQS client, the database driver.
LAZY = ("phonenumbers", "email_validator", "boto3", "pg8000")
TRACING = ("aws_xray_sdk", "aws_xray_sdk.core", "botocore.session")
NEVER_SQS = {"inbound_sms", "inbound_email", "conversations"}

_PROBE = """
import json, sys, time
sys.path[:0] = {paths!r}
started, started_cpu = time.perf_counter(), time.process_time()
{imports}
elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
loaded = sorted(name for name in {watched!r} if name in sys.modules)
print(json.dumps({{"seconds": elapsed, "cpu_seconds": elapsed_cpu, "loaded": loaded}}))
"""


# What the functions' settings require at cold start (validated there), as stand-ins: nothing is reached.
FUNCTION_ENVIRONMENT = {"DATABASE_URL": "postgresql://bench@127.0.0.1:9/bench", **STAND_IN_ENVIRONMENT}
# What Lambda sets that turns Powertools' tracing on (it is off outside Lambda).
TRACING_ON = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}


def _probe(
    paths: list[str],
    imports: str,
    environment_extra: dict[str, str] | None = None,
    watched: tuple[str, ...] = (*LAZY, *TRACING, "alembic"),
) -> dict[str, Any]:
    """Import `imports` in a fresh interpreter: the time it took and which of `watched` it loaded."""
    code = _PROBE.format(paths=paths, imports=imports, watched=list(watched))
    environment = {"PATH": "/usr/bin:/bin", "POWERTOOLS_SERVICE_NAME": "bench", **FUNCTION_ENVIRONMENT}
    environment.update(environment_extra or {})
    output = subprocess.run(  # noqa: S603 - our own probe
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment, cwd=ROOT
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure(report: Report, repetitions: int = 9) -> None:
    layer = str(ROOT / "layers" / "shared")
    for function, floor in FLOORS.items():
        folder = str(ROOT / "functions" / function)
        handler_times, floor_times, traced_times, handler_cpu, floor_cpu = [], [], [], [], []
        loaded: list[str] = []
        for _ in range(repetitions):
            probe = _probe([folder, layer], "import app")
            loaded = probe["loaded"]
            handler_times.append(float(probe["seconds"]) * 1000)
            handler_cpu.append(float(probe["cpu_seconds"]) * 1000)
            floor_probe = _probe([layer], "\n".join(f"import {name}" for name in floor))
            floor_times.append(float(floor_probe["seconds"]) * 1000)
            floor_cpu.append(float(floor_probe["cpu_seconds"]) * 1000)
            traced_times.append(float(_probe([folder, layer], "import app", TRACING_ON)["seconds"]) * 1000)
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
        handler_cpu_ms, floor_cpu_ms = median(handler_cpu), median(floor_cpu)
        report.add(
            Figure(
                "cold start",
                f"{function}: import handler vs floor, CPU time",
                handler_cpu_ms,
                "ms",
                floor_cpu_ms,
                "<=1.15x",
                handler_cpu_ms <= 1.15 * floor_cpu_ms,
            )
        )
        report.add(Figure("cold start", f"{function}: with tracing on, vs floor", median(traced_times), "ms", floor_ms))
        lazy_loaded = [
            name
            for name in loaded
            if (name != "boto3" or function in NEVER_SQS) and name not in ALLOWED_AT_COLD_START.get(function, ())
        ]
        report.add(
            Figure(
                "cold start",
                f"{function}: boto3/driver/alembic/X-Ray at cold start",
                float(len(lazy_loaded)),
                "",
                None,
                "0",
                not lazy_loaded,
                ",".join(lazy_loaded),
            )
        )
