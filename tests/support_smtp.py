"""A tiny SMTP server on 127.0.0.1 for the notification tests (smtplib talks to it; nothing leaves the
machine)."""

from __future__ import annotations

import asyncio
import contextlib


class TinySmtp:
    """Just enough SMTP for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. ``refuse_rcpt`` answers 550."""

    def __init__(self, *, refuse_rcpt: bool = False) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse_rcpt = refuse_rcpt
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        sender, recipients = "", []
        say("220 tiny ESMTP")
        try:
            while line := await asyncio.wait_for(reader.readline(), 5):
                verb = line.decode().strip().split(" ", 1)[0].upper()
                arg = line.decode().strip()[len(verb) :].strip()
                if verb in ("EHLO", "HELO"):
                    say("250 tiny")
                elif verb == "MAIL":
                    sender = arg.partition(":")[2].strip("<> ")
                    say("250 ok")
                elif verb == "RCPT":
                    if self.refuse_rcpt:
                        say("550 no such user")
                    else:
                        recipients.append(arg.partition(":")[2].strip("<> "))
                        say("250 ok")
                elif verb == "DATA":
                    say("354 go ahead")
                    await writer.drain()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = await asyncio.wait_for(reader.readline(), 5)
                        if not chunk:
                            return
                        data += chunk
                    self.messages.append((sender, recipients, data[: -len(b".\r\n")]))
                    sender, recipients = "", []
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    await writer.drain()
                    return
                else:
                    say("250 ok")
                await writer.drain()
        finally:
            writer.close()
