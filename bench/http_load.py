"""Throughput through HTTP: a keep-alive load client (asyncio, loopback only, bounded in time and count)
against `python -m infra.local_runner` pinned to one core, for inbound webhooks and page reads."""

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

from bench.common import ROOT, Figure, Report, percentile, scratch_database
from bench.common import event as sample

CONNECTIONS = 4
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(port: int, make_request, deadline: float, budget: itertools.count) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies, errors = [], 0
    try:
        while time.perf_counter() < deadline and next(budget) < MAX_REQUESTS:
            started = time.perf_counter()
            writer.write(make_request())
            status = await _read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += status >= 400
    finally:
        writer.close()
    return latencies, errors


async def _run(port: int, make_request) -> LoadResult:
    started = time.perf_counter()
    deadline = started + DURATION_SECONDS
    budget = itertools.count()
    parts = await asyncio.gather(*(_load(port, make_request, deadline, budget) for _ in range(CONNECTIONS)))
    seconds = time.perf_counter() - started
    latencies = [latency for part, _ in parts for latency in part]
    return LoadResult(len(latencies), seconds, latencies, sum(errors for _, errors in parts))


def _start_runner(database_url: str, port: int) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "LOCAL_RUNNER_LOG_LEVEL": "WARNING",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "infra.local_runner"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]  # the server on one core, the client on the other
    process = subprocess.Popen(  # noqa: S603 - our own runner
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(_request("GET", "/health"))
                if b" 200 " in connection.recv(200):
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the local runner did not start")


def measure(report: Report, bare_insert_ms: float) -> None:
    sms = json.loads(sample("inbound_sms-sms")["body"])
    ids = itertools.count()

    def webhook() -> bytes:
        body = json.dumps({**sms, "messaging_provider_id": f"load-{next(ids)}"}).encode()
        return _request("POST", "/api/webhooks/sms", body)

    def page() -> bytes:
        return _request("GET", "/api/conversations/1/messages?limit=50")

    with scratch_database("http") as database_url:
        port = _free_port()
        runner = _start_runner(database_url, port)
        try:
            asyncio.run(_run(port, webhook))  # warm up: first imports, connections
            webhooks = asyncio.run(_run(port, webhook))
            pages = asyncio.run(_run(port, page))
        finally:
            runner.terminate()
            runner.wait(timeout=30)
    bare_rate = 1000 / bare_insert_ms
    report.add(Figure("http", "bare insert+commit rate (baseline)", bare_rate, "/s"))
    report.add(
        Figure(
            "http",
            f"webhooks/s through the runner ({CONNECTIONS} connections)",
            webhooks.rate,
            "/s",
            bare_rate,
            ">=0.40x",
            webhooks.rate >= 0.4 * bare_rate,
            f"errors={webhooks.errors}",
        )
    )
    report.add(Figure("http", "webhook p99", percentile(webhooks.latencies_ms, 0.99), "ms"))
    report.add(
        Figure(
            "http", "page reads/s through the runner", pages.rate, "/s", bare_rate, "", None, f"errors={pages.errors}"
        )
    )
    report.add(Figure("http", "page read p99", percentile(pages.latencies_ms, 0.99), "ms"))
