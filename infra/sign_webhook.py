"""Sign a webhook body as a provider does, and print a ready-to-run curl command.

    python -m infra.sign_webhook --secret s3cr3t events/inbound_sms-sms.json
    python -m infra.sign_webhook --secret s3cr3t --path /api/webhooks/email body.json
    python -m infra.sign_webhook --secret s3cr3t --headers body.json     # only the two headers
    WEBHOOK_SECRET=s3cr3t python -m infra.sign_webhook body.json         # keeps the secret out of `ps`

The file is either a raw JSON body or a sample API Gateway event (its "body" is used). The signature is
HMAC-SHA256 over "<timestamp>.<body bytes>"; the body is sent byte for byte as signed (--data-binary).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import sys
from pathlib import Path

import infra.local_runner  # noqa: F401 - puts the shared layer on sys.path
from messaging.signatures import signature_headers


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The X-Signature-Timestamp and X-Signature headers for `body`."""
    return signature_headers(secret, body, timestamp)


def _body_of(path: Path) -> tuple[bytes, str | None]:
    document = json.loads(path.read_text())
    if isinstance(document, dict) and "requestContext" in document and "body" in document:
        body = document["body"] or ""
        raw = base64.b64decode(body) if document.get("isBase64Encoded") else body.encode()
        return raw, document.get("rawPath")
    return path.read_bytes().strip(), None


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="a JSON body, or a sample event from events/")
    parser.add_argument("--secret", help="the provider's signing secret (default: $WEBHOOK_SECRET)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="base URL of the API")
    parser.add_argument("--path", help="route (default: the event's path, else /api/webhooks/sms)")
    parser.add_argument("--timestamp", type=int, help="Unix seconds (default: now)")
    parser.add_argument("--headers", action="store_true", help="print only the signature headers")
    options = parser.parse_args(arguments)
    secret = options.secret or os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        parser.error("give the signing secret with --secret or in WEBHOOK_SECRET")
    body, event_path = _body_of(options.file)
    headers = sign(body, secret, options.timestamp)
    if options.headers:
        print("\n".join(f"{name}: {value}" for name, value in headers.items()))
        return 0
    path = options.path or event_path or "/api/webhooks/sms"
    command = ["curl", "-s", "-X", "POST", f"{options.url}{path}", "-H", "Content-Type: application/json"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["--data-binary", body.decode()]
    print(" ".join(shlex.quote(part) for part in command))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
