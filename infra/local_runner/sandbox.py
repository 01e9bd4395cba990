"""Execution environments as Lambda runs them: each one a worker process (infra/local_runner/worker.py)
serving one invocation at a time with its own module state; a function's pool grows on demand up to its
concurrency limit and reuses warm environments. The only implementation of execution environments: the
HTTP front, the SQS event source mappings, the schedules and the tests that need concurrency all use it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from infra.local_runner.apigw import LambdaContext
from infra.local_runner.template import ROOT, Function

log = logging.getLogger("local_runner.lambda")

DEFAULT_MAX_CONCURRENCY = 4  # per function, when the template sets no ReservedConcurrentExecutions
INIT_TIMEOUT_SECONDS = 60  # Lambda allows 10 s; a busy development machine needs more for a cold import


class FunctionError(Exception):
    """The invocation failed: the handler raised, the environment crashed, or the function timed out."""


def max_concurrency(function: Function) -> int:
    """The template's ReservedConcurrentExecutions, else RUNNER_MAX_CONCURRENCY, else the default."""
    if function.reserved_concurrency is not None:
        return max(1, function.reserved_concurrency)
    return max(1, int(os.environ.get("RUNNER_MAX_CONCURRENCY") or DEFAULT_MAX_CONCURRENCY))


class Environment:
    """One worker process and the socket the runner talks to it over."""

    def __init__(self, function: Function, environ: dict[str, str]) -> None:
        self.function = function
        parent, child = socket.socketpair()
        started = time.perf_counter()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own worker module
                [
                    sys.executable,
                    "-m",
                    "infra.local_runner.worker",
                    str(child.fileno()),
                    str(function.code_uri),
                    function.handler,
                    function.name,
                ],
                cwd=ROOT,
                env=environ,
                pass_fds=(child.fileno(),),
            )
        finally:
            child.close()
        self.connection = Connection(parent.detach())
        self.pid = self.process.pid
        self.init_duration_ms: float | None = None  # reported with the first invocation, as Lambda does
        try:
            if self.connection.poll(INIT_TIMEOUT_SECONDS):
                kind, detail = self.connection.recv()
            else:
                kind, detail = "init_error", f"no answer within {INIT_TIMEOUT_SECONDS} s"
        except (EOFError, OSError):
            kind, detail = "init_error", "the environment exited during init"
        if kind != "ready":
            self.stop(kill=True)
            raise FunctionError(f"{function.name} failed to initialize: {detail}")
        self.init_duration_ms = (time.perf_counter() - started) * 1000

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Any, context: LambdaContext) -> Any:
        # The function's timeout runs from the start of the invocation, after any cold start (as in Lambda).
        timeout = context.timeout_seconds
        fields = {
            "function_name": context.function_name,
            "timeout_seconds": timeout,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
        }
        try:
            self.connection.send((event, fields))
            if not self.connection.poll(timeout):
                self.stop(kill=True)  # Lambda ends a sandbox whose invocation times out
                raise FunctionError(f"{self.function.name} timed out after {timeout:.2f} s")
            kind, result = self.connection.recv()
        except (EOFError, OSError) as error:
            self.stop()
            code = self.process.returncode
            raise FunctionError(f"{self.function.name}: the execution environment exited (code {code})") from error
        if kind == "error":
            raise FunctionError(f"{self.function.name} raised {result}")
        return result

    def stop(self, kill: bool = False) -> None:
        """Close the socket (an idle worker exits on it); `kill` ends a worker that is busy or stuck."""
        self.connection.close()
        if kill and self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ExecutionEnvironments:
    """A function's environments: an idle one serves the next invocation; when all are busy a new one
    starts (a cold start) until the concurrency limit, beyond which invocations wait for one to free up.

    `environ` is what each worker process starts with (default: the runner's environment at that moment, less
    the variables template.yaml gives only to other functions: template.FunctionEnvironment)."""

    def __init__(self, function: Function, limit: int | None = None, environ: dict[str, str] | None = None) -> None:
        self.function = function
        self.limit = limit or max_concurrency(function)
        self._environ = environ
        self._idle: list[Environment] = []
        self._count = 0  # idle, busy and starting
        self._changed = threading.Condition()
        self._stopped = False

    def invoke(self, event: Any, context: LambdaContext) -> Any:
        environment = self._acquire()
        started = time.perf_counter()
        healthy = False
        try:
            result = environment.invoke(event, context)
            healthy = True
            return result
        except FunctionError:
            healthy = environment.alive
            raise
        finally:
            self._report(environment, context, (time.perf_counter() - started) * 1000)
            self._release(environment, healthy)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for environment in idle:
            environment.stop()

    def _acquire(self) -> Environment:
        with self._changed:
            while True:
                if self._stopped:
                    raise FunctionError(f"{self.function.name}: the runner is stopping")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        return environment
                    self._count -= 1  # ended outside the runner (killed): replace it
                if self._count < self.limit:
                    self._count += 1
                    break
                self._changed.wait()
        try:
            return Environment(self.function, dict(self.function.environ()) if self._environ is None else self._environ)
        except BaseException:
            self._release(None, False)
            raise

    def _release(self, environment: Environment | None, healthy: bool) -> None:
        with self._changed:
            if environment is not None and healthy and not self._stopped:
                self._idle.append(environment)
            else:
                self._count -= 1
            self._changed.notify()
        if environment is not None and (not healthy or self._stopped):
            environment.stop()

    def _report(self, environment: Environment, context: LambdaContext, duration_ms: float) -> None:
        init_ms, environment.init_duration_ms = environment.init_duration_ms, None
        if not log.isEnabledFor(logging.INFO):
            return
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        log.info(
            "REPORT RequestId: %s\t%s\tpid %d\tDuration: %.2f ms%s",
            context.aws_request_id,
            self.function.name,
            environment.pid,
            duration_ms,
            init,
        )
