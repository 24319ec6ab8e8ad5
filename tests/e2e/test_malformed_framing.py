"""Issue 18, F9: a request whose chunked framing is malformed is answered 400, not 500, by the real
server (`broker up`: granian). Granian ends such a body with ``http.disconnect``; Litestar's body
read then raises, and the app answers that as a client error (broker.api.errors.framing_error)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
from support_server import running_broker
from support_stack import PG_URL, database

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

BAD_BODIES = {
    "chunk size not hexadecimal": b"ZZZ\r\n{}\r\n0\r\n\r\n",
    "chunk without its CRLF": b"2\r\n{}XX0\r\n\r\n",
    "negative chunk size": b"-1\r\n{}\r\n0\r\n\r\n",
}


def _raw(port: int, head: str, body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while chunk := s.recv(65536):  # the server closes the connection after its answer
            answer += chunk
        return answer


@pytest.fixture(params=BACKENDS)
def db_env(request: pytest.FixtureRequest, tmp_path):
    """SQLite: the file `broker up` makes; PostgreSQL: a throw-away database (what is written is checked)."""
    if request.param == "sqlite":
        yield {}
        return
    with database("postgresql", tmp_path) as url:
        yield {"BROKER_DATABASE_URL": url}


def test_malformed_chunked_bodies_are_answered_400(tmp_path, db_env):
    with running_broker(tmp_path, **db_env) as broker:
        port = urlsplit(broker.url).port
        assert port is not None
        for name, body in BAD_BODIES.items():
            head = (f"POST /v1/organizations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {broker.admin_key}\r\n"
                    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n")
            answer = _raw(port, head, body)
            status_line = answer.split(b"\r\n", 1)[0]
            assert status_line == b"HTTP/1.1 400 Bad Request", (name, answer[:400])
            assert b"application/problem+json" in answer.split(b"\r\n\r\n", 1)[0]
            # A web form posted the same way gets a page, also 400.
            head = ("POST /app/connexion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    "Transfer-Encoding: chunked\r\nConnection: close\r\n")
            answer = _raw(port, head, body)
            assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request", (name, answer[:400])
        # Nothing was written, and the server keeps serving.
        listed = httpx.get(f"{broker.url}/v1/organizations", headers={"Authorization": f"Bearer {broker.admin_key}"})
        assert listed.status_code == 200
        assert [o["kind"] for o in listed.json()["items"]] == ["operator"]  # created by `broker up` only
        assert httpx.get(f"{broker.url}/health/ready", timeout=5).status_code in (200, 503)
