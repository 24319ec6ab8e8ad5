"""Property-based fuzzing of every operation in the OpenAPI document (RELIABILITY.md §6, G11; issue 18
item 5), in process over ASGI, with a fixed seed (derandomized).

It runs against a seeded world of two tenants (``tests/fuzz_world.py``: requests open, quoting,
awarded and cancelled, quotes, invitations, orders in four states, invoices (issued, submitted), a DECP record, crisis calls with
delivery points and commitments, webhook endpoints with deliveries) so that id routes get real ids,
both tenants' (the other tenant's must answer 404/403, never 5xx). Each generated case goes once to
every role that may call its operation (admin, buyer, maker, coordinator, integration, with tenant
A's keys; public operations without a key), so each (operation, role) pair gets up to EXAMPLES
schema-valid cases (>= 100, ``BROKER_FUZZ_EXAMPLES``; ``make fuzz`` asks for more) and 30 % as many
schema-invalid ones, while each case is generated once. A third of the cases carry a hostile value (``tests/fuzz_values.py``: naive and extreme
datetimes, NUL, long unicode, IDNA hosts, deep nesting). No 5xx, no undocumented status, no
response-schema violation.

SQLite by default (``make test``); ``BROKER_FUZZ_DATABASE=postgresql`` runs it on the PostgreSQL of
``BROKER_TEST_DATABASE_URL`` instead (``.ci/run``), and fails when that is not given. Each test
prints its figures (shown with ``-rP``) and appends them to ``BROKER_FUZZ_REPORT`` (default:
``fuzz-report.jsonl`` in the run's pytest temporary directory), where the last one writes the totals."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fuzz_values import world_case
from fuzz_world import ROLES, World, seed
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from litestar.testing import AsyncTestClient
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, NegativeDataRejectionConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance

from broker.app import create_app
from broker.db.session import Database
from broker.services.access import ensure_admin

EXAMPLES = int(os.environ.get("BROKER_FUZZ_EXAMPLES") or 100)  # `make fuzz` asks for more
# Negative cases (schema-invalid on purpose) cost the most to generate and all end in a 4xx before
# the objects: 30 % as many, so that every (operation, role) pair gets EXAMPLES valid cases aimed at
# the world plus 0.3 x EXAMPLES invalid ones, within `make test`'s time (the world's real 2xx answers
# made the valid half dearer; 0.6 cost about a minute more of `make test` on 2 cores).
NEGATIVE_SHARE = 0.3
DATABASE = os.environ.get("BROKER_FUZZ_DATABASE") or "sqlite"
SHARDS = 3  # the operations in 3 slices per mode: 6 tests that pytest-xdist can spread evenly
ANONYMOUS = "anonymous"  # public operations are called without a key


def _openapi_path(path: str) -> str:
    """Litestar's ``/v1/orders/{order_id:str}`` -> OpenAPI's ``/v1/orders/{order_id}``."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


@dataclass
class FuzzTarget:
    app: Litestar
    world: World
    schema: BaseSchema
    session: asgi.ASGIClient

    def roles_for(self, method: str, path: str) -> list[str]:
        """The roles that may call the operation (no key at all for a public one)."""
        allowed = self._allowed.get((method, path), set())
        if allowed == {"public"}:
            return [ANONYMOUS]
        return [role for role in ROLES if role in allowed]

    def __post_init__(self) -> None:
        self._allowed: dict[tuple[str, str], set[str]] = {}
        for route in self.app.routes:
            for handler in getattr(route, "route_handlers", []):
                rules = handler.opt.get("access")
                for method in handler.http_methods:
                    self._allowed[(method, _openapi_path(route.path))] = (
                        {"public"} if rules == "public" else {str(role) for role in rules or ()})


async def _truncate_pg(url: str) -> None:
    """Every table empty but the migrations' catalogue (a fresh world per module)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from broker.db.base import Base

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables
                              if t.name not in ("catalogue_item", "registry_version"))
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def _seed_world(settings_) -> World:
    """The admin key, then both tenants through the HTTP API in process, then the relay's deliveries."""
    from sqlalchemy import select
    from support_relay import FakeQueue

    from broker.db.models import DecpRecordRow, WebhookDeliveryRow
    from workers.jobs.webhooks import relay_outbox

    db = Database(settings_.db)
    try:
        async with db.writer() as session:
            admin = await ensure_admin(session, bootstrap_key=None, now=datetime.now(UTC))
            await session.commit()
        assert admin

        async def relay() -> dict[str, list[str]]:
            await relay_outbox({"db": db, "enqueue": FakeQueue()})
            async with db.reader() as session:
                return {"delivery": list((await session.scalars(
                            select(WebhookDeliveryRow.id).order_by(WebhookDeliveryRow.id))).all()),
                        "decp": list((await session.scalars(
                            select(DecpRecordRow.id).order_by(DecpRecordRow.id))).all())}

        async with AsyncTestClient(app=create_app(settings_)) as client:
            world = await seed(client, admin, relay)
        world.keys["admin"] = admin
        return world
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def fuzz_database(request, make_settings, tmp_path_factory):
    """One database for the module with its seeded world: SQLite unless BROKER_FUZZ_DATABASE says
    postgresql (which then must be given: a missing PostgreSQL fails the run, never skips it)."""
    workdir = tmp_path_factory.mktemp("fuzz")
    if DATABASE == "postgresql":
        if not os.environ.get("BROKER_TEST_DATABASE_URL"):
            pytest.fail("BROKER_FUZZ_DATABASE=postgresql needs BROKER_TEST_DATABASE_URL")
        url = request.getfixturevalue("pg_migrated")
        asyncio.run(_truncate_pg(url))
    else:
        assert DATABASE == "sqlite", f"BROKER_FUZZ_DATABASE={DATABASE}: sqlite or postgresql"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), workdir / "broker.db")
        url = f"sqlite+aiosqlite:///{workdir / 'broker.db'}"
    settings_ = make_settings(url, workdir / "var")
    started = time.monotonic()
    world = asyncio.run(_seed_world(settings_))
    world.seconds = time.monotonic() - started
    return settings_, world


@pytest.fixture
def fuzz_target(fuzz_database):
    """An app over it and one in-process client, per test: schemathesis' pytest plugin ends the
    app's lifespan (which closes its database engine) when the test ends."""
    settings_, world = fuzz_database
    app = create_app(settings_)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    # Every call sends its role's key, which replaces whatever Authorization header was generated:
    # generating one would only cost time.
    schema.config.generation.update(with_security_parameters=False)
    # A body over the size limit is refused with its documented 413, which is a rejection too.
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"])
    # One client for every call (schemathesis would build one per call), which reads no proxy
    # settings from the environment on each request.
    with asgi.ASGIClient(app) as session:
        session.trust_env = False
        yield FuzzTarget(app=app, world=world, schema=schema, session=session)


_KEY = re.compile(r'("?)([A-Za-z0-9_:.-]{1,240})("?)')


def _scoped_key(key: str, role: str, path_parameters: dict[str, Any]) -> str:
    """A well-formed Idempotency-Key made unique to the role and the object named by the path.

    Records are keyed by (organisation, method, route *template*, key) and the body's hash
    (docs/requirements.md ID-3), so the generated keys, which repeat ("0", "00"…), would replay one
    object's stored answer for another object under the same route (a 2xx for a path that names
    nothing: the negative-data check fails), and the buyer's answer to the integration key of the
    same organisation. Reported to the lead; a malformed key is left as it is (it must stay a 400)."""
    match = _KEY.fullmatch(key)
    if match is None or match.group(1) != match.group(3):
        return key
    scope = hashlib.sha256(repr((role, sorted(path_parameters.items()))).encode()).hexdigest()[:8]
    return f"{match.group(1)}{match.group(2)}.{scope}{match.group(3)}"


def _fuzz(target: FuzzTarget, operation, mode: GenerationMode, roles: list[str], calls, cases: list[int],
          seen: Counter[str]) -> None:
    """EXAMPLES cases of ``operation`` (NEGATIVE_SHARE of that in negative mode), each sent as every
    one of ``roles``."""

    examples = EXAMPLES if mode is GenerationMode.POSITIVE else round(EXAMPLES * NEGATIVE_SHARE)

    @given(case=world_case(operation, mode, target.world))
    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        cases[0] += 1
        for role in roles:
            headers = {} if role == ANONYMOUS else {"Authorization": f"Bearer {target.world.keys[role]}"}
            if (key := case.headers.get("Idempotency-Key")) is not None:
                headers["Idempotency-Key"] = _scoped_key(key, role, case.path_parameters)
            # Semantic rules (SIRET Luhn, the commune table, signed cursors) and the hostile values
            # reject some schema-valid inputs by design with 400/422, so "positive data acceptance"
            # is the one check left out.
            try:
                response = case.call_and_validate(session=target.session, headers=headers,
                                                  excluded_checks=[positive_data_acceptance])
            except Exception as exc:
                exc.add_note(f"as {role}")
                raise
            finally:
                target.session.cookies.clear()  # as a client of its own per call would
            calls[role][response.status_code // 100] += 1
            seen[f"{role} {response.status_code}"] += 1

    run()


def _report(path: Path, line: dict[str, Any], expected: int) -> None:
    """Append this test's figures; the test that completes the set also writes the totals."""
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        handle.seek(0)
        lines = [json.loads(x) for x in handle.read().splitlines() if x.strip()]
        run = [x for x in lines if x.get("run") == line["run"] and "shard" in x]
        if len(run) == expected:
            total = {"run": line["run"], "total": True, "database": line["database"], "examples": EXAMPLES,
                     "pairs": sum(x["pairs"] for x in run), "cases": sum(x["cases"] for x in run),
                     "calls": sum(x["calls"] for x in run), "failures": sum(x["failures"] for x in run),
                     "statuses": dict(sum((Counter(x["statuses"]) for x in run), Counter())),
                     "cpu_s": round(sum(x["cpu_s"] for x in run), 1),
                     "world": run[0]["world"], "missing": run[0]["missing"]}
            total["summary"] = (
                f"fuzz [{line['database']}] total: {total['pairs'] // 2} (operation, role) pairs x <= "
                f"{EXAMPLES} valid + {round(EXAMPLES * NEGATIVE_SHARE)} invalid examples: {total['cases']} cases, "
                f"{total['calls']} calls {total['statuses']}, "
                f"{total['failures']} failures, {total['cpu_s']} s CPU; world: {total['world']}"
                + (f"; not seeded: {total['missing']}" if total["missing"] else ""))
            handle.write(json.dumps(total) + "\n")


@pytest.fixture(scope="session")
def fuzz_report(tmp_path_factory) -> tuple[str, Path]:
    """This pytest run's id (its temporary root, the same on every xdist worker) and the report file."""
    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    return str(root), Path(os.environ.get("BROKER_FUZZ_REPORT") or root / "fuzz-report.jsonl")


@pytest.mark.parametrize("shard", range(SHARDS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(fuzz_target, fuzz_report, mode, shard):
    """Each generated case is sent once per role that may call its operation, so every (operation,
    role) pair gets EXAMPLES cases (NEGATIVE_SHARE of that in negative mode) while each case is
    generated once."""
    target = fuzz_target
    cpu, wall = time.process_time(), time.monotonic()
    failures: list[str] = []
    calls: dict[str, Counter[int]] = {role: Counter() for role in (*ROLES, ANONYMOUS)}
    operations = dict.fromkeys((*ROLES, ANONYMOUS), 0)
    pairs = cases_total = 0
    by_operation: dict[str, dict[str, int]] = {}
    for index, result in enumerate(target.schema.get_all_operations()):
        if index % SHARDS != shard:
            continue
        operation = result.ok()
        roles = target.roles_for(operation.method.upper(), operation.path)
        assert roles, f"{operation.label}: no role may call it"
        for role in roles:
            operations[role] += 1
        pairs += len(roles)
        cases, seen = [0], Counter[str]()
        try:
            _fuzz(target, operation, mode, roles, calls, cases, seen)
        except Unsatisfiable:  # an operation with no input has no negative case
            assert mode is GenerationMode.NEGATIVE
        except Exception as exc:
            failures.append(f"{operation.label}: {exc} {' '.join(getattr(exc, '__notes__', []))}")
        cases_total += cases[0]
        by_operation[operation.label] = dict(sorted(seen.items()))
    world = target.world
    statuses: Counter[str] = Counter()
    for by_class in calls.values():
        statuses.update({f"{k}xx": v for k, v in by_class.items()})
    run_id, report = fuzz_report
    examples = EXAMPLES if mode is GenerationMode.POSITIVE else round(EXAMPLES * NEGATIVE_SHARE)
    figures = {"run": run_id, "shard": shard, "mode": mode.value, "database": DATABASE, "examples": examples,
               "operations": sum(1 for i, _ in enumerate(target.schema.get_all_operations()) if i % SHARDS == shard),
               "pairs": pairs, "cases": cases_total, "calls": sum(statuses.values()), "failures": len(failures),
               "statuses": dict(sorted(statuses.items())), "cpu_s": round(time.process_time() - cpu, 1),
               "wall_s": round(time.monotonic() - wall, 1), "world": world.size(),
               "world_seed_s": round(world.seconds, 1), "missing": world.missing,
               "by_operation": by_operation}
    figures["summary"] = (
        f"fuzz [{DATABASE}, {mode.value}, shard {shard + 1}/{SHARDS}]: {figures['operations']} operations, {pairs} "
        f"(operation, role) pairs x <= {figures['examples']} examples: {cases_total} cases, {figures['calls']} calls "
        f"{figures['statuses']}, {len(failures)} failures, {figures['cpu_s']} s CPU")
    print(figures["summary"], f"; world: {world.size()}", f"; not seeded: {world.missing}" if world.missing else "")
    _report(report, figures, expected=SHARDS * 2)
    assert failures == [], "\n\n".join(failures)
    # Enough operations per role in each slice…
    assert operations["admin"] >= 8 and operations["buyer"] >= 8 and operations["maker"] >= 8, operations
    assert operations["coordinator"] >= 5 and operations["integration"] >= 5, operations
    # …and each role's key was accepted: some valid cases succeeded (a refused key would only ever
    # meet its documented 401, and pass).
    if mode is GenerationMode.POSITIVE:
        assert all(calls[role][2] > 0 for role in ROLES), calls
