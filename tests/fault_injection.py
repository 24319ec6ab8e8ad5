"""Crashes injected between a commit and the enqueue that should follow it (G3, T2.a), for the fault
tests' real processes only; nothing here is imported by the broker itself.

- ``app_factory``: the API, whose wake-up of the relay (after the request's commit) raises with
  probability ``FAULT_API_RATE``: the client gets a 500 for a request that did commit.
- ``python tests/fault_injection.py``: a worker whose relay raises, with probability
  ``FAULT_RELAY_RATE``, right after committing its claim and before enqueueing the deliveries; every
  ``FAULT_RELAY_EXIT_EVERY``-th injection kills the process instead (``os._exit``), which the
  test's supervisor restarts.

Each injection increments ``fault:injected:{api,relay}`` in the test's own Redis, up to
``FAULT_BUDGET`` each; then the processes behave normally."""

from __future__ import annotations

import os
import random
import sys
from typing import Any

from broker.api import context
from broker.services.jobs import DELIVER
from workers import enqueue

API_RATE = float(os.environ.get("FAULT_API_RATE", "0"))
RELAY_RATE = float(os.environ.get("FAULT_RELAY_RATE", "0"))
EXIT_EVERY = int(os.environ.get("FAULT_RELAY_EXIT_EVERY", "0"))
BUDGET = int(os.environ.get("FAULT_BUDGET", "0"))
_rng = random.Random(os.getpid())


class InjectedCrash(RuntimeError):
    pass


_signal = context.signal_after_commit


async def _signal_or_crash(queue: Any, jobs: Any, *, wake_relay: bool) -> bool:
    if wake_relay and _rng.random() < API_RATE and await queue._redis.incr("fault:injected:api") <= BUDGET:
        raise InjectedCrash("injected: the API died after its commit, before waking the relay")
    return await _signal(queue, jobs, wake_relay=wake_relay)


_enqueue_many = enqueue.Enqueuer.enqueue_many


async def _enqueue_or_crash(self: enqueue.Enqueuer, jobs: Any, **kwargs: Any) -> int:
    if jobs and jobs[0].function == DELIVER and _rng.random() < RELAY_RATE:
        n = await self._redis.incr("fault:injected:relay")
        if n <= BUDGET:
            if EXIT_EVERY and n % EXIT_EVERY == 0:
                os._exit(137)  # the worker dies between the claim's commit and the enqueue
            raise InjectedCrash("injected: the relay died after its commit, before enqueueing")
    return await _enqueue_many(self, jobs, **kwargs)


context.signal_after_commit = _signal_or_crash  # type: ignore[assignment]
enqueue.Enqueuer.enqueue_many = _enqueue_or_crash  # type: ignore[method-assign]


def app_factory() -> Any:
    from broker.app import app_factory as real

    return real()


if __name__ == "__main__":
    from broker.cli import main

    sys.exit(main(["worker"]))
