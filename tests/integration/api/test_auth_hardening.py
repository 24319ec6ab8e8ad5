"""Issue 18, F2 and F8: a victim's key is never locked out by requests that forge its prefix, and a
CSRF token of any shape is refused with 403 (never a 500)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgspec
from factories import bearer, tenant
from litestar.testing import AsyncTestClient

from broker.app import create_app
from broker.web.session import SESSION_COOKIE, SIGNIN_COOKIE, Sealer, new_session

ATTACK = 1_250


class FromAddress:
    """An app whose HTTP requests come from ``host`` (the test client's is always "testclient")."""

    def __init__(self, app: Any, host: str) -> None:
        self.app, self.host = app, host

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            scope = {**scope, "client": (self.host, 40000)}
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


async def test_a_forged_secret_behind_a_victims_prefix_never_locks_the_victim_out(settings, admin_key, redis_client):
    limited = msgspec.structs.replace(
        settings, api=msgspec.structs.replace(settings.api, rate_limit_per_minute=50, auth_failures_per_minute=20)
    )
    async with AsyncTestClient(create_app(limited)) as attacker:  # the in-process client's address: "testclient"
        _org, victim_key = await tenant(attacker, admin_key, "collectivite", "buyer")
        await redis_client.flushdb()  # the admin's requests above do not count
        prefix = victim_key.split("_")[1]
        forged = f"fab_{prefix}_" + "Z" * 43
        statuses = [(await attacker.get("/v1/organizations", headers=bearer(forged))).status_code
                    for _ in range(ATTACK)]
        # The attacker is refused: 401 while under the failure limit, 429 after, never a success.
        assert set(statuses) == {401, 429}, sorted(set(statuses))
        assert statuses[:20] == [401] * 20 and statuses[-1] == 429
        refused = await attacker.get("/v1/organizations", headers=bearer(forged))
        assert refused.status_code == 429 and refused.json()["code"] == "rate-limited"
        assert int(refused.headers["retry-after"]) >= 1
        # The victim, from another address, still has its whole budget.
        second = create_app(limited)  # a second API process
        async with AsyncTestClient(FromAddress(second, "192.0.2.10")) as victim:
            answer = await victim.get("/v1/organizations", headers=bearer(victim_key))
            assert answer.status_code == 200, answer.text
            assert answer.headers["ratelimit-remaining"] == "49"
            # A forged secret from this address too: refused (its prefix has too many failures), and
            # that failure bucket never blocks the valid key.
            assert (await victim.get("/v1/organizations", headers=bearer(forged))).status_code == 429
            assert (await victim.get("/v1/organizations", headers=bearer(victim_key))).status_code == 200
            # An authenticated request costs one Redis round trip (the limiter's EVALSHA), as before.
            redis = second.state.runtime.redis
            calls: list[object] = []
            execute = redis.execute_command

            async def counted(*args: Any, **kwargs: Any) -> Any:
                calls.append(args[0])
                return await execute(*args, **kwargs)

            redis.execute_command = counted
            assert (await victim.get("/v1/organizations", headers=bearer(victim_key))).status_code == 200
            del redis.execute_command
            assert calls == ["EVALSHA"], calls
            # The valid key keeps its own per-key limit.
            statuses = [(await victim.get("/v1/organizations", headers=bearer(victim_key))).status_code
                        for _ in range(50)]
            assert statuses == [200] * 47 + [429, 429, 429]


def _signin_cookie(response: httpx.Response) -> str:
    match = re.search(rf"{SIGNIN_COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert match, response.headers
    return match.group(1)


SHAPES = ["é" * 32, "🔑", "", "A" * 31, "A" * 5000, "ab cd", "\u0000" * 32]


async def test_a_csrf_token_of_any_shape_on_the_sign_in_form_is_refused_with_403(client):
    page = await client.get("/app/connexion")
    assert page.status_code == 200
    cookie = _signin_cookie(page)
    for sent in SHAPES:
        response = await client.post(
            "/app/connexion", data={"_csrf_signin": sent, "cle": "fab_x_y"},
            headers={"Cookie": f"{SIGNIN_COOKIE}={cookie}"},
        )
        assert response.status_code == 403, (sent, response.status_code)
        assert "Le formulaire a expiré" in response.text


async def test_a_csrf_token_of_any_shape_on_a_session_form_is_refused_with_403(client, settings, admin_key):
    session = Sealer(settings.secret_key).seal_session(new_session(admin_key, org_name="Administration"))
    cookies = {"Cookie": f"{SESSION_COOKIE}={session}"}
    for sent in SHAPES:
        response = await client.post("/app/deconnexion", data={"_csrf": sent}, headers=cookies)
        assert response.status_code == 403, (sent, response.status_code)
        assert "Formulaire expiré" in response.text
    # The header form of the token, with bytes that are not ASCII.
    response = await client.post("/app/deconnexion", headers={**cookies, "X-CSRF-Token": "é".encode("latin-1") * 32})
    assert response.status_code == 403
