"""Whether a worker runs, as readiness sees it: one Redis key, read by ``/health/ready`` in the same
round trip that checks Redis. Every worker writes ``up`` every `HEARTBEAT_S`; ``broker up``'s
supervisor writes ``down`` (with when it restarts the worker) the moment its worker dies. Without a
supervisor (compose) a dead worker stops writing and its heartbeat goes stale after `STALE_S`. No key
at all (a fresh Redis, the in-process tests): no worker ever reported here, readiness says nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec

WORKER_STATE_KEY = "broker:worker:state"
HEARTBEAT_S = 5.0
STALE_S = 30.0


class WorkerState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    up: bool
    at: float  # Unix time: the last heartbeat (up) or when the worker went down
    exit_code: int | None = None
    restart_at: float | None = None


def heartbeat(now: float) -> bytes:
    return msgspec.json.encode(WorkerState(up=True, at=now))


def down(now: float, *, exit_code: int | None, restart_at: float) -> bytes:
    return msgspec.json.encode(WorkerState(up=False, at=now, exit_code=exit_code, restart_at=restart_at))


def worker_check(raw: bytes | str | None, now: float) -> str | None:
    """``"ok"``, why the worker is not ready, or None when no worker ever reported to this Redis."""
    if raw is None:
        return None
    try:
        state = msgspec.json.decode(raw, type=WorkerState)
    except msgspec.DecodeError:
        return "unknown state"
    if state.up:
        age = now - state.at
        return "ok" if age <= STALE_S else f"no heartbeat for {age:.0f} s"
    if state.exit_code is None:
        return "starting"
    since = datetime.fromtimestamp(state.at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    text = f"down since {since} (exit code {state.exit_code})"
    if state.restart_at is not None:
        wait = math.ceil(state.restart_at - now)
        text += f", restarting in {wait} s" if wait > 0 else ", restarting"
    return text
