"""The private or undocumented parts of SQLAlchemy, aiosqlite, asyncpg's SQLAlchemy adapter and arq
that the performance code relies on, each checked here without a server (those that need Redis or
PostgreSQL: tests/integration/test_library_contracts_servers.py). pyproject.toml caps these libraries at
the next release line; before lifting a cap, run these: a failure names what the upgrade changed.

- SQLAlchemy ``SQLCompiler._bind_processors`` and ``positiontup`` (broker/db/pending.py runs its
  compiled multi-row INSERT through the driver directly);
- SQLAlchemy's pool pre-ping calling ``dialect.do_ping`` (broker/db/postgres.py replaces it), the
  pool events ``checkin``, ``close``, ``close_detached``, and the asyncpg adapter's ``ping()`` and
  settable ``autocommit``;
- ``sqlalchemy.util.await_only`` with aiosqlite's ``Connection._execute`` and ``Connection._conn``
  (broker/db/sqlite.py: one trip to aiosqlite's thread), and ``driver_connection`` being the
  sqlite3 connection under the sync engine (`WriteThread`);
- arq's key layout (``arq:job:``, ``arq:result:``, ``expires_extra_ms``) and ``serialize_job``'s
  signature and format (broker/services/jobs.py and workers/enqueue.py write arq's jobs themselves).
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import arq.constants
import pytest
from arq.jobs import deserialize_job, serialize_job
from sqlalchemy import Column, MetaData, String, Table, create_engine, exc, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.events import PoolEvents
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from broker.db.base import UTCDateTime
from broker.db.pending import _one_statement
from broker.db.sqlite import WriteThread, on_thread, raw
from broker.services.jobs import deserialize, serialize

CONTRACT = Table("contract", MetaData(), Column("id", String(36)), Column("at", UTCDateTime()))
AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dialect", "sent"),
    [(postgresql.asyncpg.dialect(), AT), (sqlite.aiosqlite.dialect(), "2026-11-26 09:00:00.000000")],
    ids=["asyncpg", "aiosqlite"],
)
def test_compiled_statement_exposes_its_bind_processors_and_parameter_order(dialect: Any, sent: object) -> None:
    sql, order, processors = _one_statement(((CONTRACT, 2, ("id", "at")),), dialect)
    assert sql.startswith("INSERT INTO contract")
    assert order == ("p0_0_id", "p0_0_at", "p0_1_id", "p0_1_at")  # positiontup: the driver's argument order
    # _bind_processors: our column type's conversion, keyed by parameter name.
    assert processors["p0_1_at"](AT) == sent
    with pytest.raises(ValueError, match="naive"):
        processors["p0_0_at"](AT.replace(tzinfo=None))


def test_pool_pre_ping_calls_the_dialects_do_ping(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'ping.db'}", poolclass=QueuePool, pool_pre_ping=True)
    pinged: list[object] = []

    def do_ping(dbapi_connection: Any) -> bool:
        pinged.append(dbapi_connection)
        return True

    engine.dialect.do_ping = do_ping  # type: ignore[method-assign]  # as broker/db/postgres.py does
    try:
        for _ in range(2):
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        # A connection just opened is not pinged; at its next checkout it is, through our function.
        assert len(pinged) == 1 and isinstance(pinged[0], sqlite3.Connection)
    finally:
        engine.dispose()


def test_pool_events_and_asyncpg_adapter_members_exist() -> None:
    for name in ("checkin", "close", "close_detached"):
        assert callable(getattr(PoolEvents, name))
    assert callable(AsyncAdapt_asyncpg_connection.ping)
    autocommit = inspect.getattr_static(AsyncAdapt_asyncpg_connection, "autocommit")
    assert isinstance(autocommit, property) and autocommit.fset is not None
    # The engine's dialect is where broker/db/postgres.py puts its do_ping (no connection is made).
    engine = create_async_engine("postgresql+asyncpg://contract@127.0.0.1:1/contract")
    assert callable(engine.sync_engine.dialect.do_ping)
    assert engine.sync_engine.dialect.driver == "asyncpg"


async def test_work_runs_on_aiosqlites_thread_in_one_trip(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'thread.db'}")

    def work(db: sqlite3.Connection) -> tuple[int, int]:
        assert isinstance(db, sqlite3.Connection)
        return threading.get_ident(), db.execute("SELECT 41 + 1").fetchone()[0]

    def conflict(db: sqlite3.Connection) -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed: contract.id")

    try:
        async with engine.connect() as connection:
            thread, answer = await connection.run_sync(lambda sync: on_thread(sync, work, statement="SELECT"))
            assert answer == 42 and thread != threading.get_ident()
            with pytest.raises(exc.IntegrityError):
                await connection.run_sync(lambda sync: on_thread(sync, conflict, statement="INSERT"))
    finally:
        await engine.dispose()


async def test_write_thread_hands_work_the_sqlite3_connection_inside_begin_immediate(tmp_path: Path) -> None:
    writer = WriteThread(f"sqlite+aiosqlite:///{tmp_path / 'write.db'}", busy_timeout_ms=1000)
    try:
        assert await writer.run(raw(lambda db: (type(db), db.in_transaction), statement="BEGIN")) == (
            sqlite3.Connection, True)
    finally:
        await writer.close()


def test_arq_key_layout() -> None:
    assert arq.constants.job_key_prefix == "arq:job:"
    assert arq.constants.result_key_prefix == "arq:result:"
    assert isinstance(arq.constants.expires_extra_ms, int) and arq.constants.expires_extra_ms > 0


def test_arq_reads_the_jobs_we_serialize() -> None:
    payload = serialize_job("match_request", ("r-1",), {}, None, 1_764_147_600_000, serializer=serialize)
    job = deserialize_job(payload, deserializer=deserialize)
    assert (job.function, job.args, job.kwargs, job.job_try) == ("match_request", ["r-1"], {}, None)
    assert job.enqueue_time.timestamp() == 1_764_147_600


async def test_litestar_names_a_body_cut_short_as_framing_error_expects() -> None:
    """F9 (issue 18): `broker.api.errors.framing_error` recognises Litestar's exception for a body that
    ends in ``http.disconnect`` by its detail; an upgrade that rewords it must fail here, not in production."""
    from litestar import Litestar, Request, post
    from litestar.exceptions import HTTPException

    from broker.api.errors import _BODY_CUT_SHORT, framing_error

    seen: list[HTTPException] = []

    @post("/")
    async def read(request: Request[Any, Any, Any]) -> None:
        await request.body()

    def keep(_request: Any, exc: HTTPException) -> Any:
        seen.append(exc)
        from litestar import Response
        return Response(b"", status_code=framing_error(exc).status_code)

    app = Litestar([read], exception_handlers={HTTPException: keep})
    messages = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert [e.detail for e in seen] == [_BODY_CUT_SHORT]
    assert sent[0]["status"] == 400
