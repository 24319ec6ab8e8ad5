"""Whole transactions given as one sync function (`Database.write`: the worker's matching batches,
the relay's claim) and, on SQLite, the request path that needs no trip through the pool's writer:
a POST whose transaction only appends rows commits in one trip to the writer thread, and the
Idempotency-Key lookup reads on the event loop's thread (`Database.read_now`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from factories import bearer, make_siret, tenant
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from broker.db.models import OrganizationRow, RegistryVersionRow
from broker.db.sqlite import WriteThread

ORG = OrganizationRow.__table__
REGISTRY = RegistryVersionRow.__table__


def _org(name: str, siret: str) -> dict[str, object]:
    return {"id": f"org-{siret}", "kind": "collectivite", "name": name, "siret": siret, "commune_insee": "35238",
            "created_at": datetime.now(UTC)}


async def _names(db) -> set[str]:
    async with db.reader() as session:
        return set((await session.execute(select(OrganizationRow.name))).scalars())


async def test_write_commits_all_or_nothing(db):
    sirets = [make_siret() for _ in range(3)]

    def two(connection):
        connection.execute(insert(ORG), [_org("Commune A", sirets[0]), _org("Commune B", sirets[1])])
        return "done"

    assert await db.write(two) == "done"
    assert {"Commune A", "Commune B"} <= await _names(db)

    def then_fail(connection):
        connection.execute(insert(ORG), [_org("Commune C", sirets[2])])
        raise ValueError("the caller's own failure")

    with pytest.raises(ValueError):
        await db.write(then_fail)

    def duplicate(connection):
        connection.execute(insert(ORG), [_org("Commune D", make_siret())])
        connection.execute(insert(ORG), [{**_org("Commune E", sirets[0]), "id": "org-other"}])  # taken SIRET

    with pytest.raises(IntegrityError):
        await db.write(duplicate)
    names = await _names(db)
    assert not names & {"Commune C", "Commune D", "Commune E"}


async def test_concurrent_writes_all_apply(db):
    async with db.writer() as session:
        await session.execute(insert(REGISTRY).values(name="test-counter", version=0))
        await session.commit()

    def bump(connection):
        connection.execute(update(REGISTRY).where(REGISTRY.c.name == "test-counter")
                           .values(version=REGISTRY.c.version + 1))

    await asyncio.gather(*(db.write(bump) for _ in range(40)))
    async with db.reader() as session:
        assert (await session.execute(select(REGISTRY.c.version).where(REGISTRY.c.name == "test-counter"))
                ).scalar_one() == 40


@pytest.fixture
def settings(settings):  # matching in the worker, as in production: the POST only appends rows
    return msgspec.structs.replace(settings, matching=msgspec.structs.replace(settings.matching, inline=False))


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_post_is_one_trip_to_the_writer_thread(client, admin_key, monkeypatch):
    db = client.app.state.runtime.db
    trips, pool_writes = [], []
    run = WriteThread.run

    async def counted(self, work):
        trips.append(work)
        return await run(self, work)

    monkeypatch.setattr(WriteThread, "run", counted)
    event.listen(db.write_engine.sync_engine, "begin", lambda conn: pool_writes.append(conn))
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer", commune_insee="35238")
    body = {"item": "face-visor", "quantity": 300, "allow_split": True, "delivery": {"commune_insee": "35238"},
            "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    # the process's first request for an item reads the catalogue on its session (then cached)
    assert (await client.post("/v1/requests", json=body, headers=bearer(buyer))).status_code == 201
    assert pool_writes  # so far: the organisation (the ORM) and that first request
    pool_writes.clear()
    trips.clear()
    headers = {**bearer(buyer), "Idempotency-Key": "one-trip-1"}
    first = await client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert (len(trips), len(pool_writes)) == (1, 0)
    again = await client.post("/v1/requests", json=body, headers=headers)  # found by read_now: replayed
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    other = await client.post("/v1/requests", json={**body, "quantity": 301}, headers=headers)
    assert other.status_code == 422, other.text  # the key with another body
    assert (len(trips), len(pool_writes)) == (1, 0)
    async with db.reader() as session:
        assert (await session.execute(select(func.count()).select_from(OrganizationRow))).scalar_one() >= 2
