"""The demo story, told through the public HTTP API only (httpx): seed the cast, run a France
Services desk request from matching to delivery, then a visor crisis call; print a summary.

This module is a client: it never touches the database or the services (import-linter checks it).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.geocoding import load_communes
from broker.demo import data
from broker.demo.receiver import Receiver

SEED_CONCURRENCY = 6


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
                },
            },
        )
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
            "total_eur_ttc": final["total_eur_ttc"],
            "workshops_involved": 1,
            "unmet": story.quantity - (final["units_done"] if final["status"] == "delivered" else 0),
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
                    await story.desk(cast, data.DeskStory())
                    await story.wait_for_events({"order.delivered"})
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
