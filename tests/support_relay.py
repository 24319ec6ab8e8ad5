"""The relay's ``ctx["enqueue"]`` without Redis, for the in-process relay tests: it keeps the jobs
(skipping a job id already queued, as arq does) and hands back their ids for the test to run."""

from __future__ import annotations

from typing import Any


class FakeQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, Any, str]] = []
        self.markers: set[str] = set()

    async def lost_data(self) -> bool:
        return False

    async def absent(self, keys) -> set[str]:
        return set(keys) - self.markers

    async def enqueue_many(self, jobs, *, marker: str = "", marker_ttl_ms: int = 0) -> int:
        new = [(name, args[0], job_id) for name, args, job_id in jobs if all(j[2] != job_id for j in self.jobs)]
        self.jobs += new
        if marker:
            self.markers.add(marker)
        return len(new)

    def take(self, name: str) -> list[str]:
        """The queued jobs of ``name``, removed; a job of several deliveries gives each of its ids."""
        picked: list[str] = []
        for n, arg, _ in self.jobs:
            if n == name:
                picked += arg if isinstance(arg, list) else [arg]
        self.jobs = [j for j in self.jobs if j[0] != name]
        return picked
