"""Throughput through HTTP: a keep-alive load client (asyncio, loopback only, bounded in time and count)
against `python -m infra.local_runner`, for inbound webhooks and page reads (50 conversations, 50 messages),
at 1 and 4 connections: first with the runner pinned to one core (the client has the other; the figures the
comparable service was measured by), then with the runner on both cores (sharing them with the client)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import ROOT, STAND_IN_ENVIRONMENT, Figure, Report, percentile, scratch_database
from bench.common import event as sample

CONNECTIONS = (1, 4)
DURATION_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "8"))
MAX_REQUESTS = 50_000


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection to the runner, each request sent at once (no Nagle delay)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response: its status and body (Content-Length framing, as the runner answers)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the connection closed")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def _load(port: int, make_request, deadline: float, budget: itertools.count) -> tuple[list[float], int]:
    reader, writer = await connect(port)
    latencies, errors = [], 0
    try:
        while time.perf_counter() < deadline and next(budget) < MAX_REQUESTS:
            started = time.perf_counter()
            writer.write(make_request())
            status, _ = await read_reply(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status >= 400
    finally:
        writer.close()
    return latencies, errors


async def _run(port: int, make_request, connections: int, seconds: float = DURATION_SECONDS) -> LoadResult:
    started = time.perf_counter()
    deadline = started + seconds
    budget = itertools.count()
    parts = await asyncio.gather(*(_load(port, make_request, deadline, budget) for _ in range(connections)))
    seconds = time.perf_counter() - started
    latencies = [latency for part, _ in parts for latency in part]
    return LoadResult(len(latencies), seconds, latencies, sum(errors for _, errors in parts))


def start_runner(database_url: str, port: int, cores: str | None = "0") -> subprocess.Popen[bytes]:
    """The local runner on `cores` (taskset's list; None: every core), quiet, ready to serve."""
    # The runner resolves the queues itself (embedded SQS): not the in-process benchmarks' stand-ins.
    inherited = {name: value for name, value in os.environ.items() if name not in STAND_IN_ENVIRONMENT}
    environment = {
        **inherited,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "LOCAL_RUNNER_LOG_LEVEL": "WARNING",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "infra.local_runner"]
    if cores is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cores, *command]  # the server on one core, the client on the other
    process = subprocess.Popen(  # noqa: S603 - our own runner
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(request("GET", "/health"))
                if b" 200 " in connection.recv(200):
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the local runner did not start")


# The comparable service of the performance issue (FastAPI + uvicorn with one worker, asyncpg, Redis caching
# reads), measured on this kind of machine with its server pinned to one core, doing the same work on the
# same PostgreSQL: the upper end of each measured range, so that "5x" is never flattered. They are absolute
# references for this machine; run against run, compare the ratios to the bare insert measured here.
COMPARABLE_PER_SECOND = {
    ("webhooks", 1): 104.0,
    ("webhooks", 4): 138.0,
    ("conversations", 4): 228.0,
}
TARGET_TIMES_COMPARABLE = 5.0
TARGET_P99_OVER_P50 = 3.0
CONTACTS = 200  # distinct senders: as many conversations, so a page of 50 conversations is full


def measure(report: Report, bare_insert_ms: float) -> None:
    sms = json.loads(sample("inbound_sms-sms")["body"])
    ids = itertools.count()

    def webhook() -> bytes:
        n = next(ids)
        body = {**sms, "from": f"+1804555{n % CONTACTS:04d}", "messaging_provider_id": f"load-{n}"}
        return request("POST", "/api/webhooks/sms", json.dumps(body).encode())

    def conversations() -> bytes:
        return request("GET", "/api/conversations?limit=50")

    def messages() -> bytes:
        return request("GET", "/api/conversations/1/messages?limit=50")

    loads = {"webhooks": webhook, "conversations": conversations, "messages": messages}
    bare_rate = 1000 / bare_insert_ms
    report.add(Figure("http", "bare insert+commit rate (baseline)", bare_rate, "/s"))
    for cores, label in (("0", "runner on one core"), (None, "runner on both cores")):
        with scratch_database("http") as database_url:
            port = free_port()
            runner = start_runner(database_url, port, cores)
            try:
                for make_request in loads.values():  # warm up: every execution environment, connections
                    asyncio.run(_run(port, make_request, max(CONNECTIONS), seconds=2))
                results = {
                    (name, connections): asyncio.run(_run(port, make_request, connections))
                    for connections in CONNECTIONS
                    for name, make_request in loads.items()
                }
            finally:
                runner.terminate()
                runner.wait(timeout=30)
        for (name, connections), result in results.items():
            _report(report, label, name, connections, result, bare_rate, compare=cores is not None)


def _report(
    report: Report, label: str, name: str, connections: int, result: LoadResult, bare_rate: float, compare: bool
) -> None:
    what = {"webhooks": "POST /api/webhooks/sms", "conversations": "GET /api/conversations?limit=50"}.get(
        name, "GET /api/conversations/1/messages?limit=50"
    )
    where = f"{connections} connection{'s' if connections > 1 else ''}, {label}"
    p50, p99 = percentile(result.latencies_ms, 0.5), percentile(result.latencies_ms, 0.99)
    comparable = COMPARABLE_PER_SECOND.get((name, connections)) if compare else None
    target = f">={TARGET_TIMES_COMPARABLE:g}x comparable {comparable:g}/s" if comparable else ""
    report.add(
        Figure(
            "http",
            f"{what}/s, {where}",
            result.rate,
            "/s",
            comparable if comparable else bare_rate,
            target,
            result.rate >= TARGET_TIMES_COMPARABLE * comparable if comparable else None,
            f"errors={result.errors}; baseline: {'comparable service' if comparable else 'bare insert+commit rate'}",
        )
    )
    report.add(Figure("http", f"{what} p50, {where}", p50, "ms"))
    jitter_target = connections > 1 and compare
    report.add(
        Figure(
            "http",
            f"{what} p99, {where}",
            p99,
            "ms",
            p50,
            f"<={TARGET_P99_OVER_P50:g}x p50" if jitter_target else "",
            p99 <= TARGET_P99_OVER_P50 * p50 if jitter_target else None,
        )
    )
