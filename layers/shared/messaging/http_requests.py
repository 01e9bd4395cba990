"""Checks every API request passes before validation: body size, webhook signature, media type, JSON
syntax of the body, and query parameters the route declares."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from messaging.errors import InvalidInput, MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from messaging.signatures import WebhookVerifier

BODY_METHODS = {"POST", "PUT", "PATCH"}
JSON_MEDIA_TYPE = "application/json"


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            raise MalformedRequest("request body is not valid base64", field="body") from None
    return body.encode()


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The event's headers by lower-cased name. A name given twice in different cases (a direct invoke;
    API Gateway lower-cases names) is joined with a comma, as API Gateway joins a repeated header: no
    check ever decides by whichever copy happens to come last."""
    joined: dict[str, str] = {}
    for name, value in (event.get("headers") or {}).items():
        key = name.lower()
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def check_json_media_type(content_type: str) -> None:
    """One rule for every route: `application/json` in any case, with parameters (charset UTF-8 only)."""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON_MEDIA_TYPE} (got {media_type.strip()[:100] or 'none'})", field="Content-Type"
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("a JSON body must be UTF-8 (charset=utf-8)", field="Content-Type")


def check_envelope(
    event: dict[str, Any], verifier: WebhookVerifier | None, max_request_bytes: int, array_body: bool = False
) -> None:
    """Checks that come before validation: size, signature, media type and JSON syntax of a request body.
    Leaves the event as validation must read it: headers by lower-cased name, the body decoded text."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET").upper()
    if method not in BODY_METHODS:
        return
    raw = raw_body(event)
    if len(raw) > max_request_bytes:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {max_request_bytes}", field="body")
    headers = request_headers(event)
    if verifier is not None:
        verifier.verify(headers, raw)
    check_json_media_type(headers.get("content-type", ""))
    # Powertools parses the body only when the header starts with a lower-case "application/json": hand it
    # the canonical form of what was accepted here, so the two never disagree.
    headers["content-type"] = JSON_MEDIA_TYPE
    event["headers"] = headers
    if not raw.strip():
        raise MalformedRequest("request body is empty; a JSON object is required", field="body")
    try:
        text = raw.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259); refuse UTF-16/32 and stray bytes
    except UnicodeDecodeError:
        raise MalformedRequest("request body is not valid UTF-8", field="body") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise MalformedRequest(f"request body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise MalformedRequest("request body is nested too deeply", field="body") from None
    if array_body:  # a provider's event batch
        if not isinstance(document, list):
            raise MalformedRequest("request body must be a JSON array", field="body")
    elif not isinstance(document, dict):
        raise MalformedRequest("request body must be a JSON object", field="body")
    if event.get("isBase64Encoded"):
        event["body"] = text
        event["isBase64Encoded"] = False


def check_query(given: Iterable[str], declared: set[str]) -> None:
    """A query parameter the route's handler does not declare is a 422 naming it: a client whose filter
    is ignored would silently get everything."""
    for name in given:
        if name not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise InvalidInput(f"unknown query parameter '{name}' (this route accepts: {accepted})", field=name)
