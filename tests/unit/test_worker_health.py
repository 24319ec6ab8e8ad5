"""What readiness reads of the worker's state (broker.services.worker_health)."""

from __future__ import annotations

from broker.services.worker_health import STALE_S, down, heartbeat, worker_check

NOW = 1_800_000_000.0


def test_no_state_means_no_check_and_a_fresh_heartbeat_is_ok():
    assert worker_check(None, NOW) is None
    assert worker_check(heartbeat(NOW - 3), NOW) == "ok"
    assert worker_check(heartbeat(NOW - 3).decode(), NOW) == "ok"


def test_a_stale_heartbeat_is_a_worker_down():
    assert worker_check(heartbeat(NOW - STALE_S - 5), NOW) == f"no heartbeat for {STALE_S + 5:.0f} s"


def test_a_dead_worker_says_since_when_and_when_it_restarts():
    state = down(NOW - 2, exit_code=-9, restart_at=NOW + 3.2)
    assert worker_check(state, NOW) == "down since 2027-01-15T07:59:58Z (exit code -9), restarting in 4 s"
    assert worker_check(state, NOW + 10) == "down since 2027-01-15T07:59:58Z (exit code -9), restarting"
    assert worker_check(down(NOW, exit_code=None, restart_at=NOW), NOW) == "starting"
    assert worker_check(b"garbage", NOW) == "unknown state"
