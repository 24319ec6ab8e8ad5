"""`broker.db.status`: the compare-and-set answers "changed" once and "lost the race" when the
expected status no longer holds; a move the table does not allow writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from factories import make_siret
from sqlalchemy import insert, select

from broker.db.base import table_of
from broker.db.models import OrganizationRow, WebhookEndpointRow
from broker.db.status import ENDPOINTS, compare_and_set, lock, move_all
from broker.domain.lifecycle import EndpointStatus
from broker.errors import InvalidTransition


async def _endpoints(db, n: int) -> list[str]:
    now = datetime.now(UTC)
    org_id = f"org-{make_siret()}"
    ids = [f"endpoint-{org_id}-{i}" for i in range(n)]
    async with db.writer() as session:
        await session.execute(insert(table_of(OrganizationRow)), [{
            "id": org_id, "kind": "collectivite", "name": "Commune de Vitré", "siret": org_id[4:],
            "commune_insee": "35360", "created_at": now}])
        await session.execute(insert(table_of(WebhookEndpointRow)), [{
            "id": i, "org_id": org_id, "url": "https://example.org/hook", "event_types": [], "secret_enc": "x",
            "status": EndpointStatus.ACTIVE, "created_at": now, "updated_at": now} for i in ids])
        await session.commit()
    return ids


async def _status(db, endpoint_id: str) -> str:
    async with db.reader() as session:
        query = select(WebhookEndpointRow.status).where(WebhookEndpointRow.id == endpoint_id)
        return str((await session.execute(query)).scalar_one())


async def test_compare_and_set_loses_when_the_status_moved(db):
    (endpoint_id,) = await _endpoints(db, 1)
    now = datetime.now(UTC)
    async with db.writer() as first:
        assert await lock(first, ENDPOINTS, endpoint_id) is EndpointStatus.ACTIVE
        assert await compare_and_set(first, ENDPOINTS, endpoint_id, expected=EndpointStatus.ACTIVE,
                                     to=EndpointStatus.DISABLED, values={"disabled_reason": "410", "updated_at": now})
        await first.commit()
    # A second writer that still believes the endpoint active: it lost the race, nothing is written.
    async with db.writer() as second:
        assert not await compare_and_set(second, ENDPOINTS, endpoint_id, expected=[EndpointStatus.ACTIVE],
                                         to=EndpointStatus.DISABLED, values={"disabled_reason": "later"})
        assert not await compare_and_set(second, ENDPOINTS, "no-such-endpoint", expected=EndpointStatus.DISABLED,
                                         to=EndpointStatus.ACTIVE)
        assert await lock(second, ENDPOINTS, "no-such-endpoint") is None
        await second.commit()
    assert await _status(db, endpoint_id) == "disabled"
    async with db.reader() as session:
        reason = (await session.execute(select(WebhookEndpointRow.disabled_reason))).scalar_one()
    assert reason == "410"


async def test_a_move_the_table_refuses_writes_nothing(db):
    (endpoint_id,) = await _endpoints(db, 1)
    async with db.writer() as session:
        with pytest.raises(InvalidTransition):
            await compare_and_set(session, ENDPOINTS, endpoint_id, expected=EndpointStatus.ACTIVE,
                                  to=EndpointStatus.ACTIVE)
        with pytest.raises(InvalidTransition):
            await move_all(session, ENDPOINTS, where=[], expected=[EndpointStatus.DISABLED, EndpointStatus.ACTIVE],
                           to=EndpointStatus.ACTIVE)
        await session.commit()
    assert await _status(db, endpoint_id) == "active"


async def test_move_all_moves_only_the_rows_still_expected(db):
    ids = await _endpoints(db, 3)
    async with db.writer() as session:
        assert await compare_and_set(session, ENDPOINTS, ids[0], expected=EndpointStatus.ACTIVE,
                                     to=EndpointStatus.DISABLED)
        moved = await move_all(session, ENDPOINTS, where=[WebhookEndpointRow.id.in_(ids)],
                               expected=EndpointStatus.ACTIVE, to=EndpointStatus.DISABLED)
        await session.commit()
    assert moved == 2
    assert [await _status(db, i) for i in ids] == ["disabled"] * 3
