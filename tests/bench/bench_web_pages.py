"""Server time of the web pages on a populated broker (e.g. the data `broker demo` leaves behind).

    BROKER_DATA_DIR=var/demo BROKER_DATABASE_URL=sqlite+aiosqlite:///var/demo/broker.db broker up &
    python tests/bench/bench_web_pages.py http://127.0.0.1:8000 <admin key printed by broker demo>

Creates one key per role for organisations already there (the buyer with the most requests, the
coordinator with the most calls, the maker with the most orders), signs in through the form and
reads every page's ``Server-Timing`` (the time from the request's arrival to the answer's start),
five times each; prints the median and the maximum per page and writes them as JSON."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import httpx

REPEAT = 5


def _key(client: httpx.Client, admin: str, org_id: str, role: str) -> str:
    made = client.post(f"/v1/organizations/{org_id}/api-keys", json={"role": role, "label": "bench web"},
                       headers={"Authorization": f"Bearer {admin}"})
    made.raise_for_status()
    return str(made.json()["key"])


def _orgs(client: httpx.Client, admin: str, kind: str) -> list[dict[str, str]]:
    found = client.get("/v1/organizations", params={"kind": kind, "limit": 200},
                       headers={"Authorization": f"Bearer {admin}"})
    found.raise_for_status()
    return list(found.json()["items"])


def _sign_in(base: str, key: str) -> httpx.Client:
    """A client holding a web session. The cookies are Secure, which httpx keeps for https only:
    on loopback http they are carried by hand."""
    client = httpx.Client(timeout=30, follow_redirects=False)
    page = client.get(f"{base}/app/connexion")
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    jar = dict(page.cookies.items())
    signed = client.post(f"{base}/app/connexion", data={"cle": key, "_csrf_signin": token.group(1), "suite": ""},
                         headers={"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    assert signed.status_code == 303, signed.text[:500]
    jar = {"broker_session": signed.cookies["broker_session"]}
    client.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    return client


def _time(client: httpx.Client, base: str, path: str) -> list[float]:
    out = []
    for _ in range(REPEAT):
        response = client.get(base + path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        out.append(float(response.headers["server-timing"].split("=", 1)[1]))
    return out


def main(base: str, admin: str) -> None:
    api = httpx.Client(base_url=base, timeout=30)
    results: dict[str, list[float]] = {}

    buyers = _orgs(api, admin, "collectivite")
    buyer_key = None
    best = -1
    for org in buyers:
        key = _key(api, admin, org["id"], "buyer")
        count = len(api.get("/v1/requests", headers={"Authorization": f"Bearer {key}"}).json()["items"])
        if count > best:
            best, buyer_key = count, key
    assert buyer_key
    buyer = _sign_in(base, buyer_key)
    pages = ["/app/demandes", "/app/catalogue", "/app/commandes", "/app/demandes/nouvelle?article=face-visor"]
    requests = api.get("/v1/requests", headers={"Authorization": f"Bearer {buyer_key}"}).json()["items"]
    pages += [f"/app/demandes/{r['id']}" for r in requests[:3]]
    orders = api.get("/v1/orders", headers={"Authorization": f"Bearer {buyer_key}"}).json()["items"]
    pages += [f"/app/commandes/{o['id']}" for o in orders[:2]]
    for path in pages:
        results[f"acheteur {path}"] = _time(buyer, base, path)

    coordination = _orgs(api, admin, "coordination")
    for org in coordination:
        key = _key(api, admin, org["id"], "coordinator")
        calls = api.get("/v1/crisis-calls", headers={"Authorization": f"Bearer {key}"}).json()["items"]
        if calls:
            boss = _sign_in(base, key)
            for path in ["/app/crises", f"/app/crises/{calls[0]['id']}", f"/app/crises/{calls[0]['id']}/tableau"]:
                results[f"coordination {path}"] = _time(boss, base, path)
            dashboard = boss.get(f"{base}/app/crises/{calls[0]['id']}").text
            land = re.search(r'href="(/app/crises/fond-de-carte\.svg\?cadre=[^"]+)"', dashboard)
            assert land, "the dashboard has no map backdrop"
            results["coordination (fond de carte)"] = _time(boss, base, land.group(1).replace("&amp;", "&"))
            break

    makers = _orgs(api, admin, "manufacture")[:40]
    for org in makers:
        key = _key(api, admin, org["id"], "maker")
        mine = api.get("/v1/commitments", headers={"Authorization": f"Bearer {key}"}).json()["items"]
        if mine:
            maker = _sign_in(base, key)
            for path in ["/app/atelier", "/app/invitations", "/app/commandes", "/app/engagements"]:
                results[f"atelier {path}"] = _time(maker, base, path)
            break

    operator = _sign_in(base, admin)
    for path in ["/app/admin/organisations", "/app/admin/ateliers", "/app/admin/journal", "/app/demandes"]:
        results[f"administration {path}"] = _time(operator, base, path)

    summary = {page: {"median_ms": round(statistics.median(v), 1), "max_ms": round(max(v), 1)}
               for page, v in results.items()}
    width = max(len(p) for p in summary)
    for page, figures in summary.items():
        print(f"{page:<{width}}  median {figures['median_ms']:>6.1f} ms   max {figures['max_ms']:>6.1f} ms")
    worst = max(f["max_ms"] for f in summary.values())
    print(f"{len(summary)} pages, {len(summary) * REPEAT} requests; slowest answer {worst:.1f} ms")
    out = Path("var/test-artifacts/web-bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), sys.argv[2])
