"""The demo story, told through the public HTTP API only (httpx): seed the cast, run a France
Services desk request from matching to delivery and to its invoice paid through Chorus Pro, then a
visor crisis call; print a summary.

This module is a client: it never touches the database or the services (import-linter checks it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.geocoding import load_communes
from broker.demo import data
from broker.demo.receiver import Receiver
from broker.domain.invoicing import LABELS, PATH, InvoiceStatus

SEED_CONCURRENCY = 6
PARIS = ZoneInfo("Europe/Paris")

# The procedures of the code de la commande publique, as the request's answer names them.
PROCEDURE_WORDS = {
    "sans_publicite": "marché sans publicité ni mise en concurrence préalables",
    "mapa": "procédure adaptée (MAPA)",
    "mapa_publicite": "procédure adaptée avec publicité au BOAMP ou dans un JAL",
}


MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def french_euros(amount: str, *, cents: bool = False) -> str:
    """``"60000.00"`` → ``60 000 €`` (``"1085.50"`` → ``1 085,50 €``), French typography; with
    ``cents`` the cents always show, as on an invoice (``5 208,00 €``)."""
    whole, _, fraction = amount.partition(".")
    grouped = f"{int(whole):,}".replace(",", "\u202f")
    return f"{grouped}{',' + fraction if cents or fraction.strip('0') else ''}\u00a0€"


def french_day(iso: str) -> str:
    """``"2027-01-02"`` → ``2 janvier 2027`` (``1er`` for the first of the month)."""
    year, month, day = (int(part) for part in iso.split("-"))
    return f"{'1er' if day == 1 else day} {MONTHS[month - 1]} {year}"


def procedure_line(procurement: dict[str, Any]) -> str:
    """« procédure : … (art. R.2122-8, seuil de 60 000 € HT) », from a request's ``procurement``."""
    words = PROCEDURE_WORDS.get(procurement["procedure"], procurement["procedure"])
    return (f"procédure\u00a0: {words} (art. R.2122-8, seuil de {french_euros(procurement['threshold_eur_ht'])} HT)")


class DemoError(RuntimeError):
    """The story could not go on; the message says which call answered what."""


class Api:
    """Thin JSON client: every call states the status it expects, 429s are waited out, and a
    creating POST keeps its Idempotency-Key across a retry after a transport error."""

    def __init__(self, client: httpx.AsyncClient, check: Callable[[], str | None]) -> None:
        self._client = client
        self._check = check
        self.calls = 0

    async def call(
        self, method: str, path: str, token: str, body: Any = None, *, expect: int = 200, idempotent: bool = False
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if idempotent:
            headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"
        for attempt in range(6):
            problem = self._check()
            if problem:
                raise DemoError(problem)
            try:
                response = await self._client.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                if attempt == 5:
                    raise DemoError(f"{method} {path}: {exc!r}") from exc
                await asyncio.sleep(0.5)
                continue
            self.calls += 1
            if response.status_code == 429 or (response.status_code == 409 and "Retry-After" in response.headers):
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code != expect:
                raise DemoError(f"{method} {path} answered {response.status_code}, expected {expect}: {response.text}")
            return response.json() if response.content else None
        raise DemoError(f"{method} {path}: still throttled after 6 attempts")

    async def get(self, path: str, token: str) -> Any:
        return await self.call("GET", path, token)

    async def post(self, path: str, token: str, body: Any = None, *, expect: int = 201, idempotent: bool = True) -> Any:
        return await self.call("POST", path, token, body, expect=expect, idempotent=idempotent)

    async def put(self, path: str, token: str, body: Any) -> Any:
        return await self.call("PUT", path, token, body)


@dataclass
class Shop:
    seed: data.WorkshopSeed
    id: str
    key: str
    commune: str


@dataclass
class Cast:
    admin: str
    shops: dict[str, Shop] = field(default_factory=dict)  # by workshop id
    buyers: dict[str, str] = field(default_factory=dict)  # collectivité name -> buyer key
    coordinator: str = ""


def working_deadline(now: datetime, working_days: int) -> datetime:
    """Noon UTC on the day after the ``working_days``-th weekday counted from today (today included),
    so that capacity by the deadline (units per day × working days) is the same whatever the weekday."""
    day = now.date()
    counted = 0
    while True:
        if day.weekday() < 5:
            counted += 1
            if counted == working_days:
                break
        day += timedelta(days=1)
    after = day + timedelta(days=1)
    return datetime(after.year, after.month, after.day, 12, tzinfo=UTC)


def _live(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in detail["commitments"] if c["status"] in ("proposed", "accepted", "completed")]


def _point_id(commitment: dict[str, Any]) -> str:
    point = commitment.get("delivery_point_id", commitment.get("delivery_point"))
    return str(point["id"] if isinstance(point, dict) else point)


def _settlement(population: int | None) -> str:
    if population is None or population < 5_000:
        return "rural"
    if population < 30_000:
        return "small town"
    return "city"


class Story:
    def __init__(self, api: Api, console: Console, progress: Progress, receiver: Receiver) -> None:
        self.api = api
        self.console = console
        self.progress = progress
        self.receiver = receiver
        self.communes = load_communes()
        self.summary: dict[str, Any] = {}

    def _commune(self, insee: str) -> str:
        commune = self.communes.commune(insee)
        return commune.name if commune else insee

    # ---- 1. the cast -------------------------------------------------------------------------

    async def seed(self, admin: str) -> Cast:
        cast = Cast(admin=admin)
        for org in data.COLLECTIVITES:
            created = await self.api.post(
                "/v1/organizations",
                admin,
                {"kind": org.kind, "name": org.name, "siret": org.siret, "commune_insee": org.insee},
            )
            key = await self.api.post(
                f"/v1/organizations/{created['id']}/api-keys",
                admin,
                {"role": org.role, "label": "service commande publique"},
                idempotent=False,
            )
            cast.buyers[org.name] = key["key"]
        coord = data.COORDINATOR
        created = await self.api.post(
            "/v1/organizations",
            admin,
            {"kind": coord.kind, "name": coord.name, "siret": coord.siret, "commune_insee": coord.insee},
        )
        cast.coordinator = (
            await self.api.post(
                f"/v1/organizations/{created['id']}/api-keys",
                admin,
                {"role": "coordinator", "label": "cellule de crise"},
                idempotent=False,
            )
        )["key"]

        task = self.progress.add_task("Seeding workshops", total=len(data.WORKSHOPS))
        gate = asyncio.Semaphore(SEED_CONCURRENCY)

        async def one(seed: data.WorkshopSeed) -> None:
            async with gate:
                shop = await self._workshop(admin, seed)
                cast.shops[shop.id] = shop
                self.progress.advance(task)

        await asyncio.gather(*(one(s) for s in data.WORKSHOPS))
        kinds: dict[str, int] = {}
        settlements: dict[str, int] = {}
        for shop in cast.shops.values():
            kinds[shop.seed.kind.value] = kinds.get(shop.seed.kind.value, 0) + 1
            commune = self.communes.commune(shop.seed.insee)
            settlement = _settlement(commune.population if commune else None)
            settlements[settlement] = settlements.get(settlement, 0) + 1
        self.summary["seeded"] = {
            "workshops": len(cast.shops),
            "collectivites": len(data.COLLECTIVITES),
            "coordinators": 1,
            "by_kind": kinds,
            "by_settlement": settlements,
        }
        self.console.print(
            f"  {len(cast.shops)} workshops in {len({s.seed.insee for s in cast.shops.values()})} communes "
            f"({', '.join(f'{n} {k}' for k, n in sorted(settlements.items()))}), "
            f"{len(data.COLLECTIVITES)} collectivités, 1 coordinator"
        )
        return cast

    async def _workshop(self, admin: str, seed: data.WorkshopSeed) -> Shop:
        org = await self.api.post(
            "/v1/organizations",
            admin,
            {"kind": "manufacture", "name": seed.name, "siret": seed.siret, "commune_insee": seed.insee},
        )
        key = (
            await self.api.post(
                f"/v1/organizations/{org['id']}/api-keys",
                admin,
                {"role": "maker", "label": "atelier"},
                idempotent=False,
            )
        )["key"]
        prof = data.profile(seed)
        workshop = await self.api.put(
            "/v1/workshops/me",
            key,
            {
                "commune_insee": seed.insee,
                "delivery_radius_km": prof.radius_km,
                "trades": prof.trades,
                "labels": prof.labels,
                "certifications": prof.certifications,
            },
        )
        for machine in data.machines(seed):
            await self.api.post("/v1/workshops/me/machines", key, machine, idempotent=False)
        for slug, units in data.capacities(seed).items():
            await self.api.put(f"/v1/workshops/me/capacities/{slug}", key, {"units_per_day": units})
        await self.api.post(
            f"/v1/workshops/{workshop['id']}/verification",
            admin,
            {"labels": prof.labels, "certifications": prof.certifications},
            expect=200,
            idempotent=False,
        )
        return Shop(seed=seed, id=workshop["id"], key=key, commune=self._commune(seed.insee))

    # ---- 2. the France Services desk ----------------------------------------------------------

    async def desk(self, cast: Cast, story: data.DeskStory) -> None:
        buyer_org = data.DESK_BUYER
        buyer = cast.buyers[buyer_org.name]
        path = "/erp/creuse-grand-sud"
        hook = await self.api.post("/v1/webhook-endpoints", buyer, {"url": self.receiver.url(path)})
        self.receiver.learn(path, hook["secret"])

        self.console.rule(f"[bold]France Services desk — {buyer_org.name}")
        request = await self.api.post(
            "/v1/requests",
            buyer,
            {
                "item": "france-services-desk",
                "quantity": story.quantity,
                "deadline": (datetime.now(UTC) + timedelta(days=story.deadline_days)).isoformat(),
                "delivery": {"commune_insee": story.delivery_insee, "address": story.address},
                "procurement": {
                    "buyer_siret": buyer_org.siret,
                    "service_code": story.service_code,
                    "engagement_number": story.engagement_number,
                    "estimated_value_eur_ht": story.estimated_value_eur_ht,
                },
            },
        )
        self.console.print(f"  besoin estimé {french_euros(story.estimated_value_eur_ht)} HT — "
                           f"{procedure_line(request['procurement'])}")
        matches = await self._matches(request["id"], buyer)
        invited = sorted((m for m in matches["included"] if m["invited"]), key=lambda m: m["rank"])
        if len(invited) < 3:
            raise DemoError(f"only {len(invited)} workshops invited for the desk: {matches}")
        table = Table("rank", "workshop", "commune", "km", "score", "capacity", title="Matching: invited workshops")
        for m in invited:
            shop = cast.shops[m["workshop_id"]]
            table.add_row(
                str(m["rank"]),
                shop.seed.name,
                shop.commune,
                f"{m['distance_km']:.0f}",
                f"{m['score']:.2f}",
                str(m["capacity_units"]),
            )
        self.console.print(table)
        excluded = ", ".join(f"{n} {code}" for code, n in sorted(matches["exclusion_counts"].items()))
        self.console.print(f"  {matches['considered']} workshops considered; excluded: {excluded or 'none'}")

        quoters = invited[:3]
        quotes = []
        delivery = (datetime.now(UTC).date() + timedelta(days=story.deadline_days - 10)).isoformat()
        for m, price in zip(quoters, story.prices, strict=True):
            shop = cast.shops[m["workshop_id"]]
            quote = await self.api.post(
                f"/v1/requests/{request['id']}/quotes",
                shop.key,
                {
                    "unit_price_eur_ht": price,
                    "vat_rate": "20",
                    "quantity": story.quantity,
                    "delivery_date": delivery,
                    "note": "Contreplaqué de bouleau 18 mm, vernis à l'eau, livraison et montage compris.",
                },
            )
            quotes.append((quote, shop))
        if len(invited) > 3:  # a fourth maker says why it passes
            shop = cast.shops[invited[3]["workshop_id"]]
            mine = await self.api.get("/v1/invitations", shop.key)
            inv = next(i for i in mine["items"] if i["request_id"] == request["id"])
            await self.api.post(
                f"/v1/invitations/{inv['id']}/decline",
                shop.key,
                {"reason": "Carnet de commandes plein jusqu'à fin du mois prochain."},
                expect=200,
            )
        compared = (await self.api.get(f"/v1/requests/{request['id']}/quotes", buyer))["items"]
        best = min(compared, key=lambda c: float(c["quote"]["total_eur_ttc"]))
        award = await self.api.post(f"/v1/requests/{request['id']}/award", buyer, {"quote_ids": [best["quote"]["id"]]})
        order = award["orders"][0]
        maker = next(shop for quote, shop in quotes if quote["id"] == best["quote"]["id"])
        distance = next(m["distance_km"] for m in invited if m["workshop_id"] == maker.id)
        self.console.print(
            f"  3 quotes; awarded to [bold]{maker.seed.name}[/] ({maker.commune}, {distance:.0f} km) at "
            f"{best['quote']['unit_price_eur_ht']} € HT a desk — order {order['number']}, "
            f"{order['total_eur_ttc']} € TTC"
        )

        task = self.progress.add_task("Desk order: units made", total=story.quantity)
        orders = f"/v1/orders/{order['id']}"
        for step in ("confirmed", "in_production"):
            await self.api.post(f"{orders}/transitions", maker.key, {"to": step}, expect=200, idempotent=False)
        for units in range(1, story.quantity + 1):
            await self.api.post(f"{orders}/progress", maker.key, {"units_done": units}, expect=200, idempotent=False)
            self.progress.update(task, completed=units)
        await self.api.post(f"{orders}/transitions", maker.key, {"to": "ready"}, expect=200, idempotent=False)
        await self.api.post(
            f"{orders}/transitions",
            maker.key,
            {"to": "shipped", "tracking": story.tracking},
            expect=200,
            idempotent=False,
        )
        await self.api.post(f"{orders}/transitions", buyer, {"to": "delivered"}, expect=200, idempotent=False)
        final = await self.api.get(orders, buyer)
        if final["status"] != "delivered":
            raise DemoError(f"the desk order ended {final['status']}")
        self.console.print(
            f"  delivered: {final['units_done']} desks, "
            f"{' → '.join(h['to_status'] for h in final['history'] if h['to_status'])}"
        )
        invoice = await self._invoice_paid(order["id"], maker, buyer)
        self.summary["desk"] = {
            "requested": story.quantity,
            "delivered": final["units_done"] if final["status"] == "delivered" else 0,
            "order_status": final["status"],
            "order_number": final["number"],
            "workshop": maker.seed.name,
            "commune": maker.commune,
            "distance_km": round(distance, 1),
            "invited": len(invited),
            "quotes": len(compared),
            "procedure": request["procurement"]["procedure"],
            "threshold_eur_ht": request["procurement"]["threshold_eur_ht"],
            "total_eur_ttc": final["total_eur_ttc"],
            "workshops_involved": 1,
            "unmet": story.quantity - (final["units_done"] if final["status"] == "delivered" else 0),
            "invoice": {k: invoice[k] for k in ("number", "status", "received_on", "due_on", "paid_on",
                                                "delay_days")} | {"total_eur_ttc": invoice["totals"]["total_eur_ttc"]},
        }

    async def _invoice_paid(self, order_id: str, maker: Shop, buyer: str, timeout: float = 90) -> dict[str, Any]:
        """The service fait done, the maker invoices the order and deposits the invoice on Chorus Pro; the
        worker follows it there (the demo's fake Chorus Pro takes one step a second) until it is paid."""
        made = await self.api.post(f"/v1/orders/{order_id}/invoices", maker.key, {})
        await self.api.post(f"/v1/invoices/{made['id']}/submit", maker.key, expect=202)
        task = self.progress.add_task("Desk invoice: Chorus Pro", total=len(PATH) - 1)
        deadline = time.monotonic() + timeout
        while True:
            invoice: dict[str, Any] = await self.api.get(f"/v1/invoices/{made['id']}", buyer)
            status = InvoiceStatus(invoice["status"])
            if status in PATH:
                self.progress.update(task, completed=PATH.index(status))
            if status is InvoiceStatus.MISE_EN_PAIEMENT:
                break
            if status not in PATH:
                raise DemoError(f"invoice {made['number']} is {LABELS[status]}: {invoice['status_reason']}")
            if time.monotonic() > deadline:
                raise DemoError(f"invoice {made['number']} still {LABELS[status]} after {timeout:.0f} s (the demo's "
                                "worker polls its fake Chorus Pro with BROKER_CHORUS_FAKE_STEP_S=1 and "
                                "BROKER_CHORUS_POLL_S=1)")
            await asyncio.sleep(0.5)
        self.console.print(
            f"  facture {invoice['number']}\u00a0: {french_euros(invoice['totals']['total_eur_ttc'], cents=True)} TTC, "
            f"déposée sur Chorus Pro le {french_day(invoice['received_on'])}, échéance le "
            f"{french_day(invoice['due_on'])} ({invoice['delay_days']}\u00a0jours) — "
            f"{LABELS[status]} le {french_day(invoice['paid_on'])}"
        )
        return invoice

    # ---- 2b. the same workshop three times: the award asks why --------------------------------

    async def rotation(self, cast: Cast, story: data.RotationStory) -> None:
        buyer_org = story.buyer
        buyer = cast.buyers[buyer_org.name]
        self.console.rule(f"[bold]Rotation — {buyer_org.name}, {story.item} for {len(story.sites)} sites")
        favourite = other = ""
        refused: dict[str, Any] | None = None
        request: dict[str, Any] = {}
        for n, site in enumerate(story.sites, 1):
            estimate = f"{story.quantity * float(story.prices[1]):.2f}"
            request = await self.api.post("/v1/requests", buyer, {
                "item": story.item,
                "quantity": story.quantity,
                "deadline": (datetime.now(UTC) + timedelta(days=story.deadline_days)).isoformat(),
                "delivery": {"commune_insee": story.delivery_insee, "address": site},
                "min_quotes": 2,
                "procurement": {"buyer_siret": buyer_org.siret, "estimated_value_eur_ht": estimate},
            })
            matches = await self._matches(request["id"], buyer)
            invited = sorted((m for m in matches["included"] if m["invited"]), key=lambda m: m["rank"])
            if not favourite:
                if len(invited) < 2:
                    raise DemoError(f"only {len(invited)} workshops invited for the monitor stands: {matches}")
                favourite, other = invited[0]["workshop_id"], invited[1]["workshop_id"]
            for workshop_id in (favourite, other):  # without publicity the buyer may invite whom it knows
                if workshop_id not in {m["workshop_id"] for m in invited}:
                    await self.api.post(f"/v1/requests/{request['id']}/invitations", buyer,
                                        {"workshop_id": workshop_id})
            delivery = (datetime.now(UTC).date() + timedelta(days=story.deadline_days - 5)).isoformat()
            quotes = {}
            for workshop_id, price in zip((favourite, other), story.prices, strict=True):
                quotes[workshop_id] = await self.api.post(
                    f"/v1/requests/{request['id']}/quotes", cast.shops[workshop_id].key,
                    {"unit_price_eur_ht": price, "vat_rate": "20", "quantity": story.quantity,
                     "delivery_date": delivery, "note": "Contreplaqué de bouleau 18 mm, huile dure."})
            path = f"/v1/requests/{request['id']}/award"
            body = {"quote_ids": [quotes[favourite]["id"]]}
            if n < len(story.sites):
                await self.api.post(path, buyer, body)
                self.console.print(f"  award {n} ({site.split(',')[0]}): {cast.shops[favourite].seed.name}, "
                                   f"{story.prices[0]} € HT a stand — {procedure_line(request['procurement'])}")
                continue
            refused = await self.api.post(path, buyer, body, expect=409)
            self.console.print(f"  award {n}: [yellow]409 {refused['code']}[/] — {refused['detail']}")
            await self.api.post(path, buyer, {**body, "justification": story.justification})
            self.console.print(f"  awarded with the buyer's justification: « {story.justification} »")
        final = await self.api.get(f"/v1/requests/{request['id']}", buyer)
        self.summary["rotation"] = {
            "buyer": buyer_org.name,
            "workshop": cast.shops[favourite].seed.name,
            "awards": len(story.sites),
            "asked": None if refused is None else refused["code"],
            "justifications": final["procurement"].get("award_justifications") or final.get("award_justifications"),
            "award_justification": final.get("award_justification"),
        }

    # ---- 2c. an award of 40 000 € HT or more: its DECP record ---------------------------------

    async def decp(self, cast: Cast, story: data.DecpStory) -> None:
        buyer_org = story.buyer
        buyer = cast.buyers[buyer_org.name]
        self.console.rule(f"[bold]DECP — {buyer_org.name}, {story.quantity} France Services desks")
        request = await self.api.post("/v1/requests", buyer, {
            "item": story.item,
            "quantity": story.quantity,
            "deadline": (datetime.now(UTC) + timedelta(days=story.deadline_days)).isoformat(),
            "delivery": {"commune_insee": story.delivery_insee, "address": story.address},
            "min_quotes": 2,
            "procurement": {"buyer_siret": buyer_org.siret, "estimated_value_eur_ht": story.estimated_value_eur_ht},
        })
        self.console.print(f"  besoin estimé {french_euros(story.estimated_value_eur_ht)} HT — "
                           f"{procedure_line(request['procurement'])}")
        matches = await self._matches(request["id"], buyer)
        able = sorted((m for m in matches["included"] if m["invited"] and m["capacity_units"] >= story.quantity),
                      key=lambda m: m["rank"])
        if len(able) < 2:
            raise DemoError(f"only {len(able)} workshops able to make {story.quantity} desks: {matches}")
        delivery = (datetime.now(UTC).date() + timedelta(days=story.deadline_days - 7)).isoformat()
        quotes = []
        for m, price in zip(able, story.prices, strict=False):
            quotes.append(await self.api.post(
                f"/v1/requests/{request['id']}/quotes", cast.shops[m["workshop_id"]].key,
                {"unit_price_eur_ht": price, "vat_rate": "20", "quantity": story.quantity, "delivery_date": delivery,
                 "note": "Contreplaqué de bouleau 18 mm, livraison en trois tournées, montage compris."}))
        cheapest = min(quotes, key=lambda q: float(q["unit_price_eur_ht"]))
        award = await self.api.post(f"/v1/requests/{request['id']}/award", buyer, {"quote_ids": [cheapest["id"]]})
        year = datetime.now(PARIS).year
        document = await self.api.get(f"/v1/decp?year={year}", buyer)
        marches = document["marches"]["marche"]
        overdue = (await self.api.get("/v1/decp/overdue", buyer))["items"]
        if len(marches) != 1:
            raise DemoError(f"expected one DECP record for {buyer_org.name}, got {len(marches)}")
        marche = marches[0]
        self.console.print(
            f"  awarded {award['orders'][0]['number']} at {cheapest['unit_price_eur_ht']} € HT a desk; DECP record "
            f"{marche['id']}: {marche['montant']:.2f} € HT, notified {marche['dateNotification']}, "
            f"{marche['procedure']}, {len(marche['titulaires'])} titulaire(s) — to publish within two months")
        self.summary["decp"] = {
            "buyer": buyer_org.name,
            "marches": len(marches),
            "montant": marche["montant"],
            "procedure": marche["procedure"],
            "code_cpv": marche["codeCPV"],
            "overdue": len(overdue),
        }

    async def _matches(self, request_id: str, buyer: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            matches = await self.api.get(f"/v1/requests/{request_id}/matches", buyer)
            if matches["state"] == "done":
                return matches
            if time.monotonic() > deadline:
                raise DemoError(f"matching of request {request_id} still {matches['state']} after {timeout:.0f} s")
            await asyncio.sleep(0.2)

    # ---- 3. the visor crisis call ---------------------------------------------------------------

    async def crisis(self, cast: Cast, story: data.CrisisStory) -> None:
        coordinator = cast.coordinator
        path = "/coordination/grand-est"
        hook = await self.api.post("/v1/webhook-endpoints", coordinator, {"url": self.receiver.url(path)})
        self.receiver.learn(path, hook["secret"])
        self.console.rule(f"[bold]Visor crisis call — {story.region}, {len(story.points)} delivery points")
        created = await self.api.post(
            "/v1/crisis-calls",
            coordinator,
            {
                "item": story.item,
                "deadline": working_deadline(datetime.now(UTC), story.working_days).isoformat(),
                "priority": story.priority,
                "max_distance_km": story.max_distance_km,
                "delivery_points": [
                    {"label": p.label, "commune_insee": p.insee, "quantity": p.quantity, "priority": p.priority}
                    for p in story.points
                ],
            },
        )
        call_path = f"/v1/crisis-calls/{created['id']}"
        first = await self.api.get(call_path, coordinator)
        self._print_allocation(first, cast, title="First allocation (matching.allocate over every able workshop)")
        offered = _live(first)

        # The makers answer: three decline (with their reason), the others accept.
        by_shop: dict[str, list[dict[str, Any]]] = {}
        for c in offered:
            by_shop.setdefault(c["workshop_id"], []).append(c)
        decliners = self._decliners(cast, story, by_shop)
        skip = {shop.id for shop, _ in decliners}
        accepted = await self._answer_all(cast, call_path, coordinator, skip=skip)
        before = await self.api.get(call_path, coordinator)
        declined_units = 0

        async def decline(shop: Shop, reason: str) -> None:
            nonlocal declined_units
            for c in await self._mine(shop, created["id"], status="proposed"):
                await self.api.post(
                    f"/v1/commitments/{c['id']}/decline", shop.key, {"reason": reason}, expect=200, idempotent=False
                )
                declined_units += c["quantity"]

        await asyncio.gather(*(decline(shop, reason) for shop, reason in decliners))
        for shop, reason in decliners:
            self.console.print(f"  [yellow]declined[/] by {shop.seed.name}: {reason}")
        self.console.print(
            f"  {accepted} units accepted by {len(by_shop) - len(decliners)} makers, "
            f"{declined_units} declined by {len(decliners)}"
        )

        # The worker notices the declines and re-allocates what it can; new proposals are accepted.
        after = await self._wait_rebalance(call_path, coordinator, since_revision=before["revision"])
        # A rebalance that ran between two declines may have offered units to a maker that declined
        # after it had listed its proposals: a closed workshop declines those too, until none is left.
        for _ in range(len(decliners)):
            late = declined_units
            await asyncio.gather(*(decline(shop, reason) for shop, reason in decliners))
            if declined_units == late:
                break
            after = await self._wait_rebalance(call_path, coordinator, since_revision=after["revision"])
        known = {r["id"] for r in before["rebalances"]}
        rebalanced = [r for r in after["rebalances"] if r["id"] not in known]
        for r in rebalanced:
            moved = r["moved"]
            self.console.print(
                f"  [cyan]rebalanced by the worker[/] ({r['reason']}): {r['units_moved']} units moved in "
                f"{len(moved.get('created', []))} new and {len(moved.get('changed', []))} resized proposals, "
                f"unmet {r['unmet_before']} → {r['unmet_after']}"
            )
        if not rebalanced:
            self.console.print("  the worker re-solved the call: no spare capacity within reach, nothing moved")
        accepted_after = await self._answer_all(cast, call_path, coordinator, skip=skip)
        if accepted_after:
            self.console.print(f"  {accepted_after} re-allocated units accepted")

        # Production and delivery, reported by every maker in rounds.
        detail = await self.api.get(call_path, coordinator)
        requested = detail["totals"]["requested"]
        task = self.progress.add_task("Visors delivered", total=requested)
        agreed = [c for c in detail["commitments"] if c["status"] in ("accepted", "completed")]
        gate = asyncio.Semaphore(SEED_CONCURRENCY)
        keys = {shop.id: shop.key for shop in cast.shops.values()}

        async def report(c: dict[str, Any], produced: int, delivered: int) -> None:
            async with gate:
                await self.api.post(
                    f"/v1/commitments/{c['id']}/progress",
                    keys[c["workshop_id"]],
                    {"units_produced": produced, "units_delivered": delivered},
                    expect=200,
                    idempotent=False,
                )

        for made, shipped in story.rounds:
            await asyncio.gather(
                *(report(c, round(c["quantity"] * made), round(c["quantity"] * shipped)) for c in agreed)
            )
            detail = await self.api.get(call_path, coordinator)
            self.progress.update(task, completed=detail["totals"]["delivered"])

        # Everything promised has arrived: the coordinator closes the call (nothing left to recruit for).
        closed = await self.api.post(f"{call_path}/close", coordinator, expect=200)
        final = await self.api.get(call_path, coordinator)
        self._print_points(final)
        totals = final["totals"]
        agreed = [c for c in final["commitments"] if c["status"] in ("accepted", "completed")]
        self.summary["crisis"] = {
            "id": created["id"],
            "region": story.region,
            "item": story.item,
            "status": closed["status"],
            "points": len(final["delivery_points"]),
            "per_point": [
                {k: p[k] for k in ("label", "commune_insee", "quantity", "committed", "accepted", "delivered", "unmet")}
                for p in final["delivery_points"]
            ],
            "totals": {k: totals[k] for k in ("requested", "committed", "accepted", "produced", "delivered", "unmet")},
            "first_allocation": {k: first["totals"][k] for k in ("committed", "unmet")},
            "declined": {"workshops": len(decliners), "units": declined_units},
            "rebalances": [
                {k: r[k] for k in ("reason", "units_moved", "unmet_before", "unmet_after")} for r in rebalanced
            ],
            "workshops_involved": len({c["workshop_id"] for c in agreed}),
            "km": round(sum(c["distance_km"] for c in agreed), 1),
            "unit_km": round(sum(c["distance_km"] * c["quantity"] for c in agreed), 1),
            "commitments": len(agreed),
        }

    def _decliners(
        self, cast: Cast, story: data.CrisisStory, by_shop: dict[str, list[dict[str, Any]]]
    ) -> list[tuple[Shop, str]]:
        """The story's named decliners when they were offered something, else the next offered workshops by name."""
        offered = sorted((cast.shops[w] for w in by_shop), key=lambda s: s.seed.name)
        named = dict(story.declines)
        chosen = [s for s in offered if s.seed.name in named]
        spare = [s for s in offered if s.seed.name not in named]
        chosen += spare[: max(0, len(story.declines) - len(chosen))]
        reasons = [reason for _, reason in story.declines]
        return [(shop, named.get(shop.seed.name, reasons[i % len(reasons)])) for i, shop in enumerate(chosen)]

    async def _mine(self, shop: Shop, call_id: str, *, status: str) -> list[dict[str, Any]]:
        """A maker's own commitments in this call (``GET /v1/commitments``, every page)."""
        found: list[dict[str, Any]] = []
        query = f"/v1/commitments?call_id={call_id}&status={status}&limit=200"
        page = await self.api.get(query, shop.key)
        while True:
            found += page["items"]
            if not page.get("next_cursor"):
                return found
            page = await self.api.get(f"{query}&cursor={page['next_cursor']}", shop.key)

    async def _answer_all(self, cast: Cast, call_path: str, coordinator: str, *, skip: set[str]) -> int:
        """Every maker offered something in the call, but ``skip``, accepts its proposals; returns the units."""
        detail = await self.api.get(call_path, coordinator)
        offered = {c["workshop_id"] for c in detail["commitments"] if c["status"] == "proposed"} - skip
        gate = asyncio.Semaphore(SEED_CONCURRENCY)
        accepted = 0

        async def answer(shop: Shop) -> None:
            nonlocal accepted
            async with gate:
                for c in await self._mine(shop, detail["id"], status="proposed"):
                    await self.api.post(f"/v1/commitments/{c['id']}/accept", shop.key, expect=200, idempotent=False)
                    accepted += c["quantity"]

        await asyncio.gather(*(answer(cast.shops[w]) for w in sorted(offered)))
        return accepted

    async def _wait_rebalance(
        self, call_path: str, coordinator: str, *, since_revision: int, timeout: float = 45
    ) -> dict[str, Any]:
        """Poll the call until the worker has re-allocated after the declines and nothing is pending."""
        deadline = time.monotonic() + timeout
        while True:
            detail = await self.api.get(call_path, coordinator)
            if detail["revision"] > since_revision and not detail["rebalance_pending"]:
                return dict(detail)
            if time.monotonic() > deadline:
                raise DemoError(f"the worker did not rebalance the call within {timeout:.0f} s")
            await asyncio.sleep(0.3)

    def _print_allocation(self, detail: dict[str, Any], cast: Cast, *, title: str) -> None:
        per_point: dict[str, list[dict[str, Any]]] = {}
        for c in _live(detail):
            per_point.setdefault(_point_id(c), []).append(c)
        table = Table("delivery point", "prio", "requested", "committed", "unmet", "workshops", "nearest", title=title)
        for p in sorted(detail["delivery_points"], key=lambda p: (p["priority"], -p["quantity"])):
            mine = sorted(per_point.get(p["id"], []), key=lambda c: c["distance_km"])
            nearest = f"{cast.shops[mine[0]['workshop_id']].commune}, {mine[0]['distance_km']:.0f} km" if mine else "-"
            table.add_row(
                p["label"],
                str(p["priority"]),
                str(p["quantity"]),
                str(p["committed"]),
                str(p["unmet"]),
                str(len({c["workshop_id"] for c in mine})),
                nearest,
            )
        self.console.print(table)
        t = detail["totals"]
        live = _live(detail)
        self.console.print(
            f"  requested {t['requested']} · committed {t['committed']} · unmet {t['unmet']} · "
            f"{len(live)} proposals to {len({c['workshop_id'] for c in live})} workshops"
        )

    def _print_points(self, detail: dict[str, Any]) -> None:
        table = Table(
            "delivery point",
            "requested",
            "accepted",
            "produced",
            "delivered",
            "unmet",
            "workshops",
            title="Where the visors went",
        )
        per_point: dict[str, set[str]] = {}
        for c in detail["commitments"]:
            if c["status"] in ("accepted", "completed"):
                per_point.setdefault(_point_id(c), set()).add(c["workshop_id"])
        for p in sorted(detail["delivery_points"], key=lambda p: (p["priority"], -p["quantity"])):
            table.add_row(
                p["label"],
                str(p["quantity"]),
                str(p["accepted"]),
                str(p["produced"]),
                str(p["delivered"]),
                str(p["unmet"]),
                str(len(per_point.get(p["id"], ()))),
            )
        self.console.print(table)

    # ---- the end -------------------------------------------------------------------------------

    async def wait_for_events(self, wanted: set[str], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.receiver.verified) and time.monotonic() < deadline:
            await asyncio.sleep(0.3)

    def print_summary(self, elapsed: float) -> None:
        table = Table(title="broker demo — summary")
        for column in ("story", "requested", "delivered", "committed", "unmet", "km", "workshops"):
            table.add_column(column, justify="left" if column == "story" else "right")
        desk = self.summary.get("desk")
        if desk:
            table.add_row(
                "France Services desks (Aubusson)",
                str(desk["requested"]),
                str(desk["delivered"]),
                str(desk["requested"]),
                str(desk["unmet"]),
                f"{desk['distance_km']:.0f}",
                str(desk["workshops_involved"]),
            )
        crisis = self.summary.get("crisis")
        if crisis:
            t = crisis["totals"]
            table.add_row(
                f"Visors, {crisis['region']} ({crisis['points']} points)",
                str(t["requested"]),
                str(t["delivered"]),
                str(t["committed"]),
                str(t["unmet"]),
                f"{crisis['km']:.0f}",
                str(crisis["workshops_involved"]),
            )
        self.console.print(table)
        if crisis and crisis["totals"]["delivered"]:
            self.console.print(
                f"  km: one run per order or commitment, town hall to town hall as the crow flies; "
                f"a visor travelled {crisis['unit_km'] / crisis['totals']['delivered']:.1f} km on average"
            )
        if desk and desk.get("procedure"):
            self.console.print(f"  France Services desks: {procedure_line(desk)}")
        if desk and desk.get("invoice"):
            bill = desk["invoice"]
            self.console.print(f"  desk invoice {bill['number']}: {french_euros(bill['total_eur_ttc'], cents=True)} "
                               f"TTC, due {french_day(bill['due_on'])}, {LABELS[InvoiceStatus(bill['status'])]}")
        rotation = self.summary.get("rotation")
        if rotation:
            self.console.print(f"  rotation: award {rotation['awards']} to {rotation['workshop']} answered "
                               f"{rotation['asked']}, then made with the buyer's justification")
        decp = self.summary.get("decp")
        if decp:
            self.console.print(f"  DECP: {decp['marches']} marché of {decp['montant']:.2f} € HT recorded for "
                               f"{decp['buyer']} ({decp['procedure']})")
        hooks = self.summary.get("webhooks", {})
        self.console.print(
            f"  webhooks: {hooks.get('verified', 0)} signed events received and verified, "
            f"{hooks.get('rejected', 0)} rejected · {self.api.calls} API calls · {elapsed:.1f} s"
        )


async def tell(
    base_url: str,
    admin_key: str,
    *,
    check: Callable[[], str | None] = lambda: None,
    console: Console | None = None,
    summary_json: Path | None = None,
) -> int:
    """Run the whole story against a running broker (API + worker). Returns the exit code."""
    console = console or Console()
    started = time.monotonic()
    # SIGTERM cancels the story like Ctrl-C does (asyncio.run turns SIGINT into a cancellation): the
    # receiver and the client close in their finally blocks before the caller stops the processes.
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    if main is not None:
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    receiver = Receiver()
    await receiver.start()
    progress = Progress(
        TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            story = Story(Api(client, check), console, progress, receiver)
            code = 0
            with progress:
                try:
                    cast = await story.seed(admin_key)
                    stages = story.summary.setdefault("stages_s", {})
                    stages["seed"] = round(time.monotonic() - started, 1)
                    acts: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                        ("desk", lambda: story.desk(cast, data.DeskStory())),
                        ("rotation", lambda: story.rotation(cast, data.RotationStory())),
                        ("decp", lambda: story.decp(cast, data.DecpStory())),
                        ("crisis", lambda: story.crisis(cast, data.CrisisStory())),
                    ]
                    for name, act in acts:
                        begun = time.monotonic()
                        await act()
                        stages[name] = round(time.monotonic() - begun, 1)
                    await story.wait_for_events({"order.delivered", "crisis_call.rebalanced"})
                except DemoError as exc:
                    console.print(f"[bold red]demo failed:[/] {exc}")
                    code = 1
            story.summary["webhooks"] = {
                "verified": sum(receiver.verified.values()),
                "rejected": receiver.rejected,
                "by_type": dict(sorted(receiver.verified.items())),
            }
            elapsed = time.monotonic() - started
            story.summary["elapsed_s"] = round(elapsed, 1)
            story.summary["ok"] = code == 0
            story.print_summary(elapsed)
            if summary_json is not None:
                summary_json.write_text(json.dumps(story.summary, indent=2, ensure_ascii=False))
            return code
    finally:
        await receiver.stop()
        loop.remove_signal_handler(signal.SIGTERM)
