"""What every job receives in ``ctx`` besides arq's own keys."""

from __future__ import annotations

from typing import Any, TypedDict

from broker.db.session import Database
from broker.settings import Settings


class WorkerContext(TypedDict, total=False):
    settings: Settings
    db: Database
    redis: Any
    job_try: int
