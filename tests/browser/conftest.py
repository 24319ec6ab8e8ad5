"""Browser tests: Playwright drives Debian's Chromium (``/usr/bin/chromium``, installed by ``make
test``; never a downloaded browser) against one real ``broker up`` (API server, worker, embedded
Redis) shared by the module's tests. Everything is module-scoped: Playwright's sync API runs an
event loop in this thread while it is open, which later modules' ``asyncio.run`` would trip on. Every test saves screenshots under
``var/test-artifacts/screenshots``; every page's ``Server-Timing`` is collected and written to
``var/test-artifacts/web-timings.json``."""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import FAB_LAB, WOOD_SHOP, make_workshop, tenant
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from support_server import RunningBroker, running_broker

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
SHOTS = ARTIFACTS / "screenshots"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=fr-FR",
]

WORKSHOPS = [  # name, INSEE, machines, declared visor capacity per day
    ("Fab lab de Lannion", "22113", FAB_LAB, 25),
    ("Le Bocal, Saint-Brieuc", "22278", FAB_LAB, 30),
    ("Fab lab de Vannes", "56260", FAB_LAB, 20),
    ("La Fabrique de Lorient", "56121", FAB_LAB, 15),
    ("Menuiserie du Pays de Rennes", "35238", WOOD_SHOP, None),
    ("Atelier Bois de Vitré", "35360", WOOD_SHOP, None),
    ("Fab lab de la Belle de Mai, Marseille", "13055", FAB_LAB, 40),
]


class World:
    """Who is who in the running broker (keys and ids), made through the HTTP API."""

    def __init__(self, broker: RunningBroker) -> None:
        self.broker = broker
        self.url = broker.url
        self.admin = broker.admin_key
        self.shops: dict[str, tuple[dict[str, Any], str]] = {}
        self.orgs: dict[str, tuple[dict[str, Any], str]] = {}

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


async def _populate(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url, timeout=30) as client:
        for name, insee, machines, visors in WORKSHOPS:
            world.shops[name] = await make_workshop(
                client, world.admin, name=name, commune_insee=insee, machines=machines,
                capacities={"face-visor": visors} if visors else None)
        for key, kind, role, name, insee in [
            ("lannion", "collectivite", "buyer", "Commune de Lannion", "22113"),
            ("vannes", "collectivite", "buyer", "Ville de Vannes", "56260"),
            ("prefecture", "coordination", "coordinator", "Préfecture des Côtes-d'Armor", "22278"),
            ("ars", "coordination", "coordinator", "ARS Occitanie", "31555"),
            ("nouvelle", "manufacture", "maker", "Atelier partagé de Guingamp", "22070"),
        ]:
            world.orgs[key] = await tenant(client, world.admin, kind, role, name=name, commune_insee=insee)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_broker(tmp_path_factory.mktemp("web")) as broker:
        w = World(broker)
        # Playwright's sync API keeps an event loop in this thread: populate from another one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(_populate(w))).result()
        yield w


@pytest.fixture(scope="module")
def timings() -> Iterator[list[tuple[str, float]]]:
    """Every page the module's journeys opened, with its Server-Timing in ms. The figures go to
    var/test-artifacts/web-timings.json; their budget is `make bench`'s (tests/bench/bench_web_pages.py),
    never a pass/fail here (a loaded machine is no clock). A page without the header fails the module."""
    collected: list[tuple[str, float]] = []
    yield collected
    assert [page for page, ms in collected if ms < 0] == [], "pages without Server-Timing"
    if collected:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        durations = [d for _, d in collected if d >= 0] or [0.0]
        summary = {"pages": len(collected), "median_ms": round(statistics.median(durations), 1),
                   "p95_ms": round(sorted(durations)[int(0.95 * (len(durations) - 1))], 1),
                   "max_ms": round(max(durations), 1),
                   "slowest": sorted(collected, key=lambda x: -x[1])[:10]}
        (ARTIFACTS / "web-timings.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make chromium` (make test installs it)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    yield browser
    browser.close()


class Session:
    """One person in one browser context."""

    def __init__(self, context: BrowserContext, world: World, timings: list[tuple[str, float]], name: str) -> None:
        self.context = context
        self.world = world
        self.name = name
        self.page: Page = context.new_page()
        self.page.set_default_timeout(15_000)
        self.shots = 0

        def record(response: Any) -> None:
            url = response.url
            if "/app/" in url and "/static/" not in url:
                timing = response.headers.get("server-timing", "")  # -1: the page carried none
                timings.append((f"{response.request.method} {url.split('/app', 1)[1]}",
                                float(timing.split("=", 1)[1]) if timing.startswith("app;dur=") else -1.0))

        self.page.on("response", record)

    def go(self, path: str) -> Page:
        self.page.goto(self.world.url + path)
        return self.page

    def sign_in(self, key: str) -> Page:
        page = self.go("/app/connexion")
        page.get_by_label("Clé d'API").fill(key)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_load_state()
        assert "/app/connexion" not in page.url, page.content()
        return page

    def shot(self, label: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def person(browser: Browser, world: World, timings: list[tuple[str, float]],
           request: pytest.FixtureRequest) -> Iterator[Any]:
    """``person("buyer")`` opens a fresh browser context (desktop size unless ``phone=True``)."""
    contexts: list[BrowserContext] = []

    def open_session(name: str, *, phone: bool = False) -> Session:
        options: dict[str, Any] = {"locale": "fr-FR", "timezone_id": "Europe/Paris"}
        if phone:
            options |= {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
                        "has_touch": True}
        else:
            options |= {"viewport": {"width": 1280, "height": 900}}
        context = browser.new_context(**options)
        contexts.append(context)
        return Session(context, world, timings, name)

    yield open_session
    for context in contexts:
        context.close()
