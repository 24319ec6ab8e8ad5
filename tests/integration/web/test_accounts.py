"""Issue 21 item 7: named accounts for people (in-process, pages signed in by session cookie).

An admin invites a person (web page or API); the e-mail (captured by a FakeNotifier) carries a
one-time link; the person chooses a password (refused: too short, the address, a common one), is
signed in, signs out, signs in again by e-mail and password. Wrong passwords are refused alike for
known and unknown addresses, throttled after ten attempts a minute (usable again the next minute);
a forgotten password is reset through another one-time link without telling whether the address
exists; a disabled account's sessions end at once; every step is in the audit log."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import bearer, tenant
from sqlalchemy import text, update
from support_web import Browser, signed_in, visible

from adapters.notifications.fake import FakeNotifier
from broker.api import runtime as runtime_module
from broker.api.runtime import RateLimiter
from broker.db.models import AccountRow, AccountTokenRow
from broker.web.pages.auth import SIGNIN_ATTEMPTS_PER_MINUTE, WRONG

EMAIL = "Jeanne.Dupont@Mairie-Rennes.fr"
PASSWORD = "quatre chevaux dans le pré carré"
LINK = re.compile(r"http://127\.0\.0\.1:8000(/app/(?:invitation|reinitialisation)/[A-Za-z0-9_-]+)")


@pytest.fixture
def mails(client: Any) -> FakeNotifier:
    """Every e-mail the app sends to people, kept in memory."""
    fake = FakeNotifier()
    client.app.state.notifier = fake
    return fake


async def _signin_form(client: Any, path: str = "/app/connexion") -> tuple[str, str]:
    page = await client.get(path)
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return token.group(1), "; ".join(f"{k}={v}" for k, v in page.cookies.items())


async def sign_in(client: Any, email: str, password: str, status: int = 303) -> Any:
    token, jar = await _signin_form(client)
    response = await client.post("/app/connexion", headers={"Cookie": jar}, follow_redirects=False,
                                 data={"courriel": email, "mot_de_passe": password, "_csrf_signin": token, "suite": ""})
    assert response.status_code == status, response.text[:800]
    assert password not in response.text
    return response


def session_of(response: Any) -> str:
    return f"broker_session={response.cookies['broker_session']}"


async def invite(client: Any, admin_key: str, mails: FakeNotifier, *, email: str = EMAIL, role: str = "buyer",
                 kind: str = "collectivite") -> tuple[dict[str, Any], str]:
    """A new organisation and a person invited to it from the admin's page: (organisation, link path)."""
    org, _key = await tenant(client, admin_key, kind, role)
    admin = Browser(client, await signed_in(client, admin_key))
    await admin.get(f"/app/admin/organisations/{org['id']}")
    await admin.post(f"/app/admin/organisations/{org['id']}/comptes",
                     {"nom_personne": "Jeanne Dupont", "courriel": email, "role_personne": role})
    return org, LINK.search(mails.sent[-1].body).group(1)


async def set_password(client: Any, link: str, password: str, confirmation: str | None = None,
                       status: int = 303) -> Any:
    response = await client.post(link, data={"mot_de_passe": password, "confirmation": confirmation or password},
                                 follow_redirects=False)
    assert response.status_code == status, response.text[:800]
    return response


async def active_account(client: Any, admin_key: str, mails: FakeNotifier, **kw: Any) -> tuple[dict[str, Any], str]:
    """An invited person who chose ``PASSWORD``: (organisation, session cookie)."""
    org, link = await invite(client, admin_key, mails, **kw)
    return org, session_of(await set_password(client, link, PASSWORD))


class FrozenMinute:
    """The rate limiter's clock held one second into the current minute: its one-minute windows
    cannot roll over in the middle of a test."""

    monotonic = staticmethod(time.monotonic)
    at = (time.time() // 60) * 60 + 1

    @classmethod
    def time(cls) -> float:
        return cls.at


async def actions(db: Any) -> list[str]:
    async with db.reader() as session:
        return list((await session.execute(text("SELECT action FROM audit_log ORDER BY id"))).scalars())


async def test_an_invited_person_chooses_a_password_and_signs_in(client, admin_key, mails, db):
    org, link = await invite(client, admin_key, mails)
    [mail] = mails.sent
    assert mail.to == EMAIL.lower() and mail.subject == "Votre compte sur le courtier de fabrication locale"
    assert "Bonjour Jeanne Dupont" in mail.body and "72\u00a0heures" in mail.body and "profil\u00a0: acheteur" in mail.body
    admin = Browser(client, await signed_in(client, admin_key))
    people = visible(await admin.get(f"/app/admin/organisations/{org['id']}"))
    assert "Jeanne Dupont" in people and "invitation envoyée" in people

    page = await client.get(link)
    assert page.status_code == 200 and "Choisissez votre mot de passe" in page.text and EMAIL.lower() in page.text
    for weak, why in [("court", "12\u00a0caractères au moins"), (EMAIL.lower(), "adresse e-mail"),
                      ("Motdepasse2024!", "trop courant"), ("azertyazerty", "trop courant"),
                      ("123456789012345", "trop courant")]:
        refused = await set_password(client, link, weak, status=422)
        assert why in visible(refused.text), weak
        assert 'name="mot_de_passe" type="password" value=""' in refused.text  # never written back
    mismatch = await set_password(client, link, PASSWORD, PASSWORD + "x", status=422)
    assert "Les deux saisies diffèrent" in visible(mismatch.text)

    accepted = await set_password(client, link, PASSWORD)
    assert accepted.headers["location"] == "/app/demandes"
    person = Browser(client, session_of(accepted))
    assert org["name"] in visible(await person.get("/app/demandes"))
    # the link worked once
    assert (await client.get(link)).status_code == 410
    assert "plus valide" in visible((await set_password(client, link, PASSWORD, status=410)).text)

    await person.post("/app/deconnexion")
    await person.get("/app/demandes", status=303)  # signed out: back to the sign-in page

    again = await sign_in(client, "  JEANNE.dupont@mairie-rennes.fr ", PASSWORD)  # the address in any case
    assert again.headers["location"] == "/app/demandes"
    await Browser(client, session_of(again)).get("/app/demandes")
    wrong = await sign_in(client, EMAIL, PASSWORD + "!", status=422)
    unknown = await sign_in(client, "personne@example.org", PASSWORD, status=422)
    assert WRONG in visible(wrong.text) and WRONG in visible(unknown.text)

    log = await actions(db)
    assert "POST /app/admin/organisations/{org_id}/comptes" in log
    assert log.count("account.invitation_accepted") == 1 and log.count("account.signin") == 1
    assert log.count("account.signin_failed") == 2
    async with db.reader() as session:
        rows = (await session.execute(text(
            "SELECT org_id, resource_id, detail FROM audit_log WHERE action = 'account.signin_failed' ORDER BY id"
        ))).all()
        account_id = (await session.execute(text("SELECT id FROM account"))).scalar_one()
    assert rows[0][0] == org["id"] and rows[0][1] == account_id  # a wrong password names the account
    assert rows[1][0] is None and "p***@example.org" in str(rows[1][2])  # an unknown address, masked


async def test_failed_sign_ins_are_throttled_then_the_account_works_again(client, admin_key, mails, monkeypatch):
    await active_account(client, admin_key, mails)
    monkeypatch.setattr(runtime_module, "time", FrozenMinute)  # the eleven attempts in one window
    for _ in range(SIGNIN_ATTEMPTS_PER_MINUTE):
        await sign_in(client, EMAIL, "pas le bon mot de passe", status=422)
    refused = await sign_in(client, EMAIL, PASSWORD, status=429)  # even the right password, in this minute
    assert "Trop de tentatives" in visible(refused.text) and int(refused.headers["retry-after"]) <= 60

    class NextMinute:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def time() -> float:
            return FrozenMinute.at + 61

    monkeypatch.setattr(runtime_module, "time", NextMinute)
    await sign_in(client, EMAIL, PASSWORD)


async def test_failed_sign_ins_are_throttled_per_client_address(client, admin_key, mails):
    await active_account(client, admin_key, mails)
    redis = client.app.state.runtime.redis  # the app's own client (its event loop)
    client.app.state.signin_limiter = RateLimiter(redis, SIGNIN_ATTEMPTS_PER_MINUTE, 3)
    for n in range(3):  # three different addresses, one client
        await sign_in(client, f"inconnu{n}@example.org", PASSWORD, status=422)
    await sign_in(client, EMAIL, PASSWORD, status=429)


async def test_a_forgotten_password_is_reset_without_telling_who_has_an_account(client, admin_key, mails, db):
    _org, old_session = await active_account(client, admin_key, mails)
    old = Browser(client, old_session)
    await old.get("/app/demandes")
    answers = []
    for address in (EMAIL, "personne@example.org"):
        token, jar = await _signin_form(client, "/app/mot-de-passe-oublie")
        answer = await client.post("/app/mot-de-passe-oublie", data={"courriel": address, "_csrf_signin": token},
                                   headers={"Cookie": jar}, follow_redirects=False)
        assert answer.status_code == 200
        answers.append(visible(answer.text))
    assert answers[0] == answers[1] and "Si un compte existe pour cette adresse" in answers[0]
    assert len(mails.sent) == 2  # the invitation, then one reset: nothing for the unknown address
    reset = mails.sent[-1]
    assert reset.to == EMAIL.lower() and "valable une heure" in reset.body
    link = LINK.search(reset.body).group(1)
    assert link.startswith("/app/reinitialisation/")
    assert "Nouveau mot de passe" in (await client.get(link)).text

    new_password = "un autre jour se lève sur Rennes"
    changed = await set_password(client, link, new_password)
    await Browser(client, session_of(changed)).get("/app/demandes")
    await old.get("/app/demandes", status=303)  # the sessions of the old password end
    await sign_in(client, EMAIL, PASSWORD, status=422)
    await sign_in(client, EMAIL, new_password)
    assert (await client.get(link)).status_code == 410  # used once
    log = await actions(db)
    assert "account.reset_requested" in log and "account.password_reset" in log


async def test_expired_links_and_a_disabled_account(client, admin_key, mails, db):
    org, link = await invite(client, admin_key, mails)
    async with db.writer() as session:
        await session.execute(update(AccountTokenRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    assert (await client.get(link)).status_code == 410
    await set_password(client, link, PASSWORD, status=410)
    _org, link = await invite(client, admin_key, mails, email="paul.martin@mairie-rennes.fr")
    person = Browser(client, session_of(await set_password(client, link, PASSWORD)))
    await person.get("/app/demandes")

    async with db.writer() as session:
        await session.execute(update(AccountRow).where(AccountRow.email == "paul.martin@mairie-rennes.fr")
                              .values(disabled_at=datetime.now(UTC)))
        await session.commit()
    response = await client.get("/app/demandes", headers={"Cookie": person.cookie}, follow_redirects=False)
    assert response.status_code == 303 and "motif=revoquee" in response.headers["location"]
    await sign_in(client, "paul.martin@mairie-rennes.fr", PASSWORD, status=422)
    sent = len(mails.sent)
    token, jar = await _signin_form(client, "/app/mot-de-passe-oublie")
    await client.post("/app/mot-de-passe-oublie", data={"courriel": "paul.martin@mairie-rennes.fr",
                                                        "_csrf_signin": token}, headers={"Cookie": jar})
    assert len(mails.sent) == sent  # no reset link for a disabled account
    assert org["id"]


async def test_a_buyer_account_may_not_use_admin_routes(client, admin_key, mails, db):
    org, session = await active_account(client, admin_key, mails)
    buyer = Browser(client, session)
    await buyer.get("/app/demandes")
    await buyer.get("/app/admin/organisations", status=403)
    await buyer.get(f"/app/admin/organisations/{org['id']}", status=403)
    await buyer.post(f"/app/admin/organisations/{org['id']}/comptes",
                     {"nom_personne": "Intrus", "courriel": "intrus@example.org", "role_personne": "admin"}, status=403)
    assert [m.to for m in mails.sent] == [EMAIL.lower()]
    own = await account_id(db)
    for action in ("desactivation", "reactivation"):
        await buyer.post(f"/app/admin/comptes/{own}/{action}", {"confirmer": "oui"}, status=403)
    _org, buyer_key = await tenant(client, admin_key, "collectivite", "buyer")
    for action in ("disable", "enable"):
        assert (await client.post(f"/v1/accounts/{own}/{action}", headers=bearer(buyer_key))).status_code == 403
    await buyer.get("/app/demandes")  # not disabled by any of those


async def test_the_admin_invites_through_the_api(client, admin_key, mails):
    org, buyer_key = await tenant(client, admin_key, "collectivite", "buyer")
    path = f"/v1/organizations/{org['id']}/accounts"
    body = {"email": "Agent@Mairie.fr", "name": "Agent Comptable", "role": "buyer"}
    assert (await client.post(path, json=body, headers=bearer(buyer_key))).status_code == 403
    created = await client.post(path, json=body, headers=bearer(admin_key))
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["email"] == "agent@mairie.fr" and account["status"] == "invited" and account["org_id"] == org["id"]
    first = LINK.search(mails.sent[-1].body).group(1)
    again = await client.post(path, json=body, headers=bearer(admin_key))  # not accepted yet: a new link
    assert again.status_code == 201 and again.json()["id"] == account["id"]
    assert (await client.get(first)).status_code == 410  # the first link no longer works
    await set_password(client, LINK.search(mails.sent[-1].body).group(1), PASSWORD)
    taken = await client.post(path, json=body, headers=bearer(admin_key))
    assert taken.status_code == 409 and taken.json()["code"] == "account-exists"
    for role in ("integration", "maker"):  # for systems only; not a collectivité's role
        refused = await client.post(path, json=body | {"email": "x@mairie.fr", "role": role}, headers=bearer(admin_key))
        assert refused.status_code == 422 and refused.json()["code"] == "role-not-allowed", refused.text
    bad = await client.post(path, json=body | {"email": "pas-une-adresse"}, headers=bearer(admin_key))
    assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"] == "/email"
    missing = await client.post("/v1/organizations/00000000-0000-4000-8000-000000000000/accounts", json=body,
                                headers=bearer(admin_key))
    assert missing.status_code == 404


async def test_failed_key_sign_ins_count_against_the_client_address(client, admin_key):
    """Issue 18: guessing API keys through the web form is throttled like through the API (the
    failed-authentication limit per client address), and the right key is refused in that minute too."""
    redis = client.app.state.runtime.redis
    client.app.state.signin_limiter = RateLimiter(redis, SIGNIN_ATTEMPTS_PER_MINUTE, 3)
    for n in range(3):
        token, jar = await _signin_form(client, "/app/connexion")
        answer = await client.post("/app/connexion", data={"cle": f"fab_{n:012d}_devine", "_csrf_signin": token,
                                                           "suite": ""}, headers={"Cookie": jar}, follow_redirects=False)
        assert answer.status_code in (422, 429), answer.status_code
    token, jar = await _signin_form(client, "/app/connexion")
    refused = await client.post("/app/connexion", data={"cle": admin_key, "_csrf_signin": token, "suite": ""},
                                headers={"Cookie": jar}, follow_redirects=False)
    assert refused.status_code == 429 and "Trop de tentatives" in visible(refused.text)


NEW_PASSWORD = "la marée monte sur le Mont-Saint-Michel"
CHANGE = "/app/compte/mot-de-passe"


async def account_id(db: Any, email: str = EMAIL) -> str:
    async with db.reader() as session:
        return str((await session.execute(text("SELECT id FROM account WHERE email = :e"),
                                          {"e": email.lower()})).scalar_one())


async def test_a_person_changes_their_password_and_their_other_sessions_end(client, admin_key, mails, db):
    org, first = await active_account(client, admin_key, mails)
    me = Browser(client, first)
    other = Browser(client, session_of(await sign_in(client, EMAIL, PASSWORD)))  # another browser
    assert 'href="/app/compte"' in await me.get("/app/demandes")  # « Mon compte » in the header
    page = visible(await me.get("/app/compte"))
    assert "Mon compte" in page and EMAIL.lower() in page and org["name"] in page and "Acheteur" in page

    changed = await me.post(CHANGE, {"mot_de_passe_actuel": PASSWORD, "mot_de_passe": NEW_PASSWORD,
                                     "confirmation": NEW_PASSWORD})
    assert changed.headers["location"] == "/app/compte"
    me.cookie = session_of(changed)  # this session continues, with the new stamp
    assert "Votre mot de passe est changé" in visible(await me.get("/app/compte"))
    await me.get("/app/demandes")
    gone = await client.get("/app/demandes", headers={"Cookie": other.cookie}, follow_redirects=False)
    assert gone.status_code == 303 and "motif=revoquee" in gone.headers["location"]  # the other one ends
    await sign_in(client, EMAIL, PASSWORD, status=422)
    await sign_in(client, EMAIL, NEW_PASSWORD)
    assert "account.password_changed" in await actions(db)

    # A session opened with an API key has no password: no link, no page.
    admin = Browser(client, await signed_in(client, admin_key))
    assert 'href="/app/compte"' not in await admin.get("/app/admin/organisations")
    await admin.get("/app/compte", status=404)
    await admin.post(CHANGE, {"mot_de_passe_actuel": "x", "mot_de_passe": NEW_PASSWORD,
                              "confirmation": NEW_PASSWORD}, status=404)


async def test_a_wrong_current_password_is_refused_and_throttled_like_a_sign_in(client, admin_key, mails, db,
                                                                                monkeypatch):
    _org, cookie = await active_account(client, admin_key, mails)
    me = Browser(client, cookie)
    await me.get("/app/compte")
    for current, new, confirmation, why in [
            (PASSWORD, "court", "court", "12\u00a0caractères au moins"),
            (PASSWORD, PASSWORD, PASSWORD, "différent de l'actuel"),
            (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "Les deux saisies diffèrent"),
            ("", NEW_PASSWORD, NEW_PASSWORD, "Saisissez votre mot de passe actuel")]:
        refused = await me.post(CHANGE, {"mot_de_passe_actuel": current, "mot_de_passe": new,
                                         "confirmation": confirmation}, status=422)
        assert why in visible(refused.text), why
        assert PASSWORD not in refused.text and NEW_PASSWORD not in refused.text  # never written back

    monkeypatch.setattr(runtime_module, "time", FrozenMinute)
    redis = client.app.state.runtime.redis
    client.app.state.signin_limiter = RateLimiter(redis, SIGNIN_ATTEMPTS_PER_MINUTE, 2)
    for _ in range(2):
        wrong = await me.post(CHANGE, {"mot_de_passe_actuel": "pas le bon mot de passe", "mot_de_passe": NEW_PASSWORD,
                                       "confirmation": NEW_PASSWORD}, status=422)
        assert "Ce n'est pas votre mot de passe actuel" in visible(wrong.text)
    throttled = await me.post(CHANGE, {"mot_de_passe_actuel": PASSWORD, "mot_de_passe": NEW_PASSWORD,
                                       "confirmation": NEW_PASSWORD}, status=429)  # even the right one
    assert "Trop de tentatives" in visible(throttled.text) and int(throttled.headers["retry-after"]) <= 60
    await me.get("/app/demandes")  # the session itself goes on
    await sign_in(client, EMAIL, PASSWORD, status=429)  # the same client address, over its failures
    log = await actions(db)
    assert log.count("account.password_change_failed") == 2 and "account.password_changed" not in log


async def test_an_admin_disables_then_enables_an_account(client, admin_key, mails, db):
    org, cookie = await active_account(client, admin_key, mails)
    person = Browser(client, cookie)
    await person.get("/app/demandes")
    account = await account_id(db)
    admin = Browser(client, await signed_in(client, admin_key))
    org_page = f"/app/admin/organisations/{org['id']}"
    assert "Désactiver" in visible(await admin.get(org_page))

    await admin.post(f"/app/admin/comptes/{account}/desactivation")  # the box not checked: nothing happens
    assert "Cochez la case de confirmation pour désactiver" in visible(await admin.get(org_page))
    await person.get("/app/demandes")

    await admin.post(f"/app/admin/comptes/{account}/desactivation", {"confirmer": "oui"})
    page = visible(await admin.get(org_page))
    assert "désactivé le " in page and "Réactiver" in page and "ses sessions sont fermées" in page
    gone = await client.get("/app/demandes", headers={"Cookie": person.cookie}, follow_redirects=False)
    assert gone.status_code == 303 and "motif=revoquee" in gone.headers["location"]
    refused = await sign_in(client, EMAIL, PASSWORD, status=422)
    assert WRONG in visible(refused.text)  # as for a wrong password: nothing tells the account exists

    await admin.post(f"/app/admin/comptes/{account}/reactivation", {"confirmer": "oui"})
    assert "actif" in visible(await admin.get(org_page))
    again = await sign_in(client, EMAIL, PASSWORD)
    await Browser(client, session_of(again)).get("/app/demandes")
    await person.get("/app/demandes", status=303)  # the sessions it had before stay ended
    log = await actions(db)
    assert "POST /app/admin/comptes/{account_id}/desactivation" in log
    assert "POST /app/admin/comptes/{account_id}/reactivation" in log


async def test_the_admin_disables_and_enables_through_the_api(client, admin_key, mails, db):
    await active_account(client, admin_key, mails)
    account = await account_id(db)
    disabled = await client.post(f"/v1/accounts/{account}/disable", headers=bearer(admin_key))
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled", disabled.text
    assert (await client.post(f"/v1/accounts/{account}/disable", headers=bearer(admin_key))).json()["status"] == (
        "disabled")  # again: nothing changes
    await sign_in(client, EMAIL, PASSWORD, status=422)
    enabled = await client.post(f"/v1/accounts/{account}/enable", headers=bearer(admin_key))
    assert enabled.status_code == 200 and enabled.json()["status"] == "active", enabled.text
    await sign_in(client, EMAIL, PASSWORD)
    missing = await client.post("/v1/accounts/00000000-0000-4000-8000-000000000000/disable", headers=bearer(admin_key))
    assert missing.status_code == 404

    # A person of the operator may not disable their own account (another admin does).
    operator = next(o for o in (await client.get("/v1/organizations", headers=bearer(admin_key))).json()["items"]
                    if o["kind"] == "operator")
    invited = await client.post(f"/v1/organizations/{operator['id']}/accounts", headers=bearer(admin_key),
                                json={"email": "ops@courtier.example.fr", "name": "Opératrice", "role": "admin"})
    assert invited.status_code == 201, invited.text
    ops = Browser(client, session_of(await set_password(client, LINK.search(mails.sent[-1].body).group(1),
                                                        PASSWORD)))
    page = await ops.get(f"/app/admin/organisations/{operator['id']}")
    assert f"/app/admin/comptes/{invited.json()['id']}/desactivation" not in page  # no button for oneself
    refused = await ops.post(f"/app/admin/comptes/{invited.json()['id']}/desactivation", {"confirmer": "oui"})
    assert "votre propre compte" in visible(await ops.get(f"/app/admin/organisations/{operator['id']}"))
    assert refused.headers["location"].endswith("#personnes")
    await ops.get("/app/admin/organisations")  # still signed in
