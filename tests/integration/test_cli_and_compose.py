"""The CLI answers --help everywhere, and compose.yaml only runs commands the CLI has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from broker.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["up", "migrate", "serve", "worker", "create-admin-key", "demo"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command):
    result = subprocess.run([sys.executable, "-m", "broker.cli", *command, "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: broker" in result.stdout


def test_compose_parses_and_runs_only_real_commands():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= services.keys()
    assert services["api"]["deploy"]["replicas"] == 2 and services["worker"]["deploy"]["replicas"] == 2
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert compose.get("volumes")
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    seen = []
    for name, service in services.items():
        command = service.get("command")
        if not command or command[0] != "broker":
            continue
        seen.append(command[1])
        assert command[1] in subcommands, f"{name}: broker {command[1]} does not exist"
        subcommands[command[1]].parse_args(command[2:])  # its options exist too
    assert {"migrate", "serve", "worker"} <= set(seen)
    env = services["api"]["environment"]
    assert env["BROKER_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["BROKER_REDIS_URL"].startswith("redis://")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make up" in readme


def test_the_image_installs_the_locked_versions():
    """The Dockerfile installs requirements.lock with its hashes, then the project without resolving again,
    and copies only files that exist."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _target = line.split()[1:]
            assert all((ROOT / source).exists() for source in sources), line
