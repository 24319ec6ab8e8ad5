"""Issue 21 item 4 on the pages (in-process, signed in by session cookie): every commune field takes
a name, a postcode or an INSEE code; one match is taken and shown back as « Nom (département) »;
several come back as radio buttons (no JavaScript needed), most populous first; none names what was
typed. The suggestions endpoint feeds app.js's <datalist>, and ``GET /v1/communes?q=`` answers alike."""

from __future__ import annotations

import html
import re
from typing import Any

from factories import bearer, make_siret, tenant


async def signed_in(client: Any, key: str) -> tuple[str, str]:
    """A session cookie of a web sign-in (sent by hand: the cookies are Secure, the client is http)
    and a page's CSRF token."""
    page = await client.get("/app/connexion")
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    jar = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    signed = await client.post("/app/connexion", data={"cle": key, "_csrf_signin": token.group(1), "suite": ""},
                               headers={"Cookie": jar}, follow_redirects=False)
    assert signed.status_code == 303, signed.text[:500]
    cookie = f"broker_session={signed.cookies['broker_session']}"
    home = await client.get(signed.headers["location"], headers={"Cookie": cookie})
    csrf = re.search(r'name="_csrf" value="([^"]+)"', home.text)
    assert csrf, home.text[:500]
    return cookie, csrf.group(1)


class Person:
    def __init__(self, client: Any, cookie: str, csrf: str) -> None:
        self.client, self.cookie, self.csrf = client, cookie, csrf

    async def get(self, path: str) -> str:
        response = await self.client.get(path, headers={"Cookie": self.cookie}, follow_redirects=False)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return html.unescape(response.text)

    async def post(self, path: str, data: dict[str, str], status: int) -> str:
        response = await self.client.post(path, data={"_csrf": self.csrf, **data}, headers={"Cookie": self.cookie},
                                          follow_redirects=False)
        assert response.status_code == status, (path, response.status_code, response.text[:800])
        return html.unescape(response.text)


async def person(client: Any, admin_key: str, kind: str, role: str, **kw: Any) -> tuple[dict[str, Any], Person]:
    org, key = await tenant(client, admin_key, kind, role, **kw)
    return org, Person(client, *await signed_in(client, key))


def field_value(page: str, name: str) -> str:
    found = re.search(rf'<input id="f-{name}" name="{name}" type="text" value="([^"]*)"', page)
    assert found, page[:500]
    return found.group(1)


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="e-{name}">.*?</span>(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


def choices(page: str, name: str) -> list[tuple[str, str]]:
    """The radio buttons offered under a field: (INSEE code, label)."""
    return re.findall(rf'name="{name}_choix" type="radio" value="([^"]+)">\s*<label [^>]*>([^<]*)</label>', page)


async def test_the_workshop_profile_takes_a_name_a_postcode_or_a_code(client, admin_key):
    _org, maker = await person(client, admin_key, "manufacture", "maker", commune_insee="88160")
    profile = {"rayon": "50", "metiers": "bois"}

    # Épinal's INSEE code is also Le Thillot's postcode: Épinal comes first, and the pick is taken
    page = await maker.post("/app/atelier", {**profile, "commune": "88160"}, status=422)
    assert field_error(page, "commune").startswith("« 88160 » désigne 5 communes : choisissez la vôtre")
    offered = choices(page, "commune")
    assert offered[0] == ("88160", "Épinal — Vosges (88), code INSEE 88160, 31\u202f740 habitants")
    assert [insee for insee, _ in offered[1:]] == ["88468", "88369", "88188", "88302"]
    assert field_value(page, "commune") == "88160"  # what was typed stays
    await maker.post("/app/atelier", {**profile, "commune": "88160", "commune_choix": "88160"}, status=303)
    page = await maker.get("/app/atelier")
    assert field_value(page, "commune") == "Épinal (88)"  # the stored code, shown so that it posts back the same
    await maker.post("/app/atelier", {**profile, "commune": field_value(page, "commune")}, status=303)

    # A name: it was refused; two communes bear it
    page = await maker.post("/app/atelier", {**profile, "commune": "Aubusson"}, status=422)
    assert [(i, label.split(",")[0]) for i, label in choices(page, "commune")] == [
        ("23008", "Aubusson — Creuse (23)"), ("61011", "Aubusson — Orne (61)")]
    await maker.post("/app/atelier", {**profile, "commune": "aubusson (23)"}, status=303)
    assert field_value(await maker.get("/app/atelier"), "commune") == "Aubusson (23)"

    # Nothing: the error names what was typed, and no choice is offered
    page = await maker.post("/app/atelier", {**profile, "commune": "Atlantide"}, status=422)
    assert field_error(page, "commune").startswith("Aucune commune française ne correspond à « Atlantide »")
    assert choices(page, "commune") == []


async def test_the_request_form_reads_each_way_of_typing_a_commune(client, admin_key):
    _org, buyer = await person(client, admin_key, "collectivite", "buyer", commune_insee="88160")
    page = await buyer.get("/app/demandes/nouvelle")
    assert field_value(page, "commune") == "Épinal (88)"  # the organisation's commune, not a bare 88160

    # The other fields are wrong (no model chosen): the commune field alone is checked here
    for typed, shown in [("68100 Mulhouse", "Mulhouse (68)"), ("epinal", "Épinal (88)"), ("2a004", "Ajaccio (2A)"),
                         ("St-Denis (93)", "Saint-Denis (93)"), ("Le Thillot (88)", "Thillot (88)")]:
        page = await buyer.post("/app/demandes/nouvelle", {"commune": typed, "quantite": "deux"}, status=422)
        assert field_error(page, "commune") == "" and field_value(page, "commune") == shown, typed

    # Mulhouse's postcode is Fulleren's INSEE code: Mulhouse comes first (it used to suggest Fulleren)
    page = await buyer.post("/app/demandes/nouvelle", {"commune": "68100"}, status=422)
    assert field_error(page, "commune").endswith("par exemple « Mulhouse (68) ».")
    assert choices(page, "commune") == [
        ("68224", "Mulhouse — Haut-Rhin (68), code postal 68100, 109\u202f443 habitants"),
        ("68100", "Fulleren — Haut-Rhin (68), code INSEE 68100, 342 habitants")]
    page = await buyer.post("/app/demandes/nouvelle", {"commune": "68100", "commune_choix": "68224"}, status=422)
    assert field_error(page, "commune") == "" and field_value(page, "commune") == "Mulhouse (68)"

    # A shared name: every Saint-Denis with its department, the most populous first
    page = await buyer.post("/app/demandes/nouvelle", {"commune": "Saint Denis"}, status=422)
    assert [label.split(",")[0] for _, label in choices(page, "commune")] == [
        "Saint-Denis — La Réunion (974)", "Saint-Denis — Seine-Saint-Denis (93)", "Saint-Denis — Aude (11)",
        "Saint-Denis — Gard (30)"]


async def test_crisis_points_and_a_new_organisation_take_names_too(client, admin_key):
    _org, coordinator = await person(client, admin_key, "coordination", "coordinator")
    page = await coordinator.post("/app/crises/nouvel-appel", {
        "label_1": "CHU", "commune_1": "Lannion", "quantite_1": "10",
        "label_2": "EHPAD", "commune_2": "22300", "quantite_2": "10"}, status=422)  # no model chosen
    assert field_error(page, "commune_1") == "" and field_value(page, "commune_1") == "Lannion (22)"
    assert choices(page, "commune_2")[0][0] == "22113"  # Lannion first, then Saint-Hervé and the rest

    admin = Person(client, *await signed_in(client, admin_key))
    created = await admin.client.post("/app/admin/organisations", data={
        "_csrf": admin.csrf, "type": "collectivite", "nom": "Ville de Mulhouse", "siret": make_siret(),
        "commune": "68100", "commune_choix": "68224"}, headers={"Cookie": admin.cookie}, follow_redirects=False)
    assert created.status_code == 303, created.text[:800]
    org_id = created.headers["location"].rsplit("/", 1)[1]
    org = await client.get(f"/v1/organizations/{org_id}", headers=bearer(admin_key))
    assert org.json()["commune_insee"] == "68224"


async def test_suggestions_feed_the_datalist_and_the_api_answers_alike(client, admin_key):
    _org, buyer = await person(client, admin_key, "collectivite", "buyer")
    page = await buyer.get("/app/demandes/nouvelle")
    assert 'data-commune-suggest="/app/communes/suggestions"' in page
    response = await client.get("/app/communes/suggestions", params={"q": "mulh"}, headers={"Cookie": buyer.cookie})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    first = response.json()["items"][0]
    assert first == {"value": "Mulhouse (68)", "insee": "68224", "department": "Haut-Rhin",
                     "postcodes": ["68100", "68200"], "population": 109443}
    assert [c["value"] for c in response.json()["items"]] == ["Mulhouse (68)", "Mulhausen (67)"]
    many = await client.get("/app/communes/suggestions", params={"q": "saint"}, headers={"Cookie": buyer.cookie})
    assert len(many.json()["items"]) == 10
    short = await client.get("/app/communes/suggestions", params={"q": "m"}, headers={"Cookie": buyer.cookie})
    assert short.json() == {"items": []}
    anonymous = await client.get("/app/communes/suggestions", params={"q": "mulh"}, follow_redirects=False)
    assert anonymous.status_code == 303  # to the sign-in page

    buyer_key = (await tenant(client, admin_key, "collectivite", "buyer"))[1]
    by_code = await client.get("/v1/communes", params={"q": "68100"}, headers=bearer(buyer_key))
    assert [c["insee"] for c in by_code.json()["items"]] == ["68224", "68100"]
    by_name = await client.get("/v1/communes", params={"q": "EPINAL"}, headers=bearer(buyer_key))
    assert [c["name"] for c in by_name.json()["items"]] == ["Épinal"]
    corsica = await client.get("/v1/communes", params={"q": "2B033"}, headers=bearer(buyer_key))
    assert [c["name"] for c in corsica.json()["items"]] == ["Bastia"]
    by_postcode = await client.get("/v1/communes", params={"postcode": "35000"}, headers=bearer(buyer_key))
    assert [c["insee"] for c in by_postcode.json()["items"]] == ["35238"]
    for params in ({}, {"q": "Rennes", "postcode": "35000"}):
        refused = await client.get("/v1/communes", params=params, headers=bearer(buyer_key))
        assert refused.status_code == 422, refused.text
