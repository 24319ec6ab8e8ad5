"""`broker up` as a newcomer runs it: one command serves the API with a worker and an embedded
Redis, prints the admin key once, and one SIGINT stops the whole process tree."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support_server import alive, descendants


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_broker_up_serves_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env |= {"BROKER_PORT": str(port), "BROKER_DATA_DIR": str(tmp_path / "var"),
            "BROKER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/var/broker.db"}
    log = (tmp_path / "up.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "up"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        log.seek(0)
        output = log.read()
        assert ready is not None and ready.status_code == 200, output
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "worker": "ok"}
        key = re.search(r"(fab_[a-z0-9]{12}_\S+)", output).group(1)
        created = httpx.post(
            f"http://127.0.0.1:{port}/v1/organizations",
            json={"kind": "manufacture", "name": "La Fabrique du Trégor", "siret": "73282932000074",
                  "commune_insee": "22113"},
            headers={"Authorization": f"Bearer {key}"}, timeout=10,
        )
        assert created.status_code == 201, created.text
        tree = descendants(proc.pid)
        assert len(tree) >= 3  # redis-server, API server, worker
        # The worker yields the CPU to the API (BROKER_WORKER_NICE, 10 by default); the API does not.
        nice = [(_cmdline(pid).split(), _nice(pid)) for pid in tree]
        assert [n for argv, n in nice if argv[-1] == "worker"] == [10], nice
        assert {n for argv, n in nice if "granian" in argv} == {0}, nice
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        assert [pid for pid in tree if alive(pid)] == []
    finally:
        if proc.poll() is None:  # a failed assertion: stop the whole tree, not only `broker up`
            for pid in [*descendants(proc.pid), proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()

    # A second start keeps the data and does not print a new key.
    log2 = tmp_path / "up2.log"
    with log2.open("w") as out:
        again = subprocess.Popen([sys.executable, "-m", "broker.cli", "up"], cwd=tmp_path, env=env, stdout=out,
                                 stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            orgs = httpx.get(f"http://127.0.0.1:{port}/v1/organizations", headers={"Authorization": f"Bearer {key}"})
            assert [o["name"] for o in orgs.json()["items"]][-1] == "La Fabrique du Trégor"
        finally:
            again.send_signal(signal.SIGINT)
            again.wait(timeout=30)
    assert "fab_" not in log2.read_text()
