"""The ``broker`` command: up, migrate, serve, worker, create-admin-key, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from broker.settings import Settings, load_settings


def _settings() -> Settings:
    return load_settings(os.environ)


def cmd_migrate(_args: argparse.Namespace) -> int:
    from broker.db.migrate import upgrade

    settings = _settings()
    upgrade(settings.db.url)
    print(f"database migrated to head ({_safe_url(settings.db.url)})")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _ensure_admin(settings: Settings) -> str | None:
    from broker.db.session import Database
    from broker.services.access import ensure_admin

    db = Database(settings.db)
    try:
        async with db.writer() as session:
            token = await ensure_admin(session, bootstrap_key=settings.bootstrap_admin_key, now=datetime.now(UTC))
            await session.commit()
            return token
    finally:
        await db.dispose()


def cmd_create_admin_key(_args: argparse.Namespace) -> int:
    token = asyncio.run(_ensure_admin(_settings()))
    if token is None:
        print("an admin key already exists; nothing created", file=sys.stderr)
        return 1
    print(token)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run only the API (what compose's api service runs); granian with our factory."""
    settings = _settings()
    argv = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        args.host or settings.api.host,
        "--port",
        str(args.port or settings.api.port),
        "--workers",
        str(args.processes or settings.api.processes),
        "--log-level",
        settings.log_level.lower(),
        "broker.app:app_factory",
    ]
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return


def cmd_worker(_args: argparse.Namespace) -> int:
    """Run one arq worker (what compose's worker service runs)."""
    from arq.worker import Worker

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.worker_nice > 0:
        os.nice(settings.worker_nice)  # see Settings.worker_nice
    from workers.settings import worker_settings

    Worker(**worker_settings(settings)).run()
    return 0


def cmd_up(_args: argparse.Namespace) -> int:
    from broker.supervisor import run_up

    return run_up(dict(os.environ))


def cmd_demo(args: argparse.Namespace) -> int:
    from broker.supervisor import run_demo

    return run_demo(dict(os.environ), port=args.port, summary_json=args.summary_json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="broker",
        description="Fabrication order broker. Configuration comes from BROKER_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "up",
        help="migrate, start an embedded Redis (unless BROKER_REDIS_URL), the API and a worker",
        description="Migrate the database, start an embedded Redis unless BROKER_REDIS_URL is set, serve the API "
        "on BROKER_HOST:BROKER_PORT and run one arq worker. Ctrl-C stops everything.",
    ).set_defaults(func=cmd_up)
    sub.add_parser(
        "migrate",
        help="apply database migrations (Alembic) up to head",
        description="Apply every Alembic migration to BROKER_DATABASE_URL.",
    ).set_defaults(func=cmd_migrate)
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API only (no worker, no embedded Redis)",
        description="Serve the HTTP API with granian; needs BROKER_REDIS_URL and BROKER_SECRET_KEY.",
    )
    serve.add_argument("--host", help="bind address (default BROKER_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default BROKER_PORT or 8000)")
    serve.add_argument("--processes", type=int, help="API processes (default BROKER_API_PROCESSES or 1)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser(
        "worker", help="run one arq worker", description="Run one arq worker on BROKER_REDIS_URL."
    ).set_defaults(func=cmd_worker)
    sub.add_parser(
        "create-admin-key",
        help="create the first admin key and print it once",
        description="Create an admin key if none exists (BROKER_BOOTSTRAP_ADMIN_KEY if set) and print it.",
    ).set_defaults(func=cmd_create_admin_key)
    demo = sub.add_parser(
        "demo",
        help="seed ~100 workshops and tell the story: a desk request, then a visor crisis call",
        description="Start the broker on a fresh <BROKER_DATA_DIR>/demo (embedded SQLite and Redis, API, worker) on a "
        "free loopback port, seed ~100 workshops, three collectivités and a coordinator, run a France Services desk "
        "request to delivery and a visor crisis call, print a summary, and stop every process it started.",
    )
    demo.add_argument("--port", type=int, help="API port (default: a free one)")
    demo.add_argument("--summary-json", metavar="PATH", help="also write the summary figures as JSON to PATH")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
