"""One e-mail per notified event (``notify:<outbox id>``): built from the committed event, sent through
the configured notifier, then marked sent in Redis for a week so that a re-run of the job (a worker
killed after sending, the relay re-claiming the event) does not send it again."""

from __future__ import annotations

from datetime import timedelta

from arq.worker import Retry

from broker.errors import Rejected, UpstreamUnavailable
from broker.services.notifications import message_for
from workers.context import WorkerContext

SENT_KEY = "broker:notified:"
SENT_TTL = timedelta(days=7)


async def notify(ctx: WorkerContext, outbox_id: str) -> str:
    async with ctx["db"].reader() as session:
        message = await message_for(session, outbox_id=outbox_id, public_url=ctx["settings"].api.public_url)
    if message is None:
        return "nothing to send"
    redis = ctx["redis"]
    if await redis.exists(SENT_KEY + outbox_id):
        return "already sent"
    try:
        await ctx["notifier"].send(message.to, message.subject, message.body)
    except UpstreamUnavailable as exc:  # the SMTP server is down: try again later (max_tries)
        raise Retry(defer=30 * ctx.get("job_try", 1)) from exc
    except Rejected as exc:  # an address the notifier refuses: nothing a retry would change
        return f"refused: {exc.detail}"
    await redis.set(SENT_KEY + outbox_id, b"1", ex=SENT_TTL)
    return "sent"
