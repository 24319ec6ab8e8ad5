"""Property-based fuzzing of every operation in the OpenAPI document (RELIABILITY.md §6, G11).

In-process over ASGI on SQLite, fixed seed (derandomized), >= 100 examples per operation, as an
admin and as a buyer. No 5xx, no undocumented status, no response-schema violation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from broker.app import create_app
from broker.db.session import Database
from broker.services.access import ensure_admin


async def _keys(settings_) -> dict[str, str]:
    """An admin key, a buyer key, and a maker key whose workshop has a profile and a machine."""
    from adapters.geocoding import load_communes
    from broker.domain.access import OrgKind, Role
    from broker.domain.fabrication import MaterialLimit
    from broker.services import access, organisations, workshops
    from factories import make_siret

    now = datetime.now(UTC)
    db = Database(settings_.db)
    try:
        async with db.writer() as session:
            admin_token = await ensure_admin(session, bootstrap_key=None, now=now)
            assert admin_token
            admin = await access.authenticate(session, token=admin_token)
            assert admin is not None
            keys = {"admin": admin_token}
            for role, kind in (("buyer", OrgKind.COLLECTIVITE), ("maker", OrgKind.MANUFACTURE)):
                org = await organisations.create_organisation(
                    session, actor=admin, kind=kind, name=f"Fuzz {role}", siret=make_siret(), commune_insee="35238",
                    geocoder=load_communes(), now=now)
                await session.flush()
                _key, keys[role] = await access.issue_api_key(session, actor=admin, org_id=org.id, role=Role(role),
                                                              label="fuzz", now=now)
            maker = await access.authenticate(session, token=keys["maker"])
            assert maker is not None
            await workshops.save_my_workshop(session, actor=maker, commune_insee="35238", delivery_radius_km=100,
                                             trades=[], labels=[], certifications=[], paused=False,
                                             geocoder=load_communes(), now=now)
            await workshops.add_machine(session, actor=maker, process="fdm_printing", envelope_mm=(250, 210, 210),
                                        materials=[MaterialLimit(material="pla", max_thickness_mm=10)],
                                        hours_per_week=40, now=now)
            await session.commit()
    finally:
        await db.dispose()
    return keys


@pytest.fixture(params=["sqlite"])
def backend(request):  # fuzz on SQLite only: PostgreSQL adds minutes, not findings
    return request.param


@pytest.fixture
def fuzz_target(settings):
    app = create_app(settings)
    return app, asyncio.run(_keys(settings))


EXAMPLES = 100


def _openapi_path(path: str) -> str:
    """Litestar's ``/v1/orders/{order_id:str}`` -> OpenAPI's ``/v1/orders/{order_id}``."""
    import re

    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


@pytest.mark.parametrize("role", ["admin", "buyer", "maker"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(fuzz_target, mode, role):
    """As an admin every operation is fuzzed; as a buyer or maker, the operations that role may call."""
    app, keys = fuzz_target
    token = keys[role]
    allowed = {
        (m, _openapi_path(r.path))
        for r in app.routes
        for h in getattr(r, "route_handlers", [])
        for m in h.http_methods
        if h.opt.get("access") == "public" or role in {str(x) for x in (h.opt.get("access") or ())}
    }
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if role != "admin" and (operation.method.upper(), operation.path) not in allowed:
            continue
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            # Semantic rules (SIRET Luhn, the commune table, signed cursors) reject some schema-valid
            # inputs by design with 400/422, so "positive data acceptance" is the one check left out.
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                   excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Unsatisfiable:  # an operation with no input has no negative case
            assert mode is GenerationMode.NEGATIVE
        except Exception as exc:
            failures.append(f"{operation.label}: {exc}")
    assert operations >= (30 if role == "admin" else 10)
    assert failures == [], "\n\n".join(failures)
