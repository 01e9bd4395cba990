"""The HTTP side of the local runner: API Gateway HTTP API (payload 2.0) in front of the functions'
execution environments (worker processes, infra/local_runner/sandbox.py), served by uvicorn."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from infra.local_runner import console, template
from infra.local_runner.apigw import LambdaContext, http_api_event
from infra.local_runner.openapi import combined_openapi, swagger_html
from infra.local_runner.sandbox import ExecutionEnvironments, FunctionError
from messaging.http_errors import error_body

log = logging.getLogger("local_runner.http")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
MAX_HEAD_BYTES = 64 * 1024  # request line and headers
IDLE_TIMEOUT_SECONDS = 5.0  # a connection must send a whole request head this soon after opening or answering
BODY_TIMEOUT_SECONDS = 30.0  # and its body this soon after the head (API Gateway's own integration limit)


def _error_document(code: str, message: str, field: str | None = None) -> bytes:
    return error_body(code, message, field).encode()  # the functions' own error shape


class Gateway:
    """Routes requests to functions as API Gateway would, loading each handler once, on first use."""

    def __init__(self, application: template.Application) -> None:
        self.application = application
        self._environments = {name: ExecutionEnvironments(function) for name, function in application.functions.items()}
        self._openapi: bytes | None = None

    def handler(self, function_name: str) -> Any:
        """Invoke `function_name` in one of its execution environments (one invocation at a time each)."""
        return self._environments[function_name].invoke

    def stop(self) -> None:
        """End every execution environment (their worker processes)."""
        for environments in self._environments.values():
            environments.stop()

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = json.dumps(combined_openapi(self.application)).encode()
        return self._openapi

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None, client_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        url = urlsplit(target)
        matched = self.application.route_for(method, url.path)
        if matched is None:
            return self._builtin(method, url.path)
        route, path_parameters = matched
        event = http_api_event(
            method,
            url.path,
            route_key=route.route_key,
            body=body if body else None,
            headers=headers,
            query=url.query,
            path_parameters=path_parameters or None,
            source_ip=client_ip,
        )
        function = self.application.functions[route.function]
        try:
            result = self.handler(route.function)(event, LambdaContext(function.name, function.timeout))
        except FunctionError as error:
            # API Gateway answers a failed invocation (an error, a crash, a timeout) with a bare 500.
            log.error("%s", error)
            return (
                500,
                [("Content-Type", "application/json")],
                _error_document("internal_error", "Internal Server Error"),
            )
        return _http_response(result)

    def _builtin(self, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if (served := console.respond(method, path)) is not None:
            return served
        if method == "GET" and path == "/openapi.json":
            return 200, [("Content-Type", "application/json")], self.openapi()
        if method == "GET" and path in ("/swagger", "/docs"):
            page = swagger_html(json.loads(self.openapi())).encode()
            return 200, [("Content-Type", "text/html; charset=utf-8")], page
        matching = [route for route in self.application.routes if route.match(route.method, path) is not None]
        # The most specific matching path template wins (routes are sorted literal-first), as in API Gateway.
        allowed = sorted({route.method for route in matching if route.path == matching[0].path}) if matching else []
        if allowed:
            return (
                405,
                [("Content-Type", "application/json"), ("Allow", ", ".join(allowed))],
                _error_document("method_not_allowed", f"{method} is not allowed on {path}; use {', '.join(allowed)}"),
            )
        return (
            404,
            [("Content-Type", "application/json")],
            _error_document("not_found", f"no route for {method} {path}"),
        )


def _http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Lambda's payload-2.0 response format back to HTTP (a bare value means 200 with it as JSON)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
    headers = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(value)) for value in values)
    headers.extend(("Set-Cookie", cookie) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, payload


def _json_response(
    status: int, code: str, message: str, field: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    return (
        status,
        [("Content-Type", "application/json"), ("Connection", "close")],
        _error_document(code, message, field),
    )


class GatewayApp:
    """The ASGI application: reads a request, hands it to the Gateway on a thread (an invocation blocks on
    its worker process), writes the answer. Payload limits are checked before any body is read."""

    def __init__(self, gateway: Gateway, invokers: int = 64) -> None:
        self.gateway = gateway
        # Enough threads for every environment of several functions to be busy at once; the functions'
        # concurrency limits, not this pool, bound how many invocations run.
        self._executor = ThreadPoolExecutor(max_workers=invokers, thread_name_prefix="invoke")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method = scope["method"]
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value  # as API Gateway joins them
        answer = await self._answer(method, target, headers, receive, scope["client"])
        status, response_headers, payload = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response_headers
                ]
                + [(b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        log.info("%s %s %d %.1fms", method, target, status, (time.perf_counter() - started) * 1000)

    async def _answer(
        self, method: str, target: str, headers: dict[str, str], receive: Any, client: tuple[str, int] | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return _json_response(411, "length_required", "send Content-Length", "Transfer-Encoding")
        # The parser has already refused a Content-Length that is not one decimal number.
        length = int(headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            message = f"request body is {length} bytes; the gateway's limit is {MAX_PAYLOAD_BYTES}"
            return _json_response(413, "payload_too_large", message, "body")
        chunks: list[bytes] = []
        more = True
        try:
            while more:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_SECONDS)
                if message["type"] == "http.disconnect":
                    return _json_response(400, "malformed_request", "the client closed before sending its body")
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
        except TimeoutError:
            return _json_response(408, "request_timeout", "the request body did not arrive in time", "body")
        body = b"".join(chunks)
        loop = asyncio.get_running_loop()
        client_ip = client[0] if client else "127.0.0.1"
        return await loop.run_in_executor(
            self._executor, self.gateway.handle, method, target, headers, body or None, client_ip
        )


class StrictHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol over httptools (llhttp, Node.js's parser), chosen over h11 for speed: the runner
    is benchmarked, and llhttp is as strict (it refuses a Content-Length that is not one decimal number,
    conflicting Content-Length / Transfer-Encoding, bad chunking, bare LF framing). Added here: the one
    JSON error shape for framing errors, a limit on the request head, and a deadline for the head of every
    request (uvicorn only times out a connection that sent nothing after a response, not one that
    connects and waits or trickles its headers)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            detail = str(error)
            field = next((name for name in ("Content-Length", "Transfer-Encoding") if name in detail), None)
            self._refuse(400, "malformed_request", f"malformed HTTP request: {detail}", field)
            return
        if self._head_deadline is not None:  # these bytes did not complete a request head
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, "headers_too_large", f"the request head exceeds {MAX_HEAD_BYTES} bytes", None)

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request already started
        if idle and not self.transport.is_closing():
            self._arm_head_deadline()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "malformed_request", msg, None)

    def _refuse(self, status: int, code: str, message: str, field: str | None) -> None:
        self._cancel_head_deadline()
        body = _error_document(code, message, field)
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)
        self.transport.close()

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_bytes = 0
        self._head_deadline = self.loop.call_later(IDLE_TIMEOUT_SECONDS, self.timeout_keep_alive_handler)

    def _cancel_head_deadline(self) -> None:
        if getattr(self, "_head_deadline", None) is not None:
            self._head_deadline.cancel()  # type: ignore[union-attr]
            self._head_deadline = None


_REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large"}


def serve(gateway: Gateway, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's handlers: stop accepting, finish the requests in flight)."""
    import uvicorn

    app = GatewayApp(gateway)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=StrictHttpProtocol,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        headers=[("server", "unified-messaging-local")],
        timeout_keep_alive=int(IDLE_TIMEOUT_SECONDS),
        timeout_graceful_shutdown=5,
        backlog=128,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        app.close()
