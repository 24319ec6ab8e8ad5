"""Issue 21 item 5 on the pages: the buyer's requests and either side's orders, newest first, searched,
filtered and sorted in the query, paged with cursors that keep all of it, and exported as CSV (the
same rows, French headers, dates and decimal commas), each organisation seeing its own alone."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from support_web import Browser, signed_in

from broker.web.pages import buyer as buyer_pages
from broker.web.pages import lists
from broker.web.pages import orders as order_pages

DAY = timedelta(days=1)


async def _request(client: Any, key: str, item: str, quantity: int, insee: str, days: int) -> dict[str, Any]:
    body = {"item": item, "quantity": quantity, "allow_split": True, "min_quotes": 1,
            "deadline": (datetime.now(UTC) + days * DAY).isoformat(),
            "delivery": {"commune_insee": insee, "address": "Hôtel de ville"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "1.00"}}
    made = await client.post("/v1/requests", json=body, headers={**bearer(key), "Idempotency-Key": str(uuid.uuid4())})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def _order(client: Any, buyer: str, maker: str, request: dict[str, Any]) -> dict[str, Any]:
    quote = {"unit_price_eur_ht": "1100.00", "vat_rate": "20", "quantity": request["quantity"],
             "delivery_date": (datetime.now(UTC).date() + 20 * DAY).isoformat()}
    quoted = await client.post(f"/v1/requests/{request['id']}/quotes", json=quote,
                               headers={**bearer(maker), "Idempotency-Key": str(uuid.uuid4())})
    assert quoted.status_code == 201, quoted.text
    awarded = await client.post(f"/v1/requests/{request['id']}/award",
                                json={"quote_ids": [quoted.json()["id"]], "justification": "Seul devis reçu"},
                                headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())})
    assert awarded.status_code == 201, awarded.text
    return dict(awarded.json()["orders"][0])


@pytest.fixture
async def world(client: Any, admin_key: str) -> dict[str, Any]:
    """Buyer A (Vitré): a desk order for Vitré, visors for Rennes (nobody makes them: still open), a
    desk order for Rennes, created in that order. Buyer B: one desk order of its own."""
    _shop, maker = await make_workshop(client, admin_key, name="Menuiserie Alpha", commune_insee="35238",
                                       machines=WOOD_SHOP, capacities={"france-services-desk": 50})
    _a, buyer_a = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Vitré",
                               commune_insee="35360")
    _b, buyer_b = await tenant(client, admin_key, "collectivite", "buyer", name="Commune de Fougères",
                               commune_insee="35115")
    r1 = await _request(client, buyer_a, "france-services-desk", 6, "35360", 30)
    r2 = await _request(client, buyer_a, "face-visor", 100, "35238", 60)
    r3 = await _request(client, buyer_a, "france-services-desk", 12, "35238", 40)
    r4 = await _request(client, buyer_b, "france-services-desk", 7, "35115", 30)
    o1, o3 = await _order(client, buyer_a, maker, r1), await _order(client, buyer_a, maker, r3)
    o4 = await _order(client, buyer_b, maker, r4)
    return {"a": Browser(client, await signed_in(client, buyer_a)),
            "b": Browser(client, await signed_in(client, buyer_b)),
            "maker": Browser(client, await signed_in(client, maker)),
            "r": [r1, r2, r3, r4], "o": [o1, o3, o4], "client": client}


async def _ids(browser: Browser, path: str, status: int = 200) -> list[str]:
    page = await browser.get(path, status)
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return re.findall(r'href="/app/(?:demandes|commandes)/([^"/]+)"', body)


async def _csv(world: dict[str, Any], browser: Browser, path: str) -> list[list[str]]:
    response = await world["client"].get(path, headers={"Cookie": browser.cookie})
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM: a spreadsheet reads UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


async def test_search_filter_and_sort_requests(world: dict[str, Any]) -> None:
    a = world["a"]
    r1, r2, r3, r4 = (r["id"] for r in world["r"])
    assert await _ids(a, "/app/demandes") == [r3, r2, r1]  # newest first, B's request never
    assert await _ids(a, "/app/demandes?recherche=VISI") == [r2]  # object name, any case
    assert await _ids(a, f"/app/demandes?recherche={world['o'][0]['number'].lower()}") == [r1]  # order number
    assert await _ids(a, "/app/demandes?recherche=Vitr%C3%A9") == [r1]  # commune name
    assert await _ids(a, "/app/demandes?etat=awarded") == [r3, r1]
    assert await _ids(a, "/app/demandes?etat=open") == [r2]
    since = (datetime.now(UTC) + 50 * DAY).date().isoformat()
    assert await _ids(a, f"/app/demandes?dates=echeance&du={since}") == [r2]
    assert await _ids(a, "/app/demandes?commune=Rennes") == [r3, r2]
    assert await _ids(a, "/app/demandes?tri=quantite") == [r1, r3, r2]
    assert await _ids(a, "/app/demandes?tri=-quantite&commune=Rennes") == [r2, r3]
    assert await _ids(a, "/app/demandes?tri=echeance") == [r1, r3, r2]
    page = await a.get("/app/demandes?tri=quantite&etat=awarded")
    assert 'aria-sort="ascending"' in page and "tri=-quantite" in page  # the heading reverses the sort
    assert await _ids(world["b"], "/app/demandes") == [r4]
    assert await _ids(a, "/app/demandes?du=2026-13-45", 422) == []


async def test_pages_keep_the_sort_and_filters(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lists, "PAGE", 1)
    monkeypatch.setattr(buyer_pages, "PAGE", 1)
    a = world["a"]
    r1, r2, r3, _r4 = (r["id"] for r in world["r"])
    seen, path = [], "/app/demandes?tri=-quantite"
    while path:
        page = await a.get(path)
        seen += await _ids(a, path)
        found = re.search(r'<a href="(\?[^"]*curseur=[^"]+)">Demandes suivantes', page)
        path = "/app/demandes" + found.group(1).replace("&amp;", "&") if found else ""
        if found:
            assert "tri=-quantite" in path
    assert seen == [r2, r3, r1]
    first = await a.get("/app/demandes?tri=-quantite")
    cursor = re.search(r"curseur=([^\"&]+)", first).group(1)
    await a.get(f"/app/demandes?tri=quantite&curseur={cursor}", 400)  # a cursor of another sort


async def test_csv_exports_the_rows_shown(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    a = world["a"]
    shown = await _ids(a, "/app/demandes?tri=quantite")
    rows = await _csv(world, a, "/app/demandes?tri=quantite&format=csv")
    assert rows[0] == ["Objet", "Quantité", "Commune de livraison", "Date limite", "État", "Créée le", "Référence"]
    assert [row[-1] for row in rows[1:]] == shown
    assert [row[1] for row in rows[1:]] == ["6", "12", "100"]
    assert rows[1][2] == "Vitré (35)" and re.fullmatch(r"\d\d/\d\d/\d{4}", rows[1][3])
    # Orders: French figures; each side's export holds its own orders alone.
    o1, o3, o4 = world["o"]
    orders = await _csv(world, a, "/app/commandes?format=csv")
    assert orders[0][:4] == ["Numéro", "Objet", "Atelier", "Commune de livraison"]
    assert [row[0] for row in orders[1:]] == [o3["number"], o1["number"]]
    assert orders[2][5:9] == ["1100,00", "6600,00", "1320,00", "7920,00"]
    assert await _ids(a, "/app/commandes") == [o3["id"], o1["id"]]
    assert [row[0] for row in (await _csv(world, world["b"], "/app/commandes?format=csv"))[1:]] == [o4["number"]]
    assert [row[-1] for row in (await _csv(world, world["b"], "/app/demandes?format=csv"))[1:]] == \
        [world["r"][3]["id"]]
    maker = await _csv(world, world["maker"], "/app/commandes?format=csv&tri=numero")
    assert sorted(row[0] for row in maker[1:]) == [row[0] for row in maker[1:]] and len(maker) == 4
    # The cap: the rows up to it, then a note.
    monkeypatch.setattr(lists, "EXPORT_CAP", 2)
    monkeypatch.setattr(order_pages, "EXPORT_CAP", 2)
    capped = await _csv(world, world["maker"], "/app/commandes?format=csv")
    assert len(capped) == 4 and capped[-1][0].startswith("Export limité aux 2 premières lignes")
