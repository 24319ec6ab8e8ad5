"""The request's unit of work: one session and one transaction per request, committed after the
handler succeeded (before the response is sent), rolled back otherwise; plus the audit row of every
write and the Idempotency-Key protocol (INTEGRATION.md ID-1..ID-6)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import msgspec
from litestar import Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.api.problems import PROBLEM_MEDIA_TYPE, ProblemDetails, build_problem, problem_for_broker_error
from broker.api.runtime import Runtime
from broker.api.security import SAFE_METHODS, request_id
from broker.db.constraints import conflict_for
from broker.db.pending import restore_pending, snapshot_pending
from broker.db.repositories import AuditRepository, IdempotencyRecord, IdempotencyRepository
from broker.domain.access import Principal
from broker.errors import BrokerError, Conflict, NotFound, Rejected
from broker.services.jobs import Job, JobQueue, take_after_commit

_Body = TypeVar("_Body", bound=msgspec.Struct)

_KEY = re.compile(r'^(?:"([A-Za-z0-9_:.\-]{1,255})"|([A-Za-z0-9_:.\-]{1,255}))$')


class IdempotencyError(BrokerError):
    """Raised before the handler runs; never stored."""


class IdempotencyKeyInvalid(IdempotencyError):
    code = "idempotency-key-invalid"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyMissing(IdempotencyError):
    code = "idempotency-key-missing"
    title = "Idempotency-Key required"


class IdempotencyKeyReused(IdempotencyError):
    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with another body"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency-key-in-flight"
    title = "Idempotency-Key still in flight"


class Replay(Exception):
    """The stored response for this key and body; the exception table sends it as it was."""

    def __init__(self, row: IdempotencyRecord) -> None:
        super().__init__("replay")
        self.row = row


class _Idem(msgspec.Struct):
    key: str
    route: str
    fingerprint: str


def parse_idempotency_key(values: list[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise IdempotencyKeyInvalid("send one Idempotency-Key header, not several")
    match = _KEY.match(values[0].strip())
    if match is None:
        raise IdempotencyKeyInvalid(
            "Idempotency-Key must be 1-255 characters of A-Z a-z 0-9 _ : . - (optionally quoted)"
        )
    return match.group(1) or match.group(2)


class RequestContext:
    """Handed to every authenticated handler: the session, the caller, the clock, the ports."""

    def __init__(
        self, *, request: Request[Any, Any, Any], runtime: Runtime, session: AsyncSession, principal: Principal
    ) -> None:
        self.request = request
        self.runtime = runtime
        self.session = session
        self.principal = principal
        self.now = datetime.now(UTC)
        self.request_id = request_id(request)
        self.status = 200
        self.resource: tuple[str, str] | None = None
        self.idem: _Idem | None = None
        # The Idempotency-Key lookup still to do (PostgreSQL defers it: `_settle_key`).
        self.lookup: dict[str, str] | None = None
        # Run after the commit succeeded and before the answer is sent (e.g. cache invalidation).
        # The worker jobs that follow the request's writes are the services' to schedule
        # (`broker.services.jobs.schedule`): they go in the round trip that wakes the relay.
        self.after_commit: list[Callable[[], Awaitable[None]]] = []
        # What the audit entry records beside the action (e.g. an award's justifications).
        self.audit_detail: dict[str, object] | None = None

    @property
    def geocoder(self) -> Any:
        return self.runtime.geocoder

    async def respond(
        self,
        body: _Body,
        *,
        status: int = 201,
        resource: tuple[str, str] | None = None,
        store: bool = True,
    ) -> Response[_Body]:
        """Encode the answer once, store it under the Idempotency-Key if any, and return it.

        ``store=False`` is for answers that carry a secret shown once: the record then holds a 409
        problem saying so, never the secret (G16).
        """
        content = msgspec.json.encode(body)
        self.status = status
        self.resource = resource
        if self.idem is not None:
            if store:
                await self._store(status, "application/json", content)
            else:
                what = f"{resource[0]} {resource[1]}" if resource else "the object"
                problem = build_problem(
                    409,
                    f"{what} was created by the first request with this Idempotency-Key; its secret "
                    "is shown only once (revoke it and create another if it was lost)",
                    request_id=self.request_id,
                    slug="secret-shown-once",
                    title="Secret shown once",
                )
                await self._store(409, PROBLEM_MEDIA_TYPE, msgspec.json.encode(problem))
        # The body goes out as the bytes encoded (and stored) above; the type names the schema the
        # route documents, which is ``body``'s.
        return cast("Response[_Body]", Response(content=content, status_code=status, media_type="application/json"))

    async def _store(self, status: int, content_type: str, content: bytes) -> None:
        assert self.idem is not None
        IdempotencyRepository(self.session).add(
            org_id=self.principal.org_id,
            method=self.request.method,
            route=self.idem.route,
            key=self.idem.key,
            fingerprint=self.idem.fingerprint,
            status_code=status,
            content_type=content_type,
            body=content,
            created_at=self.now,
            expires_at=self.now + timedelta(hours=self.runtime.settings.idempotency_ttl_hours),
        )

    async def store_failure(self, problem: ProblemDetails) -> None:
        """After a rollback: keep the handler's 4xx answer under the key, in its own transaction."""
        if self.idem is None or problem.status >= 500 or problem.code == IdempotencyKeyInFlight.code:
            return
        try:
            await self._store(problem.status, PROBLEM_MEDIA_TYPE, msgspec.json.encode(problem))
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()

    def _audit(self) -> None:
        principal = self.principal
        AuditRepository(self.session).add(
            at=self.now,
            org_id=principal.org_id,
            api_key_id=principal.key_id,
            key_prefix=principal.key_prefix,
            role=principal.role,
            action=f"{self.request.method} {self.request.scope.get('path_template', '')}",
            resource_type=self.resource[0] if self.resource else None,
            resource_id=self.resource[1] if self.resource else None,
            status_code=self.status,
            request_id=self.request_id,
            detail=self.audit_detail,
        )


def _fingerprint(path: str, query: str, body: bytes) -> str:
    """SHA-256 of the concrete path, the query and the raw body (ID-3): records are stored under the
    route template, so the same key sent with the same body to another object's path (another order,
    another request) is a different request — 422 ``idempotency-key-reused`` (ID-5) — never the
    replay of the first object's answer."""
    digest = hashlib.sha256()
    for part in (path.encode(), b"?", query.encode(), b"\n"):
        digest.update(part)
    digest.update(body)
    return digest.hexdigest()


async def provide_context(request: Request[Any, Any, Any]) -> AsyncGenerator[RequestContext, None]:
    state = request.scope["state"]
    runtime: Runtime = request.app.state.runtime
    ctx = RequestContext(request=request, runtime=runtime, session=state["session"], principal=state["principal"])
    idempotent = request.route_handler.opt.get("idempotent")
    if idempotent:
        key = parse_idempotency_key(request.headers.getall("idempotency-key", []))
        if key is None and idempotent == "required":
            raise IdempotencyKeyMissing(
                "this operation needs an Idempotency-Key header (a UUID is best) so that a retry cannot create it twice"
            )
        if key is not None:
            ctx.idem = _Idem(
                key=key,
                route=str(request.scope.get("path_template", request.url.path)),
                fingerprint=_fingerprint(request.url.path, request.url.query, await request.body()),
            )
            lookup = {"org_id": ctx.principal.org_id, "method": request.method, "route": ctx.idem.route, "key": key}
            looked_up, found = await IdempotencyRepository.find_before_handler(runtime.db, **lookup)
            if not looked_up:
                ctx.lookup = lookup  # the lookup waits for the end (`_settle_key`)
            await _check_key(ctx, found)
    try:
        yield ctx
    except BrokerError as exc:
        await ctx.session.rollback()
        await _settle_key(ctx)  # a retry of a completed request gets its first answer, not this error
        await ctx.store_failure(problem_for_broker_error(exc, ctx.request_id))
        raise
    except BaseException:
        await ctx.session.rollback()
        raise
    else:
        if request.method not in SAFE_METHODS:
            ctx._audit()
        rows = snapshot_pending(ctx.session) if ctx.lookup is not None else None
        try:
            await ctx.session.commit()
        except IntegrityError as exc:
            await ctx.session.rollback()
            failure: IntegrityError | None = exc
            if await _settle_key(ctx) and rows is not None:
                # The key's record had expired (and is now dropped): the rows go in again, once.
                restore_pending(ctx.session, rows)
                try:
                    await ctx.session.commit()
                    failure = None
                except IntegrityError as again:
                    await ctx.session.rollback()
                    failure = again
            if failure is not None:
                conflict = _conflict(failure)
                await ctx.store_failure(problem_for_broker_error(conflict, ctx.request_id))
                raise conflict from failure
        # events committed: the relay sends them now; jobs queued: the worker runs them now
        jobs, wake_relay = take_after_commit(ctx.session)
        await signal_after_commit(runtime.jobs, jobs, wake_relay=wake_relay)
        for hook in ctx.after_commit:
            await hook()


async def _check_key(ctx: RequestContext, found: IdempotencyRecord | None) -> bool:
    """Act on the record found under the request's key: replay it (same body) or refuse the key
    (another body). One past its 24 h is dropped: the key is free again. True when one was dropped."""
    if found is not None and found.expires_at <= ctx.now:
        await IdempotencyRepository(ctx.session).drop(found.id)
        return True
    if found is not None:
        assert ctx.idem is not None
        if found.fingerprint != ctx.idem.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used with another request body; use a new key")
        raise Replay(found)
    return False


async def _settle_key(ctx: RequestContext) -> bool:
    """The deferred lookup (PostgreSQL), after the handler failed or its commit broke a unique key:
    a record under the key is replayed or refuses the request, as it would have before the handler.
    An expired one is dropped (committed): True, and the caller may write its rows again."""
    if ctx.lookup is None:
        return False
    lookup, ctx.lookup = ctx.lookup, None
    if not await _check_key(ctx, await IdempotencyRepository(ctx.session).find(**lookup)):
        await ctx.session.rollback()
        return False
    await ctx.session.commit()
    return True


async def signal_after_commit(queue: JobQueue, jobs: list[Job], *, wake_relay: bool) -> bool:
    """One Redis round trip for what a committed request hands to the workers (never raises)."""
    return await queue.signal(jobs, wake_relay=wake_relay)


def _conflict(exc: IntegrityError) -> BrokerError:
    """A unique violation at commit: a concurrent duplicate key, or a business rule (taken SIRET…)."""
    conflict = conflict_for(exc)
    if conflict is None:
        return Conflict("the request conflicts with data written concurrently; retry it", code="conflict")
    if conflict.code == IdempotencyKeyInFlight.code:
        return IdempotencyKeyInFlight(conflict.detail)
    return conflict


#: Deepest JSON nesting a body may have: real payloads use 4 levels; the decoders recurse (issue 18, F3).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")
_OPENERS = re.compile(rb"[\[{]{%d}" % (MAX_JSON_DEPTH + 1))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BodyTooDeep(BrokerError):
    code = "body-too-deep"
    title = "Body nested too deeply"


class NulCharacter(Rejected):
    code = "nul-character"
    title = "NUL character refused"


class NulInQuery(BrokerError):
    """400, like every malformed query parameter (the list routes document no 422)."""

    code = "nul-character"
    title = "NUL character refused"


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects more than ``limit`` deep, before any decoding.

    Cheap on ordinary bodies (two counts); otherwise strings are cut out, the brackets kept, and the
    innermost pairs removed ``limit`` times over (C passes only). Unbalanced text is left to the decoder.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        brackets, removed = _INNERMOST_PAIR.subn(b"", brackets)
        if not brackets:
            return False
        if not removed:  # unbalanced (the decoder refuses it), but it must not recurse on the way
            return _OPENERS.search(brackets) is not None
    return _INNERMOST_PAIR.search(brackets) is not None or _OPENERS.search(brackets) is not None


def _nul_pointer(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first string (key or value) holding U+0000, if any."""
    if isinstance(value, str):
        return pointer if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            if "\x00" in str(key):
                return f"{pointer}/{escaped}"
            found = _nul_pointer(item, f"{pointer}/{escaped}")
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_pointer(item, f"{pointer}/{index}")
            if found is not None:
                return found
    return None


_NUL_DETAIL = "le caractère NUL (U+0000) est refusé dans les textes"


async def screen_request(request: Request[Any, Any, Any]) -> None:
    """Before any decoding of an API call (app ``before_request``; issue 18, F3 and F6): a path id
    holding NUL names nothing (404, on every database), a query value holding one is refused (400),
    a JSON body nested deeper than ``MAX_JSON_DEPTH`` is refused (400), one holding ``\\u0000`` in a
    string is refused (422, with its pointer). Costs two byte counts and one byte search on an ordinary body."""
    if not request.scope["path"].startswith("/v1/"):
        return
    if any(isinstance(v, str) and "\x00" in v for v in request.path_params.values()):
        raise NotFound("aucun objet ne porte cet identifiant")
    if b"%00" in request.scope.get("query_string", b""):
        for name, value in request.query_params.items():
            if "\x00" in value or "\x00" in name:
                raise NulInQuery(f"paramètre {name!r}\u202f: {_NUL_DETAIL}")
    if request.method in SAFE_METHODS or request.content_type[0] in _FORM_TYPES:
        return
    body = await request.body()
    if not body:
        return
    if json_too_deep(body):
        raise BodyTooDeep(f"le corps JSON est trop imbriqué (imbrication de plus de {MAX_JSON_DEPTH} niveaux)")
    if b"\\u0000" in body:
        try:
            pointer = _nul_pointer(msgspec.json.decode(body))
        except msgspec.DecodeError:
            return  # not JSON: the route's decoder answers 400
        if pointer is not None:
            raise NulCharacter(_NUL_DETAIL, pointer=pointer)


def problem_for_replay_row(row: IdempotencyRecord) -> Response[bytes]:
    return Response(
        content=row.body,
        status_code=row.status_code,
        media_type=row.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


__all__ = ("RequestContext", "build_problem", "provide_context")
