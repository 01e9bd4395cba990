"""What every benchmark shares: a scratch database, the handlers, timing statistics, the report."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import infra.local_runner  # noqa: F401 - puts the shared layer on sys.path
from infra.local_runner import postgres, template
from infra.local_runner.apigw import LambdaContext

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


# Settings the functions require at cold start that no benchmarked request uses (nothing here fails a send
# over to the retry queue; without EVENT_QUEUE_URL events are left to the sweep, and without
# PROVIDER_RECEIPT_QUEUE_URL the mock providers post no receipts): unreachable stand-ins.
STAND_IN_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "SEND_RETRY_QUEUE_URL": "http://127.0.0.1:9/queue/SendRetryQueue",
    "SEND_RETRY_DLQ_URL": "http://127.0.0.1:9/queue/SendRetryDLQ",
    "API_BASE_URL": "http://127.0.0.1:9",
}


def configure_environment() -> None:
    """The process environment of a benchmark run: quiet logs, no metrics or tracing, dummy AWS credentials.
    Called by `bench.run` only: importing a bench module (the plan and statement tests do) changes nothing."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    for name, value in STAND_IN_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # The in-process webhook benchmarks post unsigned, as the local runner lets them (the template requires
    # signatures; a benchmark that wants them sets the secrets).
    os.environ.setdefault("WEBHOOK_SIGNATURES", "optional")


def server_url() -> str:
    given = (
        os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    )
    return given or postgres.embedded_server_url("bench-postgres")


@contextmanager
def scratch_database(name: str, migrate: bool = True) -> Iterator[str]:
    """A fresh database on the benchmark server, migrated, dropped afterwards."""
    from messaging.db.engine import get_engine
    from messaging.db.migrate import upgrade

    server = server_url()
    url = postgres.recreate_database(server, f"bench_{name}_{os.getpid()}")
    use_database(url)
    try:
        if migrate:
            upgrade(get_engine())
        yield url
    finally:
        use_database(None)
        postgres.drop_database(server, f"bench_{name}_{os.getpid()}")


def use_database(url: str | None) -> None:
    """Point the service's settings and engine at `url` (None: forget it)."""
    from messaging import runtime

    if url is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = url
    runtime.reset()


def event(name: str, **body_changes: Any) -> dict[str, Any]:
    document = json.loads((EVENTS / f"{name}.json").read_text())
    if body_changes:
        document["body"] = json.dumps({**json.loads(document["body"]), **body_changes})
    return document


def handler(function: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    application = template.load()
    spec = application.functions[function]
    lambda_handler = template.load_handler(spec)
    return lambda event_: lambda_handler(event_, LambdaContext(function_name=function))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(action: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


@dataclass
class Figure:
    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def table(self) -> str:
        lines = [f"{'section':<12} {'figure':<46} {'value':>12} {'baseline':>12} {'ratio':>7}  target   met"]
        for figure in self.figures:
            ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else ""
            baseline = f"{figure.baseline:.3f}" if figure.baseline is not None else ""
            met = {True: "yes", False: "NO", None: ""}[figure.met]
            lines.append(
                f"{figure.section:<12} {figure.name:<46} {figure.value:>10.3f}{figure.unit:>2} {baseline:>12} "
                f"{ratio:>7}  {figure.target:<8} {met}"
            )
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": [{**figure.__dict__, "ratio": figure.ratio} for figure in self.figures],
            "details": self.details,
        }
