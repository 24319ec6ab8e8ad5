"""G8/G9/G10: every operation × every role × another tenant's objects. Other tenants' objects are
404, refused roles 403, nothing of tenant B changes, and no body field can set tenant, status,
role or award fields. The test fails when a route has no entry in the policy table."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from factories import FAB_LAB, WOOD_SHOP, bearer, make_siret, make_workshop, tenant
from sqlalchemy import text

from broker.api.security import _is_framework_route

B_TABLES = {
    "organization": "id = :org OR id = :maker_org",
    "api_key": "org_id = :org OR org_id = :maker_org",
    "workshop": "org_id = :maker_org",
    "machine": "workshop_id = :workshop",
    "workshop_capacity": "workshop_id = :workshop",
    "fab_request": "org_id = :org",
    "invitation": "request_id = :request",  # B's workshop may be invited to A's requests: that is the market
    "quote": "workshop_id = :workshop",
    "fab_order": "buyer_org_id = :org",
    "order_event": "order_id = :order",
    "webhook_endpoint": "org_id = :org",
    "crisis_call": "org_id = :coord_org",
    "delivery_point": "call_id = :call",
    "commitment": "call_id = :call",
    "rebalance": "call_id = :call",
    "decp_record": "org_id = :org",
    "invoice": "seller_org_id = :maker_org",
    "invoice_event": "invoice_id = :invoice",
    "invoice_counter": "seller_org_id = :maker_org",
    "account": "org_id = :org",
}


async def _b_fingerprint(db, ids) -> str:
    digest = hashlib.sha256()
    async with db.reader() as session:
        for table, where in B_TABLES.items():
            rows = (await session.execute(text(f"SELECT * FROM {table} WHERE {where} ORDER BY 1"), ids)).all()
            digest.update(f"{table}:{rows!r}".encode())
    return digest.hexdigest()


async def _tenant_b(client, admin_key):
    """Tenant B: a collectivité with a request awarded to B's own workshop (an order exists)."""
    shop, maker = await make_workshop(client, admin_key, name="Atelier B", commune_insee="35238", machines=WOOD_SHOP,
                                      capacities={"monitor-stand": 20})
    org, buyer = await tenant(client, admin_key, "collectivite", "buyer", name="Commune B")
    body = {"item": "monitor-stand", "quantity": 4, "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "delivery": {"commune_insee": "35238"}, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}, "min_quotes": 1}
    request = (await client.post("/v1/requests", json=body, headers=bearer(buyer))).json()
    quote = (await client.post(f"/v1/requests/{request['id']}/quotes", headers={**bearer(maker), "Idempotency-Key": "q"},
                               json={"unit_price_eur_ht": "80", "vat_rate": "20", "quantity": 4,
                                     "delivery_date": (datetime.now(UTC).date() + timedelta(days=10)).isoformat()})).json()
    second = await client.post(f"/v1/requests/{request['id']}/quotes", headers={**bearer(maker), "Idempotency-Key": "x"},
                               json={"unit_price_eur_ht": "80", "vat_rate": "20", "quantity": 4,
                                     "delivery_date": (datetime.now(UTC).date() + timedelta(days=10)).isoformat()})
    assert second.status_code == 409
    award = await client.post(f"/v1/requests/{request['id']}/award", json={"quote_ids": [quote["id"]]},
                              headers={**bearer(buyer), "Idempotency-Key": "a"})
    assert award.status_code == 201, award.text
    order = award.json()["orders"][0]
    for key, to, extra in [(maker, "confirmed", {}), (maker, "in_production", {}), (maker, "ready", {}),
                           (maker, "shipped", {"tracking": "Colissimo 6A12345678901"}), (buyer, "delivered", {})]:
        moved = await client.post(f"/v1/orders/{order['id']}/transitions", json={"to": to, **extra},
                                  headers=bearer(key))
        assert moved.status_code == 200, moved.text
    invoice = await client.post(f"/v1/orders/{order['id']}/invoices", json={"quantity": 2}, headers=bearer(maker))
    assert invoice.status_code == 201, invoice.text
    invitation = (await client.get("/v1/invitations", headers=bearer(maker))).json()["items"][0]
    machine = (await client.get("/v1/workshops/me", headers=bearer(maker))).json()["machines"][0]
    # An award of 42 000 € HT (≥ 40 000 €): B's DECP record.
    large = (await client.post("/v1/requests", headers=bearer(buyer), json=body | {
        "quantity": 20, "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "45000"}})).json()
    large_quote = (await client.post(f"/v1/requests/{large['id']}/quotes", headers={**bearer(maker), "Idempotency-Key": "l"},
                                     json={"unit_price_eur_ht": "2100", "vat_rate": "20", "quantity": 20,
                                           "delivery_date": (datetime.now(UTC).date() + timedelta(days=10)).isoformat()})).json()
    large_award = await client.post(f"/v1/requests/{large['id']}/award", json={"quote_ids": [large_quote["id"]]},
                                    headers={**bearer(buyer), "Idempotency-Key": "la"})
    assert large_award.status_code == 201, large_award.text
    (decp,) = (await client.get(f"/v1/decp?year={datetime.now(UTC).year}", headers=bearer(buyer))).json()["marches"]["marche"]
    key = await client.post(f"/v1/organizations/{org['id']}/api-keys", json={"role": "integration"},
                            headers=bearer(admin_key))
    account = await client.post(f"/v1/organizations/{org['id']}/accounts", headers=bearer(admin_key),
                                json={"email": "agent@commune-b.fr", "name": "Agent B", "role": "buyer"})
    assert account.status_code == 201, account.text
    endpoint = await client.post("/v1/webhook-endpoints", json={"url": "https://erp.commune-b.fr/hooks"},
                                 headers=bearer(buyer))
    assert endpoint.status_code == 201, endpoint.text
    coord_org, coordinator = await tenant(client, admin_key, "coordination", "coordinator", name="Préfecture B")
    call = await client.post("/v1/crisis-calls", headers=bearer(coordinator), json={
        "item": "monitor-stand", "deadline": (datetime.now(UTC) + timedelta(days=20)).isoformat(), "priority": 1,
        "delivery_points": [{"label": "Mairie de Rennes", "commune_insee": "35238", "quantity": 30, "priority": 1}]})
    assert call.status_code == 201, call.text
    detail = (await client.get(f"/v1/crisis-calls/{call.json()['id']}", headers=bearer(coordinator))).json()
    assert detail["commitments"][0]["workshop_id"] == shop["id"]
    return {"org": org["id"], "maker_org": shop["org_id"], "workshop": shop["id"], "request": request["id"],
            "quote": quote["id"], "order": order["id"], "invitation": invitation["id"], "key": key.json()["id"],
            "siret": org.get("siret", ""), "endpoint": endpoint.json()["id"], "coord_org": coord_org["id"],
            "call": detail["id"], "point": detail["delivery_points"][0]["id"],
            "commitment": detail["commitments"][0]["id"], "decp": decp["id"], "invoice": invoice.json()["id"],
            "machine": machine["id"], "account": account.json()["id"]}


ALL = "all"
OWNERS = {"buyer", "coordinator", "maker", "integration"}
READERS = {"buyer", "maker", "integration", "admin"}


def policy(b):
    """(method, template) -> (path on B's object, roles allowed, body, what B's object must look like to A):
    "hidden" = 404 for every allowed role of another tenant; "shared" = readable by design;
    "self" = acts on the caller's own data only; "public" = no key needed."""
    future = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    request_body = {"item": "monitor-stand", "quantity": 1, "deadline": future, "delivery": {"commune_insee": "35238"},
                    "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    crisis_body = {"item": "monitor-stand", "deadline": future, "priority": 2, "delivery_points": [
        {"label": "Hôpital Pasteur", "commune_insee": "06088", "quantity": 10, "priority": 1}]}
    quote_body = {"unit_price_eur_ht": "1", "vat_rate": "20", "quantity": 4,
                  "delivery_date": (datetime.now(UTC).date() + timedelta(days=5)).isoformat()}
    return {
        ("GET", "/health/live"): ("/health/live", ALL, None, "public"),
        ("GET", "/health/ready"): ("/health/ready", ALL, None, "public"),
        ("POST", "/v1/organizations"): ("/v1/organizations", {"admin"}, {}, "self"),
        ("GET", "/v1/organizations"): ("/v1/organizations", ALL, None, "self"),
        ("GET", "/v1/organizations/{org_id:str}"): (f"/v1/organizations/{b['org']}", ALL, None, "hidden"),
        ("POST", "/v1/organizations/{org_id:str}/api-keys"): (f"/v1/organizations/{b['org']}/api-keys", {"admin"},
                                                              {"role": "buyer"}, "hidden"),
        ("GET", "/v1/organizations/{org_id:str}/api-keys"): (f"/v1/organizations/{b['org']}/api-keys", ALL, None,
                                                             "hidden"),
        ("DELETE", "/v1/api-keys/{key_id:str}"): (f"/v1/api-keys/{b['key']}", ALL, None, "hidden"),
        ("POST", "/v1/organizations/{org_id:str}/accounts"): (
            f"/v1/organizations/{b['org']}/accounts", {"admin"}, {"email": "x@example.org", "name": "X", "role": "buyer"},
            "hidden"),
        ("POST", "/v1/accounts/{account_id:str}/disable"): (f"/v1/accounts/{b['account']}/disable", {"admin"}, None,
                                                            "hidden"),
        ("POST", "/v1/accounts/{account_id:str}/enable"): (f"/v1/accounts/{b['account']}/enable", {"admin"}, None,
                                                           "hidden"),
        ("GET", "/v1/communes/{insee:str}"): ("/v1/communes/35238", ALL, None, "shared"),
        ("GET", "/v1/communes"): ("/v1/communes?postcode=35000", ALL, None, "shared"),
        ("GET", "/v1/audit-log"): ("/v1/audit-log", ALL, None, "self"),
        ("PUT", "/v1/workshops/me"): ("/v1/workshops/me", {"maker"},
                                      {"commune_insee": "22113", "delivery_radius_km": 50}, "self"),
        ("GET", "/v1/workshops/me"): ("/v1/workshops/me", {"maker"}, None, "self"),
        ("POST", "/v1/workshops/me/machines"): ("/v1/workshops/me/machines", {"maker"}, FAB_LAB[0], "self"),
        ("PUT", "/v1/workshops/me/capacities/{slug:str}"): ("/v1/workshops/me/capacities/face-visor", {"maker"},
                                                            {"units_per_day": 5}, "self"),
        # Issue 21: a maker edits and removes its machines, withdraws a capacity (after the PUT above).
        ("PUT", "/v1/workshops/me/machines/{machine_id:str}"): (f"/v1/workshops/me/machines/{b['machine']}",
                                                                {"maker"}, FAB_LAB[0], "hidden"),
        ("DELETE", "/v1/workshops/me/machines/{machine_id:str}"): (f"/v1/workshops/me/machines/{b['machine']}",
                                                                   {"maker"}, None, "hidden"),
        ("DELETE", "/v1/workshops/me/capacities/{slug:str}"): ("/v1/workshops/me/capacities/face-visor", {"maker"},
                                                               None, "self"),
        ("GET", "/v1/workshops"): ("/v1/workshops", ALL, None, "shared"),  # the public directory
        ("GET", "/v1/workshops/{workshop_id:str}"): (f"/v1/workshops/{b['workshop']}", ALL, None, "shared-or-hidden"),
        ("POST", "/v1/workshops/{workshop_id:str}/verification"): (f"/v1/workshops/{b['workshop']}/verification",
                                                                   {"admin"}, {}, "hidden"),
        ("GET", "/v1/catalogue"): ("/v1/catalogue", ALL, None, "shared"),
        ("GET", "/v1/catalogue/{slug:str}"): ("/v1/catalogue/face-visor", ALL, None, "shared"),
        ("POST", "/v1/catalogue"): ("/v1/catalogue", {"admin"}, {}, "self"),
        ("POST", "/v1/requests"): ("/v1/requests", {"buyer"}, request_body, "self"),
        ("GET", "/v1/requests"): ("/v1/requests", {"buyer", "admin"}, None, "self"),
        ("GET", "/v1/requests/{request_id:str}"): (f"/v1/requests/{b['request']}", {"buyer", "admin"}, None, "hidden"),
        ("GET", "/v1/requests/{request_id:str}/matches"): (f"/v1/requests/{b['request']}/matches", {"buyer", "admin"},
                                                           None, "hidden"),
        ("POST", "/v1/requests/{request_id:str}/cancel"): (f"/v1/requests/{b['request']}/cancel", {"buyer"}, None,
                                                           "hidden"),
        ("POST", "/v1/requests/{request_id:str}/quotes"): (f"/v1/requests/{b['request']}/quotes", {"maker"},
                                                           quote_body, "hidden"),
        ("GET", "/v1/requests/{request_id:str}/quotes"): (f"/v1/requests/{b['request']}/quotes", {"buyer", "admin"},
                                                          None, "hidden"),
        ("POST", "/v1/requests/{request_id:str}/award"): (f"/v1/requests/{b['request']}/award", {"buyer"},
                                                          {"quote_ids": [b["quote"]], "justification": "x"}, "hidden"),
        ("GET", "/v1/invitations"): ("/v1/invitations", {"maker"}, None, "self"),
        ("POST", "/v1/invitations/{invitation_id:str}/decline"): (f"/v1/invitations/{b['invitation']}/decline",
                                                                  {"maker"}, {"reason": "non"}, "hidden"),
        ("POST", "/v1/quotes/{quote_id:str}/withdraw"): (f"/v1/quotes/{b['quote']}/withdraw", {"maker"}, None,
                                                         "hidden"),
        ("GET", "/v1/orders"): ("/v1/orders", {"buyer", "maker", "integration", "admin"}, None, "self"),
        ("GET", "/v1/orders/{order_id:str}"): (f"/v1/orders/{b['order']}", {"buyer", "maker", "integration", "admin"},
                                               None, "hidden"),
        ("POST", "/v1/orders/{order_id:str}/transitions"): (f"/v1/orders/{b['order']}/transitions", {"buyer", "maker"},
                                                            {"to": "cancelled", "note": "test"}, "hidden"),
        ("GET", "/v1/orders/{order_id:str}/documents/order-x"): (f"/v1/orders/{b['order']}/documents/order-x",
                                                                 {"buyer", "maker", "integration", "admin"}, None,
                                                                 "hidden"),
        ("GET", "/v1/orders/{order_id:str}/documents/peppol"): (f"/v1/orders/{b['order']}/documents/peppol",
                                                                {"buyer", "maker", "integration", "admin"}, None,
                                                                "hidden"),
        ("GET", "/v1/orders/{order_id:str}/documents/purchase-order"): (
            f"/v1/orders/{b['order']}/documents/purchase-order", {"buyer", "maker", "integration", "admin"}, None,
            "hidden"),
        ("GET", "/v1/orders/{order_id:str}/documents/delivery-note"): (
            f"/v1/orders/{b['order']}/documents/delivery-note", {"buyer", "maker", "integration", "admin"}, None,
            "hidden"),
        ("POST", "/v1/webhook-endpoints"): ("/v1/webhook-endpoints", OWNERS, {"url": "https://example.org/h"},
                                            "self"),
        ("GET", "/v1/webhook-endpoints"): ("/v1/webhook-endpoints", OWNERS, None, "self"),
        ("GET", "/v1/webhook-endpoints/{endpoint_id:str}/deliveries"): (
            f"/v1/webhook-endpoints/{b['endpoint']}/deliveries", OWNERS, None, "hidden"),
        ("POST", "/v1/webhook-endpoints/{endpoint_id:str}/secret:roll"): (
            f"/v1/webhook-endpoints/{b['endpoint']}/secret:roll", OWNERS, None, "hidden"),
        ("POST", "/v1/webhook-deliveries/{delivery_id:str}/retry"): (
            "/v1/webhook-deliveries/00000000-0000-7000-8000-000000000000/retry", OWNERS, None, "hidden"),
        ("POST", "/v1/webhook-endpoints/{endpoint_id:str}/recover"): (
            f"/v1/webhook-endpoints/{b['endpoint']}/recover", OWNERS, {"since": "2026-01-01T00:00:00+01:00"},
            "hidden"),
        ("POST", "/v1/webhook-endpoints/{endpoint_id:str}/enable"): (
            f"/v1/webhook-endpoints/{b['endpoint']}/enable", OWNERS, None, "hidden"),
        ("GET", "/v1/events"): ("/v1/events", ALL, None, "self"),
        # Issue 17: procurement.
        ("GET", "/v1/procurement/procedure"): (
            "/v1/procurement/procedure?nature=fournitures&estimated_value_eur_ht=500&cpv=39130000-2",
            {"buyer", "coordinator", "admin"}, None, "self"),
        ("GET", "/v1/consultations"): ("/v1/consultations", {"maker"}, None, "self"),
        ("POST", "/v1/requests/{request_id:str}/invitations"): (f"/v1/requests/{b['request']}/invitations", {"buyer"},
                                                                {"workshop_id": b["workshop"]}, "hidden"),
        ("GET", "/v1/requests/{request_id:str}/award-record"): (f"/v1/requests/{b['request']}/award-record",
                                                                {"buyer", "integration", "admin"}, None, "hidden"),
        ("GET", "/v1/decp"): (f"/v1/decp?year={datetime.now(UTC).year}", {"buyer", "integration", "admin"}, None,
                              "self"),
        ("GET", "/v1/decp/overdue"): ("/v1/decp/overdue", {"buyer", "integration", "admin"}, None, "self"),
        ("POST", "/v1/decp/{record_id:str}/published"): (f"/v1/decp/{b['decp']}/published", {"buyer", "integration"},
                                                         None, "hidden"),
        # Issue 23: invoicing.
        ("PATCH", "/v1/organizations/{org_id:str}"): (f"/v1/organizations/{b['org']}",
                                                      {"admin", "buyer", "maker", "coordinator"},
                                                      {"contact_email": None}, "hidden"),
        ("POST", "/v1/orders/{order_id:str}/invoices"): (f"/v1/orders/{b['order']}/invoices", {"maker"}, {},
                                                         "hidden"),
        ("GET", "/v1/orders/{order_id:str}/invoices"): (f"/v1/orders/{b['order']}/invoices", READERS, None,
                                                        "hidden"),
        ("GET", "/v1/orders/{order_id:str}/payment"): (f"/v1/orders/{b['order']}/payment", READERS, None, "hidden"),
        ("GET", "/v1/invoices"): ("/v1/invoices", READERS, None, "self"),
        ("GET", "/v1/invoices/{invoice_id:str}"): (f"/v1/invoices/{b['invoice']}", READERS, None, "hidden"),
        ("POST", "/v1/invoices/{invoice_id:str}/credit-notes"): (f"/v1/invoices/{b['invoice']}/credit-notes",
                                                                 {"maker"}, {"reason": "erreur"}, "hidden"),
        ("POST", "/v1/invoices/{invoice_id:str}/submit"): (f"/v1/invoices/{b['invoice']}/submit", {"maker"}, None,
                                                           "hidden"),
        ("GET", "/v1/invoices/{invoice_id:str}/factur-x"): (f"/v1/invoices/{b['invoice']}/factur-x", READERS, None,
                                                            "hidden"),
        ("GET", "/v1/invoices/{invoice_id:str}/ubl"): (f"/v1/invoices/{b['invoice']}/ubl", READERS, None, "hidden"),
        ("POST", "/v1/orders/{order_id:str}/progress"): (f"/v1/orders/{b['order']}/progress", {"maker"},
                                                         {"units_done": 1}, "hidden"),
        # A call in Nice: out of every test workshop's reach, so creating it books nobody's capacity.
        ("POST", "/v1/crisis-calls"): ("/v1/crisis-calls", {"coordinator"}, crisis_body, "self"),
        ("GET", "/v1/crisis-calls"): ("/v1/crisis-calls", {"coordinator", "admin"}, None, "self"),
        ("GET", "/v1/crisis-calls/{call_id:str}"): (f"/v1/crisis-calls/{b['call']}", {"coordinator", "admin"}, None,
                                                    "hidden"),
        ("POST", "/v1/crisis-calls/{call_id:str}/delivery-points"): (
            f"/v1/crisis-calls/{b['call']}/delivery-points", {"coordinator"},
            {"delivery_points": crisis_body["delivery_points"]}, "hidden"),
        ("PATCH", "/v1/crisis-calls/{call_id:str}/delivery-points/{point_id:str}"): (
            f"/v1/crisis-calls/{b['call']}/delivery-points/{b['point']}", {"coordinator"}, {"quantity": 99}, "hidden"),
        ("POST", "/v1/crisis-calls/{call_id:str}/close"): (f"/v1/crisis-calls/{b['call']}/close", {"coordinator"},
                                                           None, "hidden"),
        ("POST", "/v1/crisis-calls/{call_id:str}/cancel"): (f"/v1/crisis-calls/{b['call']}/cancel", {"coordinator"},
                                                            None, "hidden"),
        ("GET", "/v1/commitments"): ("/v1/commitments", {"maker"}, None, "self"),
        ("GET", "/v1/commitments/{commitment_id:str}"): (f"/v1/commitments/{b['commitment']}", {"maker", "admin"},
                                                         None, "hidden"),
        ("POST", "/v1/commitments/{commitment_id:str}/accept"): (f"/v1/commitments/{b['commitment']}/accept",
                                                                 {"maker"}, None, "hidden"),
        ("POST", "/v1/commitments/{commitment_id:str}/decline"): (f"/v1/commitments/{b['commitment']}/decline",
                                                                  {"maker"}, {"reason": "non"}, "hidden"),
        ("POST", "/v1/commitments/{commitment_id:str}/progress"): (
            f"/v1/commitments/{b['commitment']}/progress", {"maker"}, {"units_produced": 1, "units_delivered": 0},
            "hidden"),
    }


async def test_cross_tenant_matrix(client, admin_key, db):
    b = await _tenant_b(client, admin_key)
    _a_maker_shop, a_maker = await make_workshop(client, admin_key, name="Atelier A", commune_insee="35238",
                                                 machines=WOOD_SHOP)
    callers = {
        "buyer": (await tenant(client, admin_key, "collectivite", "buyer"))[1],
        "maker": a_maker,
        "coordinator": (await tenant(client, admin_key, "coordination", "coordinator"))[1],
        "integration": (await tenant(client, admin_key, "integrator", "integration"))[1],
    }
    table = policy(b)
    # Web pages (opt "web": cookie sessions, not keys) have their tenancy walked in tests/browser.
    routes = {(m, r.path) for r in client.app.routes for h in getattr(r, "route_handlers", [])
              for m in h.http_methods if not _is_framework_route(r.path, h) and "web" not in h.opt}
    assert routes == set(table), f"routes without a policy entry: {routes - set(table)}"

    before = await _b_fingerprint(db, b)
    b_secrets = {b["org"], b["maker_org"], b["workshop"], b["request"], b["quote"], b["order"], b["invitation"],
                 b["key"], b["coord_org"], b["call"], b["point"], b["commitment"], b["decp"], b["invoice"],
                 b["machine"], b["account"]}
    cases = 0
    for (method, _template), (path, roles, body, kind) in table.items():
        for role, key in callers.items():
            cases += 1
            headers = {**bearer(key), "Idempotency-Key": str(uuid.uuid4())}
            response = await client.request(method, path, headers=headers, json=body)
            where = (method, path, role, response.status_code, response.text[:300])
            assert response.status_code < 500, where
            if kind == "public":
                assert response.status_code == 200, where
                continue
            if roles != ALL and role not in roles:
                assert response.status_code == 403, where
                continue
            if kind == "hidden":
                assert response.status_code == 404, where
            if kind in ("hidden", "self"):
                echoed = response.text
                for segment in path.split("/"):
                    echoed = echoed.replace(segment, "") if len(segment) > 8 else echoed
                assert [s for s in b_secrets if s in echoed] == [], where
    assert cases >= 4 * len(table)
    assert await _b_fingerprint(db, b) == before


async def test_bodies_cannot_set_tenant_status_role_or_award_fields(client, admin_key):
    _org, buyer = await tenant(client, admin_key, "collectivite", "buyer")
    future = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    base = {"item": "monitor-stand", "quantity": 1, "deadline": future, "delivery": {"commune_insee": "35238"},
            "procurement": {"buyer_siret": make_siret(), "estimated_value_eur_ht": "500"}}
    for field, value in [("org_id", "x"), ("tenant_id", "x"), ("status", "awarded"), ("awarded_to", "x"),
                         ("role", "admin"), ("match_state", "done")]:
        response = await client.post("/v1/requests", json=base | {field: value}, headers=bearer(buyer))
        assert response.status_code == 400, field
        assert response.json()["errors"][0]["pointer"] == f"/{field}"
    org = await client.post("/v1/organizations", headers=bearer(admin_key),
                            json={"kind": "collectivite", "name": "X", "siret": make_siret(), "commune_insee": "35238",
                                  "id": "chosen-id"})
    assert org.status_code == 400
