"""A person using the web interface in process (no browser): the signed-in session, the pages' CSRF
tokens and flash messages, and the text a person reads on a page."""

from __future__ import annotations

import html
import re
from typing import Any

from broker.web.session import FLASH_COOKIE


async def signed_in(client: Any, key: str) -> str:
    """The session cookie of a web sign-in (sent by hand: the cookies are Secure, the client is http)."""
    page = await client.get("/app/connexion")
    token = re.search(r'name="_csrf_signin" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    jar = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    signed = await client.post("/app/connexion", data={"cle": key, "_csrf_signin": token.group(1), "suite": ""},
                               headers={"Cookie": jar}, follow_redirects=False)
    assert signed.status_code == 303, signed.text[:500]
    return f"broker_session={signed.cookies['broker_session']}"


class Browser:
    """One signed-in person: GET a page, POST one of its forms with the page's CSRF token."""

    def __init__(self, client: Any, cookie: str) -> None:
        self.client, self.cookie, self.csrf, self.flash = client, cookie, "", ""

    async def get(self, path: str, status: int = 200) -> str:
        """The page, with the flash message of the last post (shown once)."""
        cookie = f"{self.cookie}; {FLASH_COOKIE}={self.flash}" if self.flash else self.cookie
        self.flash = ""
        response = await self.client.get(path, headers={"Cookie": cookie}, follow_redirects=False)
        assert response.status_code == status, (path, response.status_code, response.text[:800])
        if found := re.search(r'name="_csrf" value="([^"]+)"', response.text):
            self.csrf = found.group(1)
        return str(response.text)

    async def post(self, path: str, data: dict[str, str] | None = None, status: int = 303) -> Any:
        response = await self.client.post(path, data={"_csrf": self.csrf, **(data or {})},
                                          headers={"Cookie": self.cookie}, follow_redirects=False)
        assert response.status_code == status, (path, response.status_code, response.text[:800])
        self.flash = response.cookies.get(FLASH_COOKIE, "")
        return response


def visible(page: str) -> str:
    """The text a person reads: no markup, scripts or attributes; entities decoded; runs of ordinary
    white space as one space (the no-break spaces stay: they are French typography)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    body = re.sub(r"</?(strong|em|a|span|time|abbr)\b[^>]*>", "", body)  # inline: no space of their own
    return re.sub(r"[ \t\r\n]+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()
