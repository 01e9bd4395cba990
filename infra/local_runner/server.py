"""The HTTP side of the local runner: API Gateway HTTP API (payload 2.0) in front of in-process handlers."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from infra.local_runner import console, template
from infra.local_runner.apigw import LambdaContext, http_api_event, joined_headers
from infra.local_runner.openapi import combined_openapi, swagger_html

log = logging.getLogger("local_runner.http")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit


def _error_document(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()


class Gateway:
    """Routes requests to functions as API Gateway would, loading each handler once, on first use."""

    def __init__(self, application: template.Application) -> None:
        self.application = application
        self._environments = {
            name: template.ExecutionEnvironments(function) for name, function in application.functions.items()
        }
        self._openapi: bytes | None = None

    def handler(self, function_name: str) -> Any:
        """Invoke `function_name` in one of its execution environments (one invocation at a time each)."""
        return self._environments[function_name].invoke

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
        except Exception:
            log.exception("%s raised", route.function)
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


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "unified-messaging-local"
    gateway: Gateway

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        log.debug(format, *args)

    def address_string(self) -> str:
        return str(self.client_address[0])

    def _dispatch(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(413, [("Content-Type", "application/json")], _error_document("payload_too_large", "too large"))
            return
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._send(
                411, [("Content-Type", "application/json")], _error_document("length_required", "send Content-Length")
            )
            return
        body = self.rfile.read(length) if length else None
        headers = joined_headers(self.headers.items())
        status, response_headers, payload = self.server.gateway.handle(  # type: ignore[attr-defined]
            self.command, self.path, headers, body, self.client_address[0]
        )
        self._send(status, response_headers, payload)
        log.info("%s %s %d %.1fms", self.command, self.path, status, (time.perf_counter() - started) * 1000)

    def _send(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(payload)}"]
        lines.extend(f"{name}: {value}" for name, value in headers if name.lower() != "content-length")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + (b"" if self.command == "HEAD" else payload))  # one write: one packet

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the gateway, which answers 405 where a route has no such method.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, RequestHandler)
