"""A small HTTP client for the end-to-end tests (standard library only)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def call(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | list[Any] | bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Response:
    """One request on a fresh connection. A dict or list body is sent as JSON with its content type."""
    request_headers = dict(headers or {})
    payload: bytes | None
    if isinstance(body, dict | list):
        payload = json.dumps(body).encode()
        request_headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = body
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=request_headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        return Response(response.status, {name.lower(): value for name, value in response.getheaders()}, text)
    finally:
        connection.close()
