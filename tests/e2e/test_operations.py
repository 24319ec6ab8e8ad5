"""Operations (issue 18, F10 and F11) with a real `broker up`: a second `broker up` on a data directory
in use is refused and the first keeps serving and matching; a crash-looping worker is restarted with
backoff while the API keeps serving, and `/health/ready` says why it is not ready meanwhile."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
from factories import bearer, make_siret, matched, tenant
from support_server import RunningBroker, descendants, free_port, running_broker
from support_stack import PG_URL, children, database

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
def _spare_redis(url: str | None) -> str | None:
    """The test Redis server, on database 15: the in-process tests empty their own database (the given
    number plus the xdist worker's) before each test, which would erase this broker's worker heartbeat."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/15")) if parts.scheme in ("redis", "rediss") else url


REDIS_URL = _spare_redis(os.environ.get("BROKER_TEST_REDIS_URL"))


@pytest.fixture(params=BACKENDS)
def db_env(request: pytest.FixtureRequest, tmp_path: Path):
    """SQLite: the file `broker up` makes in its data directory; PostgreSQL: a throw-away database."""
    if request.param == "sqlite":
        yield {}
        return
    with database("postgresql", tmp_path) as url:
        yield {"BROKER_DATABASE_URL": url}


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    for pid in [*descendants(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


async def _request_is_matched(broker: RunningBroker) -> None:
    async with httpx.AsyncClient(base_url=broker.url, timeout=30) as client:
        _org, buyer = await tenant(client, broker.admin_key, "collectivite", "buyer")
        body = {"item": "door-opener", "quantity": 5, "delivery": {"commune_insee": "35238"},
                "deadline": (datetime.now(UTC) + timedelta(days=15)).isoformat(),
                "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}
        created = await client.post("/v1/requests", json=body, headers=bearer(buyer))
        assert created.status_code == 201, created.text
        await matched(client, buyer, created.json()["id"], timeout_s=20)


async def test_a_second_broker_up_on_a_data_directory_in_use_is_refused(tmp_path, db_env):
    with running_broker(tmp_path, **db_env) as broker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
        env |= {"BROKER_PORT": str(free_port()), "BROKER_DATA_DIR": str(broker.data_dir),
                "BROKER_DATABASE_URL": f"sqlite+aiosqlite:///{broker.data_dir}/broker.db", **db_env}
        second = subprocess.Popen([sys.executable, "-m", "broker.cli", "up"], cwd=tmp_path, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = second.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            _kill_tree(second)
            raise AssertionError("a second `broker up` on the same data directory kept running") from None
        text = output.decode()
        assert second.returncode != 0, text
        assert f"processus {broker.process.pid}" in text and str(broker.data_dir) in text, text
        assert (broker.data_dir / "redis.sock").exists()
        # The first one still serves, and its worker still reaches Redis: a request gets matched.
        ready = httpx.get(f"{broker.url}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        await _request_is_matched(broker)


async def test_a_crash_looping_worker_is_restarted_with_backoff_while_the_api_serves(tmp_path, db_env):
    # On PostgreSQL, with the test Redis when there is one: the supervisor reports to a Redis it did not start.
    extra = {"BROKER_REDIS_URL": REDIS_URL} if db_env and REDIS_URL else {}
    if extra:  # what an earlier run left there (its queue, its heartbeat) is not this broker's
        with redis.Redis.from_url(extra["BROKER_REDIS_URL"]) as spare:
            spare.flushdb()
    # Nice 0: on a loaded test machine a niced worker takes long to start again, and the test waits for it.
    with running_broker(tmp_path, BROKER_WORKER_NICE="0", **db_env, **extra) as broker:
        kills = 0
        reasons: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # kill the worker as soon as it is there, for 5 s
            for pid in children(broker.process.pid, b"broker.cli worker"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
            assert broker.process.poll() is None, broker.log.read_text()[-3000:]
            assert httpx.get(f"{broker.url}/health/live", timeout=5).status_code == 200
            ready = httpx.get(f"{broker.url}/health/ready", timeout=5)
            if ready.status_code == 503:
                reasons.append(ready.json()["checks"].get("worker", ""))
            time.sleep(0.05)
        assert kills >= 2, kills
        assert broker.process.poll() is None, broker.log.read_text()[-3000:]
        # While it is down, readiness says so and why.
        assert any("down since" in r and "restart" in r for r in reasons), reasons
        # Once restarted, ready again; and the API served the whole time.
        deadline = time.monotonic() + 40
        while (ready := httpx.get(f"{broker.url}/health/ready", timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            assert broker.process.poll() is None, broker.log.read_text()[-3000:]
            time.sleep(0.2)
        assert ready.json()["checks"]["worker"] == "ok"
        assert "restarting it in" in broker.log.read_text()
        await _request_is_matched(broker)


async def test_two_broker_ups_on_two_data_directories_run_side_by_side(tmp_path):
    """Issue 21 item 10: two `broker up` of one checkout at once, each on its own data directory, each
    with its own embedded Redis on its own socket; killing one's worker makes only that one not ready."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with running_broker(tmp_path / "a", BROKER_WORKER_NICE="0") as first, \
            running_broker(tmp_path / "b", BROKER_WORKER_NICE="0") as second:
        both = (first, second)
        sockets = [(broker.data_dir / "redis.sock").resolve() for broker in both]
        assert all(sock.is_socket() for sock in sockets) and sockets[0] != sockets[1], sockets
        for broker, sock in zip(both, sockets, strict=True):
            # Its own Redis process, listening on its own socket (the process title names it).
            (redis_pid,) = children(broker.process.pid, b"redis-server")
            assert str(sock).encode() in Path(f"/proc/{redis_pid}/cmdline").read_bytes(), sock
            ready = httpx.get(f"{broker.url}/health/ready", timeout=5)
            assert ready.status_code == 200 and ready.json()["checks"]["worker"] == "ok", ready.text
        # Two databases: each one's admin key is unknown to the other.
        assert httpx.get(f"{second.url}/v1/organizations", headers=bearer(second.admin_key)).status_code == 200
        assert httpx.get(f"{second.url}/v1/organizations", headers=bearer(first.admin_key)).status_code == 401
        for broker in both:  # each worker reaches its own Redis and database
            await _request_is_matched(broker)

        (first_worker,) = children(first.process.pid, b"broker.cli worker")
        (second_worker,) = children(second.process.pid, b"broker.cli worker")
        os.kill(first_worker, signal.SIGKILL)
        reason, other = "", []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the first says it is not ready (its worker restarts in 1 s)
            ready = httpx.get(f"{first.url}/health/ready", timeout=5)
            other.append(httpx.get(f"{second.url}/health/ready", timeout=5).status_code)
            if ready.status_code == 503:
                reason = ready.json()["checks"].get("worker", "")
                break
            time.sleep(0.05)
        assert "down since" in reason and "exit code -9" in reason, reason
        assert set(other) == {200}, other
        # The other one's worker was not touched and it stays ready.
        assert children(second.process.pid, b"broker.cli worker") == [second_worker]
        ready = httpx.get(f"{second.url}/health/ready", timeout=5)
        assert ready.status_code == 200 and ready.json()["checks"]["worker"] == "ok", ready.text
        assert first.process.poll() is None and second.process.poll() is None
