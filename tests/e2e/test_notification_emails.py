"""Notifications end to end with real processes: the API and an arq worker configured with
BROKER_SMTP_* towards a tiny SMTP server on 127.0.0.1. A new invitation e-mails the maker, a new
quote e-mails the buyer; each message once, to the organisation's contact address."""

from __future__ import annotations

import asyncio
import email
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from factories import WOOD_SHOP, bearer, make_siret
from support_smtp import TinySmtp
from support_stack import RedisServer, Stack, database


@pytest.fixture
def sqlite_url(tmp_path: Path):
    with database("sqlite", tmp_path) as url:
        yield url


async def _org(client: httpx.AsyncClient, admin: str, kind: str, name: str, insee: str, contact: str,
               role: str) -> tuple[dict, str]:
    org = (await client.post("/v1/organizations", headers=bearer(admin), json={
        "kind": kind, "name": name, "siret": make_siret(), "commune_insee": insee, "contact_email": contact})).json()
    key = (await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": role},
                             headers=bearer(admin))).json()["key"]
    return org, key


async def _mails(smtp: TinySmtp, n: int, timeout_s: float = 15) -> list[email.message.EmailMessage]:
    deadline = time.monotonic() + timeout_s
    while len(smtp.messages) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return [email.message_from_bytes(raw, policy=default_policy) for _, _, raw in smtp.messages]  # type: ignore[misc]


async def test_invitation_and_quote_are_emailed_through_smtp(sqlite_url, tmp_path):
    smtp = TinySmtp()
    await smtp.start()
    redis = RedisServer(tmp_path).start()
    stack = Stack(tmp_path, sqlite_url, redis, extra_env={
        "BROKER_SMTP_HOST": "127.0.0.1", "BROKER_SMTP_PORT": str(smtp.port), "BROKER_SMTP_STARTTLS": "0",
        "BROKER_SMTP_SENDER": "ne-pas-repondre@courtier-fabrication.fr"})
    try:
        await stack.start()
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            admin = stack.admin_key
            _shop_org, maker = await _org(client, admin, "manufacture", "Menuiserie Le Goff", "35238",
                                          "atelier@menuiserie-legoff.fr", "maker")
            profile = {"commune_insee": "35238", "delivery_radius_km": 80, "trades": ["bois"],
                       "labels": ["manufacture-de-proximite"], "certifications": []}
            workshop = (await client.put("/v1/workshops/me", json=profile, headers=bearer(maker))).json()
            for machine in WOOD_SHOP:
                assert (await client.post("/v1/workshops/me/machines", json=machine,
                                          headers=bearer(maker))).status_code == 201
            assert (await client.post(f"/v1/workshops/{workshop['id']}/verification", headers=bearer(admin),
                                      json={"labels": ["manufacture-de-proximite"], "certifications": []})
                    ).status_code == 200
            buyer_org, buyer = await _org(client, admin, "collectivite", "Commune de Bruz", "35047",
                                          "commande-publique@ville-bruz.fr", "buyer")
            request = (await client.post("/v1/requests", headers={**bearer(buyer), "Idempotency-Key": str(uuid.uuid4())},
                                         json={"item": "france-services-desk", "quantity": 4,
                                               "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                                               "delivery": {"commune_insee": "35047"},
                                               "procurement": {"buyer_siret": buyer_org["siret"], "estimated_value_eur_ht": "1.00"}})).json()
            assert request["invited"] == 1, request
            [invitation] = await _mails(smtp, 1)
            assert invitation["To"] == "atelier@menuiserie-legoff.fr"
            assert invitation["From"] == "ne-pas-repondre@courtier-fabrication.fr"
            assert str(invitation["Subject"]).startswith("Nouvelle invitation à chiffrer")
            assert request["id"] in invitation.get_content()
            quote = await client.post(f"/v1/requests/{request['id']}/quotes",
                                      headers={**bearer(maker), "Idempotency-Key": str(uuid.uuid4())},
                                      json={"unit_price_eur_ht": "1240.00", "vat_rate": "20", "quantity": 4,
                                            "delivery_date": (datetime.now(UTC).date() + timedelta(days=20)).isoformat()})
            assert quote.status_code == 201, quote.text
            mails = await _mails(smtp, 2)
            assert mails[1]["To"] == "commande-publique@ville-bruz.fr"
            assert "4\u202f960,00 € HT" in mails[1].get_content()
            await asyncio.sleep(1.5)  # the cron relay runs again: still one message per event
            assert len(smtp.messages) == 2
    finally:
        stack.stop()
        redis.stop()
        await smtp.stop()
