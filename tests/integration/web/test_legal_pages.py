"""Issue 21 item 9: the pages a public service links from its footer (mentions légales, accessibility
statement, personal data, help) open without signing in, are linked from the foot of every page, are in
French with French typography, and say what is true of this broker: the accessibility statement says
« non conforme » (no audit), the personal data page names the real cookies with their real lifetimes,
and the figures follow the settings."""

from __future__ import annotations

import html
import re
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from broker.app import create_app
from broker.settings import Settings
from broker.web.labels import day
from broker.web.pages.legal import STATEMENT_DATE
from broker.web.session import FLASH_COOKIE, SESSION_COOKIE, SIGNIN_COOKIE

PAGES = {
    "/app/mentions-legales": "Mentions légales",
    "/app/accessibilite": "Déclaration d'accessibilité",
    "/app/donnees-personnelles": "Données personnelles",
    "/app/aide": "Aide",
}
NBSP = "\u00a0"
NO_BREAK = "\u00a0\u202f"
# Words of an English sentence that French never spells alike.
ENGLISH = re.compile(r"\b(the|and|of|is|are|to|with|for|this|that|you|your|not|please|sign|click|here)\b", re.I)


def visible(markup: str) -> str:
    """The text a person reads: no markup, scripts or attributes; entities decoded; runs of ordinary
    white space as one space (the no-break spaces stay: they are French typography)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    body = re.sub(r"</?(strong|em|a|span|time|abbr|code)\b[^>]*>", "", body)  # inline: no space of their own
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def prose(markup: str) -> str:
    """The visible text of the page's main part and footer, without code samples (``Authorization: Bearer``)."""
    found = re.search(r"<main\b.*?</main>", markup, flags=re.S)
    foot = re.search(r"<footer\b.*?</footer>", markup, flags=re.S)
    assert found and foot
    return visible(re.sub(r"<code>.*?</code>", "", found.group(0) + foot.group(0), flags=re.S))


def footer_links(markup: str) -> list[str]:
    foot = re.search(r"<footer\b.*?</footer>", markup, flags=re.S)
    assert foot, markup[-500:]
    return re.findall(r'href="([^"]+)"', foot.group(0))


@pytest.mark.parametrize("path", list(PAGES))
async def test_each_page_opens_without_a_session_in_french_typography(client: Any, path: str) -> None:
    response = await client.get(path, follow_redirects=False)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert SESSION_COOKIE not in response.cookies
    page = response.text
    assert f"<h1>{PAGES[path]}</h1>" in page
    text = prose(page)
    assert not ENGLISH.search(text), ENGLISH.search(text)
    assert "lorem" not in text.lower()
    # A no-break space before « : ; ! ? » and inside « », as the other pages write them.
    assert not re.findall(rf".{{0,30}}(?<![{NO_BREAK}])[:;!?](?=\s|$)", text)
    assert not re.findall(rf"«(?![{NO_BREAK}]).{{0,30}}", text)
    assert not re.findall(rf".{{0,30}}(?<![{NO_BREAK}])»", text)
    # The page links to itself from the footer, marked as the current one.
    assert re.search(rf'<a href="{path}" aria-current="page">', page)


async def test_the_sign_in_page_and_every_other_page_link_them_from_the_footer(client: Any, admin_key: str) -> None:
    signin = await client.get("/app/connexion")
    assert signin.status_code == 200
    assert footer_links(signin.text) == list(PAGES)
    assert f"Accessibilité{NBSP}: non conforme" in visible(signin.text)

    missing = await client.get("/app/nulle-part")  # the 404 page has it too
    assert missing.status_code == 404 and footer_links(missing.text) == list(PAGES)

    page = await client.get("/app/connexion")
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token
    jar = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    signed = await client.post("/app/connexion", data={"cle": admin_key, "_csrf_signin": token.group(1), "suite": ""},
                               headers={"Cookie": jar}, follow_redirects=False)
    assert signed.status_code == 303
    cookie = f"{SESSION_COOKIE}={signed.cookies[SESSION_COOKIE]}"
    admin_page = await client.get("/app/admin/organisations", headers={"Cookie": cookie})
    assert admin_page.status_code == 200 and footer_links(admin_page.text) == list(PAGES)
    # Signed in, the public pages still open (and say nothing of the session).
    assert (await client.get("/app/aide", headers={"Cookie": cookie})).status_code == 200


async def test_the_accessibility_statement_says_non_conforme_and_when(client: Any) -> None:
    text = prose((await client.get("/app/accessibilite")).text)
    assert "est non conforme avec le référentiel général d'amélioration de l'accessibilité (RGAA)" in text
    assert "aucun audit" in text
    assert f"Cette déclaration a été établie le {day(STATEMENT_DATE)}." in text
    assert "Dérogations pour charge disproportionnée Aucune." in text
    assert "Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX" in text
    # Known defects it lists are the real ones: the automatic reloads, the untagged PDF documents.
    assert "toutes les 2\u00a0secondes" in text and "ne sont pas balisés" in text


async def test_the_personal_data_page_names_the_real_cookies(client: Any) -> None:
    page = (await client.get("/app/donnees-personnelles")).text
    text = prose(page)
    for name in (SESSION_COOKIE, SIGNIN_COOKIE, FLASH_COOKIE):
        assert f"<code>{name}</code>" in page
    # Lifetimes as broker.web.session sets them: 10 hours, 1 hour, 2 minutes.
    row = re.search(rf"<code>{SESSION_COOKIE}</code>.*?</tr>", page, flags=re.S)
    assert row and f"10{NBSP}heures" in row.group(0) and "(Lax)" in row.group(0)
    row = re.search(rf"<code>{SIGNIN_COOKIE}</code>.*?</tr>", page, flags=re.S)
    assert row and f"1{NBSP}heure<" in row.group(0) and "(Strict)" in row.group(0)
    row = re.search(rf"<code>{FLASH_COOKIE}</code>.*?</tr>", page, flags=re.S)
    assert row and f"2{NBSP}minutes" in row.group(0)
    assert "<code>/app</code>" in page and "Secure" in text and "HttpOnly" in text
    assert "effacées 24\u00a0heures après" in text  # BROKER_IDEMPOTENCY_TTL_HOURS, 24 by default
    assert "ni le modifier ni l'effacer" in text  # the audit log is append-only
    assert "Chorus Pro n'en reçoit rien dans cette installation" in text  # the tests' Chorus Pro is the fake
    assert "aucun courriel n'est envoyé" in text  # no SMTP server in the tests
    for article in ("15", "16", "17", "18", "20", "21"):
        assert f"article{NBSP}{article}" in text
    assert "CNIL" in text and "3\u00a0place de Fontenoy" in text


async def test_the_texts_follow_the_settings(settings: Settings, admin_key: str) -> None:
    changed = msgspec.structs.replace(
        settings,
        idempotency_ttl_hours=6,
        api=msgspec.structs.replace(settings.api, public_url="https://courtier.exemple.fr/"),
        chorus=msgspec.structs.replace(settings.chorus, mode="piste"),
    )
    async with AsyncTestClient(app=create_app(changed)) as other:
        data = prose((await other.get("/app/donnees-personnelles")).text)
        assert "effacées 6\u00a0heures après" in data
        assert "Chorus Pro, la plateforme de facturation de l'État" in data
        notice = (await other.get("/app/mentions-legales")).text
        assert 'href="https://courtier.exemple.fr/app/"' in notice
        assert "Licence Ouverte / Etalab" in notice and "EUPL" in notice and "CPV" in notice


async def test_the_help_links_lead_to_pages_that_exist(client: Any) -> None:
    page = (await client.get("/app/aide")).text
    links = sorted(set(re.findall(r'href="(/[^"#]*)"', page)) - set(footer_links(page)))
    assert "/app/demandes" in links and "/app/crises/nouvel-appel" in links and "/schema" in links
    for link in links:
        response = await client.get(link, follow_redirects=False)
        # A page of a role sends a signed-out visitor to sign in; a page that does not exist is a 404.
        assert response.status_code in (200, 303), (link, response.status_code)
        if response.status_code == 303:
            assert response.headers["location"].startswith("/app/connexion"), link
    assert (await client.get("/schema/openapi.json")).status_code == 200
