"""`broker demo` as a newcomer runs it: the real command in a subprocess, on the embedded default, with a
time limit. It must succeed, report figures that add up, show signed events arriving, and leave no
process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from support_server import alive, descendants

from broker.demo import data

# A hang detector, not a speed target: the story takes about a minute on a quiet 2-core machine, and up to
# twice that while the rest of the suite runs beside it; 5 minutes leaves room for a loaded CI runner.
DEMO_LIMIT_S = 300


def test_broker_demo_tells_the_whole_story_and_stops_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    # Its own data dir: the demo writes only under <BROKER_DATA_DIR>/demo. A stray BROKER_REDIS_URL or
    # database URL must not matter (the demo always runs on the embedded default).
    env |= {"BROKER_DATA_DIR": str(tmp_path / "var"), "BROKER_REDIS_URL": "redis://127.0.0.1:1/0",
            "BROKER_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    summary_path = tmp_path / "summary.json"
    log = (tmp_path / "demo.log").open("w+")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "demo", "--summary-json", str(summary_path)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        while proc.poll() is None and time.monotonic() - started < DEMO_LIMIT_S:
            seen |= descendants(proc.pid)
            time.sleep(0.5)
        log.seek(0)
        output = log.read()
        assert proc.poll() is not None, f"broker demo still running after {DEMO_LIMIT_S} s:\n{output}"
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()

    # Every process it started is gone: redis-server, the API, the worker.
    assert len(seen) >= 3, seen
    time.sleep(0.5)
    assert [pid for pid in seen if alive(pid)] == []

    summary = json.loads(summary_path.read_text())
    assert summary["ok"] is True
    seeded = summary["seeded"]
    assert seeded["workshops"] == len(data.WORKSHOPS) >= 95
    assert set(seeded["by_settlement"]) == {"rural", "small town", "city"}
    assert seeded["collectivites"] == 3 and seeded["coordinators"] == 1

    desk = summary["desk"]
    assert desk["order_status"] == "delivered"
    assert desk["delivered"] == desk["requested"] == data.DeskStory().quantity and desk["unmet"] == 0
    assert desk["quotes"] == 3 and desk["invited"] >= 3
    assert 0 < desk["distance_km"] <= 120  # a Creuse or Limousin workshop, not one from Alsace
    # 4 desks at the cheapest quote, 20 % VAT
    assert desk["total_eur_ttc"] == f"{4 * min(map(float, data.DeskStory().prices)) * 1.2:.2f}"
    # … invoiced, deposited on the (fake) Chorus Pro and paid (issue 23)
    invoice = desk["invoice"]
    assert invoice["status"] == "mise_en_paiement" and invoice["number"] == "F-000001"
    assert invoice["received_on"] <= invoice["paid_on"] and invoice["due_on"]
    # Its procedure, from the law: far below the R.2122-8 threshold (40 000 € HT until 31 March 2026,
    # 60 000 € HT since), stated in French.
    assert desk["procedure"] == "sans_publicite" and desk["threshold_eur_ht"] in ("40000.00", "60000.00")
    assert "procédure\u00a0: marché sans publicité ni mise en concurrence préalables (art. R.2122-8, seuil de" in output

    # The third award to the same workshop asked why; the justification was stored with its rule.
    rotation = summary["rotation"]
    assert rotation["awards"] == len(data.RotationStory().sites) == 3
    assert rotation["asked"] == "rotation-justification-required"
    assert rotation["justifications"] == [{"code": "rotation", "text": data.RotationStory().justification}]

    # An award of 40 000 € HT or more left one DECP record, not overdue.
    decp = summary["decp"]
    story_decp = data.DecpStory()
    assert decp["marches"] == 1 and decp["overdue"] == 0
    assert decp["montant"] == story_decp.quantity * min(map(float, story_decp.prices)) >= 40_000
    assert decp["code_cpv"] == "39121100"

    crisis = summary["crisis"]
    story = data.CrisisStory()
    t = crisis["totals"]
    assert crisis["points"] == len(story.points) and crisis["status"] == "closed"
    assert t["requested"] == sum(p.quantity for p in story.points)
    # totals add up: committed + unmet = requested, and every accepted visor was made and delivered
    assert t["committed"] + t["unmet"] == t["requested"]
    assert t["delivered"] == t["produced"] == t["accepted"] == t["committed"]
    points = crisis["per_point"]
    for field in ("committed", "accepted", "delivered", "unmet"):
        assert sum(p[field] for p in points) == t[field], field
    assert all(p["committed"] + p["unmet"] == p["quantity"] for p in points)
    # three makers declined; the worker re-allocated what the remaining capacity allowed
    assert crisis["declined"]["workshops"] == len(story.declines) and crisis["declined"]["units"] > 0
    rebalances = crisis["rebalances"]  # usually one; two if the worker ran between the declines
    assert rebalances and all(r["reason"] == "decline" for r in rebalances)
    moved = sum(r["units_moved"] for r in rebalances)
    # A decline that lands after the last rebalance that moved units can only add to the unmet
    # (a rebalance that finds nothing to move records no row), so the final unmet is at least that.
    assert moved > 0 and rebalances[-1]["unmet_after"] <= t["unmet"]
    assert t["unmet"] == crisis["first_allocation"]["unmet"] + crisis["declined"]["units"] - moved
    assert 10 <= crisis["workshops_involved"] <= crisis["commitments"]
    assert crisis["km"] > 0 and crisis["unit_km"] / t["delivered"] <= story.max_distance_km

    # The buyer's ERP and the coordinator got their events, each signature checked by the receiver itself.
    hooks = summary["webhooks"]
    assert hooks["rejected"] == 0
    assert {"order.created", "order.delivered", "crisis_call.allocated", "commitment.declined",
            "crisis_call.rebalanced"} <= set(hooks["by_type"])

    # Data went to the demo's own directory, nowhere else.
    assert (tmp_path / "var" / "demo" / "broker.db").exists()
    assert "broker demo — summary" in output and "France Services desks" in output and "Visors, Grand Est" in output


def test_ctrl_c_stops_the_demo_and_everything_it_started(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKER_")}
    env["BROKER_DATA_DIR"] = str(tmp_path / "var")
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "demo"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= descendants(proc.pid)
            if "ready in" in (tmp_path / "demo.log").read_text():
                break
            time.sleep(0.2)
        time.sleep(1)  # in the middle of seeding
        seen |= descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "interrupted" in output and "Traceback" not in output, output
    assert len(seen) >= 4, seen  # redis-server, the API (and its granian worker), the worker
    time.sleep(0.5)
    assert [pid for pid in seen if alive(pid)] == []
