"""Domain errors with stable codes; no HTTP here (``broker/api/errors.py`` maps them).

BrokerError
├── NotFound              the object does not exist *for this caller* (other tenants' objects too)
├── Conflict              the request is valid but the state forbids it
│   └── InvalidTransition a status change that the transition table does not allow
├── Rejected              the input is well-formed but not acceptable (bad SIRET, unknown commune…)
├── Forbidden             the caller's role may not do this
└── UpstreamUnavailable   a dependency (database, Redis, a remote system) is down
"""

from __future__ import annotations

from collections.abc import Mapping


class BrokerError(Exception):
    """Base of every expected error. ``code`` is stable and documented; ``detail`` is for humans;
    ``extensions`` are machine-readable members of the problem (RFC 9457 §3.2), JSON-ready, each
    one a documented optional member of `broker.api.problems.ProblemDetails` (e.g. ``reason``);
    ``figures`` are the values the detail quotes (units, a status, a name), by name, so that an edge
    can say the refusal in its own words (the web's French, ``broker.web.forms.french``) without
    reading the English detail — they are not members of the API's problem."""

    code = "broker-error"
    title = "Broker error"

    def __init__(
        self, detail: str, *, pointer: str | None = None, code: str | None = None,
        extensions: Mapping[str, object] | None = None, figures: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer
        self.extensions: dict[str, object] = dict(extensions or {})
        self.figures: dict[str, object] = dict(figures or {})
        if code is not None:
            self.code = code


class NotFound(BrokerError):
    code = "not-found"
    title = "Not found"


class Conflict(BrokerError):
    code = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid-state-transition"
    title = "Invalid state transition"


class Rejected(BrokerError):
    code = "validation-error"
    title = "Unprocessable content"


class Forbidden(BrokerError):
    code = "forbidden"
    title = "Forbidden"


class UpstreamUnavailable(BrokerError):
    code = "upstream-unavailable"
    title = "Service unavailable"
