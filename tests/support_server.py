"""Start a real `broker up` (API server + arq worker + embedded Redis) for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class RunningBroker:
    url: str
    admin_key: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc), to check that none is left after a stop."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child in Path("/proc").glob("[0-9]*"):
            try:
                stat = (child / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(child.name))
                frontier.append(int(child.name))
    return found


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_broker(workdir: Path, **env_extra: str) -> Iterator[RunningBroker]:
    port = free_port()
    data = workdir / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env |= {"BROKER_PORT": str(port), "BROKER_DATA_DIR": str(data),
            "BROKER_DATABASE_URL": f"sqlite+aiosqlite:///{data}/broker.db", **env_extra}
    log = workdir / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "up"], cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        output = log.read_text()
        match = re.search(r"(fab_[a-z0-9]{12}_\S+)", output)
        assert match, output
        yield RunningBroker(url=f"http://127.0.0.1:{port}", admin_key=match.group(1), data_dir=data, process=proc,
                            log=log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
