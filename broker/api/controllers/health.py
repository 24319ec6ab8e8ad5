"""Liveness and readiness (database, Redis and, once one has reported, the worker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import text

from broker.api.problems import build_problem, problem_response, problems
from broker.api.runtime import Runtime
from broker.api.schemas import Health
from broker.api.security import public, request_id
from broker.services.worker_health import WORKER_STATE_KEY, worker_check


@get("/health/live", opt=public(), security=[{}], tags=["health"], operation_id="health_live", responses=problems(429))
async def live() -> Health:
    return Health(status="ok", checks={})


@get(
    "/health/ready",
    opt=public(),
    security=[{}],
    tags=["health"],
    operation_id="health_ready",
    responses=problems(429, 503),
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2), runtime.db.reader() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        # One round trip checks Redis and reads the worker's state (a PING's cost).
        async with asyncio.timeout(2):
            worker = await runtime.redis.get(WORKER_STATE_KEY)
        checks["redis"] = "ok"
        if (state := worker_check(worker, time.time())) is not None:
            checks["worker"] = state
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return Response(Health(status="ok", checks=checks))
    problem = build_problem(
        503,
        "not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()),
        request_id=request_id(request),
        slug="not-ready",
        title="Not ready",
        checks=checks,
    )
    return problem_response(problem, headers={"Retry-After": "5"})
