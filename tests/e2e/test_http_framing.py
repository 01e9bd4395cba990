"""HTTP framing over raw sockets: malformed framing is a 400 in the error shape that writes nothing, and
idle or stalled connections are closed by the runner rather than held forever."""

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.conftest import sample_body

pytestmark = pytest.mark.e2e

BODY = json.dumps(sample_body("inbound_sms-sms")).encode()
PATIENCE = 30  # seconds a test waits for the runner's answer before calling it hung (not a speed target)


def connect(runner_url: str) -> socket.socket:
    parts = urlsplit(runner_url)
    connection = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1x", b"+5", b"5, 6"])
def test_a_malformed_content_length_is_a_400_that_stores_nothing(runner_url, runner_db, length):
    with connect(runner_url) as connection:
        connection.sendall(
            b"POST /api/webhooks/sms HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n\r\n" + BODY
        )
        # The client keeps its side open: the answer must come without waiting for it to close.
        response = read_until_closed(connection)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    error = json.loads(body)["error"]
    assert (error["code"], error["field"]) == ("malformed_request", "Content-Length")
    assert set(runner_db.counts().values()) == {0}


def test_a_body_over_the_gateway_limit_is_a_413_naming_body_before_it_is_read(runner_url, runner_db):
    with connect(runner_url) as connection:
        connection.sendall(
            b"POST /api/webhooks/sms HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n" + BODY
        )
        response = read_until_closed(connection)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    error = json.loads(body)["error"]
    assert (error["code"], error["field"]) == ("payload_too_large", "body")
    assert "20000000" in error["message"]
    assert set(runner_db.counts().values()) == {0}


def test_a_connection_that_sends_nothing_is_closed(runner_url):
    with connect(runner_url) as connection:
        assert read_until_closed(connection) == b""


def test_a_connection_that_stalls_inside_its_request_head_is_closed(runner_url, runner_db):
    with connect(runner_url) as connection:
        connection.sendall(b"POST /api/webhooks/sms HTTP/1.1\r\nHost: local\r\nContent-Le")
        assert read_until_closed(connection) == b""
    assert set(runner_db.counts().values()) == {0}


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(runner_url):
    with connect(runner_url) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: local\r\n\r\n")
        response = read_until_closed(connection)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.count(b"HTTP/1.1 ") == 1
