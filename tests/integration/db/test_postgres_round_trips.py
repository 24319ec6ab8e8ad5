"""PostgreSQL: what the server receives (broker/db/postgres.py, broker/db/pending.py).

A POST that only appends rows is one ``WITH p0 AS (INSERT …)`` statement, without BEGIN or
COMMIT (the Idempotency-Key lookup waits for a refused INSERT or a failed handler); a handler that
changes ORM objects still writes inside BEGIN … COMMIT; the pool's pre-ping is one ``;`` (no BEGIN/ROLLBACK around it), skipped for a
connection back in the pool less than ``PING_BYPASS_S`` ago, and still replaces a connection the
server closed.

The statements are recorded in the order the server answers them: asyncpg's query logger (added
to every connection the engine opens) sees what the driver sends by itself (BEGIN, COMMIT,
ROLLBACK, the ping's ``;``) but not the prepared statements SQLAlchemy runs; those come from
SQLAlchemy's ``after_cursor_execute``. Both record when the statement has completed (the logger
through ``call_soon``: `Trips.take` lets those reports run first), and one request's statements run
one after the other."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from factories import bearer, make_siret, tenant
from litestar.testing import AsyncTestClient
from sqlalchemy import event, text
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine
from support_stack import PG_URL, engine_for

from broker.app import create_app
from broker.db.postgres import PING_BYPASS_S
from broker.settings import DatabaseSettings

pytestmark = pytest.mark.skipif(not PG_URL, reason="round trips to PostgreSQL need BROKER_TEST_DATABASE_URL")


@pytest.fixture(params=["postgresql"])
def backend(request):
    return request.param


@pytest.fixture
def settings(settings):  # matching in the worker, as in production: the POST only appends rows
    return msgspec.structs.replace(settings, matching=msgspec.structs.replace(settings.matching, inline=False))


class Trips:
    """The statements ``engine``'s connections send, in order (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.seen: list[str] = []
        self.loops: set[asyncio.AbstractEventLoop] = set()
        event.listen(engine.sync_engine.pool, "connect", self._connected)
        event.listen(engine.sync_engine, "after_cursor_execute", self._statement)

    def _connected(self, _dbapi_connection: Any, record: Any) -> None:
        self.loops.add(asyncio.get_running_loop())  # AsyncTestClient runs the app on a loop of its own
        record.driver_connection.add_query_logger(self._logged)

    def _logged(self, query: Any) -> None:
        self.seen.append(query.query.strip())

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(statement.strip())

    async def take(self) -> list[str]:
        """The statements seen since the last call, once the logger's reports queued on each
        connection's loop have run."""
        for loop in self.loops:
            if loop is asyncio.get_running_loop():
                await asyncio.sleep(0)
            else:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop))
        seen, self.seen = self.seen, []
        return seen


def verb(statement: str) -> str:
    """``BEGIN;`` -> BEGIN, ``SELECT …`` -> SELECT; the empty statement (the ping) stays ``;``."""
    return statement.split(None, 1)[0].rstrip(";").upper() or ";"


@pytest.fixture
async def trips_and_client(settings, admin_key):
    app = create_app(settings)
    trips = Trips(app.state.runtime.db.write_engine)  # before the app opens any connection
    async with AsyncTestClient(app=app) as client:
        yield trips, client


async def _count(db, sql: str, **params: object) -> int:
    async with db.reader() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


async def test_append_only_post_is_one_insert(trips_and_client, admin_key, db):
    """POST /v1/requests with an Idempotency-Key sends one autocommit read of the buyer's cumulative
    need (issue 17: both sums in one SELECT, outside the write), then one WITH … INSERT statement for
    the request, its event, its audit row and the key's record: no lookup first (deferred,
    `broker.api.context`), no BEGIN, COMMIT or ROLLBACK (pings aside). Its replay and the key reused with another body
    still behave: the record's unique key refuses the INSERT, then the lookup answers."""
    trips, client = trips_and_client
    org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    body = {"item": "face-visor", "quantity": 300, "allow_split": True, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    # the first request caches the buyer's key and the catalogue item (each a read in a transaction)
    assert (await client.post("/v1/requests", json=body, headers=bearer(buyer))).status_code == 201
    await trips.take()

    headers = {**bearer(buyer), "Idempotency-Key": "one-statement-1"}
    first = await client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201, first.text
    seen = [s for s in await trips.take() if s != ";"]
    assert [verb(s) for s in seen] == ["SELECT", "WITH"], seen
    assert "sum(fab_order.unit_price_cents * fab_order.quantity)" in seen[0]
    for table in ("fab_request", "outbox_event", "audit_log", "idempotency_record"):
        assert f"INSERT INTO {table} " in seen[1], table
    request_id = first.json()["id"]
    assert await _count(db, "SELECT count(*) FROM fab_request WHERE id = :id", id=request_id) == 1
    assert await _count(db, "SELECT count(*) FROM outbox_event WHERE resource_id = :id", id=request_id) >= 1
    assert await _count(db, "SELECT count(*) FROM audit_log WHERE resource_id = :id", id=request_id) == 1
    assert await _count(db, "SELECT count(*) FROM idempotency_record WHERE key = 'one-statement-1'") == 1

    again = await client.post("/v1/requests", json=body, headers=headers)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    seen = [s for s in await trips.take() if s != ";"]
    # the cumulative read, the refused INSERT is not reported (both hooks see completed statements),
    # then the lookup
    assert [verb(s) for s in seen] == ["SELECT", "BEGIN", "SELECT", "ROLLBACK"], seen
    assert "FROM idempotency_record" in seen[2]
    other = await client.post("/v1/requests", json={**body, "quantity": 301}, headers=headers)
    assert other.status_code == 422, other.text
    assert other.json()["type"].endswith("/problems/idempotency-key-reused")
    assert await _count(db, "SELECT count(*) FROM fab_request WHERE org_id = :org", org=org["id"]) == 2
    assert await _count(db, "SELECT count(*) FROM audit_log WHERE resource_id = :id", id=request_id) == 1


async def test_a_key_past_its_24_hours_is_free_again(trips_and_client, admin_key, db):
    """The deferred lookup finds the key's record expired: it is dropped and the request's rows go in
    (once): a new request, not a replay, and the key's record is now the new answer."""
    _trips, client = trips_and_client
    org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    body = {"item": "monitor-stand", "quantity": 4, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    headers = {**bearer(buyer), "Idempotency-Key": "day-old-request"}
    first = await client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201, first.text
    async with db.writer() as session:
        await session.execute(text("UPDATE idempotency_record SET expires_at = now() - interval '1 hour' "
                                   "WHERE key = 'day-old-request'"))
        await session.commit()
    anew = await client.post("/v1/requests", json=body, headers=headers)
    assert anew.status_code == 201, anew.text
    assert "idempotent-replayed" not in anew.headers and anew.json()["id"] != first.json()["id"]
    assert await _count(db, "SELECT count(*) FROM fab_request WHERE org_id = :org", org=org["id"]) == 2
    assert await _count(db, "SELECT count(*) FROM audit_log WHERE resource_id = :id", id=anew.json()["id"]) == 1
    replay = await client.post("/v1/requests", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true" and replay.content == anew.content


async def test_orm_writes_run_in_a_transaction(trips_and_client, admin_key, db):
    """POST /v1/organizations (a new ORM object) with an Idempotency-Key: BEGIN, every write (the
    key's record with them), COMMIT; the organisation and the key's record are there."""
    trips, client = trips_and_client
    await tenant(client, admin_key, "collectivite", "buyer")  # caches the admin's key
    await trips.take()

    body = {"kind": "collectivite", "name": "Commune de Vannes", "siret": make_siret(), "commune_insee": "56260"}
    created = await client.post("/v1/organizations", json=body,
                                headers={**bearer(admin_key), "Idempotency-Key": "orm-1"})
    assert created.status_code == 201, created.text
    seen = [s for s in await trips.take() if s != ";"]
    verbs = [verb(s) for s in seen]
    assert verbs[0] == "BEGIN" and verbs[-1] == "COMMIT" and "ROLLBACK" not in verbs, seen
    assert not any("FROM idempotency_record" in s for s in seen), seen
    assert {"INSERT", "WITH"} <= set(verbs[1:-1]) and verbs.count("BEGIN") == verbs.count("COMMIT") == 1, seen
    org_id = created.json()["id"]
    assert await _count(db, "SELECT count(*) FROM organization WHERE id = :id", id=org_id) == 1
    assert await _count(db, "SELECT count(*) FROM idempotency_record WHERE key = 'orm-1'") == 1


async def test_pre_ping_is_one_statement_and_skipped_right_after_use(db):
    """A connection checked out again at once is not pinged; after ``PING_BYPASS_S`` idle it is,
    with one ``;`` and nothing around it; and when the server has closed it meanwhile, that ping
    finds out and the pool opens a new connection for the checkout."""
    engine = db.write_engine
    trips = Trips(engine)

    async def backend_pid() -> int:
        async with engine.connect() as conn:
            return int((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())

    async with engine.connect():  # a new connection: not pinged
        pass
    assert await trips.take() == []
    async with engine.connect():  # back in the pool just now: not pinged
        pass
    assert await trips.take() == []
    await asyncio.sleep(PING_BYPASS_S + 0.2)
    async with engine.connect():
        pass
    assert await trips.take() == [";"]

    pid = await backend_pid()
    await trips.take()
    replaced: list[BaseException | None] = []
    event.listen(engine.sync_engine.pool, "invalidate", lambda _dbapi, _record, exc: replaced.append(exc))
    await asyncio.sleep(PING_BYPASS_S + 0.2)
    async with engine_for(PG_URL) as admin, admin.connect() as conn:  # type: ignore[arg-type]
        assert (await conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid}, 5000)")).scalar_one()
    assert await backend_pid() != pid
    # the pre-ping found the connection gone (asyncpg had seen its socket close: no ";" sent) and the
    # pool opened a new one, where the statement ran
    assert [type(e) for e in replaced] == [InvalidatePoolError], replaced
    assert [verb(s) for s in await trips.take() if s != ";"] == ["BEGIN", "SELECT", "ROLLBACK"]


@pytest.mark.parametrize("mode", ["auto", "force_custom_plan"])
async def test_the_plan_cache_mode_is_a_setting(settings, mode):
    """``BROKER_DATABASE_PLAN_CACHE_MODE`` (default ``auto``) is every session's plan_cache_mode.
    With ``force_custom_plan`` a prepared statement never gets a generic plan: ten Idempotency-Key
    lookups on one connection are ten custom plans (with ``auto``, a generic one from the sixth on
    when it is no dearer)."""
    from broker.db.repositories import IDEMPOTENCY_LOOKUP
    from broker.db.session import Database

    assert DatabaseSettings().plan_cache_mode == "auto"
    db = Database(msgspec.structs.replace(settings.db, plan_cache_mode=mode))
    params = {"org_id": "none", "method": "POST", "route": "/v1/requests", "key": "absent"}
    try:
        async with db.write_engine.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW plan_cache_mode")).scalar() == mode
            for _ in range(10):
                assert (await conn.execute(IDEMPOTENCY_LOOKUP, params)).first() is None
            plans = (await conn.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE '%FROM idempotency_record%' AND statement NOT LIKE '%pg_prepared_statements%'"
            ))).all()
    finally:
        await db.dispose()
    if mode == "force_custom_plan":
        assert [tuple(p) for p in plans] == [(0, 10)]
    else:
        assert [sum(p) for p in plans] == [10]


async def test_generic_plans_read_the_pending_rows_from_their_partial_indexes(db):
    """The relay's pending events and the matching batches' pending requests are read from partial
    indexes (``WHERE state = 'pending'``, ``WHERE match_state = 'pending'``). PostgreSQL cannot prove
    such a predicate from a parameter (``state = $1``), so the queries write the value into their
    text (`broker.db.models.is_pending`): a generic plan of the very statements the repositories
    send uses the index."""
    from broker.db.fabrication import RequestRepository
    from broker.db.webhooks import WebhookRepository

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.reader() as session:
            await WebhookRepository(session).pending_events(now=datetime.now(UTC), limit=200)
            await RequestRepository(session).pending_match_ids(limit=64)
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", record)
    events_sql, requests_sql = (next(s for s in seen if f"FROM {table}" in s) for table in ("outbox_event", "fab_request"))
    plans = {}
    async with db.write_engine.connect() as conn, conn.begin():
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the index, or nothing, on a small table
        for name, statement, args in (("pending_events", events_sql, "now(), 200"),
                                      ("pending_requests", requests_sql, "64")):
            await conn.exec_driver_sql(f"PREPARE {name} AS {statement}")
            rows = (await conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}({args})")).all()
            await conn.exec_driver_sql(f"DEALLOCATE {name}")
            plans[name] = "\n".join(r[0] for r in rows)
        await conn.rollback()
    assert "ix_outbox_event_pending" in plans["pending_events"], plans["pending_events"]
    assert "ix_fab_request_match_pending" in plans["pending_requests"], plans["pending_requests"]
